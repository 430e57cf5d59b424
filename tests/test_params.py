"""The one reader of params.yaml and its typed getters."""

from __future__ import annotations

import pytest

from smp_balr.errors import UserError
from smp_balr.params import as_choice, as_float, as_int, check_keys, get, load_params


def test_load_and_get(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\nmodel:\n  method: dt\n")
    params = load_params(path)
    assert get(params, "model.method") == "dt" and get(params, "model.dt", None) is None
    with pytest.raises(UserError, match=r"params.yaml has no 'model.mlp'"):
        get(params, "model.mlp")
    path.write_text("seed: [3\n")
    with pytest.raises(UserError, match=r"line 2 is not valid YAML"):
        load_params(path)
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_as_int():
    assert as_int(5, "k") == 5 and as_int(5.0, "k") == 5
    for bad in (True, 2.5, "5", None):
        with pytest.raises(UserError, match="k must be a whole number"):
            as_int(bad, "k")
    with pytest.raises(UserError, match="k must be at least 1, got 0"):
        as_int(0, "k", minimum=1)


def test_as_float():
    assert as_float(1, "f") == 1.0
    with pytest.raises(UserError, match="f must be a number, got '0.05x'"):
        as_float("0.05x", "f")
    with pytest.raises(UserError, match="f must be between 0 and 1, got 2"):
        as_float(2, "f", 0, 1)
    with pytest.raises(UserError, match="f must be at least 0.5, got 0.1"):
        as_float(0.1, "f", low=0.5)


def test_as_choice_compares_types():
    assert as_choice(1, "train.balance", (0, 1, 2)) == 1
    with pytest.raises(UserError, match="train.balance must be one of 0, 1, 2, got True"):
        as_choice(True, "train.balance", (0, 1, 2))
    with pytest.raises(UserError, match="got 'MLP'"):
        as_choice("MLP", "model.method", ("mlp", "dt"))


def test_check_keys_names_the_misspelt_setting():
    assert check_keys(None, "selection.slda", ("p_enter",)) == {}
    with pytest.raises(UserError, match=r"unknown setting selection.slda.p_entr; the settings of selection.slda are p_enter"):
        check_keys({"p_entr": 1e-30}, "selection.slda", ("p_enter",))
    with pytest.raises(UserError, match="must be a mapping"):
        check_keys([1], "selection.slda", ("p_enter",))
