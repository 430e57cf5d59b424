"""Stage `select@<label>-<method>`: select BAs for one label with one method.

Usage: python -m stages.select_features <label> <method> (under DVC: from the stage name),
where <method> is all, slda or bayes.
Writes features/<label>_<method>_features.csv, metrics/selection/<label>_<method>_table.csv
(bayes: every BA x class; otherwise the feature table) and
metrics/selection/<label>_<method>_info.json.
"""

from __future__ import annotations

import logging
import time

from smp_balr.core import paths
from smp_balr.core.cli import run, stage_item
from smp_balr.core.errors import UserError
from smp_balr.core.options import SELECTORS
from smp_balr.core.outputs import write_csv, write_json
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import read_table, select_classes
from smp_balr.selection import run_selection

log = logging.getLogger("select")


def main() -> None:
    label, method = stage_item(
        2,
        "usage: python -m stages.select_features <label> <method>; "
        "e.g. `python -m stages.select_features EmoClass slda`",
    )
    if method not in SELECTORS:
        raise UserError(
            f"unknown selection method '{method}'; use one of {', '.join(SELECTORS)} "
            "in selection.selectors"
        )
    s = load_settings()
    table = paths.train_table(s.data.name)
    rows = select_classes(read_table(table), label, s.class_filter(label), table)
    df = rows.rows
    start = time.perf_counter()
    out = run_selection(df, label, method, s.selection, s.seed)
    target = paths.features_file(label, method)
    if out.features.empty:
        log.warning(
            "no BA selected for '%s' by %s; writing an empty list to %s (training on it will fail)",
            label,
            method,
            target,
        )
    write_csv(out.features, target)
    write_csv(
        out.table if out.table is not None else out.features, paths.selection_stats(label, method)
    )
    info = {
        "label": label,
        "method": method,
        "unit": out.unit,
        "n_rows": len(df),
        "n_units": out.n_units,
        "n_dropped": rows.n_filtered,
        "n_empty_label": rows.n_empty,
        "n_selected": len(out.features),
    }  # no timings: the file must be identical for identical inputs
    write_json(info, paths.selection_info(label, method))
    log.info(
        "%s %s: %d BAs selected in %.2f s -> %s",
        label,
        method,
        len(out.features),
        time.perf_counter() - start,
        target,
    )


if __name__ == "__main__":
    run(main, "select")
