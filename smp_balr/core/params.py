"""The one place that reads ``params.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from smp_balr.core.errors import UserError

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
    text = path.read_text()
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(yaml_error_line(err, text, path)) from None
    if not isinstance(params, dict):
        raise UserError(f"{path} must hold a mapping of parameters at the top level")
    return params


# what an unclosed construct is, by the context PyYAML names; its error is where it was opened
_OPENED = {
    "while parsing a flow sequence": "the [ opened on this line is not closed with ]",
    "while parsing a flow mapping": "the { opened on this line is not closed with }",
    "while scanning a quoted scalar": "the quote opened on this line is not closed",
    "while scanning a simple key": "this line has no ':' between the setting and its value",
}


def _open_quote(line: str) -> bool:
    """Whether ``line`` ends inside a quoted string (comments after `` #`` ignored)."""
    quote = None
    for i, ch in enumerate(line):
        if quote is None and ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return False
        if quote is None and ch in "'\"" and (i == 0 or line[i - 1] in " \t[{,:"):
            quote = ch  # a quote opens a value only at its start (don't is a plain word)
        elif ch == quote:
            quote = None
    return quote is not None


def yaml_error_line(err: Exception, text: str, path: str | Path) -> str:
    """One line naming the line of a YAML syntax error, counted from 1 as editors do.

    PyYAML's ``problem_mark`` is where the parser noticed the problem, which for an
    unclosed bracket or quote is lines later; the line where the construct was opened
    (``context_mark``) is the one to fix then. For other errors the problem line is
    right, except that a quote left open on an earlier line of the same block is named.
    """
    problem = getattr(err, "problem_mark", None)
    context = getattr(err, "context_mark", None)
    what = str(getattr(err, "problem", None) or err).strip()
    if problem is None:
        return f"{path} is not valid YAML ({what}); fix the syntax"
    line = problem.line
    opened = _OPENED.get(str(getattr(err, "context", "") or ""))
    lines = text.splitlines()
    if opened is not None and context is not None:
        line, what = context.line, opened
    else:
        start = context.line if context is not None else max(0, line - 20)
        quoted = [i for i in range(start, min(line, len(lines))) if _open_quote(lines[i])]
        if quoted:
            line, what = quoted[0], "the quote opened on this line is not closed"
        elif "'\\t'" in what:
            what = "a tab character; indent with spaces"
        elif what.startswith("expected <block end>"):
            what = "its indentation does not match the lines above"
    shown = lines[line].strip() if line < len(lines) else ""
    reads = f" (it reads: {shown[:80]})" if shown else ""
    return f"{path} line {line + 1} is not valid YAML: {what}{reads}; fix the syntax"


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
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise UserError(f"params.yaml: {key} must be {bounds}, got {value}")
    return float(value)


def as_choice(value: Any, key: str, allowed: tuple) -> Any:
    """``value`` if it is one of ``allowed`` (compared by type too: ``True`` is not ``1``)."""
    if not any(value == a and type(value) is type(a) for a in allowed):
        raise UserError(
            f"params.yaml: {key} must be one of {', '.join(map(str, allowed))}, got {value!r}"
        )
    return value


def check_keys(block: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``block`` as a mapping whose keys are all in ``allowed`` (catches misspelt settings)."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise UserError(f"params.yaml: {key} must be a mapping of settings, got {block!r}")
    unknown = [k for k in block if k not in allowed]
    if unknown and not key:
        raise UserError(
            f"params.yaml: unknown top-level setting '{unknown[0]}'; "
            f"the top-level settings are {', '.join(allowed)}"
        )
    if unknown:
        raise UserError(
            f"params.yaml: unknown setting {key}.{unknown[0]}; "
            f"the settings of {key} are {', '.join(allowed)}"
        )
    return block
