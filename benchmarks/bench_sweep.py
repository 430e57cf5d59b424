"""Benchmark: wall time of a sweep (`python -m smp_balr.sweep`) with 1 and 2 queue workers,
a repeated sweep with nothing changed (up-to-date experiments reused), and `python -m smp_balr.report`.

Each worker count runs in its own fresh copy of the project (a temporary git repository,
like the tests'); the sweep's wall time includes bringing the shared stages (demo, format,
selection) up to date once. The repeated sweep and the report run in the 2-worker copy.

Usage: ``python benchmarks/bench_sweep.py [--size small|demo] [--grid small|default] [--jobs 1 2]``

* ``--size small``: 24 speakers x 40 utterances (the tests' corpus); ``demo``: params.yaml as is.
* ``--grid small``: labels x {all, slda} x {dt} x {0}; ``default``: the `sweep:` block of params.yaml.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["stages", "smp_balr", "params.yaml", "dvc.yaml", ".dvc/config", ".dvcignore", ".gitignore"]
SMALL = {"demo": {"n_speakers": 24, "n_test_speakers": 8, "utterances_per_speaker": 40},
         "labels": ["EmoClass", "Modality", "Noise"],  # too few speakers per language for Language
         "selection": {"bayes": {"max_rows": 600}},
         "model": {"mlp": {"max_iter": 15, "n_iter_no_change": 3},
                   "dt": {"grid": {"max_depth": [3, 6], "min_samples_split": [2], "min_samples_leaf": [1],
                                   "criterion": ["gini"]}, "cv_folds": 3, "n_jobs": 1}},
         "test": {"n_bootstrap": 200}, "explain": {"n_samples": 24, "background_size": 4}}
SMALL_GRID = {"label": None, "features": ["all", "slda"], "model": ["dt"], "balance": [0], "seeds": []}


def _merge(base: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def _env(dest: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(dest)
    env["DVC_NO_ANALYTICS"] = "1"
    for key, val in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@example.org"),
                     ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@example.org")):
        env.setdefault(key, val)
    return env


def make_copy(dest: Path, size: str, grid: str, jobs: int) -> None:
    for item in COPY:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    if size == "small":
        _merge(params, SMALL)
    if grid == "small":
        params["sweep"] = {**params.get("sweep", {}), **SMALL_GRID}
    params["sweep"]["jobs"] = jobs
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, env=_env(dest), check=True, capture_output=True)


def timed(cmd: list[str], dest: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=dest, env=_env(dest), capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed, proc.stdout + proc.stderr


def _queue_seconds(out: str) -> str:
    found = re.search(r"sweep finished in (\d+) s", out)
    return found.group(1) if found else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("small", "demo"), default="small")
    ap.add_argument("--grid", choices=("small", "default"), default="small")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", action="store_true", help="keep the project copies (paths printed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    print(f"corpus {args.size}, grid {args.grid}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    last = None
    try:
        for jobs in args.jobs:
            dest = tmp / f"jobs{jobs}"
            make_copy(dest, args.size, args.grid, jobs)
            secs, out = timed([sys.executable, "-m", "smp_balr.sweep"], dest)
            n = re.search(r"queueing (\d+) experiment", out).group(1)
            failed = len(re.findall(r"experiment \S+ failed: ", out))
            prep = re.search(r"shared stages: \d+ run.*\((\d+) s\)", out)
            print(f"sweep, {jobs} worker(s): {secs:7.1f} s wall ({n} experiments, {failed} failed; shared stages "
                  f"{prep.group(1) if prep else '?'} s, queue {_queue_seconds(out)} s)", flush=True)
            last = dest
        secs, out = timed([sys.executable, "-m", "smp_balr.sweep"], last)
        reused = re.search(r"(\d+) of \d+ configuration\(s\) already have", out)
        queued = re.search(r"queueing (\d+) experiment", out)
        print(f"repeated sweep, nothing changed: {secs:7.1f} s wall ({reused.group(1) if reused else 0} reused, "
              f"{queued.group(1) if queued else 0} queued again (failed ones); queue {_queue_seconds(out)} s)", flush=True)
        secs, _ = timed([sys.executable, "-m", "smp_balr.report"], last)
        print(f"report: {secs:7.1f} s wall", flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
