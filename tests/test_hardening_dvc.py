"""Issue 21 through `dvc` itself, on a copy of the project: bad names and blocks stop at `check`,
no marker file appears, nothing is written outside the project, SIGTERM to `dvc repro` ends the
stage it runs, and the advice of a damaged model file works when followed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml

from conftest import BIN, SMALL_DEMO, run_cmd

MARKERS = [f"PWNED{i}" for i in range(1, 6)]
PAYLOADS = [
    "x;touch PWNED1;",
    "$(touch PWNED2)",
    "`touch PWNED3`",
    "a|touch PWNED4",
    "q'x;touch PWNED5;'",
]


def _set(proj: Path, **changes) -> None:
    params = yaml.safe_load((proj / "params.yaml").read_text())
    for key, value in changes.items():
        node = params
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _check_line(proc: subprocess.CompletedProcess) -> str:
    lines = [
        ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("error [check]: ")
    ]
    assert proc.returncode != 0 and len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    return lines[0]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.parts}


@pytest.mark.integration
def test_repro_refuses_unknown_blocks_injected_names_and_escaping_paths(project_copy, tmp_path):
    proj = project_copy(SMALL_DEMO)
    run_cmd(["dvc", "repro", "check"], proj)
    original = (proj / "params.yaml").read_text()
    outside = tmp_path.parent
    before = _files(outside) - {str(p.relative_to(outside)) for p in [tmp_path]}

    # a misspelt top-level block: `check` reruns (it depends on the whole file) and refuses it
    (proj / "params.yaml").write_text(original + "modle:\n  method: mlp\n")
    line = _check_line(run_cmd(["dvc", "repro"], proj, check=False))
    assert line.startswith(
        "error [check]: params.yaml: unknown top-level setting 'modle'; "
        "the top-level settings are seed, "
    )

    # labels that would run a command in the stage's shell: refused before any select stage runs
    (proj / "params.yaml").write_text(original)
    _set(proj, labels=["EmoClass", *PAYLOADS])
    proc = run_cmd(["dvc", "repro"], proj, check=False)
    assert _check_line(proc) == (
        "error [check]: params.yaml: labels[2] 'x;touch PWNED1;' is not a plain name: "
        "it holds ';'; only letters, digits, '_', '-' and '.' are allowed; "
        "names reach commands and file names, so rename it in labels "
        "(and in the labels CSV, if it names a column), e.g. to 'x_touch_PWNED1' "
        "(letters, digits, '_', '-', '.'; no leading '-' or '.'; at most 64 characters)"
    )
    assert "Running stage 'select" not in proc.stdout
    for payload in PAYLOADS[1:]:  # each one alone too (the quote one included)
        _set(proj, labels=["EmoClass", payload])
        assert f"labels[2] {payload!r} is not a plain name" in _check_line(
            run_cmd(["dvc", "repro"], proj, check=False)
        )
    found = [m for m in MARKERS for root in (proj, tmp_path, Path.cwd()) if (root / m).exists()]
    assert found == []

    # a data.name that would leave the project: refused at `check`, nothing written outside
    (proj / "params.yaml").write_text(original)
    _set(proj, **{"data.name": "../../escaped"})
    assert _check_line(run_cmd(["dvc", "repro"], proj, check=False)).startswith(
        "error [check]: params.yaml: data.name '../../escaped' is not a plain name: "
        "it starts with '.'; names reach "
        "commands and file names, so rename it in data.name, e.g. to 'escaped'"
    )
    after = _files(outside) - _files(tmp_path) - {str(tmp_path.relative_to(outside))}
    assert {p for p in after - before if not p.startswith(tmp_path.name)} == set()
    assert not [p for p in outside.rglob("*escaped*")]

    # `labels: EmoClass` (a text): DVC itself stops while reading dvc.yaml, before `check` can
    # run ("'Value' object is not iterable"); the check stage run alone gives the line
    (proj / "params.yaml").write_text(original)
    _set(proj, labels="EmoClass")
    dvc = run_cmd(["dvc", "repro"], proj, check=False)
    assert dvc.returncode != 0 and "is not iterable" in dvc.stdout + dvc.stderr
    alone = run_cmd(["python", "-m", "stages.check"], proj, check=False)
    assert alone.returncode == 2 and alone.stderr.strip().startswith(
        "error [check]: params.yaml: labels must be a list of names such as [EmoClass], "
        "got the single text 'EmoClass'"
    )


def _stage_process(dvc: psutil.Process, module: str, timeout: float) -> psutil.Process:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for child in dvc.children(recursive=True):
            try:
                if module in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise AssertionError(f"stage {module} did not start within {timeout} s")


@pytest.mark.integration
def test_sigterm_to_dvc_repro_ends_the_stage_it_runs(project_copy):
    proj = project_copy(
        {"demo": {"n_speakers": 60, "utterances_per_speaker": 200}}
    )  # ~12,000 files: seconds of work
    run_cmd(["dvc", "repro", "check"], proj)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(proj),
    }
    dvc = subprocess.Popen(
        ["dvc", "repro", "demo"],
        cwd=proj,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stage = _stage_process(psutil.Process(dvc.pid), "stages.demo", timeout=120)
        time.sleep(1.0)
        dvc.send_signal(
            signal.SIGTERM
        )  # to dvc alone, as `kill <pid>` does, not to its process group
        start = time.monotonic()
        _, err = dvc.communicate(
            timeout=60
        )  # returns once the stage, which holds dvc's pipes, ended too
        gone, alive = psutil.wait_procs([stage], timeout=30)
        assert alive == [], "the stage outlived dvc"
        assert time.monotonic() - start < 20 and err.decode().strip().endswith(
            "error [demo]: terminated"
        )
    finally:
        if dvc.poll() is None:
            os.killpg(dvc.pid, signal.SIGKILL)
            dvc.wait(timeout=30)
    demo = proj / "data" / "demo"
    assert not (demo / "labels.csv").exists()  # ended before its outputs were replaced
    assert (
        not demo.exists() or [p.name for p in demo.glob(".*.tmp")] == []
    )  # and removed its temporaries


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


SMALL_TRAIN = {
    **SMALL_DEMO,
    "labels": ["EmoClass"],
    "selection": {"selectors": ["all"]},
    "study": {"features": ["all"], "model": ["logreg"], "balance": [0], "n_jobs": 1},
    "model": {"method": "logreg", "logreg": {"C": [0.1], "cv_folds": 3}},
    "test": {"n_permutations": 200, "n_bootstrap": 50},
}


@pytest.mark.integration
def test_damaged_model_advice_works_and_cache_is_not_shared(project_copy):
    proj = project_copy(SMALL_TRAIN)
    run_cmd(["dvc", "repro", "train"], proj)
    model = proj / "models" / "model.joblib"
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    md5 = next(
        o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.joblib"
    )
    cached = proj / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert cached.is_file() and os.stat(cached).st_ino != os.stat(model).st_ino

    # one flipped byte in the workspace output leaves the cache object as it was
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))  # a copy: writable, not a link into the cache
    assert _md5(cached) == md5

    # a truncated model: one line whose two remedies both work when followed
    for remedy in (
        ["dvc", "checkout", "--force", "models/model.joblib"],
        ["dvc", "repro", "-f", "train"],
    ):
        model.write_bytes(model.read_bytes()[:100])
        bad = run_cmd(["python", "-m", "stages.evaluate"], proj, check=False)
        assert bad.returncode == 2
        assert (
            bad.stderr.strip()
            .splitlines()[-1]
            .endswith(
                "restore it with `dvc checkout --force models/model.joblib`, "
                "or retrain it with `dvc repro -f train`"
            )
        )
        run_cmd(remedy, proj)
        assert _md5(model) == md5  # same bytes as before (the run is deterministic)
        good = run_cmd(["python", "-m", "stages.evaluate"], proj, check=False)
        assert good.returncode == 0, good.stderr[-2000:]
        assert json.loads((proj / "metrics" / "test.json").read_text())["balanced_accuracy"] > 0
