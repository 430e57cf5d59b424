"""Step 3: train the classifier on the selected BAs of the training rows."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import pandas as pd

from smp_balr.core.errors import UserError
from smp_balr.core.settings import ModelSettings, TrainSettings
from smp_balr.data.tables import require_columns, too_few_classes
from smp_balr.model.artefacts import library_versions
from smp_balr.model.estimator import BAClassifier, settings_dict
from smp_balr.model.sampling import filter_speakers

log = logging.getLogger(__name__)

#: what train.json reports besides the counts, per method
_REPORTED = {
    "dt": ("cv_score", "cv_score_std", "n_folds", "best_params", "search"),
    "logreg": ("cv_score", "cv_score_std", "n_folds", "best_params"),
    "mlp": ("validation_score", "epochs", "best_epoch", "n_valid_speakers"),
}


@dataclass
class TrainResult:
    """A fitted model and what the train stage reports about it.

    Attributes
    ----------
    model : BAClassifier
        Fitted, with ``metadata_``.
    metrics : dict
        The headline (``metrics/train.json``): model, ``selection_score`` (the training-side
        score that configurations are chosen on: the speaker-grouped CV score of dt and
        logreg, the held-out-speaker score of the early-stopped mlp, null otherwise), sizes.
    details : dict
        Everything else (``metrics/train_details.json``): class counts, best parameters, ...
    curves : dict of str to pandas.DataFrame
        Training curves by name: the mlp's ``train_loss`` and ``valid_balanced_accuracy``
        per epoch, or the ``cv_score`` of every grid point (dt, logreg).
    """

    model: BAClassifier
    metrics: dict[str, Any]
    details: dict[str, Any]
    curves: dict[str, pd.DataFrame]


def _counts(values: pd.Series) -> dict[str, int]:
    """Rows per class, classes sorted (JSON-ready)."""
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def train(
    df: pd.DataFrame,
    label: str,
    features: Sequence[str],
    model: ModelSettings,
    train_settings: TrainSettings,
    seed: int,
    where: str = "the training table",
    context: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit a :class:`BAClassifier` on ``df`` (already class-filtered).

    Parameters
    ----------
    df : pandas.DataFrame
        Training rows with ``Speaker``, ``label`` and the ``features`` columns.
    label : str
        Class column.
    features : sequence of str
        BA columns the model uses, in order.
    model, train_settings : ModelSettings, TrainSettings
        Which model with which settings; balancing and the speakers filter.
    seed : int
        Seed of every random step.
    where : str
        The table's name for error messages.
    context : dict, optional
        Extra metadata stored with the model (e.g. feature method, class filter, data name).

    Returns
    -------
    TrainResult
    """
    _check_training_table(df, label, features, where, context)
    if train_settings.speakers:
        df = _speakers_with_every_class(df, label, where)
    counts_before = _counts(df[label])
    speakers = df["Speaker"].astype(str).to_numpy()
    estimator = BAClassifier(
        method=model.method,
        balance=train_settings.balance,
        random_state=seed,
        mlp=model.mlp,
        dt=model.dt,
        logreg=model.logreg,
    )
    estimator.fit(df[list(features)], df[label].astype(str).to_numpy(), speakers)
    info = dict(estimator.fit_info_)
    curves = {name: pd.DataFrame(rows) for name, rows in info.pop("curves", {}).items()}
    counts_final = info.pop("fitted_class_counts")
    log.info("class counts of the rows fitted: %s", counts_final)
    estimator.metadata_ = {
        "label": label,
        "model_method": model.method,
        **(context or {}),
        "params": {
            "model": settings_dict(estimator),
            "train": asdict(train_settings),
            "seed": seed,
        },
        "versions": library_versions(),
        "train_class_counts": counts_before,
        "train_class_counts_final": counts_final,
        "train_speakers": sorted(set(speakers)),
        "n_rows": len(df),
        "fit": {k: v for k, v in info.items() if k != "validation_scores"},
    }
    details = {
        "model": model.method,
        "n_rows": len(df),
        "n_rows_fitted": sum(counts_final.values()),  # early-stopped mlp: held-in rows only
        "n_speakers": int(len(set(speakers))),
        "n_features": len(features),
        "class_counts": counts_before,
        "class_counts_final": counts_final,
        **{k: info[k] for k in _REPORTED[model.method] if k in info},
    }
    _log_fit(model.method, info)
    metrics = _headline(model.method, info, len(df), details["n_speakers"], len(features))
    return TrainResult(estimator, metrics, details, curves)


def _check_training_table(
    df: pd.DataFrame,
    label: str,
    features: Sequence[str],
    where: str,
    context: dict[str, Any] | None,
) -> None:
    """Refuse a table with fewer than two classes of ``label`` or without the ``features``."""
    if df[label].nunique() < 2:
        raise UserError(
            too_few_classes(
                label, df[label].value_counts(), where, (context or {}).get("classes_filter")
            )
        )
    require_columns(
        df.columns,
        features,
        where,
        "rerun `dvc repro format` and the selection stages on the same data",
    )


def _speakers_with_every_class(df: pd.DataFrame, label: str, where: str) -> pd.DataFrame:
    """``train.speakers``: the rows of the speakers that have every class of ``label``."""
    df, info = filter_speakers(df, label)
    log.info(
        "speakers filter: kept %d/%d speakers (%.1f%%), %d/%d rows (%.1f%%)",
        info.speakers_kept,
        info.speakers_before,
        info.speakers_percent,
        info.rows_kept,
        info.rows_before,
        info.rows_percent,
    )
    if info.speakers_kept == 0:
        raise UserError(
            f"no speaker of {where} has rows of every class of '{label}' "
            "(speaker-level label?); set train.speakers: 0"
        )
    return df


def _headline(
    method: str, info: dict[str, Any], n_rows: int, n_speakers: int, n_features: int
) -> dict[str, Any]:
    """``metrics/train.json``: the model, its selection score and where that score comes from."""
    score = info.get("cv_score", info.get("validation_score"))
    return {
        "model": method,
        "selection_score": score,
        "selection_score_source": None
        if score is None
        else ("speaker-grouped CV" if "cv_score" in info else "held-out speakers"),
        "n_rows": n_rows,
        "n_speakers": n_speakers,
        "n_features": n_features,
    }


def _log_fit(method: str, info: dict[str, Any]) -> None:
    """Log the training-side score: the CV score and best parameters, or the early stop."""
    if "cv_score" in info:
        log.info(
            "%s: speaker-grouped CV balanced accuracy %.3f +- %.3f, best %s",
            method,
            info["cv_score"],
            info["cv_score_std"],
            info["best_params"],
        )
    elif "validation_score" in info:
        log.info(
            "mlp: held-out-speaker balanced accuracy %.3f at epoch %d/%d",
            info["validation_score"],
            info["best_epoch"],
            info["epochs"],
        )
