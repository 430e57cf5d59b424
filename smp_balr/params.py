"""The one place that reads ``params.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from smp_balr.errors import UserError

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read the parameter file.

    Parameters
    ----------
    path : str or Path
        YAML file, ``params.yaml`` in the working directory by default.

    Returns
    -------
    dict
        The parsed parameters.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"parameter file {path} not found; run from the project root")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where} is not valid YAML ({getattr(err, 'problem', err)}); fix the syntax") from None
    if not isinstance(params, dict):
        raise UserError(f"{path} must hold a mapping of parameters at the top level")
    return params


def get(params: dict[str, Any], dotted: str, default: Any = ...) -> Any:
    """Return ``params[a][b]`` for ``dotted='a.b'``.

    Parameters
    ----------
    params : dict
        Parsed parameters.
    dotted : str
        Dotted key path.
    default : any, optional
        Returned when the key is missing; without it a missing key is a :class:`UserError`.
    """
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            raise UserError(f"params.yaml has no '{dotted}'; add it (see README, Parameters)")
        node = node[part]
    return node


def as_int(value: Any, key: str, minimum: int | None = None) -> int:
    """``value`` as an int (booleans and fractions refused); ``key`` names it in the error."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        raise UserError(f"params.yaml: {key} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise UserError(f"params.yaml: {key} must be at least {minimum}, got {value}")
    return int(value)


def as_float(value: Any, key: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a float within [low, high] (booleans and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"params.yaml: {key} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise UserError(f"params.yaml: {key} must be {bounds}, got {value}")
    return float(value)


def as_choice(value: Any, key: str, allowed: tuple) -> Any:
    """``value`` if it is one of ``allowed`` (compared by type too: ``True`` is not ``1``)."""
    if not any(value == a and type(value) is type(a) for a in allowed):
        raise UserError(f"params.yaml: {key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return value


def check_keys(block: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``block`` as a mapping whose keys are all in ``allowed`` (catches misspelt settings)."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise UserError(f"params.yaml: {key} must be a mapping of settings, got {block!r}")
    unknown = [k for k in block if k not in allowed]
    if unknown and not key:
        raise UserError(f"params.yaml: unknown top-level setting '{unknown[0]}'; the top-level settings are {', '.join(allowed)}")
    if unknown:
        raise UserError(
            f"params.yaml: unknown setting {key}.{unknown[0]}; the settings of {key} are {', '.join(allowed)}"
        )
    return block
