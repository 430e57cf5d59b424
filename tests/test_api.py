"""``select``: one entry for all methods, and its boundary errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.support.planted import make_planted
from smp_balr.core.errors import UserError
from smp_balr.core.settings import SelectionSettings, SldaSettings
from smp_balr.selection import precision_recall, run_selection, select

SETTINGS = SelectionSettings(slda=SldaSettings(p_enter=0.05, p_remove=None, max_features=50))


@pytest.fixture(scope="module")
def planted():
    return make_planted(n_speakers=30, per_speaker=60, n_ba=60, n_planted=6, seed=11)


def test_all_keeps_every_non_constant_ba(planted):
    df = planted.table.copy()
    df["BA3"] = 1
    out = select(df, "Label", "all", SETTINGS, 0)
    assert "BA3" not in set(out["Feature"]) and len(out) == 59
    assert out["Rate"].between(0, 1).all()


def test_slda_through_api_finds_the_planted_bas(planted):
    out = run_selection(planted.table, "Label", "slda", SETTINGS, 0)
    assert out.unit == "within_speaker"
    assert list(out.features.columns[:5]) == [
        "Feature",
        "Step",
        "Wilks_Lambda",
        "F_to_enter",
        "P_Value",
    ]
    q = precision_recall(out.features["Feature"], planted.truth)
    assert q["precision"] >= 0.9 and q["recall"] >= 0.9


def test_speaker_level_label_uses_speaker_unit():
    p = make_planted(
        n_speakers=40,
        per_speaker=20,
        n_ba=30,
        n_planted=4,
        n_classes=2,
        effect=2.5,
        speaker_level=True,
        seed=4,
    )
    out = run_selection(p.table, "Label", "slda", SETTINGS, 0)
    assert out.unit == "speaker" and out.n_units == 40
    assert set(out.features["Feature"]) <= set(p.truth)


@pytest.mark.parametrize(
    "change, method, message",
    [
        (lambda d: d, "lasso", "unknown selection method 'lasso'"),
        (lambda d: d.drop(columns="Label"), "slda", "label 'Label' is not a column"),
        (lambda d: d.assign(Label="C0"), "slda", "has a single class in the training rows: .C0."),
        (
            lambda d: d.assign(Label=np.where(np.arange(len(d)) == 0, "rare", d["Label"])),
            "all",
            "rare \\(1 row\\)",
        ),
    ],
)
def test_boundary_errors(planted, change, method, message):
    with pytest.raises(UserError, match=message):
        select(change(planted.table.copy()), "Label", method, SETTINGS, 0)


def test_no_ba_selected_gives_an_empty_table():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        (rng.random((200, 5)) < 0.5).astype(int), columns=[f"BA{j}" for j in range(5)]
    )
    df.insert(0, "Label", np.tile(["a", "b"], 100))
    df.insert(0, "Speaker", np.repeat([f"s{j}" for j in range(10)], 20))
    out = select(df, "Label", "slda", SETTINGS, 0)
    assert out.empty and list(out.columns)[0] == "Feature"


def test_single_class_label_says_what_is_wrong():
    """A label with one value: the data is the problem,
    not a classes.<label> key that does not exist."""
    from smp_balr.selection.api import check_classes

    with pytest.raises(UserError) as info:
        check_classes(pd.Series(["x"] * 30), "One")
    msg = str(info.value)
    assert "label 'One' has a single class in the training rows: 'x' (30 rows)" in msg
    assert "at least two different values" in msg and "set `label` to another column" in msg
    assert "classes.One" not in msg
    with pytest.raises(UserError) as info:
        check_classes(pd.Series(["A"] * 5), "Emo", keep=["A", "Q"])
    assert "after the class filter classes.Emo: [A, Q]" in str(info.value)
    assert "list at least 2 of its classes in classes.Emo" in str(info.value)
    with pytest.raises(UserError, match="label 'Emo' has no non-empty value in the training rows"):
        check_classes(pd.Series([], dtype=str), "Emo")
