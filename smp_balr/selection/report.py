"""``metrics/selection.json``: per label and method, the number selected and quality vs planted truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from smp_balr import paths
from smp_balr.errors import UserError
from smp_balr.selection.quality import precision_recall

log = logging.getLogger(__name__)


def load_truth(path: str | Path) -> dict[str, list[str]] | None:
    """Planted BA names per label (list-valued entries of the truth JSON), or None if absent."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"truth file {path} is not valid JSON ({err.msg}); rerun `dvc repro demo`") from None
    return {k: [str(x) for x in v] for k, v in raw.items() if isinstance(v, list)}


def read_features(path: str | Path, made_by: str) -> list[str]:
    """The ``Feature`` column of a feature file (empty list for an empty selection)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"feature file {path} not found; run `dvc repro {made_by}` first")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "Feature" not in df.columns:
        raise UserError(f"feature file {path} has no 'Feature' column; rerun `dvc repro {made_by}`")
    return [f for f in df["Feature"] if f]


def _entry(features: list[str], truth: list[str] | None, extra: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"n_selected": len(features), **extra}
    if truth is not None:
        pr = precision_recall(features, truth)
        entry.update(n_truth=pr["n_truth"], precision=pr["precision"], recall=pr["recall"])
    return entry


def build_report(
    labels: Sequence[str],
    selectors: Sequence[str],
    commons: Sequence[dict[str, Any]],
    truth: dict[str, list[str]] | None,
) -> dict[str, Any]:
    """Collect the selection summary.

    Parameters
    ----------
    labels, selectors : sequence of str
        The ``labels`` and ``selection.selectors`` parameters.
    commons : sequence of dict
        The ``selection.common`` entries (``output``, ``include``, ``exclude``).
    truth : dict or None
        Planted BAs per label (demo corpus only).

    Returns
    -------
    dict
        ``{label: {method: {n_selected, unit, [n_truth, precision, recall]}}, "common": {output: ...}}``.
    """
    report: dict[str, Any] = {}
    for label in labels:
        per: dict[str, Any] = {}
        for method in selectors:
            feats = read_features(paths.features_file(label, method), f"select@{label}-{method}")
            info_path = paths.selection_info(label, method)
            info = json.loads(info_path.read_text()) if info_path.is_file() else {}
            extra = {k: info[k] for k in ("unit", "n_rows", "n_units") if k in info}
            per[method] = _entry(feats, None if truth is None else truth.get(label), extra)
        report[label] = per
    common: dict[str, Any] = {}
    for entry in commons:
        out = str(entry["output"])
        feats = read_features(paths.common_file(out), "common")
        owner = next((lab for lab in labels if out.startswith(f"{lab}_")), None)
        t = None if truth is None or owner is None else truth.get(owner)
        common[out] = _entry(feats, t, {"label": owner} if owner else {})
    if common:
        report["common"] = common
    return report
