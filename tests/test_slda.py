"""Forward stepwise discriminant analysis: exact statistics, robustness, and the speaker trap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.multivariate.manova import MANOVA
from statsmodels.stats.anova import anova_lm

from benchmarks.support.planted import make_planted
from smp_balr.core.errors import UserError
from smp_balr.selection.quality import precision_recall
from smp_balr.selection.slda import _Scatter, forward_stepwise, scatter_matrices, wilks_lambda
from smp_balr.selection.units import centre_within, prepare


def _manova_wilks(X: np.ndarray, y: np.ndarray) -> float:
    cols = [f"v{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    df["g"] = y
    res = MANOVA.from_formula(" + ".join(cols) + " ~ C(g)", data=df).mv_test()
    return float(res.results["C(g)"]["stat"].loc["Wilks' lambda", "Value"])


@pytest.fixture(scope="module")
def planted():
    return make_planted(n_speakers=16, per_speaker=40, n_ba=40, n_planted=6, seed=3)


def _xy(p):
    names = [c for c in p.table.columns if c.startswith("BA")]
    return (
        p.table[names].to_numpy(float),
        p.table["Label"].to_numpy(),
        p.table["Speaker"].to_numpy(),
        names,
    )


def test_final_wilks_equals_statsmodels_manova(planted):
    X, y, _, names = _xy(planted)
    res = forward_stepwise(X, y, names, p_enter=0.05, correction="none", max_features=12)
    assert len(res.selected) >= 4
    assert res.wilks_lambda == pytest.approx(_manova_wilks(X[:, res.selected], y), abs=1e-8)
    # the per-step column is the lambda of the prefix set
    k = 3
    assert res.table["Wilks_Lambda"].iloc[k - 1] == pytest.approx(
        _manova_wilks(X[:, res.selected[:k]], y), abs=1e-8
    )


def _skewed(n_speakers=20, n=1200, n_classes=3, seed=0):
    """Continuous BAs; speakers with strong own means and skewed Dirichlet class mixes."""
    rng = np.random.default_rng(seed)
    spk = rng.integers(0, n_speakers, n)
    mix = rng.dirichlet(np.full(n_classes, 0.3), n_speakers)
    cls = np.array([rng.choice(n_classes, p=mix[s]) for s in spk])
    X = 2.0 * rng.normal(size=(n_speakers, 6))[spk] + rng.normal(size=(n, 6))
    X[:, 0] += 0.3 * (cls == 1)
    X[:, 1] += 0.4 * (cls == 2) - 0.2 * (cls == 0)
    X[:, 2] += 0.25 * (cls == 0)
    X[:, 3] += 3.0 * (mix[spk] @ np.arange(n_classes))  # a pure speaker marker
    return X, np.array([f"c{k}" for k in cls]), np.array([f"s{k:02d}" for k in spk])


def _residual_sscp(X: np.ndarray, *factors: np.ndarray) -> np.ndarray:
    """SSCP of the OLS residuals of X on an intercept and the dummies of the factors."""
    D = np.column_stack([np.ones(len(X))] + [pd.get_dummies(f).to_numpy(float) for f in factors])
    R = X - D @ np.linalg.lstsq(D, X, rcond=None)[0]
    return R.T @ R


def test_within_speaker_is_the_partial_test_of_class_given_speaker():
    X, y, spk = _skewed()
    W, T, _ = scatter_matrices(X, y, spk)
    np.testing.assert_allclose(T, _residual_sscp(X, spk), atol=1e-7)
    np.testing.assert_allclose(W, _residual_sscp(X, spk, y), atol=1e-7)
    res = forward_stepwise(X, y, None, p_enter=0.5, correction="none", groups=spk)
    assert len(res.selected) >= 3 and 3 not in res.selected[:1]
    cols = [f"v{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols).assign(s=spk, c=y)

    def manova(sel):
        formula = " + ".join(cols[j] for j in sel) + " ~ C(s) + C(c)"
        return float(
            MANOVA.from_formula(formula, data=df)
            .mv_test()
            .results["C(c)"]["stat"]
            .loc["Wilks' lambda", "Value"]
        )

    assert res.wilks_lambda == pytest.approx(manova(res.selected), abs=1e-8)
    assert res.table["Wilks_Lambda"].iloc[1] == pytest.approx(manova(res.selected[:2]), abs=1e-8)
    assert wilks_lambda(X[:, res.selected], y, spk) == pytest.approx(res.wilks_lambda, abs=1e-10)


def test_one_ba_f_equals_two_way_anova_and_beats_centred_one_way():
    X, y, spk = _skewed()
    df = pd.DataFrame({"x": X[:, 0], "s": spk, "c": y})
    ref = anova_lm(ols("x ~ C(s) + C(c)", data=df).fit(), typ=2).loc["C(c)"]
    res = forward_stepwise(X[:, [0]], y, ["x"], p_enter=1.0, correction="none", groups=spk)
    row = res.table.iloc[0]
    assert row["F_to_enter"] == pytest.approx(ref["F"], rel=1e-8)
    assert row["P_Value"] == pytest.approx(ref["PR(>F)"], rel=1e-6)
    assert "(df 2, 1178)" in res.history[0]  # n - K - (speakers - 1)
    # the old statistic (one-way test on speaker-centred rows) is not this test
    old = forward_stepwise(
        centre_within(X[:, [0]], spk), y, ["x"], p_enter=1.0, correction="none", absorbed_dof=19
    )
    assert abs(old.table["F_to_enter"].iloc[0] - ref["F"]) > 0.05 * ref["F"]


def test_binary_planted_within_speaker_equals_manova_class_given_speaker(planted):
    X, y, spk, names = _xy(planted)
    res = forward_stepwise(X, y, names, correction="none", max_features=5, groups=spk)
    assert len(res.selected) == 5
    df = pd.DataFrame(X[:, res.selected], columns=[f"v{j}" for j in range(5)]).assign(s=spk, c=y)
    mv = MANOVA.from_formula("v0 + v1 + v2 + v3 + v4 ~ C(s) + C(c)", data=df).mv_test()
    assert res.wilks_lambda == pytest.approx(
        float(mv.results["C(c)"]["stat"].loc["Wilks' lambda", "Value"]), abs=1e-8
    )


def test_class_that_never_varies_inside_a_speaker_costs_no_hypothesis_dof():
    X, y, spk = _skewed(seed=2)
    y = y.copy()
    y[spk == "s00"] = "only"  # class 'only' is a whole speaker: nothing to test within speakers
    res = forward_stepwise(X[:, [0]], y, ["x"], p_enter=1.0, correction="none", groups=spk)
    W, T, _ = scatter_matrices(X[:, [0]], y, spk)
    n, df1 = len(y), 2  # 4 classes, but only c0..c2 vary within speakers
    df2 = n - 20 - df1
    F = (T[0, 0] - W[0, 0]) / df1 / (W[0, 0] / df2)
    np.testing.assert_allclose(W, _residual_sscp(X[:, [0]], spk, y), atol=1e-7)
    assert res.table["F_to_enter"].iloc[0] == pytest.approx(F, rel=1e-10)
    assert f"(df {df1}, {df2})" in res.history[0]
    with pytest.raises(UserError, match="does not vary within any speaker"):
        forward_stepwise(X, spk, None, groups=spk)


def test_null_within_speaker_keeps_false_positives_controlled():
    p = make_planted(n_speakers=30, per_speaker=60, n_ba=300, n_planted=0, seed=5)
    X, y, spk, names = _xy(p)
    res = forward_stepwise(X, y, names, groups=spk)  # bonferroni
    assert len(res.selected) == 0
    # step-0 p-values of all BAs: about 5% below 0.05 (binomial 300 x 0.05: 15 +- 4)
    W, T, K = scatter_matrices(X, y, spk)
    n = len(y)
    lam = np.diag(W) / np.diag(T)
    F = (1 - lam) / lam * (n - K - 29) / (K - 1)
    frac = float((stats.f.sf(F, K - 1, n - K - 29) < 0.05).mean())
    assert 0.01 <= frac <= 0.10


def test_tiny_hand_checked_case():
    # one informative column: class means 0.5 and 2.5, W = 1, T = 5, lambda = 0.2,
    # F = (1 - 0.2) / 0.2 * (n - K - q) / (K - 1) = 4 * 2 / 1 = 8 (= the two-sample t squared)
    x = np.array([0.0, 1.0, 2.0, 3.0])
    X = np.column_stack([x, np.ones(4), 2 * x])  # + a constant and a collinear copy
    y = np.array(["a", "a", "b", "b"])
    res = forward_stepwise(X, y, ["x", "const", "twice"], p_enter=0.5, correction="none")
    assert list(res.table["Feature"]) == ["x"]
    row = res.table.iloc[0]
    assert row["Wilks_Lambda"] == pytest.approx(0.2)
    assert row["F_to_enter"] == pytest.approx(8.0)
    assert row["P_Value"] == pytest.approx(stats.f.sf(8.0, 1, 2))
    assert res.n_candidates == 2  # the constant is never a candidate


def test_constant_and_duplicate_columns_never_crash(planted):
    X, y, _, names = _xy(planted)
    X2 = np.column_stack([X, X[:, :5], np.zeros(len(X)), np.ones(len(X))])
    names2 = names + [f"dup{j}" for j in range(5)] + ["zero", "one"]
    res = forward_stepwise(X2, y, names2, correction="none", max_features=40)
    chosen = set(res.table["Feature"])
    assert not {"zero", "one"} & chosen
    for j in range(5):  # never both a column and its copy
        assert not ({names[j], f"dup{j}"} <= chosen)
    assert np.isfinite(res.wilks_lambda)


def test_corrections_thresholds_and_cap(planted):
    X, y, _, names = _xy(planted)
    bonf = forward_stepwise(X, y, names, correction="bonferroni")
    holm = forward_stepwise(X, y, names, correction="holm")
    none = forward_stepwise(X, y, names, correction="none", max_features=3)
    m = bonf.n_candidates
    assert np.allclose(bonf.table["P_Threshold"], 0.05 / m)
    assert np.allclose(holm.table["P_Threshold"], 0.05 / (m - np.arange(len(holm.table))))
    assert len(none.table) == 3
    assert len(holm.table) >= len(bonf.table)
    assert (bonf.table["P_Value"] <= bonf.table["P_Threshold"]).all()
    assert list(bonf.table["Step"]) == list(range(1, len(bonf.table) + 1))


def test_removal_of_a_redundant_first_entry():
    # A = z1 + z2 + n4 enters first; once z1 and z2 are in, A only adds the noise n4
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    y2 = np.where(rng.random(n) < 0.8, y, 1 - y)
    cls = np.array([f"c{a}{b}" for a, b in zip(y, y2)])
    z1 = y + 0.3 * rng.normal(size=n)
    z2 = y2 + 0.3 * rng.normal(size=n)
    n4 = 0.3 * rng.normal(size=n)
    X = np.column_stack([z1 + z2 + n4, z1, z2, n4 + 0.05 * rng.normal(size=n)])
    names = ["A", "z1", "z2", "z3"]
    fwd = forward_stepwise(X, cls, names, correction="none", p_enter=0.01)
    both = forward_stepwise(X, cls, names, correction="none", p_enter=0.01, p_remove=0.05)
    assert list(fwd.table["Feature"]) == ["A", "z1", "z2"]
    assert any(line.startswith("step 4: remove A") for line in both.history)
    assert list(both.table["Feature"]) == ["z1", "z2"]
    assert both.wilks_lambda == pytest.approx(wilks_lambda(X[:, [1, 2]], cls), abs=1e-10)
    with pytest.raises(UserError, match="must exceed p_enter"):
        forward_stepwise(X, cls, names, p_enter=0.05, p_remove=0.01)


def test_on_demand_columns_match_full_scatter(planted):
    X, y, spk, _ = _xy(planted)
    for groups in (None, spk):
        W, T, _ = scatter_matrices(X, y, groups)
        sc = _Scatter(X, y, groups)
        np.testing.assert_allclose(sc.w_diag, np.diag(W), atol=1e-8)
        np.testing.assert_allclose(sc.t_diag, np.diag(T), atol=1e-8)
        w, t = sc.columns(7)
        np.testing.assert_allclose(w, W[:, 7], atol=1e-8)
        np.testing.assert_allclose(t, T[:, 7], atol=1e-8)


def test_speaker_confounding_utterance_fails_within_speaker_passes():
    p = make_planted(n_speakers=40, per_speaker=120, n_ba=150, n_planted=10, seed=7)
    X, y, spk, names = _xy(p)
    utt = prepare(X, y, spk, "utterance")
    res_u = forward_stepwise(utt.X, utt.y, names, max_features=100)
    within = prepare(X, y, spk, "within_speaker")
    res_w = forward_stepwise(
        within.X, within.y, names, groups=within.groups, absorbed_dof=within.absorbed_dof
    )
    q_u = precision_recall(res_u.table["Feature"], p.truth)
    q_w = precision_recall(res_w.table["Feature"], p.truth)
    assert q_u["precision"] < 0.5
    assert q_w["precision"] >= 0.9 and q_w["recall"] >= 0.9


def test_unknown_correction():
    with pytest.raises(UserError, match="selection.correction"):
        forward_stepwise(np.eye(4), np.array(list("aabb")), correction="fdr")


def test_full_cross_product_path_gives_the_same_selection(planted, monkeypatch):
    X, y, spk, names = _xy(planted)
    lazy = forward_stepwise(
        X, y, names, correction="none", max_features=10, groups=spk, absorbed_dof=15
    )
    monkeypatch.setattr(_Scatter, "FULL_AFTER", 2)
    full = forward_stepwise(
        X, y, names, correction="none", max_features=10, groups=spk, absorbed_dof=15
    )
    assert lazy.selected == full.selected
    assert full.wilks_lambda == pytest.approx(lazy.wilks_lambda, abs=1e-10)
