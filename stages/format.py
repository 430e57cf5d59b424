"""Stage `format` (Step 1): labels CSV + BALR BA files (or one BA table) -> Train/Test tables.

The tables are data/<name>_{train,test}_data.csv.
"""

from __future__ import annotations

import logging
import os

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.errors import UserError
from smp_balr.core.settings import load_settings
from smp_balr.data.formatting import format_corpus, write_tables

log = logging.getLogger("format")


def main() -> None:
    data = load_settings().data
    if not data.split and os.environ.get("DVC_STAGE"):
        # dvc.yaml declares the train/test tables: a single table cannot satisfy them.
        raise UserError(
            "data.split is 0, but the pipeline needs the Train/Test tables of data.split: 1; "
            "set data.split: 1 for `dvc repro`, or run `python -m stages.format` directly "
            f"to write {paths.full_table(data.name)}"
        )
    tables, _ = format_corpus(
        data.labels,
        data.ba_dir,
        split=bool(data.split),
        invert=bool(data.invert),
        ba_table=data.ba_table,
    )
    if data.split:
        targets = {
            paths.train_table(data.name): tables["train"],
            paths.test_table(data.name): tables["test"],
        }
    else:
        targets = {paths.full_table(data.name): tables["all"]}
    write_tables(targets)
    for path, table in targets.items():
        log.info("wrote %s (%d rows x %d BAs)", path, len(table), table.ba.shape[1])
    if not data.split:
        log.info(
            "data.split is 0: one table only; the select/train/test stages read the split tables "
            "(data.split: 1)"
        )


if __name__ == "__main__":
    run(main, "format")
