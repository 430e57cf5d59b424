"""Stage `format` (Step 1): labels CSV + BALR BA files -> data/<name>_{train,test}_data.csv."""

from __future__ import annotations

import logging
import os

from smp_balr import paths
from smp_balr.cli import run
from smp_balr.errors import UserError
from smp_balr.formatting import format_corpus, write_tables
from smp_balr.params import get, load_params

log = logging.getLogger("format")


def main() -> None:
    params = load_params()
    name = str(get(params, "data.name"))
    split = _flag(params, "data.split")
    invert = _flag(params, "data.invert", 0)
    if split == 0 and os.environ.get("DVC_STAGE"):
        # dvc.yaml declares the train/test tables: a single table cannot satisfy them.
        raise UserError(
            f"data.split is 0, but the pipeline needs the Train/Test tables of data.split: 1; set data.split: 1 "
            f"for `dvc repro`, or run `python stages/format.py` directly to write {paths.full_table(name)}"
        )
    tables, _ = format_corpus(get(params, "data.labels"), get(params, "data.ba_dir"), split=bool(split), invert=bool(invert))
    if split:
        targets = {paths.train_table(name): tables["train"], paths.test_table(name): tables["test"]}
    else:
        targets = {paths.full_table(name): tables["all"]}
    write_tables(targets)
    for path, table in targets.items():
        log.info("wrote %s (%d rows x %d BAs)", path, len(table), table.ba.shape[1])
    if not split:
        log.info("data.split is 0: one table only; the select/train/test stages read the split tables (data.split: 1)")


def _flag(params: dict, key: str, default: object = ...) -> int:
    value = get(params, key, default)
    if value not in (0, 1) or isinstance(value, str):
        raise UserError(f"params.yaml: {key} must be 0 or 1, got {value!r}")
    return int(value)


if __name__ == "__main__":
    run(main, "format")
