"""Presence of a label beyond another, associated label: balanced accuracy within its strata.

When two labels are associated (e.g. Language and vocal range aliased in a test split), a
model can score on one through the other. The test here asks whether the predictions
carry the label *within* the strata of the other label: in every stratum (rows sharing a
value of the other label) the balanced accuracy of the predictions is taken against
chance, the strata are averaged, and the labels are permuted within strata only,
keeping the speaker structure (within each speaker when the label varies within
speakers, else between the speakers of the stratum). A model that only knows the other
label predicts the same thing for all rows of a stratum and gets p = 1.

A stratum counts when at least two classes of the label have ``min_speakers`` distinct
test speakers in it; when none does, the label "cannot be separated" from the other in
this corpus.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from smp_balr.evaluation.scores import _shuffled_within, balanced_accuracy_from_counts
from smp_balr.report.confounds import association_matrix

PRESENT_BEYOND = "present beyond"
NOT_SHOWN_BEYOND = "not shown beyond"
CANNOT_SEPARATE = "cannot be separated"


def _usable_rows(
    y: np.ndarray, other: np.ndarray, spk: np.ndarray, min_speakers: int
) -> tuple[np.ndarray, dict]:
    """Rows of the strata that can be tested, restricted to their classes with enough speakers."""
    frame = pd.DataFrame({"y": y, "o": other, "s": spk})
    n_spk = frame.groupby(["o", "y"], sort=True)["s"].nunique()
    keep = np.zeros(len(frame), dtype=bool)
    strata: dict[str, dict[str, Any]] = {}
    for value, per_class in n_spk.groupby(level="o", sort=True):
        classes = sorted(
            per_class.index.get_level_values("y")[per_class.to_numpy() >= min_speakers]
        )
        rows = (other == value) & np.isin(y, classes)
        used = len(classes) >= 2
        strata[str(value)] = {
            "classes": [str(c) for c in classes],
            "used": used,
            "n_rows": int(rows.sum()) if used else 0,
            "n_speakers": int(frame.loc[rows, "s"].nunique()) if used else 0,
        }
        if used:
            keep |= rows
    return keep, strata


def _statistic(
    correct: np.ndarray, total: np.ndarray, chance: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Weighted mean over strata of ``(BA_s - chance_s) / (1 - chance_s)``; counts (..., S, K)."""
    ba = balanced_accuracy_from_counts(correct, total)
    return ((ba - chance) / (1.0 - chance) * weight).sum(axis=-1)


def presence_beyond(
    y_true: Sequence,
    y_pred: Sequence,
    other: Sequence,
    speakers: Sequence,
    n_permutations: int,
    seed: int,
    min_speakers: int = 2,
    alpha: float = 0.05,
    chunk: int = 200,
) -> dict[str, Any]:
    """Whether predictions carry a label beyond another label: balanced accuracy within its strata.

    Parameters
    ----------
    y_true, y_pred : sequence
        True and predicted class of each test row (of the label tested).
    other : sequence
        The other label on the same rows (missing values: rows left out).
    speakers : sequence
        Speaker of each row.
    n_permutations : int
        Permutations of the labels within strata.
    seed : int
        Seed of the permutations.
    min_speakers : int
        Distinct test speakers a class needs in a stratum to count there.
    alpha : float
        Level of the verdict (not corrected for the number of pairs tested).
    chunk : int
        Permutations evaluated at once.

    Returns
    -------
    dict
        ``verdict`` (``present beyond``, ``not shown beyond``, ``cannot be separated``),
        ``p_value`` (NaN when it cannot be separated), ``statistic`` (row-weighted mean
        over the used strata of ``(BA_s - 1/k_s) / (1 - 1/k_s)``, k_s the stratum's
        classes), ``null_mean``, ``n_strata``, ``n_strata_used``, ``n_rows_used``,
        ``scheme`` (``within_speakers``: labels shuffled among the rows of each speaker
        in each stratum; ``between_speakers``: the speakers of a stratum exchange labels),
        ``strata`` (value -> classes, used, n_rows, n_speakers, balanced_accuracy).

    Examples
    --------
    >>> spk = [f"s{i}" for i in range(8) for _ in range(4)]
    >>> gender = ["f"] * 16 + ["m"] * 16
    >>> out = presence_beyond(gender, gender, gender, spk, 200, seed=0)
    >>> out["verdict"], out["n_strata_used"]
    ('cannot be separated', 0)
    """
    y, pred, oth, spk = _beyond_arrays(y_true, y_pred, other, speakers)
    keep, strata = _usable_rows(y, oth, spk, min_speakers)
    out: dict[str, Any] = {
        "n_strata": len(strata),
        "n_strata_used": int(sum(s["used"] for s in strata.values())),
        "n_rows_used": int(keep.sum()),
        "strata": strata,
        "min_speakers": int(min_speakers),
    }
    if not keep.any():
        out.update(
            verdict=CANNOT_SEPARATE,
            p_value=math.nan,
            statistic=math.nan,
            null_mean=math.nan,
            scheme=None,
        )
        return out
    codes = _strata_codes(y[keep], pred[keep], oth[keep], spk[keep], strata)
    obs_correct, obs_total = _stratum_counts(codes, codes.t[None, :])
    observed = float(_statistic(obs_correct, obs_total, codes.chance, codes.weight)[0])
    null = _null_statistics(codes, n_permutations, seed, chunk)
    p_value = float((1.0 + np.count_nonzero(null >= observed - 1e-12)) / (1.0 + n_permutations))
    ba = balanced_accuracy_from_counts(obs_correct[0], obs_total[0])
    for j, v in enumerate(codes.values):
        strata[str(v)]["balanced_accuracy"] = float(ba[j])
    out.update(
        verdict=PRESENT_BEYOND if p_value <= alpha else NOT_SHOWN_BEYOND,
        p_value=p_value,
        statistic=observed,
        null_mean=float(null.mean()),
        scheme="within_speakers" if codes.within else "between_speakers",
    )
    return out


def _beyond_arrays(
    y_true: Sequence, y_pred: Sequence, other: Sequence, speakers: Sequence
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions, other label and speakers as strings, rows with a missing one dropped."""
    frame = pd.DataFrame(
        {
            "y": pd.Series(list(y_true), dtype=object),
            "p": pd.Series(list(y_pred), dtype=object),
            "o": pd.Series(list(other), dtype=object),
            "s": pd.Series(list(speakers), dtype=object),
        }
    )
    frame = frame.dropna(subset=["y", "o", "s"]).astype(str)
    y, pred, oth, spk = (frame[c].to_numpy() for c in ("y", "p", "o", "s"))
    return y, pred, oth, spk


@dataclass
class _StrataCodes:
    """The tested rows as integer codes: classes, strata, (stratum, speaker) cells, weights."""

    t: np.ndarray  # true class of each row
    p: np.ndarray  # predicted class of each row
    k: int  # classes
    values: np.ndarray  # the other label's values, one stratum each
    stratum: np.ndarray  # stratum of each row
    cell: np.ndarray  # (stratum, speaker) cell of each row
    within: bool  # the label varies within some cell: labels shuffled inside the cells
    cell_label: np.ndarray | None  # between cells: the label of each cell
    cell_stratum: np.ndarray | None  # between cells: the stratum of each cell
    chance: np.ndarray  # chance level of each stratum, 1 / its classes
    weight: np.ndarray  # share of the rows in each stratum

    @property
    def n_str(self) -> int:
        """Number of strata."""
        return len(self.values)


def _strata_codes(
    y: np.ndarray, pred: np.ndarray, oth: np.ndarray, spk: np.ndarray, strata: dict
) -> _StrataCodes:
    """Integer codes of the usable rows, and the permutation scheme they allow."""
    classes = sorted(set(y) | set(pred))
    lookup = {c: i for i, c in enumerate(classes)}
    t = np.array([lookup[v] for v in y])
    p = np.array([lookup[v] for v in pred])
    values, stratum = np.unique(oth, return_inverse=True)
    k, n_str = len(classes), len(values)
    _, cell = np.unique(
        np.char.add(np.char.add(oth.astype(str), "\x1f"), spk.astype(str)), return_inverse=True
    )
    within = bool(pd.Series(t).groupby(cell).nunique().gt(1).any())
    cell_label = cell_stratum = None
    if not within:  # speaker-level label in every stratum: (stratum, speaker) cells exchange labels
        n_cell = int(cell.max()) + 1
        cell_label = np.zeros(n_cell, dtype=np.int64)
        cell_label[cell] = t
        cell_stratum = np.zeros(n_cell, dtype=np.int64)
        cell_stratum[cell] = stratum
    n_class = np.array([len(strata[str(v)]["classes"]) for v in values], dtype=float)
    chance = 1.0 / n_class
    weight = np.bincount(stratum, minlength=n_str) / t.size
    return _StrataCodes(
        t, p, k, values, stratum, cell, within, cell_label, cell_stratum, chance, weight
    )


def _stratum_counts(codes: _StrataCodes, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct and total rows per (labelling, stratum, class) of labellings ``labels`` (m, n)."""
    m, n_str, k = labels.shape[0], codes.n_str, codes.k
    bins = (np.arange(m)[:, None] * n_str + codes.stratum[None, :]) * k + labels
    total = np.bincount(bins.ravel(), minlength=m * n_str * k).reshape(m, n_str, k)
    correct = np.bincount(bins[labels == codes.p[None, :]], minlength=m * n_str * k).reshape(
        m, n_str, k
    )
    return correct, total


def _null_statistics(codes: _StrataCodes, n_permutations: int, seed: int, chunk: int) -> np.ndarray:
    """The statistic of ``n_permutations`` labellings permuted within strata, ``chunk`` at once."""
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for start in range(0, n_permutations, chunk):
        m = min(start + chunk, n_permutations) - start
        if codes.within:
            shuffled = _shuffled_within(codes.t, codes.cell, m, rng)
        else:
            shuffled = _shuffled_within(codes.cell_label, codes.cell_stratum, m, rng)[:, codes.cell]
        null[start : start + m] = _statistic(
            *_stratum_counts(codes, shuffled), codes.chance, codes.weight
        )
    return null


def beyond_entries(
    y_true: Sequence,
    y_pred: Sequence,
    others: Mapping[str, Sequence],
    speakers: Sequence,
    n_permutations: int,
    seed: int,
    min_speakers: int = 2,
    alpha: float = 0.05,
) -> dict[str, dict[str, Any]]:
    """The ``beyond`` entry of a label's metrics: per other label, its verdict and p-value.

    Parameters
    ----------
    others : mapping
        Other label name -> its values on the test rows.
    (the rest as in :func:`presence_beyond`)

    Returns
    -------
    dict
        Other label -> ``{verdict, p_value, statistic, n_strata_used, scheme}``.
    """
    out = {}
    for name, values in others.items():
        r = presence_beyond(
            y_true, y_pred, values, speakers, n_permutations, seed, min_speakers, alpha
        )
        out[name] = {
            key: r[key] for key in ("verdict", "p_value", "statistic", "n_strata_used", "scheme")
        }
    return out


def associated_pairs(
    frame: pd.DataFrame, labels: Sequence[str], v_min: float = 0.3, speaker: str = "Speaker"
) -> list[dict[str, Any]]:
    """Pairs of labels associated at Cramér's V >= ``v_min`` on utterances or on speakers.

    Uses :func:`smp_balr.report.confounds.association_matrix` (bias-corrected V).

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows with the ``labels`` columns and ``speaker``.
    labels : sequence of str
        Labels of the table.
    v_min : float
        Level of V (either unit) from which a pair is tested for presence beyond.
    speaker : str
        Speaker column.

    Returns
    -------
    list of dict
        ``{a, b, v_utterance, v_speaker, v}`` (``v`` the larger of the two), strongest
        first; each pair once (test a beyond b and b beyond a).

    Examples
    --------
    >>> df = pd.DataFrame({"Speaker": [f"s{i}" for i in range(12)],
    ...                    "Gender": ["f", "m"] * 6, "Range": ["high", "low"] * 6,
    ...                    "Noise": list("xxyyxxyyxyxy")})
    >>> pairs = associated_pairs(df, ["Gender", "Range", "Noise"])
    >>> [(d["a"], d["b"], round(d["v"], 2)) for d in pairs]
    [('Gender', 'Range', 1.0)]
    """
    mats = {
        unit: association_matrix(frame, labels, unit, speaker) for unit in ("utterance", "speaker")
    }
    found = []
    for a, b in itertools.combinations(labels, 2):
        vu, vs = float(mats["utterance"].loc[a, b]), float(mats["speaker"].loc[a, b])
        finite = [v for v in (vu, vs) if math.isfinite(v)]
        if finite and max(finite) >= v_min:
            found.append({"a": a, "b": b, "v_utterance": vu, "v_speaker": vs, "v": max(finite)})
    return sorted(found, key=lambda d: -d["v"])
