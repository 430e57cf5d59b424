"""BAs stay in one byte (int8) from the BA files to the model input; no float64 copy of the table.

Real data: a small demo corpus is written in balr's file formats, formatted, written and read
back as the stages do; spies (subclasses that record what they receive) sit where the BA
matrix enters the libraries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smp_balr.core.settings import DemoSettings, SelectionSettings, SldaSettings
from smp_balr.data.demo import generate, write_corpus
from smp_balr.data.formatting import format_corpus, write_tables
from smp_balr.data.tables import ba_matrix, filter_classes, read_table
from smp_balr.model import tree_search
from smp_balr.selection import api, slda

SETTINGS = dict(
    n_speakers=16,
    n_test_speakers=4,
    utterances_per_speaker=30,
    n_ba=64,
    planted={"Language": 4, "Modality": 4, "EmoClass": 8},
    n_constant=4,
)


@pytest.fixture(scope="module")
def train_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dtype")
    corpus = generate(DemoSettings(seed=3, **SETTINGS))
    write_corpus(corpus, tmp / "ba", tmp / "labels.csv", tmp / "truth.json", seed=3)
    tables, _ = format_corpus(tmp / "labels.csv", tmp / "ba", split=True, progress=False)
    assert tables["train"].ba.dtype == np.int8
    out = {tmp / "train.csv": tables["train"], tmp / "test.csv": tables["test"]}
    write_tables(out)
    return tmp / "train.csv"


def test_table_and_matrix_are_int8(train_table: Path) -> None:
    df = read_table(train_table)
    X = ba_matrix(df)
    assert X.dtype == np.int8 and X.shape == (len(df), 64)
    assert set(np.unique(X)) <= {0, 1}
    sub = ba_matrix(df, ["BA5", "BA2"], dtype=np.float32)  # only the columns asked for, exact
    assert sub.dtype == np.float32 and sub.shape == (len(df), 2)
    assert np.array_equal(sub, X[:, [5, 2]])


def test_tree_search_feeds_the_tree_float32(
    train_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.dtype] = []

    class SpyTree(tree_search.DecisionTreeClassifier):
        def fit(self, X, y, sample_weight=None, check_input=True):  # noqa: N803 - sklearn's name
            seen.append(np.asarray(X).dtype)
            return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)

    monkeypatch.setattr(tree_search, "DecisionTreeClassifier", SpyTree)
    df, _ = filter_classes(read_table(train_table), "EmoClass", ["A", "H", "N", "S"])
    X = ba_matrix(df)
    y = np.unique(df["EmoClass"].to_numpy(dtype=str), return_inverse=True)[1]
    groups = df["Speaker"].to_numpy(dtype=str)
    grid = {"max_depth": [2, 3], "min_samples_leaf": [1, 2]}
    for strategy in tree_search.STRATEGIES:
        seen.clear()
        tree, info = tree_search.search_tree(
            X, y, groups, grid, cv_folds=3, seed=0, strategy=strategy
        )
        assert seen, f"{strategy}: the spy saw no fit"
        assert all(d == np.float32 for d in seen), (
            f"{strategy}: the tree was fed {set(map(str, seen))}"
        )
        assert isinstance(tree, SpyTree)


def test_selection_never_widens_the_table_to_float64(
    train_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.dtype] = []

    class SpyScatter(slda._Scatter):
        def __init__(self, X, y, groups=None):  # noqa: N803
            seen.append(np.asarray(X).dtype)
            super().__init__(X, y, groups)
            seen.append(self.X.dtype)

    monkeypatch.setattr(slda, "_Scatter", SpyScatter)
    df, _ = filter_classes(read_table(train_table), "EmoClass", ["A", "H", "N", "S"])
    settings = SelectionSettings(
        unit="within_speaker", correction="bonferroni", slda=SldaSettings(p_enter=0.05)
    )
    out = api.run_selection(df, "EmoClass", "slda", settings, seed=0)
    assert seen == [
        np.dtype(np.int8),
        np.dtype(np.float32),
    ]  # int8 in, float32 (exact for 0/1) inside
    assert len(out.features) > 0


@pytest.mark.parametrize("method", ["logreg", "mlp"])
def test_linear_probe_and_mlp_are_fed_float32_never_float64(
    train_table: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smp_balr.core.settings import LogregSettings, MlpSettings
    from smp_balr.model import estimator

    seen: list[np.dtype] = []
    base = {"logreg": estimator.LogisticRegression, "mlp": estimator.MLPClassifier}[method]

    class Spy(base):  # records the dtype of every matrix the library receives
        def fit(self, X, y, *args, **kwargs):  # noqa: N803
            seen.append(np.asarray(X).dtype)
            return super().fit(X, y, *args, **kwargs)

        def partial_fit(self, X, y, *args, **kwargs):  # noqa: N803
            seen.append(np.asarray(X).dtype)
            return super().partial_fit(X, y, *args, **kwargs)

        def predict_proba(self, X):  # noqa: N803
            seen.append(np.asarray(X).dtype)
            return super().predict_proba(X)

    if method == "logreg":
        monkeypatch.setattr(estimator, "LogisticRegression", Spy)
    else:
        monkeypatch.setattr(estimator, "MLPClassifier", Spy)
    df, _ = filter_classes(read_table(train_table), "EmoClass", ["A", "H", "N", "S"])
    X = ba_matrix(df)
    y, groups = df["EmoClass"].to_numpy(dtype=str), df["Speaker"].to_numpy(dtype=str)
    model = estimator.BAClassifier(
        method=method,
        random_state=0,
        logreg=LogregSettings(C=(0.1, 1.0), cv_folds=3),
        mlp=MlpSettings(max_iter=3, validation_fraction=0.25),
    )
    model.fit(X, y, groups)
    model.predict_proba(X[:50])
    assert seen, "the spy saw no call"
    assert set(seen) == {np.dtype(np.float32)}, f"{method} was fed {sorted(map(str, set(seen)))}"
