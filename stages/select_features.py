"""Stage `select@<label>-<method>`: select BAs for one label with one method.

Usage: python stages/select_features.py <label> <method>   (method: all | slda | bayes)
Writes features/<label>_<method>_features.csv, metrics/selection/<label>_<method>_table.csv
(bayes: every BA x class; otherwise the feature table) and metrics/selection/<label>_<method>_info.json.
"""

from __future__ import annotations

import logging
import sys
import time

from smp_balr import paths
from smp_balr.cli import run
from smp_balr.errors import UserError
from smp_balr.outputs import write_csv, write_json
from smp_balr.params import as_int, check_keys, get, load_params
from smp_balr.selection import METHODS, run_selection
from smp_balr.selection.api import SELECTION_KEYS, method_settings
from smp_balr.tables import class_filter, filter_classes, read_table, require_label

log = logging.getLogger("select")


def main() -> None:
    if len(sys.argv) != 3:
        raise UserError("usage: python stages/select_features.py <label> <method>; e.g. `python stages/select_features.py EmoClass slda`")
    label, method = sys.argv[1], sys.argv[2]
    if method not in METHODS:
        raise UserError(f"unknown selection method '{method}'; use one of {', '.join(METHODS)} in selection.selectors")
    params = load_params()
    # parameters first: a misspelt or wrongly typed setting fails before the table is read
    settings = check_keys(get(params, "selection"), "selection", SELECTION_KEYS)
    method_settings(settings, method)
    seed = as_int(get(params, "seed"), "seed", 0)
    table_path = paths.train_table(str(get(params, "data.name")))
    df = read_table(table_path)
    require_label(df, label, table_path)
    df, dropped = filter_classes(df, label, class_filter(params, label), table_path)
    log.info("%s: %d training rows kept, %d dropped (class filter `classes.%s` or empty label)", label, len(df), dropped, label)
    start = time.perf_counter()
    out = run_selection(df, label, method, settings, seed)
    seconds = time.perf_counter() - start
    feats = out.features
    target = paths.features_file(label, method)
    if feats.empty:
        log.warning("no BA selected for '%s' by %s; writing an empty list to %s (training on it will fail)", label, method, target)
    write_csv(feats, target)
    write_csv(out.table if out.table is not None else feats, paths.selection_stats(label, method))
    info = {"label": label, "method": method, "unit": out.unit, "n_rows": len(df), "n_units": out.n_units, "n_dropped": dropped,
            "n_selected": len(feats)}  # no timings: the file must be identical for identical inputs
    write_json(info, paths.selection_info(label, method))
    log.info("%s %s: %d BAs selected in %.2f s -> %s", label, method, len(feats), seconds, target)


if __name__ == "__main__":
    run(main, "select")
