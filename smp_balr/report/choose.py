"""Choosing the configuration per label on the training side, Holm correction and the verdict."""

from __future__ import annotations

import math
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from smp_balr.errors import UserError
from smp_balr.report.collect import CONFIG_KEYS

PRESENT = "present"
NOT_SHOWN = "not shown"
NO_RESULT = "no result"


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    Parameters
    ----------
    p_values : sequence of float
        One p-value per hypothesis in the family; NaN (no result) counts as 1.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order: ``max_{j <= i} min(1, (m - j + 1) p_(j))``
        along the ascending order.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError("holm expects a one-dimensional sequence of p-values")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    p = np.where(np.isnan(p), 1.0, p)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out


def verdict(p_adjusted: float, alpha: float) -> str:
    """``present`` when the corrected p-value is at most ``alpha``, ``not shown`` otherwise (or no result)."""
    if not 0 < alpha < 1:
        raise UserError(f"params.yaml: report.alpha must be between 0 and 1, got {alpha}")
    if p_adjusted is None or math.isnan(p_adjusted):
        return NO_RESULT
    return PRESENT if p_adjusted <= alpha else NOT_SHOWN


def choose_configuration(selection_scores: Mapping[Hashable, Sequence[float]]) -> Hashable | None:
    """The configuration with the highest mean training-side score.

    Only training-side scores are passed in (speaker-grouped CV, held-out training
    speakers), so no test-set number can influence the choice. Ties go to the first
    configuration in the mapping's order; configurations without a finite score are skipped.

    Parameters
    ----------
    selection_scores : mapping
        Configuration -> its scores (one per seed).

    Returns
    -------
    hashable or None
        The chosen configuration, None when no configuration has a score.
    """
    best, best_score = None, -math.inf
    for config, scores in selection_scores.items():
        vals = [float(s) for s in scores if s is not None and math.isfinite(float(s))]
        if not vals:
            continue
        mean = float(np.mean(vals))
        if mean > best_score:
            best, best_score = config, mean
    return best


def config_key(row: Mapping[str, Any]) -> tuple:
    """A configuration as a tuple (features, model, balance)."""
    return tuple(row[k] for k in CONFIG_KEYS)


def config_label(config: Sequence[Any]) -> str:
    """A configuration as text, e.g. ``slda / dt / balance 2``."""
    features, model, balance = config
    return f"{features} / {model} / balance {balance}"


def summarise_configurations(frame: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of one label: seeds, training-side score and test figures across seeds.

    With several seeds the test figures are the mean and the standard deviation across
    seeds, the interval spans the seeds' intervals, and the p-value is the largest of the
    seeds' (present only if present with every seed: a valid level-alpha test).
    A configuration whose experiments all failed has no figures and p-value NaN.
    """
    rows = []
    for config, part in frame.groupby(list(CONFIG_KEYS), sort=False, dropna=False):
        ok = part[part["status"] == "success"]
        ba = ok["balanced_accuracy"].dropna()
        rows.append({
            "config": tuple(config), "n_runs": len(part), "n_ok": len(ok),
            "seeds": sorted(map(str, part["seed"].tolist())),
            "selection_scores": ok["selection_score"].tolist(),
            "selection_mean": float(ok["selection_score"].mean()) if ok["selection_score"].notna().any() else math.nan,
            "selection_sd": float(ok["selection_score"].std(ddof=1)) if ok["selection_score"].notna().sum() > 1 else math.nan,
            "chance": float(ok["chance"].mean()) if len(ok) else math.nan,
            "ba_mean": float(ba.mean()) if len(ba) else math.nan,
            "ba_sd": float(ba.std(ddof=1)) if len(ba) > 1 else math.nan,
            "ci_low": float(ok["ci_low"].min()) if len(ok) else math.nan,
            "ci_high": float(ok["ci_high"].max()) if len(ok) else math.nan,
            "p_value": float(ok["p_value"].max()) if ok["p_value"].notna().all() and len(ok) == len(part) else math.nan,
            "names": ok["name"].tolist(), "revs": ok["rev"].tolist(),
        })
    return pd.DataFrame(rows)


def presence_row(frame: pd.DataFrame, alpha: float) -> dict[str, Any]:
    """The presence-table entry of one label from its experiments.

    The configuration is chosen by :func:`choose_configuration` on the training-side
    scores alone; its p-value is Holm-corrected over every configuration tried for the
    label (a configuration that failed, or failed with some seed, counts with p = 1).
    """
    summary = summarise_configurations(frame)
    scores = {row.config: row.selection_scores for row in summary.itertuples()}
    chosen = choose_configuration(scores)
    adjusted = holm(summary["p_value"].to_numpy()) if len(summary) else np.array([])
    entry: dict[str, Any] = {"n_configurations": len(summary), "n_failed": int((frame["status"] != "success").sum()),
                             "chosen": chosen}
    if chosen is None:
        entry.update(verdict=NO_RESULT, p_value=math.nan, p_holm=math.nan)
        return entry
    i = int(np.flatnonzero([c == chosen for c in summary["config"]])[0])
    row = summary.iloc[i]
    entry.update({k: row[k] for k in ("selection_mean", "selection_sd", "chance", "ba_mean", "ba_sd", "ci_low",
                                      "ci_high", "p_value", "names", "revs", "seeds", "n_ok")})
    entry["p_holm"] = float(adjusted[i])
    entry["verdict"] = verdict(entry["p_holm"], alpha)
    return entry
