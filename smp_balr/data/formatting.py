"""Step 1: join a labels CSV with BALR BA files (or one BA table) into the formatted table(s).

The formatted table has the columns ``FileName, Speaker, Group, <other label columns in
the CSV's order>, BA0..BA<D-1>`` (BA values as integers 0/1), one row per matched file,
rows sorted by ``FileName``.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from smp_balr.core.errors import UserError
from smp_balr.core.memory import format_need, require_memory
from smp_balr.core.outputs import transaction
from smp_balr.core.settings import check_name, class_value_problem, excerpt
from smp_balr.data.bafiles import (
    BAIndex,
    MatchResult,
    find_ba_files,
    match_files,
    read_ba_file,
    read_ba_files,
)
from smp_balr.data.batable import BATable, read_ba_table, same_file

log = logging.getLogger(__name__)

GROUPS = ("Train", "Test")
_BA_RE = re.compile(r"^BA\d+$")
N_EXAMPLES = 5


@dataclass
class FormattedTable:
    """A formatted table held as its label part and its BA matrix.

    Attributes
    ----------
    meta : pandas.DataFrame
        ``FileName``, ``Speaker``, ``Group`` (when present) and the other label columns, as strings.
    ba : numpy.ndarray
        ``int8`` matrix (rows, D) of 0/1 values, row-aligned with ``meta``.
    """

    meta: pd.DataFrame
    ba: np.ndarray

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def ba_names(self) -> list[str]:
        return [f"BA{i}" for i in range(self.ba.shape[1])]

    def to_frame(self) -> pd.DataFrame:
        """The table as one DataFrame (BA columns as ``int8``)."""
        ba = pd.DataFrame(self.ba, columns=self.ba_names, index=self.meta.index)
        return pd.concat([self.meta, ba], axis=1)

    def subset(self, mask: np.ndarray) -> "FormattedTable":
        return FormattedTable(self.meta.loc[mask].reset_index(drop=True), self.ba[mask])


@dataclass
class FormatReport:
    """Counts reported by :func:`format_corpus`."""

    n_labels: int
    n_files: int
    n_matched: int
    labels_without_vectors: list[str]
    vectors_without_labels: list[str]
    n_ba: int
    # label column -> CSV lines with an empty cell
    empty_labels: dict[str, list[int]] = field(default_factory=dict)
    source: str = "files"  # files: data.ba_dir; table: data.ba_table (n_files counts its rows)


def read_labels(path: str | Path, require_group: bool) -> pd.DataFrame:
    """Read and validate the labels CSV.

    Parameters
    ----------
    path : str or Path
        CSV with at least ``FileName`` and ``Speaker`` (and ``Group`` when splitting).
    require_group : bool
        Whether ``Group`` is required (``data.split: 1``).

    Returns
    -------
    pandas.DataFrame
        All columns as strings (empty cells as ``""``), column names stripped.

    Raises
    ------
    UserError
        Missing file, unparseable CSV, missing required columns, empty FileName or Speaker,
        duplicate FileName, label columns named like BA columns.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"labels file {path} (data.labels) not found; set data.labels to your labels CSV"
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        msg = " ".join(str(err).split())
        raise UserError(
            f"labels file {path} is not a readable CSV ({msg}); save it as UTF-8 CSV with a "
            "header row"
        ) from None
    _check_header(path)
    return check_labels(df, path, require_group)


def check_labels(df: pd.DataFrame, path: str | Path, require_group: bool) -> pd.DataFrame:
    """Validate a labels table read from ``path`` (see :func:`read_labels`); values as strings."""
    df.columns = [str(c).strip() for c in df.columns]
    required = ["FileName", "Speaker"] + (["Group"] if require_group else [])
    missing = [c for c in required if c not in df.columns]
    if missing == ["Group"]:
        raise UserError(
            f"labels file {path} has no Group column (it has: {', '.join(df.columns)}); add a "
            "Group column with Train or Test on every row — the model is trained on the Train "
            "rows and measured on the Test rows, so put all rows of a speaker in the same group"
        )
    if missing:
        raise UserError(
            f"labels file {path} lacks required column(s) {', '.join(missing)}; it has: "
            f"{', '.join(df.columns)} — add them"
        )
    if df.empty:
        raise UserError(
            f"labels file {path} has a header ({', '.join(df.columns)}) but no rows; add one row "
            "per audio file"
        )
    dup_cols = df.columns[df.columns.duplicated()].tolist()
    if dup_cols:  # the same name after stripping spaces ("A" and "A ")
        raise UserError(
            f"labels file {path} has duplicate column(s) {', '.join(dup_cols)}; rename them"
        )
    clash = [c for c in df.columns if _BA_RE.match(c)]
    if clash:
        raise UserError(
            f"labels file {path} has column(s) {', '.join(clash)} named like BA columns; rename "
            "them"
        )
    # "Train, spk1, A" written with ", " separators: the values without the spaces
    for col in df.columns:
        df[col] = df[col].str.strip()
    for col in df.columns:
        if col not in ID_COLUMNS:
            check_name(
                col,
                f"labels file {path}: label column",
                "rename that column in the labels CSV (and in params.yaml)",
            )
            _check_class_values(df[col], col, path)
    for col in ("FileName", "Speaker"):
        empty = np.flatnonzero((df[col] == "").to_numpy())
        if empty.size:
            raise UserError(
                f"labels file {path}: column {col} is empty on line {empty[0] + 2} "
                f"({empty.size} rows); fill it or drop the rows"
            )
    dup = df["FileName"].duplicated(keep=False).to_numpy()
    if dup.any():
        name = df["FileName"][dup].iloc[0]
        lines = (np.flatnonzero((df["FileName"] == name).to_numpy()) + 2).tolist()
        raise UserError(
            f"labels file {path}: FileName '{name}' appears more than once (lines "
            f"{', '.join(map(str, lines))}, {int(df['FileName'].duplicated().sum())} duplicates "
            "in all); keep one row per file"
        )
    return df


ID_COLUMNS = ("FileName", "Speaker", "Group")


def _check_header(path: Path) -> None:
    """Refuse duplicated column names, read from the header (pandas renames a second X to X.1)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = [c.strip() for c in next(csv.reader(fh), [])]
    except (csv.Error, UnicodeDecodeError):
        return  # pandas has read it; its own error would have been raised first
    seen: set[str] = set()
    dups = sorted({c for c in header if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
    if dups:
        raise UserError(
            f"labels file {path} has duplicated column name(s) "
            f"{', '.join(excerpt(c) for c in dups[:5])}; rename or remove the second of each "
            "(every column needs its own name)"
        )


def _check_class_values(values: pd.Series, col: str, path: Path) -> None:
    """Refuse class values holding markup or control characters (they reach reports and plots)."""
    for value in pd.unique(values.to_numpy()):
        why = class_value_problem(str(value))
        if why is not None:
            line = int(np.flatnonzero((values == value).to_numpy())[0]) + 2
            raise UserError(
                f"labels file {path}: label {col} has the class {excerpt(str(value))} (first on "
                f"line {line}): {why}; class names reach report pages and plots, so rename that "
                "class without < > & quotes | ` or control characters (spaces are fine)"
            )


def _ordered_columns(columns: Sequence[str]) -> list[str]:
    ids = [c for c in ("FileName", "Speaker", "Group") if c in columns]
    return ids + [c for c in columns if c not in ids]


def format_corpus(
    labels_path: str | Path,
    ba_dir: str | Path | None,
    split: bool = True,
    invert: bool = False,
    progress: bool = True,
    memory_available: int | None = None,
    ba_table: str | Path | None = None,
) -> tuple[dict[str, FormattedTable], FormatReport]:
    """Join the labels CSV with the BA files, or with the rows of one BA table.

    Parameters
    ----------
    labels_path : str or Path
        Labels CSV (``data.labels``); may be the BA table itself when it holds the label columns.
    ba_dir : str or Path or None
        Folder searched recursively for BA files (``data.ba_dir``); None with ``ba_table``.
    split : bool
        True: return ``{"train": ..., "test": ...}`` split by ``Group``; False: ``{"all": ...}``.
    invert : bool
        Flip 0/1 (old files where 0 means present).
    progress : bool
        Show a progress bar while reading many files.
    memory_available : int, optional
        Bytes the step may use (default: what the system has free); a corpus that needs
        more fails before any file is read.
    ba_table : str or Path, optional
        CSV or Parquet table of BA vectors (``data.ba_table``, see :mod:`smp_balr.data.batable`)
        instead of ``ba_dir``: its rows are matched, counted and checked as files are.

    Returns
    -------
    (dict, FormatReport)
        The table(s), rows sorted by FileName, and the matching counts.

    Raises
    ------
    UserError
        Any validation failure (see :func:`read_labels`,
        :func:`smp_balr.data.bafiles.read_ba_file`, :func:`smp_balr.data.batable.read_ba_table`),
        both or neither of ``ba_dir`` and ``ba_table``, no file matched, ``Group`` values other
        than Train/Test when splitting, or an empty Train or Test part.
    """
    if (ba_dir is None) == (ba_table is None):
        raise UserError(
            "give exactly one BA source: data.ba_dir (a folder of BA files) or data.ba_table "
            "(one table)"
        )
    labels, index, ba_rows = _read_sources(
        labels_path, ba_dir, ba_table, split, invert, memory_available
    )
    match = match_files(labels["FileName"].tolist(), index)
    if match.n_matched == 0:
        raise _no_match(labels, index, ba_rows, labels_path, ba_dir, ba_table)
    matched, meta, files = _matched_rows(labels, match)
    if split:
        _check_groups(labels, meta, matched, match.files, labels_path, ba_table)
    ba = _read_matched_ba(files, meta, ba_rows, invert, progress, memory_available)
    table = FormattedTable(meta, ba)
    report = FormatReport(
        n_labels=len(labels),
        n_files=index.n_files,
        n_matched=match.n_matched,
        labels_without_vectors=match.unmatched_labels,
        vectors_without_labels=[str(p.relative_to(index.root)) for p in match.unused_files],
        n_ba=int(ba.shape[1]),
        empty_labels=empty_label_cells(labels, matched),
        source="files" if ba_rows is None else "table",
    )
    log_report(report)
    if not split:
        return {"all": table}, report
    return _split_parts(table), report


def _read_sources(
    labels_path: str | Path,
    ba_dir: str | Path | None,
    ba_table: str | Path | None,
    split: bool,
    invert: bool,
    memory_available: int | None,
) -> tuple[pd.DataFrame, BAIndex, BATable | None]:
    """The labels and the BA source: the files under ``ba_dir`` or the rows of ``ba_table``."""
    if ba_table is None:
        labels = read_labels(labels_path, require_group=split)
        return labels, find_ba_files(ba_dir), None
    in_table = Path(labels_path).is_file() and same_file(labels_path, ba_table)
    if not in_table:
        labels = read_labels(labels_path, require_group=split)
    ba_rows = read_ba_table(
        ba_table, invert=invert, with_labels=in_table, memory_available=memory_available
    )
    if in_table:
        labels = check_labels(ba_rows.labels, labels_path, require_group=split)
    return labels, ba_rows.index, ba_rows


def _no_match(
    labels: pd.DataFrame,
    index: BAIndex,
    ba_rows: BATable | None,
    labels_path: str | Path,
    ba_dir: str | Path | None,
    ba_table: str | Path | None,
) -> UserError:
    """The error when no FileName matched: an example of each side and the matching rule."""
    example_name = labels["FileName"].iloc[0]  # read_labels refuses a CSV without rows
    example_file = next(iter(index.by_stem.values()))[0].name
    if ba_rows is not None:
        return UserError(
            f"no FileName in {labels_path} matched a row of BA table {ba_table}: e.g. FileName "
            f"'{example_name}' vs table FileName '{ba_rows.file_names[0]}'; FileName 'spk1/x.wav' "
            "matches a table row 'x.wav', 'x' or 'spk1/x.flac' (the name without extension agrees)"
        )
    return UserError(
        f"no FileName in {labels_path} matched a BA file under {ba_dir}: e.g. FileName "
        f"'{example_name}' vs file '{example_file}'; FileName 'x.wav' needs a file x_ba.txt, "
        "x_ba.pkl or x_ba.npy"
    )


def _matched_rows(
    labels: pd.DataFrame, match: MatchResult
) -> tuple[np.ndarray, pd.DataFrame, list[Path]]:
    """Which label rows matched, and the matched rows' labels and BA files sorted by FileName."""
    matched = np.array([f is not None for f in match.files])
    meta = labels.loc[matched, _ordered_columns(list(labels.columns))]
    files = [f for f in match.files if f is not None]
    order = np.argsort(meta["FileName"].to_numpy(dtype=object), kind="stable")
    meta = meta.iloc[order].reset_index(drop=True)
    files = [files[i] for i in order]
    return matched, meta, files


def _check_groups(
    labels: pd.DataFrame,
    meta: pd.DataFrame,
    matched: np.ndarray,
    files: Sequence[Path | None],
    labels_path: str | Path,
    ba_table: str | Path | None,
) -> None:
    """Refuse a matched Group other than Train/Test, and a Train or Test part without rows."""
    groups = meta["Group"]
    bad = ~groups.isin(GROUPS).to_numpy()
    if bad.any():
        values = sorted(set(groups[bad]))
        # first in CSV order
        row = int(np.flatnonzero(matched & ~labels["Group"].isin(GROUPS).to_numpy())[0])
        first, line = labels["FileName"].iloc[row], row + 2
        raise UserError(
            f"labels file {labels_path}: Group must be Train or Test, found "
            f"{', '.join(repr(v) for v in values[:5])} on {int(bad.sum())} rows (first on line "
            f"{line}, FileName '{first}'); write Train or Test, spelt exactly so, in the Group "
            "column of those rows"
        )
    for g in GROUPS:
        if not (groups == g).any():
            raise UserError(_missing_group(labels, files, g, labels_path, ba_table))


def _read_matched_ba(
    files: list[Path],
    meta: pd.DataFrame,
    ba_rows: BATable | None,
    invert: bool,
    progress: bool,
    memory_available: int | None,
) -> np.ndarray:
    """The BA matrix of the matched rows: the files read (memory checked first) or table rows."""
    if ba_rows is not None:  # read and checked (memory included) by read_ba_table
        return ba_rows.take(files)
    n_ba = read_ba_file(files[0], invert=invert).size
    require_memory(
        format_need(len(files), n_ba, int(meta.memory_usage(deep=True).sum())),
        f"format of {len(files):,} BA files x {n_ba} BAs",
        "format the corpus in parts (labels CSVs of fewer rows, "
        "data.labels) or run on a machine with more free memory",
        available=memory_available,
    )
    return read_ba_files(files, invert=invert, progress=progress)


def _split_parts(table: FormattedTable) -> dict[str, FormattedTable]:
    """The Train and Test parts of a table, warning of speakers found in both."""
    is_train = (table.meta["Group"] == "Train").to_numpy()
    out = {"train": table.subset(is_train), "test": table.subset(~is_train)}
    shared = set(out["train"].meta["Speaker"]) & set(out["test"].meta["Speaker"])
    if shared:
        log.warning(
            "%d speaker(s) appear in both Train and Test (e.g. %s): test results will be "
            "optimistic",
            len(shared),
            ", ".join(sorted(shared)[:N_EXAMPLES]),
        )
    for part, tab in out.items():
        log.info("%s: %d rows, %d speakers", part, len(tab), tab.meta["Speaker"].nunique())
    return out


def _missing_group(
    labels: pd.DataFrame,
    files: Sequence[Path | None],
    group: str,
    labels_path: str | Path,
    ba_table: str | Path | None = None,
) -> str:
    """Why no matched row is in ``group``: no such row at all, or none of them has a BA file."""
    rows = np.flatnonzero((labels["Group"] == group).to_numpy())
    if rows.size == 0:
        return (
            f"labels file {labels_path} has no row with Group '{group}'; the pipeline needs Train "
            f"and Test rows — mark the rows of some speakers (e.g. a fifth of them) {group}"
        )
    if ba_table is not None:
        return (
            f"none of the {rows.size} rows of {labels_path} with Group '{group}' has a row in BA "
            f"table {ba_table} (e.g. FileName '{labels['FileName'].iloc[rows[0]]}' on line "
            f"{rows[0] + 2}); add their BA vectors to the table or fix their FileName"
        )
    return (
        f"none of the {rows.size} rows of {labels_path} with Group '{group}' has a BA file (e.g. "
        f"FileName '{labels['FileName'].iloc[rows[0]]}' on line {rows[0] + 2}); extract their BA "
        "vectors with balr into data.ba_dir or fix their FileName"
    )


def empty_label_cells(labels: pd.DataFrame, rows: np.ndarray | None = None) -> dict[str, list[int]]:
    """Lines of the labels CSV (from 1, header included) with an empty label cell, per label column.

    Parameters
    ----------
    labels : pandas.DataFrame
        As returned by :func:`read_labels` (empty cells as ``""``).
    rows : numpy.ndarray of bool, optional
        Only these rows (e.g. those matched to a BA file).
    """
    out: dict[str, list[int]] = {}
    for col in labels.columns:
        if col in ("FileName", "Speaker", "Group"):
            continue
        empty = (labels[col] == "").to_numpy()
        if rows is not None:
            empty = empty & rows
        if empty.any():
            out[col] = (np.flatnonzero(empty) + 2).tolist()
    return out


def log_report(report: FormatReport) -> None:
    """Log the matching counts with the first few names of each kind."""
    log.info(
        "labels: %d rows; %s: %d; matched: %d (D = %d)",
        report.n_labels,
        "BA files found" if report.source == "files" else "BA table rows",
        report.n_files,
        report.n_matched,
        report.n_ba,
    )
    for what, names in (
        ("labels without vectors", report.labels_without_vectors),
        ("vectors without labels", report.vectors_without_labels),
    ):
        if names:
            log.warning("%s: %d (first: %s)", what, len(names), ", ".join(names[:N_EXAMPLES]))
        else:
            log.info("%s: 0", what)
    for col, lines in report.empty_labels.items():
        log.warning(
            "label column %s is empty on %d matched rows (first lines: %s); they are kept, and "
            "counted as 'empty label' and left out wherever %s is the label",
            col,
            len(lines),
            ", ".join(map(str, lines[:N_EXAMPLES])),
            col,
        )


def _csv_field(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    s = str(value)
    if any(ch in s for ch in ',"\n\r') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def write_table(table: FormattedTable, path: str | Path) -> None:
    """Write a formatted table as CSV (fast path for the 0/1 BA block), not atomically.

    Use :func:`write_tables` for atomic writes.
    """
    n, d = table.ba.shape
    header = ",".join(_csv_field(c) for c in list(table.meta.columns) + table.ba_names)
    meta_rows = table.meta.to_numpy(dtype=object)
    step = 4096
    # each row's BA block as bytes ",0,1,1,..." built vectorised, one chunk of rows at a time
    block = np.empty((min(n, step), 2 * d), dtype=np.uint8)
    block[:, 0::2] = ord(",")
    with open(path, "wb") as fh:
        fh.write(header.encode() + b"\n")
        for start in range(0, n, step):
            rows = min(step, n - start)
            np.add(
                table.ba[start : start + rows], ord("0"), out=block[:rows, 1::2], casting="unsafe"
            )
            chunk: list[bytes] = []
            for i in range(rows):
                chunk.append(",".join(_csv_field(v) for v in meta_rows[start + i]).encode())
                chunk.append(block[i].tobytes())
                chunk.append(b"\n")
            fh.write(b"".join(chunk))


def write_tables(tables: Mapping[str | Path, FormattedTable]) -> None:
    """Write several tables so that either all are replaced or none is.

    Each table is written to a temporary file beside its target; only when every one
    is complete are they moved into place (see :func:`smp_balr.core.outputs.transaction`).

    Raises
    ------
    UserError
        A table cannot be written (permission, disk full, ...), naming it; no table is replaced.
    """
    with transaction() as tx:
        for path, table in tables.items():
            write_table(table, tx.file(path))
