"""SHAP values of a classifier's outputs: exact for trees and linear models, sampled otherwise.

* Decision trees use :class:`shap.TreeExplainer` (``tree_path_dependent``): exact Shapley
  values of the class probabilities, additive to float precision.
* The linear probe uses :class:`shap.LinearExplainer` on an independent background:
  exact Shapley values of each class's log-odds (decision function).
* Any other model with ``predict_proba`` (the MLP) uses a model-agnostic explainer on a
  summarised background: ``permutation`` (:class:`shap.PermutationExplainer`, antithetic
  permutations) or ``kernel`` (:class:`shap.KernelExplainer`), additive with respect to
  their base value (the mean prediction over the background).

SHAP values are handled as one ``(rows, features, classes)`` array throughout.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import numpy as np

from smp_balr.core.options import AGNOSTIC_EXPLAINERS, BACKGROUNDS
from smp_balr.core.parallel import map_row_chunks
from smp_balr.model.sampling import stratified_sample

log = logging.getLogger(__name__)

# additivity tolerances checked by the stage (and the tests)
TREE_TOLERANCE = 1e-6
AGNOSTIC_TOLERANCE = 1e-5  # the agnostic explainers evaluate the model in float32 (see explain)
# rows per chunk of the model-agnostic explainers: fixed, so that the chunks and their seeds,
# hence the values, do not depend on the number of workers or where they run
CHUNK_ROWS = 25
# shap's sampling explainers draw from numpy's global generator: chunks running as threads of
# one process (joblib's threading backend) take turns; processes each have their own
_GLOBAL_RNG = threading.Lock()


def unwrap_estimator(model: Any) -> Any:
    """The fitted scikit-learn model inside a model or search object, or the model itself.

    Inside a :class:`~smp_balr.model.estimator.BAClassifier` it is ``model_``, inside a search
    object ``best_estimator_``.
    """
    model = getattr(model, "model_", model)
    return getattr(model, "best_estimator_", model)


def is_tree_model(model: Any) -> bool:
    """True for sklearn tree models that :class:`shap.TreeExplainer` explains exactly."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import BaseDecisionTree

    return isinstance(
        unwrap_estimator(model), (BaseDecisionTree, RandomForestClassifier, ExtraTreesClassifier)
    )


def is_linear_model(model: Any) -> bool:
    """True for sklearn linear classifiers that :class:`shap.LinearExplainer` explains exactly."""
    from sklearn.linear_model import LogisticRegression

    return isinstance(unwrap_estimator(model), LogisticRegression)


def make_background(
    x: np.ndarray, labels: Sequence[str], kind: str, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Summarise ``x`` into a small background set for a model-agnostic explainer.

    Parameters
    ----------
    x : numpy.ndarray
        (rows, features) 0/1 matrix.
    labels : sequence of str
        Class of each row (for the stratified ``sample`` background).
    kind : {"kmeans", "sample"}
        ``kmeans``: k-means centroids, each value rounded to the nearest observed value
        of its column (0/1 stay 0/1), weighted by cluster size; ``sample``: a stratified
        random sample of rows with equal weights.
    size : int
        Number of background rows.
    seed : int
        Random seed.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Background rows and their weights (summing to 1).
    """
    if kind not in BACKGROUNDS:
        raise ValueError(f"kind must be one of {', '.join(BACKGROUNDS)}, got {kind!r}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    size = min(size, len(x))
    if kind == "sample":
        idx = stratified_sample(labels, size, seed)
        return x[idx], np.full(len(idx), 1.0 / len(idx))
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=size, random_state=seed, n_init=1).fit(x)
    centres = km.cluster_centers_.copy()
    for j in range(x.shape[1]):
        values = np.unique(x[:, j])
        nearest = np.abs(centres[:, j, None] - values[None, :]).argmin(axis=1)
        centres[:, j] = values[nearest]
    weights = np.bincount(km.labels_, minlength=size).astype(float)
    return centres, weights / weights.sum()


# --------------------------------------------------------------------------- explaining


@dataclass
class Explanation:
    """SHAP values of a model's per-class output for a set of rows.

    Attributes
    ----------
    values : numpy.ndarray
        (rows, features, classes).
    base : numpy.ndarray
        (rows, classes) base value (expected output) per row and class.
    proba : numpy.ndarray
        (rows, classes) the explained output: ``predict_proba``, or for ``linear`` each
        class's log-odds (decision function).
    explainer : str
        ``tree``, ``linear``, ``permutation`` or ``kernel``.
    """

    values: np.ndarray
    base: np.ndarray
    proba: np.ndarray
    explainer: str

    @property
    def output(self) -> str:
        """What the values add up to: ``log-odds`` (linear) or ``probability``."""
        return "log-odds" if self.explainer == "linear" else "probability"

    @property
    def additivity_error(self) -> float:
        """max |base + sum of SHAP values - explained output| over rows and classes."""
        if self.values.size == 0:
            return 0.0
        return float(np.abs(self.base + self.values.sum(axis=1) - self.proba).max())


def _as_3d(values: Any, n_rows: int, n_features: int, n_classes: int) -> np.ndarray:
    """Bring shap's output to (rows, features, classes) whatever its shape or list form."""
    arr = np.asarray(values, dtype=np.float64)
    if (
        arr.ndim == 3
        and arr.shape == (n_classes, n_rows, n_features)
        and arr.shape != (n_rows, n_features, n_classes)
    ):
        arr = np.transpose(arr, (1, 2, 0))  # old list-per-class form
    if arr.ndim == 2 and n_classes == 1:
        arr = arr[:, :, None]
    if arr.shape != (n_rows, n_features, n_classes):
        raise RuntimeError(
            f"unexpected SHAP output shape {arr.shape}, wanted {(n_rows, n_features, n_classes)}"
        )
    return arr


def _base_2d(base: Any, n_rows: int, n_classes: int) -> np.ndarray:
    """Bring shap's base values to (rows, classes), broadcasting one value per class."""
    arr = np.asarray(base, dtype=np.float64)
    if arr.ndim <= 1:
        arr = np.broadcast_to(arr.reshape(1, -1), (n_rows, n_classes))
    return np.array(arr, dtype=np.float64).reshape(n_rows, n_classes)


def explain(
    model: Any,
    x: np.ndarray,
    background: tuple[np.ndarray, np.ndarray] | None = None,
    mlp_explainer: str = "permutation",
    permutations: int = 1,
    kernel_nsamples: int = 1100,
    seed: int = 0,
    n_jobs: int = 1,
) -> Explanation:
    """SHAP values of ``model``'s per-class output for the rows of ``x``.

    Parameters
    ----------
    model : estimator
        Fitted classifier with ``predict_proba`` (a search object is unwrapped).
    x : numpy.ndarray
        (rows, features) rows to explain, columns in model input order.
    background : (numpy.ndarray, numpy.ndarray), optional
        Background rows and weights from :func:`make_background`; required for non-tree models
        (the linear explainer takes the rows' mean as the expected input).
    mlp_explainer : {"permutation", "kernel"}
        Model-agnostic explainer for non-tree models.
    permutations : int
        ``permutation``: antithetic permutation pairs per row (model calls per row =
        ``permutations * (2 * features + 1)`` times the background size).
    kernel_nsamples : int
        ``kernel``: coalitions sampled per row.
    seed : int
        Random seed for the agnostic explainers.
    n_jobs : int
        Agnostic explainers: joblib workers over chunks of :data:`CHUNK_ROWS` rows (on the
        enclosing :func:`smp_balr.core.parallel.parallel_backend`), chunk ``k`` seeded from
        ``(seed, k)``; the values are the same for any ``n_jobs`` and backend.

    Returns
    -------
    Explanation
    """
    import shap

    est = unwrap_estimator(model)
    x = np.asarray(x, dtype=np.float64)
    agnostic = not is_tree_model(est) and not is_linear_model(est)
    # the agnostic explainers evaluate the model on float32 BAs (below): the explained output
    # is that same evaluation
    proba = _Proba64(est)(x.astype(np.float32) if agnostic else x)
    n_rows, n_features = x.shape
    n_classes = proba.shape[1]
    if is_tree_model(est):
        explainer = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")
        values = explainer.shap_values(x, check_additivity=False)
        base = explainer.expected_value
        name = "tree"
    elif is_linear_model(est):
        values, base, proba = _linear_values(est, x, background)
        name = "linear"
    else:
        _check_agnostic(mlp_explainer, background, permutations, kernel_nsamples)
        values, base = _agnostic_values(
            est,
            x,
            background,
            mlp_explainer,
            permutations,
            kernel_nsamples,
            seed,
            n_classes,
            n_jobs,
        )
        name = mlp_explainer
    return Explanation(
        values=_as_3d(values, n_rows, n_features, n_classes),
        base=_base_2d(base, n_rows, n_classes),
        proba=np.asarray(proba, dtype=np.float64),
        explainer=name,
    )


def _linear_values(
    est: Any, x: np.ndarray, background: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact SHAP values, base values and log-odds of a linear model (both classes of two)."""
    import shap

    if background is None:
        raise ValueError("a background is required for the linear explainer")
    bg = background[0]
    out = shap.LinearExplainer(est, shap.maskers.Independent(bg, max_samples=len(bg)))(x)
    values, base, proba = out.values, out.base_values, est.decision_function(x)
    if proba.ndim == 1:  # two classes: one log-odds, class 0's is its negative
        values, base, proba = (
            np.stack([-values, values], axis=-1),
            np.stack([-base, base], axis=-1),
            np.stack([-proba, proba], axis=-1),
        )
    return values, base, proba


def _check_agnostic(
    mlp_explainer: str,
    background: tuple[np.ndarray, np.ndarray] | None,
    permutations: int,
    kernel_nsamples: int,
) -> None:
    """Refuse an unknown agnostic explainer, a missing background or a sampling size below 1."""
    if mlp_explainer not in AGNOSTIC_EXPLAINERS:
        raise ValueError(
            f"mlp_explainer must be one of {', '.join(AGNOSTIC_EXPLAINERS)}, got {mlp_explainer!r}"
        )
    if background is None:
        raise ValueError("a background is required for a model-agnostic explainer")
    if mlp_explainer == "permutation" and permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    if mlp_explainer == "kernel" and kernel_nsamples < 1:
        raise ValueError(f"kernel_nsamples must be at least 1, got {kernel_nsamples}")


def _agnostic_values(
    est: Any,
    x: np.ndarray,
    background: tuple[np.ndarray, np.ndarray],
    mlp_explainer: str,
    permutations: int,
    kernel_nsamples: int,
    seed: int,
    n_classes: int,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values and base values of the agnostic explainer, chunk by chunk over the rows."""
    # 0/1 BAs are exact in float32, and a model fitted on float32 (the MLP) then computes in
    # float32: 2.9x faster than float64 on the demo's 500 BAs, additivity within 1e-6
    x32, background = (
        x.astype(np.float32),
        (np.asarray(background[0], dtype=np.float32), background[1]),
    )
    work = partial(
        _agnostic_chunk,
        est,
        background,
        mlp_explainer,
        permutations,
        kernel_nsamples,
        seed,
        n_classes,
    )
    n_chunks = max(1, -(-len(x) // CHUNK_ROWS))
    stacked = map_row_chunks(
        work, x32, n_chunks, n_jobs=n_jobs, indexed=True, progress=f"SHAP ({mlp_explainer})"
    )
    return stacked[:, :-1, :], stacked[:, -1, :]


def _agnostic_chunk(
    est: Any,
    background: tuple[np.ndarray, np.ndarray],
    kind: str,
    permutations: int,
    kernel_nsamples: int,
    seed: int,
    n_classes: int,
    x: np.ndarray,
    chunk: int,
) -> np.ndarray:
    """SHAP values and base values of a chunk of rows, (rows, features + 1, classes): base last.

    The chunk's explainer is seeded from ``(seed, chunk)`` only.
    """
    import shap

    n_rows, n_features = x.shape
    bg, weights = background
    predict = _Proba64(est)
    chunk_seed = int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])
    with _GLOBAL_RNG:
        state = np.random.get_state()
        try:
            if kind == "permutation":
                # weights as repeated rows would cost time; the masker averages rows equally
                masker = shap.maskers.Independent(bg, max_samples=len(bg))
                explainer = shap.PermutationExplainer(predict, masker, seed=chunk_seed)
                out = explainer(x, max_evals=permutations * (2 * n_features + 1), silent=True)
                values, base = out.values, out.base_values
            else:
                data = shap.utils._legacy.DenseData(
                    bg, [str(i) for i in range(n_features)], None, weights * len(bg)
                )
                explainer = shap.KernelExplainer(predict, data)
                # KernelExplainer samples coalitions from numpy's global generator
                np.random.seed(chunk_seed)
                values = explainer.shap_values(x, nsamples=kernel_nsamples, silent=True)
                base = explainer.expected_value
        finally:
            np.random.set_state(state)  # the caller's generator is left as it was
    values = _as_3d(values, n_rows, n_features, n_classes)
    return np.concatenate([values, _base_2d(base, n_rows, n_classes)[:, None, :]], axis=1)


class _Proba64:
    """``predict_proba`` of a model, returned as float64 (shap sums the values in float64)."""

    def __init__(self, est: Any):
        self.est = est

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.est.predict_proba(x), dtype=np.float64)
