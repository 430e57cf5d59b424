"""The `train` and `test` stage scripts: error lines, outputs, and a real dvc run."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from smp_balr.core.cli import run

from conftest import ROOT, run_cmd

EMO = ("A", "H", "N", "S")
SMALL_MODEL = {
    "method": "mlp",
    "mlp": {
        "hidden1_ratio": 0.5,
        "hidden2": 8,
        "learning_rate": 0.01,
        "batch_size": 32,
        "max_iter": 20,
        "early_stopping": 1,
        "validation_fraction": 0.25,
        "n_iter_no_change": 4,
    },
    "dt": {"grid": {"max_depth": [3, 6], "criterion": ["gini"]}, "cv_folds": 3, "n_jobs": 1},
}
FAST_TEST = {"n_permutations": 1000, "n_bootstrap": 200}


def make_table(n_speakers: int, per: int, n_ba: int, seed: int, prefix: str) -> pd.DataFrame:
    """A formatted table: class k raises BA(2k) and BA(2k+1); Language is one value per speaker."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"{prefix}{i:02d}" for i in range(n_speakers)], per)
    y = rng.integers(0, len(EMO), speakers.size)
    prob = np.full((speakers.size, n_ba), 0.3)
    prob[np.arange(speakers.size), 2 * y] = prob[np.arange(speakers.size), 2 * y + 1] = 0.9
    bits = (rng.random(prob.shape) < prob).astype(int)
    df = pd.DataFrame(bits, columns=[f"BA{j}" for j in range(n_ba)])
    lang = np.array(["en", "fr"])[np.array([int(s[-2:]) % 2 for s in speakers])]
    meta = pd.DataFrame(
        {
            "FileName": [f"{s}_{i}.wav" for i, s in enumerate(speakers)],
            "Speaker": speakers,
            "Group": "Train" if prefix == "tr" else "Test",
            "EmoClass": np.array(EMO)[y],
            "Language": lang,
        }
    )
    return pd.concat([meta, df], axis=1)


def write_inputs(root: Path, n_ba: int = 16, test_prefix: str = "te") -> None:
    (root / "data").mkdir(exist_ok=True)
    (root / "features").mkdir(exist_ok=True)
    make_table(12, 30, n_ba, 1, "tr").to_csv(root / "data" / "demo_train_data.csv", index=False)
    make_table(6, 30, n_ba, 2, test_prefix).to_csv(
        root / "data" / "demo_test_data.csv", index=False
    )
    for label in ("EmoClass", "Language"):
        (root / "features" / label).mkdir(exist_ok=True)
        pd.DataFrame({"Feature": [f"BA{j}" for j in range(n_ba)], "score": 1.0}).to_csv(
            root / "features" / label / f"{label}_all_features.csv", index=False
        )


def write_params(root: Path, **changes) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    base = {"label": "EmoClass", "model": SMALL_MODEL, "test": FAST_TEST, "data": {"name": "demo"}}
    params.update(copy.deepcopy(base))
    for dotted, value in changes.items():
        node = params
        *head, last = dotted.split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


SCRIPTS = {"train": "train", "test": "evaluate"}  # dvc stage name -> script under stages/


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(
        f"stage_{name}", ROOT / "stages" / f"{SCRIPTS[name]}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_stage(name: str, capsys) -> tuple[int, list[str]]:
    """Run a stage in-process through cli.run; return the exit code and the error lines."""
    code = 0
    try:
        run(_stage(name).main, name)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error [")]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_inputs(tmp_path)
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_then_test_write_every_output(workdir, capsys):
    assert run_stage("train", capsys) == (0, [])
    model = __import__("joblib").load(workdir / "models" / "model.joblib")
    assert list(model.classes_) == list(EMO) and model.feature_names_in_[0] == "BA0"
    assert model.metadata_["label"] == "EmoClass" and model.metadata_["train_speakers"][:2] == [
        "tr00",
        "tr01",
    ]
    headline = json.loads((workdir / "metrics" / "train.json").read_text())
    train = json.loads((workdir / "metrics" / "train_details.json").read_text())
    assert (
        train["n_speakers"] == 12
        and train["n_features"] == 16
        and 0 < train["validation_score"] <= 1
    )
    assert headline == {
        "model": "mlp",
        "selection_score": train["validation_score"],
        "selection_score_source": "held-out speakers",
        "n_rows": 360,
        "n_speakers": 12,
        "n_features": 16,
    }
    curves = {p.name: pd.read_csv(p) for p in (workdir / "metrics" / "train_curves").iterdir()}
    assert set(curves) == {"train_loss.csv", "valid_balanced_accuracy.csv"}
    assert len(curves["train_loss.csv"]) == train["epochs"]
    assert curves["valid_balanced_accuracy.csv"]["valid_balanced_accuracy"].max() == pytest.approx(
        train["validation_score"]
    )

    assert run_stage("test", capsys) == (0, [])
    m = json.loads((workdir / "metrics" / "test_details.json").read_text())
    assert m["n_rows"] == 180 and m["n_speakers"] == 6 and m["chance"]["balanced_accuracy"] == 0.25
    assert m["balanced_accuracy"] > 0.6 and m["permutation"]["p_value"] < 0.01
    headline = json.loads((workdir / "metrics" / "test.json").read_text())
    assert m["label"] == "EmoClass" and headline == {
        "balanced_accuracy": m["balanced_accuracy"],
        "bootstrap": {"ci_low": m["bootstrap"]["ci_low"], "ci_high": m["bootstrap"]["ci_high"]},
        "chance": {"balanced_accuracy": 0.25},
        "permutation": {"p_value": m["permutation"]["p_value"]},
        "present": True,
        "n_speakers": 6,
    }
    pred = pd.read_csv(workdir / "metrics" / "predictions.csv")
    assert list(pred.columns) == ["FileName", "Speaker", "true", "predicted"] + [
        f"prob_{c}" for c in EMO
    ]
    assert np.allclose(pred.filter(like="prob_").sum(axis=1), 1.0)
    report = pd.read_csv(workdir / "metrics" / "classification_report.csv", index_col=0)
    assert report.loc["macro avg", "recall"] == pytest.approx(m["balanced_accuracy"])
    assert (workdir / "metrics" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_logreg_probe_trains_and_tests(workdir, capsys):
    write_params(
        workdir, **{"model.method": "logreg", "model.logreg.cv_folds": 3, "train.balance": 2}
    )
    assert run_stage("train", capsys) == (0, [])
    train = json.loads((workdir / "metrics" / "train_details.json").read_text())
    assert (
        json.loads((workdir / "metrics" / "train.json").read_text())["selection_score"]
        == train["cv_score"]
    )
    assert (
        train["model"] == "logreg"
        and train["best_params"]["C"] in (0.01, 0.1, 1.0)
        and train["cv_score"] > 0.5
    )
    curve = pd.read_csv(workdir / "metrics" / "train_curves" / "cv_score.csv")
    assert list(curve["C"]) == [0.01, 0.1, 1.0] and curve["cv_score"].max() == pytest.approx(
        train["cv_score"]
    )
    assert run_stage("test", capsys) == (0, [])
    assert json.loads((workdir / "metrics" / "test.json").read_text())["balanced_accuracy"] > 0.6


def test_balance_and_speakers_options(workdir, capsys):
    write_params(workdir, **{"model.method": "dt", "train.balance": 1, "train.speakers": 1})
    assert run_stage("train", capsys) == (0, [])
    train = json.loads((workdir / "metrics" / "train_details.json").read_text())
    assert len(set(train["class_counts_final"].values())) == 1
    assert max(train["class_counts"].values()) == train["class_counts_final"]["A"]
    assert (
        train["n_rows_fitted"] == 4 * train["class_counts_final"]["A"]
        and 0 < train["cv_score"] <= 1
    )


def test_unseen_classes_and_shared_speakers_are_reported(workdir, capsys, caplog):
    assert run_stage("train", capsys)[0] == 0
    test = pd.read_csv(workdir / "data" / "demo_test_data.csv", dtype=str)
    test.loc[:9, "EmoClass"] = "X"  # a class the model never saw (no class filter on Language...)
    test.loc[10:, "Speaker"] = test.loc[10:, "Speaker"].where(
        test.loc[10:, "Speaker"] != "te00", "tr00"
    )
    test.to_csv(workdir / "data" / "demo_test_data.csv", index=False)
    write_params(workdir, **{"classes.EmoClass": "all"})
    assert run_stage("test", capsys) == (0, [])
    m = json.loads((workdir / "metrics" / "test_details.json").read_text())
    assert m["n_excluded_unseen_class"] == 10 and m["n_rows"] == 170 and m["n_shared_speakers"] == 1


ERROR_CASES = [
    # (stage, setup, expected message pattern)
    (
        "train",
        lambda r: (r / "features" / "EmoClass" / "EmoClass_all_features.csv").unlink(),
        r"features file features/EmoClass/EmoClass_all_features.csv not found; "
        r"run `dvc repro select@EmoClass-all`",
    ),
    (
        "train",
        lambda r: (r / "features" / "EmoClass" / "EmoClass_all_features.csv").write_text(""),
        r"is empty; run `dvc repro select@EmoClass-all`",
    ),
    (
        "train",
        lambda r: write_params(r, **{"features.method": "common"}),
        r"EmoClass_common_features.csv not found; run `dvc repro common@EmoClass`",
    ),
    (
        "train",
        lambda r: write_params(r, label="Genre"),
        r"label 'Genre' is not in labels \['EmoClass', 'Language', 'Modality', 'Noise'\]",
    ),
    (
        "train",
        lambda r: write_params(r, label="Genre", labels=["Genre"], **{"classes.Genre": "all"}),
        r"label 'Genre' is not a column of data/demo_train_data.csv",
    ),
    (
        "train",
        lambda r: write_params(r, **{"classes.EmoClass": ["A"]}),
        r"label 'EmoClass' has a single class in data/demo_train_data.csv: 'A' .* "
        r"after the class filter classes.EmoClass: \[A\]",
    ),
    (
        "train",
        lambda r: write_params(r, **{"model.method": "dt", "model.dt.cv_folds": 20}),
        r"12 training speakers cannot fill 20 speaker-disjoint folds; lower model.dt.cv_folds",
    ),
    (
        "train",
        lambda r: write_params(r, label="Language", **{"train.speakers": 1}),
        r"no speaker .* has rows of every class of 'Language'",
    ),
    (
        "train",
        lambda r: write_params(r, **{"model.method": "svm"}),
        r"model.method must be one of logreg, mlp, dt, got 'svm'",
    ),
    (
        "train",
        lambda r: write_params(r, **{"features.method": "SLDA"}),
        r"features.method must be one of all, slda, bayes, common, got 'SLDA'",
    ),
    (
        "train",
        lambda r: write_params(r, **{"train.balance": True}),
        r"train.balance must be one of 0, 1, 2, got True",
    ),
    (
        "train",
        lambda r: write_params(r, **{"model.mlp.hidden2": "sixteen"}),
        r"model.mlp.hidden2 must be a whole number, got 'sixteen'",
    ),
    ("train", lambda r: write_params(r, seed="abc"), r"seed must be a whole number"),
    ("test", lambda r: None, r"model file models/model.joblib not found; run `dvc repro train`"),
]


@pytest.mark.parametrize("stage, setup, pattern", ERROR_CASES)
def test_stage_errors_are_one_line(workdir, capsys, stage, setup, pattern):
    setup(workdir)
    code, lines = run_stage(stage, capsys)
    assert code == 2 and len(lines) == 1
    assert re.search(pattern, lines[0]), lines[0]


def test_too_few_rows_of_a_class_for_the_folds(workdir, capsys):
    train = pd.read_csv(workdir / "data" / "demo_train_data.csv", dtype=str)
    rare = train.index[train["EmoClass"] == "S"][2:]
    train.drop(index=rare).to_csv(workdir / "data" / "demo_train_data.csv", index=False)
    write_params(workdir, **{"model.method": "dt"})
    code, lines = run_stage("train", capsys)
    assert code == 2 and re.search(
        r"class\(es\) S \(2\) have fewer rows than the 3 folds", lines[0]
    )


def test_feature_columns_absent_from_test_table(workdir, capsys):
    assert run_stage("train", capsys)[0] == 0
    test = pd.read_csv(workdir / "data" / "demo_test_data.csv", dtype=str)
    test.drop(columns=["BA3", "BA15"]).to_csv(workdir / "data" / "demo_test_data.csv", index=False)
    code, lines = run_stage("test", capsys)
    assert (
        code == 2
        and "2 model feature column(s) absent from data/demo_test_data.csv: BA3, BA15" in lines[0]
    )


def test_stage_script_exits_non_zero_as_a_process(workdir):
    (workdir / "features" / "EmoClass" / "EmoClass_all_features.csv").unlink()
    proc = run_cmd([sys.executable, str(ROOT / "stages" / "train.py")], workdir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error [train]: features file")
    assert "Traceback" not in proc.stderr


def _own_stages() -> str:
    """The project's dvc.yaml reduced to its `check`, `train` and `test` stages."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return yaml.safe_dump(
        {"stages": {name: stages[name] for name in ("check", "train", "test")}}, sort_keys=False
    )


@pytest.mark.integration
def test_dvc_repro_exp_run_metrics_and_plots(project_copy):
    if shutil.which("dvc", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dvc not installed in the environment")
    root = project_copy({})
    (root / "dvc.yaml").write_text(_own_stages())  # only train/test: the inputs are made here
    write_inputs(root)
    write_params(root)
    run_cmd(["git", "add", "-A"], root)
    run_cmd(["git", "commit", "-qm", "inputs"], root)

    run_cmd(["dvc", "repro", "test"], root)
    first = json.loads((root / "metrics" / "test.json").read_text())
    assert first["balanced_accuracy"] > 0.6
    run_cmd(["git", "add", "-A"], root)
    run_cmd(["git", "commit", "-qm", "mlp"], root)

    run_cmd(["dvc", "exp", "run", "-S", "model.method=dt", "-S", "train.balance=2"], root)
    train = json.loads((root / "metrics" / "train.json").read_text())
    assert train["model"] == "dt" and train["selection_score_source"] == "speaker-grouped CV"
    diff = json.loads(run_cmd(["dvc", "metrics", "diff", "--json"], root).stdout)
    row = diff["metrics/test.json"]["balanced_accuracy"]
    assert row["old"] == pytest.approx(first["balanced_accuracy"]) and row["new"] != row["old"]

    plots = json.loads(run_cmd(["dvc", "plots", "show", "--json"], root).stdout)["data"]
    confusion = plots["metrics/predictions.csv"][0]
    assert confusion["type"] == "vega"
    spec = json.dumps(confusion["content"])
    assert (
        '"predicted"' in spec and '"true"' in spec and "rect" in spec
    )  # the confusion template's heatmap
    assert any("confusion_matrix.png" in key for key in plots)
    curve = plots["metrics/train_curves/cv_score.csv"][0]  # the dt grid's CV scores, as a DVC plot
    assert curve["type"] == "vega" and '"cv_score"' in json.dumps(curve["content"])

    run_cmd(["dvc", "exp", "run", "-S", "label=Language"], root)
    lang = json.loads((root / "metrics" / "test.json").read_text())
    assert lang["chance"]["balanced_accuracy"] == 0.5 and lang["n_speakers"] == 6
