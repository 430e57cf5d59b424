"""Stage `common@<label>`: intersection of the label's selected-BA files.

Usage: python stages/common.py <label>
Writes features/<label>_common_features.csv and metrics/common/<label>_info.json.
Candidates are features/<label>_<method>_features.csv for the current `selection.selectors`;
`selection.common.include` / `exclude` (substrings of the file name) choose among them.
"""

from __future__ import annotations

import sys

from smp_balr import paths
from smp_balr.cli import run
from smp_balr.errors import UserError
from smp_balr.outputs import write_csv, write_json
from smp_balr.selection.common import label_common
from smp_balr.settings import check_name, load_settings


def main() -> None:
    if len(sys.argv) != 2:
        raise UserError("usage: python stages/common.py <label>; e.g. `python stages/common.py EmoClass`")
    label = check_name(sys.argv[1], "argument", "rename the label in params.yaml")
    sel = load_settings().selection
    table, files = label_common(paths.label_features(label), label, sel.selectors, sel.common.include, sel.common.exclude)
    write_csv(table, paths.features_file(label, "common"))
    write_json({"label": label, "files": [p.name for p in files], "n_files": len(files), "n_selected": len(table)},
               paths.common_info(label))


if __name__ == "__main__":
    run(main, "common")
