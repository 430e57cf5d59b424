"""Speakers filter, oversampling and class weights on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smp_balr.model.sampling import (
    COPY_COLUMN,
    apportion,
    balanced_sample_weights,
    filter_speakers,
    oversample,
)


def _table(spec: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Rows from {speaker: {class: n_rows}}; each row gets a unique FileName."""
    rows = []
    for spk, per_class in spec.items():
        for cls, n in per_class.items():
            rows += [
                {"FileName": f"{spk}_{cls}_{i}", "Speaker": spk, "Emo": cls, "BA0": i % 2}
                for i in range(n)
            ]
    return pd.DataFrame(rows)


def test_filter_speakers_keeps_only_speakers_with_every_remaining_class():
    df = _table({"s1": {"A": 2, "B": 1}, "s2": {"A": 3}, "s3": {"B": 2, "A": 1}, "s4": {"B": 4}})
    out, info = filter_speakers(df, "Emo")
    assert sorted(out["Speaker"].unique()) == ["s1", "s3"]
    assert (info.rows_before, info.rows_kept, info.speakers_before, info.speakers_kept) == (
        13,
        6,
        4,
        2,
    )
    assert info.rows_percent == pytest.approx(100 * 6 / 13)
    assert info.speakers_percent == 50.0


def test_filter_speakers_counts_classes_after_class_filter():
    # s2 lacks class C, but C is filtered out first, so s2 must be kept
    df = _table({"s1": {"A": 1, "B": 1, "C": 1}, "s2": {"A": 1, "B": 1}})
    filtered = df[df["Emo"].isin(["A", "B"])].reset_index(drop=True)
    out, info = filter_speakers(filtered, "Emo")
    assert info.speakers_kept == 2 and len(out) == 4
    _, info_unfiltered = filter_speakers(df, "Emo")
    assert info_unfiltered.speakers_kept == 1


def testapportion_is_exact_and_proportional():
    counts = apportion(10, np.array([6.0, 3.0, 1.0]))
    assert counts.tolist() == [6, 3, 1]
    counts = apportion(7, np.array([1.0, 1.0, 1.0]))
    assert counts.sum() == 7 and counts.max() - counts.min() <= 1


def test_oversample_reaches_exact_equal_counts_with_speaker_proportions():
    # class B: 40 rows, speakers t1 (30) and t2 (10) -> 60 extra rows split 45 / 15
    df = _table(
        {"s1": {"A": 50}, "s2": {"A": 50}, "t1": {"B": 30}, "t2": {"B": 10}, "u1": {"C": 99}}
    )
    out = oversample(df, "Emo", seed=3)
    assert out["Emo"].value_counts().to_dict() == {"A": 100, "B": 100, "C": 100}
    extra = out[out[COPY_COLUMN]]
    assert len(extra) == 60 + 1
    assert extra[extra["Emo"] == "B"]["Speaker"].value_counts().to_dict() == {"t1": 45, "t2": 15}
    assert extra[extra["Emo"] == "C"]["Speaker"].tolist() == ["u1"]
    # originals come first and are untouched
    pd.testing.assert_frame_equal(out.iloc[: len(df)].drop(columns=COPY_COLUMN), df)
    # t2 owed 15 from 10 rows: each row copied once, then 5 distinct rows once more
    t2 = extra[extra["Speaker"] == "t2"]["FileName"].value_counts()
    assert t2.size == 10 and sorted(t2.unique().tolist()) == [1, 2] and (t2 == 2).sum() == 5


def test_oversample_is_reproducible_from_seed():
    df = _table({"s1": {"A": 20}, "s2": {"B": 7}, "s3": {"B": 5}})
    a = oversample(df, "Emo", seed=1)
    b = oversample(df, "Emo", seed=1)
    c = oversample(df, "Emo", seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["FileName"].equals(c["FileName"])


def test_oversample_balanced_input_unchanged():
    df = _table({"s1": {"A": 3, "B": 3}})
    out = oversample(df, "Emo", seed=0)
    assert len(out) == 6 and not out[COPY_COLUMN].any()


def test_balanced_sample_weights_equalise_class_mass():
    y = np.array([0] * 6 + [1] * 2 + [2] * 4)
    w = balanced_sample_weights(y)
    mass = [w[y == k].sum() for k in range(3)]
    assert mass == pytest.approx([4.0, 4.0, 4.0])
    assert w[0] == pytest.approx(12 / (3 * 6))
