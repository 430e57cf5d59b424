"""BA vectors brought as one table (``data.ba_table``): a CSV or Parquet file, a row per audio file.

Columns
-------
``FileName``
    The audio file of the row, matched to the labels' ``FileName`` by the same rules as a
    BA file's name (:func:`smp_balr.data.bafiles.match_files`): ``spk1/utt3.wav`` in the labels
    matches a row ``utt3.wav``, ``utt3.flac``, ``utt3`` or ``spk1/utt3.wav``; when several rows
    share the name without extension, the one whose folders agree best is taken.
``BA0`` .. ``BA<D-1>``
    One column per attribute, named ``BA`` + its index without leading zeros, every index
    from 0 to D-1 present once (in any order). Values 0/1: integers, booleans or floats
    ``0.0``/``1.0`` (as the formatted tables of the original toolkit hold them).
any other column
    Ignored, unless ``data.labels`` names this same file: then they are the label columns
    (``Speaker``, ``Group``, ...), checked as a labels CSV is.

Every row is checked, matched or not: a value other than 0/1, an empty cell or a text names
its first row and column in one line. BA values are held as ``int8`` throughout (one column
at a time is converted; no float copy of the table).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from smp_balr.core.errors import UserError
from smp_balr.core.memory import require_memory
from smp_balr.data.bafiles import BAIndex, _name_parts

TABLE_EXTENSIONS = (".csv", ".parquet")
BA_COLUMN = re.compile(r"^BA(\d+)$")
_COLUMNS_PER_READ = 64  # Parquet BA columns read (and converted to int8) at a time
_CSV_BLOCK_BYTES = 1 << 24  # CSV read block: a CSV of non-integers is converted block by block


@dataclass
class BATable:
    """A BA table read and checked.

    Attributes
    ----------
    path : Path
        The file.
    file_names : list of str
        ``FileName`` of each row, in file order (stripped).
    ba : numpy.ndarray
        ``int8`` matrix (rows, D) of 0/1 values, ``data.invert`` applied.
    labels : pandas.DataFrame or None
        ``FileName`` and the other non-BA columns as strings (empty cells ``""``), when asked for.
    index : BAIndex
        The rows as the BA "files" :func:`smp_balr.data.bafiles.match_files` matches: one path
        ``<table>/<FileName's folders>/<FileName's base name>`` per row, keyed by its stem.
    """

    path: Path
    file_names: list[str]
    ba: np.ndarray
    labels: pd.DataFrame | None
    index: BAIndex

    @property
    def n_ba(self) -> int:
        return int(self.ba.shape[1])

    row_of: dict[PurePosixPath, int] = field(default_factory=dict, repr=False)  # index path -> row

    def take(self, paths: Sequence[PurePosixPath]) -> np.ndarray:
        """BA matrix of the given index paths (as ``MatchResult.files`` lists them), in order."""
        pick = np.fromiter((self.row_of[p] for p in paths), dtype=np.int64, count=len(paths))
        if pick.size == len(self.ba) and np.array_equal(pick, np.arange(pick.size)):
            return self.ba  # every row, in file order: no copy
        return self.ba[pick]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (``data.labels`` pointing at the BA table)."""
    a, b = Path(a), Path(b)
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def _where(path: Path, row: int, name: str | None) -> str:
    place = f"line {row + 2}" if path.suffix.lower() == ".csv" else f"row {row + 1}"
    return place + (f" (FileName '{name}')" if name else "")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
def read_ba_table(
    path: str | Path,
    invert: bool = False,
    with_labels: bool = False,
    memory_available: int | None = None,
) -> BATable:
    """Read and check a BA table.

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.parquet`` file (``data.ba_table``).
    invert : bool
        Flip 0 and 1 (old vectors where 0 means present), after the values are checked.
    with_labels : bool
        Also return the non-BA columns as strings (``data.labels`` is this file).
    memory_available : int, optional
        Bytes the read may use (default: what the system has free).

    Returns
    -------
    BATable

    Raises
    ------
    UserError
        Missing or unreadable file, wrong extension, no ``FileName`` column, duplicate column
        names, no BA column or a gap in ``BA0..BA<D-1>``, a misnamed BA column, an empty or
        duplicated ``FileName``, or a BA cell that is not 0/1 (naming its row and column).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"BA table {path} (data.ba_table) not found; set data.ba_table to your .csv or "
            ".parquet table"
        )
    ext = path.suffix.lower()
    if ext not in TABLE_EXTENSIONS:
        raise UserError(
            f"BA table {path} (data.ba_table) must be a .csv or .parquet file, not "
            f"'{ext or 'no extension'}'"
        )
    reader = _read_parquet if ext == ".parquet" else _read_csv
    names, ba, others = reader(path, with_labels, memory_available)
    if invert:
        np.subtract(1, ba, out=ba)
    labels = None
    if with_labels:
        labels = pd.DataFrame({"FileName": names, **others})
    table = BATable(
        path=path,
        file_names=names,
        ba=ba,
        labels=labels,
        index=BAIndex(root=PurePosixPath(str(path))),
    )
    _build_index(table)
    return table


def _layout(names: list[str], path: Path) -> tuple[list[str], list[str]]:
    """BA column names in index order (``BA0`` first) and the other columns, FileName aside."""
    seen: set[str] = set()
    dup = sorted({n for n in names if n in seen or seen.add(n)})
    if dup:
        raise UserError(f"BA table {path} has duplicate column(s) {', '.join(dup)}; rename them")
    if "FileName" not in names:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise UserError(
            f"BA table {path} has no FileName column (it has: {shown}); add the audio file name "
            "of each row as FileName"
        )
    by_index: dict[int, str] = {}
    for name in names:
        m = BA_COLUMN.match(name)
        if not m:
            continue
        j = int(m.group(1))
        if name != f"BA{j}":
            raise UserError(
                f"BA table {path}: column {name} should be named BA{j} (BA0..BA<D-1>, no leading "
                "zeros); rename it"
            )
        by_index[j] = name
    if not by_index:
        raise UserError(
            f"BA table {path} has no BA columns; name them BA0, BA1, ..., BA<D-1> (one per "
            "attribute, values 0/1)"
        )
    d = max(by_index) + 1
    gaps = [j for j in range(d) if j not in by_index]
    if gaps:
        listed = ", ".join(f"BA{j}" for j in gaps[:5]) + (", ..." if len(gaps) > 5 else "")
        raise UserError(
            f"BA table {path} lacks column(s) {listed} ({len(gaps)} of BA0..BA{d - 1}); every BA "
            f"column from BA0 to the last must be there — add the missing one(s) or drop the "
            "columns after them"
        )
    ba_cols = [by_index[j] for j in range(d)]
    others = [n for n in names if n != "FileName" and n not in set(ba_cols)]
    return ba_cols, others


def _check_memory(path: Path, n_rows: int, d: int, available: int | None) -> None:
    # the table, the matched rows and their Train/Test copies, all int8
    require_memory(
        3 * n_rows * d,
        f"reading BA table {path} ({n_rows:,} rows x {d} BAs)",
        "format the corpus in parts (tables of fewer rows) or run on a machine with more free "
        "memory",
        available=available,
    )


def _read_parquet(
    path: Path, with_labels: bool, available: int | None
) -> tuple[list[str], np.ndarray, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def fail(err: BaseException) -> UserError:
        return UserError(
            f"BA table {path} is not a readable Parquet file ({_one_line(err)}); write it again "
            "(e.g. pandas DataFrame.to_parquet) or give the table as .csv"
        )

    try:
        pf = pq.ParquetFile(path)
        names = [str(n) for n in pf.schema_arrow.names]
    except (pa.ArrowException, OSError, ValueError) as err:
        raise fail(err) from None
    ba_cols, other_cols = _layout(names, path)
    n_rows, d = int(pf.metadata.num_rows), len(ba_cols)
    _check_memory(path, n_rows, d, available)
    try:
        file_col = pf.read(columns=["FileName"]).column(0)
        names_out = _file_names(file_col, path)
        others = (
            {c: _text_series(pf.read(columns=[c]).column(0)) for c in other_cols}
            if with_labels
            else {}
        )
        ba = np.empty((n_rows, d), dtype=np.int8)
        first_bad: tuple | None = None
        for j0 in range(0, d, _COLUMNS_PER_READ):
            cols = ba_cols[j0 : j0 + _COLUMNS_PER_READ]
            part = pf.read(columns=cols)
            block = np.empty((n_rows, len(cols)), dtype=np.int8)
            for k in range(len(cols)):
                values, bad = _binary(part.column(k))
                block[:, k] = values
                if bad is not None and (first_bad is None or (bad[0], j0 + k) < first_bad[:2]):
                    first_bad = (bad[0], j0 + k, *bad[1:])
            ba[:, j0 : j0 + len(cols)] = block
            del part, block
    except (pa.ArrowException, OSError) as err:
        raise fail(err) from None
    if first_bad is not None:
        raise _bad_value(path, first_bad[0], names_out[first_bad[0]], *first_bad[1:])
    return names_out, ba, others


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(
            f"BA table {path} is not a readable CSV ({_one_line(err)}); save it as UTF-8 CSV with "
            "a header row"
        ) from None
    if not header:
        raise UserError(
            f"BA table {path} is empty; write a header row (FileName, BA0, BA1, ...) and one row "
            "per audio file"
        )
    return [h.strip() for h in header]


def _csv_rows_estimate(path: Path) -> int:
    """Rows of a CSV estimated from its size and its first data line (for the memory check only)."""
    with open(path, "rb") as fh:
        header, first = fh.readline(), fh.readline()
    return max(1, round(1.1 * (path.stat().st_size - len(header)) / max(1, len(first))))


def _read_csv(
    path: Path, with_labels: bool, available: int | None
) -> tuple[list[str], np.ndarray, dict]:
    """FileName, BA matrix and (when asked for) label columns of a CSV table, every cell checked."""
    import pyarrow as pa

    header = _csv_header(path)
    ba_cols, other_cols = _layout(header, path)
    _check_memory(path, _csv_rows_estimate(path), len(ba_cols), available)
    keep = ["FileName"] + (other_cols if with_labels else []) + ba_cols
    parts: list[np.ndarray] = []
    name_chunks: list[Any] = []
    other_chunks: dict[str, list[Any]] = {c: [] for c in other_cols if with_labels}
    start = 0
    try:
        # in file order: the first block with a bad cell holds the first bad row
        for b in _csv_blocks(path, header, keep, ba_cols):
            parts.append(_csv_block_ba(b, ba_cols, path, start))
            name_chunks += b.column("FileName").chunks
            for c in other_chunks:
                other_chunks[c] += b.column(c).chunks
            start += b.num_rows
    except (pa.ArrowException, OSError) as err:
        raise UserError(
            f"BA table {path} is not a readable CSV ({_one_line(err)}); every row needs one value "
            "per header column"
        ) from None
    if start == 0:
        raise UserError(f"BA table {path} has a header but no rows; add one row per audio file")
    names_out = _file_names(pa.chunked_array(name_chunks, type=pa.string()), path)
    ba = parts[0] if len(parts) == 1 else np.concatenate(parts)
    others = {
        c: _text_series(pa.chunked_array(ch, type=pa.string())) for c, ch in other_chunks.items()
    }
    return names_out, ba, others


def _csv_blocks(
    path: Path, header: list[str], keep: list[str], ba_cols: list[str]
) -> Iterator[Any]:
    """The CSV's ``keep`` columns as Arrow tables in file order (BA columns as int8, or as text)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(
        column_names=header, skip_rows=1, encoding="utf8", block_size=_CSV_BLOCK_BYTES
    )
    parse = pacsv.ParseOptions()

    def convert(ba_type: Any) -> Any:
        types = {c: pa.string() for c in keep}
        types.update({c: ba_type for c in ba_cols})
        return pacsv.ConvertOptions(
            column_types=types,
            include_columns=keep,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    try:  # the common table: integers 0/1, read straight into int8 columns (one block)
        yield pacsv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert(pa.int8())
        )
        return
    except pa.ArrowInvalid:  # floats, text or values out of int8 range: as text, block by block
        pass
    for batch in pacsv.open_csv(
        path, read_options=read, parse_options=parse, convert_options=convert(pa.string())
    ):
        yield pa.Table.from_batches([batch])


def _csv_block_ba(b: Any, ba_cols: list[str], path: Path, start: int) -> np.ndarray:
    """The int8 BA matrix of a block of CSV rows (from row ``start``); its first bad cell fails."""
    block = np.empty((b.num_rows, len(ba_cols)), dtype=np.int8)
    first_bad = None
    for j, name in enumerate(ba_cols):
        values, bad = _binary(b.column(name))
        block[:, j] = values
        if bad is not None and (first_bad is None or bad[0] < first_bad[0]):
            first_bad = (bad[0], j, *bad[1:])
    if first_bad is not None:
        row = first_bad[0]
        raise _bad_value(
            path, start + row, _as_text(b.column("FileName"))[row].strip(), *first_bad[1:]
        )
    return block


def _as_text(col: Any) -> list[str]:
    """An Arrow column as Python strings, empty cells as ``""``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, "").to_pylist()


def _text_series(col: Any) -> pd.Series:
    """A label column as a pandas Series of strings, empty cells as ``""`` (no Python list)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, "").to_pandas()


def _file_names(col: Any, path: Path) -> list[str]:
    """Check the FileName column: no empty cell, no name twice; return the names stripped."""
    names = [s.strip() for s in _as_text(col)]
    if not names:
        raise UserError(f"BA table {path} has a header but no rows; add one row per audio file")
    empty = [i for i, s in enumerate(names) if not s]
    if empty:
        raise UserError(
            f"BA table {path}: FileName is empty on {_where(path, empty[0], None)} "
            f"({len(empty)} rows); fill it or drop the rows"
        )
    first: dict[str, int] = {}
    for i, s in enumerate(names):
        j = first.setdefault(s, i)
        if j != i:
            n_dup = len(names) - len(set(names))
            raise UserError(
                f"BA table {path}: FileName '{s}' appears more than once "
                f"({_where(path, j, None)} and {_where(path, i, None)}; {n_dup} duplicates in "
                "all); keep one row per audio file"
            )
    return names


def _binary(col: Any) -> tuple[np.ndarray, tuple | None]:
    """One BA column as int8 0/1, and its first bad cell ``(row, kind, value)`` or None.

    ``kind``: ``"empty"`` (null, NaN or empty text), ``"text"`` (not a number), ``"value"``
    (a number other than 0 and 1), ``"type"`` (a column of another kind, e.g. dates).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    typ = col.type
    n = len(col)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        text = np.asarray(pc.fill_null(col, "").to_numpy(zero_copy_only=False), dtype=object)
        num = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64
        )
        blank = np.flatnonzero(np.isnan(num))
        if blank.size:
            r = int(blank[0])
            kind = "empty" if str(text[r]).strip() == "" else "text"
            return np.zeros(n, dtype=np.int8), (r, kind, text[r])
        return _numeric(num)
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)):
        return np.zeros(n, dtype=np.int8), (0, "type", str(typ))
    if col.null_count:
        r = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
        return np.zeros(n, dtype=np.int8), (r, "empty", None)
    arr = col.to_numpy()
    if arr.dtype == np.bool_:
        return arr.view(np.int8) if arr.flags.c_contiguous else arr.astype(np.int8), None
    if arr.dtype.kind == "f":
        nan = np.flatnonzero(np.isnan(arr))
        if nan.size:
            return np.zeros(n, dtype=np.int8), (int(nan[0]), "empty", None)
    return _numeric(arr)


def _numeric(arr: np.ndarray) -> tuple[np.ndarray, tuple | None]:
    ok = (arr == 0) | (arr == 1)
    if not ok.all():
        r = int(np.flatnonzero(~ok)[0])
        return np.zeros(len(arr), dtype=np.int8), (r, "value", arr[r])
    return arr.astype(np.int8, copy=False), None


def _bad_value(path: Path, row: int, file_name: str, j: int, kind: str, value: object) -> UserError:
    where = _where(path, row, file_name or None)
    if kind == "type":
        return UserError(
            f"BA table {path}: column BA{j} holds {value} values; BA columns must hold the "
            "numbers 0 and 1"
        )
    if kind == "empty":
        return UserError(
            f"BA table {path}: column BA{j} is empty on {where}; every BA cell must hold 0 or 1 — "
            "fill it or remove the row"
        )
    if kind == "text":
        return UserError(
            f"BA table {path}: column BA{j} holds {str(value)!r}, not a number, on {where}; BA "
            "values must be 0 or 1"
        )
    return UserError(
        f"BA table {path}: column BA{j} holds {float(value):g} on {where}; BA values must be 0 "
        "or 1 — binarise the vectors (balr writes 0/1) or remove the row"
    )


# ---------------------------------------------------------------------------------------
# the rows as the "files" of the matching
# ---------------------------------------------------------------------------------------
def _build_index(table: BATable) -> None:
    """Give each row the path a BA file of that FileName would have, for match_files to apply."""
    root = table.index.root
    by_stem: dict[str, list[PurePosixPath]] = {}
    row_of: dict[PurePosixPath, int] = {}
    for i, name in enumerate(table.file_names):
        folders, base, stem = _name_parts(name)
        p = root.joinpath(*folders, base)
        if p in row_of:  # e.g. "spk1\\a.wav" and "spk1/a.wav": two rows for one audio file
            j = row_of[p]
            raise UserError(
                f"BA table {table.path}: FileNames '{table.file_names[j]}' "
                f"({_where(table.path, j, None)}) and '{name}' ({_where(table.path, i, None)}) "
                "name the same audio file; keep one row per audio file"
            )
        row_of[p] = i
        by_stem.setdefault(stem, []).append(p)
    for paths in by_stem.values():
        paths.sort()
    table.index.by_stem = by_stem  # type: ignore[assignment]
    table.row_of = row_of
