"""Test-set metrics with chance levels, a permutation test and a speaker bootstrap."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from smp_balr.outputs import atomic_path

log = logging.getLogger(__name__)


def _codes(y_true: Sequence, y_pred: Sequence, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    lookup = {str(c): i for i, c in enumerate(classes)}
    t = np.array([lookup[str(v)] for v in y_true], dtype=np.int64)
    p = np.array([lookup[str(v)] for v in y_pred], dtype=np.int64)
    return t, p


def balanced_accuracy_from_counts(correct: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Balanced accuracy from per-class correct and total counts.

    Parameters
    ----------
    correct, total : numpy.ndarray, shape (..., K)
        Correct predictions and rows of each true class.

    Returns
    -------
    numpy.ndarray, shape (...)
        Mean recall over the classes with ``total > 0`` (sklearn's definition).
    """
    present = total > 0
    recall = np.divide(correct, total, out=np.zeros(correct.shape, dtype=float), where=present)
    return recall.sum(axis=-1) / present.sum(axis=-1)


def permutation_pvalue(
    y_true: np.ndarray, y_pred: np.ndarray, n_permutations: int, seed: int, chunk: int = 200
) -> tuple[float, float, np.ndarray]:
    """Permutation p-value of balanced accuracy, shuffling the true labels within the test set.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray of int
        Integer-coded classes.
    n_permutations : int
        Number of shuffles.
    seed : int
        Seed of the shuffles.
    chunk : int
        Permutations evaluated at once (memory bound ``chunk * n`` booleans).

    Returns
    -------
    (float, float, numpy.ndarray)
        ``p = (1 + #{null >= observed}) / (1 + n_permutations)``, the observed balanced
        accuracy and the null distribution.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = int(max(y_true.max(), y_pred.max())) + 1
    total = np.bincount(y_true, minlength=k)
    observed = float(balanced_accuracy_from_counts(np.bincount(y_true[y_true == y_pred], minlength=k), total))
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for start in range(0, n_permutations, chunk):
        m = min(start + chunk, n_permutations) - start
        shuffled = rng.permuted(np.broadcast_to(y_true, (m, y_true.size)), axis=1)
        hit = shuffled == y_pred[None, :]
        # correct counts per (permutation, class): bin the hits by permutation * K + class
        bins = (np.arange(m)[:, None] * k + y_pred[None, :])[hit]
        correct = np.bincount(bins, minlength=m * k).reshape(m, k)
        stop = start + m
        null[start:stop] = balanced_accuracy_from_counts(correct, total[None, :])
    # tolerance guards against float ties being read as strictly smaller
    p = (1.0 + np.count_nonzero(null >= observed - 1e-12)) / (1.0 + n_permutations)
    return float(p), observed, null


def bootstrap_speakers(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    speakers: Sequence,
    n_bootstrap: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap interval of balanced accuracy, resampling speakers with replacement.

    Each replicate draws as many speakers as the test set has, with replacement, and
    takes all rows of each drawn speaker (a speaker drawn twice counts twice).

    Returns
    -------
    (float, float, numpy.ndarray)
        Lower and upper bound and the replicate values.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = int(max(y_true.max(), y_pred.max())) + 1
    _, spk = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
    n_spk = int(spk.max()) + 1
    total = np.zeros((n_spk, k))
    correct = np.zeros((n_spk, k))
    np.add.at(total, (spk, y_true), 1)
    np.add.at(correct, (spk, y_true), y_true == y_pred)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_spk, np.full(n_spk, 1.0 / n_spk), size=n_bootstrap)  # (B, S) times drawn
    values = balanced_accuracy_from_counts(draws @ correct, draws @ total)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high), values


def evaluate(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    classes: Sequence[str],
    speakers: Sequence[str],
    n_permutations: int,
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """All test metrics as a JSON-ready dict (the DVC metrics file).

    Parameters
    ----------
    y_true, y_pred : sequence of str
        True and predicted classes; every value must be in ``classes``.
    classes : sequence of str
        The model's classes (encoder order).
    speakers : sequence of str
        Speaker of each test row.
    n_permutations, n_bootstrap : int
        Sizes of the permutation test and of the speaker bootstrap.
    seed : int
        Seed of both.

    Returns
    -------
    dict
        ``accuracy, balanced_accuracy, f1_macro, f1_weighted, n_rows, n_speakers,
        chance{accuracy, balanced_accuracy}, above_chance{...}, permutation{...},
        bootstrap{...}, per_class{cls: {precision, recall, f1, support}}``.
    """
    classes = [str(c) for c in classes]
    t, p = _codes(y_true, y_pred, classes)
    present = np.unique(t)
    labels = list(range(len(classes)))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    bal = float(balanced_accuracy_score(t, p)) if present.size else float("nan")
    majority = float(np.bincount(t).max() / t.size)
    chance_bal = 1.0 / present.size
    p_value, _, null = permutation_pvalue(t, p, n_permutations, seed)
    low, high, _ = bootstrap_speakers(t, p, speakers, n_bootstrap, seed)
    acc = float(accuracy_score(t, p))
    return {
        "accuracy": acc,
        "balanced_accuracy": bal,
        "f1_macro": float(f1_score(t, p, labels=present, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(t, p, labels=present, average="weighted", zero_division=0)),
        "n_rows": int(t.size),
        "n_speakers": int(pd.unique(np.asarray(speakers, dtype=str)).size),
        "n_classes": int(present.size),
        "chance": {"accuracy": majority, "balanced_accuracy": chance_bal},
        "above_chance": {"accuracy": acc - majority, "balanced_accuracy": bal - chance_bal},
        "permutation": {
            "p_value": p_value,
            "n": int(n_permutations),
            "null_mean": float(null.mean()),
            "null_q95": float(np.quantile(null, 0.95)),
        },
        "bootstrap": {"ci_low": low, "ci_high": high, "level": 0.95, "n": int(n_bootstrap), "unit": "speaker"},
        "per_class": {
            c: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
    }


def verdict(metrics: dict[str, Any], alpha: float = 0.05) -> str:
    """One sentence saying whether balanced accuracy is above chance."""
    bal, chance = metrics["balanced_accuracy"], metrics["chance"]["balanced_accuracy"]
    low, high = metrics["bootstrap"]["ci_low"], metrics["bootstrap"]["ci_high"]
    p = metrics["permutation"]["p_value"]
    ok = p < alpha and low > chance
    word = "ABOVE chance: the modality is present in these BAs" if ok else "NOT shown above chance"
    return (
        f"balanced accuracy {bal:.3f} (95% speaker CI {low:.3f}-{high:.3f}) vs chance {chance:.3f}, "
        f"permutation p={p:.4g}: {word}"
    )


def report_frame(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> pd.DataFrame:
    """scikit-learn's classification report as a frame (rows: classes and averages)."""
    report = classification_report(
        [str(v) for v in y_true],
        [str(v) for v in y_pred],
        labels=[str(c) for c in classes],
        output_dict=True,
        zero_division=0,
    )
    frame = pd.DataFrame(report).transpose()
    frame.index.name = "class"
    return frame


def confusion(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Confusion counts, rows = true class, columns = predicted, in ``classes`` order."""
    return confusion_matrix([str(v) for v in y_true], [str(v) for v in y_pred], labels=[str(c) for c in classes])


def plot_confusion(counts: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> None:
    """Write a row-normalised confusion matrix PNG (each true-class row sums to 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.6 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(len(classes)), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
