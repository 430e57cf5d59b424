"""One entry point for every selection method: :func:`select`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from smp_balr.errors import UserError
from smp_balr.params import as_choice, as_float, as_int, check_keys
from smp_balr.selection import units
from smp_balr.selection.allsel import all_features
from smp_balr.selection.bayes import bayes_select
from smp_balr.selection.multiple import CORRECTIONS
from smp_balr.selection.slda import forward_stepwise
from smp_balr.tables import ba_columns, require_label

log = logging.getLogger(__name__)

METHODS = ("all", "slda", "bayes")
BAYES_METHODS = ("laplace", "vi", "mcmc")
# the settings each block of `selection` may hold (misspelt keys are refused, never ignored)
SELECTION_KEYS = ("selectors", "unit", "correction", "all", "slda", "bayes", "common")
BLOCK_KEYS = {
    "all": (),
    "slda": ("p_enter", "p_remove", "max_features", "permutations"),
    "bayes": ("method", "prior_sigma", "intercept_sigma", "p_direction", "hdi_prob", "max_rows", "vi_iterations", "draws",
              "null_fits"),
}


@dataclass
class SelectionOutput:
    """What a method produced.

    Attributes
    ----------
    features : pandas.DataFrame
        ``Feature`` first, in rank order, plus the method's statistics columns.
    table : pandas.DataFrame or None
        Detail table (bayes: every BA x non-reference class), else None.
    unit : str
        Unit of analysis used (``-`` for ``all``).
    n_units : int
        Rows the method analysed (speakers, or speaker x class cells, for unit ``speaker``).
    """

    features: pd.DataFrame
    table: pd.DataFrame | None
    unit: str
    n_units: int


def check_classes(y: pd.Series, label: str, where: str = "the training rows") -> None:
    """At least 2 classes, each with at least 2 rows; else one clear error line."""
    counts = y.value_counts()
    if len(counts) < 2:
        raise UserError(
            f"label '{label}' has {len(counts)} class(es) in {where} after the class filter "
            f"({', '.join(map(str, counts.index)) or 'none'}); selection needs at least 2 — fix `classes.{label}` in params.yaml"
        )
    small = counts[counts < 2]
    if len(small):
        raise UserError(
            f"label '{label}': class(es) {', '.join(f'{k} ({v} row)' for k, v in small.items())} in {where} "
            f"have fewer than 2 rows; drop them with `classes.{label}` in params.yaml"
        )


def _optional(value: Any, read: Any, *args: Any) -> Any:
    return None if value is None else read(value, *args)


def _positive(value: Any, key: str) -> float:
    out = as_float(value, key)
    if out <= 0:
        raise UserError(f"params.yaml: {key} must be greater than 0, got {value!r}")
    return out


def method_settings(settings: dict[str, Any], method: str) -> dict[str, Any]:
    """Validated, typed settings of ``selection.<method>`` (defaults filled in).

    Parameters
    ----------
    settings : dict
        The ``selection`` parameters.
    method : str
        ``all``, ``slda`` or ``bayes``.

    Returns
    -------
    dict
        ``slda``: ``p_enter, p_remove, max_features, permutations``; ``bayes``: ``method,
        prior_sigma, intercept_sigma, p_direction, hdi_prob, max_rows, vi_iterations, draws,
        null_fits``; ``all``: ``{}``.

    Raises
    ------
    UserError
        A key not in :data:`BLOCK_KEYS` (naming it) or a wrongly typed / out-of-range value.
    """
    key = f"selection.{method}"
    cfg = check_keys(settings.get(method), key, BLOCK_KEYS[method])
    if method == "slda":
        return {
            "p_enter": as_float(cfg.get("p_enter", 0.05), f"{key}.p_enter", 0.0, 1.0),
            "p_remove": _optional(cfg.get("p_remove"), as_float, f"{key}.p_remove", 0.0, 1.0),
            "max_features": _optional(cfg.get("max_features", 200), as_int, f"{key}.max_features", 1),
            "permutations": as_int(cfg.get("permutations", 199), f"{key}.permutations", 0),
        }
    if method == "bayes":
        return {
            "method": as_choice(cfg.get("method", "laplace"), f"{key}.method", BAYES_METHODS),
            "prior_sigma": _positive(cfg.get("prior_sigma", 1.0), f"{key}.prior_sigma"),
            "intercept_sigma": _positive(cfg.get("intercept_sigma", 5.0), f"{key}.intercept_sigma"),
            "p_direction": as_float(cfg.get("p_direction", 0.95), f"{key}.p_direction", 0.5, 1.0),
            "hdi_prob": as_float(cfg.get("hdi_prob", 0.95), f"{key}.hdi_prob", 0.0, 1.0),
            "max_rows": _optional(cfg.get("max_rows", 8000), as_int, f"{key}.max_rows", 2),
            "vi_iterations": as_int(cfg.get("vi_iterations", 20000), f"{key}.vi_iterations", 1),
            "draws": as_int(cfg.get("draws", 1000), f"{key}.draws", 1),
            "null_fits": as_int(cfg.get("null_fits", 2), f"{key}.null_fits", 0),
        }
    return {}


def run_selection(df: pd.DataFrame, label: str, method: str, settings: dict[str, Any], seed: int) -> SelectionOutput:
    """Select BAs for ``label`` with ``method``.

    Parameters
    ----------
    df : pandas.DataFrame
        Training rows (already class-filtered): ``Speaker``, ``label`` and ``BA*`` columns.
    label : str
        Label column.
    method : str
        ``all``, ``slda`` or ``bayes``.
    settings : dict
        The ``selection`` parameters: ``unit``, ``correction`` (bonferroni | holm | fdr_bh |
        none, see :mod:`smp_balr.selection.multiple`), ``slda: {p_enter, p_remove,
        max_features, permutations}``, ``bayes: {method, prior_sigma, intercept_sigma,
        p_direction, hdi_prob, max_rows, vi_iterations, draws, null_fits}``.
    seed : int
        Seed for random steps (bayes subsample and inference).

    Returns
    -------
    SelectionOutput
    """
    if method not in METHODS:
        raise UserError(f"unknown selection method '{method}'; use one of {', '.join(METHODS)} (selection.selectors)")
    cfg = method_settings(settings, method)
    unit = as_choice(settings.get("unit", "auto"), "selection.unit", units.UNITS)
    correction = as_choice(settings.get("correction", "bonferroni"), "selection.correction", CORRECTIONS)
    seed = as_int(seed, "seed", 0)
    require_label(df, label, "the training table")
    names = ba_columns(df)
    y_series = df[label].astype(str)
    check_classes(y_series, label)
    X = df[names].to_numpy(dtype=np.float64)
    if method == "all":
        return SelectionOutput(all_features(X, names), None, "-", len(X))
    if "Speaker" not in df.columns:
        raise UserError("the training table has no 'Speaker' column; rerun `dvc repro format`")
    data = units.prepare(X, y_series.to_numpy(), df["Speaker"].astype(str).to_numpy(), unit)
    if data.unit == "speaker":
        check_classes(pd.Series(data.y), label, "the speaker-level rows")
    if method == "slda":
        res = forward_stepwise(
            data.X,
            data.y,
            names=names,
            p_enter=cfg["p_enter"],
            p_remove=cfg["p_remove"],
            correction=correction,
            max_features=cfg["max_features"],
            absorbed_dof=data.absorbed_dof,
            groups=data.groups,
            permutations=cfg["permutations"],
            seed=seed,
        )
        log.info("slda: %d of %d candidate BAs selected, final Wilks' lambda %.6f (%s)",
                 len(res.table), res.n_candidates, res.wilks_lambda, res.history[-1] if res.history else "")
        return SelectionOutput(res.table, None, data.unit, len(data.y))
    res_b = bayes_select(data.matrix(), data.y, names, correction=correction, seed=seed, groups=data.groups, **cfg)
    return SelectionOutput(res_b.selected, res_b.table, data.unit, len(data.y))


def select(df: pd.DataFrame, label: str, method: str, settings: dict[str, Any], seed: int) -> pd.DataFrame:
    """Selected BAs (``Feature`` first, in rank order, plus statistics columns); see :func:`run_selection`."""
    return run_selection(df, label, method, settings, seed).features
