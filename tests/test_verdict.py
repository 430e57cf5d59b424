"""The table verdict on hand-made p-values: Holm across labels,
independent of the configurations."""

from __future__ import annotations

import doctest
import math

import pytest

from smp_balr.core.errors import UserError
from smp_balr.core.multitest import check_permutations, required_permutations
from smp_balr.evaluation import verdict as verdict_module
from smp_balr.evaluation.verdict import (
    NO_RESULT,
    NOT_SHOWN,
    PRESENT,
    rule_sentence,
    table_verdicts,
)
from smp_balr.study.grid import choose as choose_configuration

CHANCE = {"Gender": 0.5, "Language": 0.2, "EmoClass": 0.25, "Noise": 0.5}
LOW = {"Gender": 0.9, "Language": 0.3, "EmoClass": 0.3, "Noise": 0.45}


def test_holm_across_the_labels_of_the_table():
    # ascending 0.001, 0.012, 0.02, 0.3 against 0.05/4, 0.05/3, 0.05/2, 0.05:
    # 0.001 <= 0.0125, 0.012 <= 0.0167, 0.02 <= 0.025, 0.3 > 0.05
    p = {"Gender": 0.001, "Language": 0.02, "EmoClass": 0.012, "Noise": 0.3}
    out = table_verdicts(p, LOW, CHANCE, alpha=0.05)
    assert [v["verdict"] for v in out.values()] == [PRESENT, PRESENT, PRESENT, NOT_SHOWN]
    assert out["Gender"]["p_adjusted"] == pytest.approx(0.004)
    assert out["EmoClass"]["p_adjusted"] == pytest.approx(0.036)
    assert out["Language"]["p_adjusted"] == pytest.approx(0.04)
    assert out["Noise"]["p_adjusted"] == pytest.approx(0.3)
    assert out["Gender"]["p_value"] == 0.001
    # Language at 0.03: 0.03 > 0.025 stops Holm there (adjusted 0.06) although 0.03 < 0.05
    p["Language"] = 0.03
    out = table_verdicts(p, LOW, CHANCE, alpha=0.05)
    assert out["Language"]["verdict"] == NOT_SHOWN and out["Language"][
        "p_adjusted"
    ] == pytest.approx(0.06)
    assert out["EmoClass"]["verdict"] == PRESENT


def test_interval_must_lie_above_chance():
    p = {"Gender": 0.001, "Noise": 0.001}
    out = table_verdicts(p, {"Gender": 0.9, "Noise": 0.5}, CHANCE, alpha=0.05)
    assert out["Gender"]["verdict"] == PRESENT
    assert (
        out["Noise"]["verdict"] == NOT_SHOWN and not out["Noise"]["above_chance"]
    )  # 0.5 is not above 0.5


def test_no_result_counts_in_the_family():
    out = table_verdicts({"Gender": 0.02, "Noise": math.nan}, LOW, CHANCE, alpha=0.05)
    assert out["Noise"]["verdict"] == NO_RESULT and out["Noise"]["p_adjusted"] == 1.0
    assert (
        out["Gender"]["p_adjusted"] == pytest.approx(0.04) and out["Gender"]["verdict"] == PRESENT
    )
    out = table_verdicts({"Gender": 0.03, "Noise": None}, LOW, CHANCE, alpha=0.05)
    assert out["Gender"]["verdict"] == NOT_SHOWN  # 0.03 > 0.05 / 2


def test_fdr_bh_claims_more_than_holm():
    p = {"Gender": 0.03, "Language": 0.035, "EmoClass": 0.04, "Noise": 0.045}
    holm = table_verdicts(p, LOW, CHANCE, 0.05, "holm")
    bh = table_verdicts(p, {**LOW, "Noise": 0.6}, CHANCE, 0.05, "fdr_bh")
    assert all(v["verdict"] == NOT_SHOWN for v in holm.values())
    assert all(v["verdict"] == PRESENT for v in bh.values())  # BH: 0.045 <= 4 x 0.05 / 4
    assert bh["Gender"]["p_adjusted"] == pytest.approx(0.045)


def test_verdict_does_not_change_when_configurations_are_added():
    # per label: configuration -> (training-side scores, test p-value); the chosen one is
    # the best on training scores, and only its own p-value enters the verdict
    grid = {
        "Gender": {"all/logreg": ([0.91, 0.92], 0.000999), "slda/dt": ([0.80], 0.000999)},
        "Language": {"all/logreg": ([0.31], 0.4), "bayes/mlp": ([0.35], 0.004)},
        "Noise": {"all/logreg": ([0.52], 0.6), "slda/dt": ([0.50], 0.01)},
    }
    low = {"Gender": 0.88, "Language": 0.24, "Noise": 0.47}
    chance = {"Gender": 0.5, "Language": 0.2, "Noise": 0.5}

    def verdicts(g):
        chosen = {
            lab: choose_configuration({c: s for c, (s, _) in cfg.items()}) for lab, cfg in g.items()
        }
        p = {lab: g[lab][chosen[lab]][1] for lab in g}
        return {
            lab: (v["verdict"], v["p_adjusted"])
            for lab, v in table_verdicts(p, low, chance, 0.01).items()
        }

    before = verdicts(grid)
    assert (
        before["Gender"][0] == PRESENT
        and before["Language"][0] == PRESENT
        and before["Noise"][0] == NOT_SHOWN
    )
    # 45 more configurations per label, all worse on the training side, with any test p-values:
    # the old Holm over 48 configurations would give Gender 48 x 0.000999 = 0.048 > 0.01
    bigger = {lab: dict(cfg) for lab, cfg in grid.items()}
    for lab in bigger:
        for j in range(45):
            bigger[lab][f"extra{j}"] = ([0.1], 1.0 if j % 2 else 0.000999)
    assert verdicts(bigger) == before


def test_required_permutations_and_check():
    for alpha in (0.1, 0.05, 0.01, 0.001):
        for k in range(1, 12):
            b = required_permutations(alpha, k)
            assert 1 / (b + 1) <= alpha / (10 * k) * (1 + 1e-12)
            assert 1 / b > alpha / (10 * k)  # the smallest such B
    assert required_permutations(0.05, 5) == 999 and required_permutations(0.01, 5) == 4999
    assert required_permutations(0.05, 5, margin=2) == 199
    assert check_permutations(999, 0.05, 5) == 999
    with pytest.raises(
        UserError,
        match=r"test.n_permutations is 998, too few for 5 labels at alpha 0.05.*at least 999$",
    ):
        check_permutations(998, 0.05, 5)


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="report.alpha"):
        table_verdicts({"a": 0.1}, {"a": 0.6}, {"a": 0.5}, alpha=1.5)
    with pytest.raises(UserError, match="use one of holm, fdr_bh"):
        table_verdicts({"a": 0.1}, {"a": 0.6}, {"a": 0.5}, alpha=0.05, correction="bonferroni")
    with pytest.raises(ValueError, match="no interval"):
        table_verdicts({"a": 0.1}, {}, {"a": 0.5}, alpha=0.05)


def test_rule_sentence_and_doctests():
    s = rule_sentence(0.01, 3, "fdr_bh")
    assert (
        "Benjamini-Hochberg" in s and "3 labels" in s and "at most 0.01" in s and s.count(".") >= 1
    )
    assert "\n" not in s
    assert doctest.testmod(verdict_module).failed == 0


def _bench():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location(
        "bench_verdict", ROOT / "benchmarks" / "bench_verdict.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_bench_on_a_few_tables():
    bench = _bench()
    strong = [bench.one_table(s, 3, 0.05, 0.6, 16, 12, 100) for s in range(4)]
    assert all(r["planted_present"] for r in strong) and all(
        r["n_permutations"] == 599 for r in strong
    )
    assert all(0 < r["min_null_p"] <= 1 for r in strong)
    copies = [bench.one_beyond(s, "within", 0.0, 16, 12, 200, 0.05) for s in range(4)]
    own = [bench.one_beyond(s, "within", 0.5, 16, 12, 200, 0.05) for s in range(4)]
    assert sum(r["verdict"] == "present beyond" for r in copies) <= 1
    assert all(r["verdict"] == "present beyond" for r in own)
    report = {
        "alpha": 0.05,
        "n_speakers": 16,
        "mean_rows": 12,
        "rows": bench.run(3, 3, 0.05, 16, 12, 50, 50, seed=1),
    }
    text = bench.markdown(report)
    assert (
        text.count("\n| 3 |") == 2
        and text.count("\n| 5 |") == 2
        and "20% of rows flipped | 0%" in text
    )
    assert text.count("whose mix depends on it |") == 3
    assert report["rows"]["table"][0]["any_null_present"]["nominal"] == 0.05
