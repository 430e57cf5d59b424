"""Benchmark: wall time of the `train` + `test` stages for `dt` (full grid) and `mlp`.

Runs the real stage scripts in a temporary project copy on a demo-sized corpus:
the real demo tables when ``data/demo_train_data.csv`` exists, otherwise a synthetic one
(72 train + 16 test speakers x 200 utterances x 512 BAs, four emotion classes).
Prints the median wall time of ``--repeats`` runs and the peak RSS of the stage processes.

Usage::

    python benchmarks/bench_train_test.py [--repeats 3] [--methods logreg dt mlp] [--synthetic]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("A", "H", "N", "S")


def synthetic_table(n_speakers: int, n_utt: int, n_ba: int, seed: int, prefix: str) -> pd.DataFrame:
    """Speakers with their own BA base rates; each class raises 8 BAs by 0.25."""
    rng = np.random.default_rng(seed)
    n = n_speakers * n_utt
    speakers = np.repeat([f"{prefix}{s:03d}" for s in range(n_speakers)], n_utt)
    y = rng.integers(0, len(CLASSES), n)
    base = np.repeat(rng.random((n_speakers, n_ba)), n_utt, axis=0)
    for k in range(len(CLASSES)):
        rows = y == k
        base[np.ix_(rows, np.arange(k * 8, k * 8 + 8))] += 0.25
    bits = (rng.random((n, n_ba)) < np.clip(base, 0, 1)).astype(np.int8)
    df = pd.DataFrame(bits, columns=[f"BA{j}" for j in range(n_ba)])
    df.insert(0, "EmoClass", np.array(CLASSES)[y])
    df.insert(0, "Group", "Train" if prefix == "tr" else "Test")
    df.insert(0, "Speaker", speakers)
    df.insert(0, "FileName", [f"{s}_{i}.wav" for s, i in zip(speakers, range(n))])
    return df


def prepare(dest: Path, synthetic: bool = False) -> str:
    for item in ("stages", "smp_balr"):
        shutil.copytree(ROOT / item, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "params.yaml", dest / "params.yaml")
    (dest / "data").mkdir()
    (dest / "features" / "EmoClass").mkdir(parents=True)
    real = ROOT / "data" / "demo_train_data.csv"
    if not synthetic and real.is_file() and (ROOT / "data" / "demo_test_data.csv").is_file():
        shutil.copy2(real, dest / "data" / "demo_train_data.csv")
        shutil.copy2(ROOT / "data" / "demo_test_data.csv", dest / "data" / "demo_test_data.csv")
        source = "real demo tables"
    else:
        synthetic_table(72, 200, 512, 1, "tr").to_csv(
            dest / "data" / "demo_train_data.csv", index=False
        )
        synthetic_table(16, 200, 512, 2, "te").to_csv(
            dest / "data" / "demo_test_data.csv", index=False
        )
        source = "synthetic 72+16 speakers x 200 utt x 512 BAs"
    header = pd.read_csv(dest / "data" / "demo_train_data.csv", nrows=0).columns
    bas = [c for c in header if c.startswith("BA")]
    pd.DataFrame({"Feature": bas}).to_csv(
        dest / "features" / "EmoClass" / "EmoClass_all_features.csv", index=False
    )
    return source


def set_params(dest: Path, method: str) -> None:
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params.update({"label": "EmoClass", "model": {**params["model"], "method": method}})
    params["data"]["name"] = "demo"
    params["features"] = {"method": "all"}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


STAGE_TIMEOUT = 3600  # seconds a stage may take before the benchmark gives up


def run_stage(dest: Path, stage: str) -> tuple[float, float]:
    """Run one stage script; return (wall seconds, CPU seconds of it and its workers)."""
    env = dict(os.environ, PYTHONPATH=str(dest))
    cpu0, start = _children_cpu(), time.perf_counter()
    cmd = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    words = cmd.split()  # python -m stages.x
    try:
        proc = subprocess.run(
            [sys.executable, *words[1:]],
            cwd=dest,
            env=env,
            capture_output=True,
            text=True,
            timeout=STAGE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{stage} did not finish within {STAGE_TIMEOUT} s") from None
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{stage} failed:\n{proc.stderr[-2000:]}")
    return elapsed, _children_cpu() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["logreg", "dt", "mlp"])
    parser.add_argument(
        "--synthetic", action="store_true", help="use the 14,400 x 512 synthetic corpus"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp)
        source = prepare(dest, args.synthetic)
        rows = len(pd.read_csv(dest / "data" / "demo_train_data.csv", usecols=["Speaker"]))
        print(f"data: {source}; {rows} training rows")
        for method in args.methods:
            set_params(dest, method)
            times, cpus = [], []
            for _ in range(args.repeats):
                (t_train, c_train), (t_test, c_test) = (
                    run_stage(dest, "train"),
                    run_stage(dest, "test"),
                )
                times.append((t_train, t_test))
                cpus.append(c_train + c_test)
            train_m = yaml.safe_load((dest / "metrics" / "train.json").read_text())
            test_m = yaml.safe_load((dest / "metrics" / "test.json").read_text())
            med_train = statistics.median(t for t, _ in times)
            med_test = statistics.median(t for _, t in times)
            score = train_m.get("cv_score", train_m.get("validation_score"))
            print(
                f"{method}: train {med_train:.1f} s + test {med_test:.1f} s "
                f"= {med_train + med_test:.1f} s "
                f"(median of {args.repeats}; CPU {statistics.median(cpus):.0f} s, "
                f"load {os.getloadavg()[0]:.1f}); train score {score:.3f}; test balanced acc "
                f"{test_m['balanced_accuracy']:.3f} [{test_m['bootstrap']['ci_low']:.3f}, "
                f"{test_m['bootstrap']['ci_high']:.3f}] "
                f"vs chance {test_m['chance']['balanced_accuracy']:.3f}, "
                f"p={test_m['permutation']['p_value']:.4g}"
            )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a stage process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
