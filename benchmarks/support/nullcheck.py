"""Error rates of the selection claims and of the test verdict, measured on simulated corpora.

A corpus comes from the demo generator (:mod:`smp_balr.data.demo`: speaker-specific BA profiles,
widely varied activation rates, constant BAs, skewed per-speaker class mixes), so the
BA matrix has realistic speaker structure. On it we draw

- *null labels* independent of every BA: ``within`` (a class per utterance from a skewed
  per-speaker mix; a quarter of the speakers lack one class) or ``speaker`` (one class per
  speaker). Any BA selected for such a label is a false claim, and a "present" verdict is
  a false verdict;
- *planted labels*: the demo's EmoClass (utterance level, classes A/H/N/S, planted BAs
  known) and Language (speaker level), for recall and the realised false discovery rate.

Used by ``benchmarks/bench_calibration.py`` and ``tests/test_calibration.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from smp_balr.core.settings import DemoSettings, SelectionSettings, build
from smp_balr.data.demo import MAIN_EMOTIONS, generate
from smp_balr.selection.api import run_selection
from smp_balr.selection.multiple import reject

log = logging.getLogger(__name__)

LABEL = "Label"
NULL_KINDS = ("within", "speaker")


@dataclass
class Corpus:
    """One simulated corpus split into training and test speakers.

    Attributes
    ----------
    X_train, X_test : numpy.ndarray
        BA matrices (int8).
    spk_train, spk_test : numpy.ndarray
        Speaker of each row.
    planted : dict
        ``{"within" | "speaker": (y_train, y_test, truth)}``; ``y`` holds None for rows
        outside the label's classes (EmoClass X / U).
    """

    X_train: np.ndarray
    X_test: np.ndarray
    spk_train: np.ndarray
    spk_test: np.ndarray
    planted: dict[str, tuple[np.ndarray, np.ndarray, list[str]]]


def make_corpus(
    n_speakers: int,
    n_test_speakers: int,
    utterances_per_speaker: int,
    n_ba: int = 512,
    seed: int = 0,
    planted: dict[str, int] | None = None,
    n_constant: int = 12,
) -> Corpus:
    """A demo corpus of the given size (see :class:`smp_balr.core.settings.DemoSettings`)."""
    extra = {} if planted is None else {"planted": dict(planted)}
    settings = DemoSettings(
        seed=seed,
        n_speakers=n_speakers,
        n_test_speakers=n_test_speakers,
        utterances_per_speaker=utterances_per_speaker,
        n_ba=n_ba,
        n_constant=n_constant,
        **extra,
    )
    settings.validate()
    c = generate(settings)
    train = (c.labels["Group"] == "Train").to_numpy()
    spk = c.labels["Speaker"].to_numpy(dtype=object)
    emo = c.labels["EmoClass"].to_numpy(dtype=object)
    emo = np.where(np.isin(emo, MAIN_EMOTIONS), emo, None)
    lang = c.labels["Language"].to_numpy(dtype=object)
    return Corpus(
        X_train=c.ba[train],
        X_test=c.ba[~train],
        spk_train=spk[train],
        spk_test=spk[~train],
        planted={
            "within": (emo[train], emo[~train], list(c.truth["EmoClass"])),
            "speaker": (lang[train], lang[~train], list(c.truth["Language"])),
        },
    )


def make_corpus_mid(
    n_speakers: int,
    n_test_speakers: int,
    utterances_per_speaker: int,
    n_ba: int = 512,
    seed: int = 0,
    n_planted: int = 20,
) -> Corpus:
    """A harder corpus for the posterior: BAs with mid-range activation rates.

    :func:`benchmarks.support.planted.make_planted` (speaker logits N(0, 1.5) around
    rate 0.5, skewed class mixes, ``n_planted`` BAs with a within-speaker class effect of
    1.0 logit) for the planted within-speaker label; there is no speaker-level truth in
    this generator.
    """
    from benchmarks.support.planted import make_planted

    p = make_planted(
        n_speakers=n_speakers,
        per_speaker=utterances_per_speaker,
        n_ba=n_ba,
        n_planted=n_planted,
        n_classes=4,
        seed=seed,
    )
    spk = p.table["Speaker"].to_numpy(dtype=object)
    test_spk = np.random.default_rng([seed, 3]).choice(
        np.unique(spk), size=n_test_speakers, replace=False
    )
    test = np.isin(spk, test_spk)
    X = p.table[[f"BA{j}" for j in range(n_ba)]].to_numpy(np.int8)
    y = p.table["Label"].to_numpy(dtype=object)
    planted = (y[~test], y[test], list(p.truth))
    return Corpus(
        X_train=X[~test],
        X_test=X[test],
        spk_train=spk[~test],
        spk_test=spk[test],
        planted={"within": planted},
    )


def null_label(
    speakers: np.ndarray, kind: str, n_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """A label with no link to any BA.

    Parameters
    ----------
    speakers : numpy.ndarray
        Speaker of each row.
    kind : str
        ``within``: each speaker draws a skewed class mix (Dirichlet(2)), a quarter of the
        speakers lack one class, and every row draws its class from its speaker's mix;
        ``speaker``: every speaker has one class (each class on at least 2 speakers).
    n_classes : int
        Classes ``C0..C<k-1>``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray of str
    """
    names = np.array([f"C{k}" for k in range(n_classes)], dtype=object)
    uniq, codes = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
    S = len(uniq)
    if kind == "speaker":
        base = np.arange(S) % n_classes
        return names[rng.permutation(base)[codes]]
    if kind != "within":
        raise ValueError(f"kind must be one of {NULL_KINDS}, got {kind!r}")
    mix = rng.dirichlet(np.full(n_classes, 2.0), size=S)
    lacking = rng.random(S) < 0.25
    mix[lacking, rng.integers(0, n_classes, size=S)[lacking]] = 0.0
    mix /= mix.sum(axis=1, keepdims=True)
    cum = np.cumsum(mix, axis=1)[codes]
    draws = (rng.random(len(codes))[:, None] > cum).sum(axis=1)
    return names[np.minimum(draws, n_classes - 1)]


def frame(X: np.ndarray, speakers: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Training table as the select stages see it (rows with a None label dropped)."""
    keep = np.asarray([v is not None for v in y])
    df = pd.DataFrame(X[keep], columns=[f"BA{j}" for j in range(X.shape[1])])
    df.insert(0, LABEL, np.asarray(y, dtype=object)[keep].astype(str))
    df.insert(0, "Speaker", np.asarray(speakers)[keep])
    return df


def select(
    df: pd.DataFrame, method: str, correction: str, seed: int, extra: dict[str, Any] | None = None
) -> list[str]:
    """BAs selected by ``method`` under ``correction`` with default settings otherwise."""
    settings: dict[str, Any] = {"unit": "auto", "correction": correction}
    settings.update(extra or {})
    return list(
        run_selection(
            df, LABEL, method, build(SelectionSettings, settings, "selection"), seed
        ).features["Feature"]
    )


def verdict_pvalue(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    spk_test: np.ndarray,
    seed: int,
    n_permutations: int = 500,
) -> tuple[float, bool, str]:
    """Test verdict of a cheap linear model (ridge classifier on all BAs) through :func:`evaluate`.

    The permutation p-value is valid for any predictions made without the test labels;
    what is checked is that it stays uniform when the predictions cluster by speaker, as
    those of any model of speaker-specific BAs do.

    Returns
    -------
    (float, bool, str)
        Permutation p-value, whether the verdict says "present", permutation scheme.
    """
    from sklearn.linear_model import RidgeClassifier

    from smp_balr.evaluation.scores import evaluate, verdict

    model = RidgeClassifier(alpha=10.0)
    model.fit(X_train, y_train)
    pred = model.predict(X_test)
    classes = sorted(set(map(str, y_train)) | set(map(str, y_test)))
    m = evaluate(y_test, pred, classes, spk_test, n_permutations, 200, seed)
    return m["permutation"]["p_value"], "ABOVE" in verdict(m), m["permutation"]["scheme"]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for ``k`` successes in ``n`` trials."""
    a = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1.0 - a, k + 1, n - k))
    return low, high


@dataclass
class CellSize:
    """A corpus size: demo speakers, test speakers, utterances per speaker, BAs."""

    n_speakers: int
    n_test_speakers: int
    utterances_per_speaker: int
    n_ba: int = 512
    planted: dict[str, int] | None = None
    n_constant: int = 12
    generator: str = "demo"  # demo: smp_balr.data.demo; mid: make_corpus_mid (mid-range BA rates)

    @property
    def train_rows(self) -> int:
        return (self.n_speakers - self.n_test_speakers) * self.utterances_per_speaker


def run_corpus(
    size: CellSize,
    seed: int,
    n_labels: int,
    selectors: tuple[str, ...] = ("slda", "bayes"),
    n_classes: int = 3,
    n_permutations: int = 500,
    verdicts: bool = True,
    planted_corrections: tuple[str, ...] = ("bonferroni", "fdr_bh"),
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Claims on one corpus: ``n_labels`` null labels of each kind, and its planted labels.

    Parameters
    ----------
    size : CellSize
        Corpus size.
    seed : int
        Seed of the corpus and of the null labels.
    n_labels : int
        Null labels of each kind (``within``, ``speaker``).
    selectors : tuple of str
        Selection methods to check.
    n_classes : int
        Classes of the null labels.
    n_permutations : int
        Permutations of the verdict p-value.
    verdicts : bool
        Also train a model per null label and record its test verdict.
    planted_corrections : tuple of str
        Corrections run on the planted labels (recall, false discovery proportion).
    settings : dict, optional
        Extra ``selection`` settings (e.g. ``{"bayes": {"null_fits": 0}}``).

    Returns
    -------
    dict
        ``null[kind][selector]``: false BAs per label; ``verdict[kind]``: list of
        ``(p_value, present, scheme)``; ``planted[kind][selector][correction]``: list of
        ``(n_selected, true_positives, n_truth)``.
    """
    if size.generator == "mid":
        c = make_corpus_mid(
            size.n_speakers, size.n_test_speakers, size.utterances_per_speaker, size.n_ba, seed
        )
    else:
        c = make_corpus(
            size.n_speakers,
            size.n_test_speakers,
            size.utterances_per_speaker,
            size.n_ba,
            seed,
            size.planted,
            size.n_constant,
        )
    rng = np.random.default_rng([seed, 12])
    out: dict[str, Any] = {"null": {}, "verdict": {}, "planted": {}}
    for kind in NULL_KINDS:
        out["null"][kind] = {m: [] for m in selectors}
        out["verdict"][kind] = []
        for i in range(n_labels):
            y_tr = null_label(c.spk_train, kind, n_classes, rng)
            df = frame(c.X_train, c.spk_train, y_tr)
            for m in selectors:
                out["null"][kind][m].append(len(select(df, m, "bonferroni", seed + i, settings)))
            if verdicts:
                y_te = null_label(c.spk_test, kind, n_classes, rng)
                p, present, scheme = verdict_pvalue(
                    c.X_train, y_tr, c.X_test, y_te, c.spk_test, seed + i, n_permutations
                )
                out["verdict"][kind].append((p, bool(present), scheme))
        if kind not in c.planted:
            continue
        y_tr, _, truth = c.planted[kind]
        df = frame(c.X_train, c.spk_train, _drop_rare(y_tr, c.spk_train))
        out["planted"][kind] = {}
        for m in selectors:
            out["planted"][kind][m] = {}
            table = None
            for corr in planted_corrections:
                if m == "bayes" and table is not None:
                    # the same fit under another correction: apply the rule to its p-values
                    # (alpha = 1 - p_direction, default 0.05)
                    alpha = 1.0 - float(
                        ((settings or {}).get("bayes") or {}).get("p_direction", 0.95)
                    )
                    passed, _ = reject(table["P_Value"].to_numpy(), alpha, corr)
                    chosen = sorted(set(table.loc[passed, "Feature"]))
                else:
                    chosen_settings = build(
                        SelectionSettings,
                        {"unit": "auto", "correction": corr, **(settings or {})},
                        "selection",
                    )
                    run = run_selection(df, LABEL, m, chosen_settings, seed)
                    chosen = list(run.features["Feature"])
                    table = run.table
                tp = len(set(chosen) & set(truth))
                out["planted"][kind][m][corr] = (len(chosen), tp, len(truth))
    return out


def _drop_rare(y: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Classes held by fewer than 2 training speakers set to None (as a class filter would)."""
    known = np.asarray([v is not None for v in y])
    pairs = pd.DataFrame(
        {"y": np.asarray(y, dtype=object)[known], "s": np.asarray(speakers)[known]}
    )
    n_spk = pairs.groupby("y")["s"].nunique()
    rare = set(n_spk.index[n_spk < 2])
    return np.asarray([None if v in rare else v for v in y], dtype=object)


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool :func:`run_corpus` results of one cell into rates with 95% intervals."""
    first = results[0]
    summary: dict[str, Any] = {"null": {}, "verdict": {}, "planted": {}}
    for kind, per in first["null"].items():
        summary["null"][kind] = {
            m: _selection_rate([r["null"][kind][m] for r in results]) for m in per
        }
    if len(first["null"]) > 1:  # both kinds pooled: the cell's family-wise rate
        summary["null"]["both"] = {
            m: _selection_rate([r["null"][k][m] for r in results for k in first["null"]])
            for m in next(iter(first["null"].values()))
        }
    for kind in first["verdict"]:
        rows = [v for r in results for v in r["verdict"][kind]]
        if rows:
            summary["verdict"][kind] = _verdict_rate(rows)
    for kind, per in first["planted"].items():
        summary["planted"][kind] = {
            m: {corr: _recovery([r["planted"][kind][m][corr] for r in results]) for corr in by_corr}
            for m, by_corr in per.items()
        }
    return summary


def _selection_rate(false_bas: list[list[int]]) -> dict[str, Any]:
    """Share of null labels with a BA selected (and its interval), from false BAs per label."""
    counts = np.concatenate(false_bas).astype(int)
    k, n = int((counts > 0).sum()), int(counts.size)
    low, high = clopper_pearson(k, n)
    return {
        "n_labels": n,
        "with_selection": k,
        "rate": k / n if n else None,
        "ci_low": low,
        "ci_high": high,
        "false_bas": int(counts.sum()),
    }


def _verdict_rate(rows: list[tuple[float, bool, str]]) -> dict[str, Any]:
    """Share of "present" verdicts on null labels, and how uniform their p-values are."""
    p = np.array([v[0] for v in rows])
    k, n = int(sum(v[1] for v in rows)), len(rows)
    low, high = clopper_pearson(k, n)
    ks = stats.kstest(p, "uniform")
    return {
        "n_labels": n,
        "present": k,
        "rate": k / n,
        "ci_low": low,
        "ci_high": high,
        "p_below_005": int((p < 0.05).sum()),
        "ks_stat": float(ks.statistic),
        "ks_p": float(ks.pvalue),
        "scheme": sorted({v[2] for v in rows}),
    }


def _recovery(rows: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Mean recall and false discovery proportion on a planted label over corpora."""
    sel = np.array([v[0] for v in rows], dtype=float)
    tp = np.array([v[1] for v in rows], dtype=float)
    truth = np.array([v[2] for v in rows], dtype=float)
    fdp = np.where(sel > 0, (sel - tp) / np.maximum(sel, 1), 0.0)
    return {
        "n_corpora": len(rows),
        "recall": float((tp / truth).mean()),
        "fdr": float(fdp.mean()),
        "mean_selected": float(sel.mean()),
    }
