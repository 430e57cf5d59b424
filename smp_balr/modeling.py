"""Model fitting (``mlp`` / ``dt``) with speaker-grouped validation, and the model artefact.

The artefact written by the train stage (``models/model.joblib``) is a joblib dump of a
plain dict::

    {"model": fitted sklearn estimator with predict_proba,
     "encoder": fitted sklearn LabelEncoder,
     "features": [BA column names in model input order],
     "label": str,
     "classes": [class names in encoder order],
     "meta": {...}}   # params, library versions, class counts, train speakers, ...
"""

from __future__ import annotations

import copy
import logging
import platform
import warnings
from pathlib import Path
from typing import Any, Sequence

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from smp_balr.errors import UserError
from smp_balr.outputs import atomic_path
from smp_balr.params import as_choice, as_float, as_int
from smp_balr.sampling import balanced_sample_weights, oversample_indices
from smp_balr.tables import filter_classes, read_table

log = logging.getLogger(__name__)

ARTEFACT_KEYS = ("model", "encoder", "features", "label", "classes", "meta")
METHODS = ("mlp", "dt")

# defaults of the original toolkit; params.yaml (model.mlp / model.dt) overrides each key
MLP_DEFAULTS: dict[str, Any] = {
    "hidden1_ratio": 0.5, "hidden2": 16, "activation": "relu", "alpha": 1e-4, "learning_rate": 1e-3,
    "batch_size": 32, "max_iter": 100, "early_stopping": 1, "validation_fraction": 0.2,
    "n_iter_no_change": 10, "tol": 1e-4,
}
DT_DEFAULTS: dict[str, Any] = {
    "grid": {"max_depth": [5, 10, 15], "min_samples_split": [2, 5, 10], "min_samples_leaf": [1, 2, 5],
             "criterion": ["gini", "entropy"]},
    "cv_folds": 5, "scoring": "balanced_accuracy", "n_jobs": 1,
}


# --------------------------------------------------------------------------- artefact


def save_model(artefact: dict[str, Any], path: str | Path) -> None:
    """Validate ``artefact`` and dump it with joblib, atomically."""
    _validate_artefact(artefact, path)
    with atomic_path(path) as tmp:
        joblib.dump(artefact, tmp)


def load_model(path: str | Path) -> dict[str, Any]:
    """Load and validate the model artefact written by the train stage.

    Parameters
    ----------
    path : str or Path
        Usually ``paths.MODEL_FILE``.

    Returns
    -------
    dict
        Keys ``model, encoder, features, label, classes, meta`` (see module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found; run `dvc repro train` first")
    try:
        artefact = joblib.load(path)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise UserError(f"model file {path} cannot be read ({type(err).__name__}); rerun `dvc repro train`") from None
    _validate_artefact(artefact, path)
    return artefact


def _validate_artefact(artefact: Any, path: str | Path) -> None:
    fix = "rerun `dvc repro train`"
    if not isinstance(artefact, dict):
        raise UserError(f"model file {path} does not hold a model dict; {fix}")
    missing = [k for k in ARTEFACT_KEYS if k not in artefact]
    if missing:
        raise UserError(f"model file {path} lacks {', '.join(missing)}; {fix}")
    if not hasattr(artefact["model"], "predict_proba"):
        raise UserError(f"model in {path} has no predict_proba; {fix}")
    classes = [str(c) for c in getattr(artefact["encoder"], "classes_", [])]
    if classes != list(artefact["classes"]):
        raise UserError(f"model file {path}: encoder classes differ from 'classes'; {fix}")
    if not artefact["features"]:
        raise UserError(f"model file {path} has an empty feature list; {fix}")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that fitted the model."""
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


def encode_labels(y: Sequence[str]) -> tuple[LabelEncoder, np.ndarray]:
    """Fit a :class:`LabelEncoder` on string labels; return it and the integer codes."""
    encoder = LabelEncoder()
    codes = encoder.fit_transform(np.asarray(y, dtype=str))
    return encoder, codes


def features_stage(label: str, method: str) -> str:
    """Name of the dvc stage that writes the features file of ``label`` / ``method``."""
    return "common" if method == "common" else f"select@{label}-{method}"


def require_columns(columns: Sequence[str], features: Sequence[str], where: str | Path, fix: str) -> None:
    """Raise a :class:`UserError` naming the feature columns absent from ``columns``."""
    have = set(columns)
    missing = [f for f in features if f not in have]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"{len(missing)} model feature column(s) absent from {where}: {shown}; {fix}")


def scorable_rows(
    artefact: dict[str, Any], label: str, table: str | Path, keep: Sequence[str] | None
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """The rows of the test table that the saved model can be scored on.

    Checks that the model was trained for ``label``, applies the class filter ``keep``
    (a filtered class absent from the test set is only warned about), drops rows of
    classes the model never saw and checks that every model input BA is a column.

    Returns
    -------
    (pandas.DataFrame, int, dict)
        The rows (index reset), the number dropped by the class filter, and the counts
        per class of the rows dropped because the model never saw their class.
    """
    if artefact["label"] != label:
        raise UserError(
            f"{table} cannot be scored: the model was trained for label '{artefact['label']}', params has "
            f"'{label}'; run `dvc repro train`"
        )
    df = read_table(table)
    df, dropped = filter_classes(df, label, keep, where=table, strict=False)
    unseen = ~df[label].astype(str).isin([str(c) for c in artefact["classes"]]).to_numpy()
    unseen_counts = {str(k): int(v) for k, v in df.loc[unseen, label].value_counts().items()}
    if unseen.any():
        log.warning("%d test rows of classes never seen in training excluded: %s", int(unseen.sum()), unseen_counts)
        df = df.loc[~unseen].reset_index(drop=True)
    if df.empty:
        raise UserError(
            f"no rows of the model's classes ({', '.join(map(str, artefact['classes']))}) in {table}; "
            f"check `classes.{label}` and `label` in params.yaml"
        )
    require_columns(df.columns, artefact["features"], table, "test and train tables must come from the same `format` run")
    return df, dropped, unseen_counts


# --------------------------------------------------------------------------- folds


def check_classes(y: np.ndarray, groups: np.ndarray, n_folds: int, what: str) -> None:
    """Raise a :class:`UserError` if ``y`` cannot be split into ``n_folds`` speaker folds.

    Parameters
    ----------
    y : numpy.ndarray
        Class of each row.
    groups : numpy.ndarray
        Speaker of each row.
    n_folds : int
        Folds wanted.
    what : str
        Parameter to name in the message (e.g. ``model.dt.cv_folds``).
    """
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise UserError(
            f"only {classes.size} class left for training after filtering ({', '.join(map(str, classes)) or 'none'}); "
            "check `classes` and `train.speakers` in params.yaml"
        )
    n_speakers = np.unique(groups).size
    if n_speakers < n_folds:
        raise UserError(f"{n_speakers} training speakers cannot fill {n_folds} speaker-disjoint folds; lower {what}")
    small = [f"{c} ({n})" for c, n in zip(classes, counts) if n < n_folds]
    if small:
        raise UserError(
            f"class(es) {', '.join(small)} have fewer rows than the {n_folds} folds; "
            f"lower {what} or drop the class under `classes` in params.yaml"
        )


def fold_requirement(method: str, settings: dict[str, Any]) -> tuple[int, str]:
    """Speaker folds a fit needs and the parameter that sets them (for :func:`check_classes`)."""
    if method == "dt":
        return int(settings["cv_folds"]), "model.dt.cv_folds"
    if int(settings.get("early_stopping", 1)):
        fraction = float(settings["validation_fraction"])
        n = max(2, int(round(1.0 / fraction))) if 0.0 < fraction < 1.0 else 2
        return n, "model.mlp.validation_fraction (raise it) or set model.mlp.early_stopping: 0"
    return 1, "model.mlp"


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int, is_copy: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Speaker-disjoint stratified folds; oversampled copies never enter a validation fold.

    Parameters
    ----------
    y, groups : numpy.ndarray
        Class and speaker of each row.
    n_folds : int
        Number of folds.
    seed : int
        Shuffling seed.
    is_copy : numpy.ndarray of bool, optional
        Rows added by oversampling; dropped from the validation indices.

    Returns
    -------
    list of (train_idx, valid_idx)
    """
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        folds = list(splitter.split(np.zeros(len(y)), y, groups))
    if is_copy is not None:
        folds = [(tr, va[~is_copy[va]]) for tr, va in folds]
    return folds


# --------------------------------------------------------------------------- dt


def distinct_tree_params(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Grid points in grid order, without those that grow the same tree as an earlier one.

    scikit-learn uses ``max(min_samples_split, 2 * min_samples_leaf)`` as the effective
    split minimum (a node with fewer rows cannot give two legal leaves), so e.g. with
    ``min_samples_leaf=5`` the splits 2, 5 and 10 are one tree; the first is kept, and its
    score is the one the full grid would report for all three.
    """
    from sklearn.model_selection import ParameterGrid

    seen: set = set()
    out = []
    for point in ParameterGrid(grid):
        key = dict(point)
        split, leaf = key.get("min_samples_split", 2), key.get("min_samples_leaf", 1)
        if isinstance(split, int) and isinstance(leaf, int) and "min_samples_split" in key:
            key["min_samples_split"] = max(split, 2 * leaf)
        signature = tuple(sorted((k, repr(v)) for k, v in key.items()))
        if signature not in seen:
            seen.add(signature)
            out.append(dict(point))
    return out


def fit_dt(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    dt_params: dict[str, Any],
    balance: int,
    seed: int,
    is_copy: np.ndarray | None = None,
) -> tuple[DecisionTreeClassifier, dict[str, Any]]:
    """Grid-search a decision tree with speaker-grouped folds, refit on all rows.

    Parameters
    ----------
    X, y, groups : numpy.ndarray
        Features, integer classes, speakers.
    dt_params : dict
        ``grid`` (dict of lists), ``cv_folds``, ``scoring``, ``n_jobs``.
    balance : int
        2 uses ``class_weight='balanced'``.
    seed : int
        Seed of the tree and of the folds.
    is_copy : numpy.ndarray of bool, optional
        Oversampled rows (kept out of validation folds).

    Returns
    -------
    (DecisionTreeClassifier, dict)
        The refitted best tree and ``{cv_score, cv_score_std, best_params, n_folds}``.
    """
    n_folds = int(dt_params["cv_folds"])
    check_classes(y, groups, n_folds, "model.dt.cv_folds")
    folds = grouped_folds(y, groups, n_folds, seed, is_copy)
    tree = DecisionTreeClassifier(random_state=seed, class_weight="balanced" if balance == 2 else None)
    grid = {k: list(v) for k, v in dict(dt_params["grid"]).items()}
    candidates = distinct_tree_params(grid)
    n_grid = int(np.prod([len(v) for v in grid.values()]))
    log.info(
        "dt grid search: %d of %d grid points are distinct trees, %d fits (%d speaker-disjoint folds), scoring %s",
        len(candidates), n_grid, len(candidates) * n_folds, n_folds, dt_params["scoring"],
    )
    search = GridSearchCV(
        tree,
        [{k: [v] for k, v in c.items()} for c in candidates],
        scoring=dt_params["scoring"],
        cv=folds,
        n_jobs=int(dt_params.get("n_jobs", 1)),
        refit=True,
    )
    try:
        search.fit(X.astype(np.float32), y)
    except ValueError as err:
        reason = " ".join(str(err).split())[:200]
        raise UserError(f"dt grid search failed ({reason}); check model.dt in params.yaml") from None
    best = search.best_index_
    info = {
        "cv_score": float(search.best_score_),
        "cv_score_std": float(search.cv_results_["std_test_score"][best]),
        "best_params": {k: _plain(v) for k, v in search.best_params_.items()},
        "n_folds": n_folds,
    }
    return search.best_estimator_, info


# --------------------------------------------------------------------------- mlp


def build_mlp(n_features: int, mlp_params: dict[str, Any], seed: int) -> MLPClassifier:
    """The MLP of the original: hidden layers (n_features * hidden1_ratio, hidden2), Adam.

    Early stopping is not delegated to scikit-learn (whose hold-out mixes speakers);
    :func:`fit_mlp` runs it on held-out speakers.
    """
    first = max(1, int(round(n_features * float(mlp_params["hidden1_ratio"]))))
    return MLPClassifier(
        hidden_layer_sizes=(first, int(mlp_params["hidden2"])),
        activation=str(mlp_params.get("activation", "relu")),
        solver="adam",
        alpha=float(mlp_params.get("alpha", 1e-4)),
        learning_rate_init=float(mlp_params["learning_rate"]),
        batch_size=int(mlp_params["batch_size"]),
        max_iter=int(mlp_params["max_iter"]),
        shuffle=True,
        random_state=seed,
        early_stopping=False,
    )


# Minibatches of 32 rows make tiny matrix products, for which a multi-threaded BLAS only
# adds synchronisation (measured 7x slower per epoch on 2 busy cores): one BLAS thread.
@threadpool_limits.wrap(limits=1, user_api="blas")
def fit_mlp(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    mlp_params: dict[str, Any],
    balance: int,
    seed: int,
    is_copy: np.ndarray | None = None,
) -> tuple[MLPClassifier, dict[str, Any]]:
    """Fit the MLP; with early stopping, on held-out speakers (``validation_fraction``).

    The validation speakers are the first fold of a stratified speaker-grouped split
    into ``round(1 / validation_fraction)`` folds. Each epoch is one ``partial_fit``
    pass over the other speakers; training stops after ``n_iter_no_change`` epochs
    without a validation balanced-accuracy gain above ``tol`` and the best epoch's
    weights are kept (as scikit-learn's own early stopping does).

    Returns
    -------
    (MLPClassifier, dict)
        The fitted model and ``{validation_score, epochs, best_epoch, n_valid_rows,
        n_valid_speakers}`` (validation keys only with early stopping).
    """
    classes = np.unique(y)
    model = build_mlp(X.shape[1], mlp_params, seed)
    max_iter = int(mlp_params["max_iter"])
    early = bool(int(mlp_params.get("early_stopping", 1)))
    info: dict[str, Any] = {"hidden_layer_sizes": list(model.hidden_layer_sizes)}
    if not early:
        check_classes(y, groups, 1, "model.mlp.validation_fraction")
        weights = balanced_sample_weights(y) if balance == 2 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y, sample_weight=weights)
        info["epochs"] = int(model.n_iter_)
        return model, info

    fraction = float(mlp_params["validation_fraction"])
    if not 0.0 < fraction < 1.0:
        raise UserError(f"model.mlp.validation_fraction must be in (0, 1), got {fraction}; fix params.yaml")
    n_folds = max(2, int(round(1.0 / fraction)))
    check_classes(y, groups, n_folds, "model.mlp.validation_fraction (raise it) or set model.mlp.early_stopping: 0")
    if is_copy is not None:
        # balance 1: the copies were made over all speakers; after holding out speakers the
        # rest would no longer be balanced, so oversample the training speakers afresh
        X, y, groups = X[~is_copy], y[~is_copy], groups[~is_copy]
    train_idx, valid_idx = grouped_folds(y, groups, n_folds, seed)[0]
    if is_copy is not None:
        train_idx = np.concatenate([train_idx, train_idx[oversample_indices(y[train_idx], groups[train_idx], seed)]])
    X_tr, y_tr, X_va, y_va = X[train_idx], y[train_idx], X[valid_idx], y[valid_idx]
    info["fitted_class_counts"] = {int(c): int(n) for c, n in zip(*np.unique(y_tr, return_counts=True))}
    weights = balanced_sample_weights(y_tr) if balance == 2 else None
    patience, tol = int(mlp_params.get("n_iter_no_change", 10)), float(mlp_params.get("tol", 1e-4))
    best_score, best_epoch, best_state, stale, scores = -np.inf, 0, None, 0, []
    bar = tqdm(range(1, max_iter + 1), desc="mlp epochs", unit="epoch", leave=False)
    for epoch in bar:
        model.partial_fit(X_tr, y_tr, sample_weight=weights, classes=classes)
        score = float(balanced_accuracy_score(y_va, model.predict(X_va)))
        scores.append(score)
        bar.set_postfix(valid=f"{score:.3f}", refresh=False)
        if score > best_score + tol:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = (copy.deepcopy(model.coefs_), copy.deepcopy(model.intercepts_))
        else:
            stale += 1
            if stale >= patience:
                break
    bar.close()
    model.coefs_, model.intercepts_ = best_state
    info.update(
        {
            "validation_score": best_score,
            "validation_scores": scores,
            "epochs": len(scores),
            "best_epoch": best_epoch,
            "n_valid_rows": int(valid_idx.size),
            "n_valid_speakers": int(np.unique(groups[valid_idx]).size),
        }
    )
    return model, info


def fit_model(
    method: str,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    model_params: dict[str, Any],
    balance: int,
    seed: int,
    is_copy: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Dispatch to :func:`fit_mlp` or :func:`fit_dt` by ``method`` (``model.method``)."""
    if method == "mlp":
        return fit_mlp(X, y, groups, model_settings(model_params, "mlp"), balance, seed, is_copy)
    if method == "dt":
        return fit_dt(X, y, groups, model_settings(model_params, "dt"), balance, seed, is_copy)
    raise UserError(f"model.method must be one of {', '.join(METHODS)}, got '{method}'; fix params.yaml")


# admissible values of the model settings (whole numbers default to a minimum of 1)
CHOICES: dict[str, tuple] = {"activation": ("identity", "logistic", "tanh", "relu"), "early_stopping": (0, 1)}
INT_MINIMUM: dict[str, int] = {"cv_folds": 2, "n_jobs": -1}
FLOAT_RANGE: dict[str, tuple[float, float | None]] = {
    "hidden1_ratio": (1e-9, None), "learning_rate": (1e-12, None), "validation_fraction": (1e-9, 1 - 1e-9),
}


def model_settings(model_params: dict[str, Any], method: str) -> dict[str, Any]:
    """``model.<method>`` from params over the defaults (:data:`MLP_DEFAULTS` / :data:`DT_DEFAULTS`)."""
    defaults = MLP_DEFAULTS if method == "mlp" else DT_DEFAULTS
    given = model_params.get(method) or {}
    if not isinstance(given, dict):
        raise UserError(f"model.{method} in params.yaml must be a mapping of settings")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"unknown setting(s) model.{method}.{', '.join(unknown)}; allowed: {', '.join(defaults)}")
    settings = {**defaults, **given}
    for key, default in defaults.items():  # each value of the type of its default, within its range
        name = f"model.{method}.{key}"
        if key in CHOICES:
            settings[key] = as_choice(settings[key], name, CHOICES[key])
        elif isinstance(default, int):
            settings[key] = as_int(settings[key], name, minimum=INT_MINIMUM.get(key, 1))
        elif isinstance(default, float):
            low, high = FLOAT_RANGE.get(key, (0.0, None))
            settings[key] = as_float(settings[key], name, low=low, high=high)
        elif isinstance(default, str) and not isinstance(settings[key], str):
            raise UserError(f"params.yaml: {name} must be a name such as '{default}', got {settings[key]!r}")
        elif isinstance(default, dict) and not isinstance(settings[key], dict):
            raise UserError(f"params.yaml: {name} must be a mapping, got {settings[key]!r}")
    if settings.get("n_jobs") == 0:
        raise UserError("params.yaml: model.dt.n_jobs must be -1 (all cores) or a positive number of processes, got 0")
    return settings


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
