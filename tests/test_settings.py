"""The settings layer: params.yaml validated once, defaults in one place, one-line errors."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, is_dataclass

import pytest
import yaml

from smp_balr.core.errors import UserError
from smp_balr.core.settings import (
    SelectionSettings,
    Settings,
    build,
    load_settings,
    settings_from_params,
)

from conftest import ROOT

SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())


def _keys(obj, prefix=""):
    """Dotted keys of a settings object (nested dataclasses expanded)."""
    out = set()
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value) and f.name != "demo":
            out |= _keys(value, key + ".") or {key}
        else:
            out.add(key)
    return out


def _param_keys(block, prefix=""):
    out = set()
    for name, value in block.items():
        key = f"{prefix}{name}"
        nested = isinstance(value, dict) and name not in ("classes", "grid", "planted", "demo")
        out |= (_param_keys(value, key + ".") or {key}) if nested else {key}
    return out


def test_shipped_params_equal_the_defaults_and_name_every_setting():
    assert load_settings(ROOT / "params.yaml") == Settings()
    stage_keys = _param_keys(SHIPPED)
    assert _keys(Settings()) == stage_keys


def _with(change: dict) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in change.items():
        node = params
        *head, last = dotted.split(".")
        for part in head:
            node = node[part]
        node[last] = value
    return params


BAD = [
    ({"modle": 1}, "unknown top-level setting 'modle'"),
    ({"model.mlp.max_iter": 0}, "model.mlp.max_iter must be at least 1, got 0"),
    (
        {"model.mlp.activation": "foo"},
        "model.mlp.activation must be one of identity, logistic, tanh, relu",
    ),
    ({"model.mlp.learning_rate": 0}, "model.mlp.learning_rate must be greater than 0.0"),
    ({"model.dt.cv_folds": 1}, "model.dt.cv_folds must be at least 2, got 1"),
    ({"model.dt.n_jobs": 0}, "model.dt.n_jobs must be -1"),
    ({"model.dt.max_depth": 3}, "unknown setting model.dt.max_depth"),
    ({"model.logreg.C": [0.1, -1]}, r"model.logreg.C\[2\] must be greater than 0.0, got -1"),
    ({"model.method": "svm"}, "model.method must be one of logreg, mlp, dt, got 'svm'"),
    (
        {"selection.slda.p_entr": 1e-30},
        "unknown setting selection.slda.p_entr; the settings of selection.slda are p_enter",
    ),
    ({"selection.bayes.prior_sigmaa": 2.0}, "unknown setting selection.bayes.prior_sigmaa"),
    ({"selection.all": {"keep": 1}}, "unknown setting selection.all.keep"),
    ({"selection.slda.p_enter": "0.05x"}, "selection.slda.p_enter must be a number, got '0.05x'"),
    (
        {"selection.slda.max_features": 2.5},
        "selection.slda.max_features must be a whole number, got 2.5",
    ),
    (
        {"selection.slda.p_enter": 1.5},
        "selection.slda.p_enter must be between 0.0 and 1.0, got 1.5",
    ),
    ({"selection.slda.p_remove": 0.01}, "selection.slda.p_remove .0.01. must exceed p_enter"),
    (
        {"selection.bayes.method": "nuts"},
        "selection.bayes.method must be one of laplace, vi, mcmc, got 'nuts'",
    ),
    ({"selection.bayes.prior_sigma": 0}, "selection.bayes.prior_sigma must be greater than 0"),
    ({"selection.bayes.draws": "many"}, "selection.bayes.draws must be a whole number"),
    (
        {"selection.correction": "fdr"},
        "selection.correction must be one of bonferroni, holm, fdr_bh, none, got .fdr.",
    ),
    (
        {"selection.selectors": ["slda", "lasso"]},
        "selection.selectors lists 'lasso'; the options are all, slda, bayes",
    ),
    ({"selection.common": {"exlude": ["_all_"]}}, "unknown setting selection.common.exlude"),
    ({"selection.common.include": "slda"}, "selection.common.include must be a list of names"),
    ({"selection.common": [{"output": "x"}]}, "selection.common must be a mapping"),
    ({"train.balance": True}, "train.balance must be one of 0, 1, 2, got True"),
    ({"seed": "abc"}, "seed must be a whole number, got 'abc'"),
    ({"data.split": 2}, "data.split must be one of 0, 1, got 2"),
    ({"classes.EmoClass": "A"}, "classes.EmoClass must be a list of names"),
    (
        {"explain.mlp_explainer": "lime"},
        "explain.mlp_explainer must be one of permutation, kernel, got 'lime'",
    ),
    ({"explain.n_samples": 0}, "explain.n_samples must be at least 1, got 0"),
    ({"explain.background": "pca"}, "explain.background must be one of kmeans, sample, got 'pca'"),
    ({"explain.ba": ["BA5", "emotion"]}, "explain.ba lists 'emotion', not a BA name"),
    ({"test.alpha": 0.7}, "test.alpha must be at most 0.5, got 0.7"),
    ({"demo.n_speakers": 3}, "demo.n_speakers must be at least 8"),
    (
        {"label": "Gender"},
        r"label 'Gender' is not in labels \['EmoClass', 'Language', 'Modality', 'Noise'\]: "
        r"the select ",
    ),
    (
        {"labels": ["EmoClass", "Gender"]},
        r"classes has no entry for label 'Gender'; add `Gender: all`",
    ),
    (
        {"study.features": ["all", "slda"], "selection.selectors": ["all", "bayes"]},
        r"^params.yaml: study.features lists 'slda', but selection.selectors \['all', 'bayes'\] "
        r"does not run it",
    ),
    ({"study.model": ["svm"]}, r"study.model\[1\] must be one of logreg, mlp, dt, got 'svm'"),
    ({"study.balance": [0, 0]}, r"study.balance lists an entry twice"),
    ({"study.seeds": [1, -1]}, r"study.seeds\[2\] must be at least 0"),
    ({"report.correction": "bonferroni"}, r"report.correction must be one of holm, fdr_bh"),
    (
        {"features.method": "bayes", "selection.selectors": ["all", "slda"]},
        r"features.method is 'bayes', but selection.selectors \['all', 'slda'\] does not run it",
    ),
]


@pytest.mark.parametrize("change, message", BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_bad_settings_are_one_line(change, message):
    with pytest.raises(UserError, match=message) as err:
        settings_from_params(_with(change))
    assert "\n" not in str(err.value) and str(err.value).startswith("params.yaml")


def test_missing_keys_take_the_defaults_and_nulls_stay():
    settings = settings_from_params({"selection": {"slda": {"p_enter": 0.01, "p_remove": None}}})
    assert settings.selection.slda.p_enter == 0.01 and settings.selection.slda.p_remove is None
    assert settings.selection.slda.max_features == 200 and settings.selection.bayes.max_rows == 8000
    assert build(SelectionSettings, {"common": {"exclude": []}}, "selection").common.exclude == ()


def test_settings_are_frozen_and_typed():
    s = Settings()
    with pytest.raises(FrozenInstanceError):
        s.label = "Language"  # type: ignore[misc]
    assert s.class_filter("EmoClass") == ["A", "H", "N", "S"] and s.class_filter("Language") is None
    assert isinstance(s.model.dt.grid["max_depth"], tuple)
