"""Shared fixtures: a throw-away copy of the project in which tests run ``dvc`` itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# what a copy of the project needs: code and configuration, never generated outputs
COPY_ITEMS = [
    "stages",
    "smp_balr",
    "params.yaml",
    "dvc.yaml",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
]


def run_cmd(
    args: list[str], cwd: Path, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run a command with the project's virtual environment first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(cwd)
    env["DVC_NO_ANALYTICS"] = "1"
    # Python writes its bytecode caches beside the code, as on a user's machine (the caches
    # must not count as changed code deps: .dvcignore)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.org")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.org")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n"
            f"--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def _deep_update(base: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


# parameters that make the demo corpus small enough for a test run
SMALL_DEMO = {
    "demo": {"n_speakers": 24, "n_test_speakers": 8, "utterances_per_speaker": 40},
}


def copy_project(dest: Path) -> Path:
    """Copy the project's code and configuration (never its outputs) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in COPY_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    return dest


@pytest.fixture
def project_copy(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory: ``make(params_changes)`` copies the project into a git repo in tmp.

    The copy holds code and configuration only (no outputs, no dvc.lock), has its
    parameters updated with ``params_changes`` (deep merge) and one git commit, so that
    ``dvc repro`` and ``dvc exp run`` work in it.
    """

    def make(params_changes: dict[str, Any] | None = None) -> Path:
        dest = copy_project(tmp_path / "project")
        params = yaml.safe_load((dest / "params.yaml").read_text())
        _deep_update(params, params_changes or {})
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run_cmd(["git", "init", "-q"], dest)
        run_cmd(["git", "add", "-A"], dest)
        run_cmd(["git", "commit", "-qm", "copy"], dest)
        return dest

    return make
