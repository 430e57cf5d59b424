"""The README's figures: collected from the pipeline's metrics into docs/figures.json, rendered into
the README between marker comments, never typed by hand.

``python -m smp_balr.docs`` (``make figures``) reads ``metrics/*.json`` of the last ``make repro``,
writes ``docs/figures.json`` and rewrites the README's marked blocks; a test checks that the
README shows exactly what ``docs/figures.json`` says.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path
from typing import Any

from smp_balr.core import paths
from smp_balr.core.errors import UserError
from smp_balr.core.outputs import write_json

log = logging.getLogger(__name__)

FIGURES = Path("docs") / "figures.json"
CALIBRATION = Path("docs") / "calibration.json"  # written by benchmarks/bench_calibration.py
VERDICT_CALIBRATION = (
    Path("docs") / "calibration_verdict.json"
)  # written by benchmarks/bench_verdict.py
README = Path("README.md")
_BLOCK = re.compile(
    r"(<!-- figures:(?P<name>[a-z_]+):begin -->\n).*?(<!-- figures:(?P=name):end -->)", re.S
)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path} not found; run `make repro` first")
    return json.loads(path.read_text())


def collect(metrics_dir: Path = paths.METRICS) -> dict[str, Any]:
    """The demo figures from the metrics of the last run (train, test, selection, explain)."""
    test = _read(metrics_dir / paths.TEST_METRICS.name)
    details = _read(metrics_dir / paths.TEST_DETAILS.name)
    train = _read(metrics_dir / paths.TRAIN_METRICS.name)
    explain = _read(metrics_dir / paths.EXPLAIN_DETAILS.name)
    selection = _read(metrics_dir / paths.SELECTION_METRICS.name)
    presence = _read(metrics_dir / paths.PRESENCE_METRICS.name)
    return {
        "presence": presence,
        "test": {
            "label": details["label"],
            "model": train["model"],
            "balanced_accuracy": test["balanced_accuracy"],
            "ci_low": test["bootstrap"]["ci_low"],
            "ci_high": test["bootstrap"]["ci_high"],
            "chance": test["chance"]["balanced_accuracy"],
            "p_value": test["permutation"]["p_value"],
            "n_speakers": test["n_speakers"],
        },
        "selection": {
            label: {
                m: {k: e.get(k) for k in ("n_selected", "n_truth", "precision", "recall")}
                for m, e in per.items()
            }
            for label, per in selection.items()
        },
        "explain": {
            "top10_in_truth": explain.get("n_top10_in_truth"),
            "explainer": explain.get("explainer"),
        },
    }


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_calibration(calibration: dict[str, Any]) -> str:
    """The README's calibration table: false selections on null labels, recall on planted ones."""
    lines = [
        "| corpus (training rows per BA) | selector | null labels with a BA selected [95% CI] | "
        'verdict "present" on null labels | recall on planted EmoClass (bonferroni / fdr_bh) |',
        "|---|---|---|---|---|",
    ]
    for name, cell in calibration["cells"].items():
        summary = cell["summary"]
        verdicts = [summary["verdict"][k] for k in ("within", "speaker") if k in summary["verdict"]]
        present = f"{sum(v['present'] for v in verdicts)}/{sum(v['n_labels'] for v in verdicts)}"
        for selector, null in summary["null"]["both"].items():
            planted = summary["planted"]["within"][selector]
            lines.append(
                f"| {name} ({cell['rows_per_ba']:.1f}) | {selector} | "
                f"{null['with_selection']}/{null['n_labels']} "
                f"[{null['ci_low']:.3f}, {null['ci_high']:.3f}] | {present} | "
                f"{planted['bonferroni']['recall']:.2f} / {planted['fdr_bh']['recall']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def render_presence(presence: dict[str, Any]) -> str:
    """The README's presence table: per label the verdict, chosen configuration, effect sizes."""
    lines = [
        "| label | chosen configuration | test balanced accuracy [95% CI] | chance | "
        "normalised [95% CI] | information, bits | "
        f"p corrected ({presence['correction']}) | verdict at {presence['alpha']} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, e in presence.items():
        if not isinstance(e, dict):
            continue
        p = "–" if e.get("p_adjusted") is None else f"{e['p_adjusted']:.2g}"
        lines.append(
            f"| {label} | {e.get('chosen') or '–'} | {_num(e.get('balanced_accuracy'))} "
            f"[{_num(e.get('ci_low'))}–{_num(e.get('ci_high'))}] | {_num(e.get('chance'))} | "
            f"{_num(e.get('ba_norm'), 2)} "
            f"[{_num(e.get('ba_norm_ci_low'), 2)}–{_num(e.get('ba_norm_ci_high'), 2)}] | "
            f"{_num(e.get('mi_bits'), 2)} | {p} | **{e['verdict']}** |"
        )
    return "\n".join(lines) + "\n"


_BEYOND_CASES = {
    "speaker": "a noisy copy of a speaker-level label (25% of speakers flipped)",
    "within": "a noisy copy of a label (20% of rows flipped)",
    "over_within": "a speaker-level label beyond a within-speaker label whose mix depends on it",
}


def _rate(cell: dict[str, Any]) -> str:
    return f"{cell['hits']}/{cell['n']} [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"


def render_verdict_calibration(verdict: dict[str, Any]) -> str:
    """The README's table of the verdict's claims on null labels: table claim, "present beyond"."""
    lines = [
        "| claim | case | false claims [95% CI] (nominal "
        f"{verdict['alpha']:g}) | power where the label has signal |",
        "|---|---|---|---|",
    ]
    for row in verdict["rows"]["table"]:
        if row["planted"] is None:
            power = next(
                (
                    r["planted_power"]
                    for r in verdict["rows"]["table"]
                    if r["k"] == row["k"] and r["planted"] is not None
                ),
                None,
            )
            shown = "–" if power is None else f"{power['rate']:.2f} (one planted label)"
            lines.append(
                f"| some null label of a table called present (Holm) | K = {row['k']} labels, "
                f"{row['n_permutations']} permutations | {_rate(row['any_null_present'])} | "
                f"{shown} |"
            )
    for row in verdict["rows"]["beyond"]:
        if row["own_signal"] == 0:
            strong = max(
                (r for r in verdict["rows"]["beyond"] if r["kind"] == row["kind"]),
                key=lambda r: r["own_signal"],
            )
            lines.append(
                "| present beyond another label | "
                f"{_BEYOND_CASES.get(row['kind'], row['kind'])}, no signal of its own | "
                f"{_rate(row['present_beyond'])} | {strong['present_beyond']['rate']:.2f} "
                f"(own signal {strong['own_signal']:.0%}) |"
            )
    return "\n".join(lines) + "\n"


def render(
    figures: dict[str, Any],
    calibration: dict[str, Any] | None = None,
    verdict: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Markdown of each README block, by block name (``calibration`` when its figures are given)."""
    t = figures["test"]
    lines = [
        f"Test speakers ({t['n_speakers']}, none seen in training), label `{t['label']}`, "
        f"model `{t['model']}`: balanced accuracy **{_num(t['balanced_accuracy'])}** (95% "
        f"speaker interval {_num(t['ci_low'])}–{_num(t['ci_high'])}) against chance "
        f"{_num(t['chance'])}, permutation p = {t['p_value']:.2g}. "
        f"SHAP ({figures['explain']['explainer']}) puts {figures['explain']['top10_in_truth']} "
        "planted BAs in its global top 10.",
        "",
        "BA selection against the planted truth (precision / recall; `all` keeps every "
        "non-constant BA):",
        "",
        "| label (planted BAs) | "
        + " | ".join(next(iter(figures["selection"].values())).keys())
        + " |",
        "|---" * (1 + len(next(iter(figures["selection"].values())))) + "|",
    ]
    for label, per in figures["selection"].items():
        n_truth = next((e["n_truth"] for e in per.values() if e.get("n_truth") is not None), None)
        cells = [
            f"{e['n_selected']} BAs, {_num(e['precision'], 2)} / {_num(e['recall'], 2)}"
            for e in per.values()
        ]
        lines.append(
            f"| {label} ({n_truth if n_truth is not None else '?'}) | " + " | ".join(cells) + " |"
        )
    blocks = {"demo": "\n".join(lines) + "\n", "presence": render_presence(figures["presence"])}
    if calibration is not None:
        blocks["calibration"] = render_calibration(calibration)
    if verdict is not None:
        blocks["calibration_verdict"] = render_verdict_calibration(verdict)
    return blocks


def fill(readme: str, blocks: dict[str, str]) -> str:
    """``readme`` with every marked block replaced by its rendering."""

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in blocks:
            raise UserError(f"README block '{name}' has no figures; known: {', '.join(blocks)}")
        return match.group(1) + blocks[name] + match.group(3)

    return _BLOCK.sub(replace, readme)


def main(argv: list[str] | None = None) -> None:
    """Collect the figures (``--collect``), rewrite the README's blocks from docs/figures.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--collect", action="store_true", help="first re-read the figures from metrics/"
    )
    args = parser.parse_args(argv)
    figures = collect() if args.collect else json.loads(FIGURES.read_text())
    if args.collect:
        write_json(figures, FIGURES)
    calibration = json.loads(CALIBRATION.read_text()) if CALIBRATION.is_file() else None
    verdict = json.loads(VERDICT_CALIBRATION.read_text()) if VERDICT_CALIBRATION.is_file() else None
    README.write_text(fill(README.read_text(), render(figures, calibration, verdict)))
    log.info("README figures written from %s", FIGURES)


if __name__ == "__main__":
    from smp_balr.core.cli import run

    run(main, "figures")
