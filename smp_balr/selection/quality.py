"""Quality of a selection against planted truth."""

from __future__ import annotations

from typing import Iterable


def precision_recall(
    selected: Iterable[str], truth: Iterable[str]
) -> dict[str, float | int | None]:
    """Precision and recall of ``selected`` against ``truth``.

    Returns
    -------
    dict
        ``n_selected, n_truth, true_positives, precision`` (None when nothing is selected)
        and ``recall`` (None when the truth is empty).
    """
    sel = list(dict.fromkeys(selected))
    true = set(truth)
    tp = sum(1 for s in sel if s in true)
    return {
        "n_selected": len(sel),
        "n_truth": len(true),
        "true_positives": tp,
        "precision": tp / len(sel) if sel else None,
        "recall": tp / len(true) if true else None,
    }
