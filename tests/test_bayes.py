"""Bayesian selection with bambi: planted BA found, null BA not; Laplace numbers vs statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from benchmarks.support.planted import make_planted
from smp_balr.core.errors import UserError
from smp_balr.selection.bayes import bayes_select
from smp_balr.selection.units import prepare


def test_selects_planted_and_not_null_three_classes():
    p = make_planted(
        n_speakers=24, per_speaker=40, n_ba=8, n_planted=2, n_classes=3, effect=1.5, seed=5
    )
    names = [c for c in p.table.columns if c.startswith("BA")]
    data = prepare(
        p.table[names].to_numpy(float),
        p.table["Label"].to_numpy(),
        p.table["Speaker"].to_numpy(),
        "within_speaker",
    )
    res = bayes_select(data.matrix(), data.y, names, seed=0, progress=False)
    chosen = set(res.selected["Feature"])
    assert set(p.truth) <= chosen
    assert len(chosen - set(p.truth)) == 0
    # full table: every BA x non-reference class
    assert len(res.table) == 8 * 2
    assert set(res.table["Class"]) == {"C1", "C2"} and set(res.table["Reference"]) == {"C0"}
    np.testing.assert_allclose(res.table["P_Positive"] + res.table["P_Negative"], 1.0)
    assert (res.table["HDI_Low"] < res.table["Mean"]).all() and (
        res.table["Mean"] < res.table["HDI_High"]
    ).all()
    # two-sided: P(direction) >= 1 - (0.05 / 16 tests) / 2
    assert res.threshold == pytest.approx(1 - 0.05 / 32)


def test_laplace_matches_logistic_regression_for_two_classes():
    rng = np.random.default_rng(2)
    n = 400
    X = (rng.random((n, 3)) < 0.5).astype(float)
    eta = -0.3 + 1.2 * X[:, 0] - 0.8 * X[:, 1]
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-eta)), "yes", "no")
    res = bayes_select(
        X,
        y,
        ["a", "b", "c"],
        prior_sigma=1e3,
        intercept_sigma=1e3,
        correction="none",
        progress=False,
    )
    fit = sm.Logit((y == "yes").astype(float), sm.add_constant(X)).fit(disp=0)
    np.testing.assert_allclose(res.table["Mean"], fit.params[1:], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(res.table["SD"], fit.bse[1:], rtol=1e-3)
    assert set(res.selected["Feature"]) >= {"a", "b"}
    assert "c" not in set(res.selected["Feature"])


def test_bad_settings_are_clear_errors():
    X = np.zeros((4, 1))
    y = np.array(list("aabb"))
    with pytest.raises(UserError, match="selection.bayes.method"):
        bayes_select(X, y, ["x"], method="nuts")
    with pytest.raises(UserError, match="p_direction"):
        bayes_select(X, y, ["x"], p_direction=1.5)


def test_constant_columns_only_gives_empty_selection():
    X = np.ones((6, 2))
    res = bayes_select(X, np.array(list("aabbab")), ["x", "y"], progress=False)
    assert res.selected.empty and list(res.selected.columns)[0] == "Feature"


def test_laplace_agrees_with_bambi_nuts_on_two_classes():
    p = make_planted(
        n_speakers=24, per_speaker=40, n_ba=6, n_planted=2, n_classes=2, effect=1.5, seed=5
    )
    names = [c for c in p.table.columns if c.startswith("BA")]
    data = prepare(
        p.table[names].to_numpy(float),
        p.table["Label"].to_numpy(),
        p.table["Speaker"].to_numpy(),
        "within_speaker",
    )
    lap = bayes_select(data.matrix(), data.y, names, method="laplace", seed=1, progress=False)
    nuts = bayes_select(
        data.matrix(), data.y, names, method="mcmc", draws=500, seed=1, progress=False
    )
    np.testing.assert_allclose(lap.table["Mean"], nuts.table["Mean"], atol=0.04)
    np.testing.assert_allclose(lap.table["SD"], nuts.table["SD"], rtol=0.2)
    assert set(lap.selected["Feature"]) == set(nuts.selected["Feature"]) == set(p.truth)
