"""Label-permutation nulls for the selection statistics.

A selection claim ("this BA carries the label") is only as good as the null distribution
its threshold is read from. When the textbook distribution is wrong for the data at hand
(for the Laplace posterior of a logistic model with hundreds of coefficients fitted on a
few rows per coefficient, the null z-statistics are wider than N(0, 1)), the labels are
permuted so that every link between BAs and label is broken while everything else is kept,
and the statistic is recomputed:

- rows with ``groups`` (unit ``within_speaker``): labels are shuffled among the rows of
  each speaker, keeping every speaker's class mix (the null of "no class effect given
  speaker");
- otherwise (unit ``speaker``: one row per speaker; unit ``utterance``): labels are
  shuffled over all rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def permute_labels(
    y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """One permutation of ``y``: within each group when ``groups`` is given, else over all rows.

    Parameters
    ----------
    y : numpy.ndarray
        Label of each row.
    groups : numpy.ndarray or None
        Group (speaker) of each row.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        The permuted labels (same multiset of labels inside every group).
    """
    y = np.asarray(y)
    if groups is None:
        return y[rng.permutation(len(y))]
    codes, _ = pd.factorize(pd.Series(groups), sort=False)
    # sort by (group, random key): the rows of each group in a random order
    shuffled = np.lexsort((rng.random(len(y)), codes))
    canonical = np.argsort(codes, kind="stable")
    out = np.empty_like(y)
    out[canonical] = y[shuffled]
    return out


def null_scale(z_null: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Scale of null z-statistics, and an upper confidence bound for it.

    The null statistics are taken as N(0, s^2); ``s^2`` is estimated by the mean square
    (the tails matter, so no robust estimator that ignores them), and the one-sided upper
    bound at ``level`` treats the values as independent: ``s_hat * sqrt(N / chi2_{1-level}(N))``.

    Parameters
    ----------
    z_null : numpy.ndarray
        Statistics computed on permuted labels (any shape; non-finite values are dropped).
    level : float
        Confidence of the upper bound.

    Returns
    -------
    (float, float)
        ``s_hat`` and its upper bound (both 1.0 when there are no values).
    """
    z = np.asarray(z_null, dtype=np.float64).ravel()
    z = z[np.isfinite(z)]
    if z.size == 0:
        return 1.0, 1.0
    s_hat = float(np.sqrt(np.mean(z * z)))
    upper = s_hat * float(np.sqrt(z.size / stats.chi2.ppf(1.0 - level, z.size)))
    return s_hat, upper
