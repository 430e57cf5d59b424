"""Stage `train`: fit the `mlp` or `dt` model on the selected BAs of the training table."""

from __future__ import annotations

import logging

import numpy as np

from smp_balr import paths
from smp_balr.cli import run
from smp_balr.errors import UserError
from smp_balr.modeling import (
    check_classes,
    features_stage,
    fit_model,
    fold_requirement,
    encode_labels,
    library_versions,
    model_settings,
    require_columns,
    save_model,
)
from smp_balr.outputs import write_json
from smp_balr.params import as_choice, as_int, get, load_params
from smp_balr.sampling import COPY_COLUMN, filter_speakers, oversample
from smp_balr.tables import ba_matrix, class_filter, filter_classes, read_features, read_table

log = logging.getLogger("train")

FEATURE_METHODS = ("all", "slda", "bayes", "common")


def _counts(values) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def main() -> None:
    params = load_params()
    label = str(get(params, "label"))
    seed = as_int(get(params, "seed"), "seed")
    method = as_choice(get(params, "features.method"), "features.method", FEATURE_METHODS)
    model_method = as_choice(get(params, "model.method"), "model.method", ("mlp", "dt"))
    balance = as_choice(get(params, "train.balance"), "train.balance", (0, 1, 2))
    speakers = as_choice(get(params, "train.speakers"), "train.speakers", (0, 1))

    table = paths.train_table(str(get(params, "data.name")))
    df = read_table(table)
    df, dropped = filter_classes(df, label, class_filter(params, label), where=table)
    features = read_features(paths.features_file(label, method), features_stage(label, method))
    log.info("%s: %d rows of label '%s' kept, %d dropped by the class filter", table, len(df), label, dropped)
    if df[label].nunique() < 2:
        raise UserError(
            f"fewer than 2 classes of '{label}' left in {table} after the class filter; "
            f"check `classes.{label}` in params.yaml"
        )
    require_columns(df.columns, features, table, "rerun `dvc repro format` and the selection stages on the same data")

    if speakers:
        df, info = filter_speakers(df, label)
        log.info(
            "speakers filter: kept %d/%d speakers (%.1f%%), %d/%d rows (%.1f%%)",
            info.speakers_kept, info.speakers_before, info.speakers_percent,
            info.rows_kept, info.rows_before, info.rows_percent,
        )
        if info.speakers_kept == 0:
            raise UserError(
                f"no speaker of {table} has rows of every class of '{label}' (speaker-level label?); "
                "set train.speakers: 0"
            )
    counts_before = _counts(df[label])
    settings = model_settings(get(params, "model"), model_method)
    # checked before oversampling, which would hide a class too small for the folds
    check_classes(df[label].astype(str).to_numpy(), df["Speaker"].to_numpy(), *fold_requirement(model_method, settings))
    n_speakers = int(df["Speaker"].nunique())
    is_copy = None
    if balance == 1:
        df = oversample(df, label, seed)
        is_copy = df.pop(COPY_COLUMN).to_numpy()
        log.info("oversampled %d extra rows", int(is_copy.sum()))
    counts_final = _counts(df[label])

    X = ba_matrix(df, features)
    encoder, y = encode_labels(df[label].astype(str))
    groups = df["Speaker"].astype(str).to_numpy()
    model_params = get(params, "model")
    log.info("fitting %s on %d rows x %d BAs, %d speakers (balance=%d)", model_method, *X.shape, n_speakers, balance)
    model, info = fit_model(model_method, X, y, groups, model_params, balance, seed, is_copy)

    classes = [str(c) for c in encoder.classes_]
    if "fitted_class_counts" in info:  # mlp early stopping: what the held-in speakers contributed
        counts_final = {classes[c]: n for c, n in sorted(info.pop("fitted_class_counts").items())}
    log.info("class counts of the rows fitted: %s", counts_final)
    meta = {
        "model_method": model_method,
        "features_method": method,
        "params": {"model": settings, "train": get(params, "train"), "seed": seed,
                   "classes_filter": class_filter(params, label), "data_name": str(get(params, "data.name"))},
        "versions": library_versions(),
        "train_class_counts": counts_before,
        "train_class_counts_final": counts_final,
        "train_speakers": sorted(set(groups)),
        "n_rows": int(np.sum(~is_copy)) if is_copy is not None else len(df),
        "fit": info,
    }
    artefact = {"model": model, "encoder": encoder, "features": list(features), "label": label,
                "classes": classes, "meta": meta}
    save_model(artefact, paths.MODEL_FILE)

    metrics = {
        "model": model_method,
        "n_rows": meta["n_rows"],
        "n_rows_fitted": sum(counts_final.values()),  # early-stopped mlp: the held-in speakers' rows
        "n_speakers": n_speakers,
        "n_features": len(features),
        "class_counts": counts_before,
        "class_counts_final": counts_final,
    }
    if model_method == "dt":
        metrics.update({k: info[k] for k in ("cv_score", "cv_score_std", "n_folds")})
        metrics["best_params"] = info["best_params"]
        log.info("dt: speaker-grouped CV balanced accuracy %.3f +- %.3f, best %s",
                 info["cv_score"], info["cv_score_std"], info["best_params"])
    else:
        keys = ("validation_score", "epochs", "best_epoch", "n_valid_speakers")
        metrics.update({k: info[k] for k in keys if k in info})
        if "validation_score" in info:
            log.info("mlp: held-out-speaker balanced accuracy %.3f at epoch %d/%d",
                     info["validation_score"], info["best_epoch"], info["epochs"])
    write_json(metrics, paths.TRAIN_METRICS)
    log.info("wrote %s and %s", paths.MODEL_FILE, paths.TRAIN_METRICS)


if __name__ == "__main__":
    run(main, "train")
