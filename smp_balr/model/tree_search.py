"""Speaker-grouped hyper-parameter search for the decision tree, fast on large corpora.

Three strategies, all with speaker-disjoint stratified folds (oversampled copies never
enter a validation fold) and grid points that grow identical trees fitted once
(:func:`smp_balr.model.folds.distinct_tree_params`):

``full``
    every distinct grid point x every fold on all rows (``GridSearchCV``); the reference.
``halving``
    successive halving over rows (``HalvingGridSearchCV``, resource ``n_samples``): every
    candidate is scored on a small random share of each fold's rows, the best
    ``1 / factor`` go on to ``factor`` times more rows, until the survivors are scored on
    all rows. The subsample of a fold is drawn from that fold's own training and
    validation rows, so the folds stay speaker-disjoint at every size.
``subsample``
    the full grid on a subsample of at most ``max_search_rows`` rows that keeps every
    speaker and every speaker's class mix (the same share of each speaker x class cell),
    then the best point refitted on all rows.

The chosen tree is always refitted on all rows given.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

# HalvingGridSearchCV is still flagged experimental in scikit-learn: this import enables it
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV
from sklearn.tree import DecisionTreeClassifier

from smp_balr.core.errors import UserError
from smp_balr.core.options import TREE_SEARCH
from smp_balr.model.folds import check_classes, distinct_tree_params, grouped_folds

log = logging.getLogger(__name__)

STRATEGIES = TREE_SEARCH


def stratified_speaker_subsample(
    y: np.ndarray, groups: np.ndarray, n_rows: int, seed: int
) -> np.ndarray:
    """Row indices of a subsample keeping every speaker x class cell in proportion.

    Each cell keeps ``ceil(share * size)`` rows (at least one), drawn at random, with
    ``share = n_rows / len(y)``; oversampled copies are drawn like any other row.

    Parameters
    ----------
    y, groups : numpy.ndarray
        Class and speaker of each row.
    n_rows : int
        Approximate size wanted (the result may exceed it by up to one row per cell).
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        Sorted row indices.
    """
    n = len(y)
    if n_rows >= n:
        return np.arange(n)
    share = n_rows / n
    rng = np.random.default_rng(seed)
    spk = np.unique(groups, return_inverse=True)[1].ravel()
    cls = np.unique(y, return_inverse=True)[1].ravel()
    cell = np.unique(spk * (cls.max() + 1) + cls, return_inverse=True)[1].ravel()
    order = np.lexsort((rng.random(n), cell))  # rows grouped by cell, random order inside
    sizes = np.bincount(cell)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    take = np.maximum(1, np.ceil(share * sizes).astype(int))
    pos_in_cell = np.arange(n) - np.repeat(starts, sizes)
    chosen = order[pos_in_cell < np.repeat(take, sizes)]
    return np.sort(chosen)


def search_tree(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    grid: Mapping[str, Sequence[Any]],
    cv_folds: int = 5,
    scoring: str = "balanced_accuracy",
    seed: int = 0,
    n_jobs: int = 1,
    strategy: str = "subsample",
    is_copy: np.ndarray | None = None,
    class_weight: str | None = None,
    factor: int = 3,
    min_resources: int | str = "exhaust",
    max_search_rows: int = 20000,
) -> tuple[DecisionTreeClassifier, dict[str, Any]]:
    """Search the tree's hyper-parameters with speaker-grouped folds; refit the best on all rows.

    Parameters
    ----------
    X : numpy.ndarray
        BA matrix (rows, BAs); int8 / bool / float32 are passed on without a float64 copy.
    y : numpy.ndarray
        Integer class codes.
    groups : numpy.ndarray
        Speaker of each row.
    grid : mapping of str to list
        DecisionTreeClassifier parameters and their candidate values.
    cv_folds : int
        Speaker-disjoint stratified folds.
    scoring : str
        scikit-learn scorer name.
    seed : int
        Seed of the folds, the tree and the subsamples.
    n_jobs : int
        Parallel fits (joblib; the backend is the caller's ``joblib.parallel_config``).
    strategy : {"subsample", "halving", "full"}
        See the module docstring. ``subsample`` (default) chose the full grid's tree on a
        100k-utterance corpus at a quarter of its CPU time; ``halving`` was cheaper still
        but picked a shallower tree (test balanced accuracy 0.056 lower) there, its first
        rounds scoring on too few rows (benchmarks/bench_tree_search.py).
    is_copy : numpy.ndarray of bool, optional
        Rows added by oversampling; never in a validation fold.
    class_weight : {"balanced", None}
        Passed to the tree.
    factor : int
        ``halving``: the share of candidates kept (1 / factor) and the growth of rows per round.
    min_resources : int or {"exhaust", "smallest"}
        ``halving``: rows in the first round (scikit-learn's meaning).
    max_search_rows : int
        ``subsample``: rows of the searched subsample.

    Returns
    -------
    (DecisionTreeClassifier, dict)
        The best tree refitted on all rows, and ``{cv_score, cv_score_std, best_params,
        n_folds, n_fits, n_candidates, n_grid, strategy, search_rows, seconds, cv_results}``;
        ``cv_results`` holds plain lists (``params, mean_test_score, std_test_score,
        n_resources, iter``) for a plot. ``cv_score`` is the best candidate's mean fold
        score on the rows it was last scored on (all rows for ``full`` and ``halving``,
        the subsample for ``subsample``).
    """
    if strategy not in STRATEGIES:
        raise UserError(
            f"dt search strategy must be one of {', '.join(STRATEGIES)}, got '{strategy}'"
        )
    X, y, groups = _checked_input(X, y, groups)
    n_folds = int(cv_folds)
    check_classes(y, groups, n_folds, "model.dt.cv_folds")
    grid = {k: list(v) for k, v in dict(grid).items()}
    candidates = distinct_tree_params(grid)
    n_grid = int(np.prod([len(v) for v in grid.values()]))
    param_grid = [{k: [v] for k, v in c.items()} for c in candidates]
    t0 = time.perf_counter()
    tree = DecisionTreeClassifier(random_state=seed, class_weight=class_weight)
    try:
        if strategy == "subsample":
            rows = stratified_speaker_subsample(y, groups, int(max_search_rows), seed)
            sub_copy = None if is_copy is None else np.asarray(is_copy)[rows]
            folds = grouped_folds(y[rows], groups[rows], n_folds, seed, sub_copy)
            search = _grid_search(tree, param_grid, folds, scoring, n_jobs, refit=False)
            search.fit(X[rows], y[rows])
            best = DecisionTreeClassifier(
                random_state=seed, class_weight=class_weight, **search.best_params_
            ).fit(X, y)
            search_rows = len(rows)
        else:
            folds = grouped_folds(y, groups, n_folds, seed, is_copy)
            if strategy == "full":
                search = _grid_search(tree, param_grid, folds, scoring, n_jobs, refit=True)
            else:
                search = _halving_search(
                    tree, param_grid, folds, scoring, n_jobs, factor, min_resources, seed
                )
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message="The least populated class", category=UserWarning
                )
                search.fit(X, y)
            best, search_rows = search.best_estimator_, len(y)
    except ValueError as err:
        reason = " ".join(str(err).split())[:200]
        raise UserError(
            f"dt grid search failed ({reason}); check model.dt in params.yaml"
        ) from None
    info = _search_info(search, strategy, len(candidates), n_folds, n_grid, search_rows, t0)
    _log_search(info, len(candidates))
    return best, info


def _checked_input(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X`` (float32), ``y`` and ``groups`` as arrays, refused when their rows differ."""
    X = _model_input(X)
    y = np.asarray(y)
    groups = np.asarray(groups)
    if not (len(X) == len(y) == len(groups)):
        raise UserError(
            f"X, y and groups must have the same rows, got {len(X)}, {len(y)}, {len(groups)}"
        )
    return X, y, groups


def _grid_search(
    tree: DecisionTreeClassifier,
    param_grid: list[dict[str, list[Any]]],
    folds: list[tuple[np.ndarray, np.ndarray]],
    scoring: str,
    n_jobs: int,
    refit: bool,
) -> GridSearchCV:
    """Every grid point scored on the given folds (``subsample`` refits the best itself)."""
    return GridSearchCV(tree, param_grid, scoring=scoring, cv=folds, n_jobs=n_jobs, refit=refit)


def _halving_search(
    tree: DecisionTreeClassifier,
    param_grid: list[dict[str, list[Any]]],
    folds: list[tuple[np.ndarray, np.ndarray]],
    scoring: str,
    n_jobs: int,
    factor: int,
    min_resources: int | str,
    seed: int,
) -> HalvingGridSearchCV:
    """``halving``: successive halving over rows, the best refitted on all rows."""
    return HalvingGridSearchCV(
        tree,
        param_grid,
        factor=factor,
        resource="n_samples",
        min_resources=min_resources,
        scoring=scoring,
        cv=folds,
        n_jobs=n_jobs,
        refit=True,
        random_state=seed,
    )


def _search_info(
    search: GridSearchCV | HalvingGridSearchCV,
    strategy: str,
    n_candidates: int,
    n_folds: int,
    n_grid: int,
    search_rows: int,
    t0: float,
) -> dict[str, Any]:
    """What :func:`search_tree` reports about a fitted search, as plain data (JSON-ready)."""
    res = search.cv_results_
    i = int(search.best_index_)
    n_res = res.get("n_resources", np.full(len(res["params"]), search_rows))
    fitted = int(sum(search.n_candidates_)) if strategy == "halving" else n_candidates
    return {
        "strategy": strategy,
        "cv_score": float(search.best_score_),
        "cv_score_std": float(res["std_test_score"][i]),
        "best_params": {k: _plain(v) for k, v in search.best_params_.items()},
        "n_folds": n_folds,
        "n_fits": fitted * n_folds + 1,  # the refit on all rows included
        "n_candidates": n_candidates,
        "n_grid": n_grid,
        "search_rows": int(search_rows),
        "seconds": round(time.perf_counter() - t0, 3),
        "cv_results": {
            "params": [{k: _plain(v) for k, v in p.items()} for p in res["params"]],
            "mean_test_score": [float(v) for v in res["mean_test_score"]],
            "std_test_score": [float(v) for v in res["std_test_score"]],
            "n_resources": [int(v) for v in n_res],
            "iter": [int(v) for v in res.get("iter", np.zeros(len(res["params"]), dtype=int))],
        },
    }


def _log_search(info: dict[str, Any], n_candidates: int) -> None:
    """One log line: distinct grid points, fits, the best point and its CV score, seconds."""
    log.info(
        "dt search (%s): %d of %d grid points distinct, %d fits, best %s, CV %.3f +- %.3f, %.1f s",
        info["strategy"],
        n_candidates,
        info["n_grid"],
        info["n_fits"],
        info["best_params"],
        info["cv_score"],
        info["cv_score_std"],
        info["seconds"],
    )


def _model_input(X: np.ndarray) -> np.ndarray:
    """``X`` as the tree reads it: float32 (the tree's own dtype; a float64 input is narrowed)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise UserError(f"X must be a 2-D BA matrix, got shape {X.shape}")
    return X if X.dtype == np.float32 else X.astype(np.float32)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
