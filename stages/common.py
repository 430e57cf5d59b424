"""Stage `common@<label>`: intersection of the label's selected-BA files.

Usage: python -m stages.common <label> (under DVC: from the stage name)
Writes features/<label>/<label>_common_features.csv and metrics/common/<label>_info.json.
Candidates are features/<label>/<label>_<method>_features.csv for the current `selection.selectors`;
`selection.common.include` / `exclude` (substrings of the file name) choose among them.
"""

from __future__ import annotations

from smp_balr.core import paths
from smp_balr.core.cli import run, stage_item
from smp_balr.core.outputs import write_csv, write_json
from smp_balr.core.settings import load_settings
from smp_balr.selection.common import label_common


def main() -> None:
    (label,) = stage_item(
        1, "usage: python -m stages.common <label>; e.g. `python -m stages.common EmoClass`"
    )
    sel = load_settings().selection
    table, files = label_common(
        paths.label_features(label), label, sel.selectors, sel.common.include, sel.common.exclude
    )
    write_csv(table, paths.features_file(label, "common"))
    write_json(
        {
            "label": label,
            "files": [p.name for p in files],
            "n_files": len(files),
            "n_selected": len(table),
        },
        paths.common_info(label),
    )


if __name__ == "__main__":
    run(main, "common")
