"""The presence report: the study's choice on the training side only, the table verdict, confounds,
BAs, documents; a tiny real study through `dvc repro`."""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smp_balr.evaluation.verdict import NOT_SHOWN, PRESENT, rule_sentence
from smp_balr.report import bas, confounds, figures
from smp_balr.report.document import PresenceReport, to_html, to_markdown, write_documents
from smp_balr.study.grid import choose, summarise

RULE = rule_sentence(0.05, 2)

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

RESULT_BASE = {
    "label": "L",
    "status": "success",
    "seed": 42,
    "chance": 0.5,
    "ci_low": 0.4,
    "ci_high": 0.8,
    "n_test_speakers": 8,
    "error": "",
    "selection_source": "speaker-grouped CV",
    "n_features": 10,
}


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{**RESULT_BASE, **r} for r in rows])


CONFIGS = [  # features, model, balance, training-side score, test BA, p
    ("all", "dt", 0, 0.61, 0.90, 0.001),  # best on test, not chosen
    ("slda", "mlp", 0, 0.72, 0.62, 0.02),  # best on the training side: chosen
    ("bayes", "dt", 2, 0.55, 0.70, 0.004),
    ("all", "mlp", 2, 0.70, 0.51, 0.40),
]


def _configs_frame() -> pd.DataFrame:
    return _frame(
        [
            {
                "features": f,
                "model": m,
                "balance": b,
                "selection_score": s,
                "balanced_accuracy": ba,
                "p_value": p,
            }
            for f, m, b, s, ba, p in CONFIGS
        ]
    )


def _chosen(frame: pd.DataFrame):
    summary = summarise(frame)
    return choose(
        {(r.features, r.model, r.balance): r.selection_scores for r in summary.itertuples()}
    )


# --------------------------------------------------------------- choice on the training side only
def test_choice_uses_training_score_not_the_best_test_config() -> None:
    frame = _configs_frame()
    best_test = tuple(
        frame.loc[frame["balanced_accuracy"].idxmax(), ["features", "model", "balance"]]
    )
    assert _chosen(frame) == ("slda", "mlp", 0) != best_test


def test_choice_is_unchanged_under_every_permutation_of_the_test_numbers() -> None:
    frame = _configs_frame()
    chosen = _chosen(frame)
    test_cols = ["balanced_accuracy", "p_value", "ci_low", "ci_high", "chance", "n_test_speakers"]
    rng = np.random.default_rng(0)
    frame["ci_low"], frame["ci_high"] = rng.uniform(0, 0.5, 4), rng.uniform(0.5, 1, 4)
    for perm in itertools.permutations(range(len(frame))):
        shuffled = frame.copy()
        shuffled[test_cols] = frame[test_cols].to_numpy()[list(perm)]
        assert _chosen(shuffled) == chosen


def test_choose_sees_only_training_scores() -> None:
    assert choose({"a": [0.6, 0.7], "b": [0.66], "c": [math.nan]}) == "b"  # means 0.65 < 0.66
    assert choose({"a": [0.5], "b": [0.5]}) == "a"  # ties: first
    assert choose({"a": [], "b": [math.nan]}) is None


def test_seeds_give_mean_spread_and_the_largest_p() -> None:
    rows = []
    for seed, (s, ba, p) in zip(
        (1, 2, 3), [(0.70, 0.60, 0.001), (0.72, 0.64, 0.03), (0.74, 0.62, 0.002)]
    ):
        rows.append(
            {
                "features": "all",
                "model": "dt",
                "balance": 0,
                "seed": seed,
                "selection_score": s,
                "balanced_accuracy": ba,
                "p_value": p,
            }
        )
    rows.append(
        {
            "features": "slda",
            "model": "dt",
            "balance": 0,
            "seed": 1,
            "selection_score": 0.5,
            "balanced_accuracy": 0.9,
            "p_value": 0.001,
        }
    )
    frame = _frame(rows)
    assert _chosen(frame) == ("all", "dt", 0)
    row = summarise(frame).iloc[0]
    assert (
        row["n_ok"] == 3
        and row["ba_mean"] == pytest.approx(0.62)
        and row["ba_sd"] == pytest.approx(0.02)
    )
    assert row["selection_mean"] == pytest.approx(0.72) and row["p_value"] == pytest.approx(0.03)


def test_failed_configuration_is_never_chosen_and_has_no_p() -> None:
    frame = _configs_frame()
    failed = _frame(
        [
            {
                "features": "common",
                "model": "dt",
                "balance": 0,
                "selection_score": math.nan,
                "balanced_accuracy": math.nan,
                "p_value": math.nan,
                "status": "failed",
                "error": "error [train]: boom",
            }
        ]
    )
    frame = pd.concat([frame, failed], ignore_index=True)
    assert _chosen(frame) == ("slda", "mlp", 0)
    assert math.isnan(summarise(frame).iloc[-1]["p_value"])


# ------------------------------------------------------------------------------------- confounds
def _labels_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_spk, per = 30, 20
    spk = np.repeat([f"s{k:02d}" for k in range(n_spk)], per)
    region = np.repeat(
        rng.choice(["north", "south", "east"], n_spk), per
    )  # constant within speakers
    emo = rng.choice(["A", "H", "N"], n_spk * per)  # varies within speakers
    return pd.DataFrame(
        {
            "Speaker": spk,
            "Region": region,
            "Accent": pd.Series(region)
            .map({"north": "n", "south": "s", "east": "e"})
            .to_numpy(),  # = Region
            "Emo": emo,
            "Coin": rng.choice(["h", "t"], n_spk * per),
        }
    )


def test_cramers_v_identical_labels_is_one_unrelated_near_zero() -> None:
    df = _labels_table()
    assert confounds.cramers_v(df["Region"], df["Accent"]) == pytest.approx(1.0)
    assert confounds.cramers_v(df["Emo"], df["Coin"]) < 0.1
    assert math.isnan(confounds.cramers_v(["a"] * 5, list("abcab")))  # one level: undefined
    with_missing = pd.Series(["a", "b", None, "a", "b", "a"])
    assert confounds.cramers_v(with_missing, with_missing) == pytest.approx(1.0)


def test_association_matrices_and_confound_warning_name_both_labels() -> None:
    df = _labels_table()
    labels = ["Region", "Accent", "Emo", "Coin"]
    utt = confounds.association_matrix(df, labels, "utterance")
    spk = confounds.association_matrix(df, labels, "speaker")
    assert utt.loc["Region", "Accent"] == pytest.approx(1.0) and spk.loc[
        "Region", "Accent"
    ] == pytest.approx(1.0)
    assert utt.loc["Emo", "Region"] < 0.2
    pairs = confounds.confound_pairs({"utterances": utt, "speakers": spk}, 0.9)
    assert [(p["a"], p["b"]) for p in pairs] == [("Region", "Accent")]
    assert confounds.confound_pairs({"utterances": utt}, 1.01) == []


def test_label_level_and_speakers_per_class() -> None:
    df = _labels_table()
    assert confounds.label_level(df, "Region") == confounds.SPEAKER_LEVEL
    assert confounds.label_level(df, "Emo") == confounds.WITHIN
    train, test = df[df["Speaker"] < "s20"], df[df["Speaker"] >= "s20"]
    counts = confounds.class_speakers(train, test, "Region").set_index("class")
    for cls in counts.index:
        assert (
            counts.loc[cls, "train_speakers"]
            == train.loc[train["Region"] == cls, "Speaker"].nunique()
        )
        assert (
            counts.loc[cls, "test_speakers"] == test.loc[test["Region"] == cls, "Speaker"].nunique()
        )
    assert (
        counts["train_speakers"].sum() == 20 and counts["test_speakers"].sum() == 10
    )  # one region per speaker
    assert counts["train_rows"].sum() == 400
    # a speaker-level class with few test speakers is flagged; rows do not count, speakers do
    few = confounds.few_speaker_classes(counts.reset_index(), minimum=5)
    assert few == [
        c
        for c in counts.index
        if counts.loc[c, "test_speakers"] < 5 or counts.loc[c, "train_speakers"] < 5
    ]
    assert few  # 10 test speakers over 3 regions: some region has fewer than 5
    emo = confounds.class_speakers(train, test, "Emo", classes=["A", "H"])
    assert emo["class"].tolist() == ["A", "H"] and confounds.few_speaker_classes(emo, 5) == []


# ------------------------------------------------------------------------------------------- BAs
def test_jaccard_agreement_and_shared_bas() -> None:
    assert bas.jaccard(["BA1", "BA2"], ["BA2", "BA3"]) == pytest.approx(1 / 3)
    assert math.isnan(bas.jaccard([], []))
    mat = bas.agreement_matrix({"slda": ["BA1", "BA2"], "bayes": ["BA2"]})
    assert mat.loc["slda", "bayes"] == pytest.approx(0.5) and mat.loc["slda", "slda"] == 1.0
    shared = bas.shared_bas(
        {
            "A": {"slda": ["BA10", "BA2"], "shap": ["BA2", "BA7"]},
            "B": {"slda": ["BA2", "BA10"], "shap": ["BA99"]},
            "C": {"bayes": ["BA7"]},
        }
    )
    assert shared.index.tolist() == [
        "BA2",
        "BA7",
        "BA10",
    ]  # numeric order, only BAs of two or more labels
    assert shared.loc["BA2"].tolist() == [2, 1, 0] and shared.loc["BA7"].tolist() == [1, 0, 1]


# ------------------------------------------------------------------------------- exp show parsing
def _exp(
    name: str,
    state: str,
    label: str,
    metrics: dict | None,
    error: dict | None = None,
    ts: str = "2026-01-01T00:00:00",
):
    params = {
        "label": label,
        "seed": 42,
        "features": {"method": "all"},
        "model": {"method": "dt"},
        "train": {"balance": 0},
    }
    return {
        "name": name,
        "executor": {"state": state, "local": {"log": f"/nonexistent/{name}.out"}},
        "revs": [
            {
                "rev": name * 2,
                "name": name,
                "error": error,
                "data": {
                    "timestamp": ts,
                    "params": {"params.yaml": {"data": params}},
                    "metrics": {k: {"data": v} for k, v in (metrics or {}).items()},
                },
            }
        ],
    }


# ------------------------------------------------------------------------------------- documents
def _hand_made_report() -> PresenceReport:
    df = _labels_table()
    labels = ["Region", "Accent", "Emo", "Coin"]
    assoc = {
        "utterances": confounds.association_matrix(df, labels, "utterance"),
        "speakers": confounds.association_matrix(df, labels, "speaker"),
    }
    presence = [
        {
            "label": "Emo",
            "level": confounds.WITHIN,
            "chance": 1 / 3,
            "chosen": ("slda", "dt", 0),
            "selection_mean": 0.61,
            "selection_sd": math.nan,
            "ba_mean": 0.58,
            "ba_sd": math.nan,
            "ci_low": 0.52,
            "ci_high": 0.64,
            "p_value": 0.001,
            "p_adjusted": 0.002,
            "n_configurations": 4,
            "verdict": PRESENT,
            "n_seeds": 1,
            "warnings": [],
        },
        {
            "label": "Coin",
            "level": confounds.WITHIN,
            "chance": 0.5,
            "chosen": ("all", "dt", 2),
            "selection_mean": 0.51,
            "selection_sd": math.nan,
            "ba_mean": 0.49,
            "ba_sd": math.nan,
            "ci_low": 0.44,
            "ci_high": 0.55,
            "p_value": 0.61,
            "p_adjusted": 0.61,
            "n_configurations": 4,
            "verdict": NOT_SHOWN,
            "n_seeds": 1,
            "warnings": ["1 of 4 runs failed (see the table of every run)"],
        },
    ]
    exps = _configs_frame()
    exps.loc[3, ["status", "error"]] = [
        "failed",
        "error [train]: features file lists no features <b>x</b>",
    ]
    cm = np.array([[30, 5, 5], [4, 20, 6], [2, 3, 25]])
    shared = bas.shared_bas(
        {"Emo": {"slda": ["BA3", "BA9"], "shap": ["BA3"]}, "Coin": {"shap": ["BA3", "BA9"]}}
    )
    rep = PresenceReport(
        generated="from corpus test",
        alpha=0.05,
        rule=RULE,
        correction="holm",
        confound_v=0.9,
        min_speakers=5,
        presence=presence,
        experiments=exps,
        association=assoc,
        confounds=confounds.confound_pairs(assoc, 0.9),
        levels={"Emo": confounds.WITHIN, "Coin": confounds.WITHIN},
        class_counts={"Emo": confounds.class_speakers(df, df, "Emo")},
        selected={"Emo": {"all": [f"BA{i}" for i in range(60)], "slda": ["BA3", "BA9"]}},
        agreement={
            "Emo": bas.agreement_matrix(
                {"all": [f"BA{i}" for i in range(60)], "slda": ["BA3", "BA9"]}
            )
        },
        shap_top={"Emo": ["BA3", "BA9"]},
        shared=shared,
        confusion={"Emo": (["A", "H", "N"], cm)},
    )
    rep.figures = {
        "presence": figures.presence_png(presence),
        "association": figures.association_png(assoc, 0.9),
        "shared": figures.shared_png(shared),
        "confusion_Emo": figures.confusion_png(["A", "H", "N"], cm, "Emo"),
    }
    return rep


def test_html_is_self_contained_and_markdown_links_its_figures(tmp_path: Path) -> None:
    rep = _hand_made_report()
    page = to_html(rep)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)  # every resource inline
    assert page.count('src="data:image/png;base64,') == len(rep.figures) == 4
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page  # error text escaped
    assert 'class="sortable"' in page and page.count("<table") >= 5
    assert "Region and Accent are nearly the same partition" in page
    md = to_markdown(rep, "presence_files")
    assert (
        "| Emo | varies within speakers | 0.333 | slda / dt / balance 0 |" in md
        and "| present |" in md
    )
    assert "(presence_files/confusion_Emo.png)" in md and "never on a test number" in md
    md_path, html_path = write_documents(rep, tmp_path / "reports")
    assert sorted(p.name for p in (tmp_path / "reports" / "presence_files").iterdir()) == sorted(
        f"{n}.png" for n in rep.figures
    )
    assert html_path.read_text() == page and md_path.read_text() == md


PROBE = """<script>
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push(e.blockedURI || 'inline');
});
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) {
    return !(i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0);
  });
  var tables = Array.prototype.slice.call(document.querySelectorAll('table'));
  var shown = tables.filter(function (t) {
    return t.getBoundingClientRect().height > 0 && t.rows.length > 1;
  });
  var sorted = null, t = document.querySelector('table.sortable');
  if (t) {
    var heads = Array.prototype.slice.call(t.tHead.rows[0].cells),
      col = heads.findIndex(function (h) { return h.textContent === 'test BA'; });
    heads[col].click();
    var vals = Array.prototype.slice.call(t.tBodies[0].rows)
      .map(function (r) { return r.cells[col].dataset.v; })
      .filter(function (v) { return v !== ''; }).map(parseFloat);
    sorted = vals.every(function (v, i) { return i === 0 || vals[i - 1] <= v; });
  }
  var out = {images: imgs.length, bad_images: bad.length,
             tables: tables.length, tables_shown: shown.length,
             resources: performance.getEntriesByType('resource')
               .map(function (e) { return e.name; }),
             violations: window.__violations, sorted: sorted};
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
)
NO_NETWORK = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=5000",
]


def chromium_check(page: Path, work: Path) -> tuple[dict, Path]:
    """Render ``page`` in headless Chromium: probe results (images, tables, requests, sorting)
    and a screenshot.

    The probe is a copy of the page with a listener for blocked requests (a strict
    content-security policy: any attempt to load something not inline is reported) and a
    load-time check of every image and table appended; the page itself is screenshotted as is.
    """
    text = page.read_text(encoding="utf-8")
    probe = work / "probe.html"
    probe.write_text(
        text.replace(
            "<head>", "<head>" + CSP + PROBE.split("window.addEventListener")[0] + "</script>", 1
        ).replace(
            "</body>",
            "<script>window.addEventListener"
            + PROBE.split("window.addEventListener", 1)[1]
            + "</body>",
            1,
        ),
        encoding="utf-8",
    )
    dom = subprocess.run(
        [CHROMIUM, *NO_NETWORK, "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"probe missing from the rendered page; stderr: {dom.stderr[-2000:]}"
    import html as _html

    result = json.loads(_html.unescape(found.group(1)))
    shot = work / "presence.png"
    subprocess.run(
        [
            CHROMIUM,
            *NO_NETWORK,
            "--hide-scrollbars",
            "--window-size=1280,3000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, shot


def assert_rendered(result: dict, shot: Path, n_images: int) -> None:
    """Every image decoded and visible, every table shown, no request, sortable table sorts,
    screenshot not blank."""
    assert result["images"] == n_images and result["bad_images"] == 0, result
    assert result["tables"] >= 3 and result["tables_shown"] == result["tables"], result
    assert result["resources"] == [] and result["violations"] == [], result
    assert result["sorted"] is True, result
    from PIL import Image

    assert shot.is_file(), "no screenshot written"
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[1] == 1280 and pixels.std() > 10  # not a blank page


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium not installed (Debian package `chromium`; "
    ".ci/install-chromium installs it): browser check skipped",
)


@needs_chromium
def test_chromium_renders_the_hand_made_report_offline(tmp_path: Path) -> None:
    rep = _hand_made_report()
    _, page = write_documents(rep, tmp_path / "reports")
    result, shot = chromium_check(page, tmp_path)
    assert_rendered(result, shot, n_images=len(rep.figures))


@needs_chromium
def test_chromium_check_catches_a_network_reference(tmp_path: Path) -> None:
    rep = _hand_made_report()
    _, page = write_documents(rep, tmp_path / "reports")
    page.write_text(
        page.read_text().replace("</main>", '<img src="http://example.org/x.png"></main>')
    )
    result, _ = chromium_check(page, tmp_path)
    assert result["violations"] or result["resources"]
    assert result["bad_images"] == 1


# -------------------------------------------------------------- a tiny real study, then the report
def _tiny_study_params() -> dict:
    from conftest import SMALL_DEMO

    return {
        **SMALL_DEMO,
        "label": "Modality",
        "labels": ["Modality", "Noise"],
        "classes": {"Modality": "all", "Noise": "all"},
        "selection": {
            "selectors": ["all", "slda"],
            "common": {"include": [], "exclude": ["_all_"]},
        },
        "model": {
            "dt": {
                "grid": {
                    "max_depth": [3, 6],
                    "min_samples_split": [2],
                    "min_samples_leaf": [1],
                    "criterion": ["gini"],
                },
                "cv_folds": 3,
                "n_jobs": 1,
            }
        },
        "test": {"n_permutations": 1000, "n_bootstrap": 200},
        "explain": {"n_samples": 24, "background_size": 4},
        # Noise has no signal: slda selects no BA for it,
        # so Noise x slda fails (recorded with its line)
        "study": {
            "features": ["all", "slda"],
            "model": ["dt", "logreg"],
            "balance": [0],
            "seeds": [],
            "n_jobs": 2,
        },
    }


@pytest.mark.integration
def test_tiny_real_study_then_report(project_copy) -> None:
    from conftest import run_cmd

    proj = project_copy(_tiny_study_params())
    run_cmd(["dvc", "repro"], proj, timeout=900)
    results = pd.read_csv(
        proj / "metrics" / "study" / "Noise" / "results.csv", keep_default_na=False
    )
    failed = results[results["status"] == "failed"]
    assert sorted(failed["features"]) == ["slda", "slda"], results
    assert (
        failed["error"]
        .str.contains("features file features/Noise/Noise_slda_features.csv lists no BA")
        .all()
    )
    md = (proj / "reports" / "presence.md").read_text()
    page = (proj / "reports" / "presence.html").read_text()
    presence_table = md.split("## 1. Presence")[1].split("## 2.")[0]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
        for line in presence_table.splitlines()
        if line.startswith(("| Modality |", "| Noise |"))
    }
    assert rows["Modality"][-1] == "present", rows
    assert rows["Noise"][-1] == "not shown", rows
    assert rows["Modality"][2] == "0.500" and rows["Noise"][3].startswith("all / ")
    metrics = json.loads((proj / "metrics" / "presence.json").read_text())
    assert (
        metrics["Modality"]["verdict"] == "present" and metrics["Noise"]["verdict"] == "not shown"
    )
    assert page.count('<tr class="failed">') == 2 and "lists no BA" in page
    assert "http://" not in page and "https://" not in page
    for name in ("presence", "association", "confusion_Modality", "confusion_Noise"):
        assert (proj / "reports" / "presence_files" / f"{name}.png").is_file(), name
    # only the chosen configuration is explained
    assert (proj / "metrics" / "study" / "Modality" / "explain" / "importance.csv").is_file()
    assert run_cmd(["dvc", "status"], proj).stdout.strip().endswith("up to date.")
    if CHROMIUM is not None:
        result, shot = chromium_check(proj / "reports" / "presence.html", proj)
        assert_rendered(result, shot, n_images=page.count('src="data:image/png;base64,'))

    # a new class filter of one label reruns that label's stages and the report, nothing else
    params = proj / "params.yaml"
    params.write_text(params.read_text().replace("Noise: all", "Noise: [Heads, Tails]"))
    log = run_cmd(["dvc", "repro"], proj, timeout=900).stdout
    ran = sorted(set(re.findall(r"Running stage '([^']+)'", log)))
    assert ran == [
        "associate@Noise",
        "check",
        "report",
        "select@Noise-all",
        "select@Noise-slda",
        "study@Noise",
    ], ran


def test_experiments_table_fits_80_columns() -> None:
    from smp_balr.report.experiments import format_table, rows

    shown = [
        {
            "rev": "workspace",
            "name": None,
            "data": {
                "metrics": {
                    "metrics/presence.json": {
                        "data": {
                            "alpha": 0.05,
                            "EmoClass": {
                                "verdict": "present",
                                "chosen": "slda / logreg / balance 2",
                                "balanced_accuracy": 0.4975,
                                "ci_low": 0.44,
                                "p_adjusted": 0.004,
                            },
                            "Noise": {
                                "verdict": "not shown",
                                "chosen": None,
                                "balanced_accuracy": None,
                                "ci_low": None,
                                "p_adjusted": None,
                            },
                        }
                    }
                }
            },
            "experiments": [
                {
                    "revs": [
                        {
                            "rev": "abc1234def",
                            "name": "a-very-long-experiment-name",
                            "data": {"metrics": {}},
                        }
                    ]
                }
            ],
        }
    ]
    items = rows(shown)
    assert [(r["experiment"], r["label"]) for r in items] == [
        ("workspace", "EmoClass"),
        ("workspace", "Noise"),
    ]
    lines = format_table(items).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == [
        "workspace",
        "EmoClass",
        "slda/logreg/2",
        "0.497",
        "0.440",
        "0.0040",
        "present",
    ]
    assert lines[2].split()[-2:] == ["not", "shown"]


def test_verdict_rule_is_stated_on_both_pages() -> None:
    rep = _hand_made_report()
    assert RULE in to_html(rep) and RULE in to_markdown(rep, "presence_files")


def test_figures_carry_no_url() -> None:
    png = figures.confusion_png(["a", "b"], np.array([[3, 1], [0, 4]]), "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"http" not in png
