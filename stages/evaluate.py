"""Stage `test`: evaluate the trained model on the test table, against chance."""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import write_csv, write_json
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import scorable_rows
from smp_balr.evaluation.scores import headline, plot_confusion, test_model, verdict
from smp_balr.model.artefacts import load_model

log = logging.getLogger("test")


def main() -> None:
    s = load_settings()
    model = load_model(paths.MODEL_FILE)
    meta = model.metadata_
    table = paths.test_table(s.data.name)
    df, dropped, unseen = scorable_rows(
        table,
        s.label,
        s.class_filter(s.label),
        meta["label"],
        model.classes_,
        model.feature_names_in_,
    )
    log.info(
        "%s: %d rows, %d speakers (%d dropped by the class filter)",
        table,
        len(df),
        df["Speaker"].nunique(),
        dropped,
    )
    excluded = {
        "label": s.label,
        "n_excluded_unseen_class": sum(unseen.values()),
        "n_excluded_class_filter": int(dropped),
    }
    res = test_model(
        model,
        df,
        s.label,
        s.test.n_permutations,
        s.test.n_bootstrap,
        s.seed,
        meta["train_speakers"],
        excluded,
    )
    log.info("%s", verdict(res.metrics, s.test.alpha))
    plot_confusion(
        res.confusion,
        res.classes,
        paths.CONFUSION_PNG,
        title=f"{s.label}: {meta['model_method']} (row-normalised)",
    )
    write_csv(res.report, paths.CLASSIFICATION_REPORT, index=True)
    write_csv(res.predictions, paths.PREDICTIONS)
    write_json(headline(res.metrics, s.test.alpha), paths.TEST_METRICS)
    write_json(res.metrics, paths.TEST_DETAILS)
    outputs = (
        paths.TEST_METRICS,
        paths.TEST_DETAILS,
        paths.CLASSIFICATION_REPORT,
        paths.PREDICTIONS,
        paths.CONFUSION_PNG,
    )
    log.info("wrote %s", ", ".join(map(str, outputs)))


if __name__ == "__main__":
    run(main, "test")
