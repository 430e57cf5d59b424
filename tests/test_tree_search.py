"""The decision-tree search: the full grid equals the train stage's, the cheap strategies keep
speaker-disjoint folds and cost fewer fits, the subsample keeps every speaker's class mix."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

from smp_balr.core.errors import UserError
from smp_balr.core.settings import DtSettings
from smp_balr.model.estimator import fit_dt
from smp_balr.model.folds import distinct_tree_params, grouped_folds
from smp_balr.model.tree_search import search_tree, stratified_speaker_subsample

GRID = {
    "max_depth": [2, 4, 8],
    "min_samples_split": [2, 10],
    "min_samples_leaf": [1, 5],
    "criterion": ["gini"],
}


def _data(n_speakers: int = 16, per: int = 40, seed: int = 0):
    """Speakers with own BA rates; class c raises BAs 2c, 2c+1 (3 classes, uneven per speaker)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{k:02d}" for k in range(n_speakers)], per)
    mix = rng.dirichlet([2.0, 2.0, 2.0], n_speakers)
    y = np.concatenate([rng.choice(3, per, p=m) for m in mix])
    p = np.repeat(rng.uniform(0.2, 0.7, (n_speakers, 12)), per, axis=0)
    for c in range(3):
        p[y == c, 2 * c : 2 * c + 2] += 0.3
    return (rng.random(p.shape) < p).astype(np.int8), y, groups


def test_full_strategy_is_the_plain_grid_search() -> None:
    X, y, groups = _data()
    candidates = distinct_tree_params(GRID)
    ref = GridSearchCV(
        DecisionTreeClassifier(random_state=3),
        [{k: [v] for k, v in c.items()} for c in candidates],
        scoring="balanced_accuracy",
        cv=grouped_folds(y, groups, 4, 3),
    ).fit(X.astype(np.float32), y)
    tree, info = search_tree(X, y, groups, GRID, cv_folds=4, seed=3, strategy="full")
    assert info["best_params"] == ref.best_params_
    assert info["cv_score"] == pytest.approx(ref.best_score_)
    assert np.array_equal(tree.predict(X.astype(np.float32)), ref.predict(X.astype(np.float32)))
    assert (
        info["n_candidates"] == 9 and info["n_grid"] == 12
    )  # leaf 5 makes splits 2 and 10 one tree
    assert info["n_fits"] == 9 * 4 + 1
    assert len(info["cv_results"]["params"]) == 9


def test_subsample_of_a_small_corpus_is_the_full_search() -> None:
    """Fewer rows than max_search_rows: the subsample is every row,
    so the tree is the full grid's."""
    X, y, groups = _data()
    full_tree, full = search_tree(X, y, groups, GRID, cv_folds=4, seed=3, strategy="full")
    tree, info = search_tree(
        X, y, groups, GRID, cv_folds=4, seed=3, strategy="subsample", max_search_rows=10**6
    )
    assert info["search_rows"] == len(y) and info["best_params"] == full["best_params"]
    assert np.array_equal(tree.tree_.value, full_tree.tree_.value)


def test_fit_dt_reports_the_search():
    X, y, groups = _data()
    settings = DtSettings(
        grid={k: tuple(v) for k, v in GRID.items()}, cv_folds=4, n_jobs=1, search="full"
    )
    tree, info = fit_dt(X, y, groups, settings, balance=2, seed=3)
    assert tree.class_weight == "balanced" and info["search"]["strategy"] == "full"
    assert [row["cv_score"] for row in info["curves"]["cv_score"]] == pytest.approx(
        search_tree(
            X, y, groups, GRID, cv_folds=4, seed=3, strategy="full", class_weight="balanced"
        )[1]["cv_results"]["mean_test_score"]
    )


def test_halving_and_subsample_cost_fewer_fits_and_pick_a_grid_point() -> None:
    X, y, groups = _data(n_speakers=24, per=60)
    full = search_tree(X, y, groups, GRID, cv_folds=4, seed=1, strategy="full")[1]
    for strategy, kwargs in (("halving", {}), ("subsample", {"max_search_rows": 400})):
        tree, info = search_tree(
            X, y, groups, GRID, cv_folds=4, seed=1, strategy=strategy, **kwargs
        )
        assert info["best_params"] in full["cv_results"]["params"]
        assert tree.get_params()["max_depth"] == info["best_params"]["max_depth"]
        assert tree.n_features_in_ == X.shape[1] and tree.tree_.n_node_samples[0] == len(
            y
        )  # refitted on all rows
        if strategy == "halving":
            assert max(info["cv_results"]["iter"]) >= 1
            assert max(info["cv_results"]["n_resources"]) <= len(y)
            assert sum(r for r in info["cv_results"]["n_resources"]) < 10 * len(
                y
            )  # far less than 10 full fits
        else:
            assert info["search_rows"] < len(y) // 2


def test_subsample_keeps_every_speaker_and_class_mix() -> None:
    X, y, groups = _data(n_speakers=10, per=100)
    rows = stratified_speaker_subsample(y, groups, 250, seed=0)
    assert 250 <= len(rows) <= 250 + 30 and np.array_equal(rows, np.unique(rows))
    for g in np.unique(groups):
        for c in np.unique(y[groups == g]):
            cell = np.sum((groups == g) & (y == c))
            kept = np.sum((groups[rows] == g) & (y[rows] == c))
            assert kept == max(1, int(np.ceil(cell * 250 / len(y))))
    assert np.array_equal(stratified_speaker_subsample(y, groups, 250, seed=0), rows)
    assert len(stratified_speaker_subsample(y, groups, 10**6, seed=0)) == len(y)


def test_oversampled_copies_never_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies are duplicates of training rows: scored in a fold, they would inflate its score."""
    from sklearn.model_selection import GridSearchCV

    X, y, groups = _data()
    is_copy = np.zeros(len(y), dtype=bool)
    is_copy[::3] = True
    seen: list = []
    original_fit = GridSearchCV.fit

    def spy_fit(self, X_, y_=None, **kw):
        seen.extend(va for _, va in self.cv)
        return original_fit(self, X_, y_, **kw)

    monkeypatch.setattr(GridSearchCV, "fit", spy_fit)
    search_tree(X, y, groups, GRID, cv_folds=4, seed=0, strategy="full", is_copy=is_copy)
    assert len(seen) == 4 and all(not is_copy[va].any() for va in seen)
    assert sum(len(va) for va in seen) == int((~is_copy).sum())


def test_bad_arguments() -> None:
    X, y, groups = _data()
    with pytest.raises(
        UserError, match="strategy must be one of subsample, halving, full, got 'random'"
    ):
        search_tree(X, y, groups, GRID, strategy="random")
    with pytest.raises(UserError, match="same rows"):
        search_tree(X, y[:-1], groups, GRID)
    with pytest.raises(UserError, match="cannot fill 40 speaker-disjoint folds"):
        search_tree(X, y, groups, GRID, cv_folds=40)
