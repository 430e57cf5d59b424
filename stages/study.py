"""Stage `study@<label>`: every configuration of the `study:` grid fitted and tested.

One configuration is chosen and explained.

Usage: python -m stages.study <label> (under DVC: from the stage name)
Writes metrics/study/<label>/ (results.csv, chosen.json, predictions.csv, confusion_matrix.png,
explain/) and models/study/<label>.joblib.
"""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run, stage_item
from smp_balr.core.parallel import parallel_backend
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import read_table, select_classes
from smp_balr.study.outputs import check_chosen, feature_lists, write_study
from smp_balr.study.run import explain_chosen, run_study

log = logging.getLogger("study")


def main() -> None:
    (label,) = stage_item(
        1, "usage: python -m stages.study <label>; e.g. `python -m stages.study EmoClass`"
    )
    s = load_settings()
    label = s.require_label(label)
    table, test_table = paths.train_table(s.data.name), paths.test_table(s.data.name)
    rows = select_classes(read_table(table), label, s.class_filter(label), where=table).rows
    test_df = read_table(test_table)
    with parallel_backend(s.parallel.backend, s.parallel.address):
        study = run_study(rows, test_df, label, feature_lists(label, s.study.features), s)
        check_chosen(label, study)
        explained = explain_chosen(study, test_df, label, s)  # the chosen configuration only
    write_study(label, study, explained)
    log.info("wrote %s and %s", paths.study_dir(label), paths.study_model(label))


if __name__ == "__main__":
    run(main, "study")
