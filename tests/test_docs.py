"""The README's figures are generated from docs/figures.json, never typed."""

from __future__ import annotations

import json

import pytest

from smp_balr import docs
from smp_balr.core.errors import UserError

from conftest import ROOT


def test_readme_shows_exactly_the_committed_figures():
    figures = json.loads((ROOT / docs.FIGURES).read_text())
    calibration = json.loads((ROOT / docs.CALIBRATION).read_text())
    verdict = json.loads((ROOT / docs.VERDICT_CALIBRATION).read_text())
    readme = (ROOT / docs.README).read_text()
    blocks = docs.render(figures, calibration, verdict)
    assert set(blocks) == {"demo", "presence", "calibration", "calibration_verdict"} and all(
        f"figures:{b}:begin" in readme for b in blocks
    )
    assert docs.fill(readme, blocks) == readme, "run `make figures` after `make repro`"
    assert f"**{figures['test']['balanced_accuracy']:.3f}**" in readme


def _metrics(folder):
    folder.mkdir()
    (folder / "test_details.json").write_text(json.dumps({"label": "Emo"}))
    (folder / "test.json").write_text(
        json.dumps(
            {
                "balanced_accuracy": 0.4,
                "bootstrap": {"ci_low": 0.3, "ci_high": 0.5},
                "chance": {"balanced_accuracy": 0.25},
                "permutation": {"p_value": 0.001},
                "present": True,
                "n_speakers": 9,
            }
        )
    )
    (folder / "train.json").write_text(json.dumps({"model": "logreg"}))
    (folder / "explain_details.json").write_text(
        json.dumps({"n_top10_in_truth": 7, "explainer": "linear"})
    )
    (folder / "selection.json").write_text(
        json.dumps(
            {
                "Emo": {
                    "slda": {"n_selected": 3, "n_truth": 4, "precision": 1.0, "recall": 0.75},
                    "bayes": {"n_selected": 0, "n_truth": 4, "precision": None, "recall": 0.0},
                }
            }
        )
    )
    (folder / "presence.json").write_text(
        json.dumps(
            {
                "alpha": 0.05,
                "correction": "holm",
                "n_labels": 2,
                "n_present": 1,
                "Emo": {
                    "verdict": "present",
                    "chosen": "slda / logreg / balance 0",
                    "balanced_accuracy": 0.4,
                    "ci_low": 0.3,
                    "ci_high": 0.5,
                    "chance": 0.25,
                    "p_adjusted": 0.002,
                    "ba_norm": 0.2,
                    "ba_norm_ci_low": 0.0667,
                    "ba_norm_ci_high": 0.3333,
                    "mi_bits": 0.05,
                },
                "Coin": {
                    "verdict": "not shown",
                    "chosen": "all / dt / balance 0",
                    "balanced_accuracy": 0.5,
                    "ci_low": 0.45,
                    "ci_high": 0.55,
                    "chance": 0.5,
                    "p_adjusted": 0.6,
                },
            }
        )
    )


def test_collect_and_render_from_metrics(tmp_path):
    _metrics(tmp_path / "m")
    figures = docs.collect(tmp_path / "m")
    block = docs.render(figures)["demo"]
    assert (
        "balanced accuracy **0.400** (95% speaker interval 0.300–0.500) against chance 0.250"
        in block
    )
    assert "| Emo (4) | 3 BAs, 1.00 / 0.75 | 0 BAs, – / 0.00 |" in block
    presence = docs.render(figures)["presence"]
    assert (
        "| Emo | slda / logreg / balance 0 | 0.400 [0.300–0.500] | 0.250 | "
        "0.20 [0.07–0.33] | 0.05 | 0.002 | "
        "**present** |" in presence
    )
    assert (
        "| Coin | all / dt / balance 0 | 0.500 [0.450–0.550] | 0.500 | – [–––] | – | 0.6 | "
        "**not shown** |" in presence
    )
    text = "a\n<!-- figures:demo:begin -->\nold\n<!-- figures:demo:end -->\nb\n"
    assert (
        docs.fill(text, {"demo": "new\n"})
        == "a\n<!-- figures:demo:begin -->\nnew\n<!-- figures:demo:end -->\nb\n"
    )


def test_missing_metrics_say_what_to_run(tmp_path):
    with pytest.raises(UserError, match="not found; run `make repro` first"):
        docs.collect(tmp_path)
