"""The one reader of params.yaml and its typed getters."""

from __future__ import annotations

from pathlib import Path

import pytest

from smp_balr.core.errors import UserError
from smp_balr.core.params import as_choice, as_float, as_int, check_keys, get, load_params


def test_load_and_get(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\nmodel:\n  method: dt\n")
    params = load_params(path)
    assert get(params, "model.method") == "dt" and get(params, "model.dt", None) is None
    with pytest.raises(UserError, match=r"params.yaml has no 'model.mlp'"):
        get(params, "model.mlp")
    path.write_text("seed: [3\n")
    with pytest.raises(
        UserError, match=r"line 1 is not valid YAML: the \[ opened on this line is not closed"
    ):
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
    with pytest.raises(
        UserError,
        match=r"unknown setting selection.slda.p_entr; the settings of selection.slda are p_enter",
    ):
        check_keys({"p_entr": 1e-30}, "selection.slda", ("p_enter",))
    with pytest.raises(UserError, match="must be a mapping"):
        check_keys([1], "selection.slda", ("p_enter",))


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "broken, fragment",
    [
        (
            "{key}: [1000",
            "the [ opened on this line is not closed",
        ),  # PyYAML notices it lines later
        ("{key}: {{a: 1", "the { opened on this line is not closed"),
        ("{key}: '1000", "the quote opened on this line is not closed"),
        (
            '{key}: "1000',
            "the quote opened on this line is not closed",
        ),  # PyYAML blames a later line
        ("{key} 1000", "no ':' between the setting and its value"),
        ("{key}: 1000: 3", "mapping values are not allowed here"),
        ("   {key}: 1000", "indentation does not match"),
        ("- {key}: 1000", "indentation does not match"),
        ("\t{key}: 1000", "a tab character; indent with spaces"),
    ],
)
def test_yaml_error_names_the_line_to_fix(tmp_path: Path, broken: str, fragment: str) -> None:
    """The project's own params.yaml broken on one known line:
    that line is named, counted from 1."""
    lines = (ROOT / "params.yaml").read_text().splitlines()
    target = next(
        i for i, ln in enumerate(lines) if ln.strip().startswith("n_bootstrap:")
    )  # in the middle of the file
    indent = "" if broken.startswith((" ", "\t", "-")) else "  "
    lines[target] = indent + broken.format(key="n_bootstrap")
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as info:
        load_params(path)
    msg = str(info.value)
    assert (
        f"line {target + 1} is not valid YAML: " in msg and fragment in msg and "\n" not in msg
    ), msg
    assert "n_bootstrap" in msg  # quotes the line


def test_yaml_apostrophe_in_plain_value_not_blamed(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  name: don't\n  labels: x\n   split: 1\n")
    with pytest.raises(UserError, match=r"line 4 is not valid YAML"):
        load_params(path)
