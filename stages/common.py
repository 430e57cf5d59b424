"""Stage `common@<i>`: intersection of selected-BA files for one `selection.common` entry.

Usage: python stages/common.py <output>
Writes features/<output>_features.csv and metrics/common/<output>_info.json.
Only the feature files of the current `labels` x `selection.selectors` are candidates.
"""

from __future__ import annotations

import logging
import sys

from smp_balr import paths
from smp_balr.cli import run
from smp_balr.errors import UserError
from smp_balr.outputs import write_csv, write_json
from smp_balr.params import get, load_params
from smp_balr.selection.common import common_features

log = logging.getLogger("common")


def main() -> None:
    if len(sys.argv) != 2:
        raise UserError("usage: python stages/common.py <output>; <output> is an `output` of selection.common")
    output = sys.argv[1]
    params = load_params()
    entries = get(params, "selection.common") or []
    entry = next((e for e in entries if isinstance(e, dict) and str(e.get("output")) == output), None)
    if entry is None:
        raise UserError(f"selection.common has no entry with output '{output}'; add one to params.yaml")
    include = [str(s) for s in entry.get("include") or []]
    exclude = [str(s) for s in entry.get("exclude") or []]
    candidates = {paths.features_file(lab, m).name for lab in get(params, "labels") for m in get(params, "selection.selectors")}
    table, files = common_features(paths.FEATURES, output, include, exclude, candidates)
    write_csv(table, paths.common_file(output))
    write_json({"output": output, "files": [p.name for p in files], "n_selected": len(table)}, paths.COMMON_DIR / f"{output}_info.json")


if __name__ == "__main__":
    run(main, "common")
