"""The trained model file: a joblib dump of a fitted
:class:`~smp_balr.model.estimator.BAClassifier`.

A joblib file is a pickle, and unpickling runs code: load only model files that the
project's own ``train`` stage wrote (``models/model.joblib``), never one received from
someone else. BA files, which labs do exchange, are read without unpickling code
(see :mod:`smp_balr.data.bafiles`).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from smp_balr.core.errors import UserError
from smp_balr.core.outputs import atomic_path
from smp_balr.model.estimator import BAClassifier

# advice that works when followed: `-f` retrains even when DVC sees no change to the stage (a model
# of an older layout); a damaged file is restored from DVC's cache, which a damaged workspace
# file cannot have damaged since outputs are copies of it (.dvc/config cache.type)
_FIX = "retrain it with `dvc repro -f train`"


def _restore(path: str | Path) -> str:
    return f"restore it with `dvc checkout --force {path}`, or retrain it with `dvc repro -f train`"


def save_model(model: BAClassifier, path: str | Path) -> None:
    """Check that ``model`` is a fitted :class:`BAClassifier` with metadata; dump it atomically."""
    _check(model, path)
    with atomic_path(path) as tmp:
        joblib.dump(model, tmp)


def load_model(path: str | Path) -> BAClassifier:
    """Load the model written by the train stage.

    Parameters
    ----------
    path : str or Path
        Usually ``paths.MODEL_FILE``.

    Returns
    -------
    BAClassifier
        Fitted, with ``metadata_`` (label, feature method, training speakers, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found; run `dvc repro train` first")
    try:
        model = joblib.load(path)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise UserError(
            f"model file {path} cannot be read ({type(err).__name__}); {_restore(path)}"
        ) from None
    _check(model, path)
    return model


def _check(model: Any, path: str | Path) -> None:
    if not isinstance(model, BAClassifier):
        raise UserError(
            f"model file {path} does not hold a BAClassifier "
            f"(it holds {type(model).__name__}); {_FIX}"
        )
    try:
        check_is_fitted(model, "model_")
    except NotFittedError:
        raise UserError(f"model in {path} is not fitted; {_FIX}") from None
    if not hasattr(model, "feature_names_in_"):
        raise UserError(
            f"model in {path} has no BA names (it was fitted on an unnamed matrix); {_FIX}"
        )
    if not isinstance(getattr(model, "metadata_", None), dict) or "label" not in model.metadata_:
        raise UserError(f"model in {path} has no metadata (label, features, speakers); {_FIX}")


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
