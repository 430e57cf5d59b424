"""Multiple-testing corrections: adjusted p-values and rejections of a family of tests.

One implementation for every family the project corrects over: the candidate BAs of a
selection method (:mod:`smp_balr.selection.multiple`) and the labels of a presence table
(:mod:`smp_balr.evaluation.verdict`).

``bonferroni``
    family-wise error rate (FWER): ``min(1, m p)``.
``holm``
    FWER, step-down: along the ascending order, ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
``fdr_bh``
    false discovery rate (Benjamini-Hochberg step-up): ``min_{j >= i} min(1, m p_(j) / j)``.
``none``
    the p-values unchanged.

A missing p-value (NaN: no result) counts as 1: it stays in the family (``m`` counts it)
and is never rejected. The adjusted p-values equal those of
``statsmodels.stats.multitest.multipletests`` (tests/test_multitest.py checks it).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from smp_balr.core.errors import UserError

#: corrections implemented here, in the order the settings list them
METHODS: tuple[str, ...] = ("bonferroni", "holm", "fdr_bh", "none")


def _prepare(
    p_values: np.ndarray | list[float], check: bool = True
) -> tuple[np.ndarray, tuple[int, ...]]:
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    if check and np.any((flat < 0) | (flat > 1)):
        raise ValueError("p-values must lie in [0, 1] (NaN for no result)")
    return np.where(np.isnan(flat), 1.0, flat), p.shape


def bonferroni(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Bonferroni adjusted p-values ``min(1, m p)``.

    Parameters
    ----------
    p_values : array-like of float
        The family (any shape; NaN counts as 1).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape.

    Examples
    --------
    >>> bonferroni([0.01, 0.02, float("nan"), 0.5]).tolist()
    [0.04, 0.08, 1.0, 1.0]
    """
    p, shape = _prepare(p_values)
    return np.minimum(1.0, p * p.size).reshape(shape)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    Parameters
    ----------
    p_values : array-like of float
        The family (any shape; NaN counts as 1).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order and shape:
        ``max_{j <= i} min(1, (m - j + 1) p_(j))`` along the ascending order.

    Examples
    --------
    >>> holm([0.03, 0.01, 0.04, 0.02]).round(6).tolist()
    [0.06, 0.04, 0.06, 0.06]
    >>> holm([0.01, float("nan")]).tolist()
    [0.02, 1.0]
    """
    p, shape = _prepare(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.reshape(shape)


def fdr_bh(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): the smallest FDR level that rejects each.

    Parameters
    ----------
    p_values : array-like of float
        The family (any shape; NaN counts as 1).

    Returns
    -------
    numpy.ndarray
        ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` in the input order and shape.

    Examples
    --------
    >>> fdr_bh([0.01, 0.04, 0.03, 0.5]).round(6).tolist()
    [0.04, 0.053333, 0.053333, 0.5]
    """
    p, shape = _prepare(p_values)
    m = p.size
    if m == 0:
        return p.reshape(shape)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out.reshape(shape)


def _none(p_values: np.ndarray | list[float]) -> np.ndarray:
    p, shape = _prepare(p_values)
    return p.reshape(shape)


_ADJUST: dict[str, Callable[[np.ndarray | list[float]], np.ndarray]] = {
    "bonferroni": bonferroni,
    "holm": holm,
    "fdr_bh": fdr_bh,
    "none": _none,
}


def adjust(p_values: np.ndarray | list[float], method: str) -> np.ndarray:
    """Adjusted p-values under ``method`` (one of :data:`METHODS`).

    Examples
    --------
    >>> adjust([0.01, 0.02], "holm").tolist()
    [0.02, 0.02]
    """
    if method not in _ADJUST:
        raise ValueError(f"unknown correction {method!r}; use one of {', '.join(METHODS)}")
    return _ADJUST[method](p_values)


def reject(
    p_values: np.ndarray | list[float], alpha: float, method: str
) -> tuple[np.ndarray, float]:
    """Which p-values are rejected under ``method`` at family level ``alpha``.

    Each ordered p-value is compared with its own level (as statsmodels does), so a
    p-value exactly at its level is rejected without rounding of ``m p``:
    ``bonferroni`` ``alpha / m``; ``holm`` ``alpha / (m - k + 1)`` for the k-th smallest,
    stopping at the first failure; ``fdr_bh`` ``k alpha / m``, rejecting the ``k``
    smallest for the largest passing ``k``; ``none`` ``alpha``. Rejecting is the same as
    ``adjust(p, method) <= alpha`` up to floating-point rounding.

    Parameters
    ----------
    p_values : array-like of float
        The family (any shape; NaN counts as 1).
    alpha : float
        Family level (FWER for bonferroni/holm, FDR for fdr_bh, per test for none).
    method : str
        One of :data:`METHODS`.

    Returns
    -------
    (numpy.ndarray of bool, float)
        Rejections (same shape as ``p_values``) and the per-test p-value threshold that was
        applied: every rejected p-value is at most it. For holm and fdr_bh this is the
        level of the last rejected rank (or the first, most strict level when none is
        rejected).

    Examples
    --------
    >>> rej, thr = reject([0.004, 0.02, 0.013, 0.5], 0.05, "holm")
    >>> rej.tolist(), round(thr, 6)
    ([True, True, True, False], 0.025)
    """
    if method not in _ADJUST:
        raise ValueError(f"unknown correction {method!r}; use one of {', '.join(METHODS)}")
    flat, shape = _prepare(p_values, check=False)  # comparisons need no range check
    m = flat.size
    if m == 0:
        return np.zeros(shape, dtype=bool), float(alpha)
    if method == "none":
        return (flat <= alpha).reshape(shape), float(alpha)
    if method == "bonferroni":
        thr = alpha / m
        return (flat <= thr).reshape(shape), float(thr)
    order = np.argsort(flat, kind="stable")
    ranks = np.arange(1, m + 1)
    if method == "holm":
        limits = alpha / (m - ranks + 1)
        ok = flat[order] <= limits
        n_pass = m if ok.all() else int(np.argmin(ok))
    else:  # fdr_bh: step-up
        limits = alpha * ranks / m
        passing = np.flatnonzero(flat[order] <= limits)
        n_pass = int(passing[-1]) + 1 if passing.size else 0
    thr = float(limits[n_pass - 1]) if n_pass else float(limits[0])
    out = np.zeros(m, dtype=bool)
    out[order[:n_pass]] = True
    return out.reshape(shape), thr


#: "well below": the floor 1/(B+1) of a permutation p-value is at most alpha / (MARGIN K)
MARGIN = 10


def required_permutations(alpha: float, n_labels: int, margin: int = MARGIN) -> int:
    """Permutations ``B`` whose p-value floor ``1 / (B + 1)`` is at most ``alpha / (margin K)``.

    With Holm over K labels the strictest level is ``alpha / K``; a clearly present label
    gets the floor p-value, so its corrected p is at most ``K / (B + 1) <= alpha / margin``:
    the grid of reachable p-values does not decide the verdict. With ``margin = 10`` a
    p-value exactly at ``alpha / K`` is also estimated to about 30% relative Monte-Carlo
    error (``sqrt(1 / margin)``).

    Parameters
    ----------
    alpha : float
        Level of the table.
    n_labels : int
        Labels of the table (K).
    margin : int
        How far below ``alpha / K`` the floor must lie ("well below": 10 times).

    Returns
    -------
    int
        ``ceil(margin K / alpha) - 1``.

    Examples
    --------
    >>> (required_permutations(0.05, 5), required_permutations(0.01, 5),
    ...  required_permutations(0.05, 1))
    (999, 4999, 199)
    """
    if not 0 < alpha < 1 or n_labels < 1 or margin < 1:
        raise ValueError("alpha must be in (0, 1), n_labels and margin at least 1")
    # the small tolerance keeps 10 * 5 / 0.05 = 1000.0000000000001 at 1000
    return max(1, math.ceil(margin * n_labels / alpha - 1e-9) - 1)


def check_permutations(
    n_permutations: int,
    alpha: float,
    n_labels: int,
    setting: str = "test.n_permutations",
    margin: int = MARGIN,
) -> int:
    """Refuse too few permutations for a table of ``n_labels`` at ``alpha``.

    Used by the ``check`` stage.

    Returns ``n_permutations`` when it is at least :func:`required_permutations`, else
    raises a one-line :class:`~smp_balr.core.errors.UserError` naming the setting and the number
    needed. (Refusing is recommended over raising B silently: params.yaml then states the
    permutations that ran; ``max(n_permutations, required_permutations(...))`` is the
    automatic alternative.)

    Examples
    --------
    >>> check_permutations(1000, 0.05, 5)
    1000
    >>> check_permutations(1000, 0.01, 5)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    smp_balr.core.errors.UserError: params.yaml: test.n_permutations is 1000, too few for 5 labels
    at alpha 0.01: the p-value floor 1/(B+1) must be at most alpha/(10 x 5); set it to at least 4999
    """
    need = required_permutations(alpha, n_labels, margin)
    if int(n_permutations) < need:
        raise UserError(
            f"params.yaml: {setting} is {n_permutations}, too few for {n_labels} labels at alpha "
            f"{alpha:g}: the p-value floor 1/(B+1) must be at most alpha/({margin} x {n_labels}); "
            f"set it to at least {need}"
        )
    return int(n_permutations)
