"""The presence table's verdict: each label's own p-value corrected across the table's labels."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from statsmodels.stats.multitest import multipletests

PRESENT = "present"
NOT_SHOWN = "not shown"
NO_RESULT = "no result"

RULE = ("A label is present when the permutation p-value of its chosen configuration (chosen on training-side "
        "scores only), corrected across the labels of this table, is at most alpha, and the lower end of its "
        "speaker-bootstrap 95% interval lies above chance.")


def table_verdicts(p_values: Mapping[str, float], ci_low: Mapping[str, float], chance: Mapping[str, float],
                   alpha: float, correction: str = "holm") -> dict[str, dict]:
    """Per label: ``p_adjusted`` across the labels and the ``verdict``."""
    labels = list(p_values)
    p = np.array([p_values[k] for k in labels], dtype=float)
    p = np.where(np.isnan(p), 1.0, p)
    adjusted = multipletests(p, method=correction)[1] if len(p) else p
    out = {}
    for k, pa, raw in zip(labels, adjusted, (p_values[k] for k in labels)):
        if raw is None or math.isnan(raw):
            out[k] = {"p_adjusted": math.nan, "verdict": NO_RESULT}
            continue
        above = ci_low[k] > chance[k]
        out[k] = {"p_adjusted": float(pa), "verdict": PRESENT if pa <= alpha and above else NOT_SHOWN}
    return out
