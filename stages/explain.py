"""Stage `explain`: SHAP values of the trained model's class outputs on sampled test rows."""

from __future__ import annotations

import logging

import pandas as pd

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import atomic_dir, write_csv, write_json
from smp_balr.core.parallel import parallel_backend
from smp_balr.core.settings import load_settings
from smp_balr.data.demo import planted_truth
from smp_balr.data.tables import scorable_rows
from smp_balr.explain import TOP_COLUMNS, check_plot_bas, explain_model, write_outputs
from smp_balr.model.artefacts import load_model

log = logging.getLogger("explain")


def main() -> None:
    s = load_settings()
    if not s.explain.enabled:
        with atomic_dir(paths.EXPLAIN_DIR):
            pass
        write_csv(pd.DataFrame(columns=TOP_COLUMNS), paths.EXPLAIN_TOP)
        write_json({"enabled": False}, paths.EXPLAIN_METRICS)
        write_json({"enabled": False}, paths.EXPLAIN_DETAILS)
        log.info("explain.enabled is false: wrote empty outputs")
        return
    model = load_model(paths.MODEL_FILE)
    check_plot_bas(s.explain.ba, model.feature_names_in_)
    label = model.metadata_["label"]
    df, _, _ = scorable_rows(
        paths.test_table(s.data.name),
        s.label,
        s.class_filter(label),
        label,
        model.classes_,
        model.feature_names_in_,
    )
    truth = (planted_truth(s.data.labels, s.data.ba_dir) or {}).get(label)  # demo corpus only
    with parallel_backend(s.parallel.backend, s.parallel.address):  # the mlp's SHAP chunks
        report = explain_model(model, df, label, s.explain, s.seed, truth)
    with atomic_dir(paths.EXPLAIN_DIR) as out:
        write_outputs(out, report, label, s.seed)
    write_csv(report.top, paths.EXPLAIN_TOP)
    write_json(report.headline, paths.EXPLAIN_METRICS)
    write_json(report.metrics, paths.EXPLAIN_DETAILS)


if __name__ == "__main__":
    run(main, "explain")
