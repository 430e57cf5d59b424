"""Tests of smp_balr.explain on small planted data made here."""

from __future__ import annotations

import logging
import warnings

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from smp_balr import explain as ex
from smp_balr.core.errors import UserError
from smp_balr.core.outputs import atomic_dir
from smp_balr.explain.compute import _as_3d

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_ROWS, N_BA, STRONG = 600, 12, "BA4"


@pytest.fixture(scope="module")
def planted():
    """3 classes; BA4 is on for class 'b' (and 5% noise), every other BA is random."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, N_ROWS)
    x = (rng.random((N_ROWS, N_BA)) < 0.4).astype(np.float64)
    x[:, 4] = ((y == 1) | (rng.random(N_ROWS) < 0.05)).astype(np.float64)
    labels = np.array(["a", "b", "c"])[y]
    feats = [f"BA{i}" for i in range(N_BA)]
    return x, y, labels, feats


@pytest.fixture(scope="module")
def models(planted):
    x, y, _, _ = planted
    dt = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((8,), max_iter=300, random_state=0).fit(x, y)
    return {"dt": dt, "mlp": mlp}


def test_tree_additivity_exact(planted, models):
    x, _, _, _ = planted
    res = ex.explain(models["dt"], x[:80])
    assert res.explainer == "tree"
    assert res.values.shape == (80, N_BA, 3)
    assert res.additivity_error < ex.TREE_TOLERANCE
    np.testing.assert_allclose(
        res.base + res.values.sum(axis=1), models["dt"].predict_proba(x[:80]), atol=1e-6
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_probe_values_are_exact_log_odds(planted, n_classes):
    from sklearn.linear_model import LogisticRegression

    x, y, labels, feats = planted
    keep = y < n_classes
    model = LogisticRegression(C=1.0, max_iter=500).fit(x[keep], y[keep])
    bg = ex.make_background(x[keep], labels[keep], "sample", 30, seed=0)
    res = ex.explain(model, x[:25], bg)
    assert res.explainer == "linear" and res.output == "log-odds"
    assert res.values.shape == (25, N_BA, n_classes) and res.additivity_error < 1e-9
    # Shapley values of a linear model on independent inputs: coef * (x - background mean)
    coef = model.coef_ if n_classes > 2 else np.vstack([-model.coef_[0], model.coef_[0]])
    expected = (x[:25] - bg[0].mean(axis=0))[:, :, None] * coef.T[None]
    np.testing.assert_allclose(res.values, expected, atol=1e-12)
    assert ex.global_importance(res.values, feats)["BA"].iloc[0] == STRONG


def test_tree_inside_grid_search_is_unwrapped(planted):
    x, y, _, _ = planted
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, cv=2).fit(
        x, y
    )
    res = ex.explain(search, x[:20])
    assert res.explainer == "tree" and res.additivity_error < ex.TREE_TOLERANCE


@pytest.mark.parametrize("kind", ["permutation", "kernel"])
def test_mlp_additivity_within_tolerance(planted, models, kind):
    x, _, labels, _ = planted
    bg = ex.make_background(x, labels, "kmeans", 8, seed=0)
    res = ex.explain(models["mlp"], x[:30], bg, kind, kernel_nsamples=200, seed=0)
    assert res.explainer == kind
    assert res.values.shape == (30, N_BA, 3)
    assert res.additivity_error < ex.AGNOSTIC_TOLERANCE
    # base value = mean prediction over the background (weighted for kernel, equal for permutation)
    weights = bg[1] if kind == "kernel" else np.full(len(bg[0]), 1 / len(bg[0]))
    np.testing.assert_allclose(res.base[0], weights @ models["mlp"].predict_proba(bg[0]), atol=1e-9)


@pytest.mark.parametrize("kind", ["dt", "mlp"])
def test_top_ba_is_the_planted_one(planted, models, kind):
    x, _, labels, feats = planted
    bg = ex.make_background(x, labels, "sample", 10, seed=1) if kind == "mlp" else None
    res = ex.explain(models[kind], x[:60], bg, seed=0)
    imp = ex.global_importance(res.values, feats)
    assert imp["BA"].iloc[0] == STRONG
    assert imp["share"].iloc[0] > 2 * imp["share"].iloc[1]


def test_agnostic_explainer_is_deterministic(planted, models):
    x, _, labels, _ = planted
    bg1 = ex.make_background(x, labels, "kmeans", 6, seed=3)
    bg2 = ex.make_background(x, labels, "kmeans", 6, seed=3)
    np.testing.assert_array_equal(bg1[0], bg2[0])
    a = ex.explain(models["mlp"], x[:15], bg1, "permutation", seed=5).values
    b = ex.explain(models["mlp"], x[:15], bg2, "permutation", seed=5).values
    np.testing.assert_array_equal(a, b)
    k1 = ex.explain(models["mlp"], x[:5], bg1, "kernel", kernel_nsamples=100, seed=5).values
    k2 = ex.explain(models["mlp"], x[:5], bg1, "kernel", kernel_nsamples=100, seed=5).values
    np.testing.assert_array_equal(k1, k2)


def test_kmeans_background_stays_binary_and_weighted(planted):
    x, _, labels, _ = planted
    bg, w = ex.make_background(x, labels, "kmeans", 5, seed=0)
    assert bg.shape == (5, N_BA)
    assert set(np.unique(bg)) <= {0.0, 1.0}
    assert w.sum() == pytest.approx(1.0) and (w > 0).all()


def test_unknown_explainer_or_background_is_refused(planted, models):
    x, _, labels, _ = planted
    with pytest.raises(ValueError, match="kind must be one of kmeans, sample, got 'pca'"):
        ex.make_background(x, labels, "pca", 5, seed=0)
    bg = ex.make_background(x, labels, "sample", 5, seed=0)
    with pytest.raises(
        ValueError, match="mlp_explainer must be one of permutation, kernel, got 'lime'"
    ):
        ex.explain(models["mlp"], x[:3], bg, "lime")


def test_as_3d_accepts_old_list_per_class_form():
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(4, 3, 2))  # rows, features, classes
    as_list = [arr[:, :, c] for c in range(2)]
    np.testing.assert_array_equal(_as_3d(as_list, 4, 3, 2), arr)
    np.testing.assert_array_equal(_as_3d(arr, 4, 3, 2), arr)


# ----------------------------------------------------------------------- sampling


def test_stratified_sample_proportional_and_reproducible():
    labels = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200)
    idx = ex.stratified_sample(labels, 100, seed=7)
    assert len(idx) == 100 and len(set(idx)) == 100
    counts = pd.Series(labels[idx]).value_counts().to_dict()
    assert counts == {"a": 50, "b": 30, "c": 20}
    np.testing.assert_array_equal(idx, ex.stratified_sample(labels, 100, seed=7))
    assert not np.array_equal(idx, ex.stratified_sample(labels, 100, seed=8))


def test_stratified_sample_largest_remainder():
    labels = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2)
    idx = ex.stratified_sample(labels, 4, seed=0)  # exact shares 2.0, 1.2, 0.8
    assert pd.Series(labels[idx]).value_counts().to_dict() == {"a": 2, "b": 1, "c": 1}


def test_fewer_rows_than_n_samples_uses_all_and_logs(caplog):
    with caplog.at_level(logging.INFO, logger="smp_balr.model.sampling"):
        idx = ex.stratified_sample(["a", "b", "a"], 200, seed=0)
    np.testing.assert_array_equal(idx, [0, 1, 2])
    assert "3 rows, 200 wanted: taking all of them" in caplog.text


def test_n_samples_below_one_is_refused():
    with pytest.raises(ValueError, match="n_samples must be at least 1, got 0"):
        ex.stratified_sample(["a", "b"], 0, seed=0)


# ----------------------------------------------------------------------- tables


def test_class_summary_matches_hand_computation():
    v = np.array(
        [
            [0.4, -0.1, 0.0],
            [0.2, -0.5, 0.0],
            [-0.3, 0.1, 0.0],
            [0.0, -0.3, 0.0],
        ]
    )
    s = ex.class_summary(v, ["BA0", "BA1", "BA2"]).set_index("BA")
    # BA0: positives 0.4, 0.2 -> 0.3; negatives -0.3 -> -0.3; tie in magnitude -> positive
    assert s.loc["BA0", "mean_positive"] == pytest.approx(0.3)
    assert s.loc["BA0", "mean_negative"] == pytest.approx(-0.3)
    assert s.loc["BA0", "dominant"] == pytest.approx(0.3)
    assert (s.loc["BA0", "n_positive"], s.loc["BA0", "n_negative"]) == (2, 1)
    # BA1: positives 0.1; negatives -0.1, -0.5, -0.3 -> -0.3; dominant -0.3
    assert s.loc["BA1", "mean_positive"] == pytest.approx(0.1)
    assert s.loc["BA1", "mean_negative"] == pytest.approx(-0.3)
    assert s.loc["BA1", "dominant"] == pytest.approx(-0.3)
    # BA2: no values either side -> zeros
    assert s.loc["BA2", ["mean_positive", "mean_negative", "dominant"]].tolist() == [0.0, 0.0, 0.0]
    # sorted by |dominant| (ties in BA order)
    assert ex.class_summary(v, ["BA0", "BA1", "BA2"])["BA"].tolist() == ["BA0", "BA1", "BA2"]
    v2 = v.copy()
    v2[:, 1] *= 2
    assert ex.class_summary(v2, ["BA0", "BA1", "BA2"])["BA"].tolist() == ["BA1", "BA0", "BA2"]


def test_global_importance_and_top_metrics_by_hand():
    v = np.zeros((2, 12, 2))
    v[:, 3, :] = [[1.0, -1.0], [-1.0, 1.0]]  # mean |.| = 1
    v[0, 7, 0] = 2.0  # mean |.| = 0.5
    v[:, 0, 1] = 0.5  # mean |.| = 0.25
    feats = [f"BA{i}" for i in range(12)]
    imp = ex.global_importance(v, feats)
    assert imp["BA"].head(3).tolist() == ["BA3", "BA7", "BA0"]
    np.testing.assert_allclose(imp["importance"].head(3), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(imp["share"].head(3), [1 / 1.75, 0.5 / 1.75, 0.25 / 1.75])
    assert imp["share"].sum() == pytest.approx(1.0)
    assert imp["rank"].tolist() == list(range(1, 13))
    top = ex.top_metrics(imp, truth=["BA7", "BA3", "BA11"])
    assert top["top5"][:3] == ["BA3", "BA7", "BA0"]
    assert top["top5_share"] == pytest.approx(1.0) and top["top10_share"] == pytest.approx(1.0)
    # zero-importance BAs follow in BA order: BA1, BA2, BA4, ... so BA11 is not in the top 10
    assert top["top10"] == ["BA3", "BA7", "BA0", "BA1", "BA2", "BA4", "BA5", "BA6", "BA8", "BA9"]
    assert top["n_top10_in_truth"] == 2
    assert ex.top_metrics(imp, None)["n_top10_in_truth"] is None


def test_shap_table_columns():
    sample = pd.DataFrame({"Sample_ID": [4, 9], "FileName": ["f4", "f9"], "Emo": ["A", "H"]})
    t = ex.shap_table(np.array([[0.1, -0.2], [0.0, 0.3]]), sample, "Emo", ["BA0", "BA5"])
    assert t.columns.tolist() == ["Sample_ID", "FileName", "True_Label", "BA0", "BA5"]
    assert t["True_Label"].tolist() == ["A", "H"] and t["BA5"].tolist() == [-0.2, 0.3]


def test_choose_plot_bas_default_and_unknown_ba():
    imp = pd.DataFrame({"BA": ["BA9", "BA2", "BA5", "BA1", "BA0"]})
    feats = ["BA0", "BA1", "BA2", "BA5", "BA9"]
    assert ex.choose_plot_bas([], feats, imp) == ["BA9", "BA2", "BA5", "BA1"]
    assert ex.choose_plot_bas(["BA5", "BA5"], feats, imp) == ["BA5"]
    with pytest.raises(
        UserError, match=r"explain.ba lists BA77, not among .* BA0, BA1, BA2, BA5, BA9"
    ):
        ex.choose_plot_bas(["BA5", "BA77"], feats, imp)


def _valid_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_plots_are_valid_pngs_and_deterministic(tmp_path, planted, models):
    x, _, _, feats = planted
    res = ex.explain(models["dt"], x[:40])
    imp = ex.global_importance(res.values, feats)
    files = {
        "bee": lambda p: ex.plot_beeswarm(res.values[:, :, 1], x[:40], feats, "class b", p, seed=0),
        "ba": lambda p: ex.plot_ba_across_classes(
            res.values[:, 4, :], x[:40, 4], ["a", "b", "c"], "BA4", p, seed=0
        ),
        "bar": lambda p: ex.plot_top_bar(imp, p),
    }
    for name, draw in files.items():
        first, second = tmp_path / f"{name}1.png", tmp_path / f"{name}2.png"
        draw(first)
        draw(second)
        _valid_png(first)
        assert first.read_bytes() == second.read_bytes()


def test_atomic_dir_keeps_old_contents_on_failure(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "b.txt").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_dir(target) as d:
        (d / "c.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
