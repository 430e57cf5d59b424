"""The configurations of a study grid, their summary across seeds, and the choice among them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

#: the keys that make a configuration (without its seed)
CONFIG_KEYS = ("features", "model", "balance")


@dataclass(frozen=True)
class Configuration:
    """One point of the study grid.

    Examples
    --------
    >>> c = Configuration("slda", "logreg", 2, 42)
    >>> c.key, c.text
    (('slda', 'logreg', 2), 'slda / logreg / balance 2')
    """

    features: str
    model: str
    balance: int
    seed: int

    @property
    def key(self) -> tuple:
        """The configuration without its seed (what the choice is made among)."""
        return (self.features, self.model, self.balance)

    @property
    def text(self) -> str:
        """The configuration as text, e.g. ``slda / dt / balance 2``."""
        return config_text(self.key)


def config_text(key: Sequence) -> str:
    """``(features, model, balance)`` as text, e.g. ``slda / dt / balance 2``."""
    features, model, balance = key
    return f"{features} / {model} / balance {balance}"


# models by typical cost, dearest first: started first, they do not leave a worker alone at the end
_COST = {"mlp": 0, "dt": 1, "logreg": 2}


def configurations(
    features: Sequence[str], models: Sequence[str], balance: Sequence[int], seeds: Sequence[int]
) -> list[Configuration]:
    """Every configuration of the grid, in the grid's order.

    Examples
    --------
    >>> [c.text for c in configurations(["all"], ["dt", "mlp"], [0], [1])]
    ['all / dt / balance 0', 'all / mlp / balance 0']
    """
    return [
        Configuration(f, m, int(b), int(s))
        for f, m, b, s in itertools.product(features, models, balance, seeds)
    ]


def run_order(
    configs: Sequence[Configuration], n_features: Mapping[str, int] | None = None
) -> list[int]:
    """Indices of ``configs`` in the order to start them: dearest first.

    Largest BA lists first (``n_features``: BAs of each ``features`` value, 0 for one that
    cannot be used), then by model (mlp, dt, logreg), so that the long fits do not end the
    run on one busy worker. The results keep the grid's order.

    Examples
    --------
    >>> grid = configurations(["slda", "all"], ["logreg", "mlp"], [0], [1])
    >>> for i in run_order(grid, {"all": 500, "slda": 20}):
    ...     print(grid[i].text)
    all / mlp / balance 0
    all / logreg / balance 0
    slda / mlp / balance 0
    slda / logreg / balance 0
    """
    sizes = n_features or {}
    return sorted(
        range(len(configs)),
        key=lambda i: (-sizes.get(configs[i].features, 0), _COST.get(configs[i].model, 9), i),
    )


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of one label's results table, across its seeds.

    The training-side score is averaged over the seeds that succeeded; the test figures
    are the mean and standard deviation across seeds, the interval spans the seeds'
    intervals, and the p-value is the largest of the seeds' (a configuration is present
    only if it is with every seed: a valid level-alpha test). A configuration that failed
    with some seed has p-value NaN.

    Examples
    --------
    >>> r = pd.DataFrame({"features": ["all"] * 2, "model": ["dt"] * 2, "balance": [0, 0],
    ...                   "seed": [1, 2], "status": ["success"] * 2,
    ...                   "selection_score": [0.6, 0.8], "chance": [0.5, 0.5],
    ...                   "balanced_accuracy": [0.7, 0.9], "ci_low": [0.6, 0.8],
    ...                   "ci_high": [0.8, 0.95], "p_value": [0.01, 0.002]})
    >>> s = summarise(r)
    >>> float(s.loc[0, "selection_mean"]), float(s.loc[0, "p_value"]), float(s.loc[0, "ci_low"])
    (0.7, 0.01, 0.6)
    """
    rows = []
    for key, part in results.groupby(list(CONFIG_KEYS), sort=False, dropna=False):
        ok = part[part["status"] == "success"]
        score = pd.to_numeric(ok["selection_score"], errors="coerce")
        ba = pd.to_numeric(ok["balanced_accuracy"], errors="coerce").dropna()
        p = pd.to_numeric(ok["p_value"], errors="coerce")
        rows.append(
            {
                **dict(zip(CONFIG_KEYS, key)),
                "n_runs": len(part),
                "n_ok": len(ok),
                "seeds": [int(s) for s in part["seed"]],
                "selection_scores": score.tolist(),
                "selection_mean": float(score.mean()) if score.notna().any() else math.nan,
                "selection_sd": float(score.std(ddof=1)) if score.notna().sum() > 1 else math.nan,
                "chance": float(pd.to_numeric(ok["chance"]).mean()) if len(ok) else math.nan,
                "ba_mean": float(ba.mean()) if len(ba) else math.nan,
                "ba_sd": float(ba.std(ddof=1)) if len(ba) > 1 else math.nan,
                "ci_low": float(pd.to_numeric(ok["ci_low"]).min()) if len(ok) else math.nan,
                "ci_high": float(pd.to_numeric(ok["ci_high"]).max()) if len(ok) else math.nan,
                "p_value": float(p.max()) if len(ok) == len(part) and p.notna().all() else math.nan,
                **_effects(ok),
            }
        )
    return pd.DataFrame(rows)


#: effect sizes summarised across seeds: the mean, and the widest interval
EFFECTS = ("ba_norm", "mi_bits", "mi_share")
#: the effect sizes with their interval ends, as the summaries and the metrics name them
EFFECT_KEYS = tuple(f"{e}{s}" for e in EFFECTS for s in ("", "_ci_low", "_ci_high"))
#: what a configuration's summary across seeds gives (chosen.json, the presence table)
SUMMARY_KEYS = (
    "selection_mean",
    "selection_sd",
    "chance",
    "ba_mean",
    "ba_sd",
    "ci_low",
    "ci_high",
    "p_value",
    *EFFECT_KEYS,
)


def _effects(ok: pd.DataFrame) -> dict[str, float]:
    out = {}
    for name in EFFECTS:
        if name not in ok.columns:
            continue
        values = pd.to_numeric(ok[name], errors="coerce")
        out[name] = float(values.mean()) if values.notna().any() else math.nan
        out[f"{name}_ci_low"] = (
            float(pd.to_numeric(ok[f"{name}_ci_low"], errors="coerce").min())
            if len(ok)
            else math.nan
        )
        out[f"{name}_ci_high"] = (
            float(pd.to_numeric(ok[f"{name}_ci_high"], errors="coerce").max())
            if len(ok)
            else math.nan
        )
    return out


def choose(selection_scores: Mapping[Hashable, Sequence[float]]) -> Hashable | None:
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

    Examples
    --------
    >>> choose({"a": [0.6, 0.7], "b": [0.9], "c": [float("nan")]})
    'b'
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
