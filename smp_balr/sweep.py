"""The sweep: every label x features.method x model.method x train.balance (x seed) as DVC experiments.

The grid lives in the ``sweep:`` block of params.yaml. It is validated completely before
anything is queued, then handed to DVC's own machinery::

    dvc exp run --queue -S 'label=A,B' -S 'features.method=all,slda' ...   # DVC's grid syntax
    dvc queue start -j N

and followed by polling ``dvc queue status`` until every experiment it queued has
finished. A configuration that already has an experiment of the current commit in which
DVC would reproduce nothing (same parameters, same code and data: :mod:`smp_balr.reuse`)
is not queued again, so a repeated sweep costs seconds; failed configurations are retried.
A failed experiment does not stop the others; its error line is logged (and shown again by
the presence report, ``python -m smp_balr.report``).

Entry: ``python -m smp_balr.sweep [--jobs N] [--dry-run]`` or ``make sweep``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
from tqdm import tqdm

from smp_balr import paths, reuse
from smp_balr.errors import UserError
from smp_balr.options import BALANCE as BALANCE_OPTIONS
from smp_balr.options import FEATURE_METHODS, MODEL_METHODS
from smp_balr.params import as_int, check_keys, get, load_params

log = logging.getLogger(__name__)

SWEEP_KEYS = ("label", "features", "model", "balance", "seeds", "jobs", "poll_seconds")
# swept parameter of each grid key, in the order they are passed to `dvc exp run -S`
GRID_PARAMS = {"label": "label", "features": "features.method", "model": "model.method",
               "balance": "train.balance", "seeds": "seed"}
_ID_COLUMNS = ("FileName", "Speaker", "Group")
_BA_RE = re.compile(r"^BA\d+$")
_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")
_HYDRA_WORDS = {"true", "false", "null", "none", "nan", "inf", "-inf"}
STATUSES = ("Queued", "Running", "Success", "Failed")


@dataclass(frozen=True)
class SweepGrid:
    """A validated sweep grid.

    Attributes
    ----------
    labels, features, models : tuple of str
        Values of ``label``, ``features.method`` and ``model.method``.
    balance : tuple of int
        Values of ``train.balance``.
    seeds : tuple of int
        Values of ``seed``; empty: the ``seed`` of params.yaml (not swept).
    jobs : int
        Queue workers (``dvc queue start -j``).
    poll_seconds : float
        Interval between two ``dvc queue status`` polls.
    """

    labels: tuple[str, ...]
    features: tuple[str, ...]
    models: tuple[str, ...]
    balance: tuple[int, ...]
    seeds: tuple[int, ...]
    jobs: int
    poll_seconds: float = 10.0

    @property
    def n_experiments(self) -> int:
        """Number of experiments the grid queues."""
        n = len(self.labels) * len(self.features) * len(self.models) * len(self.balance)
        return n * max(1, len(self.seeds))

    def values(self) -> dict[str, tuple]:
        """Swept parameter name -> values (``seed`` only when seeds are given)."""
        out: dict[str, tuple] = {"label": self.labels, "features.method": self.features,
                                 "model.method": self.models, "train.balance": self.balance}
        if self.seeds:
            out["seed"] = self.seeds
        return out

    def configurations(self) -> list[dict[str, Any]]:
        """Every combination as a dict of swept parameter -> value (DVC's queue order)."""
        vals = self.values()
        return [dict(zip(vals, combo)) for combo in itertools.product(*vals.values())]


def _as_list(value: Any, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, list):
        raise UserError(f"params.yaml: {key} must be a list such as [a, b], got {value!r}")
    return value


def _check_values(values: list, key: str, valid: Sequence, what: str) -> tuple:
    if not values:
        raise UserError(f"params.yaml: {key} is empty; give one or more of {', '.join(map(str, valid))}")
    for v in values:
        if not any(v == ok and type(v) is type(ok) for ok in valid):
            raise UserError(f"params.yaml: {key} has {v!r}, which is not {what}; valid values: {', '.join(map(str, valid))}")
    dup = [v for i, v in enumerate(values) if v in values[:i]]
    if dup:
        raise UserError(f"params.yaml: {key} lists {dup[0]!r} twice; list each value once")
    return tuple(values)


def label_columns(columns: Sequence[str]) -> list[str]:
    """The label columns of a formatted-table (or labels CSV) header: not an id, not a BA."""
    return [str(c) for c in columns if str(c) not in _ID_COLUMNS and not _BA_RE.match(str(c))]


def parse_grid(params: Mapping[str, Any], available_labels: Sequence[str], jobs: int | None = None) -> SweepGrid:
    """Read and validate the ``sweep:`` block against what the pipeline can run.

    Parameters
    ----------
    params : mapping
        Parsed params.yaml.
    available_labels : sequence of str
        Label columns of the formatted training table (its header).
    jobs : int, optional
        Queue workers from the command line; overrides ``sweep.jobs``.

    Returns
    -------
    SweepGrid

    Raises
    ------
    UserError
        One line naming the key and its valid values, for the first invalid grid value.
    """
    block = check_keys(params.get("sweep"), "sweep", SWEEP_KEYS)
    pipeline_labels = [str(x) for x in _as_list(get(dict(params), "labels"), "labels")]
    # a label must be a column AND have its features selected (the select stages cover `labels`)
    valid_labels = [lab for lab in pipeline_labels if lab in set(available_labels)]
    labels = _as_list(block.get("label"), "sweep.label") or list(pipeline_labels)
    for lab in labels:
        if str(lab) not in set(available_labels):
            raise UserError(
                f"params.yaml: sweep.label has {lab!r}, which is not a column of the formatted training table; "
                f"valid values: {', '.join(valid_labels) or 'none'}")
        if str(lab) not in pipeline_labels:
            raise UserError(
                f"params.yaml: sweep.label has {lab!r}, which is not in `labels` (no BA selection runs for it); "
                f"valid values: {', '.join(valid_labels)} (or add it to `labels`)")
    labels = _check_values([str(x) for x in labels], "sweep.label", valid_labels, "a label of the pipeline")

    selectors = [str(x) for x in _as_list(get(dict(params), "selection.selectors"), "selection.selectors")]
    produced = [m for m in FEATURE_METHODS if m in selectors or m == "common"]
    features = _check_values(_as_list(block.get("features", ["all"]), "sweep.features"), "sweep.features", produced,
                             "a features.method produced by selection.selectors")
    models = _check_values(_as_list(block.get("model", ["mlp"]), "sweep.model"), "sweep.model", MODEL_METHODS,
                           "a model.method")
    balance = _check_values(_as_list(block.get("balance", [0]), "sweep.balance"), "sweep.balance", BALANCE_OPTIONS,
                            "a train.balance option")
    seeds_raw = _as_list(block.get("seeds"), "sweep.seeds")
    seeds = tuple(as_int(s, "sweep.seeds", minimum=0) for s in seeds_raw)
    if len(set(seeds)) != len(seeds):
        raise UserError("params.yaml: sweep.seeds lists a seed twice; list each seed once")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}; give the number of queue workers")
    n_jobs = jobs if jobs is not None else as_int(block.get("jobs", 1), "sweep.jobs", minimum=1)
    poll = block.get("poll_seconds", 10.0)
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or poll <= 0:
        raise UserError(f"params.yaml: sweep.poll_seconds must be a positive number of seconds, got {poll!r}")
    return SweepGrid(labels, features, models, balance, seeds, n_jobs, float(poll))


def _hydra_value(value: Any) -> str:
    text = str(value)
    if isinstance(value, str) and (not _PLAIN.match(text) or text.lower() in _HYDRA_WORDS or _is_number(text)):
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def queue_command(grid: SweepGrid | Mapping[str, Any], dvc: str = "dvc") -> list[str]:
    """The ``dvc exp run --queue`` command that queues the whole grid (DVC's comma-list syntax),
    or one configuration (a dict of swept parameter -> value)."""
    values = grid.values() if isinstance(grid, SweepGrid) else {k: (v,) for k, v in grid.items()}
    cmd = [dvc, "exp", "run", "--queue"]
    for key, vals in values.items():
        cmd += ["-S", f"{key}={','.join(_hydra_value(v) for v in vals)}"]
    return cmd


_QUEUED_RE = re.compile(r"Queued experiment '([^']+)' for future execution")


def queued_names(output: str) -> list[str]:
    """Names of the experiments that ``dvc exp run --queue`` reports as queued."""
    return _QUEUED_RE.findall(output)


def parse_queue_status(output: str) -> dict[str, str]:
    """Experiment name -> status (Queued, Running, Success, Failed) from ``dvc queue status``."""
    status: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1] in STATUSES and parts[0] != "Task":
            status[parts[1]] = parts[-1]
    return status


def error_line(log_text: str) -> str:
    """The most telling error line of an experiment's log (a stage's own ``error [...]`` line first)."""
    lines = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    for pattern in (r"^error \[", r"^ERROR:", r"Error\b", r"error"):
        hits = [ln for ln in lines if re.search(pattern, ln)]
        if hits:
            return hits[0]
    return lines[-1] if lines else "no log"


def available_labels(params: Mapping[str, Any], run: Callable[[list[str]], subprocess.CompletedProcess]) -> list[str]:
    """Label columns of the formatted training table, running ``dvc repro format`` first if it is missing."""
    table = paths.train_table(str(get(dict(params), "data.name")))
    if not table.is_file():
        log.info("%s not found: running `dvc repro format` to read its header", table)
        proc = run(["dvc", "repro", "format"])
        if proc.returncode != 0:
            raise UserError(f"`dvc repro format` failed ({error_line(proc.stdout + proc.stderr)}); fix it before the sweep")
    return label_columns(pd.read_csv(table, nrows=0).columns)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``args``, capturing its output in files rather than pipes: ``dvc queue start`` leaves
    worker daemons behind that inherit the output, and a pipe would stay open (and the call
    blocked) until the last of them exits."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(args, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, proc.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def follow_queue(names: Sequence[str], poll_seconds: float,
                 run: Callable[[list[str]], subprocess.CompletedProcess] = _run,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Poll ``dvc queue status`` until none of ``names`` is queued or running; log failures as they come.

    Returns
    -------
    dict
        Experiment name -> final status.
    """
    final: dict[str, str] = {}
    seen_failed: set[str] = set()
    idle_polls = 0
    with tqdm(total=len(names), desc="experiments", unit="exp") as bar:
        while True:
            proc = run(["dvc", "queue", "status"])
            status = parse_queue_status(proc.stdout)
            mine = {n: status.get(n, "Unknown") for n in names}
            counts = {s: sum(1 for v in mine.values() if v == s) for s in STATUSES}
            done = counts["Success"] + counts["Failed"]
            bar.n = done
            bar.set_postfix(running=counts["Running"], queued=counts["Queued"], done=counts["Success"],
                            failed=counts["Failed"])
            bar.refresh()
            for name in sorted(n for n, s in mine.items() if s == "Failed" and n not in seen_failed):
                seen_failed.add(name)
                logs = run(["dvc", "queue", "logs", name])
                log.warning("experiment %s failed: %s", name, error_line(logs.stdout + logs.stderr))
            active = counts["Queued"] + counts["Running"]
            if active == 0:
                final = mine
                break
            no_worker = "Worker status: 0 active, 0 idle" in proc.stdout and counts["Running"] == 0
            idle_polls = idle_polls + 1 if no_worker else 0
            if idle_polls >= 3:  # workers gone with work left (e.g. `dvc queue stop`); not a start-up gap
                log.warning("no queue worker is alive and %d experiment(s) wait; restart with `dvc queue start`",
                            counts["Queued"])
                final = mine
                break
            sleep(poll_seconds)
    return final


# stages every experiment shares (data, BA selection for every label): brought up to date once in
# the workspace before queuing, so that the experiments find them done instead of each
# recomputing them (two workers would otherwise both run the slow selections at the start)
SHARED_TARGET = "selection_report"


def prepare_shared_stages(run: Callable[[list[str]], subprocess.CompletedProcess] = _run,
                          dvc_yaml: Path = Path("dvc.yaml")) -> None:
    """``dvc repro`` the shared stages (``selection_report`` and everything upstream) in the workspace."""
    import yaml

    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}) if dvc_yaml.is_file() else {}
    if SHARED_TARGET not in stages:
        log.info("no stage %s in %s: every experiment runs its upstream stages itself", SHARED_TARGET, dvc_yaml)
        return
    log.info("bringing the shared stages up to date first: dvc repro %s", SHARED_TARGET)
    t0 = time.perf_counter()
    proc = run(["dvc", "repro", SHARED_TARGET])
    if proc.returncode != 0:
        raise UserError(f"`dvc repro {SHARED_TARGET}` failed before queuing ({error_line(proc.stdout + proc.stderr)}); "
                        "fix it, then rerun the sweep")
    ran = proc.stdout.count("Running stage")
    log.info("shared stages: %d run, the rest up to date (%.0f s)", ran, time.perf_counter() - t0)


def queue(grid: SweepGrid, todo: Sequence[Mapping[str, Any]],
          run: Callable[[list[str]], subprocess.CompletedProcess] = _run) -> list[str]:
    """Queue ``todo`` with ``dvc exp run --queue``: the whole grid in one command, else one command each.

    Returns
    -------
    list of str
        Names of the queued experiments.
    """
    commands = [queue_command(grid)] if len(todo) == grid.n_experiments else [queue_command(c) for c in todo]
    log.info("queueing %d experiment(s): %s", len(todo), " ".join(commands[0][1:]) + (" ..." if len(commands) > 1 else ""))
    names: list[str] = []
    for cmd in tqdm(commands, desc="queueing", unit="exp", disable=len(commands) < 2):
        proc = run(cmd)
        if proc.returncode != 0:
            raise UserError(f"`dvc exp run --queue` failed ({error_line(proc.stdout + proc.stderr)})")
        names += queued_names(proc.stdout + proc.stderr)
    if len(names) != len(todo):
        log.warning("DVC queued %d experiment(s), %d were asked for", len(names), len(todo))
    return names


def run_sweep(grid: SweepGrid, params: Mapping[str, Any], project: Path = Path("."),
              run: Callable[[list[str]], subprocess.CompletedProcess] = _run) -> dict[str, str]:
    """Bring the shared stages up to date, skip the configurations that an up-to-date experiment of
    this commit already answers (:mod:`smp_balr.reuse`), queue the rest with ``dvc exp run --queue``,
    start ``grid.jobs`` workers and follow them.

    Returns
    -------
    dict
        Experiment name -> final status (``Success`` / ``Failed``); reused experiments count as ``Success``.
    """
    prepare_shared_stages(run)
    configs = grid.configurations()
    listed = run(["dvc", "stage", "list", "--name-only"])
    stages = set(listed.stdout.split()) if listed.returncode == 0 and listed.stdout.strip() else None
    todo, reused = reuse.plan(configs, params, project, stages=stages)
    if reused:
        log.info("%d of %d configuration(s) already have an experiment of this commit with the same parameters "
                 "and inputs: reused, not rerun", len(reused), len(configs))
    done = {name: "Success" for name in reused.values()}
    if not todo:
        log.info("nothing to run; next: `make report`")
        return done
    names = queue(grid, todo, run)
    start = run(["dvc", "queue", "start", "-j", str(grid.jobs)])
    if start.returncode != 0:
        raise UserError(f"`dvc queue start` failed ({error_line(start.stdout + start.stderr)})")
    t0 = time.perf_counter()
    final = {**done, **follow_queue(names, grid.poll_seconds, run)}
    # DVC collects each new experiment's results once (about a second each) and caches them:
    # done here, the report that follows reads them from the cache
    t1 = time.perf_counter()
    run(["dvc", "exp", "show", "--json"])
    log.info("results collected for the report (dvc exp show) in %.0f s", time.perf_counter() - t1)
    n_ok = sum(1 for s in final.values() if s == "Success")
    n_failed = sum(1 for s in final.values() if s == "Failed")
    log.info("sweep finished in %.0f s: %d succeeded, %d failed, %d other; next: `make report`",
             time.perf_counter() - t0, n_ok, n_failed, len(final) - n_ok - n_failed)
    return final


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: validate, queue, run and follow the sweep."""
    from smp_balr.cli import setup_logging

    ap = argparse.ArgumentParser(prog="python -m smp_balr.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", "-j", type=int, default=None, help="queue workers (default: sweep.jobs)")
    ap.add_argument("--dry-run", action="store_true", help="validate and print the queue command only")
    ap.add_argument("--params", default=str(Path("params.yaml")), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    setup_logging()
    try:
        params = load_params(args.params)
        if args.dry_run:
            table = paths.train_table(str(get(params, "data.name")))
            labels = label_columns(pd.read_csv(table, nrows=0).columns) if table.is_file() else \
                [str(x) for x in _as_list(params.get("labels"), "labels")]
        else:
            labels = available_labels(params, _run)
        grid = parse_grid(params, labels, args.jobs)
        if args.dry_run:
            print(" ".join(queue_command(grid)))
            return 0
        final = run_sweep(grid, params)
    except UserError as err:
        print(f"error [sweep]: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0 if any(s == "Success" for s in final.values()) or not final else 1


if __name__ == "__main__":
    sys.exit(main())
