"""Effect sizes comparable across labels: chance-normalised balanced accuracy, mutual information.

Balanced accuracy against chance (0.369 against 0.200, 0.950 against 0.500) does not
compare across labels with different numbers of classes. Two scales that do:

- ``(BA - chance) / (1 - chance)``: 0 at chance, 1 for perfect predictions;
- the mutual information between prediction and truth in bits, read from the confusion
  matrix, minus its mean under the speaker-aware permutation null of
  :func:`smp_balr.evaluation.scores.permutation_pvalue` (the plug-in estimate is biased upwards,
  more so when predictions cluster by speaker; the null mean is that bias for a model
  with no signal: a control baseline), also as a share of the label's entropy.

Both come with 95% speaker-bootstrap intervals drawn as in
:func:`smp_balr.evaluation.scores.bootstrap_speakers` (same seed: same replicates).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterator, Sequence

import numpy as np

from smp_balr.evaluation.scores import (
    _codes,
    _shuffled_rows,
    _shuffled_speakers,
    _shuffled_within,
    balanced_accuracy_from_counts,
    permutation_scheme,
    speaker_draws,
)


def normalised_ba(balanced_accuracy: float | np.ndarray, chance: float) -> float | np.ndarray:
    """Chance-normalised balanced accuracy ``(BA - chance) / (1 - chance)``.

    Examples
    --------
    >>> round(normalised_ba(0.369, 0.2), 5), round(normalised_ba(0.95, 0.5), 5)
    (0.21125, 0.9)
    """
    if not chance < 1:
        return np.nan * np.asarray(balanced_accuracy) if np.ndim(balanced_accuracy) else math.nan
    out = (np.asarray(balanced_accuracy, dtype=float) - chance) / (1.0 - chance)
    return float(out) if out.ndim == 0 else out


def entropy_bits(counts: np.ndarray) -> np.ndarray | float:
    """Entropy in bits of the distribution given by ``counts`` along the last axis.

    Examples
    --------
    >>> entropy_bits(np.array([5, 5])), entropy_bits(np.array([2, 2, 4, 0]))
    (1.0, 1.5)
    """
    c = np.asarray(counts, dtype=float)
    n = c.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = c / n
        terms = np.where(c > 0, -q * np.log2(np.where(c > 0, q, 1.0)), 0.0)
    out = terms.sum(axis=-1)
    return float(out) if out.ndim == 0 else out


def mutual_information(confusion: np.ndarray) -> np.ndarray | float:
    """Plug-in mutual information in bits between the row and column variables of counts.

    Parameters
    ----------
    confusion : numpy.ndarray, shape (..., K, K)
        Counts, rows = true class, columns = predicted class (any leading shape).

    Returns
    -------
    float or numpy.ndarray, shape (...)
        ``sum_ij p_ij log2(p_ij / (p_i. p_.j))``; 0 for an empty matrix.

    Examples
    --------
    >>> mutual_information(np.array([[5, 0], [0, 5]]))
    1.0
    >>> mutual_information(np.array([[3, 3], [2, 2]]))
    0.0
    """
    c = np.asarray(confusion, dtype=float)
    n = c.sum(axis=(-2, -1), keepdims=True)
    rows = c.sum(axis=-1, keepdims=True)
    cols = c.sum(axis=-2, keepdims=True)
    hit = c > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hit, c * n / (rows * cols), 1.0)
        terms = np.where(hit, c * np.log2(ratio), 0.0)
        out = terms.sum(axis=(-2, -1)) / np.maximum(n[..., 0, 0], 1.0)
    out = np.maximum(out, 0.0)  # rounding below 0 for independent counts
    return float(out) if out.ndim == 0 else out


#: permuted labels of the last test set, reused by the next call with the same rows, speakers,
#: seed and size (every configuration of a label scores the same test rows: the shuffles,
#: most of the cost, are drawn once); at most this many cells are kept
_CACHE_CELLS = 50_000_000
_cache: dict[str, Any] = {"key": None, "chunks": []}


def _shuffles(
    y_true: np.ndarray,
    spk: np.ndarray | None,
    scheme: str,
    n_permutations: int,
    seed: int,
    chunk: int,
) -> Iterator[np.ndarray]:
    """Row-level permuted labels, chunk by chunk, in the random stream of ``permutation_pvalue``."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (y_true, spk if spk is not None else np.empty(0)):
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
        digest.update(b"|")
    key = (digest.hexdigest(), scheme, int(n_permutations), int(seed), int(chunk))
    if _cache["key"] == key:
        yield from _cache["chunks"]
        return
    keep = n_permutations * y_true.size <= _CACHE_CELLS
    chunks = []
    rng = np.random.default_rng(seed)
    for start in range(0, n_permutations, chunk):
        m = min(start + chunk, n_permutations) - start
        shuffled = (
            _shuffled_within(y_true, spk, m, rng)
            if scheme == "within_speakers"
            else _shuffled_rows(y_true, m, rng)
        )
        if keep:
            chunks.append(shuffled.astype(np.int16 if y_true.max() < 2**15 else np.int64))
        yield shuffled
    if keep:
        _cache.update(key=key, chunks=chunks)


def null_confusions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    k: int,
    speakers: Sequence | None,
    n_permutations: int,
    seed: int,
    chunk: int = 200,
    scheme: str | None = None,
) -> Iterator[np.ndarray]:
    """Confusion matrices of the permuted labels, chunk by chunk.

    The permutations are those of :func:`smp_balr.evaluation.scores.permutation_pvalue` with the
    same ``seed``, ``chunk`` and scheme (its shuffling helpers, consumed in the same
    order), so the balanced accuracies of these matrices are its null distribution. The
    row-level shuffles of the last test set are kept and reused when the next call has the
    same labels, speakers, seed and size (the configurations of one label).

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray of int
        Integer-coded classes ``0..k-1``.
    k : int
        Number of classes.
    speakers : sequence or None
        Speaker of each row (None: rows exchangeable).
    n_permutations, seed, chunk : int
        As in :func:`~smp_balr.evaluation.scores.permutation_pvalue`.
    scheme : str, optional
        Forced scheme; by default :func:`~smp_balr.evaluation.scores.permutation_scheme`.

    Yields
    ------
    numpy.ndarray, shape (m, k, k)
        Counts (true permuted, predicted) of ``m <= chunk`` permutations.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if scheme is None:
        scheme = permutation_scheme(y_true, speakers)
    if speakers is not None:
        _, spk = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
        n_spk = int(spk.max()) + 1
    if scheme == "between_speakers":
        spk_label = np.zeros(n_spk, dtype=np.int64)
        spk_label[spk] = y_true
        spk_pred = np.zeros((n_spk, k))
        np.add.at(spk_pred, (spk, y_pred), 1)
    if scheme != "between_speakers":
        for shuffled in _shuffles(
            y_true, spk if speakers is not None else None, scheme, n_permutations, seed, chunk
        ):
            m = shuffled.shape[0]
            bins = ((np.arange(m)[:, None] * k + shuffled) * k + y_pred[None, :]).ravel()
            yield np.bincount(bins, minlength=m * k * k).reshape(m, k, k).astype(float)
        return
    rng = np.random.default_rng(seed)
    classes = np.arange(k)
    for start in range(0, n_permutations, chunk):
        m = min(start + chunk, n_permutations) - start
        lab = spk_label[_shuffled_speakers(n_spk, m, rng)]  # (m, S): label received by speaker s
        bins = ((np.arange(m)[:, None] * k + lab)[:, :, None] * k + classes[None, None, :]).ravel()
        weights = np.broadcast_to(spk_pred[None, :, :], (m, n_spk, k)).ravel()
        yield np.bincount(bins, weights=weights, minlength=m * k * k).reshape(m, k, k).astype(float)


def _interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite ``values`` (NaNs when there is none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [a, 1.0 - a])
    return float(low), float(high)


def effect_sizes(
    y_true: Sequence,
    y_pred: Sequence,
    classes: Sequence[str],
    speakers: Sequence,
    n_permutations: int,
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """Chance-normalised balanced accuracy and bias-corrected mutual information, with intervals.

    Parameters
    ----------
    y_true, y_pred : sequence of str
        True and predicted classes; every value must be in ``classes``.
    classes : sequence of str
        The model's classes.
    speakers : sequence of str
        Speaker of each test row.
    n_permutations : int
        Permutations of the null of the mutual information (the scheme and, with the same
        seed, the very permutations of :func:`smp_balr.evaluation.scores.evaluate`).
    n_bootstrap : int
        Speaker-bootstrap replicates (with the same seed, the replicates of
        :func:`smp_balr.evaluation.scores.bootstrap_speakers`).
    seed : int
        Seed of both.

    Returns
    -------
    dict
        JSON-ready floats, but ``scheme`` (str) and the two counts (int):

        ``balanced_accuracy``, ``chance`` (1 / classes in the test set);
        ``ba_norm``, ``ba_norm_ci_low``, ``ba_norm_ci_high``: ``(BA - chance) / (1 - chance)``
        and the speaker-bootstrap percentile interval (the BA interval, rescaled);
        ``mi_bits``: plug-in mutual information minus ``mi_null_mean``, its mean over the
        permutations (can be slightly negative when there is no signal);
        ``mi_bits_raw``, ``mi_null_mean``, ``mi_p_value`` (permutation p of the plug-in MI);
        ``mi_bits_ci_low``, ``mi_bits_ci_high``: bias-centred percentile interval (each
        replicate's plug-in MI minus the replicates' mean excess over ``mi_bits_raw`` and
        minus ``mi_null_mean``);
        ``entropy_bits``: entropy of the true label on the test rows;
        ``mi_share``, ``mi_share_ci_low``, ``mi_share_ci_high``: ``mi_bits / entropy_bits``
        (replicates divided by their own entropy);
        ``scheme``, ``n_permutations``, ``n_bootstrap``.

    Examples
    --------
    >>> y = ["a", "a", "b", "b"] * 10
    >>> spk = [f"s{i // 4}" for i in range(40)]  # every speaker has both classes
    >>> out = effect_sizes(y, y, ["a", "b"], spk, n_permutations=200, n_bootstrap=200, seed=0)
    >>> out["ba_norm"], out["mi_bits_raw"], out["entropy_bits"], out["scheme"]
    (1.0, 1.0, 1.0, 'within_speakers')
    """
    classes = [str(c) for c in classes]
    t, p = _codes(y_true, y_pred, classes)
    k = len(classes)
    spk_names = np.asarray(speakers, dtype=str)
    _, spk = np.unique(spk_names, return_inverse=True)
    n_spk = int(spk.max()) + 1
    scheme = permutation_scheme(t, spk_names)

    observed = np.zeros((k, k))
    np.add.at(observed, (t, p), 1)
    total = observed.sum(axis=1)
    chance = 1.0 / int(np.count_nonzero(total))
    ba = float(balanced_accuracy_from_counts(np.diag(observed), total))
    mi_raw = float(mutual_information(observed))
    entropy = float(entropy_bits(total))

    null = np.concatenate(
        [
            np.atleast_1d(mutual_information(c))
            for c in null_confusions(t, p, k, spk_names, n_permutations, seed, scheme=scheme)
        ]
    )
    null_mean = float(null.mean())
    mi = mi_raw - null_mean
    mi_p = float((1.0 + np.count_nonzero(null >= mi_raw - 1e-12)) / (1.0 + n_permutations))

    ba_ci, mi_ci, share_ci = _bootstrap_intervals(
        t, p, k, spk, n_spk, n_bootstrap, seed, chance, mi_raw, null_mean
    )
    return {
        "balanced_accuracy": ba,
        "chance": chance,
        "ba_norm": float(normalised_ba(ba, chance)),
        "ba_norm_ci_low": ba_ci[0],
        "ba_norm_ci_high": ba_ci[1],
        "mi_bits": mi,
        "mi_bits_ci_low": mi_ci[0],
        "mi_bits_ci_high": mi_ci[1],
        "mi_bits_raw": mi_raw,
        "mi_null_mean": null_mean,
        "mi_p_value": mi_p,
        "entropy_bits": entropy,
        "mi_share": mi / entropy if entropy > 0 else math.nan,
        "mi_share_ci_low": share_ci[0],
        "mi_share_ci_high": share_ci[1],
        "scheme": scheme,
        "n_permutations": int(n_permutations),
        "n_bootstrap": int(n_bootstrap),
    }


def _bootstrap_intervals(
    t: np.ndarray,
    p: np.ndarray,
    k: int,
    spk: np.ndarray,
    n_spk: int,
    n_bootstrap: int,
    seed: int,
    chance: float,
    mi_raw: float,
    null_mean: float,
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """Speaker-bootstrap intervals of the normalised BA, the corrected MI and its share."""
    per_speaker = np.zeros((n_spk, k * k))
    np.add.at(per_speaker, (spk, t * k + p), 1)
    draws = speaker_draws(n_spk, n_bootstrap, np.random.default_rng(seed))
    boot = (draws @ per_speaker).reshape(n_bootstrap, k, k)
    boot_total = boot.sum(axis=2)
    ba_norm_boot = normalised_ba(
        balanced_accuracy_from_counts(np.diagonal(boot, axis1=1, axis2=2), boot_total), chance
    )
    mi_boot_raw = mutual_information(boot)
    mi_boot = mi_boot_raw - (mi_boot_raw.mean() - mi_raw) - null_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        share_boot = mi_boot / entropy_bits(boot_total)
    return (
        _interval(np.asarray(ba_norm_boot, dtype=float)),
        _interval(mi_boot),
        _interval(share_boot),
    )
