"""Forward stepwise discriminant analysis: exact statistics, robustness, and the speaker trap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.multivariate.manova import MANOVA

from smp_balr.errors import UserError
from smp_balr.selection.planted import make_planted
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
    return p.table[names].to_numpy(float), p.table["Label"].to_numpy(), p.table["Speaker"].to_numpy(), names


def test_final_wilks_equals_statsmodels_manova(planted):
    X, y, _, names = _xy(planted)
    res = forward_stepwise(X, y, names, p_enter=0.05, correction="none", max_features=12)
    assert len(res.selected) >= 4
    assert res.wilks_lambda == pytest.approx(_manova_wilks(X[:, res.selected], y), abs=1e-8)
    # the per-step column is the lambda of the prefix set
    k = 3
    assert res.table["Wilks_Lambda"].iloc[k - 1] == pytest.approx(_manova_wilks(X[:, res.selected[:k]], y), abs=1e-8)


def test_within_speaker_scatter_equals_manova_on_centred_rows(planted):
    X, y, spk, names = _xy(planted)
    res = forward_stepwise(X, y, names, correction="none", max_features=8, groups=spk, absorbed_dof=15)
    Xc = centre_within(X, spk)
    assert res.wilks_lambda == pytest.approx(_manova_wilks(Xc[:, res.selected], y), abs=1e-8)
    W1, T1, _ = scatter_matrices(X, y, spk)
    W2, T2, _ = scatter_matrices(Xc, y)
    np.testing.assert_allclose(W1, W2, atol=1e-8)
    np.testing.assert_allclose(T1, T2, atol=1e-8)


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
    res_w = forward_stepwise(within.X, within.y, names, groups=within.groups, absorbed_dof=within.absorbed_dof)
    q_u = precision_recall(res_u.table["Feature"], p.truth)
    q_w = precision_recall(res_w.table["Feature"], p.truth)
    assert q_u["precision"] < 0.5
    assert q_w["precision"] >= 0.9 and q_w["recall"] >= 0.9


def test_unknown_correction():
    with pytest.raises(UserError, match="selection.correction"):
        forward_stepwise(np.eye(4), np.array(list("aabb")), correction="fdr")


def test_full_cross_product_path_gives_the_same_selection(planted, monkeypatch):
    X, y, spk, names = _xy(planted)
    lazy = forward_stepwise(X, y, names, correction="none", max_features=10, groups=spk, absorbed_dof=15)
    monkeypatch.setattr(_Scatter, "FULL_AFTER", 2)
    full = forward_stepwise(X, y, names, correction="none", max_features=10, groups=spk, absorbed_dof=15)
    assert lazy.selected == full.selected
    assert full.wilks_lambda == pytest.approx(lazy.wilks_lambda, abs=1e-10)
