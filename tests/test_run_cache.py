"""Two machines share work through a DVC remote: run cache and experiments, without recomputing.

Clone 1 runs the pipeline and an experiment and pushes (git: a bare repository; DVC: a local
directory remote); clone 2, a git clone with the same remote, pulls and finds everything done.

Every output, the metrics files included, is cached by DVC, so ``dvc push --run-cache`` carries
every stage's results; the experiment as a whole travels with ``dvc exp push`` / ``dvc exp pull``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import SMALL_DEMO, run_cmd

TINY = {
    **SMALL_DEMO,
    "label": "EmoClass",
    "labels": ["EmoClass"],
    "selection": {"selectors": ["all", "slda"], "common": {"include": [], "exclude": ["_all_"]}},
    "model": {
        "mlp": {"max_iter": 5, "n_iter_no_change": 2},
        "dt": {
            "grid": {
                "max_depth": [3],
                "min_samples_split": [2],
                "min_samples_leaf": [1],
                "criterion": ["gini"],
            },
            "cv_folds": 3,
            "n_jobs": 1,
        },
    },
    "test": {"n_permutations": 200, "n_bootstrap": 50},
    "explain": {"enabled": False},
    "study": {"features": ["all"], "model": ["logreg"], "balance": [0], "n_jobs": 1},
}
OUTPUTS = [
    "data/demo/labels.csv",
    "data/demo_train_data.csv",
    "features/EmoClass/EmoClass_slda_features.csv",
    "models/model.joblib",
    "metrics/test.json",
    "metrics/train.json",
]


def _digests(root: Path) -> dict[str, str]:
    return {p: hashlib.md5((root / p).read_bytes()).hexdigest() for p in OUTPUTS}


EXP = ["-S", "model.method=dt", "-S", "selection.slda.p_enter=0.01"]


@pytest.mark.integration
def test_second_clone_pulls_results_instead_of_recomputing(project_copy, tmp_path: Path) -> None:
    one = project_copy(TINY)
    store, origin, two = tmp_path / "dvc-store", tmp_path / "origin.git", tmp_path / "clone2"
    run_cmd(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    run_cmd(["dvc", "remote", "add", "-d", "store", str(store)], one)
    run_cmd(["git", "remote", "add", "origin", str(origin)], one)

    first = run_cmd(["dvc", "repro"], one)
    assert "Running stage 'train'" in first.stdout
    run_cmd(["git", "add", "-A"], one)
    run_cmd(["git", "commit", "-qm", "baseline"], one)
    run_cmd(["git", "push", "-q", "origin", "HEAD:main"], one)
    run_cmd(["dvc", "push", "--run-cache"], one)  # the baseline's outputs and runs
    baseline = _digests(one)

    exp = run_cmd(["dvc", "exp", "run", "-n", "tree", *EXP], one)
    assert (
        "Running stage 'select@EmoClass-slda'" in exp.stdout
        and "Running stage 'format'" not in exp.stdout
    )
    exp_features = (one / "features" / "EmoClass" / "EmoClass_slda_features.csv").read_bytes()
    exp_test = json.loads((one / "metrics" / "test.json").read_text())
    run_cmd(["dvc", "push", "--run-cache"], one)  # the experiment's outputs and runs
    run_cmd(["dvc", "exp", "push", "origin", "tree"], one)

    # clone 2: same git history, same DVC remote; the baseline comes over, nothing runs
    run_cmd(["git", "clone", "-q", "-b", "main", str(origin), str(two)], tmp_path)
    assert "tree" in run_cmd(["dvc", "exp", "list", "origin"], two).stdout
    run_cmd(["dvc", "pull", "--run-cache"], two)
    again = run_cmd(["dvc", "repro"], two)
    assert "Running stage" not in again.stdout, again.stdout
    assert _digests(two) == baseline

    # run cache: the experiment's selection stage, asked for with its parameters, is restored
    # (outputs fetched from the remote, --pull), not run
    rerun = run_cmd(["dvc", "exp", "run", "--pull", *EXP, "select@EmoClass-slda"], two)
    text = rerun.stdout + rerun.stderr
    assert "Stage 'select@EmoClass-slda' is cached - skipping run" in text, text
    assert "Running stage" not in text, text
    assert (
        two / "features" / "EmoClass" / "EmoClass_slda_features.csv"
    ).read_bytes() == exp_features
    run_cmd(["git", "checkout", "--", "."], two)
    run_cmd(["dvc", "checkout", "--force"], two)

    # the whole experiment (commit, metrics, outputs) comes over with exp pull:
    # applied, it is current
    run_cmd(["dvc", "exp", "pull", "origin", "tree"], two)
    run_cmd(["dvc", "exp", "apply", "tree"], two)
    run_cmd(["dvc", "pull"], two)
    applied = run_cmd(["dvc", "repro"], two)
    assert "Running stage" not in applied.stdout, applied.stdout
    assert json.loads((two / "metrics" / "test.json").read_text()) == exp_test
