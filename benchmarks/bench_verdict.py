"""Calibration of the table verdict (Holm across labels) and of the presence-beyond test.

No model is trained: predictions are drawn from null models with speaker structure (every
test speaker leans to classes of its own, as the predictions of any model of
speaker-specific BAs do), which is what the permutation schemes must withstand.

- **Table claim**: tables of K = 3 and 5 labels, each a null label (speaker-level or
  varying within speakers, 2-4 classes, as :func:`benchmarks.support.nullcheck.null_label`
  draws them) with predictions that ignore it; every label gets the permutation p-value
  (:func:`smp_balr.evaluation.scores.permutation_pvalue`, ``required_permutations(alpha, K)``
  permutations) and the speaker-bootstrap interval, then
  :func:`smp_balr.evaluation.verdict.table_verdicts` (Holm). Reported: the share of tables with any
  null label called present (family-wise, stated ``alpha``), also for tables where one
  label is planted (its predictions right on a share of rows): share with a null label
  called present, and the planted label's power.
- **Presence beyond**: a label that is a noisy copy of a speaker-level "other" label
  (25% of the speakers flipped, or 20% of the rows), and a speaker-level label beyond a
  within-speaker label whose class mix depends on it (strata shared by speakers),
  predicted by a model that only knows the other label (with speaker-level and
  row-level errors): share called "present beyond" (stated ``alpha``); and labels with a
  signal of their own (predictions right on a share of rows): power.

Acceptance: the upper end of each 95% Clopper-Pearson interval of a false-claim rate is at
most twice its nominal level. Writes ``docs/calibration_verdict.json`` and ``.md``.

    python benchmarks/bench_verdict.py [--short] [--tables 1000] [--trials 1000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: benchmarks.support

from benchmarks.support.nullcheck import clopper_pearson, null_label  # noqa: E402
from smp_balr.core.multitest import required_permutations  # noqa: E402
from smp_balr.evaluation.conditional import CANNOT_SEPARATE, PRESENT_BEYOND, presence_beyond  # noqa: E402
from smp_balr.evaluation.scores import bootstrap_speakers, permutation_pvalue  # noqa: E402
from smp_balr.evaluation.verdict import PRESENT, table_verdicts  # noqa: E402


def _speakers(rng: np.random.Generator, n_speakers: int, mean_rows: int) -> np.ndarray:
    """Speaker of each test row; speakers have 0.5-1.5 x ``mean_rows`` rows."""
    rows = rng.integers(max(2, mean_rows // 2), int(mean_rows * 1.5) + 1, size=n_speakers)
    return np.repeat(np.array([f"s{i:03d}" for i in range(n_speakers)]), rows)


def _leaning_predictions(
    rng: np.random.Generator, spk_codes: np.ndarray, n_classes: int
) -> np.ndarray:
    """Predictions that ignore the label: every speaker draws its rows
    from a class mix of its own."""
    n_spk = int(spk_codes.max()) + 1
    mix = rng.dirichlet(np.full(n_classes, 0.5), size=n_spk)
    cum = np.cumsum(mix, axis=1)[spk_codes]
    return np.minimum((rng.random(spk_codes.size)[:, None] > cum).sum(axis=1), n_classes - 1)


def one_table(
    seed: int,
    k: int,
    alpha: float,
    planted: float | None,
    n_speakers: int,
    mean_rows: int,
    n_bootstrap: int,
) -> dict[str, Any]:
    """One table of ``k`` labels (the first planted when ``planted`` is a share
    of right predictions)."""
    rng = np.random.default_rng(seed)
    spk = _speakers(rng, n_speakers, mean_rows)
    _, codes = np.unique(spk, return_inverse=True)
    n_perm = required_permutations(alpha, k)
    p, low, chance, planted_label = {}, {}, {}, None
    for j in range(k):
        n_classes = int(rng.integers(2, 5))
        kind = "speaker" if j % 2 == 0 else "within"
        names = null_label(spk, kind, n_classes, rng)
        y = np.array([int(v[1:]) for v in names])
        pred = _leaning_predictions(rng, codes, n_classes)
        if planted is not None and j == 0:
            pred = np.where(rng.random(y.size) < planted, y, pred)
            planted_label = f"L{j}"
        p[f"L{j}"], _, _ = permutation_pvalue(y, pred, n_perm, seed=seed + j, speakers=spk)
        low[f"L{j}"], _, _ = bootstrap_speakers(y, pred, spk, n_bootstrap, seed=seed + j)
        chance[f"L{j}"] = 1.0 / np.unique(y).size
    out = table_verdicts(p, low, chance, alpha, "holm")
    null_present = [
        lab for lab, v in out.items() if lab != planted_label and v["verdict"] == PRESENT
    ]
    return {
        "any_null_present": bool(null_present),
        "planted_present": None
        if planted_label is None
        else out[planted_label]["verdict"] == PRESENT,
        "min_null_p": min(v["p_value"] for lab, v in out.items() if lab != planted_label),
        "n_permutations": n_perm,
    }


def one_beyond(
    seed: int, kind: str, own: float, n_speakers: int, mean_rows: int, n_perm: int, alpha: float
) -> dict[str, Any]:
    """A label that copies a speaker-level other label with noise;
    ``own``: share of predictions that see it."""
    rng = np.random.default_rng(seed)
    spk = _speakers(rng, n_speakers, mean_rows)
    _, codes = np.unique(spk, return_inverse=True)
    n_spk = int(codes.max()) + 1
    if kind == "over_within":
        # a speaker-level label (e.g. Gender) and a within-speaker label (e.g. arousal, 3 values)
        # whose mix depends on it; the model knows the within-speaker label only
        y = (rng.permutation(np.arange(n_spk) % 2))[codes]
        mix = np.where(y[:, None] == 1, [0.6, 0.3, 0.1], [0.1, 0.3, 0.6])
        other = (rng.random(codes.size)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1).clip(0, 2)
        lean = (rng.random(n_spk) < 0.1)[codes]
        pred = (other == 0).astype(int) ^ lean ^ (rng.random(codes.size) < 0.1)
        if own > 0:
            pred = np.where(rng.random(codes.size) < own, y, pred)
        r = presence_beyond(y, pred, other, spk, n_perm, seed=seed + 1, min_speakers=2, alpha=alpha)
        return {"verdict": r["verdict"], "p_value": r["p_value"]}
    other = (rng.permutation(np.arange(n_spk) % 2))[codes]
    flip = (rng.random(n_spk) < 0.25)[codes] if kind == "speaker" else rng.random(codes.size) < 0.2
    y = other ^ flip
    # the model knows the other label, errs per speaker (10% of them) and per row (10%)
    pred = other ^ (rng.random(n_spk) < 0.1)[codes] ^ (rng.random(codes.size) < 0.1)
    if own > 0:
        pred = np.where(rng.random(codes.size) < own, y, pred)
    r = presence_beyond(y, pred, other, spk, n_perm, seed=seed + 1, min_speakers=2, alpha=alpha)
    return {"verdict": r["verdict"], "p_value": r["p_value"]}


def _rate(hits: int, n: int, nominal: float | None) -> dict[str, Any]:
    low, high = clopper_pearson(hits, n)
    out = {
        "hits": hits,
        "n": n,
        "rate": hits / n if n else float("nan"),
        "ci_low": low,
        "ci_high": high,
    }
    if nominal is not None:
        out.update(nominal=nominal, accepted=bool(high <= 2 * nominal))
    return out


def run(
    n_tables: int,
    n_trials: int,
    alpha: float,
    n_speakers: int,
    mean_rows: int,
    n_bootstrap: int,
    n_perm_beyond: int,
    seed: int,
) -> dict[str, Any]:
    """All rows of the report."""
    rows: dict[str, Any] = {"table": [], "beyond": []}
    for k in (3, 5):
        for planted in (None, 0.3):
            t0 = time.perf_counter()
            res = [
                one_table(
                    seed + 7919 * i + 101 * k, k, alpha, planted, n_speakers, mean_rows, n_bootstrap
                )
                for i in range(n_tables)
            ]
            row = {
                "k": k,
                "planted": planted,
                "n_permutations": res[0]["n_permutations"],
                "any_null_present": _rate(sum(r["any_null_present"] for r in res), len(res), alpha),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            if planted is not None:
                row["planted_power"] = _rate(
                    sum(bool(r["planted_present"]) for r in res), len(res), None
                )
            rows["table"].append(row)
            logging.warning("table K=%d planted=%s: %s", k, planted, row["any_null_present"])
    for kind in ("speaker", "within", "over_within"):
        for own in (0.0, 0.1, 0.2):
            t0 = time.perf_counter()
            res = [
                one_beyond(
                    seed + 104729 * i + 13 * int(own * 10),
                    kind,
                    own,
                    n_speakers,
                    mean_rows,
                    n_perm_beyond,
                    alpha,
                )
                for i in range(n_trials)
            ]
            called = sum(r["verdict"] == PRESENT_BEYOND for r in res)
            row = {
                "kind": kind,
                "own_signal": own,
                "n_permutations": n_perm_beyond,
                "cannot_separate": sum(r["verdict"] == CANNOT_SEPARATE for r in res),
                "present_beyond": _rate(called, len(res), alpha if own == 0 else None),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            rows["beyond"].append(row)
            logging.warning("beyond %s own=%.1f: %s", kind, own, row["present_beyond"])
    return rows


def _fmt(d: dict[str, Any]) -> str:
    return f"{d['hits']}/{d['n']} = {d['rate']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"


def markdown(report: dict[str, Any]) -> str:
    """The tables of ``docs/calibration_verdict.md``."""
    a = report["alpha"]
    lines = [
        "<!-- generated by benchmarks/bench_verdict.py; do not edit -->",
        "",
        f"Test sets of {report['n_speakers']} speakers, about {report['mean_rows']} rows each; "
        "predictions from null models with speaker structure (no training). "
        f"Level alpha = {a:g}; intervals: 95% Clopper-Pearson; "
        f"accepted when the upper end of a false-claim rate is at most 2 x alpha = {2 * a:g}.",
        "",
        "Table claim (Holm across the K labels of a table; "
        "permutations: `required_permutations(alpha, K)`):",
        "",
        "| K | planted label | permutations | tables with a null label called present "
        "| accepted | planted label present |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]["table"]:
        planted = "none" if r["planted"] is None else f"1 ({r['planted']:.0%} rows right)"
        power = _fmt(r["planted_power"]) if "planted_power" in r else "-"
        lines.append(
            f"| {r['k']} | {planted} | {r['n_permutations']} | {_fmt(r['any_null_present'])} | "
            f"{'yes' if r['any_null_present']['accepted'] else 'NO'} | {power} |"
        )
    lines += [
        "",
        "Presence beyond an associated label, predicted by a model that knows only that label "
        "(`own signal`: share of rows whose prediction sees the label itself):",
        "",
        '| label | own signal | permutations | called "present beyond" | accepted '
        "| cannot be separated |",
        "|---|---|---|---|---|---|",
    ]
    noise = {
        "speaker": "copy of a speaker-level label, 25% of speakers flipped",
        "within": "copy of a speaker-level label, 20% of rows flipped",
        "over_within": "speaker-level, beyond a within-speaker label whose mix depends on it",
    }
    for r in report["rows"]["beyond"]:
        d = r["present_beyond"]
        acc = ("yes" if d["accepted"] else "NO") if "accepted" in d else "(power)"
        lines.append(
            f"| {noise[r['kind']]} | {r['own_signal']:.0%} | {r['n_permutations']} | {_fmt(d)} "
            f"| {acc} | {r['cannot_separate']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--short", action="store_true", help="300 tables and 300 trials per row (a few minutes)"
    )
    ap.add_argument("--tables", type=int, default=1000, help="tables per table row")
    ap.add_argument("--trials", type=int, default=1000, help="labels per presence-beyond row")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--speakers", type=int, default=24, help="test speakers per test set")
    ap.add_argument("--rows", type=int, default=25, help="mean test rows per speaker")
    ap.add_argument(
        "--bootstrap", type=int, default=300, help="speaker-bootstrap replicates per label"
    )
    ap.add_argument(
        "--permutations", type=int, default=500, help="permutations of each presence-beyond test"
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default="docs/calibration_verdict.json")
    ap.add_argument("--md", default="docs/calibration_verdict.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    n_tables, n_trials = (300, 300) if args.short else (args.tables, args.trials)
    t0 = time.perf_counter()
    rows = run(
        n_tables,
        n_trials,
        args.alpha,
        args.speakers,
        args.rows,
        args.bootstrap,
        args.permutations,
        args.seed,
    )
    report = {
        "alpha": args.alpha,
        "n_speakers": args.speakers,
        "mean_rows": args.rows,
        "n_bootstrap": args.bootstrap,
        "tables_per_row": n_tables,
        "trials_per_row": n_trials,
        "seed": args.seed,
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    text = markdown(report)
    print(text)
    for path, body in ((args.out, json.dumps(report, indent=2)), (args.md, text)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(body)
    print(f"wrote {args.out} and {args.md} in {report['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
