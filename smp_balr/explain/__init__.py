"""Step 5: which BAs drive the model's decisions (SHAP).

:func:`explain_model` samples test rows (stratified by class), explains the trained
model's per-class output (:mod:`.compute`), summarises the values per class and globally
(:mod:`.summaries`); :func:`write_outputs` writes the tables and plots (:mod:`.plots`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from smp_balr.core.outputs import FLOAT_FORMAT
from smp_balr.core.settings import ExplainSettings
from smp_balr.data.tables import ba_matrix
from smp_balr.explain.compute import (
    AGNOSTIC_TOLERANCE,
    TREE_TOLERANCE,
    Explanation,
    explain,
    is_linear_model,
    is_tree_model,
    make_background,
    unwrap_estimator,
)
from smp_balr.explain.plots import (
    TOP_BAR,
    plot_ba_across_classes,
    plot_beeswarm,
    plot_top_bar,
    safe_name,
)
from smp_balr.explain.summaries import (
    DEFAULT_N_BA_PLOTS,
    check_plot_bas,
    choose_plot_bas,
    class_summary,
    global_importance,
    shap_table,
    top_metrics,
)
from smp_balr.model.sampling import stratified_sample

log = logging.getLogger(__name__)

__all__ = [
    "AGNOSTIC_TOLERANCE",
    "DEFAULT_N_BA_PLOTS",
    "TOP_BAR",
    "TREE_TOLERANCE",
    "ExplainReport",
    "Explanation",
    "check_plot_bas",
    "choose_plot_bas",
    "class_summary",
    "explain",
    "explain_model",
    "global_importance",
    "is_linear_model",
    "is_tree_model",
    "make_background",
    "plot_ba_across_classes",
    "plot_beeswarm",
    "plot_top_bar",
    "safe_name",
    "shap_table",
    "stratified_sample",
    "top_metrics",
    "unwrap_estimator",
    "write_outputs",
]

TOP_COLUMNS = ["BA", "importance", "share"]


@dataclass
class ExplainReport:
    """SHAP values of sampled test rows and their summaries.

    Attributes
    ----------
    result : Explanation
        (rows, BAs, classes) SHAP values, base values and explained outputs.
    sample : pandas.DataFrame
        The explained rows (``Sample_ID`` first).
    x : numpy.ndarray
        Their BA values in model input order.
    features, classes : list of str
        Model input BAs and classes.
    importance : pandas.DataFrame
        Global importance (:func:`global_importance`).
    ba_plots : list of str
        BAs plotted across classes.
    metrics : dict
        Everything ``metrics/explain_details.json`` holds; :attr:`headline` is the DVC metric.
    """

    result: Explanation
    sample: pd.DataFrame
    x: np.ndarray
    features: list[str]
    classes: list[str]
    importance: pd.DataFrame
    ba_plots: list[str]
    metrics: dict[str, Any]

    @property
    def headline(self) -> dict[str, Any]:
        """The few figures a comparison needs (``metrics/explain.json``): top-5 / top-10 shares."""
        keys = ("top5_share", "top10_share", "n_top10_in_truth")
        return {"enabled": True, **{k: self.metrics[k] for k in keys}}

    @property
    def top(self) -> pd.DataFrame:
        """The top-20 BAs by share (the DVC bar plot's data)."""
        return self.importance.head(TOP_BAR)[TOP_COLUMNS]


def explain_model(
    model: Any,
    df: pd.DataFrame,
    label: str,
    settings: ExplainSettings,
    seed: int,
    truth: Sequence[str] | None = None,
) -> ExplainReport:
    """Explain a fitted :class:`~smp_balr.model.estimator.BAClassifier` on test rows.

    Parameters
    ----------
    model : BAClassifier
        Fitted; ``feature_names_in_`` are columns of ``df``.
    df : pandas.DataFrame
        Scorable test rows (:func:`smp_balr.data.tables.scorable_rows`).
    label : str
        Class column.
    settings : ExplainSettings
        Sample size, BAs to plot, background and explainer.
    seed : int
        Seed of the sample, the background and the sampling explainers.
    truth : sequence of str, optional
        Planted BAs of ``label`` (demo corpus): how many of the top 10 are planted is reported.

    Returns
    -------
    ExplainReport
    """
    features = [str(f) for f in model.feature_names_in_]
    classes = [str(c) for c in model.classes_]
    check_plot_bas(settings.ba, features)  # an unknown BA fails before the work
    # one consolidated block: inserting into the fragmented frame read from CSV is slow
    df = df.copy()
    df.insert(0, "Sample_ID", np.arange(len(df)))
    labels = df[label].astype(str).to_numpy()
    idx = stratified_sample(labels, settings.n_samples, seed)
    sample = df.iloc[idx].reset_index(drop=True)
    x_all = ba_matrix(df, features)
    x = x_all[idx]
    background = None
    if not is_tree_model(model):
        background = make_background(
            x_all, labels, settings.background, settings.background_size, seed
        )
    res, tolerance = _explained(model, x, background, settings, seed)
    importance = global_importance(res.values, features)
    top = top_metrics(importance, truth)
    ba_plots = choose_plot_bas(settings.ba, features, importance)
    metrics = {
        "enabled": True,
        "label": label,
        "model": type(unwrap_estimator(model)).__name__,
        "explainer": res.explainer,
        "background": None if background is None else f"{settings.background}:{len(background[0])}",
        "n_test_rows": int(len(df)),
        "n_explained": int(len(sample)),
        "n_features": len(features),
        "additivity_max_error": res.additivity_error,
        "additivity_tolerance": tolerance,
        **top,
        "n_truth": None if truth is None else len(truth),
        "ba_plotted": ba_plots,
    }
    metrics["output"] = res.output
    _log_top(top, truth, label)
    return ExplainReport(res, sample, x, features, classes, importance, ba_plots, metrics)


def _explained(
    model: Any,
    x: np.ndarray,
    background: tuple[np.ndarray, np.ndarray] | None,
    settings: ExplainSettings,
    seed: int,
) -> tuple[Explanation, float]:
    """SHAP values of the rows ``x``, timed, and the additivity tolerance they are held to."""
    t0 = time.perf_counter()
    res = explain(
        model,
        x,
        background,
        settings.mlp_explainer,
        settings.permutations,
        settings.kernel_nsamples,
        seed,
        n_jobs=settings.n_jobs,
    )
    log.info(
        "%s explainer: %d rows x %d BAs x %d classes in %.1f s",
        res.explainer,
        *res.values.shape,
        time.perf_counter() - t0,
    )
    tolerance = TREE_TOLERANCE if res.explainer in ("tree", "linear") else AGNOSTIC_TOLERANCE
    if res.additivity_error > tolerance:
        log.warning(
            "additivity error %.2e exceeds the tolerance %.0e", res.additivity_error, tolerance
        )
    return res, tolerance


def _log_top(top: dict[str, Any], truth: Sequence[str] | None, label: str) -> None:
    """Log the top-5 BAs and the top shares, and how many of the top 10 are planted."""
    log.info(
        "top-5 BAs %s (share %.3f); top-10 share %.3f",
        ", ".join(top["top5"]),
        top["top5_share"],
        top["top10_share"],
    )
    if truth is not None:
        log.info("%d of the top-10 BAs are planted for '%s'", top["n_top10_in_truth"], label)


def write_outputs(out: Path, report: ExplainReport, label: str, seed: int) -> None:
    """Write every per-class table and PNG, the importance table and the plots into ``out``.

    Files: ``shap_<class>.csv``, ``summary_<class>.csv``, ``beeswarm_<class>.png`` per class
    (class names made file-safe), ``ba_<BA>.png`` per plotted BA, ``importance.csv`` and
    ``top20.png``.
    """
    res, features, classes, x = report.result, report.features, report.classes, report.x
    used: set[str] = set()
    for c, cls in enumerate(classes):
        name = safe_name(cls)
        name = name if name not in used else f"{name}_{c}"
        used.add(name)
        shap_table(res.values[:, :, c], report.sample, label, features).to_csv(
            out / f"shap_{name}.csv", index=False, float_format=FLOAT_FORMAT
        )
        class_summary(res.values[:, :, c], features).to_csv(
            out / f"summary_{name}.csv", index=False, float_format=FLOAT_FORMAT
        )
        plot_beeswarm(
            res.values[:, :, c],
            x,
            features,
            f"{label} = {cls}: SHAP values",
            out / f"beeswarm_{name}.png",
            seed,
        )
    for ba in report.ba_plots:
        j = features.index(ba)
        plot_ba_across_classes(
            res.values[:, j, :], x[:, j], classes, ba, out / f"ba_{safe_name(ba)}.png", seed
        )
    report.importance.to_csv(out / "importance.csv", index=False, float_format=FLOAT_FORMAT)
    plot_top_bar(report.importance, out / "top20.png")
