"""Per-BA association with a label: which BAs are active more (or less) often in one class.

The selectors (slda, bayes) answer a *joint* question: which BAs are still needed given the
others. With correlated BAs (BA-LR's attributes are thresholded outputs of one low-rank
embedding) the credit spreads over many BAs and few pass. This module answers the
*marginal* question, BA by BA and class by class (one class against the rest; for two
classes the second class's rows mirror the first's and share its test):

``within_speaker`` (labels that vary within speakers)
    The statistic is the Cochran-Mantel-Haenszel sum over speakers
    ``T = sum_s (active rows of class c in s - n_sc * mean_s)``, the sum of the BA over the
    rows of the class after the speaker's own frequency is removed, standardised by its
    exact variance under permutation of the labels within speakers:
    ``z = T / sqrt(sum_s n_sc (n_s - n_sc) / (n_s - 1) * v_s)`` (``v_s`` the BA's variance
    in speaker s). A BA that only marks speakers has ``T = 0`` whatever the speakers'
    class mixes. ``effect`` is the Mantel-Haenszel risk difference, the weighted mean of
    each speaker's own difference ``f_sc - f_s,rest`` with weights
    ``n_sc (n_s - n_sc) / n_s`` (it equals ``T / sum_s n_sc (n_s - n_sc) / n_s``);
    ``same_sign`` is the share of speakers holding both sides whose own difference has
    the sign of ``effect``. Permutations shuffle the labels within speakers.
``speaker`` (labels constant within speakers)
    One row per speaker (per speaker and class cell when the unit is forced on a label that
    varies): the BA's frequency in the speaker's utterances. The statistic is Welch's t of
    the speaker frequencies of the class against the other speakers; ``effect`` is the
    difference of the mean speaker frequencies. Permutations shuffle the labels over
    speakers. ``same_sign`` is not defined (NaN): a speaker holds one class.
``utterance``
    Every row as it is, one stratum (confounded by speakers; no guarantee).

Error control over the family of tests (every BA, and every class when there are more than
two; ``correction``):

``maxt`` (default)
    family-wise, Westfall-Young step-down max-|statistic| permutation: the adjusted p of
    the k-th largest ``|z|`` is the share of permutations whose largest ``|z|`` over the
    tests not yet rejected reaches it (plus one, over ``permutations + 1``), made monotone.
    Exact under exchangeability of the labels (within speakers, or over speakers) whatever
    the correlation between BAs, and it uses that correlation: on correlated BAs it is less
    strict than Bonferroni.
``fdr_bh``
    false discovery rate, Benjamini-Hochberg over the textbook p-values (normal for
    ``z``, Welch's t for speakers); for screening.

``p`` is always the textbook two-sided p-value of the test (normal for the CMH ``z``,
Welch-Satterthwaite t for speakers); ``p_adjusted`` is what ``correction`` makes of it.
Intervals are percentile intervals of a speaker bootstrap (speakers resampled with
replacement; within each class for speaker-level labels).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats
from threadpoolctl import threadpool_limits

from smp_balr.core.errors import UserError
from smp_balr.core.options import ASSOCIATION_CORRECTIONS
from smp_balr.selection.multiple import bh_adjusted
from smp_balr.selection.units import mixed_speakers, resolve_unit

log = logging.getLogger(__name__)

#: columns of the association table, in order (the first ten are the contract of the CSV)
COLUMNS = [
    "BA",
    "class",
    "freq_class",
    "freq_rest",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "p_adjusted",
    "associated",
    "versus",
    "freq_class_low",
    "freq_class_high",
    "freq_rest_low",
    "freq_rest_high",
    "same_sign",
    "statistic",
    "unit",
    "correction",
    "alpha",
]
PROFILE_COLUMNS = [
    "BA",
    "frequency",
    "typicality",
    "dropout",
    "n_speakers_having",
    "dead",
    "constant",
]
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass
class AssociationResult:
    """Outcome of :func:`associate`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per BA and class (:data:`COLUMNS`).
    info : dict
        Unit and why, correction, level, permutations, bootstrap, rows, speakers, tests,
        and counts of associated tests and BAs (the stage's JSON).
    """

    table: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _codes(values: np.ndarray, sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
    codes, uniq = pd.factorize(pd.Series(np.asarray(values, dtype=object)).astype(str), sort=sort)
    return codes.astype(np.int64), np.asarray(uniq, dtype=object)


def _cell_sums(
    X: np.ndarray, cell: np.ndarray, n_cells: int, rows: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Column sums of ``X`` per cell code and the cell sizes (``rows`` rows at a time, no copy)."""
    n = len(cell)
    sums = np.zeros((n_cells, X.shape[1]))
    for a in range(0, n, rows):
        e = min(a + rows, n)
        onehot = sparse.csr_matrix(
            (np.ones(e - a, dtype=np.float32), (cell[a:e], np.arange(e - a))),
            shape=(n_cells, e - a),
        )
        sums += np.asarray(onehot @ np.asarray(X[a:e], dtype=np.float32), dtype=np.float64)
    return sums, np.bincount(cell, minlength=n_cells).astype(np.float64)


class _Shuffler:
    """Permutations of class codes within strata (or over all rows), in the strata's row order.

    The rows are put in stratum order once (``order``); each permutation then shuffles the
    codes of every stratum in place (Fisher-Yates, no sort), so ``X[order]`` and the
    permuted codes line up without scattering them back.
    """

    def __init__(self, codes: np.ndarray, strata: np.ndarray | None) -> None:
        n = len(codes)
        if strata is None:
            self.order = np.arange(n)
            self.bounds = [(0, n)]
        else:
            self.order = np.argsort(strata, kind="stable")
            edges = np.flatnonzero(np.diff(strata[self.order])) + 1
            starts = np.r_[0, edges]
            ends = np.r_[edges, n]
            self.bounds = [(int(a), int(b)) for a, b in zip(starts, ends) if b - a > 1]
        self.codes = codes[self.order]

    def draw(self, b: int, rng: np.random.Generator) -> np.ndarray:
        """``b`` permutations: shape (b, n), rows in ``order``."""
        out = np.tile(self.codes, (b, 1))
        for a, e in self.bounds:
            block = out[:, a:e]
            out[:, a:e] = rng.permuted(block, axis=1)
        return out


def _indicators(perm: np.ndarray, tested: int) -> np.ndarray:
    """(b * tested, n) float32 indicators of classes 0..tested-1 for each permuted row set."""
    b, n = perm.shape
    return (
        (perm[:, None, :] == np.arange(tested)[None, :, None])
        .reshape(b * tested, n)
        .astype(np.float32)
    )


def _family_adjust(
    stat: np.ndarray, null: np.ndarray | None, p: np.ndarray, correction: str
) -> np.ndarray:
    """Adjusted p-values of the family: Westfall-Young step-down maxT, or BH."""
    if correction == "fdr_bh":
        return bh_adjusted(p)
    B = null.shape[0]
    order = np.argsort(-stat, kind="stable")
    # u[:, k]: largest null statistic over the tests ranked k and below (not yet rejected)
    u = np.maximum.accumulate(null[:, order][:, ::-1], axis=1)[:, ::-1]
    obs = stat[order]
    exceed = (u >= obs[None, :] * (1.0 - 1e-9) - 1e-12).sum(axis=0)
    adj_sorted = np.maximum.accumulate((1.0 + exceed) / (B + 1.0))
    out = np.empty_like(adj_sorted)
    out[order] = np.minimum(adj_sorted, 1.0)
    return out


def _percentiles(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2.5% and 97.5% of bootstrap draws (rows), ignoring draws without the class (NaN)."""
    if draws.shape[0] == 0:
        nan = np.full(draws.shape[1:], np.nan)
        return nan, nan
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    return low, high


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _within(X, codes, K, tested, spk, n_spk, strata, permutations, bootstrap, need_null, rng):
    """Statistics of the stratified (CMH) test; see the module docstring."""
    S, cnt = _cell_sums(X, spk * K + codes, n_spk * K)
    S = S.reshape(n_spk, K, -1)  # per speaker and class: active rows
    N = cnt.reshape(n_spk, K)
    out: dict[str, np.ndarray] = {}
    tot_S, tot_N = S.sum(axis=0), N.sum(axis=0)  # per class
    all_S, all_N = tot_S.sum(axis=0), tot_N.sum()
    out["freq_class"] = tot_S[:tested] / tot_N[:tested, None]
    out["freq_rest"] = (all_S[None, :] - tot_S[:tested]) / (all_N - tot_N[:tested, None])
    cmh = _cmh(S, N, tested, strata is None)
    wsum = cmh.w_g.sum(axis=0)
    out["effect"] = _ratio(cmh.T, wsum[:, None])
    out["statistic"] = cmh.z
    out["p"] = np.where(cmh.sd > 1e-12, 2.0 * stats.norm.sf(np.abs(cmh.z)), 1.0)
    out["same_sign"] = _same_sign(S, N, tested, out["effect"])
    if need_null:
        out["null"] = _within_null(X, codes, strata, tested, cmh, all_S, permutations, rng)
    if bootstrap > 0:
        out.update(_within_bootstrap(S, N, tested, cmh, strata is None, bootstrap, rng))
    return out


@dataclass
class _CMH:
    """Per-stratum parts of the CMH statistic, reused by its permutation null and bootstrap."""

    nc: np.ndarray  # (G, tested): rows of each tested class per stratum
    mean_g: np.ndarray  # (G, p): the BA's frequency per stratum
    T_g: np.ndarray  # (G, tested, p): active rows of the class less their expectation
    w_g: np.ndarray  # (G, tested): Mantel-Haenszel weights
    T: np.ndarray  # (tested, p): the CMH sum
    sd: np.ndarray  # (tested, p): its sd under permutation within strata
    z: np.ndarray  # (tested, p): T / sd


def _cmh(S: np.ndarray, N: np.ndarray, tested: int, one_stratum: bool) -> _CMH:
    """The CMH sum, its exact permutation sd and z, over speakers or one stratum."""
    # strata: speakers (within_speaker) or one stratum (utterance)
    if one_stratum:
        gS, gN = S.sum(axis=0, keepdims=True), N.sum(axis=0, keepdims=True)
        binary_sq = gS  # BAs are 0/1: the sum of squares is the sum
    else:
        gS, gN = S, N
        binary_sq = gS
    n_g = gN.sum(axis=1)  # rows per stratum
    s_g = gS.sum(axis=1)  # active rows per stratum (G, p)
    mean_g = s_g / np.maximum(n_g, 1.0)[:, None]
    var_g = binary_sq.sum(axis=1) / np.maximum(n_g, 1.0)[:, None] - mean_g**2
    var_g = np.maximum(var_g, 0.0)
    nc = gN[:, :tested]  # (G, tested)
    T_g = gS[:, :tested, :] - nc[:, :, None] * mean_g[:, None, :]  # (G, tested, p)
    T = T_g.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hyper = np.where(n_g[:, None] > 1, nc * (n_g[:, None] - nc) / (n_g[:, None] - 1.0), 0.0)
    V = np.einsum("gt,gj->tj", hyper, var_g)
    sd = np.sqrt(V)
    z = np.where(sd > 1e-12, T / np.where(sd > 1e-12, sd, 1.0), 0.0)
    w_g = np.where(
        n_g[:, None] > 0, nc * (n_g[:, None] - nc) / np.maximum(n_g, 1.0)[:, None], 0.0
    )  # (G, tested)
    return _CMH(nc, mean_g, T_g, w_g, T, sd, z)


def _same_sign(S: np.ndarray, N: np.ndarray, tested: int, effect: np.ndarray) -> np.ndarray:
    """Share of speakers holding both sides whose own difference has the sign of the effect."""
    rest_N = N.sum(axis=1, keepdims=True) - N
    both = (N[:, :tested] > 0) & (rest_N[:, :tested] > 0)
    d_s = _ratio(S[:, :tested, :], N[:, :tested, None]) - _ratio(
        S.sum(axis=1, keepdims=True) - S[:, :tested, :], rest_N[:, :tested, None]
    )
    sign = np.sign(effect)[None]
    agree = (np.sign(np.nan_to_num(d_s)) == sign) & (sign != 0) & both[:, :, None]
    return _ratio(
        agree.sum(axis=0).astype(np.float64), both.sum(axis=0)[:, None].astype(np.float64)
    )


def _within_null(X, codes, strata, tested, cmh, all_S, permutations, rng) -> np.ndarray:
    """Permutation null of ``|z|`` (labels shuffled within strata): (permutations, tests)."""
    fixed = (cmh.nc[:, :, None] * cmh.mean_g[:, None, :]).sum(axis=0)  # (tested, p): fixed
    sd = cmh.sd
    shuffler = _Shuffler(codes, strata)
    # rows in stratum order, float32 (exact for 0/1): the one float copy of the matrix
    Xo = (
        X
        if strata is None and X.dtype == np.float32
        else np.asarray(X[shuffler.order], dtype=np.float32)
    )
    null = np.empty((permutations, tested * X.shape[1]))
    chunk = 64 if tested == 1 else 32
    for start in range(0, permutations, chunk):
        b = min(start + chunk, permutations) - start
        sums = _permuted_class_sums(Xo, shuffler.draw(b, rng), tested, all_S)
        zb = np.where(
            sd[None] > 1e-12, (sums - fixed[None]) / np.where(sd > 1e-12, sd, 1.0)[None], 0.0
        )
        null[start : start + b] = np.abs(zb).reshape(b, -1)
    return null


def _permuted_class_sums(
    Xo: np.ndarray, perm: np.ndarray, tested: int, all_S: np.ndarray
) -> np.ndarray:
    """Active rows of each tested class under each permutation: (b, tested, p)."""
    b = perm.shape[0]
    if tested == 1:
        return (_indicators(perm, 1) @ Xo).astype(np.float64).reshape(b, 1, -1)
    # the last class's sums are the total less the others': K - 1 products
    part = (_indicators(perm, tested - 1) @ Xo).astype(np.float64).reshape(b, tested - 1, -1)
    return np.concatenate([part, (all_S[None, :] - part.sum(axis=1))[:, None, :]], axis=1)


def _within_bootstrap(S, N, tested, cmh, one_stratum, bootstrap, rng) -> dict[str, np.ndarray]:
    """Speaker-bootstrap intervals of the class and rest frequencies and of the effect."""
    n_spk = len(S)
    W = rng.multinomial(n_spk, np.full(n_spk, 1.0 / n_spk), size=bootstrap).astype(
        np.float64
    )  # (B, speakers)
    Sb = np.einsum("bs,skj->bkj", W, S)  # (B, K, p)
    Nb = W @ N  # (B, K)
    allSb, allNb = Sb.sum(axis=1), Nb.sum(axis=1)
    fc = _ratio(Sb[:, :tested], Nb[:, :tested, None])
    fr = _ratio(allSb[:, None, :] - Sb[:, :tested], (allNb[:, None] - Nb[:, :tested])[:, :, None])
    if one_stratum:
        eff = fc - fr
    else:
        Tb = np.einsum("bs,stj->btj", W, cmh.T_g)
        eff = _ratio(Tb, (W @ cmh.w_g)[:, :, None])
    return _intervals(fc, fr, eff)


def _intervals(fc: np.ndarray, fr: np.ndarray, eff: np.ndarray) -> dict[str, np.ndarray]:
    """The ``*_low`` and ``*_high`` columns from bootstrap frequencies and effects."""
    out: dict[str, np.ndarray] = {}
    for name, draws in (("freq_class", fc), ("freq_rest", fr), ("effect", eff)):
        out[f"{name}_low"], out[f"{name}_high"] = _percentiles(draws)
    return out


def _welch(ind: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, ...]:
    """Means of the rows in ``ind`` (r, n; 0/1) and of the rest, Welch's t and df: (r, p) each."""
    n = ind.shape[1]
    n1 = ind.sum(axis=1)[:, None]
    n0 = n - n1
    s1 = ind @ F
    q1 = ind @ (F * F)
    tot, totq = F.sum(axis=0)[None], (F * F).sum(axis=0)[None]
    m1, m0 = s1 / np.maximum(n1, 1), (tot - s1) / np.maximum(n0, 1)
    v1 = np.maximum(q1 - n1 * m1**2, 0.0) / np.maximum(n1 - 1, 1)
    v0 = np.maximum(totq - q1 - n0 * m0**2, 0.0) / np.maximum(n0 - 1, 1)
    se2 = v1 / np.maximum(n1, 1) + v0 / np.maximum(n0, 1)
    se = np.sqrt(se2)
    ok = se > 1e-12
    t = np.where(ok, (m1 - m0) / np.where(ok, se, 1.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = se2**2 / (
            (v1 / np.maximum(n1, 1)) ** 2 / np.maximum(n1 - 1, 1)
            + (v0 / np.maximum(n0, 1)) ** 2 / np.maximum(n0 - 1, 1)
        )
    return m1, m0, t, np.where(ok & np.isfinite(df), df, 1.0)


def _speaker(F, cell_codes, K, tested, permutations, bootstrap, need_null, rng):
    """Statistics of the speaker-level test (Welch's t over speakers); see the module docstring."""
    out: dict[str, np.ndarray] = {}
    ind = (cell_codes[None, :] == np.arange(tested)[:, None]).astype(np.float64)
    m1, m0, t, df = _welch(ind, F)
    out["freq_class"], out["freq_rest"], out["effect"], out["statistic"] = m1, m0, m1 - m0, t
    out["p"] = np.where(t != 0, 2.0 * stats.t.sf(np.abs(t), df), 1.0)
    out["same_sign"] = np.full(t.shape, np.nan)
    if need_null:
        out["null"] = _speaker_null(F, cell_codes, tested, permutations, rng)
    if bootstrap > 0:
        out.update(_speaker_bootstrap(F, cell_codes, K, tested, bootstrap, rng))
    return out


def _speaker_null(F, cell_codes, tested, permutations, rng) -> np.ndarray:
    """Permutation null of ``|t|`` (labels shuffled over speakers): (permutations, tests)."""
    n = len(cell_codes)
    null = np.empty((permutations, tested * F.shape[1]))
    for start in range(0, permutations, 256):
        b = min(start + 256, permutations) - start
        perm = _Shuffler(cell_codes, None).draw(b, rng)
        ind_b = (
            (perm[:, None, :] == np.arange(tested)[None, :, None])
            .reshape(b * tested, n)
            .astype(np.float64)
        )
        null[start : start + b] = np.abs(_welch(ind_b, F)[2]).reshape(b, -1)
    return null


def _speaker_bootstrap(F, cell_codes, K, tested, bootstrap, rng) -> dict[str, np.ndarray]:
    """Intervals from speakers resampled within each class."""
    n = len(cell_codes)
    # speakers resampled within each class: W[b, i] = times cell i is drawn
    W = np.zeros((bootstrap, n))
    for c in range(K):
        members = np.flatnonzero(cell_codes == c)
        if members.size:
            W[:, members] = rng.multinomial(
                members.size, np.full(members.size, 1.0 / members.size), size=bootstrap
            )
    sums = W @ F  # per draw, over all classes; class parts below
    fc = np.empty((bootstrap, tested, F.shape[1]))
    fr = np.empty_like(fc)
    for c in range(tested):
        inc = cell_codes == c
        sc = W[:, inc] @ F[inc]
        n1 = float(inc.sum())
        fc[:, c] = sc / max(n1, 1.0)
        fr[:, c] = (sums - sc) / max(n - n1, 1.0)
    return _intervals(fc, fr, fc - fr)


@threadpool_limits.wrap(
    limits=1, user_api="blas"
)  # the permutation products: one BLAS thread is several times faster on a shared machine
def associate(
    X: np.ndarray,
    y: np.ndarray,
    speakers: np.ndarray,
    names: list[str] | None = None,
    unit: str = "auto",
    correction: str = "maxt",
    permutations: int = 499,
    bootstrap: int = 499,
    alpha: float = 0.05,
    seed: int = 0,
) -> AssociationResult:
    """Test every BA for a marginal association with the label, class by class.

    Parameters
    ----------
    X : numpy.ndarray
        BA matrix (utterances, BAs), 0/1 (int8 from the table).
    y : numpy.ndarray
        Class of each utterance (at least 2 classes).
    speakers : numpy.ndarray
        Speaker of each utterance.
    names : list of str, optional
        BA names (default ``BA0, BA1, ...``).
    unit : str
        ``auto``, ``within_speaker``, ``speaker`` or ``utterance``, as for selection
        (:func:`smp_balr.selection.units.resolve_unit`).
    correction : str
        ``maxt`` (family-wise, Westfall-Young step-down) or ``fdr_bh``.
    permutations : int
        Label permutations of the maxT null (not used by ``fdr_bh``).
    bootstrap : int
        Speaker resamples of the 95% intervals (0: no intervals, NaN).
    alpha : float
        Level of ``associated`` (``p_adjusted <= alpha``).
    seed : int
        Seed of the permutations and the bootstrap.

    Returns
    -------
    AssociationResult

    Examples
    --------
    A BA that is on in the class W utterances of every speaker, and one that only marks
    half of the speakers:

    >>> rng = np.random.default_rng(0)
    >>> spk = np.repeat(np.arange(10), 20)
    >>> y = np.tile(np.r_[np.full(10, "N"), np.full(10, "W")], 10)
    >>> X = np.column_stack([(y == "W") & (rng.random(200) < 0.9), spk < 5]).astype(np.int8)
    >>> res = associate(X, y, spk, names=["BA0", "BA1"], permutations=99, bootstrap=99)
    >>> res.info["unit"]
    'within_speaker'
    >>> res.table.loc[res.table["class"] == "W", ["BA", "associated"]].to_dict("records")
    [{'BA': 'BA0', 'associated': True}, {'BA': 'BA1', 'associated': False}]
    """
    _check_settings(correction, alpha, permutations)
    need_null = correction == "maxt"
    d = _design(X, y, speakers, names, unit)
    rng = np.random.default_rng(seed)
    res, scheme = _statistics(d, speakers, y, permutations, bootstrap, need_null, rng)
    stat = np.abs(res["statistic"]).ravel()
    p = res["p"].ravel()
    p_adj = _family_adjust(stat, res.get("null"), p, correction).reshape(res["p"].shape)
    table = _table(res, p_adj, d.names, d.classes, d.tested, d.unit, correction, alpha)
    n_tests = int(stat.size)
    assoc = table[table["associated"]]
    info = {
        "unit": d.unit,
        "unit_reason": d.reason,
        "correction": correction,
        "alpha": alpha,
        "permutations": int(permutations) if need_null else 0,
        "permutation_scheme": scheme if need_null else None,
        "bootstrap": int(bootstrap),
        "n_rows": int(len(y)),
        "n_speakers": int(d.n_spk),
        "n_classes": int(d.K),
        "classes": [str(c) for c in d.classes],
        "n_ba": int(d.X.shape[1]),
        "n_tests": n_tests,
        "n_associated_tests": int(np.sum(p_adj <= alpha)),
        "n_associated_bas": int(assoc["BA"].nunique()),
        "associated_per_class": {str(c): int((assoc["class"] == c).sum()) for c in d.classes},
        "min_p_adjusted": float(np.min(p_adj)) if p_adj.size else None,
    }
    log.info(
        "association (%s, %s): %d of %d BAs associated (%s at %.3g, %d tests)",
        d.unit,
        d.reason,
        info["n_associated_bas"],
        d.X.shape[1],
        correction,
        alpha,
        n_tests,
    )
    return AssociationResult(table, info)


def _check_settings(correction: str, alpha: float, permutations: int) -> None:
    """One clear error line for a correction, level or number of permutations that cannot work."""
    if correction not in ASSOCIATION_CORRECTIONS:
        raise UserError(
            f"association.correction is '{correction}'; use one of "
            f"{', '.join(ASSOCIATION_CORRECTIONS)} in params.yaml"
        )
    if not 0.0 < alpha < 1.0:
        raise UserError(f"association.alpha is {alpha}; use a level in (0, 1) in params.yaml")
    if correction == "maxt" and (permutations + 1) * alpha < 1.0:
        raise UserError(
            f"association.permutations ({permutations}) is too few for alpha {alpha}: the smallest "
            f"adjusted p would be {1.0 / (permutations + 1):.3g}; use at least "
            f"{int(np.ceil(1.0 / alpha)) - 1} in params.yaml"
        )


@dataclass
class _Design:
    """The checked, coded inputs of one analysis and its unit."""

    X: np.ndarray
    names: list[str]
    codes: np.ndarray
    classes: np.ndarray
    K: int
    spk: np.ndarray
    n_spk: int
    unit: str
    reason: str
    tested: int


def _design(X, y, speakers, names, unit) -> _Design:
    """Check the shapes and classes, code classes and speakers, and resolve the unit."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != len(y) or len(y) != len(speakers):
        raise UserError("association: the BA matrix, labels and speakers must have the same rows")
    names = list(names) if names is not None else [f"BA{j}" for j in range(X.shape[1])]
    codes, classes = _codes(y)
    K = len(classes)
    if K < 2:
        raise UserError(f"association needs at least 2 classes, got {list(classes)}")
    spk, spk_names = _codes(speakers, sort=False)
    chosen, reason = resolve_unit(
        unit, np.asarray(speakers, dtype=object), np.asarray(y, dtype=object)
    )
    tested = K if K > 2 else 1  # two classes: one test, the second class mirrors it
    return _Design(X, names, codes, classes, K, spk, len(spk_names), chosen, reason, tested)


def _statistics(d: _Design, speakers, y, permutations, bootstrap, need_null, rng):
    """The unit's statistics (and null, intervals), and the permutation scheme's name."""
    if d.unit == "speaker":
        return _speaker_cells(d, permutations, bootstrap, need_null, rng), "over speakers"
    if (
        d.unit == "within_speaker"
        and mixed_speakers(np.asarray(speakers, dtype=object), np.asarray(y, dtype=object))[0] == 0
    ):
        raise UserError(
            "the label does not vary within any speaker, so unit within_speaker cannot test it; "
            "set selection.unit to speaker (or auto) in params.yaml"
        )
    strata = d.spk if d.unit == "within_speaker" else None
    res = _within(
        d.X, d.codes, d.K, d.tested, d.spk, d.n_spk, strata, permutations, bootstrap, need_null, rng
    )
    return res, "within speakers" if strata is not None else "over utterances"


def _speaker_cells(d: _Design, permutations, bootstrap, need_null, rng) -> dict[str, np.ndarray]:
    """The speaker-level test on each speaker's (per class) BA frequencies."""
    K = d.K
    Fs, cnt = _cell_sums(d.X, d.spk * K + d.codes, d.n_spk * K)
    keep = cnt > 0
    F = Fs[keep] / cnt[keep, None]
    cell_codes = (np.flatnonzero(keep) % K).astype(np.int64)
    per_class = np.bincount(cell_codes, minlength=K)
    if min(per_class) < 2:
        raise UserError(
            "association: every class needs at least 2 speakers for a speaker-level test; "
            f"speakers per class: {dict(zip(d.classes, per_class.tolist()))}"
        )
    return _speaker(F, cell_codes, K, d.tested, permutations, bootstrap, need_null, rng)


#: statistics columns of one class's block of the table (NaN when not computed)
_TABLE_KEYS = [
    "freq_class",
    "freq_rest",
    "effect",
    "statistic",
    "p",
    "same_sign",
    "freq_class_low",
    "freq_class_high",
    "freq_rest_low",
    "freq_rest_high",
    "effect_low",
    "effect_high",
]


def _table(res, p_adj, names, classes, tested, unit, correction, alpha) -> pd.DataFrame:
    """The association table: a block of rows per tested class (two classes: and its mirror)."""
    p = len(names)
    blocks = []
    for t in range(tested):
        cols = {k: (res[k][t] if k in res else np.full(p, np.nan)) for k in _TABLE_KEYS}
        blocks.append(
            pd.DataFrame(
                {
                    "BA": names,
                    "class": str(classes[t]),
                    "versus": "rest" if tested > 1 else str(classes[1]),
                    **cols,
                    "p_adjusted": p_adj[t],
                }
            )
        )
    if tested == 1:  # the second class: the same test seen from the other side
        blocks.append(_mirrored(blocks[0], names, classes))
    table = pd.concat(blocks, ignore_index=True).rename(
        columns={"effect_low": "ci_low", "effect_high": "ci_high"}
    )
    table["associated"] = table["p_adjusted"] <= alpha
    table["unit"], table["correction"], table["alpha"] = unit, correction, alpha
    return table[COLUMNS]


def _mirrored(a: pd.DataFrame, names, classes) -> pd.DataFrame:
    """The first class's block seen from the second class (two classes)."""
    return pd.DataFrame(
        {
            "BA": names,
            "class": str(classes[1]),
            "versus": str(classes[0]),
            "freq_class": a["freq_rest"],
            "freq_rest": a["freq_class"],
            "effect": -a["effect"],
            "statistic": -a["statistic"],
            "p": a["p"],
            "same_sign": a["same_sign"],
            "freq_class_low": a["freq_rest_low"],
            "freq_class_high": a["freq_rest_high"],
            "freq_rest_low": a["freq_class_low"],
            "freq_rest_high": a["freq_class_high"],
            "effect_low": -a["effect_high"],
            "effect_high": -a["effect_low"],
            "p_adjusted": a["p_adjusted"],
        }
    )


# ------------------------------------------------------------------------------ BA profile


def ba_profile(
    X: np.ndarray, speakers: np.ndarray, names: list[str] | None = None, has_share: float = 0.0
) -> pd.DataFrame:
    """BA-LR's description of every BA over a corpus: frequency, typicality, dropout.

    Parameters
    ----------
    X : numpy.ndarray
        BA matrix (utterances, BAs), 0/1.
    speakers : numpy.ndarray
        Speaker of each utterance.
    names : list of str, optional
        BA names.
    has_share : float
        A speaker *has* a BA when it is active in more than this share of the speaker's
        utterances; 0 (BA-LR's definition) means in at least one utterance.

    Returns
    -------
    pandas.DataFrame
        :data:`PROFILE_COLUMNS`: ``frequency`` (share of utterances where the BA is active),
        ``typicality`` (share of speakers having it), ``dropout`` (mean over the speakers
        having it of the share of their utterances where it is not active; NaN when no
        speaker has it), ``n_speakers_having``, ``dead`` (never active), ``constant``
        (active in every utterance).

    Examples
    --------
    >>> X = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=np.int8)
    >>> profile = ba_profile(X, np.array(["a", "a", "b", "b"]))
    >>> profile[["BA", "typicality", "dropout", "dead"]].to_dict("list")
    {'BA': ['BA0', 'BA1', 'BA2'], 'typicality': [0.5, 0.0, 1.0], 'dropout': [0.5, nan, 0.0],
     'dead': [False, True, False]}
    """
    X = np.asarray(X)
    names = list(names) if names is not None else [f"BA{j}" for j in range(X.shape[1])]
    if not 0.0 <= has_share < 1.0:
        raise UserError(
            f"association.has_share is {has_share}; use a share in [0, 1) in params.yaml"
        )
    spk, uniq = _codes(speakers, sort=False)
    sums, counts = _cell_sums(X, spk, len(uniq))
    share = sums / counts[:, None]  # per speaker: share of utterances active
    has = share > has_share
    n_has = has.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dropout = np.where(
            n_has > 0, ((1.0 - share) * has).sum(axis=0) / np.maximum(n_has, 1), np.nan
        )
    total = sums.sum(axis=0)
    return pd.DataFrame(
        {
            "BA": names,
            "frequency": total / max(len(X), 1),
            "typicality": n_has / max(len(uniq), 1),
            "dropout": dropout,
            "n_speakers_having": n_has.astype(int),
            "dead": total == 0,
            "constant": total == len(X),
        }
    )[PROFILE_COLUMNS]


def profile_summary(
    profile: pd.DataFrame, has_share: float = 0.0, n_speakers: int | None = None
) -> dict[str, Any]:
    """Counts and quantiles of a :func:`ba_profile` table (BAs neither dead nor constant)."""
    live = profile[~(profile["dead"] | profile["constant"])]

    def q(col: str) -> dict[str, float | None]:
        v = live[col].dropna().to_numpy(dtype=np.float64)
        return {
            f"q{int(round(100 * k))}": (float(np.quantile(v, k)) if v.size else None)
            for k in QUANTILES
        }

    return {
        "n_ba": int(len(profile)),
        "n_dead": int(profile["dead"].sum()),
        "n_always_active": int(profile["constant"].sum()),
        "n_live": int(len(live)),
        "n_speakers": n_speakers,
        "has_share": has_share,
        "has_definition": (
            "active in at least one of the speaker's utterances"
            if has_share == 0
            else f"active in more than {has_share:g} of the speaker's utterances"
        ),
        "frequency": q("frequency"),
        "typicality": q("typicality"),
        "dropout": q("dropout"),
    }


# ------------------------------------------------------------------------------ report lines


def _fmt_interval(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f" [{low:.2f}\u2013{high:.2f}]"


def association_lines(table: pd.DataFrame, top: int = 10) -> list[str]:
    """Lines for the report: the associated BAs of one label, strongest first.

    Parameters
    ----------
    table : pandas.DataFrame
        An association table (:func:`associate`, or its CSV read back).
    top : int
        Most lines given (one more line says how many were left out).

    Returns
    -------
    list of str
        One line per associated BA and class, sorted by ``|effect|``, e.g.
        ``BA15: Whisper 0.81 [0.74–0.87] vs rest 0.12 [0.08–0.16] (difference +0.69
        [+0.61, +0.76], same sign in 96% of speakers, adjusted p 0.001)``; for two classes
        each BA is given once, from the class where it is more frequent. When no BA is
        associated, one sentence saying which question returned none and why.

    Examples
    --------
    >>> t = pd.DataFrame({"BA": ["BA1"], "class": ["W"], "versus": ["rest"], "freq_class": [0.8],
    ...     "freq_rest": [0.1], "effect": [0.7], "ci_low": [0.6], "ci_high": [0.8],
    ...     "p_adjusted": [0.001],
    ...     "associated": [True]})
    >>> association_lines(t)
    ['BA1: W 0.80 vs rest 0.10 (difference +0.70 [+0.60, +0.80], adjusted p 0.001)']
    """
    if table is None or len(table) == 0:
        return ["association: no BA could be tested (no BA varies in the training rows)"]
    assoc = table[table["associated"].astype(bool)]
    if "versus" in table.columns:
        two = assoc["versus"].astype(str) != "rest"
        assoc = assoc[~two | (assoc["effect"] > 0)]
    first = table.iloc[0]
    correction = str(first.get("correction", "maxt"))
    alpha = float(first.get("alpha", 0.05))
    unit = str(first.get("unit", "within_speaker"))
    rule = ("family-wise error" if correction == "maxt" else "false discovery rate") + f" {alpha:g}"
    question = {
        "within_speaker": "within speakers",
        "speaker": "between speakers",
        "utterance": "over utterances",
    }.get(unit, unit)
    n_ba = table["BA"].nunique()
    if assoc.empty:
        pool = table
        if "versus" in table.columns and (table["versus"].astype(str) != "rest").all():
            pool = table[
                table["effect"] >= 0
            ]  # two classes: the side where the BA is more frequent
        pool = pool if len(pool) else table
        best = pool.loc[pool["p"].astype(float).idxmin()] if "p" in pool.columns else pool.iloc[0]
        return [
            f"association ({question}, {correction} at {rule}): none of the {n_ba} BAs is more "
            "or less frequent in one class than in the others beyond chance; the strongest, "
            f"{best['BA']} in class {best['class']} "
            f"({float(best['freq_class']):.2f} vs {float(best['freq_rest']):.2f}), has adjusted p "
            f"{float(best['p_adjusted']):.3g} > {alpha:g}"
        ]
    assoc = assoc.assign(_abs=assoc["effect"].abs()).sort_values(
        ["_abs", "BA"], ascending=[False, True]
    )
    lines = []
    for _, r in assoc.head(int(top)).iterrows():
        fc = (
            f"{r['class']} {r['freq_class']:.2f}"
            f"{_fmt_interval(r.get('freq_class_low', np.nan), r.get('freq_class_high', np.nan))}"
        )
        fr = (
            f"{r.get('versus', 'rest')} {r['freq_rest']:.2f}"
            f"{_fmt_interval(r.get('freq_rest_low', np.nan), r.get('freq_rest_high', np.nan))}"
        )
        extra = f"difference {r['effect']:+.2f}"
        if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
            extra += f" [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
        same = r.get("same_sign", np.nan)
        if same is not None and np.isfinite(same):
            extra += f", same sign in {100 * same:.0f}% of speakers"
        extra += f", adjusted p {r['p_adjusted']:.3g}"
        lines.append(f"{r['BA']}: {fc} vs {fr} ({extra})")
    if len(assoc) > top:
        lines.append(
            f"... and {len(assoc) - int(top)} more associated (BA, class) pairs "
            f"({question}, {correction} at {rule})"
        )
    return lines


def effect_matrix(tables: dict[str, pd.DataFrame], associated_only: bool = True) -> pd.DataFrame:
    """BA x (label, class) matrix of effects, for a heatmap across labels.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Association table per label.
    associated_only : bool
        Keep only the BAs associated with some label, and blank (NaN) the effects that are
        not associated.

    Returns
    -------
    pandas.DataFrame
        Index ``BA`` (in numeric order), columns ``<label>: <class>`` (for two classes only
        the second class, whose effect is minus the first's), values ``effect``.

    Examples
    --------
    >>> t = pd.DataFrame({"BA": ["BA2", "BA2", "BA10", "BA10"], "class": ["N", "W", "N", "W"],
    ...     "versus": ["W", "N", "W", "N"], "effect": [-0.5, 0.5, 0.01, -0.01],
    ...     "associated": [True, True, False, False]})
    >>> effect_matrix({"Style": t}).to_dict()
    {'Style: W': {'BA2': 0.5}}
    """
    cols = {}
    for label, table in tables.items():
        t = table
        if "versus" in t.columns and (t["versus"].astype(str) != "rest").all():
            t = t[t["class"] == sorted(t["class"].astype(str).unique())[-1]]
        for cls, part in t.groupby("class", sort=True):
            eff = part.set_index("BA")["effect"].astype(float)
            if associated_only:
                eff = eff.where(part.set_index("BA")["associated"].astype(bool))
            cols[f"{label}: {cls}"] = eff
    out = pd.DataFrame(cols)
    if associated_only:
        out = out.dropna(how="all")
    order = sorted(out.index, key=lambda b: (int(b[2:]) if str(b)[2:].isdigit() else 10**9, str(b)))
    out = out.loc[order]
    out.index.name = "BA"
    return out


# ------------------------------------------------------------------------------ tables


def associate_table(
    df: pd.DataFrame,
    label: str,
    unit: str = "auto",
    correction: str = "maxt",
    permutations: int = 499,
    bootstrap: int = 499,
    alpha: float = 0.05,
    seed: int = 0,
) -> AssociationResult:
    """:func:`associate` on a formatted table (``Speaker``, ``label`` and ``BA*`` columns).

    Parameters
    ----------
    df : pandas.DataFrame
        Training rows, already class-filtered (:func:`smp_balr.data.tables.select_classes`).
    label : str
        The label column.
    unit, correction, permutations, bootstrap, alpha, seed
        As for :func:`associate` (``selection.unit`` and the ``association`` block).

    Returns
    -------
    AssociationResult
        ``info`` also names the label.
    """
    from smp_balr.data.tables import ba_columns, ba_matrix, require_label
    from smp_balr.selection.api import check_classes

    require_label(df, label, "the training table")
    if "Speaker" not in df.columns:
        raise UserError("the training table has no 'Speaker' column; rerun `dvc repro format`")
    names = ba_columns(df)
    y = df[label].astype(str)
    check_classes(y, label)
    res = associate(
        ba_matrix(df, names),
        y.to_numpy(),
        df["Speaker"].astype(str).to_numpy(),
        names,
        unit=unit,
        correction=correction,
        permutations=permutations,
        bootstrap=bootstrap,
        alpha=alpha,
        seed=seed,
    )
    res.info = {"label": label, **res.info}
    return res


def profile_table(df: pd.DataFrame, has_share: float = 0.0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`ba_profile` and :func:`profile_summary` of a formatted table (all its rows)."""
    from smp_balr.data.tables import ba_columns, ba_matrix

    if "Speaker" not in df.columns:
        raise UserError("the training table has no 'Speaker' column; rerun `dvc repro format`")
    names = ba_columns(df)
    speakers = df["Speaker"].astype(str).to_numpy()
    prof = ba_profile(ba_matrix(df, names), speakers, names, has_share)
    summary = profile_summary(prof, has_share, int(pd.Series(speakers).nunique()))
    summary["n_utterances"] = int(len(df))
    return prof, summary
