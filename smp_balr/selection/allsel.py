"""``all``: every BA that is not constant in the training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd


def all_features(X: np.ndarray, names: list[str]) -> pd.DataFrame:
    """BAs that take more than one value over the rows, with their activation rate.

    Returns
    -------
    pandas.DataFrame
        ``Feature, Rate`` (mean activation) in BA order.
    """
    X = np.asarray(X)  # any numeric dtype: max, min and mean need no float copy
    varying = X.max(axis=0) > X.min(axis=0) if len(X) else np.zeros(X.shape[1], dtype=bool)
    rate = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
    return pd.DataFrame(
        {"Feature": [n for n, v in zip(names, varying) if v], "Rate": rate[varying]}
    )
