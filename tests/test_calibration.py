"""Calibrated claims: multiple-testing rules on hand-made p-values, the permutation nulls,
and a small version of benchmarks/bench_calibration.py on labels with no signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.support.nullcheck import CellSize, null_label, run_corpus, summarise
from benchmarks.support.planted import make_planted
from smp_balr.core.errors import UserError
from smp_balr.selection.bayes import bayes_select, laplace_fit
from smp_balr.selection.calibration import null_scale, permute_labels
from smp_balr.selection.multiple import bh_adjusted, reject, stepwise_threshold
from smp_balr.selection.slda import _Scatter, forward_stepwise
from smp_balr.selection.units import prepare

# ---------------------------------------------------------------- rules on hand-made p-values
P = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])


def test_fdr_bh_step_up_on_hand_made_pvalues():
    # k * 0.05 / 10: 0.005, 0.010, 0.015, 0.020, 0.025, ...; p_(1)=0.001 and p_(2)=0.008 pass,
    # p_(3)=0.039 > 0.015 and no later p is below its level: 2 rejections, threshold 0.010
    rej, thr = reject(P, 0.05, "fdr_bh")
    assert rej.tolist() == [True, True] + [False] * 8
    assert thr == pytest.approx(0.010)
    # at 0.25 the levels are 0.025 k: p_(5)=0.042 <= 0.125, p_(7)=0.074 <= 0.175, p_(8)=0.205 > 0.2,
    # p_(10)=0.216 <= 0.25: step-up rejects all ten although p_(8) fails its own level
    rej, thr = reject(P, 0.25, "fdr_bh")
    assert rej.all() and thr == pytest.approx(0.25)


def test_fdr_bh_is_order_free_and_agrees_with_adjusted_pvalues():
    rng = np.random.default_rng(0)
    perm = rng.permutation(P.size)
    rej, _ = reject(P[perm], 0.05, "fdr_bh")
    assert rej.tolist() == [bool(i < 2) for i in perm]
    q = bh_adjusted(P)
    # q_(k) = min_{j >= k} m p_(j) / j: q_(1) = min(0.01, 0.04, 0.13, 0.1025, 0.084, ...) = 0.01
    assert q[0] == pytest.approx(0.01) and q[1] == pytest.approx(0.04)
    assert q[2] == pytest.approx(0.084) and q[4] == pytest.approx(0.084)
    for alpha in (0.01, 0.05, 0.1, 0.2, 0.3):
        assert (q <= alpha).tolist() == reject(P, alpha, "fdr_bh")[0].tolist()


def test_fwer_rules_on_hand_made_pvalues():
    p = np.array([[0.004, 0.02], [0.013, 0.5]])
    rej, thr = reject(p, 0.05, "bonferroni")  # 0.0125
    assert rej.tolist() == [[True, False], [False, False]] and thr == pytest.approx(0.0125)
    rej, thr = reject(
        p, 0.05, "holm"
    )  # 0.004 <= 0.0125, 0.013 <= 0.0167, 0.02 <= 0.025, 0.5 > 0.05
    assert rej.tolist() == [[True, True], [True, False]] and thr == pytest.approx(0.025)
    rej, _ = reject(p, 0.05, "none")
    assert rej.tolist() == [[True, True], [True, False]]
    assert not reject(np.array([0.3, np.nan]), 0.05, "fdr_bh")[0].any()
    with pytest.raises(
        UserError, match="selection.correction is 'fdr'; use one of bonferroni, holm, fdr_bh, none"
    ):
        reject(p, 0.05, "fdr")


def test_stepwise_levels():
    assert stepwise_threshold(0.05, "bonferroni", 100, 7) == pytest.approx(0.0005)
    assert stepwise_threshold(0.05, "holm", 100, 7) == pytest.approx(0.05 / 93)
    # Benjamini-Gavrilov: alpha k / (m + 1 - k (1 - alpha));
    # k = 1: 0.05 / 100.05, k = 3: 0.15 / 98.15
    assert stepwise_threshold(0.05, "fdr_bh", 100, 0) == pytest.approx(0.05 / 100.05)
    assert stepwise_threshold(0.05, "fdr_bh", 100, 2) == pytest.approx(0.15 / 98.15)
    assert stepwise_threshold(0.05, "none", 100, 2) == 0.05


# ---------------------------------------------------------------- permutation nulls
def test_permute_labels_keeps_every_group_mix():
    rng = np.random.default_rng(1)
    groups = np.repeat(["a", "b", "c"], [5, 7, 4])[rng.permutation(16)]
    y = rng.integers(0, 3, 16)
    out = permute_labels(y, groups, rng)
    for g in "abc":
        assert sorted(out[groups == g]) == sorted(y[groups == g])
    changed = sum(not np.array_equal(permute_labels(y, groups, rng), y) for _ in range(20))
    assert changed >= 18
    assert sorted(permute_labels(y, None, rng)) == sorted(y)


def test_null_scale_recovers_the_spread():
    rng = np.random.default_rng(2)
    s_hat, s_up = null_scale(1.3 * rng.standard_normal(4000))
    assert s_hat == pytest.approx(1.3, rel=0.04) and s_hat < s_up < 1.04 * s_hat
    assert null_scale(np.array([])) == (1.0, 1.0)


def test_slda_permuted_max_ratio_equals_a_refit_on_permuted_labels():
    p = make_planted(n_speakers=12, per_speaker=30, n_ba=40, n_planted=0, n_classes=3, seed=3)
    names = [c for c in p.table.columns if c.startswith("BA")]
    X, y, spk = (
        p.table[names].to_numpy(float),
        p.table["Label"].to_numpy(),
        p.table["Speaker"].to_numpy(),
    )
    for groups in (spk, None):
        sc = _Scatter(X, y, groups)
        elig = (sc.t_diag > 1e-9) & (sc.w_diag > 1e-9)
        got = sc.null_max_ratio(elig, 3, np.random.default_rng(7), chunk=2)
        rng = np.random.default_rng(7)
        for b in range(3):
            yp = permute_labels(sc._codes, groups, rng)
            ref = _Scatter(X, yp, groups)
            assert got[b] == pytest.approx(
                ((ref.t_diag - ref.w_diag)[elig] / ref.t_diag[elig]).max(), rel=1e-9
            )


def test_slda_permutation_floor_only_tightens_and_keeps_strong_bas():
    p = make_planted(
        n_speakers=16, per_speaker=40, n_ba=60, n_planted=4, n_classes=3, effect=2.0, seed=4
    )
    names = [c for c in p.table.columns if c.startswith("BA")]
    u = prepare(
        p.table[names].to_numpy(float),
        p.table["Label"].to_numpy(),
        p.table["Speaker"].to_numpy(),
        "auto",
    )
    plain = forward_stepwise(u.X, u.y, names, groups=u.groups, absorbed_dof=u.absorbed_dof)
    perm = forward_stepwise(
        u.X, u.y, names, groups=u.groups, absorbed_dof=u.absorbed_dof, permutations=99, seed=1
    )
    assert "permutation null (99 label permutations within speakers)" in perm.history[0]
    assert (perm.table["P_Threshold"] <= plain.table["P_Threshold"].iloc[0] + 1e-15).all()
    assert set(perm.table["Feature"]) <= set(plain.table["Feature"])
    assert set(p.truth) <= set(perm.table["Feature"])
    with pytest.raises(
        UserError, match="permutations \\(9\\) is too few for p_enter 0.05; use at least 19"
    ):
        forward_stepwise(u.X, u.y, names, groups=u.groups, permutations=9)


def test_fdr_bh_selects_at_least_what_bonferroni_selects():
    p = make_planted(
        n_speakers=20, per_speaker=60, n_ba=60, n_planted=8, n_classes=3, effect=0.8, seed=6
    )
    names = [c for c in p.table.columns if c.startswith("BA")]
    u = prepare(
        p.table[names].to_numpy(float),
        p.table["Label"].to_numpy(),
        p.table["Speaker"].to_numpy(),
        "auto",
    )
    bonf = forward_stepwise(u.X, u.y, names, groups=u.groups)
    fdr = forward_stepwise(u.X, u.y, names, groups=u.groups, correction="fdr_bh")
    assert set(bonf.table["Feature"]) <= set(fdr.table["Feature"])
    b_bonf = bayes_select(u.matrix(), u.y, names, correction="bonferroni", progress=False)
    b_fdr = bayes_select(u.matrix(), u.y, names, correction="fdr_bh", progress=False)
    assert set(b_bonf.selected["Feature"]) <= set(b_fdr.selected["Feature"])
    assert len(b_fdr.selected) > len(b_bonf.selected)
    assert (b_fdr.table.loc[b_fdr.table["Selected"], "P_Value"] <= 0.05).all()


def test_bayes_null_fits_measure_the_inflated_null_of_a_wide_logistic_model():
    # 1000 rows, 400 BAs active 40% of the time, 2 classes: 2.5 rows per coefficient; the
    # Laplace z of a label with no signal is clearly wider than N(0, 1) there
    rng = np.random.default_rng(5)
    X = (rng.random((1000, 400)) < 0.4).astype(float)
    y = np.array(["a", "b"])[rng.integers(0, 2, 1000)]
    codes = pd.factorize(pd.Series(y), sort=True)[0]
    mean, sd = laplace_fit(X, codes, 2, 1.0, 5.0)
    z_sd = float(np.sqrt(np.mean((mean / sd) ** 2)))
    assert z_sd > 1.1
    names = [f"b{j}" for j in range(400)]
    res = bayes_select(X, y, names, null_fits=2, seed=3, progress=False)
    assert res.null_scale == pytest.approx(z_sd, rel=0.15)
    assert res.null_scale > 1.1
    plain = bayes_select(X, y, names, null_fits=0, seed=3, progress=False)
    assert plain.null_scale == 1.0
    assert res.threshold > plain.threshold  # a stricter P(direction) is needed
    np.testing.assert_allclose(res.table["P_Value"] >= plain.table["P_Value"], True)


def test_null_label_kinds():
    rng = np.random.default_rng(0)
    spk = np.repeat([f"s{i}" for i in range(9)], 20)
    y = null_label(spk, "speaker", 3, rng)
    per = pd.Series(y).groupby(spk).nunique()
    assert (per == 1).all() and pd.Series(y).groupby(spk).first().value_counts().min() >= 2
    y = null_label(spk, "within", 3, rng)
    assert (pd.Series(y).groupby(spk).nunique() > 1).sum() >= 6


# ---------------------------------------------------------------- small calibration run
TINY = CellSize(
    24, 6, 16, n_ba=128, planted={"Language": 4, "Modality": 4, "EmoClass": 8}, n_constant=4
)


@pytest.fixture(scope="module")
def tiny_cell():
    # 4 corpora x 10 null labels of each kind: 40 within-speaker and 40 speaker-level labels
    # on 288 training rows x 128 BAs (2.2 rows per BA), with verdicts on 6 test speakers
    results = [run_corpus(TINY, seed, 10, n_permutations=200) for seed in (11, 22, 33, 44)]
    return summarise(results)


@pytest.mark.parametrize("kind", ["within", "speaker"])
@pytest.mark.parametrize("method", ["slda", "bayes"])
def test_selectors_rarely_select_on_labels_with_no_signal(tiny_cell, method, kind):
    d = tiny_cell["null"][kind][method]
    assert d["n_labels"] == 40
    # stated family-wise rate 5%: 2 of 40 expected; more than 8 is far above it (binomial p < 1e-3)
    assert d["with_selection"] <= 8, d


@pytest.mark.parametrize("kind", ["within", "speaker"])
def test_verdict_rarely_says_present_on_labels_with_no_signal(tiny_cell, kind):
    d = tiny_cell["verdict"][kind]
    assert d["n_labels"] == 40
    assert d["scheme"] == ["within_speakers" if kind == "within" else "between_speakers"]
    assert d["present"] <= 8 and d["p_below_005"] <= 8, d


def test_planted_labels_are_still_found(tiny_cell):
    assert tiny_cell["planted"]["within"]["slda"]["bonferroni"]["recall"] > 0.1
    assert (
        tiny_cell["planted"]["within"]["slda"]["fdr_bh"]["recall"]
        >= tiny_cell["planted"]["within"]["slda"]["bonferroni"]["recall"]
    )
