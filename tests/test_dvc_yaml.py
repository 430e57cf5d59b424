"""dvc.yaml lists, for every stage, its script and every project module the script imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT


def _module_file(name: str) -> Path | None:
    base = ROOT / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path) -> set[str]:
    """Project modules named by the import statements of ``path`` (anywhere in the file)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("smp_balr")}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("smp_balr")
        ):
            names.add(node.module)
            names |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if _module_file(f"{node.module}.{a.name}")
            }
    return names


def project_modules(script: Path) -> set[str]:
    """Files of every project module ``script`` imports, directly or not
    (packages' __init__ included)."""
    files: set[Path] = set()
    todo = [script]
    while todo:
        for name in _imported(todo.pop()):
            parts = name.split(".")
            for k in range(
                1, len(parts) + 1
            ):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                found = _module_file(".".join(parts[:k]))
                if found and found not in files:
                    files.add(found)
                    todo.append(found)
    return {str(f.relative_to(ROOT)) for f in files}


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_lists_its_script_and_every_imported_module(name):
    stage = _stages()[name]
    module = re.search(r"python -m stages\.(\w+)", stage["cmd"])
    assert module, (
        f"{name}: its command must run `python -m stages.<script>` (the project's own package)"
    )
    script = f"stages/{module.group(1)}.py"
    deps = set(stage["deps"])
    assert script in deps, f"{name}: dvc.yaml does not list its script {script}"
    folders = [d.rstrip("/") + "/" for d in deps if (ROOT / d).is_dir()]
    missing = sorted(
        m for m in project_modules(ROOT / script) - deps if not m.startswith(tuple(folders))
    )
    assert not missing, (
        f"stage {name}: add to its deps in dvc.yaml (the module or its package): "
        f"{', '.join(missing)}"
    )
    stale = sorted(
        d for d in deps if d.startswith(("smp_balr/", "stages/")) and not (ROOT / d).exists()
    )
    assert not stale, f"stage {name}: dvc.yaml lists files that do not exist: {', '.join(stale)}"


def test_every_stage_but_check_runs_after_the_params_check():
    for name, stage in _stages().items():
        if name != "check":
            assert "metrics/params_check.json" in stage["deps"], name


def test_the_closure_sees_indirect_imports():
    modules = project_modules(ROOT / "stages" / "train.py")
    assert {
        "smp_balr/model/estimator.py",
        "smp_balr/model/folds.py",
        "smp_balr/core/settings.py",
        "smp_balr/core/errors.py",
    } <= modules


def test_check_stage_depends_on_the_whole_params_file():
    # `params.yaml:` without keys: DVC tracks every top-level key, an unknown (misspelt) block too
    assert _stages()["check"]["params"] == [{"params.yaml": None}]


def test_no_setting_reaches_a_stage_command():
    # foreach/matrix stages read their label (and method) from their own name (DVC_STAGE)
    for name, stage in _stages().items():
        assert "${" not in stage["cmd"], f"{name}: {stage['cmd']}"


def test_stages_run_the_code_of_the_project_they_run_in(tmp_path):
    """A DVC experiment runs in a copy of the project (``.dvc/tmp/exps/...``): its stages must
    import that copy's ``smp_balr``, whose files DVC hashed, not the installed one."""
    import os
    import shutil
    import subprocess
    import sys

    for part in ("smp_balr", "stages"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    init = tmp_path / "smp_balr" / "__init__.py"
    init.write_text(
        init.read_text() + "\nraise SystemExit(7)  # this copy's package was imported\n"
    )
    words = _stages()["check"]["cmd"].split()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, *words[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 7, f"the stage imported another smp_balr: {proc.stderr[-300:]}"
