"""A repeated sweep reuses an experiment only when DVC would reproduce nothing in it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from smp_balr.reuse import StoredExperiment, WorkspaceHashes, expected_params, plan, stale_reason

PARAMS = {"seed": 1, "label": "Emo", "model": {"method": "dt", "dt": {"depth": 3}}, "report": {"alpha": 0.05}}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _lock(label: str = "Emo", method: str = "dt", code: str = "print(1)\n", check_seed: int = 1) -> dict:
    return {"schema": "2.0", "stages": {
        "check": {"cmd": "c", "params": {"params.yaml": {"seed": check_seed}}, "deps": [],
                  "outs": [{"path": "metrics/params_check.json", "md5": "x"}]},
        "format": {"cmd": "f", "deps": [{"path": "data/corpus", "md5": "abc.dir"}],
                   "outs": [{"path": "data/table.csv", "md5": "t1"}]},
        "train": {"cmd": "t", "params": {"params.yaml": {"seed": 1, "label": label,
                                                         "model": {"method": method, "dt": {"depth": 3}}}},
                  "deps": [{"path": "code.py", "md5": _md5(code)}, {"path": "data/table.csv", "md5": "t-old"},
                           {"path": "metrics/params_check.json", "md5": "x"}],
                  "outs": [{"path": "models/model.joblib", "md5": "m"}]},
    }}


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "code.py").write_text("print(1)\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  format:\n    deps:\n"
                                       "    - path: data/corpus\n      md5: abc.dir\n")
    return tmp_path


def test_unchanged_experiment_is_up_to_date_whatever_produced_inputs_and_check_say(project: Path) -> None:
    hashes = WorkspaceHashes(project)
    # data/table.csv is produced by format, so its recorded hash does not matter; check's params neither
    assert stale_reason(_lock(check_seed=99), expected_params(PARAMS, {}), hashes) is None


def test_lock_entries_of_stages_no_longer_in_the_pipeline_are_ignored(project: Path) -> None:
    lock = _lock()
    lock["stages"]["common@0"] = {"cmd": "old", "params": {"params.yaml": {"selection.common": [{"output": "x"}]}}}
    hashes = WorkspaceHashes(project)
    assert stale_reason(lock, PARAMS, hashes) == "common@0: parameter selection.common changed"
    assert stale_reason(lock, PARAMS, hashes, stages={"check", "format", "train"}) is None


def test_changed_parameter_code_or_folder_makes_it_stale(project: Path) -> None:
    hashes = WorkspaceHashes(project)
    assert stale_reason(_lock(), expected_params(PARAMS, {"model.dt.depth": 4}), hashes) == \
        "train: parameter model changed"
    assert stale_reason(_lock(code="print(2)\n"), PARAMS, hashes) == "train: code.py changed"
    (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # the folder's hash is now unknown
    assert stale_reason(_lock(), PARAMS, WorkspaceHashes(project)) == "format: data/corpus changed"


def test_plan_reuses_the_matching_configuration_only(project: Path) -> None:
    blob = subprocess.run(["git", "hash-object", "dvc.yaml"], cwd=project, capture_output=True, text=True).stdout.strip()
    stored = [StoredExperiment("emo-dt", "c1", _lock("Emo", "dt"), blob),
              StoredExperiment("lang-dt", "c2", _lock("Lang", "dt"), "another-dvc-yaml")]
    configs = [{"label": "Emo", "model.method": "dt"}, {"label": "Emo", "model.method": "mlp"},
               {"label": "Lang", "model.method": "dt"}]
    todo, reused = plan(configs, PARAMS, project, stored)
    assert reused == {0: "emo-dt"}  # lang-dt was run with another dvc.yaml
    assert todo == configs[1:]
    assert plan(configs, PARAMS, project, [])[0] == configs


def test_expected_params_applies_dotted_overrides_without_touching_the_input() -> None:
    out = expected_params(PARAMS, {"model.method": "mlp", "train.balance": 2})
    assert out["model"] == {"method": "mlp", "dt": {"depth": 3}} and out["train"] == {"balance": 2}
    assert PARAMS["model"]["method"] == "dt"
