"""Bayesian logistic selection with bambi: all BAs as one matrix-valued term.

The model is ``y ~ ba(row)`` where ``ba`` returns the rows of the BA matrix, so the BAs
enter as one term with a (BAs x classes) coefficient block (one term per BA makes a
512-term formula that takes many minutes to build and fit). The family is
``categorical`` for K > 2 classes (first class in sorted order is the reference) and
``bernoulli`` for K = 2. Coefficients and intercepts have Normal(0, sigma) priors.

Inference (``method``):

``laplace`` (default)
    MAP and the exact Hessian of the log-posterior of this model, both in numpy
    (:func:`laplace_fit`: L-BFGS on the exact log-posterior and gradient, one Newton
    polish); the posterior is the Gaussian N(MAP, H^-1). The model is the one bambi builds
    (checked against bambi's NUTS in the tests); bambi's own ``inference_method="laplace"``
    cannot handle a matrix-valued term, and its MAP through PyMC is several times slower.
``vi``
    bambi's ADVI (``fit(inference_method="vi")``, mean-field), ``vi_iterations`` steps.
``mcmc``
    bambi's NUTS sampler (slow; small problems only).

For every BA and non-reference class the posterior mean, sd, P(beta > 0), P(beta < 0)
(from the Gaussian marginal: exact for laplace and mean-field ADVI) and the central
``hdi_prob`` interval are reported.

Decision rule. Each (BA, class) gets the two-sided p-value ``2 (1 - P(direction))``
computed from ``z = Mean / SD`` (divided by the null scale, below): claiming "this BA
moves with this class" when either sign could have been claimed. ``alpha = 1 -
p_direction`` is the family level of ``correction`` over all (BA, class) tests
(:mod:`smp_balr.selection.multiple`): ``bonferroni``/``holm`` hold the family-wise error
rate at ``alpha``, ``fdr_bh`` the false discovery rate, ``none`` each test at ``alpha``.
A BA is selected when one of its classes passes.

Null scale (``null_fits``, laplace). With few rows per coefficient the posterior of a
logistic model with hundreds of coefficients is too narrow for a frequentist reading: on
labels with no signal ``z`` spreads wider than N(0, 1) (high-dimensional logistic
regression inflates the estimates), and a Bonferroni cut on ``z`` lets false BAs through.
The same model is refitted ``null_fits`` times on permuted labels (within speakers for
unit ``within_speaker``); the root mean square of those null ``z`` (its 95% upper bound)
is the scale ``s``, and the p-values use ``|z| / max(1, s)``. Where the posterior is
already right (many rows per BA) ``s`` is about 1 and nothing changes; it never loosens
the rule. See docs/selection_guarantee.md and benchmarks/bench_calibration.py.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from smp_balr.core.errors import UserError
from smp_balr.core.options import BAYES_METHODS
from smp_balr.selection.calibration import null_scale, permute_labels
from smp_balr.selection.multiple import check_correction, reject

log = logging.getLogger(__name__)

METHODS = BAYES_METHODS
TERM = "ba(row)"


@dataclass
class BayesResult:
    """Outcome of :func:`bayes_select`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (BA, non-reference class): ``Feature, Class, Reference, Mean, SD,
        P_Positive, P_Negative, HDI_Low, HDI_High, P_Value, Selected`` (``P_Value``: the
        two-sided p-value on the null scale).
    selected : pandas.DataFrame
        Selected BAs in rank order: ``Feature, Class, Mean, SD, P_Direction, P_Value``.
    threshold : float
        The posterior P(direction) a (BA, class) had to reach (holm, fdr_bh: the least
        strict level used).
    n_rows : int
        Rows the model was fitted on.
    null_scale : float
        The divisor of the z-statistics (1.0 without ``null_fits``).
    """

    table: pd.DataFrame
    selected: pd.DataFrame
    threshold: float
    n_rows: int
    null_scale: float = 1.0


def _model(
    X: np.ndarray, y: np.ndarray, classes: list[str], prior_sigma: float, intercept_sigma: float
):
    import bambi as bmb

    if len(classes) == 2:
        data = pd.DataFrame({"y": (y == classes[1]).astype(int), "row": np.arange(len(y))})
        family = "bernoulli"
    else:
        data = pd.DataFrame({"y": pd.Categorical(y, categories=classes), "row": np.arange(len(y))})
        family = "categorical"
    priors = {
        TERM: bmb.Prior("Normal", mu=0.0, sigma=prior_sigma),
        "Intercept": bmb.Prior("Normal", mu=0.0, sigma=intercept_sigma),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = bmb.Model(
            "y ~ ba(row)",
            data,
            family=family,
            priors=priors,
            extra_namespace={"ba": lambda r: X[np.asarray(r, dtype=int)]},
            auto_scale=False,
            center_predictors=False,
        )
        model.build()
    return model


def _class_codes(y: np.ndarray, classes: list[str]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.fromiter((lookup[v] for v in y), dtype=np.int64, count=len(y))


def laplace_fit(
    X: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    prior_sigma: float,
    intercept_sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP and Gaussian (Laplace) posterior sd of the multinomial logistic model.

    The model is the one bambi builds (``categorical`` with class 0 as reference, or
    ``bernoulli`` for two classes, which is the same likelihood): ``eta_k = a_k + X b_k``
    for the non-reference classes, Normal(0, ``intercept_sigma``) on ``a`` and
    Normal(0, ``prior_sigma``) on ``b``. The mode is found by L-BFGS on the exact
    log-posterior and gradient; the posterior covariance is the inverse of the exact
    Hessian of the negative log-posterior at the mode.

    Parameters
    ----------
    X : numpy.ndarray
        Rows x BAs.
    codes : numpy.ndarray of int
        Class code of each row (0 = reference).
    n_classes : int
        Number of classes K.
    prior_sigma, intercept_sigma : float
        Prior scales.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Posterior mean (MAP) and sd of the BA coefficients, shape (BAs, K - 1).
    """
    from scipy import optimize

    X = np.ascontiguousarray(X, dtype=np.float64)
    n, p = X.shape
    km, q = n_classes - 1, p + 1
    Y = np.zeros((n, km))
    rows = np.flatnonzero(codes > 0)
    Y[rows, codes[rows] - 1] = 1.0
    prec = np.r_[1.0 / intercept_sigma**2, np.full(p, 1.0 / prior_sigma**2)][:, None]

    def probs(B: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        eta = B[0] + X @ B[1:]
        top = np.maximum(eta.max(axis=1), 0.0)
        e = np.exp(eta - top[:, None])
        s = np.exp(-top) + e.sum(axis=1)
        return eta, e / s[:, None], top + np.log(s)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        B = theta.reshape(q, km)
        eta, P, lse = probs(B)
        value = float(lse.sum() - np.einsum("ij,ij->", Y, eta) + 0.5 * (prec * B * B).sum())
        R = P - Y
        grad = np.vstack([R.sum(axis=0), X.T @ R]) + prec * B
        return value, grad.ravel()

    res = optimize.minimize(
        objective,
        np.zeros(q * km),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "maxcor": 30, "ftol": 1e-14, "gtol": 1e-7},
    )
    B = res.x.reshape(q, km)
    _, P, _ = probs(B)
    Z = np.column_stack([np.ones(n), X])
    H = np.zeros((km * q, km * q))
    for i in range(km):
        for j in range(i, km):
            w = P[:, i] * ((1.0 if i == j else 0.0) - P[:, j])
            block = (Z * w[:, None]).T @ Z
            H[i * q : (i + 1) * q, j * q : (j + 1) * q] = block
            H[j * q : (j + 1) * q, i * q : (i + 1) * q] = block.T
    H[np.diag_indices_from(H)] += np.tile(prec[:, 0], km)
    # one Newton step from the L-BFGS mode with the exact Hessian polishes the mode
    _, grad = objective(B.ravel())
    step = np.linalg.solve(H, grad.reshape(q, km).T.ravel())
    B = B - step.reshape(km, q).T
    cov_diag = np.diag(np.linalg.inv(H)).reshape(km, q)[:, 1:].T
    return B[1:], np.sqrt(np.maximum(cov_diag, 0.0))


def _from_draws(post, n_ba: int) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd (BAs x non-reference classes) from draws.

    bambi orders the dimensions differently for ADVI and MCMC results, so they are
    arranged by name: (chain, draw, BA, class).
    """
    da = post[TERM].transpose("chain", "draw", f"{TERM}_dim", ...)
    arr = np.asarray(da.values, dtype=np.float64)
    arr = arr.reshape(arr.shape[0] * arr.shape[1], n_ba, -1)
    return arr.mean(axis=0), arr.std(axis=0, ddof=1)


def bayes_select(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    method: str = "laplace",
    prior_sigma: float = 1.0,
    intercept_sigma: float = 5.0,
    p_direction: float = 0.95,
    correction: str = "bonferroni",
    hdi_prob: float = 0.95,
    max_rows: int | None = 8000,
    vi_iterations: int = 20000,
    draws: int = 1000,
    seed: int = 0,
    progress: bool = True,
    null_fits: int = 0,
    groups: np.ndarray | None = None,
) -> BayesResult:
    """Fit the Bayesian logistic model and select BAs by the posterior sign probability.

    Parameters
    ----------
    X : numpy.ndarray
        Rows x BAs in the chosen unit (e.g. centred within speakers).
    y : numpy.ndarray
        Class per row (>= 2 classes).
    names : list of str
        BA names.
    method : str
        ``laplace``, ``vi`` or ``mcmc`` (see module docstring).
    prior_sigma, intercept_sigma : float
        Scales of the Normal(0, sigma) priors on BA coefficients and intercepts.
    p_direction : float
        ``1 - p_direction`` is the family level of ``correction`` for the two-sided
        p-values ``2 (1 - P(direction))`` (see the module docstring).
    correction : str
        ``bonferroni``, ``holm``, ``fdr_bh`` or ``none`` over the (BA, class) tests.
    hdi_prob : float
        Mass of the reported interval.
    max_rows : int, optional
        Fit on a random subsample of this many rows (seeded) when there are more.
    vi_iterations, draws : int
        ADVI steps; posterior draws for ``vi`` / ``mcmc``.
    seed : int
        Seed for the subsample and the inference.
    progress : bool
        Show the fitting progress bar.
    null_fits : int
        Refits of the same model on permuted labels (``laplace`` only; within ``groups``
        when given, else over all rows; the same rows as the fit). The z-statistics
        ``Mean / SD`` of these fits estimate the null scale ``s`` (see
        :func:`smp_balr.selection.calibration.null_scale`; its 95% upper bound is used) and
        every p-value is computed from ``|z| / max(1, s)``. With few rows per coefficient
        the null z of a logistic model with hundreds of coefficients is wider than N(0, 1),
        and the posterior alone then lets false BAs through; 0 trusts the posterior.
    groups : numpy.ndarray, optional
        Speaker of each row, for the within-speaker permutations of ``null_fits``.

    Returns
    -------
    BayesResult
    """
    _check_settings(method, p_direction, correction)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(str)
    classes = sorted(set(y))
    if len(classes) < 2:
        raise UserError("bayes selection needs at least 2 classes")
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups)
    X, y, groups = _subsample(X, y, groups, max_rows, rng)
    Xv, names_v = _varying(X, names)
    if Xv.shape[1] == 0:
        return _empty(classes, len(y), p_direction)
    log.info(
        "bayes: %s model, %d rows, %d BAs, %d classes (reference %s), inference %s",
        "bernoulli" if len(classes) == 2 else "categorical",
        len(y),
        Xv.shape[1],
        len(classes),
        classes[0],
        method,
    )
    scale = 1.0
    if method == "laplace":
        codes = _class_codes(y, classes)
        mean, sd = laplace_fit(Xv, codes, len(classes), prior_sigma, intercept_sigma)
        if null_fits > 0:
            scale = _null_z_scale(
                Xv,
                codes,
                len(classes),
                prior_sigma,
                intercept_sigma,
                null_fits,
                groups,
                progress,
                rng,
            )
    else:
        mean, sd = _sampled_posterior(
            Xv,
            y,
            classes,
            method,
            prior_sigma,
            intercept_sigma,
            vi_iterations,
            draws,
            seed,
            progress,
        )
    return _summarise(mean, sd, names_v, classes, p_direction, correction, hdi_prob, len(y), scale)


def _check_settings(method: str, p_direction: float, correction: str) -> None:
    """One clear error line for an unknown method or correction, or a level out of range."""
    if method not in METHODS:
        raise UserError(f"selection.bayes.method is '{method}'; use one of {', '.join(METHODS)}")
    if not 0.5 < p_direction < 1.0:
        raise UserError(
            f"selection.bayes.p_direction is {p_direction}; use a probability in (0.5, 1)"
        )
    check_correction(correction)


def _subsample(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    max_rows: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A seeded random ``max_rows`` of the rows (in their order) when there are more."""
    if max_rows is not None and len(y) > max_rows:
        keep = np.sort(rng.choice(len(y), size=int(max_rows), replace=False))
        log.info(
            "bayes: fitting on a random %d of %d rows (selection.bayes.max_rows)", len(keep), len(y)
        )
        X, y = X[keep], y[keep]
        groups = None if groups is None else groups[keep]
    return X, y, groups


def _varying(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The non-constant BAs (a contiguous copy) and their names."""
    varying = X.std(axis=0) > 1e-12
    if not varying.all():
        log.info("bayes: %d constant BAs left out of the model", int((~varying).sum()))
    Xv = np.ascontiguousarray(X[:, varying])
    names_v = [n for n, v in zip(names, varying) if v]
    return Xv, names_v


def _null_z_scale(
    Xv: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    prior_sigma: float,
    intercept_sigma: float,
    null_fits: int,
    groups: np.ndarray | None,
    progress: bool,
    rng: np.random.Generator,
) -> float:
    """The divisor of the z-statistics: at least 1, the upper bound of the permuted fits' scale."""
    z_null = []
    for _ in tqdm(
        range(int(null_fits)),
        desc="bayes null fits",
        disable=None if progress else True,
        leave=False,
    ):
        m0, s0 = laplace_fit(
            Xv,
            permute_labels(codes, groups, rng),
            n_classes,
            prior_sigma,
            intercept_sigma,
        )
        z_null.append(m0 / np.maximum(s0, 1e-300))
    s_hat, s_up = null_scale(np.concatenate(z_null, axis=None))
    scale = max(1.0, s_up)
    log.info(
        "bayes: null z scale %.3f (95%% upper bound %.3f) from %d permuted-label fits; "
        "p-values from |z| / %.3f",
        s_hat,
        s_up,
        null_fits,
        scale,
    )
    return scale


def _sampled_posterior(
    Xv: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    method: str,
    prior_sigma: float,
    intercept_sigma: float,
    vi_iterations: int,
    draws: int,
    seed: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd from bambi's ADVI (``vi``) or NUTS (``mcmc``) draws."""
    model = _model(Xv, y, classes, prior_sigma, intercept_sigma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "vi":
            approx = model.fit(
                inference_method="vi",
                n=int(vi_iterations),
                random_seed=seed,
                progressbar=progress,
            )
            return _from_draws(approx.sample(int(draws), random_seed=seed).posterior, Xv.shape[1])
        idata = model.fit(
            draws=int(draws),
            tune=int(draws),
            chains=2,
            cores=1,
            random_seed=seed,
            progressbar=progress,
        )
        return _from_draws(idata.posterior, Xv.shape[1])


def _empty(classes: list[str], n_rows: int, p_direction: float) -> BayesResult:
    table = pd.DataFrame(
        columns=[
            "Feature",
            "Class",
            "Reference",
            "Mean",
            "SD",
            "P_Positive",
            "P_Negative",
            "HDI_Low",
            "HDI_High",
            "P_Value",
            "Selected",
        ]
    )
    selected = pd.DataFrame(columns=["Feature", "Class", "Mean", "SD", "P_Direction", "P_Value"])
    return BayesResult(table, selected, p_direction, n_rows)


def _summarise(
    mean, sd, names, classes, p_direction, correction, hdi_prob, n_rows, scale=1.0
) -> BayesResult:
    sd = np.maximum(sd, 1e-300)
    z = mean / sd
    p_pos = stats.norm.cdf(z)
    p_neg = stats.norm.sf(z)
    # two-sided p-value of "no effect" from the posterior z, on the null scale: claiming
    # a sign when either sign may be claimed costs twice the one-sided error
    p_value = np.minimum(2.0 * stats.norm.sf(np.abs(z) / scale), 1.0)
    half = stats.norm.ppf(0.5 + hdi_prob / 2.0) * sd
    alpha = 1.0 - p_direction
    passed, p_thr = reject(p_value, alpha, correction)
    threshold = float(stats.norm.cdf(scale * stats.norm.isf(p_thr / 2.0)))  # P(direction) to reach
    km = mean.shape[1]
    ref = classes[0]
    cls = classes[1:] if km == len(classes) - 1 else classes[-km:]
    table = pd.DataFrame(
        {
            "Feature": np.repeat(names, km),
            "Class": np.tile(cls, len(names)),
            "Reference": ref,
            "Mean": mean.ravel(),
            "SD": sd.ravel(),
            "P_Positive": p_pos.ravel(),
            "P_Negative": p_neg.ravel(),
            "HDI_Low": (mean - half).ravel(),
            "HDI_High": (mean + half).ravel(),
            "P_Value": p_value.ravel(),
            "Selected": passed.ravel(),
        }
    )
    best = np.argmax(np.abs(z), axis=1)
    rows = np.arange(len(names))
    sel = passed.any(axis=1)
    strength = np.abs(z[rows, best])
    order = [i for i in np.argsort(-strength, kind="stable") if sel[i]]
    selected = pd.DataFrame(
        {
            "Feature": [names[i] for i in order],
            "Class": [cls[best[i]] for i in order],
            "Mean": [mean[i, best[i]] for i in order],
            "SD": [sd[i, best[i]] for i in order],
            "P_Direction": [max(p_pos[i, best[i]], p_neg[i, best[i]]) for i in order],
            "P_Value": [p_value[i, best[i]] for i in order],
        }
    )
    log.info(
        "bayes: %d of %d BAs selected (P(direction) >= %.6g per BA and class, correction %s)",
        len(selected),
        len(names),
        threshold,
        correction,
    )
    return BayesResult(table, selected, threshold, n_rows, float(scale))
