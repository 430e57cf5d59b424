"""Per-BA association (the marginal question), the BA profile, the report lines and the stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from smp_balr.core.errors import UserError
from smp_balr.core.outputs import write_csv
from smp_balr.core.settings import DemoSettings
from smp_balr.data.demo import _plan, generate
from smp_balr.selection.association import (
    COLUMNS,
    _codes,
    _within,
    associate,
    association_lines,
    ba_profile,
    effect_matrix,
    profile_summary,
)

from conftest import ROOT, SMALL_DEMO, run_cmd

REQUIRED = [
    "BA",
    "class",
    "freq_class",
    "freq_rest",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "p_adjusted",
    "associated",
]


def _within_corpus(seed: int = 0, n_spk: int = 20, per: int = 30):
    """Speakers with skewed class mixes: BA0 flips with the class inside every speaker, BA1 marks
    the speakers who hold mostly class W (it differs between speakers, never within),
    BA2 is noise."""
    rng = np.random.default_rng(seed)
    spk = np.repeat(np.arange(n_spk), per)
    share_w = np.where(np.arange(n_spk) < n_spk // 2, 0.8, 0.2)  # half the speakers mostly W
    y = np.where(rng.random(spk.size) < share_w[spk], "W", "N")
    flip = np.where(y == "W", rng.random(spk.size) < 0.85, rng.random(spk.size) < 0.15)
    marker = (share_w[spk] > 0.5) & (rng.random(spk.size) < 0.9)
    noise = rng.random(spk.size) < 0.4
    X = np.column_stack([flip, marker, noise]).astype(np.int8)
    return X, y, spk


def test_a_ba_that_flips_with_the_class_within_every_speaker_is_associated():
    X, y, spk = _within_corpus()
    res = associate(X, y, spk, names=["BA0", "BA1", "BA2"], permutations=199, bootstrap=199, seed=1)
    assert res.info["unit"] == "within_speaker"
    w = res.table[res.table["class"] == "W"].set_index("BA")
    assert w.loc["BA0", "associated"] and w.loc["BA0", "p_adjusted"] <= 0.01
    assert (
        w.loc["BA0", "effect"] > 0.5
        and w.loc["BA0", "ci_low"] > 0.5
        and w.loc["BA0", "ci_high"] <= 1.0
    )
    assert w.loc["BA0", "same_sign"] == 1.0
    assert (
        w.loc["BA0", "freq_class_low"]
        <= w.loc["BA0", "freq_class"]
        <= w.loc["BA0", "freq_class_high"]
    )
    # the two classes mirror each other: same test, opposite difference
    n = res.table[res.table["class"] == "N"].set_index("BA")
    assert n.loc["BA0", "effect"] == pytest.approx(-w.loc["BA0", "effect"])
    assert (
        n.loc["BA0", "p_adjusted"] == w.loc["BA0", "p_adjusted"] and n.loc["BA0", "versus"] == "W"
    )


def test_a_ba_that_only_marks_speakers_is_not_associated_with_a_within_speaker_label():
    X, y, spk = _within_corpus()
    res = associate(X, y, spk, names=["BA0", "BA1", "BA2"], permutations=199, bootstrap=99, seed=1)
    w = res.table[res.table["class"] == "W"].set_index("BA")
    # pooled over utterances the marker is far more frequent in W ...
    assert w.loc["BA1", "freq_class"] - w.loc["BA1", "freq_rest"] > 0.3
    # ... but not within any speaker: not associated, and its within-speaker difference is about 0
    assert not w.loc["BA1", "associated"] and abs(w.loc["BA1", "effect"]) < 0.1
    assert not w.loc["BA2", "associated"]
    # the utterance unit (speakers ignored) is fooled by it:
    # the confound the stratified test removes
    naive = associate(
        X,
        y,
        spk,
        names=["BA0", "BA1", "BA2"],
        unit="utterance",
        permutations=199,
        bootstrap=0,
        seed=1,
    )
    assert naive.table.set_index(["BA", "class"]).loc[("BA1", "W"), "associated"]


def test_a_speaker_level_label_with_a_ba_frequent_in_one_class_speakers():
    rng = np.random.default_rng(3)
    n_spk, per = 40, 25
    spk = np.repeat(np.arange(n_spk), per)
    cls = np.where(np.arange(n_spk) % 2 == 0, "F", "M")
    y = cls[spk]
    rate = np.where(cls == "F", 0.7, 0.2)[spk]  # BA0 frequent in F speakers' utterances
    X = np.column_stack([rng.random(spk.size) < rate, rng.random(spk.size) < 0.5]).astype(np.int8)
    res = associate(X, y, spk, names=["BA0", "BA1"], permutations=199, bootstrap=199, seed=2)
    assert res.info["unit"] == "speaker" and res.info["permutation_scheme"] == "over speakers"
    f = res.table[res.table["class"] == "F"].set_index("BA")
    assert f.loc["BA0", "associated"] and not f.loc["BA1", "associated"]
    assert f.loc["BA0", "ci_low"] > 0.3 and f.loc["BA0", "freq_class"] == pytest.approx(
        0.7, abs=0.05
    )
    assert np.isnan(f.loc["BA0", "same_sign"])  # one class per speaker: no own difference


def test_more_than_two_classes_one_vs_rest_and_an_exact_permutation_null():
    rng = np.random.default_rng(5)
    spk = np.repeat(np.arange(30), 30)
    y = rng.choice(list("ABC"), spk.size, p=[0.2, 0.3, 0.5])
    X = (rng.random((spk.size, 6)) < 0.3).astype(np.int8)
    X[:, 0] = np.where(
        y == "C", rng.random(spk.size) < 0.6, rng.random(spk.size) < 0.2
    )  # marks the last class
    res = associate(X, y, spk, permutations=199, bootstrap=0, seed=1)
    t = res.table.set_index(["BA", "class"])
    assert set(res.table["class"]) == {"A", "B", "C"} and set(res.table["versus"]) == {"rest"}
    assert t.loc[("BA0", "C"), "associated"] and t.loc[("BA0", "C"), "effect"] > 0.3
    assert not t.drop(index="BA0", level="BA")["associated"].any()
    # the null statistic has variance 1 exactly (CMH variance), also for the last class,
    # whose permuted sums are the total less the other classes'
    codes, _ = _codes(y)
    s, _ = _codes(spk, sort=False)
    out = _within(
        X.astype(np.float32), codes, 3, 3, s, 30, s, 1500, 0, True, np.random.default_rng(0)
    )
    mean_sq = (out["null"] ** 2).mean(axis=0).reshape(3, -1)
    assert np.allclose(mean_sq, 1.0, atol=0.12)


def test_fdr_bh_and_bad_settings():
    X, y, spk = _within_corpus(seed=4)
    res = associate(X, y, spk, correction="fdr_bh", bootstrap=0)
    assert (
        res.info["permutations"] == 0
        and res.table.set_index(["BA", "class"]).loc[("BA0", "W"), "associated"]
    )
    with pytest.raises(UserError, match="association.correction is 'holm'"):
        associate(X, y, spk, correction="holm")
    with pytest.raises(UserError, match="association.permutations \\(9\\) is too few"):
        associate(X, y, spk, permutations=9)
    with pytest.raises(UserError, match="at least 2 classes"):
        associate(X, np.full(len(y), "W"), spk)


def test_within_speaker_unit_refuses_a_speaker_level_label_and_settings_are_checked():
    spk = np.repeat(np.arange(6), 5)
    y = np.where(spk % 2 == 0, "F", "M")
    X = (np.arange(30)[:, None] % 3 == 0).astype(np.int8)
    with pytest.raises(UserError, match="does not vary within any speaker"):
        associate(X, y, spk, unit="within_speaker")
    from smp_balr.core.settings import settings_from_params

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["association"]["correction"] = "holm"
    with pytest.raises(UserError, match="association.correction must be one of maxt, fdr_bh"):
        settings_from_params(params)
    params["association"].update({"correction": "maxt", "permutations": 10})
    with pytest.raises(
        UserError,
        match="association.permutations \\(10\\) is too few for alpha 0.05; use at least 19",
    ):
        settings_from_params(params)


def test_the_csv_has_the_contract_columns(tmp_path):
    X, y, spk = _within_corpus()
    res = associate(X, y, spk, permutations=99, bootstrap=49)
    write_csv(res.table, tmp_path / "a.csv")
    back = pd.read_csv(tmp_path / "a.csv")
    assert list(back.columns) == COLUMNS and list(back.columns[:10]) == REQUIRED
    assert len(back) == 2 * 3 and back["associated"].dtype == bool


def test_association_lines_with_and_without_associated_bas():
    X, y, spk = _within_corpus()
    table = associate(
        X, y, spk, names=["BA0", "BA1", "BA2"], permutations=199, bootstrap=199, seed=1
    ).table
    lines = association_lines(table)
    assert len(lines) == 1 and lines[0].startswith("BA0: W 0.8") and " vs N 0.1" in lines[0]
    assert "\u2013" in lines[0] and "same sign in 100% of speakers" in lines[0]
    none = association_lines(table[table["BA"] != "BA0"])
    assert len(none) == 1 and "within speakers" in none[0] and "maxt" in none[0]
    assert "none of the 2 BAs" in none[0] and "adjusted p" in none[0]
    # many associated: strongest first, and the rest counted
    many = table.assign(associated=True)
    out = association_lines(many, top=1)
    assert out[0].startswith("BA0") and out[1].startswith("... and")


def test_effect_matrix_across_labels():
    X, y, spk = _within_corpus()
    style = associate(
        X, y, spk, names=["BA0", "BA1", "BA2"], permutations=99, bootstrap=0, seed=1
    ).table
    y3 = np.random.default_rng(7).choice(list("ABC"), len(y))  # no signal
    other = associate(
        X, y3, spk, names=["BA0", "BA1", "BA2"], permutations=199, bootstrap=0, seed=1
    ).table
    assert not other["associated"].any()
    m = effect_matrix({"Style": style, "Other": other})
    assert list(m.columns) == ["Style: W", "Other: A", "Other: B", "Other: C"] and list(
        m.index
    ) == ["BA0"]
    assert (
        m.loc["BA0", "Style: W"] > 0.5 and m.filter(like="Other").isna().all().all()
    )  # a label with none: empty
    full = effect_matrix({"Style": style, "Other": other}, associated_only=False)
    assert list(full.columns) == [
        "Style: W",
        "Other: A",
        "Other: B",
        "Other: C",
    ] and full.shape == (3, 4)


def test_ba_profile_typicality_dropout_dead():
    spk = np.array(["a"] * 4 + ["b"] * 4)
    X = np.array(
        [
            [1, 0, 1, 1],
            [1, 0, 1, 0],
            [0, 0, 1, 0],
            [0, 0, 1, 0],
            [0, 0, 1, 1],
            [0, 0, 1, 1],
            [0, 0, 1, 1],
            [0, 0, 1, 1],
        ],
        dtype=np.int8,
    )
    prof = ba_profile(X, spk).set_index("BA")
    assert prof.loc["BA0", "typicality"] == 0.5 and prof.loc["BA0", "dropout"] == 0.5
    assert prof.loc["BA1", "dead"] and np.isnan(prof.loc["BA1", "dropout"])
    assert prof.loc["BA2", "constant"] and prof.loc["BA2", "dropout"] == 0.0
    assert prof.loc["BA3", "typicality"] == 1.0 and prof.loc["BA3", "dropout"] == pytest.approx(
        (0.75 + 0.0) / 2
    )
    # a stricter "has it": active in more than half of the speaker's utterances
    strict = ba_profile(X, spk, has_share=0.5).set_index("BA")
    assert strict.loc["BA0", "typicality"] == 0.0 and strict.loc["BA3", "typicality"] == 0.5
    summary = profile_summary(ba_profile(X, spk))
    assert summary["n_dead"] == 1 and summary["n_always_active"] == 1 and summary["n_live"] == 2
    assert summary["typicality"]["q50"] == 0.75


def _correlated_settings(**corr):
    return DemoSettings(
        n_speakers=48,
        n_test_speakers=8,
        utterances_per_speaker=40,
        n_ba=64,
        planted={"Language": 3, "Modality": 3, "EmoClass": 6},
        n_constant=4,
        correlated={"n_ba": 96, **corr},
    )


def test_correlated_block_carries_whisper_and_gender_by_factors():
    s = _correlated_settings()
    c = generate(s)
    assert c.ba.shape == (48 * 40, 64 + 96)
    assert {"Whisper", "Gender"} <= set(c.labels.columns)
    assert (c.labels.groupby("Speaker")["Gender"].nunique() == 1).all()
    assert (c.labels.groupby("Speaker")["Whisper"].nunique() == 2).mean() > 0.9
    assert len(c.truth["Whisper"]) == 16 and not set(c.truth["Whisper"]) & set(c.truth["Gender"])
    block = c.ba[:, 64:].astype(float)
    r = np.corrcoef(block.T)[np.triu_indices(96, 1)]
    assert np.nanmean(np.abs(r)) > 0.08  # correlated through the shared factors
    # bits do not depend on the block size
    plan = _plan(s)
    whole = np.concatenate([b for _, b in plan.blocks(48)])
    assert np.array_equal(np.concatenate([b for _, b in plan.blocks(5)]), whole)
    # the association analysis finds the carriers of both labels (40 training speakers)
    tr = (c.labels["Group"] == "Train").to_numpy()
    lab = c.labels[tr]
    for label in ("Whisper", "Gender"):
        res = associate(
            c.ba[tr],
            lab[label].to_numpy(),
            lab["Speaker"].to_numpy(),
            permutations=199,
            bootstrap=0,
            seed=1,
        )
        found = set(res.table.loc[res.table["associated"], "BA"])
        truth = set(c.truth[label])
        assert len(found & truth) >= 0.8 * len(truth) and len(found - truth) <= 1, label


def test_correlated_block_off_by_default_and_checked():
    a = generate(
        DemoSettings(
            n_speakers=12,
            n_test_speakers=4,
            utterances_per_speaker=20,
            n_ba=64,
            planted={"Language": 3, "Modality": 3, "EmoClass": 6},
            n_constant=4,
        )
    )
    assert (
        "Whisper" not in a.labels.columns
        and "correlated" not in a.truth["settings"]
        and a.ba.shape[1] == 64
    )
    with pytest.raises(UserError, match="unknown demo.correlated key"):
        DemoSettings.from_params({"demo": {"correlated": {"nba": 3}}})
    with pytest.raises(UserError, match="carriers <= n_ba / 2"):
        DemoSettings.from_params({"demo": {"correlated": {"n_ba": 10, "carriers": 8}}})


def _stage_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_stages_write_their_outputs(tmp_path):
    """stages.associate and stages.ba_profile on a hand-made table, in a folder of their own."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["name"] = "t"
    params["association"].update({"permutations": 99, "bootstrap": 49})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    X, y, spk = _within_corpus()
    df = pd.DataFrame(
        {
            "FileName": [f"u{i}.wav" for i in range(len(y))],
            "Speaker": [f"s{k}" for k in spk],
            "Group": "Train",
            "Style": y,
            **{f"BA{j}": X[:, j] for j in range(3)},
        }
    )
    (tmp_path / "data").mkdir()
    df.to_csv(tmp_path / "data" / "t_train_data.csv", index=False)
    for args in (["stages.associate", "Style"], ["stages.ba_profile"]):
        proc = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=tmp_path,
            env=_stage_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(tmp_path / "metrics" / "bas" / "Style_association.csv")
    assert list(table.columns[:10]) == REQUIRED
    info = json.loads((tmp_path / "metrics" / "bas" / "Style_association.json").read_text())
    assert (
        info["label"] == "Style"
        and info["n_associated_bas"] == 1
        and info["unit"] == "within_speaker"
    )
    prof = json.loads((tmp_path / "metrics" / "bas" / "profile.json").read_text())
    assert prof["n_ba"] == 3 and prof["n_speakers"] == 20
    bad = subprocess.run(
        [sys.executable, "-m", "stages.associate", "Nope"],
        cwd=tmp_path,
        env=_stage_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        bad.returncode == 2
        and "error [associate]: label 'Nope'" in bad.stderr
        and "Traceback" not in bad.stderr
    )


@pytest.mark.integration
def test_associate_and_profile_through_dvc_repro(project_copy):
    proj = project_copy(
        {
            **SMALL_DEMO,
            "labels": ["EmoClass", "Modality"],
            "label": "EmoClass",
            "association": {"permutations": 99, "bootstrap": 49},
        }
    )
    out = run_cmd(
        ["dvc", "repro", "associate@EmoClass", "associate@Modality", "profile"], proj, timeout=600
    )
    for stage in ("associate@EmoClass", "associate@Modality", "profile"):
        assert f"Running stage '{stage}'" in out.stdout
    info = json.loads((proj / "metrics" / "bas" / "Modality_association.json").read_text())
    truth = json.loads((proj / "data" / "demo" / "truth.json").read_text())["Modality"]
    table = pd.read_csv(proj / "metrics" / "bas" / "Modality_association.csv")
    found = set(table.loc[table["associated"], "BA"])
    assert (
        info["unit"] == "within_speaker"
        and len(found & set(truth)) >= 1
        and len(found - set(truth)) <= 1
    )
    again = run_cmd(["dvc", "repro", "associate@EmoClass", "profile"], proj, timeout=600)
    assert "Running stage" not in again.stdout


def test_correlated_corpus_is_written_and_formatted_like_the_demo(tmp_path):
    from smp_balr.data.demo import write_demo
    from smp_balr.data.formatting import format_corpus

    s = DemoSettings(
        n_speakers=10,
        n_test_speakers=4,
        utterances_per_speaker=12,
        n_ba=32,
        planted={"Language": 2, "Modality": 2, "EmoClass": 4},
        n_constant=2,
        correlated={"n_ba": 24, "carriers": 4, "rank": 4},
    )
    corpus = generate(s)
    labels = write_demo(
        s, tmp_path / "ba", tmp_path / "labels.csv", tmp_path / "truth.json", progress=False
    )
    assert {"Whisper", "Gender"} <= set(labels.columns)
    tables, report = format_corpus(
        tmp_path / "labels.csv", tmp_path / "ba", split=True, progress=False
    )
    both = pd.concat([tables["train"].to_frame(), tables["test"].to_frame()]).sort_values(
        "FileName"
    )
    assert (
        np.array_equal(both.filter(regex=r"^BA\d+$").to_numpy(), corpus.ba)
        and corpus.ba.shape[1] == 56
    )
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert (
        truth["Gender"] == corpus.truth["Gender"]
        and truth["settings"]["label_level"]["Gender"] == "speaker"
    )
