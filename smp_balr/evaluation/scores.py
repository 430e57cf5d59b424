"""Test-set metrics with chance levels, a speaker-aware permutation test and a speaker bootstrap."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
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

from smp_balr.core.plotting import pyplot, save_png

log = logging.getLogger(__name__)


def _codes(
    y_true: Sequence, y_pred: Sequence, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
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


SCHEMES = ("between_speakers", "within_speakers", "rows")


def permutation_scheme(y_true: Sequence, speakers: Sequence | None) -> str:
    """The permutation scheme that keeps the speaker structure of the test set.

    Parameters
    ----------
    y_true : sequence
        True label of each row.
    speakers : sequence or None
        Speaker of each row; ``None`` treats the rows as exchangeable.

    Returns
    -------
    str
        ``"between_speakers"`` when the label is constant within every speaker (a
        speaker-level label: whole speakers exchange labels), ``"within_speakers"`` when it
        varies within at least one speaker (rows exchange labels only with rows of their own
        speaker), ``"rows"`` when ``speakers`` is None.
    """
    if speakers is None:
        return "rows"
    frame = pd.DataFrame({"s": np.asarray(speakers, dtype=str), "y": np.asarray(y_true)})
    varies = frame.groupby("s", sort=False)["y"].nunique() > 1
    return "within_speakers" if bool(varies.any()) else "between_speakers"


def _shuffled_speakers(n_spk: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` random permutations of the speaker codes ``0..n_spk-1``, shape (m, n_spk)."""
    return rng.permuted(np.broadcast_to(np.arange(n_spk), (m, n_spk)), axis=1)


def _shuffled_rows(y_true: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permuted(np.broadcast_to(y_true, (m, y_true.size)), axis=1)


def _shuffled_within(
    y_true: np.ndarray, spk: np.ndarray, m: int, rng: np.random.Generator
) -> np.ndarray:
    # sorting "speaker code + uniform[0,1)" groups rows by speaker in a random order inside
    # each speaker; the canonical (stable) grouping has the same speaker blocks, so position
    # q of the canonical order receives the label of position q of the random order
    canonical = np.argsort(spk, kind="stable")
    random_order = np.argsort(spk[None, :] + rng.random((m, spk.size)), axis=1)
    shuffled = np.empty((m, spk.size), dtype=y_true.dtype)
    shuffled[:, canonical] = y_true[random_order]
    return shuffled


def _counts(shuffled: np.ndarray, y_pred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (permutation, class) correct and total row counts of shuffled labels."""
    m = shuffled.shape[0]
    offset = np.arange(m)[:, None] * k
    total = np.bincount((offset + shuffled).ravel(), minlength=m * k).reshape(m, k)
    hit = shuffled == y_pred[None, :]
    correct = np.bincount((offset + shuffled)[hit], minlength=m * k).reshape(m, k)
    return correct, total


def permutation_pvalue(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_permutations: int,
    seed: int,
    chunk: int = 200,
    speakers: Sequence | None = None,
    scheme: str | None = None,
) -> tuple[float, float, np.ndarray]:
    """Permutation p-value of balanced accuracy that respects the speakers of the test set.

    Predictions cluster by speaker, so shuffling labels row by row makes a model that only
    recognises speakers look significant. With ``speakers`` given, the labels are permuted
    at the level the label lives on (see :func:`permutation_scheme`):

    - ``between_speakers`` (label constant within each speaker): each permutation maps the
      speakers to a random permutation of themselves and every row of a speaker takes the
      label of the speaker it is mapped to; per-class row totals are recounted for each
      permutation (speakers may have different row counts). The smallest reachable p is
      limited by the number of distinct speaker permutations.
    - ``within_speakers`` (label varies within some speaker): labels are shuffled among the
      rows of each speaker, which keeps every speaker's class mix. A speaker whose rows all
      share a label contributes a constant; a prediction that depends only on the speaker
      gives the observed value in every permutation (p = 1).
    - ``rows`` (``speakers=None``): labels shuffled over all rows (rows exchangeable).

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray of int
        Integer-coded classes.
    n_permutations : int
        Number of permutations.
    seed : int
        Seed of the permutations.
    chunk : int
        Permutations evaluated at once (memory bound ``chunk * n`` values).
    speakers : sequence, optional
        Speaker of each row.
    scheme : str, optional
        Force a scheme; by default it is chosen by :func:`permutation_scheme`.

    Returns
    -------
    (float, float, numpy.ndarray)
        ``p = (1 + #{null >= observed}) / (1 + n_permutations)``, the observed balanced
        accuracy and the null distribution.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if scheme is None:
        scheme = permutation_scheme(y_true, speakers)
    if scheme not in SCHEMES or (scheme != "rows" and speakers is None):
        raise ValueError(f"unknown permutation scheme {scheme!r} or speakers missing")
    k = int(max(y_true.max(), y_pred.max())) + 1
    total = np.bincount(y_true, minlength=k)
    observed = float(
        balanced_accuracy_from_counts(np.bincount(y_true[y_true == y_pred], minlength=k), total)
    )
    if speakers is not None:
        _, spk = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
        n_spk = int(spk.max()) + 1
    if scheme == "between_speakers":
        spk_label = np.zeros(n_spk, dtype=np.int64)
        spk_label[spk] = y_true  # constant within a speaker
        spk_rows = np.bincount(spk, minlength=n_spk)
        spk_pred = np.zeros((n_spk, k))  # rows of speaker s predicted as class c
        np.add.at(spk_pred, (spk, y_pred), 1)
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for start in range(0, n_permutations, chunk):
        m = min(start + chunk, n_permutations) - start
        if scheme == "between_speakers":
            # speaker s receives the label of speaker perm[j, s]: its rows are correct where
            # they were predicted as that label
            perm = _shuffled_speakers(n_spk, m, rng)
            lab = spk_label[perm]  # (m, S)
            bins = (np.arange(m)[:, None] * k + lab).ravel()
            hits = spk_pred[np.arange(n_spk)[None, :], lab].ravel()
            correct = np.bincount(bins, weights=hits, minlength=m * k).reshape(m, k)
            totals = np.bincount(
                bins, weights=np.broadcast_to(spk_rows, lab.shape).ravel(), minlength=m * k
            ).reshape(m, k)
        else:
            if scheme == "within_speakers":
                shuffled = _shuffled_within(y_true, spk, m, rng)
            else:
                shuffled = _shuffled_rows(y_true, m, rng)
            correct, totals = _counts(shuffled, y_pred, k)
        null[start : start + m] = balanced_accuracy_from_counts(correct, totals)
    # tolerance guards against float ties being read as strictly smaller
    p = (1.0 + np.count_nonzero(null >= observed - 1e-12)) / (1.0 + n_permutations)
    return float(p), observed, null


def speaker_draws(n_spk: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Times each speaker is drawn in each bootstrap replicate, shape (n_bootstrap, n_spk).

    Every replicate draws ``n_spk`` speakers with replacement; weighting per-speaker counts
    by a row of the result gives the counts of that replicate.
    """
    return rng.multinomial(n_spk, np.full(n_spk, 1.0 / n_spk), size=n_bootstrap)


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
    draws = speaker_draws(n_spk, n_bootstrap, rng)  # (B, S) times drawn
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
        chance{accuracy, balanced_accuracy}, above_chance{...},
        permutation{p_value, n, null_mean, null_q95, scheme} (scheme from
        :func:`permutation_scheme`: ``between_speakers`` or ``within_speakers``),
        bootstrap{...}, per_class{cls: {precision, recall, f1, support}}``.

    Examples
    --------
    >>> m = evaluate(["a", "a", "b", "b"] * 5, ["a", "b", "b", "b"] * 5, ["a", "b"],
    ...              [f"s{k}" for k in range(5) for _ in range(4)],
    ...              n_permutations=99, n_bootstrap=50, seed=0)
    >>> m["balanced_accuracy"], m["chance"]["balanced_accuracy"], m["permutation"]["scheme"]
    (0.75, 0.5, 'within_speakers')
    """
    classes = [str(c) for c in classes]
    t, p = _codes(y_true, y_pred, classes)
    present = np.unique(t)
    labels = list(range(len(classes)))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    bal = float(balanced_accuracy_score(t, p)) if present.size else float("nan")
    majority = float(np.bincount(t).max() / t.size)
    chance_bal = 1.0 / present.size
    scheme = permutation_scheme(t, speakers)
    p_value, _, null = permutation_pvalue(
        t, p, n_permutations, seed, speakers=speakers, scheme=scheme
    )
    n_spk = int(pd.unique(np.asarray(speakers, dtype=str)).size)
    if scheme == "between_speakers":
        _warn_few_assignments(t, speakers, n_spk)
    low, high, _ = bootstrap_speakers(t, p, speakers, n_bootstrap, seed)
    acc = float(accuracy_score(t, p))
    return {
        "accuracy": acc,
        "balanced_accuracy": bal,
        "f1_macro": float(f1_score(t, p, labels=present, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(t, p, labels=present, average="weighted", zero_division=0)),
        "n_rows": int(t.size),
        "n_speakers": n_spk,
        "n_classes": int(present.size),
        "chance": {"accuracy": majority, "balanced_accuracy": chance_bal},
        "above_chance": {"accuracy": acc - majority, "balanced_accuracy": bal - chance_bal},
        "permutation": {
            "p_value": p_value,
            "n": int(n_permutations),
            "null_mean": float(null.mean()),
            "null_q95": float(np.quantile(null, 0.95)),
            "scheme": scheme,
        },
        "bootstrap": {
            "ci_low": low,
            "ci_high": high,
            "level": 0.95,
            "n": int(n_bootstrap),
            "unit": "speaker",
        },
        "per_class": _per_class(classes, prec, rec, f1, support),
    }


def _warn_few_assignments(t: np.ndarray, speakers: Sequence[str], n_spk: int) -> None:
    """Warn when a speaker-level label has too few distinct assignments for a small p-value."""
    # distinct assignments of the speaker labels to the speakers: S! / prod(n_c!)
    per_class = (
        pd.Series(t).groupby(pd.Series(np.asarray(speakers, dtype=str))).first().value_counts()
    )
    n_assign = math.factorial(n_spk) // math.prod(math.factorial(int(c)) for c in per_class)
    if n_assign < 20:
        log.warning(
            "only %d distinct assignments of labels to the %d test speakers: the permutation "
            "p-value cannot fall below %.3g; add test speakers",
            n_assign,
            n_spk,
            1.0 / n_assign,
        )


def _per_class(
    classes: list[str],
    prec: np.ndarray,
    rec: np.ndarray,
    f1: np.ndarray,
    support: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of each class, JSON-ready."""
    return {
        c: {
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }


def is_present(metrics: dict[str, Any], alpha: float = 0.05) -> bool:
    """The verdict: permutation p below ``alpha``, the speaker interval's lower end above chance."""
    return bool(
        metrics["permutation"]["p_value"] < alpha
        and metrics["bootstrap"]["ci_low"] > metrics["chance"]["balanced_accuracy"]
    )


def headline(metrics: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """The few test figures a comparison of experiments needs (``metrics/test.json``, a DVC metric).

    Everything else of :func:`evaluate` goes to ``metrics/test_details.json``.
    """
    return {
        "balanced_accuracy": metrics["balanced_accuracy"],
        "bootstrap": {
            "ci_low": metrics["bootstrap"]["ci_low"],
            "ci_high": metrics["bootstrap"]["ci_high"],
        },
        "chance": {"balanced_accuracy": metrics["chance"]["balanced_accuracy"]},
        "permutation": {"p_value": metrics["permutation"]["p_value"]},
        "present": is_present(metrics, alpha),
        "n_speakers": metrics["n_speakers"],
    }


def verdict(metrics: dict[str, Any], alpha: float = 0.05) -> str:
    """One sentence saying whether balanced accuracy is above chance."""
    bal, chance = metrics["balanced_accuracy"], metrics["chance"]["balanced_accuracy"]
    low, high = metrics["bootstrap"]["ci_low"], metrics["bootstrap"]["ci_high"]
    p = metrics["permutation"]["p_value"]
    ok = is_present(metrics, alpha)
    word = "ABOVE chance: the modality is present in these BAs" if ok else "NOT shown above chance"
    return (
        f"balanced accuracy {bal:.3f} (95% speaker CI {low:.3f}-{high:.3f}) "
        f"vs chance {chance:.3f}, "
        f"permutation p={p:.4g}: {word}"
    )


def report_frame(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> pd.DataFrame:
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
    return confusion_matrix(
        [str(v) for v in y_true], [str(v) for v in y_pred], labels=[str(c) for c in classes]
    )


def plot_confusion(
    counts: np.ndarray, classes: Sequence[str], path: str | Path, title: str = ""
) -> None:
    """Write a row-normalised confusion matrix PNG (each true-class row sums to 1)."""
    plt = pyplot()
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
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({counts[i, j]})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.tight_layout()
    save_png(fig, path, dpi=120)


@dataclass
class TestResult:
    """Everything the test stage writes.

    Attributes
    ----------
    metrics : dict
        ``metrics/test.json`` (see :func:`evaluate`), plus exclusion counts.
    predictions : pandas.DataFrame
        ``FileName, Speaker, true, predicted, prob_<class>...`` per test row.
    report : pandas.DataFrame
        scikit-learn's classification report.
    confusion : numpy.ndarray
        Confusion counts (rows true, columns predicted) in ``classes`` order.
    classes : list of str
        The model's classes.
    """

    __test__ = False  # not a pytest class
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    report: pd.DataFrame
    confusion: np.ndarray
    classes: list[str]


def test_model(
    model: Any,
    df: pd.DataFrame,
    label: str,
    n_permutations: int,
    n_bootstrap: int,
    seed: int,
    train_speakers: Sequence[str] = (),
    excluded: dict[str, int] | None = None,
) -> TestResult:
    """Score a fitted classifier on test rows against chance.

    Parameters
    ----------
    model : BAClassifier
        Fitted; its ``feature_names_in_`` are columns of ``df``.
    df : pandas.DataFrame
        Test rows of the model's classes (see :func:`smp_balr.data.tables.scorable_rows`).
    label : str
        Class column.
    n_permutations, n_bootstrap, seed : int
        Permutation test, speaker bootstrap and their seed.
    train_speakers : sequence of str
        Speakers the model was trained on: any of them in ``df`` is warned about loudly.
    excluded : dict, optional
        Counts of rows left out before scoring, reported in the metrics as given.

    Returns
    -------
    TestResult
    """
    classes = [str(c) for c in model.classes_]
    shared = sorted(set(df["Speaker"].astype(str)) & set(train_speakers))
    if shared:
        log.warning("!" * 72)
        log.warning("%d TEST SPEAKER(S) ALSO IN TRAINING: %s", len(shared), ", ".join(shared[:10]))
        log.warning(
            "the scores below are NOT speaker-independent; fix the Train/Test split of the data"
        )
        log.warning("!" * 72)
    proba = model.predict_proba(df[list(model.feature_names_in_)])
    y_pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    y_true = df[label].astype(str).to_numpy()
    speakers = df["Speaker"].astype(str).to_numpy()
    metrics = evaluate(y_true, y_pred, classes, speakers, n_permutations, n_bootstrap, seed)
    metrics.update(excluded or {})
    metrics["n_shared_speakers"] = len(shared)
    scheme = metrics["permutation"]["scheme"]
    how = (
        "whole speakers exchange labels (label constant within each speaker)"
        if scheme == "between_speakers"
        else "labels shuffled among the rows of each speaker (label varies within speakers)"
    )
    log.info("permutation test: scheme %s, %s; %d permutations", scheme, how, n_permutations)
    predictions = pd.DataFrame(
        {
            "FileName": df["FileName"].astype(str),
            "Speaker": speakers,
            "true": y_true,
            "predicted": y_pred,
        }
    )
    for j, cls in enumerate(classes):
        predictions[f"prob_{cls}"] = proba[:, j]
    return TestResult(
        metrics,
        predictions,
        report_frame(y_true, y_pred, classes),
        confusion(y_true, y_pred, classes),
        classes,
    )
