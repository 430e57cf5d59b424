"""What the test stage writes: metrics, classification report, predictions, confusion matrix."""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.outputs import write_csv, write_json
from smp_balr.evaluation.scores import TestResult, headline, plot_confusion

log = logging.getLogger(__name__)


def write_test(res: TestResult, label: str, model_method: str, alpha: float) -> None:
    """Write the test outputs of the single configuration (paths in :mod:`smp_balr.core.paths`)."""
    plot_confusion(
        res.confusion,
        res.classes,
        paths.CONFUSION_PNG,
        title=f"{label}: {model_method} (row-normalised)",
    )
    write_csv(res.report, paths.CLASSIFICATION_REPORT, index=True)
    write_csv(res.predictions, paths.PREDICTIONS)
    write_json(headline(res.metrics, alpha), paths.TEST_METRICS)
    write_json(res.metrics, paths.TEST_DETAILS)
    outputs = (
        paths.TEST_METRICS,
        paths.TEST_DETAILS,
        paths.CLASSIFICATION_REPORT,
        paths.PREDICTIONS,
        paths.CONFUSION_PNG,
    )
    log.info("wrote %s", ", ".join(map(str, outputs)))
