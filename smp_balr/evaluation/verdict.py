"""The presence verdict of a table of labels: corrected across the labels, not the configurations.

The configuration of a label is chosen on training-side scores only, so the chosen
configuration's own test permutation p-value is already a valid p-value: the number of
configurations tried does not enter. A presence table claims its K labels at once, so the
p-values are corrected across the labels of the table (Holm by default, Benjamini-Hochberg
to screen many labels).

The permutation p-value floors at ``1 / (B + 1)``;
:func:`smp_balr.core.multitest.required_permutations` gives the ``B`` at which that floor
is well below the smallest Holm level ``alpha / K``, and
:func:`~smp_balr.core.multitest.check_permutations` refuses fewer.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Mapping

import numpy as np

from smp_balr.core import multitest
from smp_balr.core.errors import UserError

PRESENT = "present"
NOT_SHOWN = "not shown"
NO_RESULT = "no result"

#: corrections across the labels of a table
CORRECTIONS: tuple[str, ...] = ("holm", "fdr_bh")


_CORRECTION_TEXT = {
    "holm": "Holm-corrected across the {k} labels of this table (family-wise level {alpha:g})",
    "fdr_bh": (
        "Benjamini-Hochberg-corrected across the {k} labels of this table "
        "(false discovery rate {alpha:g})"
    ),
}

#: the rule, for the page (fill with :func:`rule_sentence`)
RULE = (
    "A label is present when the permutation p-value of its chosen configuration (chosen on "
    "training speakers only), {correction}, is at most {alpha:g} and the lower end of its 95% "
    "speaker-bootstrap interval of balanced accuracy lies above chance."
)


def _check(alpha: float, correction: str) -> None:
    if not 0 < alpha < 1:
        raise UserError(f"params.yaml: report.alpha must be between 0 and 1, got {alpha}")
    if correction not in CORRECTIONS:
        raise UserError(
            f"params.yaml: the correction across labels is '{correction}'; use one of "
            f"{', '.join(CORRECTIONS)}"
        )


def rule_sentence(alpha: float, n_labels: int, correction: str = "holm") -> str:
    """The verdict rule in one sentence, for the presence page.

    Examples
    --------
    >>> print(rule_sentence(0.05, 4))  # doctest: +NORMALIZE_WHITESPACE
    A label is present when the permutation p-value of its chosen configuration (chosen on
    training speakers only), Holm-corrected across the 4 labels of this table (family-wise
    level 0.05), is at most 0.05 and the lower end of its 95% speaker-bootstrap interval of
    balanced accuracy lies above chance.
    """
    _check(alpha, correction)
    return RULE.format(
        correction=_CORRECTION_TEXT[correction].format(k=n_labels, alpha=alpha), alpha=alpha
    )


def table_verdicts(
    p_values: Mapping[Hashable, float],
    ci_low: Mapping[Hashable, float],
    chance: Mapping[Hashable, float],
    alpha: float,
    correction: str = "holm",
) -> dict[Hashable, dict[str, Any]]:
    """The verdict of every label of a presence table.

    A label is ``present`` when its chosen configuration's own permutation p-value,
    corrected across the labels of the table, is at most ``alpha`` and its speaker
    interval's lower end is above chance; ``not shown`` otherwise; ``no result`` when it
    has no p-value (it still counts in the family, with p = 1: the table claims it).
    The number of configurations tried does not enter.

    Parameters
    ----------
    p_values : mapping
        Label -> permutation p-value of its chosen configuration (NaN or None: no result).
    ci_low : mapping
        Label -> lower end of its speaker-bootstrap interval of balanced accuracy.
    chance : mapping
        Label -> chance balanced accuracy (1 / number of test classes).
    alpha : float
        Level: family-wise error rate for ``holm``, false discovery rate for ``fdr_bh``.
    correction : str
        ``holm`` (default) or ``fdr_bh``.

    Returns
    -------
    dict
        Label -> ``{p_value, p_adjusted, above_chance, verdict}`` in the order of
        ``p_values``. The decision compares each ordered p-value with its own level
        (:func:`smp_balr.core.multitest.reject`), which equals ``p_adjusted <= alpha`` up to
        rounding.

    Examples
    --------
    >>> out = table_verdicts({"Gender": 0.001, "Language": 0.02, "Noise": 0.4},
    ...                      {"Gender": 0.9, "Language": 0.25, "Noise": 0.45},
    ...                      {"Gender": 0.5, "Language": 0.2, "Noise": 0.5}, alpha=0.05)
    >>> {k: (round(v["p_adjusted"], 3), v["verdict"]) for k, v in out.items()}
    {'Gender': (0.003, 'present'), 'Language': (0.04, 'present'), 'Noise': (0.4, 'not shown')}
    """
    _check(alpha, correction)
    labels = list(p_values)
    missing = [lab for lab in labels if lab not in ci_low or lab not in chance]
    if missing:
        raise ValueError(f"no interval or chance level for label(s) {missing}")
    p = np.array(
        [math.nan if p_values[lab] is None else float(p_values[lab]) for lab in labels], dtype=float
    )
    adjusted = multitest.adjust(p, correction)
    rejected, _ = multitest.reject(p, alpha, correction)
    out: dict[Hashable, dict[str, Any]] = {}
    for i, lab in enumerate(labels):
        low = ci_low[lab]
        above = low is not None and math.isfinite(float(low)) and float(low) > float(chance[lab])
        if math.isnan(p[i]):
            word = NO_RESULT
        else:
            word = PRESENT if bool(rejected[i]) and above else NOT_SHOWN
        out[lab] = {
            "p_value": float(p[i]),
            "p_adjusted": float(adjusted[i]),
            "above_chance": bool(above),
            "verdict": word,
        }
    return out
