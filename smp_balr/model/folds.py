"""Speaker-disjoint folds and the checks that a training set can fill them."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold

from smp_balr.core.errors import UserError


def check_classes(y: np.ndarray, groups: np.ndarray, n_folds: int, what: str) -> None:
    """Raise a :class:`UserError` if ``y`` cannot be split into ``n_folds`` speaker folds.

    Parameters
    ----------
    y : numpy.ndarray
        Class of each row.
    groups : numpy.ndarray
        Speaker of each row.
    n_folds : int
        Folds wanted.
    what : str
        The setting that sets ``n_folds``, named in the message (e.g. ``model.dt.cv_folds``).
    """
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise UserError(
            f"only {classes.size} class left for training after filtering "
            f"({', '.join(map(str, classes)) or 'none'}); "
            "a model needs at least 2 classes"
        )
    n_speakers = np.unique(groups).size
    if n_speakers < n_folds:
        raise UserError(
            f"{n_speakers} training speakers cannot fill {n_folds} speaker-disjoint folds; "
            f"lower {what}"
        )
    small = [f"{c} ({n})" for c, n in zip(classes, counts) if n < n_folds]
    if small:
        raise UserError(
            f"class(es) {', '.join(small)} have fewer rows than the {n_folds} folds; "
            f"lower {what} or drop the class under `classes` in params.yaml"
        )


def validation_folds(fraction: float) -> int:
    """Folds whose first one holds out about ``fraction`` of the speakers (at least 2)."""
    return max(2, int(round(1.0 / fraction))) if 0.0 < fraction < 1.0 else 2


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int, is_copy: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Speaker-disjoint stratified folds; oversampled copies never enter a validation fold.

    Parameters
    ----------
    y, groups : numpy.ndarray
        Class and speaker of each row.
    n_folds : int
        Number of folds.
    seed : int
        Shuffling seed.
    is_copy : numpy.ndarray of bool, optional
        Rows added by oversampling; dropped from the validation indices.

    Returns
    -------
    list of (train_idx, valid_idx)
    """
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        folds = list(splitter.split(np.zeros(len(y)), y, groups))
    if is_copy is not None:
        folds = [(tr, va[~is_copy[va]]) for tr, va in folds]
    return folds


def distinct_tree_params(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """Grid points in grid order, without those that grow the same tree as an earlier one.

    scikit-learn uses ``max(min_samples_split, 2 * min_samples_leaf)`` as the effective
    split minimum (a node with fewer rows cannot give two legal leaves), so e.g. with
    ``min_samples_leaf=5`` the splits 2, 5 and 10 are one tree; the first is kept, and its
    score is the one the full grid would report for all three.
    """
    seen: set = set()
    out = []
    for point in ParameterGrid({k: list(v) for k, v in grid.items()}):
        key = dict(point)
        split, leaf = key.get("min_samples_split", 2), key.get("min_samples_leaf", 1)
        if isinstance(split, int) and isinstance(leaf, int) and "min_samples_split" in key:
            key["min_samples_split"] = max(split, 2 * leaf)
        signature = tuple(sorted((k, repr(v)) for k, v in key.items()))
        if signature not in seen:
            seen.add(signature)
            out.append(dict(point))
    return out
