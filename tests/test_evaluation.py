"""Test metrics against hand computations; speaker-aware permutation test and speaker bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from smp_balr.evaluation.scores import (
    bootstrap_speakers,
    confusion,
    evaluate,
    permutation_pvalue,
    permutation_scheme,
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
    assert m["per_class"]["A"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert m["per_class"]["C"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
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


def _speaker_test_set(rng, level, n_spk=16, k=3):
    """A test set of ``n_spk`` speakers with unequal row counts and a speaker-only predictor.

    ``level="speaker"``: one label per speaker (like Language); ``"utterance"``: labels vary
    within speakers with a skewed per-speaker class mix (Dirichlet(0.5)). The prediction is a
    random class per speaker (plus 30% row noise), drawn without looking at any label.
    """
    sizes = rng.integers(20, 60, n_spk)
    speakers = np.repeat([f"s{i:02d}" for i in range(n_spk)], sizes)
    if level == "speaker":
        y = np.repeat(rng.permutation(np.arange(n_spk) % k), sizes)
    else:
        mix = rng.dirichlet(np.full(k, 0.5), n_spk)
        y = np.concatenate([rng.choice(k, s, p=m) for s, m in zip(sizes, mix)])
    guess = np.repeat(rng.integers(0, k, n_spk), sizes)
    pred = np.where(rng.random(y.size) < 0.3, rng.integers(0, k, y.size), guess)
    return y, pred, speakers


def test_scheme_is_chosen_from_where_the_label_varies():
    rng = np.random.default_rng(0)
    y, _, spk = _speaker_test_set(rng, "speaker")
    assert permutation_scheme(y, spk) == "between_speakers"
    y_mixed = y.copy()
    y_mixed[0] = (
        y[0] + 1
    ) % 3  # one row of one speaker differs: the label is no longer speaker-level
    assert permutation_scheme(y_mixed, spk) == "within_speakers"
    assert permutation_scheme(y, None) == "rows"
    names = np.array(["A", "B", "C"])
    m = evaluate(names[y], names[y], list(names), spk, n_permutations=50, n_bootstrap=50, seed=0)
    assert m["permutation"]["scheme"] == "between_speakers"
    m = evaluate(
        names[y_mixed], names[y], list(names), spk, n_permutations=50, n_bootstrap=50, seed=0
    )
    assert m["permutation"]["scheme"] == "within_speakers"


def test_between_speakers_null_maps_whole_speakers_and_recounts_class_totals():
    rng = np.random.default_rng(1)
    y, pred, spk = _speaker_test_set(rng, "speaker", n_spk=8)
    _, null = permutation_pvalue(y, pred, 50, seed=7, speakers=spk)[1:]
    # replay: speaker s (sorted order) takes the label of speaker perm[j, s]; score with sklearn
    names, code = np.unique(spk, return_inverse=True)
    spk_label = np.array([y[spk == n][0] for n in names])
    perm = np.random.default_rng(7).permuted(np.broadcast_to(np.arange(8), (50, 8)), axis=1)
    for j in range(5):
        assert null[j] == pytest.approx(balanced_accuracy_score(spk_label[perm[j]][code], pred))


def test_within_speakers_null_keeps_each_speakers_class_mix():
    rng = np.random.default_rng(2)
    y, pred, spk = _speaker_test_set(rng, "utterance", n_spk=6)
    _, null = permutation_pvalue(y, pred, 20, seed=3, speakers=spk)[1:]
    # replay the shuffles and check each is a within-speaker rearrangement scored like sklearn
    _, code = np.unique(spk, return_inverse=True)
    order = np.argsort(code[None, :] + np.random.default_rng(3).random((20, y.size)), axis=1)
    for j in range(5):
        shuffled = np.empty_like(y)
        shuffled[np.argsort(code, kind="stable")] = y[order[j]]
        assert not np.array_equal(shuffled, y)
        for s in np.unique(code):
            assert sorted(shuffled[code == s]) == sorted(y[code == s])
        assert null[j] == pytest.approx(balanced_accuracy_score(shuffled, pred))


@pytest.mark.parametrize("level", ["speaker", "utterance"])
def test_speaker_only_predictor_is_not_significant(level):
    """Over 100 simulated 16-speaker test sets a predictor that knows only the speaker gets
    p < 0.05 at about the nominal rate; shuffling rows (the old scheme) does so far more often."""
    rng = np.random.default_rng(11 if level == "speaker" else 12)
    sets = [_speaker_test_set(rng, level) for _ in range(100)]
    aware = [
        permutation_pvalue(y, pred, 100, seed=i, speakers=spk)[0]
        for i, (y, pred, spk) in enumerate(sets)
    ]
    rows = [permutation_pvalue(y, pred, 100, seed=i)[0] for i, (y, pred, _) in enumerate(sets)]
    assert np.mean(np.array(aware) < 0.05) <= 0.10
    assert np.mean(np.array(rows) < 0.05) >= 0.25


def test_speaker_shortcut_is_removed_within_speakers():
    # predicting each speaker's majority class scores well above chance,
    # but only through the speaker
    rng = np.random.default_rng(4)
    y, _, spk = _speaker_test_set(rng, "utterance")
    majority = {s: np.bincount(y[spk == s]).argmax() for s in np.unique(spk)}
    pred = np.array([majority[s] for s in spk])
    p, observed, _ = permutation_pvalue(y, pred, 200, seed=0, speakers=spk)
    assert observed > 0.5
    assert p == 1.0
    assert permutation_pvalue(y, pred, 200, seed=0)[0] == pytest.approx(1 / 201)


@pytest.mark.parametrize("level", ["speaker", "utterance"])
def test_planted_signal_gives_tiny_p_under_both_schemes(level):
    rng = np.random.default_rng(5)
    y, _, spk = _speaker_test_set(rng, level)
    pred = np.where(rng.random(y.size) < 0.5, y, rng.integers(0, 3, y.size))  # row-level signal
    p, observed, null = permutation_pvalue(y, pred, 1000, seed=5, speakers=spk)
    assert permutation_scheme(y, spk) == f"{'between' if level == 'speaker' else 'within'}_speakers"
    assert observed > 0.6 and null.max() < observed
    assert p == pytest.approx(1 / 1001)


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
        idx = np.concatenate(
            [np.tile(np.flatnonzero(speakers == names[s]), draws[b, s]) for s in range(10)]
        )
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
