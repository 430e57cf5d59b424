"""Reading the formatted tables and the per-label class filter, shared by every later step."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smp_balr.core.errors import UserError

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
        raise UserError(
            f"table {path} is not a formatted BA table ({err}); rerun `dvc repro {made_by}`"
        ) from None
    for col in ("FileName", "Speaker"):
        if col not in df.columns:
            raise UserError(f"table {path} has no '{col}' column; rerun `dvc repro {made_by}`")
    if not ba_columns(df):
        raise UserError(
            f"table {path} has no BA columns (BA0, BA1, ...); rerun `dvc repro {made_by}`"
        )
    return df


def require_label(df: pd.DataFrame, label: str, where: str | Path) -> None:
    """Raise a :class:`UserError` naming the available labels if ``label`` is not a column."""
    if label not in df.columns:
        candidates = [c for c in df.columns if c not in ID_COLUMNS and not _BA_RE.match(str(c))]
        raise UserError(
            f"label '{label}' is not a column of {where}; labels there: "
            f"{', '.join(map(str, candidates)) or 'none'}"
        )


@dataclass
class ClassSelection:
    """Rows kept for a label, and why the others were left out.

    Attributes
    ----------
    rows : pandas.DataFrame
        The rows kept (index reset).
    n_empty : int
        Rows whose label cell is empty ("empty label"): left out whatever the class filter.
    n_filtered : int
        Rows with a label that the class filter ``classes.<label>`` does not list.
    """

    rows: pd.DataFrame
    n_empty: int
    n_filtered: int


def select_classes(
    df: pd.DataFrame,
    label: str,
    keep: Sequence[str] | None,
    where: str | Path = "the table",
    strict: bool = True,
) -> ClassSelection:
    """Keep the rows whose ``label`` is one of ``keep`` (all non-empty rows when ``keep`` is None).

    Rows with an empty label are always left out and counted apart ("empty label"). A class
    of ``keep`` with no row is an error when ``strict`` (training side: a misspelt class
    would change the task silently), a warning otherwise (a test set may lack a class).

    Parameters
    ----------
    df : pandas.DataFrame
        A formatted table (:func:`read_table`).
    label : str
        The label column.
    keep : sequence of str or None
        The classes to keep (``classes.<label>``), or None for every class.
    where : str or Path
        The table, named in messages.
    strict : bool
        Whether a class of ``keep`` without rows is an error.

    Returns
    -------
    ClassSelection
    """
    require_label(df, label, where)
    values = df[label]
    has_value = np.array(
        values.notna(), dtype=bool
    )  # writable copy (pandas 3 returns read-only views)
    mask = has_value.copy()
    if keep is not None:
        keep = [str(k) for k in keep]
        present = set(values.dropna().unique())
        missing = [k for k in keep if k not in present]
        if missing and strict:
            raise UserError(
                f"classes.{label} names {', '.join(map(repr, missing))}, which has no rows in "
                f"{where}; fix the spelling or remove it from classes.{label} in params.yaml"
            )
        if missing:
            log.warning("classes %s of '%s' have no rows in %s", missing, label, where)
        mask &= values.isin(keep).fillna(False).to_numpy()
    n_empty = int((~has_value).sum())
    if n_empty:
        log.warning(
            "%s: %d rows with an empty '%s' cell left out (empty label)", where, n_empty, label
        )
    out = df.loc[mask].reset_index(drop=True)
    n_filtered = int(len(df) - len(out) - n_empty)
    log.info(
        "%s: %d rows of '%s' kept, %d left out by the class filter",
        where,
        len(out),
        label,
        n_filtered,
    )
    return ClassSelection(rows=out, n_empty=n_empty, n_filtered=n_filtered)


def filter_classes(
    df: pd.DataFrame,
    label: str,
    keep: Sequence[str] | None,
    where: str | Path = "the table",
    strict: bool = True,
) -> tuple[pd.DataFrame, int]:
    """:func:`select_classes` as ``(rows, dropped by the class filter)``.

    Rows with an empty label are left out too but not counted in ``dropped``: they are
    logged as "empty label" (use :func:`select_classes` for their count).
    """
    sel = select_classes(df, label, keep, where, strict)
    return sel.rows, sel.n_filtered


def too_few_classes(
    label: str, counts: pd.Series, where: str | Path, keep: Sequence[str] | None = None
) -> str:
    """The message for a label left with fewer than 2 classes: what is wrong, what to do.

    Parameters
    ----------
    label : str
        The label (``label`` in params.yaml).
    counts : pandas.Series
        Rows per class left (index: class).
    where : str or Path
        The rows in question (e.g. the training table), named in the message.
    keep : sequence of str, optional
        The class filter ``classes.<label>`` when one is configured.
    """
    found = ", ".join(f"'{k}' ({int(v)} rows)" for k, v in counts.items())
    if len(counts) == 0:
        wrong = f"label '{label}' has no non-empty value in {where}"
        fix = f"fill the {label} column of the labels CSV, or set `label` to another column"
    else:
        wrong = f"label '{label}' has a single class in {where}: {found}"
        fix = (
            f"a label needs at least 2 classes to be measured — give the {label} column at least "
            f"two different values (e.g. label more recordings), or set `label` to another column"
        )
    if keep is not None:
        wrong += f" after the class filter classes.{label}: [{', '.join(map(str, keep))}]"
        fix += f", or list at least 2 of its classes in classes.{label}"
    return f"{wrong}; {fix}"


def ba_matrix(
    df: pd.DataFrame, columns: Sequence[str] | None = None, dtype: type = np.int8
) -> np.ndarray:
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


# why a selection can come out empty, and what to change; by the method in the file name
_EMPTY_SELECTION = {
    "slda": (
        "no BA passed the slda entry test (F-to-enter at selection.slda.p_enter after "
        "selection.correction)",
        "raise selection.slda.p_enter (e.g. 0.1) or use selection.correction: holm",
    ),
    "bayes": (
        "no BA reached selection.bayes.p_direction for any class (after selection.correction)",
        "lower selection.bayes.p_direction or use selection.correction: holm",
    ),
    "common": (
        "the selections it intersects share no BA",
        "use one method's selection (features.method: slda or bayes) or change "
        "selection.common.include / exclude",
    ),
    "all": (
        "every BA is constant in the training rows",
        "check the BA files (balr extraction, data.invert) and the class filter",
    ),
}


def empty_selection_message(path: str | Path) -> str:
    """The error for a features file that lists no BA: the selection ran and selected nothing.

    Rerunning the selection would select nothing again; the message says which test no BA
    passed and which setting to change (or ``features.method: all``).
    """
    path = Path(path)
    method = (
        path.name[: -len("_features.csv")].rsplit("_", 1)[-1]
        if path.name.endswith("_features.csv")
        else ""
    )
    why, change = _EMPTY_SELECTION.get(
        method, ("the selection selected no BA", "change its settings under selection")
    )
    alternative = "" if method == "all" else ", or train on every BA with features.method: all"
    return (
        f"features file {path} lists no BA: {why}, so the label may carry little signal in "
        f"these BAs; to train anyway, {change}{alternative}"
    )


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
        raise UserError(
            f"features file {path} is empty; {fix} (or choose another features.method)"
        ) from None
    except (ValueError, pd.errors.ParserError) as err:
        raise UserError(f"features file {path} is not a CSV ({err}); {fix}") from None
    if "Feature" not in frame.columns:
        raise UserError(f"features file {path} has no 'Feature' column; {fix}")
    names = [f for f in frame["Feature"].str.strip() if f]
    if not names and not allow_empty:
        raise UserError(empty_selection_message(path))
    return names


def features_stage(label: str, method: str) -> str:
    """Name of the dvc stage that writes the features file of ``label`` / ``method``."""
    return f"common@{label}" if method == "common" else f"select@{label}-{method}"


def require_columns(
    columns: Sequence[str], features: Sequence[str], where: str | Path, fix: str
) -> None:
    """Raise a :class:`UserError` naming the feature columns absent from ``columns``."""
    have = set(columns)
    missing = [f for f in features if f not in have]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise UserError(
            f"{len(missing)} model feature column(s) absent from {where}: {shown}; {fix}"
        )


def scorable_rows(
    table: str | Path,
    label: str,
    keep: Sequence[str] | None,
    model_label: str,
    classes: Sequence[str],
    features: Sequence[str],
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """The rows of the test table that a model trained for ``model_label`` can be scored on.

    Checks that the model was trained for ``label``, applies the class filter ``keep``
    (a filtered class absent from the test set is only warned about), drops rows of
    classes the model never saw (``classes``) and checks that every model input BA
    (``features``) is a column. Shared by the test and explain stages.

    Returns
    -------
    (pandas.DataFrame, int, dict)
        The rows (index reset), the number dropped by the class filter, and the counts
        per class of the rows dropped because the model never saw their class.
    """
    if model_label != label:
        raise UserError(
            f"{table} cannot be scored: the model was trained for label '{model_label}', params "
            f"has '{label}'; run `dvc repro train`"
        )
    df, dropped, unseen = scorable_frame(read_table(table), label, keep, classes, features, table)
    log.info(
        "%s: %d rows of '%s' to score, %d speakers (%d dropped by the class filter, %d of classes "
        "the model never saw)",
        table,
        len(df),
        label,
        df["Speaker"].nunique() if "Speaker" in df else 0,
        dropped,
        sum(unseen.values()),
    )
    return df, dropped, unseen


def scorable_frame(
    df: pd.DataFrame,
    label: str,
    keep: Sequence[str] | None,
    classes: Sequence[str],
    features: Sequence[str],
    where: str | Path = "the test table",
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """The rows of a test table (already read) scorable by a model of ``classes`` and ``features``.

    The frame version of :func:`scorable_rows` (no check of the model's label); the study
    reads its test table once and scores every configuration on it.
    """
    df, dropped = filter_classes(df, label, keep, where=where, strict=False)
    known = [str(c) for c in classes]
    unseen = ~df[label].astype(str).isin(known).to_numpy()
    unseen_counts = {str(k): int(v) for k, v in df.loc[unseen, label].value_counts().items()}
    if unseen.any():
        log.warning(
            "%d test rows of classes never seen in training excluded: %s",
            int(unseen.sum()),
            unseen_counts,
        )
        df = df.loc[~unseen].reset_index(drop=True)
    if df.empty:
        raise UserError(
            f"no rows of the model's classes ({', '.join(known)}) in {where}; "
            f"check `classes.{label}` and `label` in params.yaml"
        )
    require_columns(
        df.columns, features, where, "test and train tables must come from the same `format` run"
    )
    return df, dropped, unseen_counts
