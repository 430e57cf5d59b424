"""The whole pipeline through `dvc` itself on a small demo corpus:
repro, no-op repro, experiments."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from conftest import SMALL_DEMO, run_cmd

LABELS = ["EmoClass", "Modality"]  # the small demo has too few speakers per language for Language
SMALL = {
    **SMALL_DEMO,
    "label": "EmoClass",
    "labels": LABELS,
    "selection": {
        "bayes": {"max_rows": 600},
        "common": {"include": [], "exclude": ["_all_"]},
    },
    "model": {
        "method": "logreg",  # the linear probe: the strongest model on a corpus this small
        "logreg": {"C": [0.1], "cv_folds": 3},
        "mlp": {"max_iter": 15, "n_iter_no_change": 3},
        "dt": {
            "grid": {
                "max_depth": [3, 6],
                "min_samples_split": [2],
                "min_samples_leaf": [1],
                "criterion": ["gini"],
            },
            "cv_folds": 3,
            "n_jobs": 1,
        },
    },
    "test": {"n_permutations": 1000, "n_bootstrap": 200},
    "explain": {"n_samples": 24, "background_size": 4},
    "study": {"features": ["all", "slda"], "model": ["logreg", "dt"], "balance": [0]},
}
STAGES = [
    "check",
    "demo",
    "format",
    "select@EmoClass-slda",
    "select@Modality-bayes",
    "common@EmoClass",
    "common@Modality",
    "selection_report",
    "train",
    "test",
    "explain",
]


@pytest.mark.integration
def test_full_pipeline_repro_then_noop_then_experiment(project_copy):
    proj = project_copy(SMALL)
    first = run_cmd(["dvc", "repro"], proj)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout, stage

    # every declared metric is there and says something real
    shown = json.loads(run_cmd(["dvc", "metrics", "show", "--json"], proj).stdout)
    files = next(iter(shown.values()))["data"]
    # few, for exp show: the single configuration's headline figures and the presence table
    assert set(files) == {
        "metrics/train.json",
        "metrics/test.json",
        "metrics/explain.json",
        "metrics/presence.json",
    }
    presence = json.loads((proj / "metrics" / "presence.json").read_text())
    assert (
        presence["EmoClass"]["verdict"] == "present"
        and presence["Modality"]["verdict"] == "present"
    )
    test = json.loads((proj / "metrics" / "test.json").read_text())
    assert test["chance"]["balanced_accuracy"] == pytest.approx(0.25)
    # EmoClass is planted in the demo: clearly above chance, and the permutation test says so
    assert test["balanced_accuracy"] > test["chance"]["balanced_accuracy"] + 0.03
    assert test["permutation"]["p_value"] < 0.05
    selection = json.loads((proj / "metrics" / "selection.json").read_text())
    assert selection["EmoClass"]["slda"]["unit"] == "within_speaker"
    assert selection["EmoClass"]["slda"]["precision"] >= 0.9
    explain = json.loads((proj / "metrics" / "explain_details.json").read_text())
    assert len(explain["top10"]) == 10 and explain["n_top10_in_truth"] is not None

    # dvc.lock is current: status is clean and a second repro runs nothing
    status = run_cmd(["dvc", "status"], proj)
    assert "up to date" in status.stdout, status.stdout
    again = run_cmd(["dvc", "repro"], proj)
    assert "Running stage" not in again.stdout

    # an experiment on another label / model needs no file edits
    # and reruns only what depends on them
    run_cmd(["git", "add", "-A"], proj)
    run_cmd(["git", "commit", "-qm", "baseline"], proj)
    exp = run_cmd(
        [
            "dvc",
            "exp",
            "run",
            "-S",
            "label=Modality",
            "-S",
            "model.method=dt",
            "-S",
            "features.method=slda",
        ],
        proj,
    )
    assert "Running stage 'train'" in exp.stdout and "Running stage 'select" not in exp.stdout
    test = json.loads((proj / "metrics" / "test.json").read_text())
    assert test["chance"]["balanced_accuracy"] == pytest.approx(0.5)
    diff = json.loads(run_cmd(["dvc", "metrics", "diff", "--json"], proj).stdout)
    assert "balanced_accuracy" in diff["metrics/test.json"]

    # a failed run loses nothing: wrong settings stop at `check` before any output is removed ...
    # (metrics/params_check.json is the check's own marker: DVC removes it when the check fails)
    kept = [p for p in sorted((proj / "metrics").glob("*.json")) if p.name != "params_check.json"]
    outputs = {p: p.read_bytes() for p in kept + [proj / "models" / "model.joblib"]}
    params = yaml.safe_load((proj / "params.yaml").read_text())
    for dotted, value, message in BAD_SETTINGS:
        changed = copy.deepcopy(params)
        node = changed
        *head, last = dotted.split(".")
        for part in head:
            node = node[part]
        node[last] = value
        (proj / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
        failed = run_cmd(["dvc", "repro"], proj, check=False)
        assert failed.returncode != 0 and f"error [check]: {message}" in failed.stderr, (
            failed.stderr
        )
        assert {p: p.read_bytes() for p in outputs} == outputs, dotted
        assert not [
            line
            for line in run_cmd(["git", "status", "--porcelain"], proj).stdout.splitlines()
            if line.startswith(" D")
        ]
    # ... and a failure past `check` (a BA that is not a model input) is undone by `dvc checkout`
    changed = copy.deepcopy(params)
    changed["explain"]["ba"] = ["BA511"]
    (proj / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    failed = run_cmd(["dvc", "repro"], proj, check=False)
    assert failed.returncode != 0 and "error [explain]: explain.ba lists BA511" in failed.stderr
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_cmd(["dvc", "checkout"], proj)
    assert {p: p.read_bytes() for p in outputs} == outputs
    rerun = run_cmd(["dvc", "repro"], proj)  # at most the cheap check reruns; nothing is recomputed
    assert set(re.findall(r"Running stage '([^']+)'", rerun.stdout)) <= {"check"}
    assert {p: p.read_bytes() for p in outputs} == outputs
    assert "up to date" in run_cmd(["dvc", "status"], proj).stdout


BAD_SETTINGS = [
    ("train.balance", 3, "params.yaml: train.balance must be one of 0, 1, 2, got 3"),
    ("model.method", "svm", "params.yaml: model.method must be one of logreg, mlp, dt, got 'svm'"),
    ("label", "Noise", "params.yaml: label 'Noise' is not in labels ['EmoClass', 'Modality']"),
]


@pytest.mark.integration
def test_bytecode_caches_are_not_code_changes(project_copy):
    """Python writes __pycache__ beside the code deps: DVC must not see changed code in it."""
    proj = project_copy(SMALL)
    run_cmd(["dvc", "repro", "check"], proj)
    run_cmd(["git", "add", "-A"], proj)
    run_cmd(["git", "commit", "-qm", "check"], proj)
    # modules the check stage did not import get their caches written now, as later stages would
    run_cmd(["python", "-c", "import smp_balr.study.run, smp_balr.report.build"], proj)
    assert list((proj / "smp_balr" / "core" / "__pycache__").glob("*.pyc"))
    status = run_cmd(["dvc", "status", "check"], proj)
    assert "up to date" in status.stdout, status.stdout
