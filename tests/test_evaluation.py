"""Test metrics against hand computations; permutation test and speaker bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from smp_balr.evaluation import (
    bootstrap_speakers,
    confusion,
    evaluate,
    permutation_pvalue,
    plot_confusion,
    report_frame,
    verdict,
)

# hand-made prediction set: recall A 2/3, B 1/2, C 1/1; precision A 1, B 1/2, C 1/2
TRUE = ["A", "A", "A", "B", "B", "C"]
PRED = ["A", "A", "B", "B", "C", "C"]
SPK = ["s1", "s1", "s2", "s2", "s3", "s3"]
CLASSES = ["A", "B", "C", "D"]  # D: a training class absent from the test set


def test_metrics_equal_hand_values():
    m = evaluate(TRUE, PRED, CLASSES, SPK, n_permutations=200, n_bootstrap=200, seed=0)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    f1 = {"A": 0.8, "B": 0.5, "C": 2 / 3}
    assert m["f1_macro"] == pytest.approx(sum(f1.values()) / 3)
    assert m["f1_weighted"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert m["per_class"]["A"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["C"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["per_class"]["D"]["support"] == 0
    assert (m["n_rows"], m["n_speakers"], m["n_classes"]) == (6, 3, 3)
    assert m["chance"] == pytest.approx({"accuracy": 0.5, "balanced_accuracy": 1 / 3})
    assert m["above_chance"]["balanced_accuracy"] == pytest.approx(13 / 18 - 1 / 3)
    assert m["bootstrap"]["ci_low"] <= m["balanced_accuracy"] <= m["bootstrap"]["ci_high"]
    assert "ABOVE chance" in verdict({**m, "permutation": {**m["permutation"], "p_value": 0.001}})


def _random_labels(n, k, seed):
    return np.random.default_rng(seed).integers(0, k, n)


def test_permutation_null_matches_sklearn_and_p_is_large_without_signal():
    y = _random_labels(600, 3, 1)
    pred = _random_labels(600, 3, 2)  # independent of y
    p, observed, null = permutation_pvalue(y, pred, 1000, seed=5)
    assert observed == pytest.approx(balanced_accuracy_score(y, pred))
    assert p > 0.05
    assert null.mean() == pytest.approx(1 / 3, abs=0.01)
    # the vectorised null values are true balanced accuracies of shuffled labels
    rng = np.random.default_rng(5)
    shuffled = rng.permuted(np.broadcast_to(y, (200, y.size)), axis=1)
    assert null[:3] == pytest.approx([balanced_accuracy_score(s, pred) for s in shuffled[:3]])


def test_permutation_p_is_minimal_on_planted_signal():
    y = _random_labels(600, 3, 1)
    rng = np.random.default_rng(3)
    pred = np.where(rng.random(600) < 0.4, y, rng.integers(0, 3, 600))
    p, observed, _ = permutation_pvalue(y, pred, 1000, seed=5)
    assert observed > 0.5
    assert p == pytest.approx(1 / 1001)


def test_permutation_is_seeded():
    y, pred = _random_labels(300, 2, 1), _random_labels(300, 2, 2)
    assert permutation_pvalue(y, pred, 300, 9)[0] == permutation_pvalue(y, pred, 300, 9)[0]


def test_bootstrap_resamples_whole_speakers():
    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(10)], 30)
    y = rng.integers(0, 2, speakers.size)
    # half the speakers are always right, half always wrong: only speakers vary
    good = np.isin(speakers, [f"s{i}" for i in range(5)])
    pred = np.where(good, y, 1 - y)
    low, high, values = bootstrap_speakers(y, pred, speakers, 300, seed=4)
    # brute force: replay the same speaker draws, concatenate their rows, score with sklearn
    names = np.unique(speakers)
    draws = np.random.default_rng(4).multinomial(10, np.full(10, 0.1), size=300)
    for b in range(5):
        idx = np.concatenate([np.tile(np.flatnonzero(speakers == names[s]), draws[b, s]) for s in range(10)])
        assert values[b] == pytest.approx(balanced_accuracy_score(y[idx], pred[idx]))
    # a row bootstrap would give a much narrower interval than this speaker-level one
    assert high - low > 0.3
    assert (low, high) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])))


def test_report_confusion_and_png(tmp_path):
    frame = report_frame(TRUE, PRED, CLASSES)
    assert frame.loc["B", "precision"] == pytest.approx(0.5)
    assert {"accuracy", "macro avg", "weighted avg"} <= set(frame.index)
    counts = confusion(TRUE, PRED, CLASSES)
    assert counts.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    png = tmp_path / "m" / "c.png"
    plot_confusion(counts, CLASSES, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
