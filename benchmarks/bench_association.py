"""Benchmark of the per-BA association analysis: speed, recall on correlated BAs, null calibration.

Figures printed (and written as JSON with ``--out``):

- **speed**: one label at 100,000 utterances x 512 BAs (200 speakers), default settings
  (``maxt``, 499 permutations, 499 bootstrap resamples): a two-class within-speaker label,
  a four-class within-speaker label, a speaker-level label; and ``fdr_bh``.
- **recall** on the demo generator's correlated block (BAs thresholded from one low-rank
  latent; ``Whisper`` carried by latent factor 0 within speakers, ``Gender`` by factor 1
  between speakers; 40 training speakers): recall and false BAs at the default error control
  (maxt, family-wise 5%) and under ``fdr_bh`` (realised false discovery rate), beside the
  selectors' (slda, bayes: the joint question) with ``--selectors``.
- **null calibration**: labels with no signal drawn on the same corpora (``within``: a class
  per utterance with a skewed share per speaker; ``speaker``: a class per speaker), per cell
  (2 sizes x independent BAs / correlated BAs): the share of null labels with at least one
  associated BA and its 95% Clopper-Pearson interval, for maxt (stated family-wise 5%) and
  fdr_bh (under a complete null the false discovery rate is that same share; stated 5%).

    python benchmarks/bench_association.py [--short] [--labels 100] [--selectors] [--out FILE]

Timings depend on the machine's load (the development machine has 2 shared cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: benchmarks.support

from benchmarks.support.nullcheck import clopper_pearson  # noqa: E402
from smp_balr.core.settings import (
    AssociationSettings,  # noqa: E402
    DemoSettings,  # noqa: E402
)
from smp_balr.data.demo import generate  # noqa: E402
from smp_balr.selection.association import associate  # noqa: E402

DEFAULT = AssociationSettings()
PLANTED = {"Language": 4, "Modality": 4, "EmoClass": 8}
# sizes: (speakers, of which test, utterances per speaker); the independent BAs are the
# demo's own (n_ind), the correlated ones its correlated block (n_corr)
SIZES = {"s40x30": (48, 8, 30), "s56x80": (64, 8, 80)}


def _corpus(seed: int, speakers: int, test: int, utts: int, n_ind: int, n_corr: int):
    s = DemoSettings(
        seed=seed,
        n_speakers=speakers,
        n_test_speakers=test,
        utterances_per_speaker=utts,
        n_ba=n_ind,
        planted=PLANTED,
        n_constant=4,
        correlated={"n_ba": n_corr},
    )
    c = generate(s)
    train = (c.labels["Group"] == "Train").to_numpy()
    return c, c.ba[train], c.labels[train].reset_index(drop=True)


def speed(n: int = 100_000, p: int = 512, n_spk: int = 200, seed: int = 0) -> dict[str, float]:
    """Seconds of :func:`associate` at default settings on one label of ``n`` rows x ``p`` BAs."""
    rng = np.random.default_rng(seed)
    spk = np.repeat(np.arange(n_spk), n // n_spk)
    X = (rng.random((n, p)) < rng.uniform(0.05, 0.95, p)).astype(np.int8)
    labels = {
        "within, 2 classes": np.where(rng.random(n) < rng.beta(2, 2, n_spk)[spk], "A", "B"),
        "within, 4 classes": rng.choice(list("ABCD"), n),
        "speaker, 2 classes": np.where(rng.permutation(n_spk)[spk] % 2 == 0, "F", "M"),
    }
    out = {}
    for name, y in labels.items():
        t0 = time.perf_counter()
        associate(
            X,
            y,
            spk,
            correction=DEFAULT.correction,
            permutations=DEFAULT.permutations,
            bootstrap=DEFAULT.bootstrap,
            alpha=DEFAULT.alpha,
            seed=1,
        )
        out[f"maxt, {name}"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    associate(
        X,
        labels["within, 2 classes"],
        spk,
        correction="fdr_bh",
        bootstrap=DEFAULT.bootstrap,
        seed=1,
    )
    out["fdr_bh, within, 2 classes"] = round(time.perf_counter() - t0, 2)
    return out


def recall(n_corpora: int, selectors: bool, seed: int = 500) -> dict[str, Any]:
    """Recall of the carriers of Whisper and Gender (40 training speakers)
    by association and the selectors."""
    rows: dict[str, list] = {}
    for i in range(n_corpora):
        c, X, lab = _corpus(seed + i, 48, 8, 40, 128, 256)
        names = [f"BA{j}" for j in range(X.shape[1])]
        for label in ("Whisper", "Gender"):
            truth = set(c.truth[label])
            for corr in ("maxt", "fdr_bh"):
                res = associate(
                    X,
                    lab[label].to_numpy(),
                    lab["Speaker"].to_numpy(),
                    names,
                    correction=corr,
                    permutations=DEFAULT.permutations,
                    bootstrap=0,
                    alpha=DEFAULT.alpha,
                    seed=i,
                )
                found = set(res.table.loc[res.table["associated"], "BA"])
                rows.setdefault(f"{label} ({res.info['unit']}) association {corr}", []).append(
                    (
                        len(found & truth) / len(truth),
                        len(found - truth),
                        len(found - truth) / max(len(found), 1),
                    )
                )
            if selectors and i < 2:
                from smp_balr.core.settings import SelectionSettings
                from smp_balr.selection.api import run_selection

                df = pd.concat([lab, pd.DataFrame(X, columns=names)], axis=1)
                for m in ("slda", "bayes"):
                    f = set(
                        run_selection(df, label, m, SelectionSettings(), seed).features["Feature"]
                    )
                    rows.setdefault(f"{label} selector {m} (bonferroni)", []).append(
                        (
                            len(f & truth) / len(truth),
                            len(f - truth),
                            len(f - truth) / max(len(f), 1),
                        )
                    )
    return {
        k: {
            "corpora": len(v),
            "recall_mean": float(np.mean([r[0] for r in v])),
            "recall_min": float(np.min([r[0] for r in v])),
            "false_bas_total": int(sum(r[1] for r in v)),
            "realised_fdr": float(np.mean([r[2] for r in v])),
        }
        for k, v in rows.items()
    }


def null_calibration(n_labels: int, per_corpus: int, seed: int = 900) -> dict[str, Any]:
    """Share of null labels with >= 1 associated BA, per size, BA kind, label kind
    and correction."""
    counts: dict[tuple, list[int]] = {}
    n_corpora = max(1, -(-n_labels // per_corpus))
    for size, (speakers, test, utts) in SIZES.items():
        for i in range(n_corpora):
            _, X, lab = _corpus(seed + 31 * i + 7 * speakers, speakers, test, utts, 256, 256)
            spk_codes, spk_names = pd.factorize(lab["Speaker"])
            rng = np.random.default_rng([seed, i, speakers])
            for _ in range(per_corpus):
                share = rng.beta(1.5, 1.5, len(spk_names))
                labels = {
                    "within": np.where(rng.random(len(lab)) < share[spk_codes], "H", "T"),
                    "speaker": np.where(
                        rng.permutation(len(spk_names))[spk_codes] % 2 == 0, "H", "T"
                    ),
                }
                for kind, y in labels.items():
                    for bas, cols in (
                        ("independent", slice(0, 256)),
                        ("correlated", slice(256, 512)),
                    ):
                        for corr in ("maxt", "fdr_bh"):
                            res = associate(
                                X[:, cols],
                                y,
                                lab["Speaker"].to_numpy(),
                                correction=corr,
                                permutations=DEFAULT.permutations,
                                bootstrap=0,
                                alpha=DEFAULT.alpha,
                                seed=int(rng.integers(1 << 30)),
                            )
                            counts.setdefault((size, bas, kind, corr), []).append(
                                int(res.info["n_associated_tests"] > 0)
                            )
    out = {}
    for (size, bas, kind, corr), hits in counts.items():
        k, n = int(sum(hits)), len(hits)
        low, high = clopper_pearson(k, n)
        out[f"{size} | {bas} | {kind} | {corr}"] = {
            "labels": n,
            "with_associated": k,
            "rate": k / n,
            "ci_low": low,
            "ci_high": high,
        }
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--short",
        action="store_true",
        help="20 null labels per cell, 2 recall corpora, smaller speed test",
    )
    ap.add_argument("--labels", type=int, default=100, help="null labels of each kind per cell")
    ap.add_argument(
        "--per-corpus", type=int, default=20, help="null labels of each kind per generated corpus"
    )
    ap.add_argument("--recall-corpora", type=int, default=5)
    ap.add_argument(
        "--selectors", action="store_true", help="also slda and bayes on the first 2 recall corpora"
    )
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: speed, recall, null")
    ap.add_argument("--out", default="", help="write the figures as JSON here")
    return ap


def _speed_part(report: dict[str, Any], short: bool) -> None:
    """Time the association at one size; print the seconds."""
    n = 20_000 if short else 100_000
    report["speed_seconds"] = {"rows": n, "bas": 512, **speed(n=n)}
    print(f"speed, {n} utterances x 512 BAs, 200 speakers (seconds, loaded machine):")
    for k, v in report["speed_seconds"].items():
        if k not in ("rows", "bas"):
            print(f"  {k}: {v}")


def _recall_part(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Recall on the correlated block; print its table."""
    t0 = time.perf_counter()
    report["recall"] = recall(2 if args.short else args.recall_corpora, args.selectors)
    print(
        "\nrecall on the correlated block (256 correlated + 128 independent BAs, "
        f"40 training speakers x 40 utterances), {time.perf_counter() - t0:.0f} s:"
    )
    print(
        "| label, method | corpora | recall mean | recall min | false BAs (total) | realised FDR |"
    )
    print("|---|---|---|---|---|---|")
    for k, d in report["recall"].items():
        print(
            f"| {k} | {d['corpora']} | {d['recall_mean']:.3f} | {d['recall_min']:.3f} "
            f"| {d['false_bas_total']} | {d['realised_fdr']:.3f} |"
        )


def _null_part(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Null calibration per cell; print its table."""
    t0 = time.perf_counter()
    n_labels = 20 if args.short else args.labels
    report["null"] = null_calibration(n_labels, min(args.per_corpus, n_labels))
    print(
        f"\nnull labels (share with >= 1 associated BA; stated 5%; 95% Clopper-Pearson), "
        f"{time.perf_counter() - t0:.0f} s:"
    )
    print("| size | BAs | null label | correction | labels with >= 1 associated | 95% interval |")
    print("|---|---|---|---|---|---|")
    for k, d in report["null"].items():
        print(
            f"| {k.replace(' | ', ' | ')} "
            f"| {d['with_associated']}/{d['labels']} = {d['rate']:.3f} "
            f"| [{d['ci_low']:.3f}, {d['ci_high']:.3f}] |"
        )


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    np.seterr(all="ignore")
    skip = set(filter(None, args.skip.split(",")))
    report: dict[str, Any] = {
        "settings": {
            "correction": DEFAULT.correction,
            "permutations": DEFAULT.permutations,
            "bootstrap": DEFAULT.bootstrap,
            "alpha": DEFAULT.alpha,
        }
    }
    t_all = time.perf_counter()
    if "speed" not in skip:
        _speed_part(report, args.short)
    if "recall" not in skip:
        _recall_part(report, args)
    if "null" not in skip:
        _null_part(report, args)
    report["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    print(f"\ntotal {report['wall_seconds']:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
