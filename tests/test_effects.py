"""Effect sizes: hand values, perfect and random confusion matrices,
the permutation null it shares."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from smp_balr.evaluation import effects
from smp_balr.evaluation.effects import (
    effect_sizes,
    entropy_bits,
    mutual_information,
    normalised_ba,
    null_confusions,
)
from smp_balr.evaluation.scores import (
    balanced_accuracy_from_counts,
    bootstrap_speakers,
    permutation_pvalue,
)


def test_normalised_ba_hand_values():
    assert normalised_ba(0.369, 0.2) == pytest.approx(0.21125)
    assert normalised_ba(0.95, 0.5) == pytest.approx(0.9)
    assert normalised_ba(0.2, 0.2) == 0.0 and normalised_ba(1.0, 0.25) == 1.0
    assert np.isnan(normalised_ba(1.0, 1.0))


def test_mutual_information_of_perfect_and_independent_matrices():
    perfect = np.diag([10, 20, 30, 40])
    h = entropy_bits(np.array([10, 20, 30, 40]))
    assert h == pytest.approx(-sum(q * np.log2(q) for q in (0.1, 0.2, 0.3, 0.4)))
    assert mutual_information(perfect) == pytest.approx(
        h
    )  # MI of a perfect prediction = label entropy
    # a permuted perfect matrix carries the same information
    assert mutual_information(perfect[:, [2, 0, 3, 1]]) == pytest.approx(h)
    independent = np.outer([1, 2, 3], [4, 1, 5])  # rows and columns independent: exactly 0
    assert mutual_information(independent) == pytest.approx(0.0, abs=1e-12)
    # hand value: [[3, 1], [1, 3]]: 2 x (3/8 log2(3/8 / 1/4)) + 2 x (1/8 log2(1/8 / 1/4))
    want = 0.75 * np.log2(1.5) + 0.25 * np.log2(0.5)
    assert mutual_information(np.array([[3, 1], [1, 3]])) == pytest.approx(want)
    stacked = mutual_information(np.stack([perfect, np.ones((4, 4)), perfect]))
    assert (
        stacked.shape == (3,)
        and stacked[0] == pytest.approx(h)
        and stacked[1] == pytest.approx(0.0)
    )


def _speaker_corpus(seed, n_spk=40, rows=20, k=3, level="within"):
    rng = np.random.default_rng(seed)
    spk = np.repeat([f"s{i:02d}" for i in range(n_spk)], rows)
    if level == "within":
        y = rng.integers(0, k, spk.size)
    else:
        y = np.repeat(rng.permutation(np.arange(n_spk) % k), rows)
    return rng, spk, y


@pytest.mark.parametrize("level", ["within", "speaker"])
def test_perfect_predictions_give_the_label_entropy(level):
    _, spk, y = _speaker_corpus(1, level=level)
    names = np.array(["a", "b", "c"])[y]
    out = effect_sizes(names, names, ["a", "b", "c"], spk, 300, 300, seed=2)
    h = entropy_bits(np.bincount(y))
    assert out["entropy_bits"] == pytest.approx(h)
    assert out["mi_bits_raw"] == pytest.approx(h)
    assert out["mi_bits"] == pytest.approx(h - out["mi_null_mean"])
    assert 0 < out["mi_null_mean"] < 0.1 * h
    assert out["ba_norm"] == 1.0 and out["ba_norm_ci_low"] == 1.0
    assert out["mi_share"] == pytest.approx(1 - out["mi_null_mean"] / h)
    assert out["mi_bits_ci_low"] <= out["mi_bits"] <= out["mi_bits_ci_high"]
    assert out["mi_p_value"] == pytest.approx(1 / 301)


@pytest.mark.parametrize("level", ["within", "speaker"])
def test_random_predictions_give_about_zero_after_correction(level):
    rng, spk, y = _speaker_corpus(3, level=level)
    # predictions with a speaker structure (each speaker leans to one class) but no link to y
    lean = rng.integers(0, 3, 40)
    pred = np.where(rng.random(y.size) < 0.6, np.repeat(lean, 20), rng.integers(0, 3, y.size))
    names = np.array(["a", "b", "c"])
    out = effect_sizes(names[y], names[pred], list(names), spk, 500, 500, seed=4)
    # the plug-in estimate is biased upwards by at least about (K - 1)^2 / (2 n ln 2) (Miller), more
    # when predictions cluster by speaker: the permutation-null mean is that bias
    assert out["mi_null_mean"] > 0.5 * 4 / (2 * y.size * np.log(2))
    assert out["mi_bits"] == pytest.approx(out["mi_bits_raw"] - out["mi_null_mean"])
    assert abs(out["mi_bits"]) < 0.02 and abs(out["ba_norm"]) < 0.1
    assert out["mi_bits_ci_low"] <= 0.0 <= out["mi_bits_ci_high"]
    assert out["ba_norm_ci_low"] <= 0.0 <= out["ba_norm_ci_high"]
    assert out["mi_p_value"] > 0.01


def test_same_permutations_and_replicates_as_evaluation():
    rng, spk, y = _speaker_corpus(5, level="speaker")
    pred = np.where(rng.random(y.size) < 0.5, y, rng.integers(0, 3, y.size))
    for speakers in (spk, np.repeat(np.arange(40), 20).astype(str)):
        _, _, null = permutation_pvalue(y, pred, 450, seed=9, speakers=speakers)
        mine = np.concatenate(
            [
                balanced_accuracy_from_counts(np.diagonal(c, axis1=1, axis2=2), c.sum(axis=2))
                for c in null_confusions(y, pred, 3, speakers, 450, seed=9)
            ]
        )
        assert mine == pytest.approx(null)
    names = np.array(["a", "b", "c"])
    out = effect_sizes(names[y], names[pred], list(names), spk, 100, 400, seed=9)
    low, high, _ = bootstrap_speakers(y, pred, spk, 400, seed=9)
    assert out["ba_norm_ci_low"] == pytest.approx(normalised_ba(low, 1 / 3))
    assert out["ba_norm_ci_high"] == pytest.approx(normalised_ba(high, 1 / 3))
    # within-speaker labels: confusions of the permuted rows keep every speaker's class mix
    rng, spk, y = _speaker_corpus(6, level="within")
    conf = next(null_confusions(y, y, 3, spk, 5, seed=1))
    assert (conf.sum(axis=2) == np.bincount(y)).all() and (conf.sum(axis=1) == np.bincount(y)).all()


def test_cached_shuffles_give_the_same_null_as_fresh_ones():
    rng, spk, y = _speaker_corpus(7, level="within")
    preds = [np.where(rng.random(y.size) < q, y, rng.integers(0, 3, y.size)) for q in (0.2, 0.5)]
    cached = [np.concatenate(list(null_confusions(y, p, 3, spk, 300, seed=2))) for p in preds]
    for p, c in zip(preds, cached):
        effects._cache.update(key=None, chunks=[])
        assert (np.concatenate(list(null_confusions(y, p, 3, spk, 300, seed=2))) == c).all()
        _, _, null = permutation_pvalue(y, p, 300, seed=2, speakers=spk)
        assert balanced_accuracy_from_counts(
            np.diagonal(c, axis1=1, axis2=2), c.sum(axis=2)
        ) == pytest.approx(null)
    other = np.concatenate(list(null_confusions(y, preds[0], 3, spk, 300, seed=3)))
    assert not (other == cached[0]).all()  # another seed: other permutations


def test_doctests():
    assert doctest.testmod(effects).failed == 0
