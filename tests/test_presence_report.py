"""The presence report: choice on the training side only, Holm, confounds, BAs, documents; a real tiny sweep."""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smp_balr.errors import UserError
from smp_balr.report import bas, choose, collect, confounds, figures
from smp_balr.report.document import PresenceReport, to_html, to_markdown, write_documents

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


# ------------------------------------------------------------------------------- Holm and verdict
def test_holm_on_hand_made_numbers() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 with m = 4: 0.04, 0.06, 0.06 (monotone), 0.06
    got = choose.holm([0.03, 0.01, 0.04, 0.02])
    assert got == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert choose.holm([0.5]) == pytest.approx([0.5])
    assert choose.holm([0.3, 0.4]) == pytest.approx([0.6, 0.6])  # capped by monotonicity, not above 1
    assert choose.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert choose.holm([0.01, math.nan]) == pytest.approx([0.02, 1.0])  # a failed configuration counts with p = 1
    with pytest.raises(ValueError):
        choose.holm([1.2])


def test_verdict_at_alpha() -> None:
    assert choose.verdict(0.05, 0.05) == choose.PRESENT
    assert choose.verdict(0.0501, 0.05) == choose.NOT_SHOWN
    assert choose.verdict(math.nan, 0.05) == choose.NO_RESULT
    with pytest.raises(UserError, match="report.alpha"):
        choose.verdict(0.01, 1.5)


# --------------------------------------------------------------- choice on the training side only
def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"status": "success", "seed": 42, "chance": 0.5, "ci_low": 0.4, "ci_high": 0.8, "top5_share": 0.3,
            "n_test_speakers": 8, "error": None, "timestamp": "t", "rev": "r", "selection_source": "cv_score"}
    out = []
    for i, r in enumerate(rows):
        out.append({**base, "name": f"e{i}", "label": "L", **r})
    return pd.DataFrame(out, columns=collect.RECORD_COLUMNS)


CONFIGS = [  # features, model, balance, training-side score, test BA, p
    ("all", "dt", 0, 0.61, 0.90, 0.001),     # best on test, not chosen
    ("slda", "mlp", 0, 0.72, 0.62, 0.02),    # best on the training side: chosen
    ("bayes", "dt", 2, 0.55, 0.70, 0.004),
    ("all", "mlp", 2, 0.70, 0.51, 0.40),
]


def _configs_frame() -> pd.DataFrame:
    return _frame([{"features": f, "model": m, "balance": b, "selection_score": s, "balanced_accuracy": ba,
                    "p_value": p} for f, m, b, s, ba, p in CONFIGS])


def test_choice_uses_training_score_not_the_best_test_config() -> None:
    frame = _configs_frame()
    best_test = tuple(frame.loc[frame["balanced_accuracy"].idxmax(), ["features", "model", "balance"]])
    row = choose.presence_row(frame, alpha=0.05)
    assert row["chosen"] == ("slda", "mlp", 0) != best_test
    assert row["ba_mean"] == pytest.approx(0.62) and row["p_value"] == pytest.approx(0.02)
    # Holm over the 4 configurations: p sorted 0.001, 0.004, 0.02, 0.4 -> 0.004, 0.012, 0.04, 0.4
    assert row["p_holm"] == pytest.approx(0.04) and row["verdict"] == choose.PRESENT
    assert choose.presence_row(frame, alpha=0.03)["verdict"] == choose.NOT_SHOWN


def test_choice_is_unchanged_under_every_permutation_of_the_test_numbers() -> None:
    frame = _configs_frame()
    chosen = choose.presence_row(frame, 0.05)["chosen"]
    test_cols = ["balanced_accuracy", "p_value", "ci_low", "ci_high", "chance", "n_test_speakers", "top5_share"]
    rng = np.random.default_rng(0)
    frame["ci_low"], frame["ci_high"] = rng.uniform(0, 0.5, 4), rng.uniform(0.5, 1, 4)
    for perm in itertools.permutations(range(len(frame))):
        shuffled = frame.copy()
        shuffled[test_cols] = frame[test_cols].to_numpy()[list(perm)]
        assert choose.presence_row(shuffled, 0.05)["chosen"] == chosen


def test_choose_configuration_sees_only_training_scores() -> None:
    assert choose.choose_configuration({"a": [0.6, 0.7], "b": [0.66], "c": [math.nan]}) == "b"  # means 0.65 < 0.66
    assert choose.choose_configuration({"a": [0.5], "b": [0.5]}) == "a"  # ties: first
    assert choose.choose_configuration({"a": [], "b": [math.nan]}) is None


def test_seeds_give_mean_spread_and_the_largest_p() -> None:
    rows = []
    for seed, (s, ba, p) in zip((1, 2, 3), [(0.70, 0.60, 0.001), (0.72, 0.64, 0.03), (0.74, 0.62, 0.002)]):
        rows.append({"features": "all", "model": "dt", "balance": 0, "seed": seed, "selection_score": s,
                     "balanced_accuracy": ba, "p_value": p})
    rows.append({"features": "slda", "model": "dt", "balance": 0, "seed": 1, "selection_score": 0.5,
                 "balanced_accuracy": 0.9, "p_value": 0.001})
    row = choose.presence_row(_frame(rows), 0.05)
    assert row["chosen"] == ("all", "dt", 0) and row["n_ok"] == 3
    assert row["ba_mean"] == pytest.approx(0.62) and row["ba_sd"] == pytest.approx(0.02)
    assert row["selection_mean"] == pytest.approx(0.72) and row["p_value"] == pytest.approx(0.03)
    # Holm, m = 2: sorted 0.001 * 2 = 0.002, then max(0.002, 0.03 * 1) = 0.03
    assert row["p_holm"] == pytest.approx(0.03) and row["verdict"] == choose.PRESENT


def test_failed_configuration_counts_in_holm_and_never_is_chosen() -> None:
    frame = _configs_frame()
    failed = _frame([{"features": "common", "model": "dt", "balance": 0, "selection_score": math.nan,
                      "balanced_accuracy": math.nan, "p_value": math.nan}])
    failed["status"], failed["error"] = "failed", "error [train]: boom"
    row = choose.presence_row(pd.concat([frame, failed], ignore_index=True), 0.05)
    assert row["chosen"] == ("slda", "mlp", 0) and row["n_configurations"] == 5 and row["n_failed"] == 1
    # m = 5 now: 0.02 is the third smallest, (5 - 2) * 0.02 = 0.06 > 0.05: the failed try costs the verdict
    assert row["p_holm"] == pytest.approx(0.06) and row["verdict"] == choose.NOT_SHOWN


# ------------------------------------------------------------------------------------- confounds
def _labels_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_spk, per = 30, 20
    spk = np.repeat([f"s{k:02d}" for k in range(n_spk)], per)
    region = np.repeat(rng.choice(["north", "south", "east"], n_spk), per)  # constant within speakers
    emo = rng.choice(["A", "H", "N"], n_spk * per)                           # varies within speakers
    return pd.DataFrame({"Speaker": spk, "Region": region,
                         "Accent": pd.Series(region).map({"north": "n", "south": "s", "east": "e"}).to_numpy(),  # = Region
                         "Emo": emo, "Coin": rng.choice(["h", "t"], n_spk * per)})


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
    assert utt.loc["Region", "Accent"] == pytest.approx(1.0) and spk.loc["Region", "Accent"] == pytest.approx(1.0)
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
        assert counts.loc[cls, "train_speakers"] == train.loc[train["Region"] == cls, "Speaker"].nunique()
        assert counts.loc[cls, "test_speakers"] == test.loc[test["Region"] == cls, "Speaker"].nunique()
    assert counts["train_speakers"].sum() == 20 and counts["test_speakers"].sum() == 10  # one region per speaker
    assert counts["train_rows"].sum() == 400
    # a speaker-level class with few test speakers is flagged; rows do not count, speakers do
    few = confounds.few_speaker_classes(counts.reset_index(), minimum=5)
    assert few == [c for c in counts.index if counts.loc[c, "test_speakers"] < 5 or counts.loc[c, "train_speakers"] < 5]
    assert few  # 10 test speakers over 3 regions: some region has fewer than 5
    emo = confounds.class_speakers(train, test, "Emo", classes=["A", "H"])
    assert emo["class"].tolist() == ["A", "H"] and confounds.few_speaker_classes(emo, 5) == []


# ------------------------------------------------------------------------------------------- BAs
def test_jaccard_agreement_and_shared_bas() -> None:
    assert bas.jaccard(["BA1", "BA2"], ["BA2", "BA3"]) == pytest.approx(1 / 3)
    assert math.isnan(bas.jaccard([], []))
    mat = bas.agreement_matrix({"slda": ["BA1", "BA2"], "bayes": ["BA2"]})
    assert mat.loc["slda", "bayes"] == pytest.approx(0.5) and mat.loc["slda", "slda"] == 1.0
    shared = bas.shared_bas({"A": {"slda": ["BA10", "BA2"], "shap": ["BA2", "BA7"]},
                             "B": {"slda": ["BA2", "BA10"], "shap": ["BA99"]},
                             "C": {"bayes": ["BA7"]}})
    assert shared.index.tolist() == ["BA2", "BA7", "BA10"]  # numeric order, only BAs of two or more labels
    assert shared.loc["BA2"].tolist() == [2, 1, 0] and shared.loc["BA7"].tolist() == [1, 0, 1]


# ------------------------------------------------------------------------------- exp show parsing
def _exp(name: str, state: str, label: str, metrics: dict | None, error: dict | None = None, ts: str = "2026-01-01T00:00:00"):
    params = {"label": label, "seed": 42, "features": {"method": "all"}, "model": {"method": "dt"},
              "train": {"balance": 0}}
    return {"name": name, "executor": {"state": state, "local": {"log": f"/nonexistent/{name}.out"}},
            "revs": [{"rev": name * 2, "name": name, "error": error,
                      "data": {"timestamp": ts, "params": {"params.yaml": {"data": params}},
                               "metrics": {k: {"data": v} for k, v in (metrics or {}).items()}}}]}


def test_parse_exp_show_records_and_failed_ones_without_baseline_metrics() -> None:
    good = {"metrics/train.json": {"model": "dt", "cv_score": 0.7},
            "metrics/test.json": {"balanced_accuracy": 0.8, "chance": {"balanced_accuracy": 0.5},
                                  "permutation": {"p_value": 0.001}, "bootstrap": {"ci_low": 0.7, "ci_high": 0.9}},
            "metrics/explain.json": {"top5_share": 0.4, "top10": ["BA1"]}}
    baseline_metrics = {"metrics/train.json": {"model": "mlp", "validation_score": 0.99}}
    shown = [{"rev": "workspace", "name": None, "experiments": None, "data": {}},
             {"rev": "abc", "name": "master", "experiments": [
                 _exp("ok", "success", "Modality", good),
                 _exp("bad", "failed", "Noise", baseline_metrics, {"msg": "Experiment run failed", "type": ""}),
                 _exp("uni", None, "Noise", {"metrics/train.json": {"selection_score": 0.6, "cv_score": 0.1}})]}]
    exps = collect.parse_exp_show(shown)
    assert [e.status for e in exps] == ["success", "failed", "success"] and exps[1].metrics == {}
    collect.attach_errors(exps, lambda e: "x\nerror [train]: no BAs\n", lambda t: t.strip().splitlines()[-1])
    frame = collect.records(exps)
    ok, bad, uni = (frame.iloc[i] for i in range(3))
    assert (ok.label, ok.selection_score, ok.selection_source, ok.balanced_accuracy, ok.p_value, ok.top5_share) == \
        ("Modality", 0.7, "cv_score", 0.8, 0.001, 0.4)
    assert bad.status == "failed" and math.isnan(bad.selection_score) and bad.error == "error [train]: no BAs"
    assert uni.selection_score == 0.6 and uni.selection_source == "selection_score"  # the uniform key first
    assert collect.selection_score({"validation_score": 0.55}) == (0.55, "validation_score")
    assert collect.selection_score({"balanced_accuracy": 0.9}) == (None, None)  # a test number is never used


def test_latest_run_of_a_configuration_replaces_earlier_ones() -> None:
    shown = [{"rev": "abc", "experiments": [
        _exp("old", "failed", "Noise", None, {"msg": "failed"}, ts="2026-01-01T00:00:00"),
        _exp("new", "success", "Noise", {"metrics/train.json": {"cv_score": 0.5}}, ts="2026-01-02T00:00:00")]}]
    frame = collect.latest_per_configuration(collect.records(collect.parse_exp_show(shown)))
    assert frame["name"].tolist() == ["new"]


# ------------------------------------------------------------------------------------- documents
def _hand_made_report() -> PresenceReport:
    df = _labels_table()
    labels = ["Region", "Accent", "Emo", "Coin"]
    assoc = {"utterances": confounds.association_matrix(df, labels, "utterance"),
             "speakers": confounds.association_matrix(df, labels, "speaker")}
    presence = [
        {"label": "Emo", "level": confounds.WITHIN, "chance": 1 / 3, "chosen": ("slda", "dt", 0), "selection_mean": 0.61,
         "selection_sd": math.nan, "ba_mean": 0.58, "ba_sd": math.nan, "ci_low": 0.52, "ci_high": 0.64, "p_value": 0.001,
         "p_holm": 0.004, "n_configurations": 4, "verdict": choose.PRESENT, "n_seeds": 1, "warnings": []},
        {"label": "Coin", "level": confounds.WITHIN, "chance": 0.5, "chosen": ("all", "dt", 2), "selection_mean": 0.51,
         "selection_sd": math.nan, "ba_mean": 0.49, "ba_sd": math.nan, "ci_low": 0.44, "ci_high": 0.55, "p_value": 0.61,
         "p_holm": 1.0, "n_configurations": 4, "verdict": choose.NOT_SHOWN, "n_seeds": 1,
         "warnings": ["1 experiment(s) failed (see the table of every experiment)"]},
    ]
    exps = _configs_frame()
    exps.loc[3, ["status", "error"]] = ["failed", "error [train]: features file lists no features <b>x</b>"]
    cm = np.array([[30, 5, 5], [4, 20, 6], [2, 3, 25]])
    shared = bas.shared_bas({"Emo": {"slda": ["BA3", "BA9"], "shap": ["BA3"]}, "Coin": {"shap": ["BA3", "BA9"]}})
    rep = PresenceReport(
        generated="now", alpha=0.05, confound_v=0.9, min_speakers=5, presence=presence, experiments=exps,
        association=assoc, confounds=confounds.confound_pairs(assoc, 0.9),
        levels={"Emo": confounds.WITHIN, "Coin": confounds.WITHIN},
        class_counts={"Emo": confounds.class_speakers(df, df, "Emo")},
        selected={"Emo": {"all": [f"BA{i}" for i in range(60)], "slda": ["BA3", "BA9"]}},
        agreement={"Emo": bas.agreement_matrix({"all": [f"BA{i}" for i in range(60)], "slda": ["BA3", "BA9"]})},
        shap_top={"Emo": ["BA3", "BA9"]}, shared=shared, confusion={"Emo": (["A", "H", "N"], cm)})
    rep.figures = {"presence": figures.presence_png(presence), "association": figures.association_png(assoc, 0.9),
                   "shared": figures.shared_png(shared), "confusion_Emo": figures.confusion_png(["A", "H", "N"], cm, "Emo")}
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
    assert "| Emo | varies within speakers | 0.333 | slda / dt / balance 0 |" in md and "| present |" in md
    assert "(presence_files/confusion_Emo.png)" in md and "never on a test number" in md
    md_path, html_path = write_documents(rep, tmp_path / "reports")
    assert sorted(p.name for p in (tmp_path / "reports" / "presence_files").iterdir()) == \
        sorted(f"{n}.png" for n in rep.figures)
    assert html_path.read_text() == page and md_path.read_text() == md


PROBE = """<script>
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) { window.__violations.push(e.blockedURI || 'inline'); });
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0); });
  var tables = Array.prototype.slice.call(document.querySelectorAll('table'));
  var shown = tables.filter(function (t) { return t.getBoundingClientRect().height > 0 && t.rows.length > 1; });
  var sorted = null, t = document.querySelector('table.sortable');
  if (t) {
    var heads = Array.prototype.slice.call(t.tHead.rows[0].cells), col = heads.findIndex(function (h) { return h.textContent === 'test BA'; });
    heads[col].click();
    var vals = Array.prototype.slice.call(t.tBodies[0].rows).map(function (r) { return r.cells[col].dataset.v; })
      .filter(function (v) { return v !== ''; }).map(parseFloat);
    sorted = vals.every(function (v, i) { return i === 0 || vals[i - 1] <= v; });
  }
  var out = {images: imgs.length, bad_images: bad.length, tables: tables.length, tables_shown: shown.length,
             resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
             violations: window.__violations, sorted: sorted};
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""
CSP = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">")
NO_NETWORK = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000"]


def chromium_check(page: Path, work: Path) -> tuple[dict, Path]:
    """Render ``page`` in headless Chromium: probe results (images, tables, requests, sorting) and a screenshot.

    The probe is a copy of the page with a listener for blocked requests (a strict
    content-security policy: any attempt to load something not inline is reported) and a
    load-time check of every image and table appended; the page itself is screenshotted as is.
    """
    text = page.read_text(encoding="utf-8")
    probe = work / "probe.html"
    probe.write_text(text.replace("<head>", "<head>" + CSP + PROBE.split("window.addEventListener")[0] + "</script>", 1)
                     .replace("</body>", "<script>window.addEventListener" + PROBE.split("window.addEventListener", 1)[1]
                              + "</body>", 1), encoding="utf-8")
    dom = subprocess.run([CHROMIUM, *NO_NETWORK, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"probe missing from the rendered page; stderr: {dom.stderr[-2000:]}"
    import html as _html

    result = json.loads(_html.unescape(found.group(1)))
    shot = work / "presence.png"
    subprocess.run([CHROMIUM, *NO_NETWORK, "--hide-scrollbars", "--window-size=1280,3000", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, text=True, timeout=120)
    return result, shot


def assert_rendered(result: dict, shot: Path, n_images: int) -> None:
    """Every image decoded and visible, every table shown, no request, sortable table sorts, screenshot not blank."""
    assert result["images"] == n_images and result["bad_images"] == 0, result
    assert result["tables"] >= 3 and result["tables_shown"] == result["tables"], result
    assert result["resources"] == [] and result["violations"] == [], result
    assert result["sorted"] is True, result
    from PIL import Image

    assert shot.is_file(), "no screenshot written"
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[1] == 1280 and pixels.std() > 10  # not a blank page


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian package `chromium`; "
                                                                 ".ci/install-chromium installs it): browser check skipped")


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
    page.write_text(page.read_text().replace("</main>", '<img src="http://example.org/x.png"></main>'))
    result, _ = chromium_check(page, tmp_path)
    assert result["violations"] or result["resources"]
    assert result["bad_images"] == 1


# ------------------------------------------------------------------ a tiny real sweep, then the report
def _tiny_sweep_params() -> dict:
    from conftest import SMALL_DEMO

    return {
        **SMALL_DEMO, "label": "Modality", "labels": ["Modality", "Noise"],
        "selection": {"selectors": ["all", "slda"], "common": {"include": [], "exclude": ["_all_"]}},
        "model": {"dt": {"grid": {"max_depth": [3, 6], "min_samples_split": [2], "min_samples_leaf": [1],
                                  "criterion": ["gini"]}, "cv_folds": 3, "n_jobs": 1}},
        "test": {"n_permutations": 1000, "n_bootstrap": 200},
        "explain": {"n_samples": 24, "background_size": 4},
        # Noise has no signal: slda selects no BA for it, so Noise x slda fails in train (listed as failed)
        "sweep": {"label": ["Modality", "Noise"], "features": ["all", "slda"], "model": ["dt"], "balance": [0],
                  "seeds": [], "jobs": 2, "poll_seconds": 2},
    }


@pytest.mark.integration
def test_tiny_real_sweep_then_report(project_copy) -> None:
    from conftest import run_cmd

    proj = project_copy(_tiny_sweep_params())
    sweep = run_cmd([sys.executable, "-m", "smp_balr.sweep"], proj, check=False, timeout=1500)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "queueing 4 experiment(s)" in sweep.stderr and "sweep finished" in sweep.stderr
    assert re.search(r"experiment \S+ failed: error \[train\]: features file features/Noise_slda_features.csv lists no BA",
                     sweep.stderr), sweep.stderr[-3000:]
    status = run_cmd(["dvc", "queue", "status"], proj).stdout
    assert status.count("Success") == 3 and status.count("Failed") == 1, status

    # nothing changed: the three experiments are reused, only the failed configuration runs again
    again = run_cmd([sys.executable, "-m", "smp_balr.sweep"], proj, check=False, timeout=1500)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 of 4 configuration(s) already have an experiment" in again.stderr, again.stderr[-3000:]
    assert "queueing 1 experiment(s): exp run --queue -S label=Noise -S features.method=slda" in again.stderr
    assert run_cmd(["dvc", "queue", "status"], proj).stdout.count("Success") == 3

    run_cmd([sys.executable, "-m", "smp_balr.report"], proj, timeout=600)
    md = (proj / "reports" / "presence.md").read_text()
    page = (proj / "reports" / "presence.html").read_text()
    presence_table = md.split("## 1. Presence")[1].split("## 2.")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in presence_table.splitlines() if line.startswith(("| Modality |", "| Noise |"))}
    assert rows["Modality"][-1] == "present", rows
    assert rows["Noise"][-1] == "not shown", rows
    assert rows["Modality"][2] == "0.500" and "dt / balance 0" in rows["Modality"][3]
    assert rows["Noise"][3] == "all / dt / balance 0"  # the only configuration of Noise that ran
    assert "(m=2)" in rows["Noise"][8]  # the failed configuration counts in Holm
    # every experiment listed, the failed one with its error line
    assert page.count("<tr class=\"failed\">") == 1 and "lists no BA" in page
    assert "http://" not in page and "https://" not in page
    for name in ("presence", "association", "confusion_Modality", "confusion_Noise"):
        assert (proj / "reports" / "presence_files" / f"{name}.png").is_file(), name
    if CHROMIUM is not None:
        result, shot = chromium_check(proj / "reports" / "presence.html", proj)
        assert_rendered(result, shot, n_images=page.count('src="data:image/png;base64,'))


def test_report_settings_are_checked() -> None:
    from smp_balr.report.build import report_settings

    assert report_settings({}) == {"alpha": 0.05, "confound_v": 0.9, "min_speakers": 5, "top_shap": 10}
    assert report_settings({"report": {"alpha": 0.01}})["alpha"] == 0.01
    with pytest.raises(UserError, match="report.alpha must be between"):
        report_settings({"report": {"alpha": 2}})
    with pytest.raises(UserError, match="unknown setting report.level"):
        report_settings({"report": {"level": 0.05}})


def test_figures_carry_no_url() -> None:
    png = figures.confusion_png(["a", "b"], np.array([[3, 1], [0, 4]]), "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"http" not in png


def test_experiments_table_fits_80_columns():
    from smp_balr.report.collect import format_table

    frame = pd.DataFrame([
        {"name": "clever-sigh", "status": "success", "label": "EmoClass", "features": "slda", "model": "logreg",
         "balance": 2, "selection_score": 0.512, "balanced_accuracy": 0.4975, "ci_low": 0.44, "p_value": 0.000999,
         "top5_share": 0.21},
        {"name": "a-very-long-experiment-name", "status": "failed", "label": "Modality", "features": "bayes",
         "model": "dt", "balance": 0, "selection_score": float("nan"), "balanced_accuracy": float("nan"),
         "ci_low": float("nan"), "p_value": float("nan"), "top5_share": float("nan")},
    ])
    lines = format_table(frame).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["experiment", "label", "feats", "model", "bal", "train", "b.acc", "ci_lo", "p", "top5"]
    assert lines[1].split() == ["clever-sigh", "EmoClass", "slda", "logreg", "2", "0.512", "0.497", "0.440", "0.0010",
                                "0.210"]
    assert lines[2].split()[0] == "!a-very-long-e" and lines[2].split()[-1] == "-"
