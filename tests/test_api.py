"""``select``: one entry for all methods, and its boundary errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smp_balr.errors import UserError
from smp_balr.selection import precision_recall, run_selection, select
from smp_balr.selection.api import method_settings
from smp_balr.selection.planted import make_planted

SETTINGS = {"unit": "auto", "correction": "bonferroni", "slda": {"p_enter": 0.05, "p_remove": None, "max_features": 50}}


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
    assert list(out.features.columns[:5]) == ["Feature", "Step", "Wilks_Lambda", "F_to_enter", "P_Value"]
    q = precision_recall(out.features["Feature"], planted.truth)
    assert q["precision"] >= 0.9 and q["recall"] >= 0.9


def test_speaker_level_label_uses_speaker_unit():
    p = make_planted(n_speakers=40, per_speaker=20, n_ba=30, n_planted=4, n_classes=2, effect=2.5,
                     speaker_level=True, seed=4)
    out = run_selection(p.table, "Label", "slda", SETTINGS, 0)
    assert out.unit == "speaker" and out.n_units == 40
    assert set(out.features["Feature"]) <= set(p.truth)


@pytest.mark.parametrize(
    "change, method, message",
    [
        (lambda d: d, "lasso", "unknown selection method 'lasso'"),
        (lambda d: d.drop(columns="Label"), "slda", "label 'Label' is not a column"),
        (lambda d: d.assign(Label="C0"), "slda", "has 1 class"),
        (lambda d: d.assign(Label=np.where(np.arange(len(d)) == 0, "rare", d["Label"])), "all", "rare \\(1 row\\)"),
    ],
)
def test_boundary_errors(planted, change, method, message):
    with pytest.raises(UserError, match=message):
        select(change(planted.table.copy()), "Label", method, SETTINGS, 0)


def test_no_ba_selected_gives_an_empty_table():
    rng = np.random.default_rng(0)
    df = pd.DataFrame((rng.random((200, 5)) < 0.5).astype(int), columns=[f"BA{j}" for j in range(5)])
    df.insert(0, "Label", np.tile(["a", "b"], 100))
    df.insert(0, "Speaker", np.repeat([f"s{j}" for j in range(10)], 20))
    out = select(df, "Label", "slda", SETTINGS, 0)
    assert out.empty and list(out.columns)[0] == "Feature"


@pytest.mark.parametrize(
    "settings, method, message",
    [
        ({"slda": {"p_entr": 1e-30}}, "slda", "unknown setting selection.slda.p_entr; the settings of selection.slda are p_enter"),
        ({"bayes": {"prior_sigmaa": 2.0}}, "bayes", "unknown setting selection.bayes.prior_sigmaa"),
        ({"all": {"keep": 1}}, "all", "unknown setting selection.all.keep"),
        ({"slda": {"p_enter": "0.05x"}}, "slda", "selection.slda.p_enter must be a number, got '0.05x'"),
        ({"slda": {"max_features": 2.5}}, "slda", "selection.slda.max_features must be a whole number, got 2.5"),
        ({"slda": {"p_enter": 1.5}}, "slda", "selection.slda.p_enter must be between 0.0 and 1.0, got 1.5"),
        ({"bayes": {"method": "nuts"}}, "bayes", "selection.bayes.method must be one of laplace, vi, mcmc, got 'nuts'"),
        ({"bayes": {"prior_sigma": 0}}, "bayes", "selection.bayes.prior_sigma must be greater than 0"),
        ({"bayes": {"draws": "many"}}, "bayes", "selection.bayes.draws must be a whole number"),
        ({"correction": "fdr"}, "slda", "selection.correction must be one of bonferroni, holm, fdr_bh, none, got 'fdr'"),
    ],
)
def test_misspelt_or_wrongly_typed_settings_are_refused(planted, settings, method, message):
    with pytest.raises(UserError, match=message) as err:
        select(planted.table, "Label", method, {**SETTINGS, **settings}, 0)
    assert "\n" not in str(err.value)


def test_wrongly_typed_seed_is_refused(planted):
    with pytest.raises(UserError, match="seed must be a whole number, got 'abc'"):
        select(planted.table, "Label", "all", SETTINGS, "abc")


def test_method_settings_fill_defaults_and_keep_nulls():
    cfg = method_settings({"slda": {"p_enter": 0.01, "p_remove": None}}, "slda")
    assert cfg == {"p_enter": 0.01, "p_remove": None, "max_features": 200, "permutations": 199}
    assert method_settings({"bayes": None}, "bayes")["max_rows"] == 8000
    assert method_settings({"bayes": None}, "bayes")["null_fits"] == 2
    assert method_settings({}, "all") == {}
