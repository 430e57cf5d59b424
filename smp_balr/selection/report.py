"""``metrics/selection.json``: per label and method, how many selected, quality vs planted truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from smp_balr.core import paths
from smp_balr.data.tables import read_features
from smp_balr.selection.quality import precision_recall

log = logging.getLogger(__name__)


def _entry(features: list[str], truth: list[str] | None, extra: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"n_selected": len(features), **extra}
    if truth is not None:
        pr = precision_recall(features, truth)
        entry.update(n_truth=pr["n_truth"], precision=pr["precision"], recall=pr["recall"])
    return entry


def build_report(
    labels: Sequence[str],
    selectors: Sequence[str],
    truth: dict[str, list[str]] | None,
    common: bool = True,
) -> dict[str, Any]:
    """Collect the selection summary.

    Parameters
    ----------
    labels, selectors : sequence of str
        The ``labels`` and ``selection.selectors`` parameters.
    truth : dict or None
        Planted BAs per label (demo corpus only).
    common : bool
        Also report each label's intersection ``features/<label>_common_features.csv``
        (stage ``common@<label>``) under the key ``common``.

    Returns
    -------
    dict
        ``{label: {method: {n_selected, unit, n_rows, n_units, [n_truth, precision, recall]},
        "common": {n_selected, n_files, [n_truth, precision, recall]}}}``.
    """
    report: dict[str, Any] = {}
    for label in labels:
        per: dict[str, Any] = {}
        label_truth = None if truth is None else truth.get(label)
        for method in selectors:
            feats = read_features(
                paths.features_file(label, method), f"select@{label}-{method}", allow_empty=True
            )
            per[method] = _entry(
                feats,
                label_truth,
                _info(paths.selection_info(label, method), ("unit", "n_rows", "n_units")),
            )
        if common:
            feats = read_features(
                paths.features_file(label, "common"), f"common@{label}", allow_empty=True
            )
            per["common"] = _entry(
                feats, label_truth, _info(paths.common_info(label), ("n_files",))
            )
        report[label] = per
    return report


def _info(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``keys`` present in a stage's info JSON (nothing if the file is absent or unreadable)."""
    try:
        info = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        log.warning("%s is not valid JSON; its details are left out of the report", path)
        return {}
    return {k: info[k] for k in keys if k in info}
