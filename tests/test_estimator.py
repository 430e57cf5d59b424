"""The estimator (BAClassifier), its fitting functions, speaker-grouped folds and the model file."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from smp_balr.core.errors import UserError
from smp_balr.core.settings import DtSettings, LogregSettings, MlpSettings
from smp_balr.data.tables import features_stage, read_features, require_columns, scorable_rows
from smp_balr.model.artefacts import load_model, save_model
from smp_balr.model.estimator import BAClassifier, fit_dt, fit_logreg, fit_mlp
from smp_balr.model.folds import check_classes, distinct_tree_params, grouped_folds
from smp_balr.model.sampling import COPY_COLUMN, oversample, oversample_indices

MLP = MlpSettings(
    hidden1_ratio=0.5,
    hidden2=4,
    learning_rate=0.01,
    batch_size=16,
    max_iter=30,
    early_stopping=1,
    validation_fraction=0.25,
    n_iter_no_change=5,
    tol=1e-4,
)
DT = DtSettings(grid={"max_depth": (2, 4), "criterion": ("gini",)}, cv_folds=3, n_jobs=1)


def _data(n_speakers=12, per=20, n_ba=10, seed=0):
    """Class 0/1 per row; BA0 equals the class 90% of the time, the rest is noise."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{i}" for i in range(n_speakers)], per)
    y = rng.integers(0, 2, groups.size)
    X = rng.integers(0, 2, (groups.size, n_ba)).astype(float)
    X[:, 0] = np.where(rng.random(groups.size) < 0.9, y, 1 - y)
    return X, y, groups


def test_grouped_folds_never_share_a_speaker_and_cover_all_rows():
    X, y, groups = _data(n_speakers=15)
    folds = grouped_folds(y, groups, 5, seed=1)
    assert len(folds) == 5
    seen = np.concatenate([va for _, va in folds])
    assert np.sort(seen).tolist() == list(range(len(y)))
    for tr, va in folds:
        assert not set(groups[tr]) & set(groups[va])


def test_grouped_folds_keep_copies_out_of_validation():
    X, y, groups = _data()
    is_copy = np.zeros(len(y), dtype=bool)
    is_copy[::7] = True
    for tr, va in grouped_folds(y, groups, 3, seed=0, is_copy=is_copy):
        assert not is_copy[va].any()
        assert is_copy[tr].sum() > 0


@pytest.mark.parametrize(
    "y, groups, folds, message",
    [
        (np.array([0, 0, 0]), np.array(["a", "b", "c"]), 2, "only 1 class"),
        (
            np.array([0, 1, 0, 1]),
            np.array(["a", "a", "b", "b"]),
            3,
            "2 training speakers cannot fill 3",
        ),
        (np.array([0, 0, 0, 1]), np.array(["a", "b", "c", "d"]), 2, "fewer rows than the 2 folds"),
    ],
)
def test_check_classes_errors(y, groups, folds, message):
    with pytest.raises(UserError, match=message):
        check_classes(y, groups, folds, "model.dt.cv_folds")


def test_fit_dt_finds_the_signal_with_speaker_folds():
    X, y, groups = _data()
    model, info = fit_dt(X, y, groups, DT, balance=2, seed=0)
    assert info["n_folds"] == 3 and info["cv_score"] > 0.8
    assert model.class_weight == "balanced"
    assert set(info["best_params"]) == {"max_depth", "criterion"}


def test_fit_mlp_early_stopping_holds_out_whole_speakers():
    X, y, groups = _data()
    model, info = fit_mlp(X, y, groups, MLP, balance=2, seed=0)
    assert model.hidden_layer_sizes == (5, 4)
    assert info["n_valid_speakers"] == 3 and info["n_valid_rows"] == 60
    assert 1 <= info["best_epoch"] <= info["epochs"] <= 30
    assert info["validation_score"] == pytest.approx(max(info["validation_scores"]))
    assert info["validation_score"] > 0.8
    assert model.predict_proba(X).shape == (len(y), 2)


def test_fit_mlp_oversampling_balances_the_rows_actually_fitted():
    X, y, groups = _data()
    keep = (y == 0) | (np.arange(len(y)) % 3 == 0)  # class 1 is the minority
    X, y, groups = X[keep], y[keep], groups[keep]
    df = pd.DataFrame({"y": y, "Speaker": groups})
    over = oversample(df, "y", seed=0)
    is_copy = over.pop(COPY_COLUMN).to_numpy()
    rows = np.concatenate([np.arange(len(y)), oversample_indices(y, groups, seed=0)])
    assert np.array_equal(over["y"].to_numpy(), y[rows])
    model, info = fit_mlp(X[rows], y[rows], groups[rows], MLP, balance=1, seed=0, is_copy=is_copy)
    fitted = info["fitted_class_counts"]
    assert fitted[0] == fitted[1]  # balanced among the held-in speakers, not over all speakers
    assert sum(fitted.values()) < len(rows)


def test_fit_mlp_without_early_stopping():
    X, y, groups = _data()
    model, info = fit_mlp(
        X,
        y,
        groups,
        MlpSettings(**{**MLP.__dict__, "early_stopping": 0, "max_iter": 5}),
        balance=0,
        seed=0,
    )
    assert "validation_score" not in info and info["epochs"] == 5


def _fitted(method: str = "dt", **kw) -> BAClassifier:
    X, y, groups = _data()
    frame = pd.DataFrame(X, columns=[f"BA{i}" for i in range(X.shape[1])])
    model = BAClassifier(method=method, dt=DT, mlp=MLP, logreg=LogregSettings(cv_folds=3), **kw)
    model.fit(frame, np.where(y == 1, "H", "N"), groups)
    model.metadata_ = {"label": "Emo", "train_speakers": sorted(set(groups))}
    return model


def test_save_and_load_model_round_trip(tmp_path):
    path = tmp_path / "models" / "model.joblib"
    model = _fitted()
    save_model(model, path)
    back = load_model(path)
    assert (
        list(back.classes_) == ["H", "N"]
        and back.metadata_["label"] == "Emo"
        and len(back.feature_names_in_) == 10
    )
    X, _, _ = _data(seed=3)
    frame = pd.DataFrame(X, columns=list(model.feature_names_in_))
    assert np.array_equal(back.predict_proba(frame), model.predict_proba(frame))
    assert list(tmp_path.joinpath("models").iterdir()) == [path]  # no temp file left


def test_load_model_errors(tmp_path):
    with pytest.raises(UserError, match=r"not found; run `dvc repro train`"):
        load_model(tmp_path / "none.joblib")
    joblib.dump({"model": "a dict of the old layout"}, tmp_path / "old.joblib")
    with pytest.raises(
        UserError, match="does not hold a BAClassifier .* retrain it with `dvc repro -f train`"
    ):
        load_model(tmp_path / "old.joblib")
    joblib.dump(BAClassifier(), tmp_path / "unfitted.joblib")
    with pytest.raises(UserError, match="is not fitted"):
        load_model(tmp_path / "unfitted.joblib")
    model = _fitted()
    del model.metadata_
    joblib.dump(model, tmp_path / "nometa.joblib")
    with pytest.raises(UserError, match="has no metadata"):
        load_model(tmp_path / "nometa.joblib")
    (tmp_path / "junk.joblib").write_text("not a pickle")
    with pytest.raises(UserError, match="cannot be read"):
        load_model(tmp_path / "junk.joblib")


def test_read_features_and_errors(tmp_path):
    good = tmp_path / "f.csv"
    good.write_text("Feature,score\nBA7,0.9\nBA2,0.5\n")
    assert read_features(good, "x") == ["BA7", "BA2"]
    with pytest.raises(UserError, match=r"not found; run `dvc repro select@Emo-slda`"):
        read_features(tmp_path / "missing.csv", features_stage("Emo", "slda"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match=r"is empty; run `dvc repro common@Emo`"):
        read_features(tmp_path / "empty.csv", features_stage("Emo", "common"))
    (tmp_path / "header.csv").write_text("Feature,score\n")
    with pytest.raises(UserError, match="lists no BA"):
        read_features(tmp_path / "header.csv", "x")


def test_require_columns_names_missing():
    with pytest.raises(UserError, match="2 model feature column.* BA8, BA9"):
        require_columns(["BA0", "BA1"], ["BA0", "BA8", "BA9"], "t.csv", "fix")


def test_distinct_tree_params_drops_only_identical_trees():
    grid = {"max_depth": [4], "min_samples_split": [2, 5, 10], "min_samples_leaf": [1, 2, 5]}
    kept = distinct_tree_params(grid)
    pairs = [(p["min_samples_split"], p["min_samples_leaf"]) for p in kept]
    assert pairs == [(2, 1), (5, 1), (10, 1), (2, 2), (5, 2), (10, 2), (2, 5)]
    X, y, _ = _data(n_speakers=20, n_ba=12)
    trees = {
        s: DecisionTreeClassifier(
            max_depth=4, min_samples_split=s, min_samples_leaf=5, random_state=0
        ).fit(X, y)
        for s in (2, 5, 10)
    }
    for s in (5, 10):  # the dropped points grow exactly the kept tree
        assert np.array_equal(trees[s].tree_.feature, trees[2].tree_.feature)
        assert np.array_equal(trees[s].tree_.value, trees[2].tree_.value)


def test_test_rows_filters_unseen_classes_and_checks_the_model(tmp_path):
    table = tmp_path / "test.csv"
    pd.DataFrame(
        {
            "FileName": ["a.wav", "b.wav", "c.wav", "d.wav"],
            "Speaker": ["s1", "s1", "s2", "s2"],
            "Emo": ["A", "H", "X", "A"],
            "BA0": [0, 1, 1, 0],
            "BA1": [1, 1, 0, 0],
        }
    ).to_csv(table, index=False)
    classes, feats = ["A", "H"], ["BA0", "BA1"]
    df, dropped, unseen = scorable_rows(table, "Emo", None, "Emo", classes, feats)
    assert (
        list(df["FileName"]) == ["a.wav", "b.wav", "d.wav"] and dropped == 0 and unseen == {"X": 1}
    )
    df, dropped, unseen = scorable_rows(
        table, "Emo", ["A", "S"], "Emo", classes, feats
    )  # S absent: a warning only
    assert list(df["Emo"]) == ["A", "A"] and dropped == 2 and unseen == {}
    with pytest.raises(UserError, match="trained for label 'Emo', params has 'Lang'"):
        scorable_rows(table, "Lang", None, "Emo", classes, feats)
    with pytest.raises(UserError, match="1 model feature column.* BA7"):
        scorable_rows(table, "Emo", None, "Emo", classes, ["BA0", "BA7"])


# ---------------------------------------------------------------------------- the estimator


@pytest.mark.parametrize("method", ["dt", "mlp", "logreg"])
def test_estimator_string_classes_groups_and_fit_info(method):
    model = _fitted(method, balance=2)
    X, y, _ = _data(seed=5)
    frame = pd.DataFrame(X, columns=list(model.feature_names_in_))
    assert list(model.classes_) == ["H", "N"] and model.n_features_in_ == 10
    proba = model.predict_proba(frame)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(frame)) <= {"H", "N"}
    assert model.score(frame, np.where(y == 1, "H", "N")) > 0.8  # BA0 carries the class
    score = model.fit_info_.get("cv_score", model.fit_info_.get("validation_score"))
    assert 0.8 < score <= 1.0
    assert set(model.fit_info_["fitted_class_counts"]) == {"H", "N"}
    with pytest.raises(ValueError, match="feature names"):
        model.predict_proba(frame.rename(columns={"BA0": "BA99"}))


def test_estimator_oversampling_inside_fit_matches_the_sampler():
    X, y, groups = _data()
    keep = (y == 0) | (np.arange(len(y)) % 3 == 0)
    X, y, groups = X[keep], np.where(y[keep] == 1, "H", "N"), groups[keep]
    model = BAClassifier(method="dt", balance=1, dt=DT).fit(X, y, groups)
    counts = model.fit_info_["fitted_class_counts"]
    assert counts["H"] == counts["N"] == int((y == "N").sum())
    assert counts["H"] - int((y == "H").sum()) == oversample_indices(y, groups, 0).size


def test_estimator_keeps_int8_input_until_the_model():
    X, y, groups = _data()
    seen = {}

    class Spy(BAClassifier):
        def fit(self, X, y, groups=None):
            seen["dtype"] = np.asarray(X).dtype
            return super().fit(X, y, groups)

    Spy(method="dt", dt=DT).fit(pd.DataFrame(X.astype(np.int8)), y, groups)
    assert seen["dtype"] == np.int8


def test_estimator_refuses_unknown_method_and_balance():
    X, y, groups = _data()
    with pytest.raises(ValueError, match="method must be one of logreg, mlp, dt"):
        BAClassifier(method="svm").fit(X, y, groups)
    with pytest.raises(ValueError, match="balance must be one of"):
        BAClassifier(balance=3).fit(X, y, groups)


def test_clone_keeps_settings():
    model = BAClassifier(method="dt", balance=2, random_state=7, dt=DT)
    twin = clone(model)
    assert twin.get_params()["dt"] == DT and twin.random_state == 7 and not hasattr(twin, "model_")


FAST_DT = DtSettings(grid={"max_depth": (3,)}, cv_folds=2, n_jobs=1)
FAST_LOGREG = LogregSettings(C=(1.0,), cv_folds=2)
# checks that do not apply: the speaker folds need 2+ rows of each of 2+ classes, so a single row
# or a single class is refused with a UserError naming the setting to change
_SKIPPED = {
    "check_fit2d_1sample": "fewer rows than folds is refused",
    "check_classifiers_one_label": "one class is refused with a UserError",
}


@parametrize_with_checks(
    [BAClassifier(method="dt", dt=FAST_DT), BAClassifier(method="logreg", logreg=FAST_LOGREG)],
    expected_failed_checks=lambda est: _SKIPPED,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_logreg_centred_fit_is_the_raw_fit_with_the_intercept_folded_in():
    from sklearn.linear_model import LogisticRegression

    X, y, groups = _data(n_speakers=12, per=30, n_ba=12, seed=3)
    X = X.astype(np.int8)
    model, info = fit_logreg(
        X, y, groups, LogregSettings(C=(0.5,), cv_folds=3, max_iter=1000), 0, seed=0
    )
    raw = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(X.astype(np.float64), y)
    assert np.abs(model.coef_ - raw.coef_).max() < 2e-3  # same optimum (lbfgs tol 1e-4 vs 1e-10)
    assert np.abs(model.intercept_ - raw.intercept_).max() < 2e-3
    assert np.abs(model.predict_proba(X.astype(np.float32)) - raw.predict_proba(X)).max() < 1e-3
    assert info["best_params"] == {"C": 0.5}
