"""The unit of analysis for BA selection, and what it costs in degrees of freedom.

BAs are speaker-specific and corpora spread speakers unevenly over classes, so a BA
that only marks some speakers correlates with the label across utterances. The unit
decides which variation the selection methods may use:

``within_speaker``
    every utterance; the class effect is tested given speaker (speaker dummies in the
    model, i.e. the partial test of class in ``BA ~ speaker + class``), so only variation
    inside speakers counts. Centring the BAs on speaker means alone is not enough when
    speakers' class mixes differ: the class indicators are centred within speaker too.
    The speaker means cost ``n_speakers - 1`` error degrees of freedom beyond the
    grand mean that the class effects already include.
``speaker``
    one row per speaker (per speaker and class when the label varies within a
    speaker): the mean activation of each BA. For labels constant within speakers.
``utterance``
    every row as it is (the original toolkit; confounded by speakers).
``auto``
    ``within_speaker`` when the label varies within speakers, else ``speaker``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from smp_balr.core import options
from smp_balr.core.errors import UserError

log = logging.getLogger(__name__)

UNITS = options.UNITS


@dataclass
class UnitData:
    """Rows prepared for selection.

    Attributes
    ----------
    X : numpy.ndarray
        BA matrix (rows, BAs): utterances for ``utterance`` and ``within_speaker`` (raw,
        in the dtype given, int8 from the table; see ``groups``), float cell means for ``speaker``.
    y : numpy.ndarray
        Class of each row (strings).
    unit : str
        The unit used (never ``auto``).
    reason : str
        Why this unit (for the log).
    absorbed_dof : int
        Error degrees of freedom used up by the unit (``n_speakers - 1`` for
        ``within_speaker``, else 0).
    n_speakers : int
        Speakers in the rows.
    groups : numpy.ndarray or None
        For ``within_speaker``: the speaker of each row; the class effect is taken given
        these groups (pass as ``groups`` to the selection methods).
    """

    X: np.ndarray
    y: np.ndarray
    unit: str
    reason: str
    absorbed_dof: int
    n_speakers: int
    groups: np.ndarray | None = None

    def matrix(self) -> np.ndarray:
        """The rows centred within speakers if the unit says so (``X`` as is otherwise).

        Centred rows alone do not give the class-given-speaker test (the class indicators
        must be centred within speaker as well); :func:`forward_stepwise` takes ``X`` and
        ``groups`` instead.
        """
        return self.X if self.groups is None else centre_within(self.X, self.groups)


def mixed_speakers(speakers: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """Count speakers whose rows hold more than one class.

    Returns
    -------
    (int, int)
        Speakers with at least two classes, and all speakers.
    """
    frame = pd.DataFrame({"s": speakers, "y": y})
    per = frame.groupby("s", sort=False)["y"].nunique()
    return int((per > 1).sum()), int(len(per))


def resolve_unit(unit: str, speakers: np.ndarray, y: np.ndarray) -> tuple[str, str]:
    """Turn ``unit`` (possibly ``auto``) into a concrete unit and the reason for it."""
    if unit not in UNITS:
        raise UserError(f"selection.unit is '{unit}'; use one of {', '.join(UNITS)} in params.yaml")
    n_mixed, n_spk = mixed_speakers(speakers, y)
    varies = f"the label varies within {n_mixed} of {n_spk} speakers"
    if unit != "auto":
        return unit, f"set in params ({varies})"
    if n_mixed > 0:
        return "within_speaker", f"auto: {varies}"
    return "speaker", f"auto: {varies}, so one row per speaker"


def centre_within(X: np.ndarray, groups: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Subtract from each row the mean of its group (column-wise), as float64.

    Parameters
    ----------
    X : numpy.ndarray
        (rows, BAs), any numeric dtype.
    groups : numpy.ndarray
        Group of each row.
    rows : numpy.ndarray of int, optional
        Return only these rows (group means still over all rows): a subsample costs
        ``len(rows)`` float64 rows of memory instead of the whole table.
    """
    codes, uniq = pd.factorize(pd.Series(groups), sort=False)
    n = len(codes)
    onehot = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(len(uniq), n))
    counts = np.bincount(codes, minlength=len(uniq)).astype(np.float64)
    means = np.asarray(onehot @ X) / counts[:, None]
    if rows is None:
        return X - means[codes]
    rows = np.asarray(rows)
    return X[rows] - means[codes[rows]]


def cell_means(X: np.ndarray, speakers: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean activation per (speaker, class) cell: one row per speaker for speaker-level labels."""
    keys = pd.MultiIndex.from_arrays([pd.Series(speakers).astype(str), pd.Series(y).astype(str)])
    codes, uniq = pd.factorize(keys, sort=True)
    n = len(codes)
    onehot = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(len(uniq), n))
    sums = np.asarray(onehot @ X)
    counts = np.bincount(codes, minlength=len(uniq)).astype(np.float64)
    cell_y = np.asarray([cls for _, cls in uniq], dtype=object)
    return sums / counts[:, None], cell_y


def prepare(X: np.ndarray, y: np.ndarray, speakers: np.ndarray, unit: str) -> UnitData:
    """Build the rows that the selection methods see.

    Parameters
    ----------
    X : numpy.ndarray
        BA matrix (utterances, BAs).
    y : numpy.ndarray
        Class per utterance.
    speakers : numpy.ndarray
        Speaker per utterance.
    unit : str
        One of :data:`UNITS`.

    Returns
    -------
    UnitData
    """
    y = np.asarray(y, dtype=object)
    speakers = np.asarray(speakers, dtype=object)
    chosen, reason = resolve_unit(unit, speakers, y)
    n_spk = int(pd.Series(speakers).nunique())
    if chosen == "within_speaker":
        data = UnitData(np.asarray(X), y, chosen, reason, max(n_spk - 1, 0), n_spk, speakers)
    elif chosen == "speaker":
        Xs, ys = cell_means(X, speakers, y)
        data = UnitData(Xs, ys, chosen, reason, 0, n_spk)
    else:
        data = UnitData(np.asarray(X), y, chosen, reason, 0, n_spk)
    log.info("unit %s (%s): %d rows, %d speakers", data.unit, data.reason, len(data.y), n_spk)
    return data
