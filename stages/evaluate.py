"""Stage `test`: evaluate the trained model on the test table, against chance."""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import scorable_rows
from smp_balr.evaluation.outputs import write_test
from smp_balr.evaluation.scores import test_model, verdict
from smp_balr.model.artefacts import load_model

log = logging.getLogger("test")


def main() -> None:
    s = load_settings()
    model = load_model(paths.MODEL_FILE)
    meta = model.metadata_
    df, dropped, unseen = scorable_rows(
        paths.test_table(s.data.name),
        s.label,
        s.class_filter(s.label),
        meta["label"],
        model.classes_,
        model.feature_names_in_,
    )
    excluded = {
        "label": s.label,
        "n_excluded_unseen_class": sum(unseen.values()),
        "n_excluded_class_filter": int(dropped),
    }
    t = s.test
    res = test_model(
        model,
        df,
        s.label,
        t.n_permutations,
        t.n_bootstrap,
        s.seed,
        meta["train_speakers"],
        excluded,
    )
    log.info("%s", verdict(res.metrics, t.alpha))
    write_test(res, s.label, meta["model_method"], t.alpha)


if __name__ == "__main__":
    run(main, "test")
