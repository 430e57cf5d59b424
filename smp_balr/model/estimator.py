"""The classifier of the pipeline as one scikit-learn estimator: :class:`BAClassifier`.

``BAClassifier(method="mlp" | "dt" | "logreg", balance=0 | 1 | 2)`` takes BA rows, string
classes and the speaker of each row (``fit(X, y, groups)``) and does everything that must
respect speakers inside ``fit``:

* ``balance=1`` oversamples every class to the largest, spreading the copies over the
  class's speakers in proportion (:func:`smp_balr.model.sampling.oversample_indices`); copies
  never enter a validation fold, and the early-stopped MLP re-balances its held-in
  speakers. ``balance=2`` weights the classes (class or sample weights).
* ``mlp``: the original toolkit's MLP, early-stopped on held-out *speakers*.
* ``dt``: a decision tree whose grid is searched with speaker-grouped stratified folds.
* ``logreg``: the linear probe, a logistic regression whose penalty ``C`` is chosen by
  speaker-grouped cross-validation.

After ``fit``: ``classes_`` (the labels as given: strings in the pipeline),
``n_features_in_`` / ``feature_names_in_``, ``model_`` (the fitted scikit-learn model,
whose classes are ``0..K-1``) and ``fit_info_`` (what ``metrics/train.json`` reports,
plus ``curves``).
"""

from __future__ import annotations

import copy
import logging
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from smp_balr.core import options
from smp_balr.core.errors import UserError
from smp_balr.core.settings import MAX_UNITS, DtSettings, LogregSettings, MlpSettings
from smp_balr.model.folds import check_classes, grouped_folds, validation_folds
from smp_balr.model.sampling import balanced_sample_weights, oversample_indices
from smp_balr.model.tree_search import search_tree

log = logging.getLogger(__name__)

# BA matrices stay in the dtype they come in (int8 from the tables); anything else becomes float64
_DTYPES = [np.float64, np.float32, np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_]


def as_model_input(X: np.ndarray) -> np.ndarray:
    """``X`` as scikit-learn's models read it without widening: float32 for integer or bool BAs.

    The models accept float32 and would otherwise make a float64 copy (twice the memory);
    0/1 (and any integer below 2**24) are exact in float32. Floating input is returned as is.
    """
    X = np.asarray(X)
    return X if X.dtype.kind == "f" else X.astype(np.float32)


class BAClassifier(ClassifierMixin, BaseEstimator):
    """Speaker-aware classifier of BA vectors (see the module docstring).

    Parameters
    ----------
    method : {"mlp", "dt", "logreg"}
        The model.
    balance : {0, 1, 2}
        0 none, 1 oversample every class to the largest, 2 balanced class weights.
    random_state : int
        Seed of every random step (oversampling, folds, model initialisation).
    mlp, dt, logreg : settings, optional
        :class:`~smp_balr.core.settings.MlpSettings`, :class:`~smp_balr.core.settings.DtSettings`,
        :class:`~smp_balr.core.settings.LogregSettings` (defaults when None).

    Examples
    --------
    A BA that follows the class within every speaker is found by the linear probe:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = rng.choice(["calm", "loud"], 400)
    >>> speakers = np.repeat([f"s{k}" for k in range(20)], 20)
    >>> X = pd.DataFrame({"BA0": (y == "loud").astype(np.int8),
    ...                   "BA1": rng.integers(0, 2, 400, dtype=np.int8)})
    >>> model = BAClassifier(method="logreg", random_state=0).fit(X, y, speakers)
    >>> model.classes_.tolist(), model.predict(X.iloc[:3]).tolist() == y[:3].tolist()
    (['calm', 'loud'], True)
    """

    def __init__(
        self,
        method: str = "mlp",
        balance: int = 0,
        random_state: int = 0,
        mlp: MlpSettings | None = None,
        dt: DtSettings | None = None,
        logreg: LogregSettings | None = None,
    ) -> None:
        self.method = method
        self.balance = balance
        self.random_state = random_state
        self.mlp = mlp
        self.dt = dt
        self.logreg = logreg

    # ------------------------------------------------------------------ fitting

    def fold_requirement(self) -> tuple[int, str]:
        """Speaker folds the fit needs, and the setting that sets them (for the error line)."""
        if self.method == "dt":
            return (self.dt or DtSettings()).cv_folds, "model.dt.cv_folds"
        if self.method == "logreg":
            return (self.logreg or LogregSettings()).cv_folds, "model.logreg.cv_folds"
        mlp = self.mlp or MlpSettings()
        if mlp.early_stopping:
            return (
                validation_folds(mlp.validation_fraction),
                "model.mlp.validation_fraction (raise it) or set model.mlp.early_stopping: 0",
            )
        return 1, "model.mlp"

    def fit(self, X: Any, y: Any, groups: Any = None) -> "BAClassifier":
        """Fit on rows ``X`` of classes ``y`` spoken by ``groups`` (one group per row if None).

        Raises
        ------
        ValueError
            ``method`` or ``balance`` is not one of the options.
        UserError
            The rows cannot fill the speaker folds the method needs.
        """
        self._check_options()
        X, y, groups = self._validated_fit_input(X, y, groups)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_  # the labels as given (strings in the pipeline)
        codes = encoder.transform(y)
        check_classes(np.asarray(y), groups, *self.fold_requirement())
        X, codes, groups, is_copy = self._oversampled(X, codes, groups)
        log.info(
            "fitting %s on %d rows x %d BAs, %d speakers (balance=%d)",
            self.method,
            *X.shape,
            np.unique(groups).size,
            self.balance,
        )
        self.model_, info = self._fit_method(X, codes, groups, is_copy)
        fitted = info.pop("fitted_class_counts", None)
        if fitted is None:
            fitted = dict(zip(*np.unique(codes, return_counts=True)))
        info["fitted_class_counts"] = {
            str(self.classes_[c]): int(n) for c, n in sorted(fitted.items())
        }
        self.fit_info_ = info
        return self

    def _check_options(self) -> None:
        """Refuse a ``method`` or ``balance`` that is not one of the options."""
        if self.method not in options.MODEL_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(options.MODEL_METHODS)}, got {self.method!r}"
            )
        if self.balance not in options.BALANCE:
            raise ValueError(f"balance must be one of {options.BALANCE}, got {self.balance!r}")

    def _validated_fit_input(
        self, X: Any, y: Any, groups: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``X``, ``y`` and ``groups`` checked and as arrays (sets ``n_features_in_`` and names)."""
        X = validate_data(self, X, dtype=_DTYPES, reset=True)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        groups = np.arange(len(y)).astype(str) if groups is None else np.asarray(groups).astype(str)
        if len(groups) != len(y):
            raise ValueError(f"groups has {len(groups)} entries for {len(y)} rows")
        return X, y, groups

    def _oversampled(
        self, X: np.ndarray, codes: np.ndarray, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """With ``balance=1``, the rows with their oversampled copies appended and a copy mask."""
        if self.balance != 1:
            return X, codes, groups, None
        extra = oversample_indices(codes, groups, self.random_state)
        log.info("oversampled %d extra rows", extra.size)
        X, codes, groups = (
            X[np.r_[np.arange(len(codes)), extra]],
            np.r_[codes, codes[extra]],
            np.r_[groups, groups[extra]],
        )
        is_copy = np.r_[
            np.zeros(len(codes) - extra.size, dtype=bool), np.ones(extra.size, dtype=bool)
        ]
        return X, codes, groups, is_copy

    def _fit_method(
        self, X: np.ndarray, codes: np.ndarray, groups: np.ndarray, is_copy: np.ndarray | None
    ) -> tuple[Any, dict[str, Any]]:
        """The fitted scikit-learn model of ``method`` and its fit information."""
        if self.method == "dt":
            return fit_dt(
                X, codes, groups, self.dt or DtSettings(), self.balance, self.random_state, is_copy
            )
        if self.method == "logreg":
            return fit_logreg(
                X,
                codes,
                groups,
                self.logreg or LogregSettings(),
                self.balance,
                self.random_state,
                is_copy,
            )
        return fit_mlp(
            X,
            codes,
            groups,
            self.mlp or MlpSettings(),
            self.balance,
            self.random_state,
            is_copy,
        )

    # ------------------------------------------------------------------ prediction

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=_DTYPES, reset=False)
        return self.model_.predict_proba(as_model_input(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (one of ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn's estimator tags
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


# ---------------------------------------------------------------------------- dt


def fit_dt(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    settings: DtSettings,
    balance: int,
    seed: int,
    is_copy: np.ndarray | None = None,
) -> tuple[DecisionTreeClassifier, dict[str, Any]]:
    """Search a decision tree's grid with speaker-grouped folds, refit the best on all rows.

    The search is :func:`smp_balr.model.tree_search.search_tree`.

    Parameters
    ----------
    X, y, groups : numpy.ndarray
        Features, integer classes, speakers.
    settings : DtSettings
        The grid, folds, scoring, parallel fits and search strategy.
    balance : int
        2 uses ``class_weight='balanced'``.
    seed : int
        Seed of the tree, the folds and the subsample.
    is_copy : numpy.ndarray of bool, optional
        Oversampled rows (kept out of validation folds).

    Returns
    -------
    (DecisionTreeClassifier, dict)
        The refitted best tree and ``{cv_score, cv_score_std, best_params, n_folds, search,
        curves}``; ``curves["cv_score"]`` holds every distinct grid point's mean CV score.
    """
    tree, found = search_tree(
        X,
        y,
        groups,
        settings.grid,
        settings.cv_folds,
        settings.scoring,
        seed,
        settings.n_jobs,
        settings.search,
        is_copy,
        "balanced" if balance == 2 else None,
        max_search_rows=settings.max_search_rows,
    )
    res = found["cv_results"]
    curve = [
        {"point": i + 1, **params, "cv_score_std": std, "cv_score": mean}
        for i, (params, mean, std) in enumerate(
            zip(res["params"], res["mean_test_score"], res["std_test_score"])
        )
    ]
    info = {k: found[k] for k in ("cv_score", "cv_score_std", "best_params", "n_folds")}
    info["search"] = {
        k: found[k] for k in ("strategy", "search_rows", "n_fits", "n_candidates", "n_grid")
    }
    info["curves"] = {"cv_score": curve}
    return tree, info


# ---------------------------------------------------------------------------- logreg


# lbfgs on this problem is dominated by small matrix products that a multi-threaded BLAS or
# OpenMP only slows (measured on the demo, 7807 rows x 500 BAs: 5.3 s per fit with 2 threads,
# 1.9 s with one), and two sweep workers would share the 2 cores anyway: one thread.
@threadpool_limits.wrap(limits=1)
def fit_logreg(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    settings: LogregSettings,
    balance: int,
    seed: int,
    is_copy: np.ndarray | None = None,
) -> tuple[LogisticRegression, dict[str, Any]]:
    """The linear probe: L2 logistic regression, ``C`` chosen by speaker-grouped CV.

    The search and the refit run on centred BAs in float32 (``X - mean``): the same optimum,
    since the penalty leaves the intercept free, reached in about a tenth of the lbfgs
    iterations that raw 0/1 columns need (13-31 instead of 175-274 on the demo). The
    returned model takes raw BAs: the centring is folded into its intercept.

    Returns
    -------
    (LogisticRegression, dict)
        The model refitted on all rows at the best ``C`` and ``{cv_score, cv_score_std,
        best_params, n_folds, curves}`` (``curves["cv_score"]``: every ``C`` with its score).
    """
    check_classes(y, groups, settings.cv_folds, "model.logreg.cv_folds")
    folds = grouped_folds(y, groups, settings.cv_folds, seed, is_copy)
    model = LogisticRegression(
        max_iter=settings.max_iter,
        class_weight="balanced" if balance == 2 else None,
        random_state=seed,
    )
    search = GridSearchCV(
        model, {"C": list(settings.C)}, scoring="balanced_accuracy", cv=folds, refit=True
    )
    log.info("logreg: C in %s by %d speaker-disjoint folds", list(settings.C), settings.cv_folds)
    mean = np.asarray(X).mean(axis=0, dtype=np.float64)
    centred = np.subtract(X, mean.astype(np.float32), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(centred, y)
    del centred
    best = search.best_index_
    model = search.best_estimator_
    model.intercept_ = model.intercept_.astype(np.float64) - model.coef_.astype(np.float64) @ mean
    curve = [
        {"point": i + 1, "C": float(c), "cv_score_std": float(s), "cv_score": float(m)}
        for i, (c, m, s) in enumerate(
            zip(
                settings.C,
                search.cv_results_["mean_test_score"],
                search.cv_results_["std_test_score"],
            )
        )
    ]
    info = {
        "cv_score": float(search.best_score_),
        "cv_score_std": float(search.cv_results_["std_test_score"][best]),
        "best_params": {"C": float(search.best_params_["C"])},
        "n_folds": settings.cv_folds,
        "curves": {"cv_score": curve},
    }
    return model, info


# ---------------------------------------------------------------------------- mlp


def build_mlp(n_features: int, settings: MlpSettings, seed: int) -> MLPClassifier:
    """The MLP of the original: hidden layers (n_features * hidden1_ratio, hidden2), Adam.

    Early stopping is not delegated to scikit-learn (whose hold-out mixes speakers);
    :func:`fit_mlp` runs it on held-out speakers.
    """
    first = max(1, int(round(n_features * settings.hidden1_ratio)))
    if first > MAX_UNITS:
        raise UserError(
            f"params.yaml: model.mlp.hidden1_ratio {settings.hidden1_ratio:g} x {n_features} "
            f"features gives a first hidden layer of {first:,} units, above the maximum of "
            f"{MAX_UNITS:,}; lower model.mlp.hidden1_ratio to at most {MAX_UNITS / n_features:.3g}"
        )
    return MLPClassifier(
        hidden_layer_sizes=(first, settings.hidden2),
        activation=settings.activation,
        solver="adam",
        alpha=settings.alpha,
        learning_rate_init=settings.learning_rate,
        batch_size=settings.batch_size,
        max_iter=settings.max_iter,
        shuffle=True,
        random_state=seed,
        early_stopping=False,
    )


#: whether fit_mlp shows a bar over its epochs (off in the study, which fits many models at once)
EPOCH_BAR = True


def batch_size(n_rows: int, settings: MlpSettings) -> int:
    """The minibatch size for ``n_rows`` training rows: ``batch_size``, grown so that an epoch
    takes at most ``max_steps_per_epoch`` optimiser steps (the cost of an epoch stays bounded).

    Examples
    --------
    >>> from smp_balr.core.settings import MlpSettings
    >>> batch_size(6_000, MlpSettings()), batch_size(675_000, MlpSettings())
    (32, 338)
    """
    return max(settings.batch_size, -(-n_rows // settings.max_steps_per_epoch))


_INTERRUPTED = (
    "Training interrupted by user"  # scikit-learn's warning when it swallows a KeyboardInterrupt
)


@contextmanager
def interrupts_propagate():
    """Let Ctrl-C end an MLP fit: scikit-learn's stochastic solvers catch ``KeyboardInterrupt``,
    cut the epoch short and only warn "Training interrupted by user"; inside this block that
    warning is an error, turned back into ``KeyboardInterrupt`` (the stage then exits 130
    without replacing an output)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_INTERRUPTED, category=UserWarning)
        try:
            yield
        except UserWarning as err:
            if _INTERRUPTED in str(err):
                raise KeyboardInterrupt() from None
            raise


# Minibatches of 32 rows make tiny matrix products, for which a multi-threaded BLAS only
# adds synchronisation (measured 7x slower per epoch on 2 busy cores): one BLAS thread.
@threadpool_limits.wrap(limits=1, user_api="blas")
def fit_mlp(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    settings: MlpSettings,
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
        n_valid_speakers, fitted_class_counts, curves}`` (validation keys only with early
        stopping; ``curves``: training loss and validation score per epoch).
    """
    classes = np.unique(y)
    model = build_mlp(X.shape[1], settings, seed)
    info: dict[str, Any] = {"hidden_layer_sizes": list(model.hidden_layer_sizes)}
    if not settings.early_stopping:
        return _fit_mlp_all_rows(model, X, y, groups, settings, balance, info)
    X_tr, y_tr, X_va, y_va, valid_groups = _held_out_speakers(X, y, groups, settings, seed, is_copy)
    info["fitted_class_counts"] = {
        int(c): int(n) for c, n in zip(*np.unique(y_tr, return_counts=True))
    }
    weights = balanced_sample_weights(y_tr) if balance == 2 else None
    model.set_params(batch_size=batch_size(len(y_tr), settings))
    info["batch_size"] = model.batch_size
    best_score, best_epoch, scores, losses = _train_epochs(
        model, X_tr, y_tr, X_va, y_va, weights, classes, settings
    )
    info.update(
        {
            "validation_score": best_score,
            "validation_scores": scores,
            "epochs": len(scores),
            "best_epoch": best_epoch,
            "n_valid_rows": int(y_va.size),
            "n_valid_speakers": int(np.unique(valid_groups).size),
            "curves": {
                "train_loss": [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(losses)],
                "valid_balanced_accuracy": [
                    {"epoch": i + 1, "valid_balanced_accuracy": v} for i, v in enumerate(scores)
                ],
            },
        }
    )
    return model, info


def _fit_mlp_all_rows(
    model: MLPClassifier,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    settings: MlpSettings,
    balance: int,
    info: dict[str, Any],
) -> tuple[MLPClassifier, dict[str, Any]]:
    """Without early stopping: ``max_iter`` epochs of scikit-learn's own fit on all rows."""
    check_classes(y, groups, 1, "model.mlp.validation_fraction")
    weights = balanced_sample_weights(y) if balance == 2 else None
    model.set_params(batch_size=batch_size(len(y), settings))
    with warnings.catch_warnings(), interrupts_propagate():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(as_model_input(X), y, sample_weight=weights)
    info["epochs"] = int(model.n_iter_)
    info["curves"] = {
        "train_loss": [
            {"epoch": i + 1, "train_loss": float(v)} for i, v in enumerate(model.loss_curve_)
        ]
    }
    return model, info


def _held_out_speakers(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    settings: MlpSettings,
    seed: int,
    is_copy: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation rows of early stopping, and the validation rows' speakers."""
    n_folds = validation_folds(settings.validation_fraction)
    check_classes(
        y,
        groups,
        n_folds,
        "model.mlp.validation_fraction (raise it) or set model.mlp.early_stopping: 0",
    )
    if is_copy is not None:
        # balance 1: the copies were made over all speakers; after holding out speakers the
        # rest would no longer be balanced, so oversample the training speakers afresh
        X, y, groups = X[~is_copy], y[~is_copy], groups[~is_copy]
    train_idx, valid_idx = grouped_folds(y, groups, n_folds, seed)[0]
    if is_copy is not None:
        train_idx = np.concatenate(
            [train_idx, train_idx[oversample_indices(y[train_idx], groups[train_idx], seed)]]
        )
    # float32 once (the MLP then trains in float32) instead of a float64 copy at every epoch
    return (
        as_model_input(X[train_idx]),
        y[train_idx],
        as_model_input(X[valid_idx]),
        y[valid_idx],
        groups[valid_idx],
    )


def _train_epochs(
    model: MLPClassifier,
    X_tr: np.ndarray,
    y_tr: np.ndarray,
    X_va: np.ndarray,
    y_va: np.ndarray,
    weights: np.ndarray | None,
    classes: np.ndarray,
    settings: MlpSettings,
) -> tuple[float, int, list[float], list[float]]:
    """Early-stopped epochs; keeps the best epoch's weights, returns its score and the curves."""
    best_score, best_epoch, best_state, stale, scores, losses = -np.inf, 0, None, 0, [], []
    bar = tqdm(
        range(1, settings.max_iter + 1),
        desc="mlp epochs",
        unit="epoch",
        leave=False,
        disable=not EPOCH_BAR,
    )
    for epoch in bar:
        with interrupts_propagate():
            model.partial_fit(X_tr, y_tr, sample_weight=weights, classes=classes)
        score = float(balanced_accuracy_score(y_va, model.predict(X_va)))
        scores.append(score)
        losses.append(float(model.loss_))
        bar.set_postfix(valid=f"{score:.3f}", refresh=False)
        if score > best_score + settings.tol:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = (copy.deepcopy(model.coefs_), copy.deepcopy(model.intercepts_))
        else:
            stale += 1
            if stale >= settings.n_iter_no_change:
                break
    bar.close()
    model.coefs_, model.intercepts_ = best_state
    return best_score, best_epoch, scores, losses


def settings_dict(model: BAClassifier) -> dict[str, Any]:
    """The settings of the fitted method as plain data (for the model's metadata)."""
    chosen = {
        "mlp": model.mlp or MlpSettings(),
        "dt": model.dt or DtSettings(),
        "logreg": model.logreg or LogregSettings(),
    }[model.method]
    return {
        k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v)
        for k, v in asdict(chosen).items()
    }
