"""The `explain` stage script and its dvc.yaml stage, on a project copy with a small model made here."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.tree import DecisionTreeClassifier

from conftest import run_cmd
from smp_balr import paths
from smp_balr.modeling import save_model

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
            rows.append({"FileName": f"s{spk}_{u}.wav", "Speaker": f"s{spk}", "Group": "Test", "EmoClass": cls,
                         **{f"BA{i}": int(v) for i, v in enumerate(ba)}})
    return pd.DataFrame(rows)


def _write_inputs(root: Path, kind: str) -> None:
    """Test table + model artefact (the train stage's contract) + demo truth in a project copy."""
    test = _table(1)
    train = _table(2)
    train = train[train["EmoClass"] != "X"]
    feats = [f"BA{i}" for i in range(N_BA)]
    enc = LabelEncoder().fit(CLASSES)
    y = enc.transform(train["EmoClass"])
    x = train[feats].to_numpy(float)
    if kind == "dt":
        model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, y)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier((8,), max_iter=200, random_state=0).fit(x, y)
    (root / "data").mkdir(exist_ok=True)
    test.to_csv(root / paths.test_table("demo"), index=False)
    save_model({"model": model, "encoder": enc, "features": feats, "label": "EmoClass",
                "classes": CLASSES, "meta": {"method": kind}}, root / paths.MODEL_FILE)
    (root / paths.DEMO_TRUTH).parent.mkdir(parents=True, exist_ok=True)
    (root / paths.DEMO_TRUTH).write_text(json.dumps({"EmoClass": [STRONG, "BA9"]}))


def _stage(root: Path, check: bool = True):
    return run_cmd(["python", "stages/explain.py"], root, check=check)


def _outputs(root: Path) -> dict[str, bytes]:
    files = [root / paths.EXPLAIN_METRICS, root / paths.EXPLAIN_TOP, *sorted((root / paths.EXPLAIN_DIR).iterdir())]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.mark.integration
def test_dvc_repro_explain_dt_outputs_and_determinism(project_copy):
    root = project_copy({"explain": {"n_samples": 60}})
    _write_inputs(root, "dt")
    run_cmd(["dvc", "repro", "--single-item", "explain"], root)
    m = json.loads((root / paths.EXPLAIN_METRICS).read_text())
    assert m["enabled"] and m["explainer"] == "tree" and m["n_explained"] == 60
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
    assert shap_h.columns[:3].tolist() == ["Sample_ID", "FileName", "True_Label"] and len(shap_h) == 60
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
    root = project_copy({"explain": {"n_samples": 12, "mlp_explainer": "kernel", "kernel_nsamples": 200,
                                     "background": "sample", "background_size": 5, "ba": ["BA9", "BA5"]}})
    _write_inputs(root, "mlp")
    _stage(root)
    m = json.loads((root / paths.EXPLAIN_METRICS).read_text())
    assert m["explainer"] == "kernel" and m["background"] == "sample:5"
    assert m["additivity_max_error"] < 1e-6 and m["n_explained"] == 12
    assert m["ba_plotted"] == ["BA9", "BA5"]
    assert (root / paths.EXPLAIN_DIR / "ba_BA9.png").is_file()


def test_stage_disabled_writes_empty_outputs(project_copy):
    root = project_copy({"explain": {"enabled": False}})
    _stage(root)  # no model needed by the script
    assert json.loads((root / paths.EXPLAIN_METRICS).read_text()) == {"enabled": False}
    _write_inputs(root, "dt")  # dvc needs the declared deps
    run_cmd(["dvc", "repro", "--single-item", "explain"], root)  # dvc accepts the empty directory
    assert json.loads((root / paths.EXPLAIN_METRICS).read_text()) == {"enabled": False}
    assert list((root / paths.EXPLAIN_DIR).iterdir()) == []
    assert (root / paths.EXPLAIN_TOP).read_text().strip() == "BA,importance,share"


ERROR_CASES = [
    ({}, "explain.mlp_explainer is 'lime', not a known explainer; use one of permutation, kernel", {"mlp_explainer": "lime"}),
    ({}, "explain.ba lists BA99, not among the model's input BAs; use BAs from: BA0, BA1", {"ba": ["BA5", "BA99"]}),
    ({}, "explain.n_samples is 0; set it to a positive number", {"n_samples": 0}),
    ({}, "explain.background is 'pca'; use one of kmeans, sample", {"background": "pca"}),
    ({"remove_model": True}, "model file models/model.joblib not found; run `dvc repro train` first", {}),
]


def test_stage_errors_are_one_line(project_copy):
    """Each bad setting: one stderr line naming it, non-zero exit, no metrics written."""
    import yaml

    root = project_copy()
    _write_inputs(root, "dt")
    base = yaml.safe_load((root / "params.yaml").read_text())
    for flags, message, explain_changes in ERROR_CASES:
        params = json.loads(json.dumps(base))
        params["explain"].update(explain_changes)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if flags.get("remove_model"):
            (root / paths.MODEL_FILE).unlink()
        proc = _stage(root, check=False)
        assert proc.returncode != 0, message
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error [explain]: "), proc.stderr
        assert message in lines[0]
        assert not (root / paths.EXPLAIN_METRICS).exists()
