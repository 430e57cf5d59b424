"""What a select stage writes: the selected BAs, their table and the run's summary."""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.outputs import write_csv, write_json
from smp_balr.data.tables import ClassSelection
from smp_balr.selection.api import SelectionOutput

log = logging.getLogger(__name__)


def write_selection(
    out: SelectionOutput, rows: ClassSelection, label: str, method: str, seconds: float
) -> None:
    """Write ``features/<label>/<label>_<method>_features.csv``, the method's table and info.

    The table is every BA x class for ``bayes``, else the feature table; the info file has no
    timing, so that identical inputs give identical bytes.
    """
    target = paths.features_file(label, method)
    if out.features.empty:
        log.warning(
            "no BA selected for '%s' by %s; writing an empty list to %s (training on it will fail)",
            label,
            method,
            target,
        )
    write_csv(out.features, target)
    table = out.table if out.table is not None else out.features
    write_csv(table, paths.selection_stats(label, method))
    info = {
        "label": label,
        "method": method,
        "unit": out.unit,
        "n_rows": len(rows.rows),
        "n_units": out.n_units,
        "n_dropped": rows.n_filtered,
        "n_empty_label": rows.n_empty,
        "n_selected": len(out.features),
    }
    write_json(info, paths.selection_info(label, method))
    log.info(
        "%s %s: %d BAs selected in %.2f s -> %s",
        label,
        method,
        len(out.features),
        seconds,
        target,
    )
