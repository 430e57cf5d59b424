"""Write BA vectors as one table (``data.ba_table``): from per-utterance BA files, or the demo
corpus.

Usage (from the project root)::

    python -m smp_balr.data.make_table files LABELS BA_DIR OUT   # balr's files -> one table
    python -m smp_balr.data.make_table demo OUT                  # the demo corpus of params.yaml

``OUT`` ends in ``.parquet`` (int8 BA columns) or ``.csv``. The table holds ``FileName``, the
label columns and ``BA0..BA<D-1>`` (``--ba-only``: no label columns), so that ``data.labels``
and ``data.ba_table`` can both name it; set ``data.ba_dir: ''`` then.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from smp_balr.core.errors import UserError

log = logging.getLogger("make_table")


def _check_out(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"table {path} must end in .parquet or .csv")
    return path


def _schema(meta_columns: list[str], n_ba: int):
    import pyarrow as pa

    return pa.schema(
        [(c, pa.string()) for c in meta_columns] + [(f"BA{j}", pa.int8()) for j in range(n_ba)]
    )


def _arrow_block(meta: pd.DataFrame, ba: np.ndarray, schema):
    import pyarrow as pa

    by_column = np.ascontiguousarray(ba.T)  # one contiguous int8 row per BA column
    arrays = [pa.array(meta[c].astype(str).tolist(), type=pa.string()) for c in meta.columns]
    arrays += [pa.array(by_column[j], type=pa.int8()) for j in range(ba.shape[1])]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_ba_table(meta: pd.DataFrame, ba: np.ndarray, path: str | Path) -> None:
    """Write ``FileName`` (+ label columns) and the int8 BA matrix as a CSV or Parquet table.

    The table is written atomically.

    Parameters
    ----------
    meta : pandas.DataFrame
        ``FileName`` first, then any label columns (written as strings), one row per BA row.
    ba : numpy.ndarray
        ``int8`` (rows, D) matrix of 0/1 values.
    path : str or Path
        ``.parquet`` or ``.csv``.
    """
    from smp_balr.core.outputs import atomic_path

    path = _check_out(path)
    ba = np.asarray(ba, dtype=np.int8)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            from smp_balr.data.formatting import FormattedTable, write_table

            write_table(FormattedTable(meta.reset_index(drop=True), ba), tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(_arrow_block(meta, ba, _schema(list(meta.columns), ba.shape[1])), tmp)


def table_from_files(
    labels: str | Path,
    ba_dir: str | Path,
    out: str | Path,
    with_labels: bool = True,
    invert: bool = False,
) -> int:
    """Read the BA files of the labels' rows (as ``format`` does, unsplit) and write one table.

    Returns
    -------
    int
        Rows written (the labels rows that have a BA file).
    """
    from smp_balr.data.formatting import format_corpus

    _check_out(out)  # before reading the files
    tables, _ = format_corpus(labels, ba_dir, split=False, invert=invert, progress=True)
    table = tables["all"]
    meta = table.meta if with_labels else table.meta[["FileName"]]
    write_ba_table(meta, table.ba, out)
    return len(table)


def write_demo_table(settings, out: str | Path, with_labels: bool = True) -> pd.DataFrame:
    """Write the demo corpus of ``settings`` (a ``DemoSettings``) as one table.

    The BAs are those of the demo stage's files, bit for bit. A Parquet table is written
    block by block of speakers (memory: the labels and one block); a CSV table is
    built in memory (1 byte per BA). Rows come speaker by speaker; ``format`` sorts them.

    Returns
    -------
    pandas.DataFrame
        The labels table of the corpus (sorted by FileName).
    """
    from smp_balr.core.outputs import atomic_path
    from smp_balr.data.demo import stream

    out = _check_out(out)
    labels, _, blocks = stream(settings)
    meta_all = labels if with_labels else labels[["FileName"]]
    if out.suffix.lower() == ".csv":
        ba = np.empty((len(labels), settings.n_ba), dtype=np.int8)
        for rows, block in blocks:
            ba[rows] = block
        write_ba_table(meta_all, ba, out)
        return labels
    import pyarrow.parquet as pq

    schema = _schema(list(meta_all.columns), settings.n_ba)
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for rows, block in blocks:
                writer.write_table(
                    _arrow_block(meta_all.iloc[rows].reset_index(drop=True), block, schema)
                )
    return labels


def main(argv: list[str] | None = None) -> None:
    """Command line: ``files LABELS BA_DIR OUT`` or ``demo OUT`` (see the module's doc)."""
    parser = argparse.ArgumentParser(
        prog="python -m smp_balr.data.make_table",
        description=" ".join(__doc__.split("\n\n")[0].split()),  # the first sentence
    )
    sub = parser.add_subparsers(dest="what", required=True)
    files = sub.add_parser(
        "files", help="per-utterance BA files (the rows of LABELS that have one) -> OUT"
    )
    files.add_argument("labels", type=Path)
    files.add_argument("ba_dir", type=Path)
    files.add_argument("out", type=Path)
    files.add_argument("--invert", action="store_true", help="old files where 0 means present")
    demo = sub.add_parser("demo", help="the demo corpus of params.yaml (demo block, seed) -> OUT")
    demo.add_argument("out", type=Path)
    for p in (files, demo):
        p.add_argument(
            "--ba-only", action="store_true", help="FileName and BA columns only (no label columns)"
        )
    args = parser.parse_args(argv)

    def body() -> None:
        if args.what == "files":
            n = table_from_files(
                args.labels, args.ba_dir, args.out, with_labels=not args.ba_only, invert=args.invert
            )
        else:
            from smp_balr.core.settings import load_settings

            n = len(write_demo_table(load_settings().demo, args.out, with_labels=not args.ba_only))
        log.info("wrote %s (%d rows)", args.out, n)

    from smp_balr.core.cli import run

    run(body, "make_table")


if __name__ == "__main__":
    main()
