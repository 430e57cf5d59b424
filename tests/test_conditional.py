"""Presence beyond another label: equal labels, noisy copies, own signal; associated pairs."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from smp_balr.evaluation import conditional
from smp_balr.evaluation.conditional import (
    CANNOT_SEPARATE,
    NOT_SHOWN_BEYOND,
    PRESENT_BEYOND,
    associated_pairs,
    beyond_entries,
    presence_beyond,
)

S, R = 40, 20


def _corpus(seed):
    rng = np.random.default_rng(seed)
    spk = np.repeat([f"s{i:02d}" for i in range(S)], R)
    gender = np.repeat(np.where(np.arange(S) % 2, "m", "f"), R)
    return rng, spk, gender


def test_a_label_equal_to_the_other_cannot_be_separated():
    rng, spk, gender = _corpus(0)
    out = presence_beyond(gender, gender, gender, spk, 200, seed=1)
    assert out["verdict"] == CANNOT_SEPARATE and np.isnan(out["p_value"])
    assert out["n_strata"] == 2 and out["n_strata_used"] == 0 and out["n_rows_used"] == 0
    # a renamed copy, whatever the predictions, is the same case
    copy = np.where(gender == "f", "high", "low")
    assert (
        presence_beyond(copy, rng.permutation(copy), gender, spk, 200, 1)["verdict"]
        == CANNOT_SEPARATE
    )


def test_too_few_speakers_per_class_in_a_stratum():
    _, spk, gender = _corpus(1)
    # label "B" only on one speaker of each stratum: with min_speakers=2 no stratum has two classes
    y = np.where(np.isin(spk, ["s00", "s01"]), "B", "A")
    assert presence_beyond(y, y, gender, spk, 100, 0, min_speakers=2)["verdict"] == CANNOT_SEPARATE
    out = presence_beyond(y, y, gender, spk, 100, 0, min_speakers=1)
    assert out["verdict"] != CANNOT_SEPARATE and out["n_strata_used"] == 2


@pytest.mark.parametrize("level", ["speaker", "within"])
def test_a_noisy_copy_is_not_shown_beyond(level):
    rng, spk, gender = _corpus(2)
    g = (gender == "m").astype(int)
    if (
        level == "speaker"
    ):  # 25% of the speakers have the other value: copy up to speaker-level noise
        flip = np.repeat(rng.random(S) < 0.25, R)
    else:  # 20% of the rows flipped
        flip = rng.random(S * R) < 0.2
    y = np.where(g ^ flip, "hi", "lo")
    # a model that only knows gender (and errs at random, per speaker and per row)
    lean = np.repeat(rng.random(S) < 0.1, R)
    pred = np.where((g == 1) ^ lean ^ (rng.random(S * R) < 0.1), "hi", "lo")
    out = presence_beyond(y, pred, gender, spk, 400, seed=3)
    assert out["verdict"] == NOT_SHOWN_BEYOND and out["p_value"] > 0.05
    assert out["scheme"] == ("between_speakers" if level == "speaker" else "within_speakers")
    assert out["n_strata_used"] == 2 and abs(out["statistic"]) < 0.15
    # predictions that are a function of gender alone: the same value in every permutation
    exact = presence_beyond(y, np.where(g == 1, "hi", "lo"), gender, spk, 400, seed=3)
    assert exact["p_value"] == 1.0 and exact["verdict"] == NOT_SHOWN_BEYOND


@pytest.mark.parametrize("level", ["speaker", "within"])
def test_own_signal_in_every_stratum_is_present_beyond(level):
    rng, spk, gender = _corpus(4)
    g = (gender == "m").astype(int)
    flip = np.repeat(rng.random(S) < 0.3, R) if level == "speaker" else rng.random(S * R) < 0.3
    y = g ^ flip  # associated with gender, with variation of its own inside each stratum
    pred = np.where(rng.random(S * R) < 0.6, y, g)  # predictions see y itself
    out = presence_beyond(
        np.where(y, "hi", "lo"), np.where(pred, "hi", "lo"), gender, spk, 400, seed=5
    )
    assert out["verdict"] == PRESENT_BEYOND and out["p_value"] == pytest.approx(1 / 401)
    assert all(s["used"] and s["balanced_accuracy"] > 0.6 for s in out["strata"].values())


def test_strata_of_a_within_speaker_other_label():
    # the other label varies within speakers (e.g. emotion); the label is a speaker-level one
    rng, spk, gender = _corpus(6)
    emotion = rng.choice(["ang", "hap", "neu"], size=S * R)
    pred = np.where(rng.random(S * R) < 0.7, gender, np.where(gender == "f", "m", "f"))
    out = presence_beyond(gender, pred, emotion, spk, 300, seed=7)
    assert out["n_strata_used"] == 3 and out["verdict"] == PRESENT_BEYOND
    assert out["scheme"] == "between_speakers"
    null = presence_beyond(gender, rng.permutation(pred), emotion, spk, 300, seed=7)
    assert null["verdict"] == NOT_SHOWN_BEYOND


def test_beyond_entries_and_missing_values():
    rng, spk, gender = _corpus(8)
    other = gender.astype(object)
    other[:R] = None  # one speaker without the other label: left out
    entries = beyond_entries(gender, gender, {"Gender": other, "Copy": gender}, spk, 100, 0)
    assert set(entries) == {"Gender", "Copy"}
    assert entries["Gender"]["verdict"] == CANNOT_SEPARATE
    assert set(entries["Copy"]) == {"verdict", "p_value", "statistic", "n_strata_used", "scheme"}


def test_associated_pairs_on_utterances_and_speakers():
    rng = np.random.default_rng(9)
    spk = np.repeat([f"s{i:02d}" for i in range(30)], 10)
    gender = np.repeat(np.where(np.arange(30) % 2, "m", "f"), 10)
    range_ = np.where(rng.random(300) < 0.9, np.where(gender == "m", "low", "high"), "mid")
    noise = rng.choice(["x", "y"], size=300)
    df = pd.DataFrame({"Speaker": spk, "Gender": gender, "Range": range_, "Noise": noise})
    pairs = associated_pairs(df, ["Gender", "Range", "Noise"], v_min=0.3)
    assert [(d["a"], d["b"]) for d in pairs] == [("Gender", "Range")]
    assert pairs[0]["v"] == max(pairs[0]["v_utterance"], pairs[0]["v_speaker"]) > 0.8
    assert associated_pairs(df, ["Gender", "Noise"], v_min=0.3) == []
    assert len(associated_pairs(df, ["Gender", "Range", "Noise"], v_min=0.0)) == 3


def test_doctests():
    assert doctest.testmod(conditional).failed == 0
