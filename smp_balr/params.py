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
