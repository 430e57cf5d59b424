"""joblib backends: the dt search and row-chunked SHAP give identical results on any backend,
a Dask cluster included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from smp_balr.core.errors import UserError
from smp_balr.core.parallel import dask_available, map_row_chunks, parallel_backend
from smp_balr.explain.compute import explain
from smp_balr.model.tree_search import search_tree

needs_dask = pytest.mark.skipif(
    not dask_available(),
    reason="dask.distributed is not installed (optional extra: pip install dask distributed)",
)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12 speakers x 30 utterances x 20 BAs; class 1 raises BAs 0-2, speakers have own rates."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(12), 30).astype(str)
    y = rng.integers(0, 2, groups.size)
    p = np.repeat(rng.uniform(0.2, 0.8, (12, 20)), 30, axis=0)
    p[:, :3] += 0.25 * y[:, None]
    X = (rng.random(p.shape) < p).astype(np.int8)
    return X, y, groups


def _mlp_shap(kind: str = "permutation", n_jobs: int = 2) -> np.ndarray:
    """SHAP values of a small MLP on 60 rows (3 chunks) by a model-agnostic explainer."""
    X, y, _ = _data()
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(
        X.astype(np.float32), y
    )
    background = (X[:6].astype(np.float64), np.full(6, 1 / 6))
    return explain(
        mlp, X[:60], background, kind, permutations=1, kernel_nsamples=64, seed=3, n_jobs=n_jobs
    ).values


def _run_all() -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    import shap

    X, y, groups = _data()
    grid = {"max_depth": [2, 4, 6], "min_samples_leaf": [1, 5], "criterion": ["gini", "entropy"]}
    tree, info = search_tree(X, y, groups, grid, cv_folds=3, seed=1, n_jobs=2, strategy="full")
    explainer = shap.TreeExplainer(tree)
    values = map_row_chunks(
        lambda rows: np.asarray(explainer.shap_values(rows.astype(np.float64))), X[:40], 4, n_jobs=2
    )
    return info, tree.predict_proba(X.astype(np.float32)), values, _mlp_shap()


@pytest.mark.parametrize("kind", ["permutation", "kernel"])
def test_agnostic_shap_is_the_same_for_any_number_of_workers_and_backend(kind: str) -> None:
    one = _mlp_shap(kind, n_jobs=1)
    assert one.shape == (60, 20, 2) and np.abs(one).sum() > 0
    assert np.array_equal(_mlp_shap(kind, n_jobs=2), one)  # loky processes
    with parallel_backend("threading"):  # threads share numpy's global generator: chunks take turns
        assert np.array_equal(_mlp_shap(kind, n_jobs=2), one)


def test_unknown_backend_and_stray_address() -> None:
    with pytest.raises(UserError, match="parallel backend 'spark' is unknown"):
        with parallel_backend("spark"):
            pass
    with pytest.raises(UserError, match="only used by the dask backend"):
        with parallel_backend("loky", "tcp://127.0.0.1:8786"):
            pass


def test_map_row_chunks_keeps_row_order() -> None:
    X = np.arange(23)[:, None] * np.ones((1, 3))
    with parallel_backend("threading"):
        out = map_row_chunks(lambda rows: rows.sum(axis=1), X, n_chunks=5, n_jobs=2)
    assert np.array_equal(out, X.sum(axis=1))
    assert map_row_chunks(lambda rows: rows, X[:2], n_chunks=8).shape == (2, 3)


@needs_dask
def test_dask_local_cluster_gives_identical_results() -> None:
    from distributed import LocalCluster

    default_info, default_proba, default_values, default_mlp = _run_all()
    with LocalCluster(
        n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        with parallel_backend("dask", cluster.scheduler_address):
            dask_info, dask_proba, dask_values, dask_mlp = _run_all()
    for key in ("best_params", "cv_score", "cv_score_std", "cv_results"):
        assert dask_info[key] == default_info[key], key
    assert np.array_equal(dask_proba, default_proba)
    assert np.array_equal(dask_values, default_values)
    assert np.array_equal(dask_mlp, default_mlp)
    assert default_values.shape[0] == 40


@needs_dask
def test_dask_without_client_or_address_says_so() -> None:
    with pytest.raises(UserError, match="found no Dask client"):
        with parallel_backend("dask"):
            pass


_HELD: list[np.ndarray] = []  # memory a worker keeps between tasks, as fitted models and SHAP do


def _grow(seconds: float) -> int:
    """Keep 320 MB more in this worker process, then wait past loky's 1 s memory check."""
    import os
    import time

    _HELD.append(np.ones(40_000_000))
    time.sleep(seconds)
    return os.getpid()


def _replaced_workers(within_backend: bool) -> tuple[int, list[str]]:
    """Run tasks that make loky replace its workers; the distinct worker pids and the warnings."""
    import warnings

    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # fresh workers, whatever ran before
    tasks = [delayed(_grow)(1.05) for _ in range(5)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if within_backend:
            with parallel_backend("loky"):
                pids = Parallel(n_jobs=2)(tasks)
        else:
            pids = Parallel(n_jobs=2, backend="loky")(tasks)
    get_reusable_executor().shutdown(wait=True)
    return len(set(pids)), [str(w.message) for w in caught]


def test_loky_replacing_a_grown_worker_is_not_reported_as_a_leak() -> None:
    """loky swaps a worker whose memory grew: inside parallel_backend that stays out of the log."""
    workers, outside = _replaced_workers(within_backend=False)
    assert workers > 2, "the tasks did not make loky replace a worker; the test checks nothing"
    assert any("A worker stopped" in m for m in outside)
    workers, inside = _replaced_workers(within_backend=True)
    assert workers > 2
    assert not [m for m in inside if "A worker stopped" in m], inside
