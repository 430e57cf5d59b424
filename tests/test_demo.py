"""The demo corpus: determinism, realistic structure, detectable planted truth,
balr file formats."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from smp_balr.core.errors import UserError
from smp_balr.core.settings import DemoSettings
from smp_balr.data.demo import _plan, generate, load_truth, planted_truth, write_corpus, write_demo
from smp_balr.data.formatting import format_corpus


@pytest.fixture(scope="module")
def corpus():
    """The default-size corpus (generation only, no files: about a second)."""
    return generate(DemoSettings())


def _anova_p(x: np.ndarray, y: np.ndarray, dof_lost: int = 0) -> np.ndarray:
    """One-way ANOVA p-value per column of ``x`` against classes ``y``."""
    classes = np.unique(y)
    n, k = len(y), len(classes)
    grand = x.mean(axis=0)
    between = sum((y == c).sum() * (x[y == c].mean(axis=0) - grand) ** 2 for c in classes)
    within = sum(((x[y == c] - x[y == c].mean(axis=0)) ** 2).sum(axis=0) for c in classes)
    df2 = n - k - dof_lost
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (between / (k - 1)) / (within / df2)
    p = stats.f.sf(f, k - 1, df2)
    return np.where(np.isfinite(p), p, 1.0)


def _centre_by(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = x.astype(np.float64).copy()
    for g in np.unique(groups):
        m = groups == g
        out[m] -= out[m].mean(axis=0)
    return out


def test_deterministic_and_seeded() -> None:
    small = dict(
        n_speakers=12,
        n_test_speakers=4,
        utterances_per_speaker=20,
        n_ba=128,
        planted={"Language": 4, "Modality": 4, "EmoClass": 8},
        n_constant=4,
    )
    a, b = generate(DemoSettings(**small)), generate(DemoSettings(**small))
    c = generate(DemoSettings(seed=7, **small))
    assert a.labels.equals(b.labels) and np.array_equal(a.ba, b.ba) and a.truth == b.truth
    assert not np.array_equal(a.ba, c.ba)


def test_structure(corpus) -> None:
    lab, ba, truth = corpus.labels, corpus.ba, corpus.truth
    s = DemoSettings()
    assert ba.shape == (s.n_speakers * s.utterances_per_speaker, s.n_ba) and ba.dtype == np.int8
    assert list(lab.columns) == [
        "FileName",
        "Speaker",
        "Group",
        "Language",
        "Modality",
        "EmoClass",
        "Noise",
    ]
    assert lab["FileName"].is_unique and lab["FileName"].tolist() == sorted(lab["FileName"])
    assert lab["FileName"].str.contains("/").any() and (~lab["FileName"].str.contains("/")).any()
    # speaker-disjoint groups, every Language in both
    spk_group = lab.groupby("Speaker")["Group"].nunique()
    assert (spk_group == 1).all()
    assert lab.loc[lab.Group == "Test", "Speaker"].nunique() == s.n_test_speakers
    for g in ("Train", "Test"):
        assert lab.loc[lab.Group == g, "Language"].nunique() == 4
    # Language is speaker-level and unbalanced
    assert (lab.groupby("Speaker")["Language"].nunique() == 1).all()
    shares = lab["Language"].value_counts(normalize=True)
    assert shares.max() > 2.5 * shares.min()
    # EmoClass: 4 main classes plus rare X/U; some speakers lack a main class or never sing
    emo = lab["EmoClass"].value_counts(normalize=True)
    assert set(emo.index) == {"A", "H", "N", "S", "X", "U"} and emo["X"] < 0.06 and emo["U"] < 0.08
    main = lab[lab.EmoClass.isin(["A", "H", "N", "S"])]
    n_main = main.groupby("Speaker")["EmoClass"].nunique()
    assert (n_main < 4).sum() >= 5 and (n_main == 4).sum() >= 20
    sings = lab.groupby("Speaker")["Modality"].nunique()
    assert (sings == 1).sum() >= 5 and (sings == 2).sum() >= 20
    # activation rates widely varied, constant BAs constant, planted sets disjoint
    rate = ba.mean(axis=0)
    assert (rate < 0.05).sum() >= 20 and (rate > 0.95).sum() >= 20
    const = [int(b[2:]) for b in truth["settings"]["constant"]]
    assert len(const) == s.n_constant and all(ba[:, j].min() == ba[:, j].max() for j in const)
    sets = [set(truth[k]) for k in ("Language", "Modality", "EmoClass")]
    assert [len(x) for x in sets] == [10, 12, 20]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def test_speaker_discriminative(corpus) -> None:
    lab, ba = corpus.labels, corpus.ba
    p = _anova_p(ba, lab["Speaker"].to_numpy())
    varying = ba.std(axis=0) > 0
    assert (p[varying] < 1e-6).mean() > 0.8  # most BAs differ between speakers


@pytest.mark.parametrize("label", ["EmoClass", "Modality"])
def test_planted_found_within_speaker_not_across(corpus, label: str) -> None:
    """Within-speaker tests with Bonferroni find the planted BAs;
    across utterances the speaker confound adds many."""
    lab, ba = corpus.labels, corpus.ba
    keep = (lab.Group == "Train").to_numpy() & lab[label].isin(
        ["A", "H", "N", "S", "Speech", "Sing"]
    ).to_numpy()
    y = lab.loc[keep, label].to_numpy()
    spk = lab.loc[keep, "Speaker"].to_numpy()
    planted = {int(b[2:]) for b in corpus.truth[label]}
    alpha = 0.05 / ba.shape[1]
    within = _anova_p(_centre_by(ba[keep], spk), y, dof_lost=len(np.unique(spk)))
    found = set(np.flatnonzero(within < alpha).tolist())
    assert planted <= found
    assert len(found - planted) <= 1
    across = _anova_p(ba[keep].astype(np.float64), y)
    false_across = set(np.flatnonzero(across < alpha).tolist()) - planted
    assert len(false_across) >= 10  # the speaker confound is real


def test_language_detectable_at_speaker_level(corpus) -> None:
    lab, ba = corpus.labels, corpus.ba
    train = (lab.Group == "Train").to_numpy()
    df = pd.DataFrame(ba[train]).assign(Speaker=lab.loc[train, "Speaker"].to_numpy())
    means = df.groupby("Speaker").mean()
    lang = lab[train].groupby("Speaker")["Language"].first().loc[means.index].to_numpy()
    p = _anova_p(means.to_numpy(), lang)
    found = set(np.flatnonzero(p < 0.05 / ba.shape[1]).tolist())
    planted = {int(b[2:]) for b in corpus.truth["Language"]}
    assert len(found & planted) >= 0.8 * len(planted)
    assert len(found - planted) <= 1


def test_written_files_read_back(tmp_path: Path) -> None:
    settings = DemoSettings(
        n_speakers=10,
        n_test_speakers=4,
        utterances_per_speaker=30,
        n_ba=64,
        planted={"Language": 3, "Modality": 3, "EmoClass": 6},
        n_constant=4,
    )
    corpus = generate(settings)
    ba_dir, labels, truth = tmp_path / "ba", tmp_path / "labels.csv", tmp_path / "truth.json"
    write_corpus(corpus, ba_dir, labels, truth, seed=settings.seed)
    files = sorted(p for p in ba_dir.rglob("*_ba.*"))
    assert len(files) == 300
    assert {p.suffix for p in files} == {".txt", ".pkl"}
    shapes = set()
    for p in files:
        if p.suffix == ".pkl":
            shapes.add(pickle.loads(p.read_bytes()).shape)
        else:
            shapes.add(len(p.read_text().splitlines()[0].split()))
    assert (64,) in shapes and (64, 2) in shapes and 1 in shapes and 2 in shapes
    assert any("e+00" in p.read_text() for p in files if p.suffix == ".txt")
    tables, report = format_corpus(labels, ba_dir, split=True, progress=False)
    assert report.n_matched == 300 and not report.vectors_without_labels
    both = pd.concat([tables["train"].to_frame(), tables["test"].to_frame()]).sort_values(
        "FileName"
    )
    assert np.array_equal(both.filter(regex=r"^BA\d+$").to_numpy(), corpus.ba)
    assert json.loads(truth.read_text())["EmoClass"] == corpus.truth["EmoClass"]
    assert load_truth(truth) == {k: corpus.truth[k] for k in ("Language", "Modality", "EmoClass")}
    assert load_truth(tmp_path / "none.json") is None
    # a second write replaces the folder completely (no stale files)
    (ba_dir / "stale_ba.txt").write_text("1\n")
    write_corpus(corpus, ba_dir, labels, truth, seed=settings.seed)
    assert not (ba_dir / "stale_ba.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("demo", "fragment"),
    [
        ({"n_speakers": 5}, "n_speakers"),
        ({"n_test_speakers": 58}, "n_test_speakers"),
        ({"colour": 1}, "unknown demo key"),
        ({"planted": {"Mood": 3}}, "unknown label"),
        ({"n_ba": 40}, "n_ba"),
    ],
)
def test_settings_errors(demo: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        DemoSettings.from_params({"seed": 1, "demo": demo})


def test_planted_truth_only_for_the_demo_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    truth = tmp_path / "data" / "demo" / "truth.json"
    truth.parent.mkdir(parents=True)
    truth.write_text('{"EmoClass": ["BA1", "BA3"], "settings": {"seed": 1}}')
    demo = ("data/demo/labels.csv", "data/demo/ba/")
    assert planted_truth(*demo) == {"EmoClass": ["BA1", "BA3"]}
    assert planted_truth("/corpora/mine/labels.csv", "data/demo/ba") is None
    truth.write_text("{not json")
    with pytest.raises(UserError, match="truth file .* is not valid JSON"):
        planted_truth(*demo)


def test_noise_label_has_no_signal_and_leaves_the_rest_unchanged(corpus) -> None:
    lab, ba = corpus.labels, corpus.ba
    assert set(lab["Noise"]) == {"Heads", "Tails"}
    assert (lab.groupby("Speaker")["Noise"].nunique() == 2).all()  # varies within every speaker
    heads = (lab["Noise"] == "Heads").to_numpy()
    assert 0.45 < heads.mean() < 0.55
    # no BA differs between the two coin sides beyond sampling noise (|z| < 5 on every BA)
    p1, p0 = ba[heads].mean(axis=0), ba[~heads].mean(axis=0)
    pooled = ba.mean(axis=0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / heads.sum() + 1 / (~heads).sum()))
    z = np.divide(p1 - p0, se, out=np.zeros_like(se), where=se > 0)
    assert np.abs(z).max() < 5
    assert corpus.truth["settings"]["no_signal_labels"] == ["Noise"]


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_streamed_writer_matches_the_in_memory_corpus(tmp_path: Path) -> None:
    """write_demo (block by block, no full matrix) writes byte for byte what write_corpus writes."""
    settings = DemoSettings(
        seed=5,
        n_speakers=12,
        n_test_speakers=4,
        utterances_per_speaker=25,
        n_ba=64,
        planted={"Language": 3, "Modality": 3, "EmoClass": 6},
        n_constant=4,
    )
    corpus = generate(settings)
    a, b = tmp_path / "a", tmp_path / "b"
    write_corpus(corpus, a / "ba", a / "labels.csv", a / "truth.json", seed=settings.seed)
    labels = write_demo(settings, b / "ba", b / "labels.csv", b / "truth.json", progress=False)
    assert len(labels) == 300
    assert _tree_bytes(a) == _tree_bytes(b)


def test_bits_do_not_depend_on_the_block_size() -> None:
    """Speaker blocks of any size draw the same bits as one draw of the whole matrix."""
    settings = DemoSettings(
        seed=9,
        n_speakers=10,
        n_test_speakers=4,
        utterances_per_speaker=20,
        n_ba=64,
        planted={"Language": 3, "Modality": 3, "EmoClass": 6},
        n_constant=4,
    )
    plan = _plan(settings)
    whole = np.concatenate([b for _, b in plan.blocks(settings.n_speakers)])
    for size in (1, 3):
        assert np.array_equal(np.concatenate([b for _, b in plan.blocks(size)]), whole)
    # and as the original single draw: every uniform after the label draws, in row order
    rng = np.random.default_rng(settings.seed)
    rng.bit_generator.state = plan.bits_state
    u = rng.random(whole.shape)
    rows = np.arange(whole.shape[0])
    spk = rows // settings.utterances_per_speaker
    logit = (
        plan.base
        + plan.profile[spk]
        + plan.lang_shift[plan.lang_of[spk]]
        + plan.mod_shift[plan.mod]
        + plan.emo_shift[plan.emo]
    )
    expect = (u < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    expect[:, plan.constant] = plan.constant_value
    assert np.array_equal(whole, expect)
    assert generate(settings).ba.shape == (200, 64)
