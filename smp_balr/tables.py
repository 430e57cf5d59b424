"""Reading the formatted tables and the per-label class filter, shared by every later step."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smp_balr.errors import UserError

log = logging.getLogger(__name__)

ID_COLUMNS = ("FileName", "Speaker", "Group")
_BA_RE = re.compile(r"^BA(\d+)$")


def ba_columns(df: pd.DataFrame) -> list[str]:
    """Names of the BA columns (``BA0``, ``BA1``, ...) in numeric order."""
    cols = [c for c in df.columns if isinstance(c, str) and _BA_RE.match(c)]
    return sorted(cols, key=lambda c: int(c[2:]))


def read_table(path: str | Path, made_by: str = "format") -> pd.DataFrame:
    """Read a formatted table written by the ``format`` stage.

    Parameters
    ----------
    path : str or Path
        CSV with ``FileName``, ``Speaker``, label columns and ``BA0..BA<D-1>``.
    made_by : str
        Stage that writes the file, named in the error when it is missing.

    Returns
    -------
    pandas.DataFrame
        BA columns as ``int8``, every other column as string.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"table {path} not found; run `dvc repro {made_by}` first")
    header = pd.read_csv(path, nrows=0).columns
    dtypes = {c: ("int8" if _BA_RE.match(c) else "string") for c in header}
    try:
        df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as err:
        raise UserError(f"table {path} is not a formatted BA table ({err}); rerun `dvc repro {made_by}`") from None
    for col in ("FileName", "Speaker"):
        if col not in df.columns:
            raise UserError(f"table {path} has no '{col}' column; rerun `dvc repro {made_by}`")
    if not ba_columns(df):
        raise UserError(f"table {path} has no BA columns (BA0, BA1, ...); rerun `dvc repro {made_by}`")
    return df


def require_label(df: pd.DataFrame, label: str, where: str | Path) -> None:
    """Raise a :class:`UserError` naming the available labels if ``label`` is not a column."""
    if label not in df.columns:
        candidates = [c for c in df.columns if c not in ID_COLUMNS and not _BA_RE.match(str(c))]
        raise UserError(
            f"label '{label}' is not a column of {where}; labels there: {', '.join(map(str, candidates)) or 'none'}"
        )


def filter_classes(
    df: pd.DataFrame, label: str, keep: Sequence[str] | None, where: str | Path = "the table", strict: bool = True
) -> tuple[pd.DataFrame, int]:
    """Keep the rows whose ``label`` is one of ``keep`` (all non-empty rows when ``keep`` is None).

    Rows with an empty label are always dropped. A class of ``keep`` with no row is an
    error when ``strict`` (training side: a misspelt class would change the task
    silently), a warning otherwise (a test set may lack a class).

    Returns
    -------
    (pandas.DataFrame, int)
        The filtered rows (index reset) and how many rows were dropped.
    """
    require_label(df, label, where)
    values = df[label]
    mask = np.array(values.notna(), dtype=bool)  # writable copy (pandas 3 returns read-only views)
    if keep is not None:
        keep = [str(k) for k in keep]
        present = set(values.dropna().unique())
        missing = [k for k in keep if k not in present]
        if missing and strict:
            raise UserError(
                f"classes.{label} names {', '.join(map(repr, missing))}, which has no rows in {where}; "
                f"fix the spelling or remove it from classes.{label} in params.yaml"
            )
        if missing:
            log.warning("classes %s of '%s' have no rows in %s", missing, label, where)
        mask &= values.isin(keep).fillna(False).to_numpy()
    out = df.loc[mask].reset_index(drop=True)
    return out, int(len(df) - len(out))


def class_filter(params: dict, label: str) -> list[str] | None:
    """The class list configured for ``label`` under ``classes`` in params, or None."""
    classes = params.get("classes") or {}
    if not isinstance(classes, dict):
        raise UserError(f"params.yaml: classes must map labels to class lists, e.g. EmoClass: [A, H, N, S]; got {classes!r}")
    keep = classes.get(label)
    if keep is not None and not isinstance(keep, list):
        raise UserError(f"params.yaml: classes.{label} must be a list such as [A, H, N, S], got {keep!r}")
    return None if keep is None else [str(k) for k in keep]


def ba_matrix(df: pd.DataFrame, columns: Sequence[str] | None = None, dtype: type = np.int8) -> np.ndarray:
    """The BA columns (only ``columns`` when given) as an array of shape (rows, BAs).

    Parameters
    ----------
    df : pandas.DataFrame
        A formatted table (BA columns 0/1, as :func:`read_table` returns them).
    columns : sequence of str, optional
        BA columns wanted, in this order; default all BA columns in numeric order.
    dtype : numpy dtype
        ``int8`` (default: one byte per BA, what the table holds); ``np.float32`` where a
        library wants floats (0/1 are exact). A float64 copy of a large table costs 8 bytes
        per BA: ask for it only for the few columns that need it.

    Returns
    -------
    numpy.ndarray
        C-contiguous matrix of ``dtype``.
    """
    cols = list(columns) if columns is not None else ba_columns(df)
    return np.ascontiguousarray(df[cols].to_numpy(dtype=dtype))


def read_features(path: str | Path, made_by: str, allow_empty: bool = False) -> list[str]:
    """The ordered BA names of a features file (CSV whose first column is ``Feature``).

    Parameters
    ----------
    path : str or Path
        ``features/<label>_<method>_features.csv``.
    made_by : str
        Stage that writes it, named in the error messages.
    allow_empty : bool
        Return ``[]`` for an empty selection instead of failing (reports; training fails).
    """
    path = Path(path)
    fix = f"run `dvc repro {made_by}`"
    if not path.is_file():
        raise UserError(f"features file {path} not found; {fix}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        if allow_empty:
            return []
        raise UserError(f"features file {path} is empty; {fix} (or choose another features.method)") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise UserError(f"features file {path} is not a CSV ({err}); {fix}") from None
    if "Feature" not in frame.columns:
        raise UserError(f"features file {path} has no 'Feature' column; {fix}")
    names = [f for f in frame["Feature"].str.strip() if f]
    if not names and not allow_empty:
        raise UserError(f"features file {path} lists no features; {fix} (or choose another features.method)")
    return names
