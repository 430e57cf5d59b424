"""Stage `associate@<label>`: per-BA association of one label (the marginal question).

Usage: python -m stages.associate <label>
Writes metrics/bas/<label>_association.csv (per BA and class: frequencies, difference with its
speaker-bootstrap interval, p, adjusted p, associated) and metrics/bas/<label>_association.json
(unit, error control, counts). See smp_balr/selection/association.py.
"""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run, stage_item
from smp_balr.core.outputs import transaction, write_csv, write_json
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import read_table, select_classes
from smp_balr.selection.association import associate_table

log = logging.getLogger("associate")


def main() -> None:
    (label,) = stage_item(
        1, "usage: python -m stages.associate <label>; e.g. `python -m stages.associate EmoClass`"
    )
    s = load_settings()
    table = paths.train_table(s.data.name)
    rows = select_classes(read_table(table), label, s.class_filter(label), table)
    a = s.association
    res = associate_table(
        rows.rows,
        label,
        unit=s.selection.unit,
        correction=a.correction,
        permutations=a.permutations,
        bootstrap=a.bootstrap,
        alpha=a.alpha,
        seed=s.seed,
    )
    info = {**res.info, "n_dropped": rows.n_filtered, "n_empty_label": rows.n_empty}
    with transaction():
        write_csv(res.table, paths.association_table(label))
        write_json(info, paths.association_info(label))
    log.info(
        "%s: %d BAs associated (%s at %g) -> %s",
        label,
        info["n_associated_bas"],
        a.correction,
        a.alpha,
        paths.association_table(label),
    )


if __name__ == "__main__":
    run(main, "associate")
