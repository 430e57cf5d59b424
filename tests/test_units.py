"""Unit of analysis: auto choice, centring within speakers, speaker means, dof."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from smp_balr.core.errors import UserError
from smp_balr.selection.units import (
    cell_means,
    centre_within,
    mixed_speakers,
    prepare,
    resolve_unit,
)

SPK = np.array(["s1", "s1", "s1", "s2", "s2", "s3", "s3"])


def test_auto_picks_within_speaker_when_label_varies_within_speakers():
    y = np.array(["a", "b", "a", "a", "a", "b", "b"])
    assert mixed_speakers(SPK, y) == (1, 3)
    unit, reason = resolve_unit("auto", SPK, y)
    assert unit == "within_speaker"
    assert "1 of 3 speakers" in reason


def test_auto_picks_speaker_for_speaker_level_labels():
    y = np.array(["a", "a", "a", "b", "b", "a", "a"])
    assert resolve_unit("auto", SPK, y)[0] == "speaker"
    assert resolve_unit("utterance", SPK, y) == (
        "utterance",
        "set in params (the label varies within 0 of 3 speakers)",
    )


def test_unknown_unit_is_one_clear_error():
    with pytest.raises(UserError, match="selection.unit is 'row'"):
        resolve_unit("row", SPK, SPK)


def test_centre_within_and_dof(caplog):
    X = np.array([[1, 0], [0, 0], [1, 1], [1, 1], [0, 1], [0, 0], [1, 0]], dtype=float)
    y = np.array(["a", "b", "a", "a", "b", "b", "a"])
    Xc = centre_within(X, SPK)
    for s in np.unique(SPK):
        np.testing.assert_allclose(Xc[SPK == s].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Xc[0], [1 - 2 / 3, 0 - 1 / 3])
    with caplog.at_level(logging.INFO):
        data = prepare(X, y, SPK, "within_speaker")
    assert data.absorbed_dof == 2 and data.n_speakers == 3
    np.testing.assert_allclose(data.matrix(), Xc)
    assert "unit within_speaker" in caplog.text


def test_speaker_unit_gives_one_row_per_speaker_and_class():
    X = np.arange(14, dtype=float).reshape(7, 2)
    y = np.array(["a", "a", "a", "b", "b", "a", "b"])
    means, cls = cell_means(X, SPK, y)
    assert len(means) == 4  # s1/a, s2/b, s3/a, s3/b
    np.testing.assert_allclose(means[0], X[:3].mean(axis=0))
    assert list(cls) == ["a", "b", "a", "b"]
    data = prepare(X, y, SPK, "speaker")
    assert data.absorbed_dof == 0 and data.groups is None and len(data.y) == 4


def test_centre_within_rows_subset_matches_full():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 2, (60, 5)).astype(np.int8)
    groups = np.repeat(["a", "b", "c"], 20)
    full = centre_within(X, groups)
    rows = np.array([0, 7, 25, 59])
    assert full.dtype == np.float64
    assert np.allclose(centre_within(X, groups, rows), full[rows])
