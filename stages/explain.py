"""Stage `explain`: SHAP values of the trained model's class probabilities on sampled test rows."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from smp_balr import explain as ex
from smp_balr import paths
from smp_balr.errors import UserError
from smp_balr.cli import run
from smp_balr.demo import planted_truth
from smp_balr.modeling import load_model, scorable_rows
from smp_balr.outputs import write_csv, write_json
from smp_balr.params import get, load_params
from smp_balr.tables import ba_matrix, class_filter

log = logging.getLogger("explain")

TOP_COLUMNS = ["BA", "importance", "share"]


def _int_param(params: dict, key: str) -> int:
    value = get(params, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise UserError(f"{key} is '{value}'; set it to a whole number in params.yaml")
    return int(value)


def _config(params: dict) -> dict[str, Any]:
    """Read and validate the explain parameters before any work."""
    cfg = {
        "n_samples": _int_param(params, "explain.n_samples"),
        "background": get(params, "explain.background"),
        "background_size": _int_param(params, "explain.background_size"),
        "mlp_explainer": get(params, "explain.mlp_explainer"),
        "permutations": _int_param(params, "explain.permutations"),
        "kernel_nsamples": _int_param(params, "explain.kernel_nsamples"),
        "ba": get(params, "explain.ba", []) or [],
    }
    if cfg["n_samples"] < 1:
        raise UserError(f"explain.n_samples is {cfg['n_samples']}; set it to a positive number of test rows in params.yaml")
    if cfg["mlp_explainer"] not in ex.MLP_EXPLAINERS:
        raise UserError(
            f"explain.mlp_explainer is '{cfg['mlp_explainer']}', not a known explainer; "
            f"use one of {', '.join(ex.MLP_EXPLAINERS)} in params.yaml"
        )
    if cfg["background"] not in ex.BACKGROUNDS:
        raise UserError(
            f"explain.background is '{cfg['background']}'; use one of {', '.join(ex.BACKGROUNDS)} in params.yaml"
        )
    for key in ("background_size", "permutations", "kernel_nsamples"):
        if cfg[key] < 1:
            raise UserError(f"explain.{key} is {cfg[key]}; set it to 1 or more in params.yaml")
    if not isinstance(cfg["ba"], list):
        raise UserError(f"explain.ba is '{cfg['ba']}'; give a list of BA names (e.g. [BA3, BA17]) or [] in params.yaml")
    return cfg


def _write_disabled() -> None:
    with ex.atomic_dir(paths.EXPLAIN_DIR):
        pass
    write_csv(pd.DataFrame(columns=TOP_COLUMNS), paths.EXPLAIN_TOP)
    write_json({"enabled": False}, paths.EXPLAIN_METRICS)
    log.info("explain.enabled is false: wrote empty outputs")


def main() -> None:
    params = load_params()
    if not get(params, "explain.enabled"):
        _write_disabled()
        return
    cfg = _config(params)
    seed = _int_param(params, "seed")
    art = load_model(paths.MODEL_FILE)
    label, features, classes = str(art["label"]), [str(f) for f in art["features"]], [str(c) for c in art["classes"]]
    ba_plots_requested = [str(b) for b in cfg["ba"]]
    ex.plot_bas(ba_plots_requested, features, pd.DataFrame({"BA": features}))  # validate before the work

    table_path = paths.test_table(get(params, "data.name"))
    df, dropped, unseen = scorable_rows(art, str(get(params, "label")), table_path, class_filter(params, label))
    dropped += sum(unseen.values())
    df = df.copy()  # one consolidated block: inserting into the fragmented frame read from CSV is slow
    df.insert(0, "Sample_ID", np.arange(len(df)))
    log.info("test rows of '%s': %d (%d dropped by the class filter)", label, len(df), dropped)

    labels = df[label].astype(str).to_numpy()
    idx = ex.stratified_sample(labels, cfg["n_samples"], seed)
    sample = df.iloc[idx].reset_index(drop=True)
    x_all = ba_matrix(df, features)
    x = x_all[idx]
    background = None
    if not ex.is_tree_model(art["model"]):
        background = ex.make_background(x_all, labels, cfg["background"], cfg["background_size"], seed)
    t0 = time.perf_counter()
    res = ex.explain(
        art["model"], x, background, cfg["mlp_explainer"], cfg["permutations"], cfg["kernel_nsamples"], seed, progress=True
    )
    log.info("%s explainer: %d rows x %d BAs x %d classes in %.1f s", res.explainer, *res.values.shape, time.perf_counter() - t0)
    tolerance = ex.TREE_TOLERANCE if res.explainer == "tree" else ex.AGNOSTIC_TOLERANCE
    if res.additivity_error > tolerance:
        log.warning("additivity error %.2e exceeds the tolerance %.0e", res.additivity_error, tolerance)

    importance = ex.global_importance(res.values, features)
    truth = (planted_truth(params) or {}).get(label)  # demo corpus only
    top = ex.top_metrics(importance, truth)
    ba_plots = ex.plot_bas(ba_plots_requested, features, importance)
    with ex.atomic_dir(paths.EXPLAIN_DIR) as out:
        ex.write_outputs(out, res, sample, x, label, features, classes, importance, ba_plots, seed)
    write_csv(importance.head(ex.TOP_BAR)[TOP_COLUMNS], paths.EXPLAIN_TOP)
    metrics = {
        "enabled": True,
        "label": label,
        "model": type(ex.unwrap_estimator(art["model"])).__name__,
        "explainer": res.explainer,
        "background": None if background is None else f"{cfg['background']}:{len(background[0])}",
        "n_test_rows": int(len(df)),
        "n_explained": int(len(sample)),
        "n_features": len(features),
        "additivity_max_error": res.additivity_error,
        "additivity_tolerance": tolerance,
        **top,
        "n_truth": None if truth is None else len(truth),
        "ba_plotted": ba_plots,
    }
    write_json(metrics, paths.EXPLAIN_METRICS)
    log.info("top-5 BAs %s (share %.3f); top-10 share %.3f", ", ".join(top["top5"]), top["top5_share"], top["top10_share"])
    if truth is not None:
        log.info("%d of the top-10 BAs are planted for '%s'", top["n_top10_in_truth"], label)


if __name__ == "__main__":
    run(main, "explain")
