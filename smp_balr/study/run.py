"""Fit and test every configuration of one label, in parallel; choose one on the training side."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import pandas as pd
from joblib import Parallel, delayed
from tqdm import tqdm

from smp_balr.core.errors import UserError
from smp_balr.core.settings import Settings
from smp_balr.data.demo import planted_truth
from smp_balr.data.tables import scorable_frame
from smp_balr.evaluation.effects import effect_sizes
from smp_balr.evaluation.scores import TestResult, test_model
from smp_balr.explain import ExplainReport, explain_model
from smp_balr.model.training import TrainResult, train
from smp_balr.study.grid import (
    CONFIG_KEYS,
    Configuration,
    choose,
    configurations,
    run_order,
    summarise,
)

log = logging.getLogger(__name__)

#: effect sizes of each configuration, comparable across labels
#: (:func:`smp_balr.evaluation.effects.effect_sizes`)
EFFECT_COLUMNS = [
    "ba_norm",
    "ba_norm_ci_low",
    "ba_norm_ci_high",
    "mi_bits",
    "mi_bits_ci_low",
    "mi_bits_ci_high",
    "mi_share",
    "mi_share_ci_low",
    "mi_share_ci_high",
    "entropy_bits",
]
#: the columns of a study's results table, one row per configuration and seed
RESULT_COLUMNS = [
    "label",
    "features",
    "model",
    "balance",
    "seed",
    "status",
    "selection_score",
    "selection_source",
    "n_features",
    "n_train_rows",
    "n_test_rows",
    "n_test_speakers",
    "chance",
    "balanced_accuracy",
    "ci_low",
    "ci_high",
    "p_value",
    *EFFECT_COLUMNS,
    "scheme",
    "error",
]


# whole-number columns, kept whole (an empty cell, not NaN, where a configuration failed)
_COUNTS = dict.fromkeys(
    ["balance", "seed", "n_features", "n_train_rows", "n_test_rows", "n_test_speakers"], "Int64"
)


@dataclass
class Outcome:
    """What one configuration gave: its results row and, when it succeeded, its model and test."""

    row: dict[str, Any]
    model: Any = None
    test: TestResult | None = None
    seconds: float = 0.0


@dataclass
class StudyResult:
    """One label's study.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per configuration and seed (:data:`RESULT_COLUMNS`), failed ones with their
        error line.
    summary : pandas.DataFrame
        One row per configuration across seeds (:func:`smp_balr.study.grid.summarise`).
    chosen : tuple or None
        ``(features, model, balance)`` chosen on the training-side score; None when no
        configuration has one.
    outcome : Outcome or None
        The chosen configuration's first seed: its model and test result.
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    chosen: tuple | None
    outcome: Outcome | None


def _failed(row: dict[str, Any], message: str) -> dict[str, Any]:
    """``row`` marked failed, with ``message`` on one line as its error."""
    return {**row, "status": "failed", "error": " ".join(str(message).split())}


def fit_and_test(
    config: Configuration,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    label: str,
    features: Sequence[str] | str,
    settings: Settings,
) -> Outcome:
    """Fit one configuration on the training rows and test it on the test rows.

    Parameters
    ----------
    config : Configuration
        Features, model, balancing and seed.
    train_df, test_df : pandas.DataFrame
        The label's training rows (class-filtered) and the test table.
    label : str
        Class column.
    features : sequence of str, or str
        The configuration's BAs, or the one-line reason why its BA list cannot be used.
    settings : Settings
        Every other setting (model settings, ``train.speakers``, test sizes, class filter).

    Returns
    -------
    Outcome
        A failed configuration (empty selection, too few speakers for the folds, ...) has
        ``status`` failed and its error line; it never raises a :class:`UserError`.
    """
    t0 = time.perf_counter()
    row = _config_row(config, label)
    if isinstance(features, str):
        return Outcome(_failed(row, features), seconds=time.perf_counter() - t0)
    try:
        fitted, res = _train_and_test(config, train_df, test_df, label, features, settings)
    except UserError as err:
        return Outcome(_failed(row, str(err)), seconds=time.perf_counter() - t0)
    m, pred = res.metrics, res.predictions
    effects = effect_sizes(
        pred["true"],
        pred["predicted"],
        res.classes,
        pred["Speaker"],
        settings.test.n_permutations,
        settings.test.n_bootstrap,
        config.seed,
    )
    row.update({k: effects[k] for k in EFFECT_COLUMNS})
    row.update(
        selection_score=fitted.metrics["selection_score"],
        selection_source=fitted.metrics["selection_score_source"],
        n_features=len(features),
        n_train_rows=fitted.metrics["n_rows"],
        n_test_rows=m["n_rows"],
        n_test_speakers=m["n_speakers"],
        chance=m["chance"]["balanced_accuracy"],
        balanced_accuracy=m["balanced_accuracy"],
        ci_low=m["bootstrap"]["ci_low"],
        ci_high=m["bootstrap"]["ci_high"],
        p_value=m["permutation"]["p_value"],
        scheme=m["permutation"]["scheme"],
    )
    return Outcome(row, model=fitted.model, test=res, seconds=time.perf_counter() - t0)


def _config_row(config: Configuration, label: str) -> dict[str, Any]:
    """The results row of a configuration before it runs: its keys, status success."""
    row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS)
    row.update(
        label=label,
        features=config.features,
        model=config.model,
        balance=config.balance,
        seed=config.seed,
        status="success",
        error="",
    )
    return row


def _train_and_test(
    config: Configuration,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    label: str,
    features: Sequence[str],
    settings: Settings,
) -> tuple[TrainResult, TestResult]:
    """Train the configuration's model and score it on the test rows of its classes."""
    model_settings = replace(settings.model, method=config.model)
    train_settings = replace(settings.train, balance=config.balance)
    context = {
        "features_method": config.features,
        "classes_filter": settings.class_filter(label),
        "data_name": settings.data.name,
    }
    fitted = train(
        train_df,
        label,
        features,
        model_settings,
        train_settings,
        config.seed,
        where="the training table",
        context=context,
    )
    model = fitted.model
    rows, _, _ = scorable_frame(
        test_df, label, settings.class_filter(label), model.classes_, model.feature_names_in_
    )
    res = test_model(
        model,
        rows,
        label,
        settings.test.n_permutations,
        settings.test.n_bootstrap,
        config.seed,
        model.metadata_["train_speakers"],
    )
    return fitted, res


def _task(i: int, *args: Any) -> tuple[int, Outcome]:
    from smp_balr.model import estimator

    estimator.EPOCH_BAR = False  # one bar over the configurations, not one per model fitted
    return i, fit_and_test(*args)


def run_study(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    label: str,
    features: Mapping[str, Sequence[str] | str],
    settings: Settings,
    n_jobs: int | None = None,
    progress: bool = True,
) -> StudyResult:
    """Fit, test and choose among every configuration of ``settings.study`` for ``label``.

    Parameters
    ----------
    train_df, test_df : pandas.DataFrame
        The label's training rows (class-filtered) and the test table.
    label : str
        Class column.
    features : mapping
        ``features.method`` -> its BA list, or the one-line reason it cannot be used.
    settings : Settings
        The grid (``study``) and every other setting.
    n_jobs : int, optional
        Configurations fitted at once through joblib (default ``study.n_jobs``), on the
        backend active around the call (:func:`smp_balr.core.parallel.parallel_backend`).
    progress : bool
        Show one bar over the configurations with done / failed counts.

    Returns
    -------
    StudyResult
    """
    st = settings.study
    configs = configurations(st.features, st.model, st.balance, st.seeds or (settings.seed,))
    outcomes: list[Outcome | None] = [None] * len(configs)
    jobs = st.n_jobs if n_jobs is None else n_jobs
    parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
    sizes = {k: 0 if isinstance(v, str) else len(v) for k, v in features.items()}
    tasks = (
        delayed(_task)(
            i, configs[i], train_df, test_df, label, features[configs[i].features], settings
        )
        for i in run_order(configs, sizes)
    )
    failed = 0
    with tqdm(
        total=len(configs), desc=f"study {label}", unit="config", disable=not progress
    ) as bar:
        for i, out in parallel(tasks):
            outcomes[i] = out
            failed += out.row["status"] != "success"
            bar.update()
            bar.set_postfix(done=bar.n - failed, failed=failed)
            log.info("%s: %s in %.1f s", configs[i].text, out.row["status"], out.seconds)
    results = pd.DataFrame([o.row for o in outcomes], columns=RESULT_COLUMNS).astype(_COUNTS)
    summary = summarise(results)
    chosen = choose(
        {tuple(r[k] for k in CONFIG_KEYS): r["selection_scores"] for _, r in summary.iterrows()}
    )
    outcome = None
    if chosen is not None:
        outcome = next(
            o
            for o in outcomes
            if tuple(o.row[k] for k in CONFIG_KEYS) == chosen and o.row["status"] == "success"
        )
    log.info(
        "%s: %d configurations, %d failed, chosen %s (seconds of fit and test: %.1f in all)",
        label,
        len(configs),
        failed,
        "none" if chosen is None else " / ".join(map(str, chosen)),
        sum(o.seconds for o in outcomes),
    )
    return StudyResult(results, summary, chosen, outcome)


def explain_chosen(
    study: StudyResult, test_df: pd.DataFrame, label: str, settings: Settings
) -> ExplainReport | None:
    """SHAP values of the chosen configuration's model on the test rows.

    None when ``explain.enabled`` is false or no configuration was chosen.

    The workers are idle once every configuration is fitted, so the agnostic explainer's
    row chunks run on ``max(explain.n_jobs, study.n_jobs)`` of them (the values do not
    depend on the number of workers: each chunk has its own seed).
    """
    if not settings.explain.enabled or study.outcome is None:
        return None
    model = study.outcome.model
    df, _, _ = scorable_frame(
        test_df, label, settings.class_filter(label), model.classes_, model.feature_names_in_
    )
    truth = (planted_truth(settings.data.labels, settings.data.ba_dir) or {}).get(
        label
    )  # demo corpus only
    jobs = (
        settings.study.n_jobs
        if settings.study.n_jobs == -1
        else max(settings.explain.n_jobs, settings.study.n_jobs)
    )
    # explain.ba names BAs of the single configuration; the chosen one may not use them all
    used = set(model.feature_names_in_)
    plotted = tuple(b for b in settings.explain.ba if b in used)
    explain = replace(settings.explain, n_jobs=jobs, ba=plotted)
    return explain_model(model, df, label, explain, study.outcome.row["seed"], truth)
