"""The `explain` stage script and its dvc.yaml stage,
on a project copy with a small model made here."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from smp_balr.core import paths
from smp_balr.core.settings import DtSettings, LogregSettings, MlpSettings
from smp_balr.model.artefacts import save_model
from smp_balr.model.estimator import BAClassifier

from conftest import ROOT, copy_project, run_cmd

ROOT_PARAMS = ROOT / "params.yaml"
CLASSES = ["A", "H", "N", "S"]
N_BA = 16
STRONG = "BA5"  # on for class H


def _table(seed: int, n_per_speaker: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for spk in range(8):
        for u in range(n_per_speaker):
            cls = (CLASSES + ["X"])[(spk + u) % 5]  # X is dropped by the class filter
            ba = (rng.random(N_BA) < 0.4).astype(int)
            ba[5] = int(cls == "H" or rng.random() < 0.05)
            rows.append(
                {
                    "FileName": f"s{spk}_{u}.wav",
                    "Speaker": f"s{spk}",
                    "Group": "Test",
                    "EmoClass": cls,
                    **{f"BA{i}": int(v) for i, v in enumerate(ba)},
                }
            )
    return pd.DataFrame(rows)


def _write_inputs(root: Path, kind: str) -> None:
    """Test table + model artefact (the train stage's contract) + demo truth in a project copy."""
    test = _table(1)
    train = _table(2)
    train = train[train["EmoClass"] != "X"]
    feats = [f"BA{i}" for i in range(N_BA)]
    model = BAClassifier(
        method=kind,
        dt=DtSettings(grid={"max_depth": (4,)}, cv_folds=2, n_jobs=1),
        mlp=MlpSettings(hidden2=8, early_stopping=0, max_iter=200),
        logreg=LogregSettings(cv_folds=2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train[feats], train["EmoClass"].to_numpy(), train["Speaker"].to_numpy())
    model.metadata_ = {
        "label": "EmoClass",
        "model_method": kind,
        "train_speakers": sorted(set(train["Speaker"])),
    }
    (root / "data").mkdir(exist_ok=True)
    test.to_csv(root / paths.test_table("demo"), index=False)
    save_model(model, root / paths.MODEL_FILE)
    (root / paths.DEMO_TRUTH).parent.mkdir(parents=True, exist_ok=True)
    (root / paths.DEMO_TRUTH).write_text(json.dumps({"EmoClass": [STRONG, "BA9"]}))


def _repro_explain(root: Path) -> None:
    """`dvc repro` of the explain stage alone (after the params check it depends on)."""
    run_cmd(["dvc", "repro", "--single-item", "check"], root)
    run_cmd(["dvc", "repro", "--single-item", "explain"], root)


def _stage(root: Path, check: bool = True):
    return run_cmd(["python", "stages/explain.py"], root, check=check)


def _outputs(root: Path) -> dict[str, bytes]:
    files = [
        root / paths.EXPLAIN_METRICS,
        root / paths.EXPLAIN_DETAILS,
        root / paths.EXPLAIN_TOP,
        *sorted((root / paths.EXPLAIN_DIR).iterdir()),
    ]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.mark.integration
def test_dvc_repro_explain_dt_outputs_and_determinism(project_copy):
    root = project_copy({"explain": {"n_samples": 60}})
    _write_inputs(root, "dt")
    _repro_explain(root)
    m = json.loads((root / paths.EXPLAIN_DETAILS).read_text())
    assert m["enabled"] and m["explainer"] == "tree" and m["n_explained"] == 60
    assert json.loads((root / paths.EXPLAIN_METRICS).read_text()) == {
        "enabled": True,
        "top5_share": m["top5_share"],
        "top10_share": m["top10_share"],
        "n_top10_in_truth": 2,
    }
    assert m["n_test_rows"] == 192  # 240 rows, the 48 of class X dropped
    assert m["additivity_max_error"] < 1e-6
    assert m["top5"][0] == STRONG and m["n_top10_in_truth"] == 2
    assert m["ba_plotted"] == m["top5"][:4]
    out = root / paths.EXPLAIN_DIR
    names = {p.name for p in out.iterdir()}
    for cls in CLASSES:
        assert {f"shap_{cls}.csv", f"summary_{cls}.csv", f"beeswarm_{cls}.png"} <= names
    assert {"importance.csv", "top20.png"} | {f"ba_{b}.png" for b in m["ba_plotted"]} <= names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert mpimg.imread(png).ndim == 3
    shap_h = pd.read_csv(out / "shap_H.csv")
    assert (
        shap_h.columns[:3].tolist() == ["Sample_ID", "FileName", "True_Label"] and len(shap_h) == 60
    )
    assert shap_h["True_Label"].value_counts().to_dict() == {c: 15 for c in CLASSES}  # stratified
    assert pd.read_csv(out / "summary_H.csv")["BA"].iloc[0] == STRONG
    top = pd.read_csv(root / paths.EXPLAIN_TOP)
    assert top.columns.tolist() == ["BA", "importance", "share"] and len(top) == N_BA
    # dvc reads the declared metrics and plot definitions
    shown = run_cmd(["dvc", "metrics", "show", "--json"], root).stdout
    assert "top5_share" in shown
    plots = run_cmd(["dvc", "plots", "show", "--json", str(paths.EXPLAIN_TOP)], root).stdout
    spec = json.loads(plots)["data"][str(paths.EXPLAIN_TOP)][0]["content"]
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["y"]["field"] == "BA" and spec["encoding"]["x"]["field"] == "share"
    first = _outputs(root)
    _stage(root)  # same params -> identical bytes
    assert _outputs(root) == first


def test_stage_mlp_kernel_additivity(project_copy):
    root = project_copy(
        {
            "explain": {
                "n_samples": 12,
                "mlp_explainer": "kernel",
                "kernel_nsamples": 200,
                "background": "sample",
                "background_size": 5,
                "ba": ["BA9", "BA5"],
            }
        }
    )
    _write_inputs(root, "mlp")
    _stage(root)
    m = json.loads((root / paths.EXPLAIN_DETAILS).read_text())
    assert m["explainer"] == "kernel" and m["background"] == "sample:5"
    assert m["additivity_max_error"] < 1e-6 and m["n_explained"] == 12
    assert m["ba_plotted"] == ["BA9", "BA5"]
    assert (root / paths.EXPLAIN_DIR / "ba_BA9.png").is_file()


def test_stage_logreg_linear_explainer(project_copy):
    root = project_copy(
        {"explain": {"n_samples": 40, "background": "sample", "background_size": 30}}
    )
    _write_inputs(root, "logreg")
    _stage(root)
    m = json.loads((root / paths.EXPLAIN_DETAILS).read_text())
    assert (
        m["explainer"] == "linear"
        and m["output"] == "log-odds"
        and m["model"] == "LogisticRegression"
    )
    assert m["additivity_max_error"] < 1e-9 and m["top5"][0] == STRONG


def test_stage_disabled_writes_empty_outputs(project_copy):
    root = project_copy({"explain": {"enabled": False}})
    _stage(root)  # no model needed by the script
    assert json.loads((root / paths.EXPLAIN_METRICS).read_text()) == {"enabled": False}
    _write_inputs(root, "dt")  # dvc needs the declared deps
    _repro_explain(root)  # dvc accepts the empty directory
    assert json.loads((root / paths.EXPLAIN_METRICS).read_text()) == {"enabled": False}
    assert list((root / paths.EXPLAIN_DIR).iterdir()) == []
    assert (root / paths.EXPLAIN_TOP).read_text().strip() == "BA,importance,share"


ERROR_CASES = [
    (
        {},
        "explain.mlp_explainer must be one of permutation, kernel, got 'lime'",
        {"mlp_explainer": "lime"},
    ),
    (
        {},
        "explain.ba lists BA99, not among the model's input BAs; use BAs from: BA0, BA1",
        {"ba": ["BA5", "BA99"]},
    ),
    ({}, "explain.n_samples must be at least 1, got 0", {"n_samples": 0}),
    ({}, "explain.background must be one of kmeans, sample, got 'pca'", {"background": "pca"}),
    (
        {"remove_model": True},
        "model file models/model.joblib not found; run `dvc repro train` first",
        {},
    ),
]


@pytest.fixture(scope="module")
def error_project(tmp_path_factory):
    """One project copy with a dt model, shared by the error cases (each rewrites params.yaml)."""
    root = copy_project(tmp_path_factory.mktemp("explain_errors"))
    _write_inputs(root, "dt")
    return root


@pytest.mark.parametrize(
    "flags, message, explain_changes", ERROR_CASES, ids=[m[:24] for _, m, _ in ERROR_CASES]
)
def test_stage_errors_are_one_line(error_project, flags, message, explain_changes):
    """Each bad setting: one stderr line naming it, non-zero exit, no metrics written."""
    import yaml

    root = error_project
    params = yaml.safe_load((ROOT_PARAMS).read_text())
    params["explain"].update(explain_changes)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if flags.get("remove_model"):
        (root / paths.MODEL_FILE).rename(root / "model.bak")
    try:
        proc = _stage(root, check=False)
    finally:
        if flags.get("remove_model"):
            (root / "model.bak").rename(root / paths.MODEL_FILE)
    assert proc.returncode == 2, message
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error [explain]: "), proc.stderr
    assert message in lines[0]
    assert not (root / paths.EXPLAIN_METRICS).exists()
