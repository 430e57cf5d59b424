"""The select / common / selection_report stages in a throw-away project copy."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import SMALL_DEMO, run_cmd

# the small demo has a single Spanish training speaker: Language fails at the speaker unit
# ("fewer than 2 rows"), which is the documented error, so it is left out here
LABELS = ["EmoClass"]
COMMON = [{"output": f"{lab}_common", "include": [f"{lab}_"], "exclude": ["_all_"]} for lab in LABELS]
METHODS = ["all", "slda", "bayes"]


@pytest.mark.integration
def test_repro_selection_report_on_small_demo(project_copy):
    proj = project_copy({**SMALL_DEMO, "labels": LABELS, "selection": {"bayes": {"max_rows": 600}, "common": COMMON}})
    run_cmd(["dvc", "repro", "selection_report"], proj)
    for label in LABELS:
        for method in METHODS:
            feats = pd.read_csv(proj / "features" / f"{label}_{method}_features.csv")
            assert list(feats.columns)[0] == "Feature"
        assert (proj / "features" / f"{label}_common_features.csv").is_file()
    bayes_table = pd.read_csv(proj / "metrics" / "selection" / "EmoClass_bayes_table.csv")
    assert set(bayes_table["Class"]) == {"H", "N", "S"}  # A is the reference
    report = json.loads((proj / "metrics" / "selection.json").read_text())
    truth = json.loads((proj / "data" / "demo" / "truth.json").read_text())
    for label in LABELS:
        for method in METHODS:
            entry = report[label][method]
            assert entry["n_truth"] == len(truth[label])
            assert entry["n_selected"] == len(pd.read_csv(proj / "features" / f"{label}_{method}_features.csv"))
    emo = report["EmoClass"]["slda"]
    assert emo["unit"] == "within_speaker" and emo["precision"] >= 0.9
    assert report["common"]["EmoClass_common"]["n_selected"] <= min(report["EmoClass"][m]["n_selected"] for m in ("slda", "bayes"))
    # the stages' own errors: one line, exit 2
    bad = run_cmd(["python", "stages/select_features.py", "EmoClass", "lasso"], proj, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "unknown selection method 'lasso'" in bad.stderr
    bad = run_cmd(["python", "stages/select_features.py", "Language", "slda"], proj, check=False)
    assert bad.returncode == 2 and "fewer than 2 rows" in bad.stderr
    bad = run_cmd(["python", "stages/select_features.py", "Colour", "slda"], proj, check=False)
    assert bad.returncode == 2 and "label 'Colour' is not a column" in bad.stderr
    bad = run_cmd(["python", "stages/common.py", "Nope_common"], proj, check=False)
    assert bad.returncode == 2 and "no entry with output 'Nope_common'" in bad.stderr
