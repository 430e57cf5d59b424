"""Benchmark BA selection on planted, speaker-confounded data: 15,000 rows x 512 BAs, 4 classes.

Prints the median selection time over repeats (slda: scatter matrices + stepwise steps;
bayes: model build + fit + summary), peak memory, and precision/recall per unit.

    python benchmarks/bench_select.py [--repeats 5] [--bayes-repeats 2] [--bayes-rows 8000]
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: benchmarks.support

from benchmarks.support.planted import make_planted  # noqa: E402
from smp_balr.selection.bayes import bayes_select  # noqa: E402
from smp_balr.selection.quality import precision_recall  # noqa: E402
from smp_balr.selection.slda import forward_stepwise  # noqa: E402
from smp_balr.selection.units import prepare  # noqa: E402


def _fmt(q: dict) -> str:
    p = "-" if q["precision"] is None else f"{q['precision']:.2f}"
    return f"{q['n_selected']:4d} selected, precision {p}, recall {q['recall']:.2f}"


def _slda_times(
    X: np.ndarray, y: np.ndarray, spk: np.ndarray, names: list[str], truth: list[str], repeats: int
) -> None:
    """Median slda time and quality per unit and correction; printed."""
    for unit, correction in [
        ("utterance", "none"),
        ("utterance", "bonferroni"),
        ("within_speaker", "bonferroni"),
    ]:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            u = prepare(X, y, spk, unit)
            res = forward_stepwise(
                u.X,
                u.y,
                names,
                correction=correction,
                max_features=200,
                absorbed_dof=u.absorbed_dof,
                groups=u.groups,
            )
            times.append(time.perf_counter() - t0)
        q = precision_recall(res.table["Feature"], truth)
        print(
            f"slda  unit={unit:15s} correction={correction:10s}: median {np.median(times):.3f} s "
            f"(min {min(times):.3f}) | {_fmt(q)}"
        )


def _slda_memory(X: np.ndarray, y: np.ndarray, spk: np.ndarray, names: list[str]):
    """Peak traced memory of one within-speaker slda run, printed;
    returns the ``UnitData`` it prepared (bayes runs on it)."""
    tracemalloc.start()
    u = prepare(X, y, spk, "within_speaker")
    forward_stepwise(u.X, u.y, names, groups=u.groups, absorbed_dof=u.absorbed_dof)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"slda  within_speaker peak traced memory: {peak / 2**20:.0f} MiB")
    return u


def _bayes_times(u, names: list[str], truth: list[str], repeats: int, max_rows: int) -> None:
    """Median bayes (laplace) time and quality per correction on the ``UnitData``
    ``u``; printed."""
    Xc = u.matrix()
    for correction in ("bonferroni", "none"):
        times = []
        for r in range(repeats if correction == "bonferroni" else 1):
            t0 = time.perf_counter()
            res_b = bayes_select(
                Xc,
                u.y,
                names,
                method="laplace",
                correction=correction,
                max_rows=max_rows,
                seed=r,
                progress=False,
            )
            times.append(time.perf_counter() - t0)
        q = precision_recall(res_b.selected["Feature"], truth)
        print(
            f"bayes laplace within_speaker rows={res_b.n_rows} correction={correction:10s}: "
            f"median {np.median(times):.1f} s | {_fmt(q)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bayes-repeats", type=int, default=2)
    ap.add_argument("--bayes-rows", type=int, default=8000)
    ap.add_argument("--skip-bayes", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = make_planted(n_speakers=60, per_speaker=250, n_ba=512, n_planted=20, n_classes=4, seed=1)
    names = [c for c in data.table.columns if c.startswith("BA")]
    X = data.table[names].to_numpy(dtype=np.float64)
    y = data.table["Label"].to_numpy()
    spk = data.table["Speaker"].to_numpy()
    print(
        f"planted data: {X.shape[0]} rows x {X.shape[1]} BAs, 4 classes, 60 speakers, "
        "20 planted BAs"
    )
    _slda_times(X, y, spk, names, data.truth, args.repeats)
    u = _slda_memory(X, y, spk, names)
    if not args.skip_bayes:
        _bayes_times(u, names, data.truth, args.bayes_repeats, args.bayes_rows)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
