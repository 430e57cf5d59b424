"""Forward stepwise discriminant analysis with partial Wilks' lambda and F-to-enter.

Only the diagonals of the within-class (W) and total (T) scatter matrices are needed for
all candidates, plus one column of W and T per BA that enters; each entry is a rank-one
(Cholesky / Gram-Schmidt) update of the conditional diagonals, O(n p) for the new column
and O(p q) for the update, never a determinant from scratch (the full p x p cross-product
is formed once only if more than ``_Scatter.FULL_AFTER`` BAs enter). After the entries S,
``W_jj.S`` and ``T_jj.S`` are candidate j's within-class and total sums of squares given S;
its partial Wilks' lambda is ``W_jj.S / T_jj.S`` and

    F_to_enter = (1 - lambda_j) / lambda_j * (n - K - q - a) / (K - 1)

with q = |S| and a the degrees of freedom absorbed by the unit (speaker centring).

With ``groups`` (unit ``within_speaker``) the test is the partial test of class given
speaker: T is the residual SSCP of X after regressing on speaker dummies (the SSCP of
speaker-centred X), W the residual SSCP after regressing on speaker + class dummies.
With Xc and Dc the BAs and the class indicators centred within speaker, the hypothesis
SSCP is ``H = Xc' Dc (Dc' Dc)^+ Dc' Xc`` and ``W = T - H``. Centring only X and taking
raw class means of Xc (``Dc`` replaced by D) is a different, conservative statistic
whenever speakers' class mixes differ. The hypothesis degrees of freedom are
``rank(Dc' Dc)`` (K - 1 unless a class never varies inside any speaker), so
``K - 1`` above reads ``rank(Dc' Dc)`` and ``K`` reads ``rank(Dc' Dc) + 1``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse, stats

from smp_balr.core.errors import UserError
from smp_balr.selection.multiple import check_correction, stepwise_threshold

log = logging.getLogger(__name__)

COLUMNS = ["Feature", "Step", "Wilks_Lambda", "F_to_enter", "P_Value", "P_Threshold"]


@dataclass
class StepwiseResult:
    """Outcome of :func:`forward_stepwise`.

    Attributes
    ----------
    table : pandas.DataFrame
        The final set in entry order: ``Feature, Step, Wilks_Lambda`` (after the step),
        ``F_to_enter, P_Value, P_Threshold``.
    wilks_lambda : float
        Wilks' lambda of the final set (1.0 when empty).
    selected : list of int
        Column indices of the final set, in entry order.
    history : list of str
        One line per step (entries and removals).
    n_candidates : int
        Columns eligible at the start (non-constant within classes).
    """

    table: pd.DataFrame
    wilks_lambda: float
    selected: list[int]
    history: list[str] = field(default_factory=list)
    n_candidates: int = 0


def _group_sums(codes: np.ndarray, n_groups: int, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column sums of ``X`` per group code and the group sizes (sparse one-hot product)."""
    n = len(codes)
    onehot = sparse.csr_matrix(
        (np.ones(n, dtype=X.dtype), (codes, np.arange(n))), shape=(n_groups, n)
    )
    return np.asarray(onehot @ X, dtype=np.float64), np.bincount(codes, minlength=n_groups).astype(
        np.float64
    )


def _class_factors(
    codes: np.ndarray,
    K: int,
    sums: np.ndarray,
    counts: np.ndarray,
    X: np.ndarray,
    groups: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Low-rank factors of T's correction and of the hypothesis SSCP H.

    Returns ``(tl, tr, bl, br, df_hyp)`` with ``T = X'X - tl' tr`` and ``H = bl' br``
    (all factors have one column per BA) and ``df_hyp`` the hypothesis degrees of freedom.
    Without ``groups``: one-way class test. With ``groups``: class given speaker,
    ``br = Dc' X`` (class sums of speaker-centred X) and ``bl = (Dc' Dc)^+ br``.
    """
    n = len(codes)
    if groups is None:
        grand = sums.sum(axis=0)
        tl, tr = (grand / n)[None, :], grand[None, :]
        br = sums - counts[:, None] * (grand / n)
        return tl, tr, br / counts[:, None], br, K - 1
    gcodes, guniq = pd.factorize(pd.Series(groups), sort=False)
    G = len(guniq)
    gsums, gcounts = _group_sums(gcodes, G, X)
    tl, tr = gsums / gcounts[:, None], gsums
    # N[c, g] = rows of class c in speaker g; Dc' X = class sums - N @ speaker means
    N = sparse.csr_matrix((np.ones(n), (codes, gcodes)), shape=(K, G)).toarray()
    br = sums - N @ tl
    # Dc' Dc = diag(n_c) - N diag(1 / n_g) N' (K x K, rank <= K - 1)
    DtD = np.diag(counts) - (N / gcounts[None, :]) @ N.T
    DtD = (DtD + DtD.T) / 2.0
    evals, evecs = np.linalg.eigh(DtD)
    keep = evals > 1e-9 * max(float(evals.max(initial=0.0)), 1.0)
    pinv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    return tl, tr, pinv @ br, br, int(keep.sum())


def scatter_matrices(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Within-class and total scatter (sums of squares and cross-products) of ``X``.

    Parameters
    ----------
    X : numpy.ndarray
        Rows x columns.
    y : numpy.ndarray
        Class of each row.
    groups : numpy.ndarray, optional
        If given (speakers), the class effect is tested given the groups: ``T`` is the
        residual SSCP of ``X`` after group dummies (SSCP of group-centred ``X``) and ``W``
        the residual SSCP after group + class dummies; computed from the raw
        cross-products without building the centred matrix.

    Returns
    -------
    (W, T, K)
        Error (within-class) scatter, total scatter, number of classes.
    """
    X = np.asarray(X, dtype=np.float64)
    codes, uniq = pd.factorize(pd.Series(y), sort=True)
    K = len(uniq)
    sums, counts = _group_sums(codes, K, X)
    tl, tr, bl, br, _ = _class_factors(codes, K, sums, counts, X, groups)
    T = X.T @ X - tl.T @ tr
    W = T - bl.T @ br
    return (W + W.T) / 2.0, (T + T.T) / 2.0, K


class _Scatter:
    """Diagonals and single columns of W and T, computed on demand from the rows.

    With ``groups`` the class effect is taken given the groups (speaker + class dummies
    for W, speaker dummies for T), without building any centred matrix.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> None:
        X = np.asarray(X)
        n = len(X)
        # 0/1 data: float32 holds every cross-product count exactly (n < 2**24) and halves
        # the memory traffic of the per-step column product
        binary = n < 2**24 and bool(((X == 0) | (X == 1)).all())
        dtype = np.float32 if binary else np.float64
        Xc = np.ascontiguousarray(X, dtype=dtype)  # row-major for the sparse group sums
        self.X = np.asfortranarray(Xc)  # column-major: X.T @ X[:, k] reads contiguous columns
        codes, uniq = pd.factorize(pd.Series(y), sort=True)
        self.K = len(uniq)
        sums, counts = _group_sums(codes, self.K, Xc)
        sumsq = (
            np.asarray(sums.sum(axis=0), dtype=np.float64)
            if binary
            else np.einsum("ij,ij->j", Xc, Xc)
        )
        self._tl, self._tr, self._bl, self._br, self.df_hyp = _class_factors(
            codes, self.K, sums, counts, Xc, groups
        )
        self._Xrows, self._codes, self._counts, self._groups = Xc, codes, counts, groups
        self.n_groups = 0 if groups is None else int(pd.Series(groups).nunique())
        self.t_diag = sumsq - np.einsum("ij,ij->j", self._tl, self._tr)
        self.w_diag = self.t_diag - np.einsum("ij,ij->j", self._bl, self._br)

    def null_max_ratio(
        self, eligible: np.ndarray, n_perm: int, rng: np.random.Generator, chunk: int = 32
    ) -> np.ndarray:
        """Largest first-step ``H_jj / T_jj`` over ``eligible`` BAs, for permuted labels.

        Labels are permuted within groups when the class effect is taken given groups,
        else over all rows. ``T`` does not depend on the labels, nor (within groups) do the
        class-by-group counts, so a permutation only changes the class sums of ``X``:
        O(rows x BAs) per permutation. ``1 - H_jj / T_jj`` is the first-step partial
        Wilks' lambda, so the largest ratio is the largest F-to-enter.
        """
        from smp_balr.selection.calibration import permute_labels

        X, codes, K, n = self._Xrows, self._codes, self.K, len(self._codes)
        t = self.t_diag[eligible]
        gcodes = None
        if self._groups is not None:
            gcodes, guniq = pd.factorize(pd.Series(self._groups), sort=False)
            G = len(guniq)
            gsums, gcounts = _group_sums(gcodes, G, X)
            N = sparse.csr_matrix((np.ones(n), (codes, gcodes)), shape=(K, G)).toarray()
            fixed = (N @ (gsums / gcounts[:, None]))[:, eligible]
            DtD = np.diag(self._counts) - (N / gcounts[None, :]) @ N.T
            evals, evecs = np.linalg.eigh((DtD + DtD.T) / 2.0)
            keep = evals > 1e-9 * max(float(evals.max(initial=0.0)), 1.0)
            pinv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
        else:
            fixed = (
                self._counts[:, None] * (np.asarray(X.sum(axis=0), dtype=np.float64) / n)[None, :]
            )[:, eligible]
            pinv = np.diag(1.0 / self._counts)
        Xe = np.ascontiguousarray(X[:, eligible])
        out = np.empty(n_perm)
        for start in range(0, n_perm, chunk):
            b = min(start + chunk, n_perm) - start
            perm = np.stack([permute_labels(codes, gcodes, rng) for _ in range(b)])
            onehot = sparse.csr_matrix(
                (
                    np.ones(b * n, dtype=Xe.dtype),
                    ((np.arange(b)[:, None] * K + perm).ravel(), np.tile(np.arange(n), b)),
                ),
                shape=(b * K, n),
            )
            br = np.asarray(onehot @ Xe, dtype=np.float64).reshape(b, K, -1) - fixed[None]
            H = np.einsum("bkj,bkj->bj", np.einsum("kl,blj->bkj", pinv, br), br)
            out[start : start + b] = (H / t[None, :]).max(axis=1)
        return out

    # after this many single columns, one full cross-product is cheaper than more
    FULL_AFTER = 40

    def columns(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Column ``k`` of W and of T."""
        self._calls = getattr(self, "_calls", 0) + 1
        if self._calls > self.FULL_AFTER and getattr(self, "_gram", None) is None:
            self._gram = np.asarray(self.X.T @ self.X, dtype=np.float64)
        gram = getattr(self, "_gram", None)
        g = (
            gram[:, k]
            if gram is not None
            else np.asarray(self.X.T @ self.X[:, k], dtype=np.float64)
        )
        t = g - self._tl.T @ self._tr[:, k]
        w = t - self._bl.T @ self._br[:, k]
        return w, t


class _Conditional:
    """Conditional diagonals given the entered set, by rank-one Cholesky updates."""

    def __init__(self, diag: np.ndarray, capacity: int) -> None:
        self.base = diag.copy()
        self.diag = diag.copy()
        self.U = np.zeros((len(diag), max(capacity, 1)))
        self.q = 0

    def enter(self, col: np.ndarray, k: int) -> None:
        c = col - self.U[:, : self.q] @ self.U[k, : self.q]
        if self.q == self.U.shape[1]:
            self.U = np.hstack([self.U, np.zeros_like(self.U)])
        u = c / np.sqrt(c[k])
        self.U[:, self.q] = u
        self.q += 1
        self.diag -= u * u

    def rebuild(self, cols: list[np.ndarray], order: list[int]) -> None:
        self.diag = self.base.copy()
        self.q = 0
        for col, k in zip(cols, order):
            self.enter(col, k)


def forward_stepwise(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str] | None = None,
    p_enter: float = 0.05,
    p_remove: float | None = None,
    correction: str = "bonferroni",
    max_features: int | None = None,
    absorbed_dof: int | None = None,
    tolerance: float = 1e-6,
    groups: np.ndarray | None = None,
    permutations: int = 0,
    seed: int = 0,
) -> StepwiseResult:
    """Classical forward stepwise discriminant analysis.

    Parameters
    ----------
    X : numpy.ndarray
        Rows x candidates (float).
    y : numpy.ndarray
        Class of each row; at least 2 classes.
    names : list of str, optional
        Candidate names (default ``x0, x1, ...``).
    p_enter : float
        Family-wise entry level before correction.
    p_remove : float, optional
        Removal level (same correction); None disables removal. Must exceed ``p_enter``.
    correction : str
        ``bonferroni`` (``p_enter / m``, m eligible candidates), ``holm`` (``p_enter / (m - q)``
        at q BAs in), ``fdr_bh`` (false discovery rate at ``p_enter``: Benjamini-Gavrilov
        level ``p_enter k / (m + 1 - k (1 - p_enter))`` for the k-th entry) or ``none``;
        see :mod:`smp_balr.selection.multiple`.
    max_features : int, optional
        Cap on the number of BAs in the final set.
    absorbed_dof : int, optional
        Error degrees of freedom used by the unit beyond the grand mean; default
        ``n_groups - 1`` with ``groups``, else 0.
    groups : numpy.ndarray, optional
        Speakers: test the class effect given speaker (partial test in the model with
        speaker + class dummies); the hypothesis degrees of freedom are then the rank of
        the within-speaker class indicators (``K - 1`` unless a class never varies inside
        a speaker).
    tolerance : float
        A candidate whose within-class variance given the set falls below ``tolerance``
        times its own is collinear and never enters.
    permutations : int
        Label permutations (within ``groups`` when given, else over all rows) of a
        Westfall-Young max-F null for the first step: the largest F-to-enter over the
        candidates is recomputed on each permutation, and ``t_perm``, the F p-value of the
        ``floor(p_enter (B + 1))``-th largest permuted maximum (B permutations), is the
        per-BA level at which an F p-value leads to a family-wise error rate of at most
        ``p_enter`` whatever the tails of the BAs' F statistics (rare binary BAs, few
        rows). With ``bonferroni``, ``holm`` or ``fdr_bh`` every entry and removal level is
        multiplied by ``min(1, t_perm m / p_enter)``: the rule is never looser than its
        textbook form, and stricter where the F tails are heavier than the F
        distribution. 0 switches the check off; ``none`` ignores it.
    seed : int
        Seed of the permutations.

    Returns
    -------
    StepwiseResult
    """
    check_correction(correction)
    if p_remove is not None and p_remove <= p_enter:
        raise UserError(
            f"selection.slda.p_remove ({p_remove}) must exceed p_enter ({p_enter}), or be null"
        )
    X = np.asarray(X)  # _Scatter picks float32 (exact for 0/1) or float64
    n, p = X.shape
    names = names if names is not None else [f"x{j}" for j in range(p)]
    sc = _Scatter(X, y, groups)
    df1 = _hypothesis_dof(sc)
    if absorbed_dof is None:
        absorbed_dof = max(sc.n_groups - 1, 0)
    w0, t0 = sc.w_diag, sc.t_diag
    scale = max(float(t0.max(initial=0.0)), 1e-300)
    eligible = (t0 > 1e-12 * scale) & (w0 > 1e-12 * scale)
    m = int(eligible.sum())
    history: list[str] = []
    factor = 1.0
    df2_0 = n - 1 - df1 - absorbed_dof
    if permutations > 0 and correction != "none" and m > 0 and df2_0 > 0:
        factor, msg = _permutation_factor(
            sc, eligible, df1, df2_0, p_enter, permutations, seed, groups is not None
        )
        history.append(msg)
        log.info(msg)
    rule = _Rule(
        n, sc.K, df1, absorbed_dof, eligible, m, tolerance, factor, p_enter, p_remove, correction
    )
    cap = p if max_features is None else int(max_features)
    search = _Search(sc, names, rule, min(cap, 64), history)
    search.run(cap, 3 * p + 10)
    return search.result()


def _hypothesis_dof(sc: _Scatter) -> int:
    """The hypothesis degrees of freedom, once checked that there is a class effect to test."""
    if sc.K < 2:
        raise UserError("stepwise discriminant analysis needs at least 2 classes")
    if sc.df_hyp < 1:
        raise UserError(
            "the label does not vary within any speaker, so unit within_speaker cannot test it; "
            "set selection.unit to speaker (or auto) in params.yaml"
        )
    return sc.df_hyp


def _permutation_factor(
    sc: _Scatter,
    eligible: np.ndarray,
    df1: int,
    df2_0: int,
    p_enter: float,
    permutations: int,
    seed: int,
    within: bool,
) -> tuple[float, str]:
    """Factor on every level from the first step's permutation max-F null, and its line."""
    m = int(eligible.sum())
    null = sc.null_max_ratio(eligible, int(permutations), np.random.default_rng(seed))
    k = int(np.floor(p_enter * (permutations + 1)))
    if k < 1:
        raise UserError(
            f"selection.slda.permutations ({permutations}) is too few for p_enter {p_enter}; "
            f"use at least {int(np.ceil(1.0 / p_enter)) - 1}"
        )
    r_crit = float(np.sort(null)[::-1][k - 1])
    lam_crit = min(max(1.0 - r_crit, 1e-300), 1.0)
    t_perm = float(stats.f.sf((1.0 - lam_crit) / lam_crit * df2_0 / df1, df1, df2_0)) * (1.0 - 1e-9)
    factor = min(1.0, t_perm * m / p_enter)
    msg = (
        f"permutation null ({permutations} label permutations"
        f"{' within speakers' if within else ''}): "
        f"per-BA level {t_perm:.3g} vs {p_enter / m:.3g} (Bonferroni); "
        f"entry levels x {factor:.3g}"
    )
    return factor, msg


@dataclass
class _Rule:
    """What one stepwise search holds fixed: sizes, degrees of freedom, eligibility, levels."""

    n: int
    K: int
    df1: int
    absorbed_dof: int
    eligible: np.ndarray
    m: int
    tolerance: float
    factor: float
    p_enter: float
    p_remove: float | None
    correction: str


class _Candidate(NamedTuple):
    """The best candidate of a step: column, F-to-enter, partial lambda, p, level, error df."""

    j: int
    F: float
    lam: float
    p_value: float
    threshold: float
    df2: int


class _Search:
    """The forward search: entered set, their W and T columns, running Wilks' lambda, history."""

    def __init__(
        self, sc: _Scatter, names: list[str], rule: _Rule, capacity: int, history: list[str]
    ) -> None:
        self.sc, self.names, self.rule, self.history = sc, names, rule, history
        self.cw = _Conditional(sc.w_diag, capacity)
        self.ct = _Conditional(sc.t_diag, capacity)
        self.raw: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.in_set: list[int] = []
        self.info: dict[int, tuple[int, float, float, float, float]] = {}
        self.wilks = 1.0
        self.step = 0

    def run(self, cap: int, max_steps: int) -> None:
        """Enter BAs (and with ``p_remove`` remove the weakest) until a stop rule holds."""
        while len(self.in_set) < cap and self.step < max_steps:
            best = self._best()
            if best is None:
                break
            self._enter(best)
            if self.rule.p_remove is not None and len(self.in_set) > 1:
                self._remove_weakest(best.j)

    def result(self) -> StepwiseResult:
        """The final set as a :class:`StepwiseResult`."""
        rows = [(self.names[k], *self.info[k]) for k in self.in_set]
        table = pd.DataFrame(rows, columns=COLUMNS)
        table["Step"] = table["Step"].astype(int)
        return StepwiseResult(
            table=table,
            wilks_lambda=self.wilks,
            selected=self.in_set,
            history=self.history,
            n_candidates=self.rule.m,
        )

    def _say(self, line: str) -> None:
        """One step's line, into the history and the log."""
        self.history.append(line)
        log.info(line)

    def _best(self) -> _Candidate | None:
        """The candidate with the largest F-to-enter if it passes; else None (why in history)."""
        r, q = self.rule, len(self.in_set)
        df2 = r.n - 1 - r.df1 - q - r.absorbed_dof
        if df2 <= 0:
            self.history.append(
                f"stop: no error degrees of freedom left (n={r.n}, K={r.K}, df_hyp={r.df1}, "
                f"q={q}, absorbed={r.absorbed_dof})"
            )
            return None
        wd, td = self.cw.diag, self.ct.diag
        ok = r.eligible.copy()
        ok[self.in_set] = False
        ok &= (wd > r.tolerance * self.sc.w_diag) & (td > 0)
        if not ok.any():
            self.history.append("stop: no eligible candidate left")
            return None
        lam = np.ones(len(ok))
        lam[ok] = wd[ok] / td[ok]
        lam = np.clip(lam, 1e-300, 1.0)
        F = np.where(ok, (1.0 - lam) / lam * df2 / r.df1, -np.inf)
        j = int(np.argmax(F))
        p_val = float(stats.f.sf(F[j], r.df1, df2))
        thr = r.factor * stepwise_threshold(r.p_enter, r.correction, r.m, q)
        if not p_val <= thr:
            self.history.append(
                f"stop: best candidate {self.names[j]} F={F[j]:.3f} p={p_val:.3g} > {thr:.3g}"
            )
            return None
        return _Candidate(j, F[j], lam[j], p_val, thr, df2)

    def _enter(self, c: _Candidate) -> None:
        """Enter ``c``: its W and T columns, the conditional diagonals, lambda, its table row."""
        j = c.j
        self.step += 1
        self.raw[j] = self.sc.columns(j)
        self.cw.enter(self.raw[j][0], j)
        self.ct.enter(self.raw[j][1], j)
        self.wilks *= float(c.lam)
        self.in_set.append(j)
        self.info[j] = (self.step, self.wilks, float(c.F), c.p_value, c.threshold)
        self._say(
            f"step {self.step}: enter {self.names[j]} F={c.F:.3f} (df {self.rule.df1}, {c.df2}) "
            f"p={c.p_value:.3g} <= {c.threshold:.3g}, Wilks' lambda {self.wilks:.6f}"
        )

    def _remove_weakest(self, j: int) -> None:
        """Remove the weakest BA other than ``j`` (just entered) if it fails the removal level."""
        r, in_set, raw = self.rule, self.in_set, self.raw
        q_after = len(in_set)
        df2r = r.n - 1 - r.df1 - (q_after - 1) - r.absorbed_dof
        Wss = np.array([[raw[a][0][b] for b in in_set] for a in in_set])
        Tss = np.array([[raw[a][1][b] for b in in_set] for a in in_set])
        # partial lambda of k given the rest: (1 / inv(W)_kk) / (1 / inv(T)_kk)
        lam_all = np.diag(np.linalg.inv(Tss)) / np.diag(np.linalg.inv(Wss))
        cands = [i for i, k in enumerate(in_set) if k != j]
        lam_r = np.clip(lam_all[cands], 1e-300, 1.0)
        F_r = (1.0 - lam_r) / lam_r * df2r / r.df1
        i = int(np.argmin(F_r))
        p_r = float(stats.f.sf(F_r[i], r.df1, df2r))
        thr_r = r.factor * stepwise_threshold(r.p_remove, r.correction, r.m, q_after - 1)
        if p_r > thr_r:
            k = in_set[cands[i]]
            self.step += 1
            self.wilks /= float(lam_r[i])
            in_set.remove(k)
            del self.info[k]
            self.cw.rebuild([raw[a][0] for a in in_set], in_set)
            self.ct.rebuild([raw[a][1] for a in in_set], in_set)
            self._say(
                f"step {self.step}: remove {self.names[k]} F={F_r[i]:.3f} p={p_r:.3g} "
                f"> {thr_r:.3g}, Wilks' lambda {self.wilks:.6f}"
            )


def wilks_lambda(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Wilks' lambda ``det(W) / det(T)`` of all columns of ``X`` (from scratch, for checks)."""
    W, T, _ = scatter_matrices(np.asarray(X, dtype=np.float64), y, groups)
    sw, lw = np.linalg.slogdet(W)
    st, lt = np.linalg.slogdet(T)
    return float(np.exp(lw - lt)) if sw > 0 and st > 0 else float("nan")
