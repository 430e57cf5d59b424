"""One entry point for every selection method: :func:`select`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import pandas as pd

from smp_balr.core.errors import UserError
from smp_balr.core.options import SELECTORS
from smp_balr.core.settings import SelectionSettings
from smp_balr.data.tables import ba_columns, ba_matrix, require_label, too_few_classes
from smp_balr.selection import units
from smp_balr.selection.allsel import all_features
from smp_balr.selection.bayes import bayes_select
from smp_balr.selection.slda import forward_stepwise

log = logging.getLogger(__name__)

METHODS = SELECTORS


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


def check_classes(
    y: pd.Series, label: str, where: str = "the training rows", keep: list[str] | None = None
) -> None:
    """At least 2 classes, each with at least 2 rows; else one clear error line.

    ``keep`` is the class filter ``classes.<label>`` when one is configured (named in the hint).
    """
    counts = y.value_counts()
    if len(counts) < 2:
        raise UserError(too_few_classes(label, counts, where, keep))
    small = counts[counts < 2]
    if len(small):
        raise UserError(
            f"label '{label}': class(es) "
            f"{', '.join(f'{k} ({v} row)' for k, v in small.items())} in {where} "
            f"have fewer than 2 rows; drop them with `classes.{label}` in params.yaml"
        )


def check_method(method: str) -> None:
    """Refuse a selection method other than :data:`METHODS` with one line.

    Examples
    --------
    >>> check_method("slda")
    >>> check_method("lasso")
    Traceback (most recent call last):
    ...
    smp_balr.core.errors.UserError: unknown selection method 'lasso'; use one of all, slda, bayes
        (selection.selectors)
    """
    if method not in METHODS:
        raise UserError(
            f"unknown selection method '{method}'; use one of {', '.join(METHODS)} "
            "(selection.selectors)"
        )


def run_selection(
    df: pd.DataFrame, label: str, method: str, settings: SelectionSettings, seed: int
) -> SelectionOutput:
    """Select BAs for ``label`` with ``method``.

    Parameters
    ----------
    df : pandas.DataFrame
        Training rows (already class-filtered): ``Speaker``, ``label`` and ``BA*`` columns.
    label : str
        Label column.
    method : str
        ``all``, ``slda`` or ``bayes``.
    settings : SelectionSettings
        Unit, correction and the method's own settings (validated by :mod:`smp_balr.core.settings`).
    seed : int
        Seed for random steps (bayes subsample and inference).

    Returns
    -------
    SelectionOutput

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from smp_balr.core.settings import SelectionSettings
    >>> rng = np.random.default_rng(0)
    >>> y = rng.choice(["calm", "loud"], 600)
    >>> df = pd.DataFrame({"Speaker": np.repeat([f"s{k}" for k in range(30)], 20), "Style": y,
    ...                    "BA0": ((y == "loud") ^ (rng.random(600) < 0.2)).astype(np.int8),
    ...                    "BA1": rng.integers(0, 2, 600, dtype=np.int8),
    ...                    "BA2": np.zeros(600, dtype=np.int8)})
    >>> run_selection(df, "Style", "all", SelectionSettings(), seed=0).features["Feature"].tolist()
    ['BA0', 'BA1']
    >>> run_selection(df, "Style", "slda", SelectionSettings(), seed=0).features["Feature"].tolist()
    ['BA0']
    """
    check_method(method)
    unit, correction = settings.unit, settings.correction
    require_label(df, label, "the training table")
    names = ba_columns(df)
    y_series = df[label].astype(str)
    check_classes(y_series, label)
    X = ba_matrix(df, names)  # int8: the methods widen only what they need
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
            p_enter=settings.slda.p_enter,
            p_remove=settings.slda.p_remove,
            correction=correction,
            max_features=settings.slda.max_features,
            absorbed_dof=data.absorbed_dof,
            groups=data.groups,
            permutations=settings.slda.permutations,
            seed=seed,
        )
        log.info(
            "slda: %d of %d candidate BAs selected, final Wilks' lambda %.6f (%s)",
            len(res.table),
            res.n_candidates,
            res.wilks_lambda,
            res.history[-1] if res.history else "",
        )
        return SelectionOutput(res.table, None, data.unit, len(data.y))
    res_b = bayes_select(
        data.matrix(),
        data.y,
        names,
        correction=correction,
        seed=seed,
        groups=data.groups,
        **asdict(settings.bayes),
    )
    return SelectionOutput(res_b.selected, res_b.table, data.unit, len(data.y))


def select(
    df: pd.DataFrame, label: str, method: str, settings: SelectionSettings, seed: int
) -> pd.DataFrame:
    """Selected BAs (``Feature`` first, in rank order, with statistics): :func:`run_selection`."""
    return run_selection(df, label, method, settings, seed).features
