"""Planted BA data with speaker confounding, for tests and benchmarks.

Every speaker has its own BA profile (a per-speaker logit for each BA) and its own,
skewed mix of classes, so BAs that only mark speakers correlate with the label across
utterances. Only the planted BAs depend on the class *within* a speaker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Planted:
    """A planted table and its truth.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``FileName, Speaker, <label>, BA0..BA<D-1>`` (BAs as int8).
    truth : list of str
        The planted BA names.
    """

    table: pd.DataFrame
    truth: list[str]


def make_planted(
    n_speakers: int = 60,
    per_speaker: int = 240,
    n_ba: int = 512,
    n_planted: int = 20,
    n_classes: int = 4,
    effect: float = 1.0,
    speaker_sd: float = 1.5,
    mix_alpha: float = 0.3,
    label: str = "Label",
    speaker_level: bool = False,
    seed: int = 0,
) -> Planted:
    """Simulate utterances of speakers with their own BA profiles and skewed class mixes.

    Parameters
    ----------
    n_speakers, per_speaker, n_ba : int
        Speakers, utterances per speaker, BAs.
    n_planted : int
        BAs whose activation depends on the class (the truth).
    n_classes : int
        Classes, named ``C0``, ``C1``, ...
    effect : float
        Size (logit scale) of a planted BA's class effect.
    speaker_sd : float
        Standard deviation of the per-speaker BA logits (speaker marking strength).
    mix_alpha : float
        Dirichlet concentration of each speaker's class mix (small = skewed).
    label : str
        Name of the label column.
    speaker_level : bool
        If True every speaker has one class (a label constant within speakers).
    seed : int
        Random seed.
    """
    rng = np.random.default_rng(seed)
    classes = np.array([f"C{k}" for k in range(n_classes)])
    planted = np.sort(rng.choice(n_ba, size=n_planted, replace=False))
    # class effects of the planted BAs: each planted BA moves with one or two classes
    eff = np.zeros((n_classes, n_ba))
    for j, d in enumerate(planted):
        k = j % n_classes
        eff[k, d] = effect if (j // n_classes) % 2 == 0 else -effect
        eff[(k + 1) % n_classes, d] = -0.5 * eff[k, d]
    spk_logit = rng.normal(0.0, speaker_sd, size=(n_speakers, n_ba))
    n = n_speakers * per_speaker
    speaker = np.repeat(np.arange(n_speakers), per_speaker)
    if speaker_level:
        spk_class = rng.integers(0, n_classes, size=n_speakers)
        spk_class[:n_classes] = np.arange(n_classes)[: min(n_classes, n_speakers)]
        cls = spk_class[speaker]
    else:
        mix = rng.dirichlet(np.full(n_classes, mix_alpha), size=n_speakers)
        mix = 0.97 * mix + 0.03 / n_classes
        cls = np.concatenate([rng.choice(n_classes, size=per_speaker, p=m) for m in mix])
    logit = spk_logit[speaker] + eff[cls]
    ba = (rng.random((n, n_ba)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    table = pd.DataFrame(ba, columns=[f"BA{d}" for d in range(n_ba)])
    table.insert(0, label, classes[cls])
    table.insert(0, "Speaker", [f"spk{s:03d}" for s in speaker])
    table.insert(0, "FileName", [f"utt{i:06d}" for i in range(n)])
    return Planted(table=table, truth=[f"BA{d}" for d in planted])
