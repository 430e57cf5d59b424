"""Stage `select@<label>-<method>`: select BAs for one label with one method.

Usage: python -m stages.select_features <label> <method> (under DVC: from the stage name),
where <method> is all, slda or bayes.
Writes features/<label>/<label>_<method>_features.csv, metrics/selection/<label>_<method>_table.csv
(bayes: every BA x class; otherwise the feature table) and
metrics/selection/<label>_<method>_info.json.
"""

from __future__ import annotations

import time

from smp_balr.core import paths
from smp_balr.core.cli import run, stage_item
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import read_table, select_classes
from smp_balr.selection.api import check_method, run_selection
from smp_balr.selection.outputs import write_selection


def main() -> None:
    label, method = stage_item(
        2,
        "usage: python -m stages.select_features <label> <method>; "
        "e.g. `python -m stages.select_features EmoClass slda`",
    )
    check_method(method)  # before any work: a wrong method is one line, nothing else
    s = load_settings()
    table = paths.train_table(s.data.name)
    rows = select_classes(read_table(table), label, s.class_filter(label), table)
    start = time.perf_counter()
    out = run_selection(rows.rows, label, method, s.selection, s.seed)
    write_selection(out, rows, label, method, time.perf_counter() - start)


if __name__ == "__main__":
    run(main, "select")
