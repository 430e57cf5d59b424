"""Benchmark: every stage at corpus sizes up to VoxCeleb2's (1M utterances x 512 BAs).

For each size a scratch copy of the project gets a demo corpus of that many utterances
(``--utterances-per-speaker`` each, 20% of the speakers in Test) and the stage scripts run
one by one, by the commands dvc.yaml gives them (so the benchmark follows any change of the
stage scripts), each as its own process: wall time, CPU time (the process and the workers
it waited for) and peak resident memory (``wait4``'s ``ru_maxrss``).

Stages: ``demo`` (BA files; above ``--files-max`` utterances, or when the disk is short,
the generator writes the formatted tables directly and ``format`` is not timed; with
``--table`` the demo is written as one Parquet table by
``python -m smp_balr.data.make_table demo`` and ``format`` reads it as ``data.ba_table``, at
any size), ``format`` (``--format-only``: stop here),
``select@EmoClass-slda``, then per model of ``--models`` ``train`` (and ``test`` and
``explain`` for the first model). Prints one table with the growth exponent of each stage
(``log(t2 / t1) / log(n2 / n1)`` between the two largest sizes) and the issue's targets
at the largest size.

Usage::

    python benchmarks/bench_scale.py --sizes 10000 100000 [--models dt mlp logreg]
        [--set model.dt.grid.max_depth=[10]] [--files-max 100000] [--workdir DIR --keep]
        [--table] [--format-only]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ("stages", "smp_balr", "params.yaml", "dvc.yaml")
FILE_BYTES = 6 * 1024  # disk per BA file (mean size of the demo's formats, rounded up to blocks)
LABEL = "EmoClass"
# --table: the demo as one table, labels included (data.labels and data.ba_table)
TABLE = "data/demo/ba.parquet"
GB = 1024**3


def stage_command(dest: Path, stage: str, item: dict[str, str] | None = None) -> list[str]:
    """The command of ``stage`` in the copy's dvc.yaml, with ``python`` as this interpreter."""
    spec = yaml.safe_load((dest / "dvc.yaml").read_text())["stages"][stage]
    cmd = (spec.get("do") or spec)["cmd"].split("#")[0]
    words = cmd.split()
    # a foreach/matrix stage reads its item from its name under DVC; run by hand, from its arguments
    return [sys.executable if w == "python" else w for w in words] + list((item or {}).values())


def run_measured(cmd: list[str], cwd: Path, timeout: float) -> dict[str, Any]:
    """Run ``cmd``; return wall and CPU seconds, peak RSS (MB), status and the last error line."""
    env = dict(os.environ, PYTHONPATH=str(cwd))
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
    timed_out = wall >= timeout
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "ok": proc.returncode == 0 and not timed_out,
        "error": "timed out"
        if timed_out
        else (lines[-1][:160] if proc.returncode and lines else ""),
    }


def _set(params: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = params
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def prepare(
    dest: Path,
    n_utt: int,
    per_speaker: int,
    overrides: list[tuple[str, Any]],
    features: str = "slda",
) -> dict:
    """Copy code and config into ``dest`` and set the demo size and the benchmark's choices."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in COPY:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(
                src, dest / item, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
            )
        else:
            shutil.copy2(src, dest / item)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    n_spk = max(8, round(n_utt / per_speaker))
    params["demo"].update(
        {
            "n_speakers": n_spk,
            "n_test_speakers": max(4, round(0.2 * n_spk)),
            "utterances_per_speaker": per_speaker,
        }
    )
    params.update({"label": LABEL, "labels": [LABEL]})
    params["selection"]["selectors"] = ["all", "slda"]
    params["study"]["features"] = ["all", "slda"]
    params["classes"] = {LABEL: params["classes"][LABEL]}
    params["features"] = {"method": features}
    for key, value in overrides:
        _set(params, key, value)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def write_tables_directly(dest: Path) -> None:
    """Generate the demo corpus of the copy's params and write the formatted tables
    (no BA files)."""
    sys.path.insert(0, str(dest))
    os.chdir(dest)
    from smp_balr.core import paths
    from smp_balr.core.settings import DemoSettings
    from smp_balr.data.demo import generate
    from smp_balr.data.formatting import FormattedTable, write_tables

    params = yaml.safe_load(Path("params.yaml").read_text())
    corpus = generate(DemoSettings.from_params(params))
    lab = corpus.labels
    cols = ["FileName", "Speaker", "Group"] + [
        c for c in lab.columns if c not in ("FileName", "Speaker", "Group")
    ]
    is_train = (lab["Group"] == "Train").to_numpy()
    name = params["data"]["name"]
    write_tables(
        {
            paths.train_table(name): FormattedTable(
                lab.loc[is_train, cols].reset_index(drop=True), corpus.ba[is_train]
            ),
            paths.test_table(name): FormattedTable(
                lab.loc[~is_train, cols].reset_index(drop=True), corpus.ba[~is_train]
            ),
        }
    )


def set_model(dest: Path, method: str) -> None:
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["model"]["method"] = method
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def bench_size(
    dest: Path, n_utt: int, args: argparse.Namespace
) -> list[tuple[str, dict[str, Any]]]:
    """Run every stage on a corpus of ``n_utt`` utterances; return (stage name, measures)."""
    prepare(dest, n_utt, args.utterances_per_speaker, args.set, args.features)
    out: list[tuple[str, dict[str, Any]]] = []
    free = shutil.disk_usage(dest).free
    files = n_utt <= args.files_max and n_utt * FILE_BYTES * 2 < free
    if args.table:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        params["data"].update({"ba_dir": "", "ba_table": TABLE, "labels": TABLE})
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        cmd = [sys.executable, "-m", "smp_balr.data.make_table", "demo", TABLE]
        out.append(("demo (table)", run_measured(cmd, dest, args.timeout)))
        out.append(("format", run_measured(stage_command(dest, "format"), dest, args.timeout)))
    elif files:
        out.append(
            ("demo (BA files)", run_measured(stage_command(dest, "demo"), dest, args.timeout))
        )
        out.append(("format", run_measured(stage_command(dest, "format"), dest, args.timeout)))
    else:
        why = "over --files-max" if n_utt > args.files_max else f"disk: {free / GB:.0f} GB free"
        print(
            f"{n_utt} utterances: tables written by the generator ({why}); format not timed",
            flush=True,
        )
        cmd = [sys.executable, str(Path(__file__).resolve()), "--write-tables", str(dest)]
        out.append(("demo (tables)", run_measured(cmd, dest, args.timeout)))
    if args.format_only:
        _print_rows(n_utt, out)
        return out
    out.append(
        (
            f"select {args.features}",
            run_measured(
                stage_command(dest, "select", {"label": LABEL, "method": args.features}),
                dest,
                args.timeout,
            ),
        )
    )
    for i, model in enumerate(args.models):
        set_model(dest, model)
        out.append(
            (f"train {model}", run_measured(stage_command(dest, "train"), dest, args.timeout))
        )
        if i == 0 and out[-1][1]["ok"]:
            out.append(
                (f"test {model}", run_measured(stage_command(dest, "test"), dest, args.timeout))
            )
            out.append(
                (
                    f"explain {model}",
                    run_measured(stage_command(dest, "explain"), dest, args.timeout),
                )
            )
    _print_rows(n_utt, out)
    return out


def _print_rows(n_utt: int, out: list[tuple[str, dict[str, Any]]]) -> None:
    for name, m in out:
        state = "" if m["ok"] else f"  FAILED: {m['error']}"
        print(
            f"  {n_utt:>9,} {name:<16} wall {m['wall']:8.1f} s  cpu {m['cpu']:8.1f} s  "
            f"peak {m['peak_mb']:7.0f} MB{state}",
            flush=True,
        )


def growth(sizes: list[int], values: list[float | None]) -> str:
    """Exponent b of t ~ n^b between the two largest sizes with a value."""
    pts = [(n, v) for n, v in zip(sizes, values) if v is not None and v > 0]
    if len(pts) < 2:
        return "-"
    (n1, v1), (n2, v2) = pts[-2], pts[-1]
    return f"{math.log(v2 / v1) / math.log(n2 / n1):.2f}"


def _stage_names(
    sizes: list[int], results: dict[int, list[tuple[str, dict[str, Any]]]]
) -> list[str]:
    """Every stage measured at any size, in the order first met."""
    stages: list[str] = []
    for n in sizes:
        for name, _ in results[n]:
            if name not in stages:
                stages.append(name)
    return stages


def _stage_line(
    stage: str, sizes: list[int], results: dict[int, list[tuple[str, dict[str, Any]]]]
) -> str:
    """One row of the table: the stage's measures at every size and its growth exponents."""
    cells, walls, cpus = [], [], []
    for n in sizes:
        m = dict(results[n]).get(stage)
        if m is None:
            cells.append(f"{'-':>34}")
            walls.append(None)
            cpus.append(None)
            continue
        flag = "" if m["ok"] else " FAIL"
        cells.append(f"{m['wall']:>9.1f} / {m['cpu']:>8.1f}, {m['peak_mb'] / 1024:>5.2f}{flag:>5}")
        walls.append(m["wall"] if m["ok"] else None)
        cpus.append(m["cpu"] if m["ok"] else None)
    return (
        f"{stage:<16}"
        + "".join(f" | {c:>34}" for c in cells)
        + f" | {growth(sizes, walls)} / {growth(sizes, cpus)}"
    )


def _total(got: dict[str, dict[str, Any]], names: list[str]) -> str:
    """Wall and CPU seconds of ``names`` together, if every one was measured and succeeded."""
    parts = [got.get(s) for s in names]
    if any(p is None or not p["ok"] for p in parts):
        return "not all measured"
    return f"{sum(p['wall'] for p in parts):.0f} s wall ({sum(p['cpu'] for p in parts):.0f} s cpu)"


def _targets(n: int, got: dict[str, dict[str, Any]], models: list[str]) -> list[str]:
    """The issue's targets at the largest size ``n``, beside what was measured there."""
    first = models[0] if models else None
    lines = [f"targets at {n:,} utterances (load average now {os.getloadavg()[0]:.1f}):"]
    if first:
        core = [
            s
            for s in (
                "format",
                *(n for n in got if n.startswith("select ")),
                f"train {first}",
                f"test {first}",
                f"explain {first}",
            )
        ]
        lines.append(f"  {' + '.join(core)}: {_total(got, core)}   [target 900 s for dt]")
    for model, limit in (("mlp", 600), ("logreg", 300)):
        if model in models:
            lines.append(f"  train {model}: {_total(got, [f'train {model}'])}   [target {limit} s]")
    peak = max((m["peak_mb"] for m in got.values()), default=0.0) / 1024
    lines.append(f"  largest peak memory of a stage: {peak:.2f} GB   [target 8 GB]")
    return lines


def report(
    sizes: list[int], results: dict[int, list[tuple[str, dict[str, Any]]]], models: list[str]
) -> str:
    head = f"{'stage':<16}" + "".join(
        f" | {f'{n:,} utt: wall / cpu s, peak GB':>34}" for n in sizes
    )
    lines = [head + " | growth wall / cpu", "-" * (len(head) + 20)]
    for stage in _stage_names(sizes, results):
        lines.append(_stage_line(stage, sizes, results))
    lines += _targets(sizes[-1], dict(results[sizes[-1]]), models)
    return "\n".join(lines)


def _override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"--set takes KEY=VALUE (e.g. model.dt.n_jobs=2), got {text!r}"
        )
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="utterances"
    )
    parser.add_argument("--utterances-per-speaker", type=int, default=200)
    parser.add_argument(
        "--models", nargs="+", default=["dt", "mlp", "logreg"], help="model.method values to train"
    )
    parser.add_argument(
        "--features",
        choices=["slda", "all"],
        default="slda",
        help="the BA list the models train on (all: every BA, the study's default)",
    )
    parser.add_argument(
        "--files-max",
        type=int,
        default=100_000,
        help="largest size generated as BA files and formatted (larger: tables directly)",
    )
    parser.add_argument(
        "--set",
        type=_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="params.yaml override (YAML value), repeatable",
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="write the demo as one Parquet table (data.ba_table) and time format from it",
    )
    parser.add_argument("--format-only", action="store_true", help="stop after format")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per stage")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch projects")
    parser.add_argument("--write-tables", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_tables:
        write_tables_directly(args.write_tables)
        return
    sizes = sorted(set(args.sizes))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    try:
        for n in sizes:
            dest = work / f"n{n}"
            results[n] = bench_size(dest, n, args)
            if not args.keep:
                shutil.rmtree(dest, ignore_errors=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(report(sizes, results, [] if args.format_only else args.models))


if __name__ == "__main__":
    main()
