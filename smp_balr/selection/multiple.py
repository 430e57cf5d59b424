"""Multiple-testing rules shared by the selection methods.

The corrections themselves are in :mod:`smp_balr.core.multitest`; this module adds the
``selection.correction`` check and the per-step levels of forward selection.

Every selection method makes one claim per candidate BA ("this BA carries the label").
The correction says which error rate over the whole family of candidates is held at the
method's level ``alpha``:

``bonferroni``
    family-wise error rate (FWER): each of the ``m`` tests at ``alpha / m``.
``holm``
    FWER, step-down: the k-th smallest p-value (k = 1..m) is compared with
    ``alpha / (m - k + 1)``; rejection stops at the first failure.
``fdr_bh``
    false discovery rate (Benjamini-Hochberg step-up): with ``p_(1) <= ... <= p_(m)``,
    reject the ``k`` smallest where ``k`` is the largest index with
    ``p_(k) <= k * alpha / m``. Holds the expected share of false claims among the
    claims at ``alpha`` for independent or positively dependent tests; it claims more
    than the FWER rules and is meant for screening candidate BAs.
``none``
    each test at ``alpha`` (no family-wise statement).

For forward stepwise selection (slda), where one BA enters per step and later p-values
are conditional on the BAs already in, the per-step entry levels are in
:func:`stepwise_threshold` (Benjamini-Gavrilov's multi-stage level for ``fdr_bh``).
"""

from __future__ import annotations

import numpy as np

from smp_balr.core import multitest
from smp_balr.core.errors import UserError
from smp_balr.core.options import CORRECTIONS


def check_correction(correction: str) -> str:
    """Return ``correction`` if it is one of :data:`CORRECTIONS`, else raise a one-line error."""
    if correction not in CORRECTIONS:
        raise UserError(
            f"selection.correction is '{correction}'; use one of {', '.join(CORRECTIONS)} "
            "in params.yaml"
        )
    return correction


def reject(pvalues: np.ndarray, alpha: float, correction: str) -> tuple[np.ndarray, float]:
    """Which p-values are rejected under ``correction`` at level ``alpha``.

    Parameters
    ----------
    pvalues : numpy.ndarray
        P-values of the family (any shape; NaN counts as 1).
    alpha : float
        Family level (FWER for bonferroni/holm, FDR for fdr_bh, per test for none).
    correction : str
        One of :data:`CORRECTIONS`.

    Returns
    -------
    (numpy.ndarray of bool, float)
        Rejections (same shape as ``pvalues``) and the per-test p-value threshold that was
        applied: every rejected p-value is at most it. For holm and fdr_bh this is the
        level of the last rejected rank (or the first, most strict level when none is
        rejected).
    """
    check_correction(correction)
    return multitest.reject(pvalues, alpha, correction)


def bh_adjusted(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): the smallest FDR level that rejects each.

    ``q_(k) = min_{j >= k} min(1, m p_(j) / j)``; rejecting ``q <= alpha`` is the same as
    :func:`reject` with ``fdr_bh`` at ``alpha``.
    """
    return multitest.fdr_bh(pvalues)


def stepwise_threshold(alpha: float, correction: str, m: int, q: int) -> float:
    """Entry level of forward stepwise selection when ``q`` candidates of ``m`` are already in.

    ``bonferroni``: ``alpha / m`` at every step; ``holm``: ``alpha / (m - q)``;
    ``fdr_bh``: Benjamini-Gavrilov's forward-selection level for the ``k = q + 1``-th entry,
    ``alpha * k / (m + 1 - k * (1 - alpha))``, which controls the false discovery rate of
    forward selection that stops at the first candidate failing its level; ``none``: ``alpha``.
    """
    check_correction(correction)
    m = max(int(m), 1)
    if correction == "bonferroni":
        return alpha / m
    if correction == "holm":
        return alpha / max(m - q, 1)
    if correction == "fdr_bh":
        k = q + 1
        return alpha * k / (m + 1 - k * (1.0 - alpha))
    return alpha
