"""Row selection before training: the speakers filter, oversampling and class weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_sample_weight

log = logging.getLogger(__name__)

COPY_COLUMN = "_oversampled"


@dataclass(frozen=True)
class SpeakerFilterInfo:
    """What the speakers filter kept.

    Attributes
    ----------
    rows_before, rows_kept, speakers_before, speakers_kept : int
        Counts before and after filtering.
    """

    rows_before: int
    rows_kept: int
    speakers_before: int
    speakers_kept: int

    @property
    def rows_percent(self) -> float:
        """Percentage of rows kept."""
        return 100.0 * self.rows_kept / self.rows_before if self.rows_before else 0.0

    @property
    def speakers_percent(self) -> float:
        """Percentage of speakers kept."""
        return 100.0 * self.speakers_kept / self.speakers_before if self.speakers_before else 0.0


def filter_speakers(
    df: pd.DataFrame, label: str, speaker_col: str = "Speaker"
) -> tuple[pd.DataFrame, SpeakerFilterInfo]:
    """Keep the speakers that have at least one row of every class present in ``df``.

    The classes are those of ``df`` as given, i.e. after the class filter (the
    original toolkit counted classes on the unfiltered data).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows after class filtering, with ``label`` and ``speaker_col`` columns.
    label : str
        Class column.
    speaker_col : str
        Speaker column.

    Returns
    -------
    (pandas.DataFrame, SpeakerFilterInfo)
        The kept rows (original order, index reset) and the counts.
    """
    n_classes = df[label].nunique()
    per_speaker = df.groupby(speaker_col, sort=False)[label].nunique()
    keep = per_speaker.index[per_speaker == n_classes]
    out = df.loc[df[speaker_col].isin(keep).to_numpy()].reset_index(drop=True)
    info = SpeakerFilterInfo(
        rows_before=len(df),
        rows_kept=len(out),
        speakers_before=int(per_speaker.size),
        speakers_kept=int(len(keep)),
    )
    return out, info


def apportion(total: int, shares: np.ndarray) -> np.ndarray:
    """Split the integer ``total`` proportionally to ``shares`` (largest remainder method).

    Remainder ties go to the earlier position, so the result is deterministic.
    """
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    rest = total - counts.sum()
    if rest:
        # ties broken by position so the result is deterministic
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def oversample_indices(y: np.ndarray, speakers: np.ndarray, seed: int) -> np.ndarray:
    """Positions of the extra rows that bring every class to the size of the largest.

    For a class of ``n_c`` rows short of ``n_max``, the ``n_max - n_c`` extra rows are
    apportioned to the speakers of that class in proportion to their share of the
    class (largest-remainder rounding, so the total is exact). A speaker owed ``e``
    extra rows from its ``m`` rows gets ``e // m`` full copies of its rows plus
    ``e % m`` rows drawn without replacement, so no row is copied more than once
    more than another row of the same speaker.

    Parameters
    ----------
    y, speakers : numpy.ndarray
        Class and speaker of each row.
    seed : int
        Seed of the draws; the same seed gives the same rows.

    Returns
    -------
    numpy.ndarray of int
        Row positions to append (a row may appear several times).
    """
    y, speakers = np.asarray(y), np.asarray(speakers)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n_max = int(counts.max())
    positions = np.arange(len(y))
    extra_idx: list[np.ndarray] = [np.empty(0, dtype=int)]
    for cls, n_c in zip(classes, counts):
        short = n_max - int(n_c)
        if short == 0:
            continue
        rows = positions[y == cls]
        names, inverse, sizes = np.unique(speakers[rows], return_inverse=True, return_counts=True)
        owed = apportion(short, sizes.astype(float))
        for s in range(len(names)):
            if owed[s] == 0:
                continue
            own = rows[inverse == s]
            full, part = divmod(int(owed[s]), own.size)
            picks = [np.tile(own, full)] if full else []
            if part:
                picks.append(rng.choice(own, size=part, replace=False))
            extra_idx.append(np.concatenate(picks))
    return np.concatenate(extra_idx)


def oversample(
    df: pd.DataFrame, label: str, seed: int, speaker_col: str = "Speaker"
) -> pd.DataFrame:
    """Oversample every class to exactly the size of the largest (see :func:`oversample_indices`).

    Parameters
    ----------
    df : pandas.DataFrame
        Training rows with ``label`` and ``speaker_col``.
    label : str
        Class column.
    seed : int
        Seed of the draws; the same seed gives the same rows.
    speaker_col : str
        Speaker column.

    Returns
    -------
    pandas.DataFrame
        The original rows (in order) followed by the extra rows, index reset, with a
        boolean column ``_oversampled`` marking the extra rows.
    """
    extra = oversample_indices(df[label].to_numpy(), df[speaker_col].to_numpy(), seed)
    out = df.copy()
    out[COPY_COLUMN] = False
    copies = df.iloc[extra].copy()
    copies[COPY_COLUMN] = True
    return pd.concat([out, copies], ignore_index=True)


def balanced_sample_weights(y: np.ndarray) -> np.ndarray:
    """Per-row weights ``n / (K * n_class)`` ('balanced' class weights as sample weights)."""
    return compute_sample_weight("balanced", np.asarray(y))


def stratified_sample(labels: Sequence[str], n_samples: int, seed: int) -> np.ndarray:
    """Positions of ``n_samples`` rows drawn reproducibly and stratified by class.

    Each class gets a share proportional to its size (:func:`apportion` over the classes in
    name order); rows within a class are drawn without replacement. When there are no
    more rows than ``n_samples``, every row is returned and this is logged.

    Parameters
    ----------
    labels : sequence of str
        Class of each row.
    n_samples : int
        Rows wanted (>= 1).
    seed : int
        Random seed.

    Returns
    -------
    numpy.ndarray
        Sorted row positions.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    labels = np.asarray([str(v) for v in labels])
    n = len(labels)
    if n <= n_samples:
        log.info("%d rows, %d wanted: taking all of them", n, n_samples)
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    alloc = apportion(n_samples, counts.astype(float))
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=a, replace=False)
        for c, a in zip(classes, alloc)
    ]
    return np.sort(np.concatenate(picked))
