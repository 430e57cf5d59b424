"""Benchmark: the dt hyper-parameter search strategies against the full grid.

Generates a demo corpus (``--speakers`` x 200 utterances x 512 BAs, 20% of the speakers in
Test), searches the params.yaml grid (EmoClass, classes A/H/N/S, 5 speaker folds) with each
strategy of :func:`smp_balr.model.tree_search.search_tree`, refits on all training rows and
scores the Test speakers. Prints wall and CPU seconds (this process and its joblib workers),
the chosen parameters and the test balanced accuracy of each.

Usage::

    python benchmarks/bench_tree_search.py [--speakers 500] [--strategies full subsample halving]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import psutil
from sklearn.metrics import balanced_accuracy_score

from smp_balr.core.settings import DemoSettings
from smp_balr.data.demo import generate
from smp_balr.model.tree_search import STRATEGIES, search_tree

GRID = {
    "max_depth": [5, 10, 15],
    "min_samples_split": [2, 5, 10],
    "min_samples_leaf": [1, 2, 5],
    "criterion": ["gini", "entropy"],
}


def cpu_seconds() -> float:
    """User + system CPU of this process and its live children (joblib's workers)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=500)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--max-search-rows", type=int, default=20000)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    corpus = generate(
        DemoSettings(
            n_speakers=args.speakers,
            n_test_speakers=round(0.2 * args.speakers),
            utterances_per_speaker=200,
        )
    )
    lab = corpus.labels
    keep = lab["EmoClass"].isin(["A", "H", "N", "S"]).to_numpy()
    train = keep & (lab["Group"] == "Train").to_numpy()
    test = keep & (lab["Group"] == "Test").to_numpy()
    y = np.unique(lab["EmoClass"].to_numpy(dtype=str), return_inverse=True)[1]
    groups = lab["Speaker"].to_numpy(dtype=str)
    print(
        f"{len(lab):,} utterances, {int(train.sum()):,} training rows, "
        f"{int(test.sum()):,} test rows"
    )
    for strategy in args.strategies:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        tree, info = search_tree(
            corpus.ba[train],
            y[train],
            groups[train],
            GRID,
            cv_folds=5,
            seed=42,
            n_jobs=args.n_jobs,
            strategy=strategy,
            max_search_rows=args.max_search_rows,
        )
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        score = balanced_accuracy_score(y[test], tree.predict(corpus.ba[test].astype(np.float32)))
        print(
            f"{strategy:<10} wall {wall:7.1f} s  cpu {cpu:7.1f} s  fits {info['n_fits']:4d}  "
            f"rows searched {info['search_rows']:,}  CV {info['cv_score']:.4f}  "
            f"test balanced accuracy {score:.4f}  "
            f"best {info['best_params']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
