"""Benchmark: the study stages through `dvc repro` on a copy of the project.

Runs every study stage in one ``dvc repro``, as users do, and prints per label the stage's
own wall time and peak memory (from its last log line), the seconds its configurations
spent fitting and testing (summed over the workers) and the explain time of the chosen one;
then the overhead per configuration beyond those (the whole run's wall time, dvc and Python
start-ups included, minus fit and test over the workers and explain), the report stage and a
no-op ``dvc repro``.

    python benchmarks/bench_study.py --corpus small   # 1,600 utterances,
                                                      # 4 labels x 18 configurations
    python benchmarks/bench_study.py --corpus demo    # the default demo corpus (12,000 utterances)
    python benchmarks/bench_study.py --corpus 100k    # 100,000 utterances, 3 labels
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
ITEMS = ["stages", "smp_balr", "params.yaml", "dvc.yaml", ".dvc/config", ".dvcignore", ".gitignore"]
CORPORA = {
    "small": {
        "n_speakers": 40,
        "n_test_speakers": 12,
        "utterances_per_speaker": 40,
    },  # 1,600 utterances
    "demo": {},
    "100k": {
        "n_speakers": 500,
        "n_test_speakers": 100,
        "utterances_per_speaker": 200,
    },  # 100,000 utterances
}
LABELS = {
    "100k": ["EmoClass", "Language", "Modality"]
}  # the 3 labels at 100k; else params.yaml's


PEAK_MB = [0.0]  # peak resident memory of the last command's process tree (wait4's ru_maxrss)


def sh(args: list[str], cwd: Path, timeout: float = 7200) -> tuple[float, str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(cwd),
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                sys.exit(f"{' '.join(args)} did not finish within {timeout:.0f} s")
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        out.seek(0)
        log = out.read()
    PEAK_MB[0] = usage.ru_maxrss / 1024
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed:\n{log[-4000:]}")
    return wall, log


def make_copy(dest: Path, corpus: str) -> dict:
    for item in ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["demo"].update(CORPORA[corpus])
    if corpus in LABELS:
        params["labels"] = LABELS[corpus]
        params["classes"] = {k: v for k, v in params["classes"].items() if k in LABELS[corpus]}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@example.org", "commit", "-qm", "copy"],
    ):
        subprocess.run(args, cwd=dest, check=True, timeout=60)
    return params


def _stage_figures(log: str) -> tuple[int, int, float, float, float, str]:
    """From one study stage's log: configurations, failed, fit+test seconds, explain seconds,
    the stage's own wall time and its peak memory line."""
    found = re.search(
        r"(\d+) configurations, (\d+) failed, chosen .*?seconds of fit and test: ([\d.]+)", log
    )
    explained = re.search(r"explainer: .*? in ([\d.]+) s", log)
    done = re.search(r"study: done in ([\d.]+) s, peak memory (.*)", log)
    return (
        int(found.group(1)),
        int(found.group(2)),
        float(found.group(3)),
        float(explained.group(1)) if explained else 0.0,
        float(done.group(1)),
        done.group(2).strip(),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="small")
    ap.add_argument(
        "--keep", type=Path, help="run in this folder and keep it (default: a temporary folder)"
    )
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_study_"))
    work.mkdir(parents=True, exist_ok=True)
    params = make_copy(work, args.corpus)
    labels = params["labels"]
    jobs = params["study"]["n_jobs"]
    wall, _ = sh(["dvc", "repro", *[f"common@{lab}" for lab in labels]], work)
    print(
        f"corpus {args.corpus}: demo, format and selection of {len(labels)} labels in {wall:.1f} s "
        f"(load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    stages = [f"study@{label}" for label in labels]
    wall, log = sh(["dvc", "repro", *stages], work)  # one dvc run, as `dvc repro` runs them
    fit_all, shap_all, n_all = 0.0, 0.0, 0
    for stage, part in zip(stages, re.split(r"Running stage 'study@[^']+'", log)[1:]):
        n, failed, fit, shap, inside, peak = _stage_figures(part)
        fit_all, shap_all, n_all = fit_all + fit, shap_all + shap, n_all + n
        print(
            f"{stage:<16} {inside:6.1f} s in the stage (imports and dvc aside), peak {peak}; "
            f"{n} configurations ({failed} failed), fit+test {fit:6.1f} s summed over {jobs} "
            f"workers, explain {shap:5.1f} s",
            flush=True,
        )
    overhead = (wall - fit_all / jobs - shap_all) / n_all
    print(
        f"study stages together: {wall:.1f} s for {n_all} configurations (one dvc repro); "
        f"overhead {overhead:.2f} s per configuration beyond fit, test and explain "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    wall, _ = sh(["dvc", "repro", "report"], work)
    print(f"report stage (and the rest of the pipeline it needs): {wall:.1f} s")
    wall, log = sh(["dvc", "repro"], work)
    wall, log = sh(["dvc", "repro"], work)
    print(f"no-op dvc repro: {wall:.1f} s ({log.strip().splitlines()[-1]})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
