"""Stage `train`: fit the classifier (`model.method`) on the selected BAs of the training table."""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import atomic_dir, write_json
from smp_balr.core.parallel import parallel_backend
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import features_stage, read_features, read_table, select_classes
from smp_balr.model.artefacts import save_model
from smp_balr.model.training import train

log = logging.getLogger("train")


def main() -> None:
    s = load_settings()
    table = paths.train_table(s.data.name)
    rows = select_classes(read_table(table), s.label, s.class_filter(s.label), where=table)
    df = rows.rows
    method = s.features.method
    features = read_features(paths.features_file(s.label, method), features_stage(s.label, method))
    context = {
        "features_method": method,
        "classes_filter": s.class_filter(s.label),
        "data_name": s.data.name,
    }
    with parallel_backend(s.parallel.backend, s.parallel.address):  # the dt search's fits
        result = train(
            df, s.label, features, s.model, s.train, s.seed, where=str(table), context=context
        )
    save_model(result.model, paths.MODEL_FILE)
    write_json(result.metrics, paths.TRAIN_METRICS)
    write_json(result.details, paths.TRAIN_DETAILS)
    with atomic_dir(paths.TRAIN_CURVES) as out:
        for name, curve in result.curves.items():
            curve.to_csv(out / paths.train_curve(name).name, index=False)
    log.info("wrote %s, %s and %s", paths.MODEL_FILE, paths.TRAIN_METRICS, paths.TRAIN_CURVES)


if __name__ == "__main__":
    run(main, "train")
