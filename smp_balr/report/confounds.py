"""Label confounds (Cramér's V on utterances and on speakers), label level, speakers per class."""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

WITHIN = "varies within speakers"
SPEAKER_LEVEL = "speaker level"


def cramers_v(x: Sequence, y: Sequence) -> float:
    """Bias-corrected Cramér's V between two categorical variables (Bergsma's correction).

    Pairs with a missing value are dropped. Returns NaN when either variable has a single
    level or fewer than 2 pairs remain. Two identical labels give exactly 1; the
    correction keeps V near 0 for unrelated labels on few units (e.g. speakers).
    """
    frame = pd.DataFrame(
        {"x": pd.Series(x, dtype=object).to_numpy(), "y": pd.Series(y, dtype=object).to_numpy()}
    ).dropna()
    n = len(frame)
    if n < 2:
        return math.nan
    table = pd.crosstab(frame["x"], frame["y"]).to_numpy(dtype=float)
    r, k = table.shape
    if r < 2 or k < 2:
        return math.nan
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    phi2 = chi2 / n
    phi2_corr = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denom = min(k_corr - 1, r_corr - 1)
    if denom <= 0:
        return math.nan
    return float(min(1.0, math.sqrt(phi2_corr / denom)))


def speaker_values(
    df: pd.DataFrame, labels: Sequence[str], speaker: str = "Speaker"
) -> pd.DataFrame:
    """One row per speaker: the most frequent value of each label for it (ties: sorted first)."""
    out = {}
    for label in labels:
        sub = df[[speaker, label]].dropna()
        counts = sub.groupby([speaker, label], observed=True).size().reset_index(name="n")
        counts = counts.sort_values(
            [speaker, "n", label], ascending=[True, False, True], kind="stable"
        )
        out[label] = counts.drop_duplicates(speaker).set_index(speaker)[label]
    return pd.DataFrame(out)


def association_matrix(
    df: pd.DataFrame, labels: Sequence[str], unit: str = "utterance", speaker: str = "Speaker"
) -> pd.DataFrame:
    """Cramér's V between every pair of ``labels`` on utterances (rows) or on speakers.

    On speakers each speaker counts once with its most frequent value of each label: the
    unit that bounds conclusions about speaker-level labels.
    """
    if unit not in ("utterance", "speaker"):
        raise ValueError(f"unit must be 'utterance' or 'speaker', got {unit!r}")
    data = df[list(labels)] if unit == "utterance" else speaker_values(df, labels, speaker)
    mat = pd.DataFrame(np.eye(len(labels)), index=list(labels), columns=list(labels))
    for a, b in itertools.combinations(labels, 2):
        v = cramers_v(data[a], data[b])
        mat.loc[a, b] = mat.loc[b, a] = v
    return mat


def confound_pairs(matrices: Mapping[str, pd.DataFrame], threshold: float) -> list[dict]:
    """Label pairs whose V reaches ``threshold`` in any matrix (name -> matrix), strongest first."""
    found: dict[tuple[str, str], dict] = {}
    for where, mat in matrices.items():
        labels = list(mat.index)
        for a, b in itertools.combinations(labels, 2):
            v = mat.loc[a, b]
            if np.isfinite(v) and v >= threshold:
                key = (a, b)
                if key not in found or v > found[key]["v"]:
                    found[key] = {"a": a, "b": b, "v": float(v), "where": where}
    return sorted(found.values(), key=lambda d: -d["v"])


def label_level(df: pd.DataFrame, label: str, speaker: str = "Speaker") -> str:
    """``varies within speakers`` if a speaker has two label values, else ``speaker level``."""
    n = df[[speaker, label]].dropna().groupby(speaker)[label].nunique()
    return WITHIN if bool((n > 1).any()) else SPEAKER_LEVEL


def class_speakers(
    train: pd.DataFrame,
    test: pd.DataFrame,
    label: str,
    classes: Sequence[str] | None = None,
    speaker: str = "Speaker",
) -> pd.DataFrame:
    """Per class of ``label``: distinct training and test speakers and rows.

    Parameters
    ----------
    train, test : pandas.DataFrame
        Rows with ``speaker`` and ``label`` columns.
    classes : sequence of str, optional
        The classes kept by the class filter; all non-empty values when None.
    """
    seen = set(train[label].dropna()) | set(test[label].dropna())
    keep = [c for c in (classes if classes is not None else sorted(map(str, seen)))]
    rows = []
    for cls in keep:
        tr, te = train[train[label] == cls], test[test[label] == cls]
        rows.append(
            {
                "class": cls,
                "train_speakers": int(tr[speaker].nunique()),
                "test_speakers": int(te[speaker].nunique()),
                "train_rows": len(tr),
                "test_rows": len(te),
            }
        )
    return pd.DataFrame(
        rows, columns=["class", "train_speakers", "test_speakers", "train_rows", "test_rows"]
    )


def few_speaker_classes(counts: pd.DataFrame, minimum: int) -> list[str]:
    """Classes with fewer than ``minimum`` distinct training or test speakers."""
    low = counts[(counts["train_speakers"] < minimum) | (counts["test_speakers"] < minimum)]
    return low["class"].tolist()
