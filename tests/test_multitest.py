"""Adjusted p-values and rejections against hand values and statsmodels."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from smp_balr.core import multitest
from smp_balr.core.multitest import adjust, bonferroni, fdr_bh, holm, reject


def test_hand_values():
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.3, 0.4]) == pytest.approx([0.6, 0.6])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert bonferroni([0.01, 0.3]) == pytest.approx([0.02, 0.6])
    # q_(k) = min_{j >= k} m p_(j) / j: 4 * 0.04 / 3 = 0.0533 carries down to rank 2
    assert fdr_bh([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])


def test_nan_counts_as_one_and_stays_in_the_family():
    for f in (holm, bonferroni, fdr_bh):
        out = f([0.01, math.nan, 0.02])
        assert out[1] == 1.0
    assert holm([0.01, math.nan]) == pytest.approx([0.02, 1.0])
    assert bonferroni([0.01, math.nan, math.nan]) == pytest.approx([0.03, 1.0, 1.0])


def test_shape_empty_and_bad_input():
    p = np.array([[0.01, 0.2], [0.03, 0.04]])
    assert holm(p).shape == (2, 2)
    assert holm(p).ravel() == pytest.approx(holm(p.ravel()))
    assert holm([]).size == 0 and fdr_bh([]).size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.2])
    with pytest.raises(ValueError, match="unknown correction"):
        adjust([0.1], "sidak")


@pytest.mark.parametrize("method", ["bonferroni", "holm", "fdr_bh"])
def test_adjusted_pvalues_equal_statsmodels_on_random_inputs(method):
    rng = np.random.default_rng(7)
    for trial in range(300):
        m = int(rng.integers(1, 40))
        # mixtures of small, tied (permutation-like) and uniform p-values
        p = np.where(rng.random(m) < 0.3, rng.random(m) * 0.01, rng.random(m))
        if trial % 3 == 0:
            p = np.round(p * 1000) / 1000 + 1.0 / 1001  # many ties, as permutation p-values have
            p = np.minimum(p, 1.0)
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        want_rej, want, _, _ = multipletests(p, alpha=alpha, method=method)
        assert adjust(p, method) == pytest.approx(want, abs=1e-12), (method, p)
        rej, thr = reject(p, alpha, method)
        assert rej.tolist() == want_rej.tolist(), (method, p, alpha)
        assert np.all(p[rej] <= thr)


def test_reject_agrees_with_adjusted_pvalues_away_from_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.random(int(rng.integers(1, 20))) ** 3
        for method in ("bonferroni", "holm", "fdr_bh"):
            rej, _ = reject(p, 0.05, method)
            adj = adjust(p, method)
            clear = np.abs(adj - 0.05) > 1e-9
            assert (rej == (adj <= 0.05))[clear].all()


def test_doctests():
    assert doctest.testmod(multitest).failed == 0
