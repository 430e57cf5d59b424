"""metrics/selection.json content: counts, and precision/recall against planted truth."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from smp_balr.core import paths
from smp_balr.core.errors import UserError
from smp_balr.core.outputs import write_csv, write_json
from smp_balr.data.demo import load_truth
from smp_balr.selection.report import build_report


def test_report_counts_and_quality(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(pd.DataFrame({"Feature": ["BA1", "BA2", "BA7"]}), paths.features_file("Emo", "slda"))
    write_csv(pd.DataFrame({"Feature": []}), paths.features_file("Emo", "bayes"))
    write_csv(pd.DataFrame({"Feature": ["BA1"]}), paths.features_file("Emo", "common"))
    write_json({"label": "Emo", "n_files": 2, "n_selected": 1}, paths.common_info("Emo"))
    write_json(
        {"unit": "within_speaker", "n_rows": 100, "n_units": 100},
        paths.selection_info("Emo", "slda"),
    )
    write_json({"Emo": ["BA1", "BA2", "BA3", "BA4"], "settings": {"n": 1}}, paths.DEMO_TRUTH)
    truth = load_truth(paths.DEMO_TRUTH)
    assert truth == {"Emo": ["BA1", "BA2", "BA3", "BA4"]}
    rep = build_report(["Emo"], ["slda", "bayes"], truth)
    assert rep["Emo"]["slda"] == {
        "n_selected": 3,
        "unit": "within_speaker",
        "n_rows": 100,
        "n_units": 100,
        "n_truth": 4,
        "precision": pytest.approx(2 / 3),
        "recall": 0.5,
    }
    assert rep["Emo"]["bayes"]["n_selected"] == 0 and rep["Emo"]["bayes"]["precision"] is None
    assert rep["Emo"]["common"] == {
        "n_selected": 1,
        "n_files": 2,
        "n_truth": 4,
        "precision": 1.0,
        "recall": 0.25,
    }
    no_truth = build_report(["Emo"], ["slda"], None, common=False)
    assert "precision" not in no_truth["Emo"]["slda"] and "common" not in no_truth["Emo"]
    json.dumps(rep)


def test_missing_feature_file_names_the_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_truth(paths.DEMO_TRUTH) is None
    with pytest.raises(UserError, match="select@Emo-slda"):
        build_report(["Emo"], ["slda"], None)
    write_csv(pd.DataFrame({"Feature": ["BA1"]}), paths.features_file("Emo", "slda"))
    with pytest.raises(UserError, match="common@Emo"):
        build_report(["Emo"], ["slda"], None)
