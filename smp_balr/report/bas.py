"""Which BAs: agreement between selectors (Jaccard) and BAs that matter for more than one label."""

from __future__ import annotations

import itertools
import math
import re
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

_NUM = re.compile(r"(\d+)$")


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """|A ∩ B| / |A ∪ B| of two BA lists; NaN when both are empty."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return math.nan if not union else len(sa & sb) / len(union)


def agreement_matrix(selected: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Jaccard agreement between every pair of selectors (selector -> its BAs)."""
    names = list(selected)
    mat = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b in itertools.product(names, repeat=2):
        mat.loc[a, b] = jaccard(selected[a], selected[b])
    return mat


def ba_order(names: Sequence[str]) -> list[str]:
    """BA names in numeric order (BA2 before BA10)."""
    return sorted(
        set(names), key=lambda n: (int(_NUM.search(n).group(1)) if _NUM.search(n) else math.inf, n)
    )


def shared_bas(
    evidence: Mapping[str, Mapping[str, Sequence[str]]], min_labels: int = 2
) -> pd.DataFrame:
    """BA x label matrix of the BAs that matter for at least ``min_labels`` labels.

    Parameters
    ----------
    evidence : mapping
        Label -> source -> BAs, e.g. ``{"Modality": {"slda": [...], "shap": [...]}}``.
        A BA matters for a label when at least one source names it.
    min_labels : int
        Labels a BA must matter for to be kept.

    Returns
    -------
    pandas.DataFrame
        Rows BAs (numeric order), columns labels, values the number of sources naming the BA.
    """
    labels = list(evidence)
    counts: dict[str, dict[str, int]] = {}
    for label, sources in evidence.items():
        for bas in sources.values():
            for ba in set(bas):
                counts.setdefault(ba, {}).setdefault(label, 0)
                counts[ba][label] += 1
    keep = [ba for ba, per in counts.items() if len(per) >= min_labels]
    frame = pd.DataFrame(0, index=ba_order(keep), columns=labels, dtype=int)
    for ba in keep:
        for label, n in counts[ba].items():
            frame.loc[ba, label] = n
    return frame
