"""SHAP explanations: which BAs drive the model's class probabilities.

The ``explain`` stage samples test rows (stratified by class), explains the trained
model's ``predict_proba`` with SHAP and summarises the values per class and globally.

* Decision trees (and other sklearn tree models) use :class:`shap.TreeExplainer` with
  ``tree_path_dependent`` perturbation: exact Shapley values of the predicted class
  probabilities, additive to float precision.
* Any other model with ``predict_proba`` (the MLP) uses a model-agnostic explainer on a
  summarised background: ``permutation`` (:class:`shap.PermutationExplainer`, antithetic
  permutations) or ``kernel`` (:class:`shap.KernelExplainer`). Both are additive by
  construction with respect to their base value (the mean prediction over the background).

SHAP values are handled as one ``(rows, features, classes)`` array throughout.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from smp_balr.errors import UserError

log = logging.getLogger(__name__)

MLP_EXPLAINERS = ("permutation", "kernel")
BACKGROUNDS = ("kmeans", "sample")
DEFAULT_N_BA_PLOTS = 4
TOP_BAR = 20
BLUE, RED = "#1f77b4", "#d62728"  # BA = 0 / BA = 1 in the plots
# additivity tolerances checked by the stage (and the tests)
TREE_TOLERANCE = 1e-6
AGNOSTIC_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- model


def unwrap_estimator(model: Any) -> Any:
    """Return the fitted estimator inside a search object (``best_estimator_``) or the model itself."""
    return getattr(model, "best_estimator_", model)


def is_tree_model(model: Any) -> bool:
    """True for sklearn tree models that :class:`shap.TreeExplainer` explains exactly."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import BaseDecisionTree

    return isinstance(unwrap_estimator(model), (BaseDecisionTree, RandomForestClassifier, ExtraTreesClassifier))


# --------------------------------------------------------------------------- sampling


def stratified_sample(labels: Sequence[str], n_samples: int, seed: int) -> np.ndarray:
    """Positions of ``n_samples`` rows drawn reproducibly and stratified by class.

    Each class gets a share proportional to its size (largest remainders, ties by class
    name); rows within a class are drawn without replacement. When there are no more
    rows than ``n_samples``, every row is returned and this is logged.

    Parameters
    ----------
    labels : sequence of str
        Class of each row.
    n_samples : int
        Rows wanted (>= 1).
    seed : int
        Random seed.

    Returns
    -------
    numpy.ndarray
        Sorted row positions.
    """
    if n_samples < 1:
        raise UserError(f"explain.n_samples is {n_samples}; set it to a positive number of test rows in params.yaml")
    labels = np.asarray([str(v) for v in labels])
    n = len(labels)
    if n <= n_samples:
        log.info("test set has %d rows (explain.n_samples = %d): explaining all of them", n, n_samples)
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_samples / n
    alloc = np.floor(exact).astype(int)
    remainder = exact - alloc
    order = sorted(range(len(classes)), key=lambda i: (-remainder[i], classes[i]))
    for i in order[: n_samples - int(alloc.sum())]:
        alloc[i] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == c), size=a, replace=False) for c, a in zip(classes, alloc)]
    return np.sort(np.concatenate(picked))


def make_background(x: np.ndarray, labels: Sequence[str], kind: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
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
        raise UserError(f"explain.background is '{kind}'; use one of {', '.join(BACKGROUNDS)} in params.yaml")
    if size < 1:
        raise UserError(f"explain.background_size is {size}; set it to a positive number in params.yaml")
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
    """SHAP values of class probabilities for a set of rows.

    Attributes
    ----------
    values : numpy.ndarray
        (rows, features, classes).
    base : numpy.ndarray
        (rows, classes) base value (expected probability) per row and class.
    proba : numpy.ndarray
        (rows, classes) the model's ``predict_proba``.
    explainer : str
        ``tree``, ``permutation`` or ``kernel``.
    """

    values: np.ndarray
    base: np.ndarray
    proba: np.ndarray
    explainer: str

    @property
    def additivity_error(self) -> float:
        """max |base + sum of SHAP values - predicted probability| over rows and classes."""
        if self.values.size == 0:
            return 0.0
        return float(np.abs(self.base + self.values.sum(axis=1) - self.proba).max())


def _as_3d(values: Any, n_rows: int, n_features: int, n_classes: int) -> np.ndarray:
    """Bring shap's output to (rows, features, classes) whatever its shape or list form."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 3 and arr.shape == (n_classes, n_rows, n_features) and arr.shape != (n_rows, n_features, n_classes):
        arr = np.transpose(arr, (1, 2, 0))  # old list-per-class form
    if arr.ndim == 2 and n_classes == 1:
        arr = arr[:, :, None]
    if arr.shape != (n_rows, n_features, n_classes):
        raise RuntimeError(f"unexpected SHAP output shape {arr.shape}, wanted {(n_rows, n_features, n_classes)}")
    return arr


def _base_2d(base: Any, n_rows: int, n_classes: int) -> np.ndarray:
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
    progress: bool = False,
) -> Explanation:
    """SHAP values of ``model.predict_proba`` for the rows of ``x``.

    Parameters
    ----------
    model : estimator
        Fitted classifier with ``predict_proba`` (a search object is unwrapped).
    x : numpy.ndarray
        (rows, features) rows to explain, columns in model input order.
    background : (numpy.ndarray, numpy.ndarray), optional
        Background rows and weights from :func:`make_background`; required for non-tree models.
    mlp_explainer : {"permutation", "kernel"}
        Model-agnostic explainer for non-tree models.
    permutations : int
        ``permutation``: antithetic permutation pairs per row (model calls per row =
        ``permutations * (2 * features + 1)`` times the background size).
    kernel_nsamples : int
        ``kernel``: coalitions sampled per row.
    seed : int
        Random seed for the agnostic explainers.
    progress : bool
        Show shap's progress bar (agnostic explainers; it appears after a few seconds).

    Returns
    -------
    Explanation
    """
    import shap

    est = unwrap_estimator(model)
    x = np.asarray(x, dtype=np.float64)
    proba = est.predict_proba(x)
    n_rows, n_features = x.shape
    n_classes = proba.shape[1]
    if is_tree_model(est):
        explainer = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")
        values = explainer.shap_values(x, check_additivity=False)
        base = explainer.expected_value
        name = "tree"
    else:
        if mlp_explainer not in MLP_EXPLAINERS:
            raise UserError(
                f"explain.mlp_explainer is '{mlp_explainer}'; use one of {', '.join(MLP_EXPLAINERS)} in params.yaml"
            )
        if background is None:
            raise ValueError("a background is required for a model-agnostic explainer")
        bg, weights = background
        name = mlp_explainer
        if mlp_explainer == "permutation":
            if permutations < 1:
                raise UserError(f"explain.permutations is {permutations}; set it to 1 or more in params.yaml")
            # the weights enter by repeating rows would cost time; the masker averages rows equally
            masker = shap.maskers.Independent(bg, max_samples=len(bg))
            explainer = shap.PermutationExplainer(est.predict_proba, masker, seed=seed)
            out = explainer(x, max_evals=permutations * (2 * n_features + 1), silent=not progress)
            values, base = out.values, out.base_values
        else:
            if kernel_nsamples < 1:
                raise UserError(f"explain.kernel_nsamples is {kernel_nsamples}; set it to 1 or more in params.yaml")
            data = shap.utils._legacy.DenseData(bg, [str(i) for i in range(n_features)], None, weights * len(bg))
            explainer = shap.KernelExplainer(est.predict_proba, data)
            state = np.random.get_state()
            np.random.seed(seed)  # KernelExplainer samples coalitions from numpy's global generator
            try:
                values = explainer.shap_values(x, nsamples=kernel_nsamples, silent=not progress)
            finally:
                np.random.set_state(state)
            base = explainer.expected_value
    return Explanation(
        values=_as_3d(values, n_rows, n_features, n_classes),
        base=_base_2d(base, n_rows, n_classes),
        proba=np.asarray(proba, dtype=np.float64),
        explainer=name,
    )


# --------------------------------------------------------------------------- tables


def shap_table(values: np.ndarray, sample: pd.DataFrame, label: str, features: Sequence[str]) -> pd.DataFrame:
    """One class's SHAP values as a table: ``Sample_ID, FileName, True_Label, <BA...>``.

    Parameters
    ----------
    values : numpy.ndarray
        (rows, features) SHAP values for one class.
    sample : pandas.DataFrame
        The explained rows, with a ``Sample_ID`` column, ``FileName`` and ``label``.
    """
    head = pd.DataFrame(
        {
            "Sample_ID": sample["Sample_ID"].to_numpy(),
            "FileName": sample["FileName"].astype(str).to_numpy(),
            "True_Label": sample[label].astype(str).to_numpy(),
        }
    )
    return pd.concat([head, pd.DataFrame(values, columns=list(features))], axis=1)


def class_summary(values: np.ndarray, features: Sequence[str]) -> pd.DataFrame:
    """Per-BA summary of one class's SHAP values.

    Parameters
    ----------
    values : numpy.ndarray
        (rows, features) SHAP values for one class.
    features : sequence of str
        BA names.

    Returns
    -------
    pandas.DataFrame
        ``BA, mean_positive, n_positive, mean_negative, n_negative, dominant``:
        the mean over the rows with a positive (negative) value, 0 when there are none;
        ``dominant`` is whichever of the two means has the larger magnitude (the positive
        one on a tie). Sorted by ``|dominant|`` descending, then BA order.
    """
    v = np.asarray(values, dtype=np.float64)
    pos, neg = v > 0, v < 0
    n_pos, n_neg = pos.sum(axis=0), neg.sum(axis=0)
    mean_pos = np.divide(np.where(pos, v, 0.0).sum(axis=0), n_pos, out=np.zeros(v.shape[1]), where=n_pos > 0)
    mean_neg = np.divide(np.where(neg, v, 0.0).sum(axis=0), n_neg, out=np.zeros(v.shape[1]), where=n_neg > 0)
    dominant = np.where(np.abs(mean_pos) >= np.abs(mean_neg), mean_pos, mean_neg)
    df = pd.DataFrame(
        {
            "BA": list(features),
            "mean_positive": mean_pos,
            "n_positive": n_pos,
            "mean_negative": mean_neg,
            "n_negative": n_neg,
            "dominant": dominant,
        }
    )
    order = np.lexsort((np.arange(len(df)), -np.abs(dominant)))
    return df.iloc[order].reset_index(drop=True)


def global_importance(values: np.ndarray, features: Sequence[str]) -> pd.DataFrame:
    """Mean |SHAP| over rows and classes for every BA, with its share of the total.

    Returns
    -------
    pandas.DataFrame
        ``rank, BA, importance, share, cumulative_share`` sorted by importance
        descending (ties by BA order); rank starts at 1.
    """
    v = np.asarray(values, dtype=np.float64)
    imp = np.abs(v).mean(axis=(0, 2)) if v.size else np.zeros(len(features))
    total = imp.sum()
    share = imp / total if total > 0 else np.zeros_like(imp)
    order = np.lexsort((np.arange(len(imp)), -imp))
    df = pd.DataFrame({"BA": np.asarray(features)[order], "importance": imp[order], "share": share[order]})
    df["cumulative_share"] = df["share"].cumsum()
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def top_metrics(importance: pd.DataFrame, truth: Sequence[str] | None = None) -> dict[str, Any]:
    """Top-5 / top-10 BAs with their summed shares, and how many of the top 10 are planted.

    Parameters
    ----------
    importance : pandas.DataFrame
        From :func:`global_importance`.
    truth : sequence of str, optional
        Planted BAs for the label (demo ground truth); None when unknown.
    """
    out: dict[str, Any] = {}
    for k in (5, 10):
        top = importance.head(k)
        out[f"top{k}"] = top["BA"].tolist()
        out[f"top{k}_share"] = round(float(top["share"].sum()), 6)
    out["n_top10_in_truth"] = None if truth is None else int(len(set(out["top10"]) & set(map(str, truth))))
    return out


def plot_bas(requested: Sequence[str] | None, features: Sequence[str], importance: pd.DataFrame) -> list[str]:
    """The BAs to plot across classes: ``requested`` (validated) or the top 4 by importance."""
    if not requested:
        return importance["BA"].head(DEFAULT_N_BA_PLOTS).tolist()
    valid = list(features)
    bad = [str(b) for b in requested if str(b) not in set(valid)]
    if bad:
        shown = ", ".join(valid[:30]) + (f", ... ({len(valid)} in all)" if len(valid) > 30 else "")
        raise UserError(
            f"explain.ba lists {', '.join(bad)}, not among the model's input BAs; use BAs from: {shown}"
        )
    return list(dict.fromkeys(str(b) for b in requested))


# --------------------------------------------------------------------------- plots


def safe_name(name: str) -> str:
    """A file-name-safe version of a class or BA name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)) or "_"


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def plot_beeswarm(
    values: np.ndarray,
    x: np.ndarray,
    features: Sequence[str],
    title: str,
    path: Path,
    seed: int,
    max_display: int = 20,
) -> None:
    """Beeswarm-style summary of one class: one row per BA (top ``max_display`` by mean
    |SHAP|), dots at the SHAP values, coloured by the BA's 0/1 value, vertical jitter seeded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = np.asarray(values)
    imp = np.abs(v).mean(axis=0)
    order = np.lexsort((np.arange(len(imp)), -imp))[:max_display]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    for pos, j in enumerate(order):
        ypos = len(order) - 1 - pos
        jitter = rng.uniform(-0.3, 0.3, size=len(v))
        on = x[:, j] > 0.5
        for mask, colour, text in ((~on, BLUE, "BA = 0"), (on, RED, "BA = 1")):
            ax.scatter(v[mask, j], ypos + jitter[mask], s=8, c=colour, alpha=0.6, linewidths=0,
                       label=text if pos == 0 else None)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([features[j] for j in order][::-1])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("SHAP value (effect on class probability)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_ba_across_classes(
    values: np.ndarray, xcol: np.ndarray, classes: Sequence[str], ba: str, path: Path, seed: int
) -> None:
    """SHAP values of one BA for every class (one strip per class), coloured by its 0/1 value.

    Parameters
    ----------
    values : numpy.ndarray
        (rows, classes) SHAP values of this BA.
    xcol : numpy.ndarray
        (rows,) the BA's values.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    on = np.asarray(xcol) > 0.5
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(classes) + 2), 4))
    for c in range(len(classes)):
        jitter = rng.uniform(-0.25, 0.25, size=len(on))
        for mask, colour, text in ((~on, BLUE, f"{ba} = 0"), (on, RED, f"{ba} = 1")):
            ax.scatter(c + jitter[mask], values[mask, c], s=8, c=colour, alpha=0.6, linewidths=0,
                       label=text if c == 0 else None)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels([str(c) for c in classes])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("class")
    ax.set_ylabel("SHAP value")
    ax.set_title(f"{ba}: SHAP values per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_top_bar(importance: pd.DataFrame, path: Path, top: int = TOP_BAR) -> None:
    """Horizontal bar chart of the ``top`` BAs' shares of total mean |SHAP|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = importance.head(top)
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(head) + 1.5))
    ax.barh(range(len(head))[::-1], head["share"].to_numpy(), color="#4c72b0")
    ax.set_yticks(range(len(head))[::-1])
    ax.set_yticklabels(head["BA"].tolist())
    ax.set_xlabel("share of total mean |SHAP|")
    ax.set_title(f"top {len(head)} BAs (global importance)")
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- outputs


def write_outputs(
    out: Path,
    res: Explanation,
    sample: pd.DataFrame,
    x: np.ndarray,
    label: str,
    features: Sequence[str],
    classes: Sequence[str],
    importance: pd.DataFrame,
    ba_plots: Sequence[str],
    seed: int,
) -> None:
    """Write every per-class table and PNG, the importance table and the plots into ``out``.

    Files: ``shap_<class>.csv``, ``summary_<class>.csv``, ``beeswarm_<class>.png`` per class
    (class names made file-safe), ``ba_<BA>.png`` per BA in ``ba_plots``,
    ``importance.csv`` and ``top20.png``.
    """
    features = list(features)
    used: set[str] = set()
    for c, cls in enumerate(classes):
        name = safe_name(cls)
        name = name if name not in used else f"{name}_{c}"
        used.add(name)
        shap_table(res.values[:, :, c], sample, label, features).to_csv(out / f"shap_{name}.csv", index=False)
        class_summary(res.values[:, :, c], features).to_csv(out / f"summary_{name}.csv", index=False)
        plot_beeswarm(res.values[:, :, c], x, features, f"{label} = {cls}: SHAP values", out / f"beeswarm_{name}.png", seed)
    for ba in ba_plots:
        j = features.index(ba)
        plot_ba_across_classes(res.values[:, j, :], x[:, j], classes, ba, out / f"ba_{safe_name(ba)}.png", seed)
    importance.to_csv(out / "importance.csv", index=False)
    plot_top_bar(importance, out / "top20.png")



@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    If the body raises, the temporary directory is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old.{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
