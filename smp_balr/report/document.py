"""The report's content as plain data, rendered to Markdown and to one self-contained HTML file."""

from __future__ import annotations

import base64
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2
import pandas as pd

from smp_balr.report.html_page import CSS, PAGE, SORT_JS
from smp_balr.study.grid import config_text as config_label


@dataclass
class PresenceReport:
    """Everything the documents show, computed before rendering."""

    generated: str
    alpha: float
    rule: str
    correction: str
    confound_v: float
    min_speakers: int
    presence: list[dict[str, Any]]  # one entry per label (see build.presence_entries)
    experiments: pd.DataFrame  # every run of every study (results.csv), failed ones included
    association: dict[str, pd.DataFrame]  # unit -> Cramér's V matrix
    confounds: list[dict[str, Any]]  # pairs at or above confound_v
    levels: dict[str, str]  # label -> level
    class_counts: dict[str, pd.DataFrame]  # label -> speakers / rows per class
    selected: dict[str, dict[str, list[str]]]  # label -> selector -> BAs
    agreement: dict[str, pd.DataFrame]  # label -> Jaccard matrix
    shap_top: dict[str, list[str]]  # label -> top SHAP BAs of the chosen model
    shared: pd.DataFrame  # BA x label (BAs that matter for > 1 label)
    confusion: dict[str, tuple[list[str], Any]]  # label -> (classes, counts)
    figures: dict[str, bytes] = field(default_factory=dict)  # name -> PNG
    notes: list[str] = field(default_factory=list)
    association_lines: dict[str, list[str]] = field(
        default_factory=dict
    )  # label -> lines (per-BA association)
    profile: dict[str, Any] | None = None  # BA profile summary of the training speakers


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def _p(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}"


def _interval(r: dict[str, Any], key: str, digits: int = 3) -> str:
    value, low, high = (_fmt(r.get(k), digits) for k in (key, key + "_ci_low", key + "_ci_high"))
    return f"{value} [{low}–{high}]"


def beyond_text(r: dict[str, Any]) -> str:
    """The presence beyond each associated label, e.g. ``present beyond Gender (p 0.002)``."""
    parts = []
    for other, b in (r.get("beyond") or {}).items():
        verdict = b.get("verdict", "")
        if verdict == "cannot be separated":
            parts.append(f"cannot be separated from {other}")
        else:
            parts.append(f"{verdict} {other} (p {_p(b.get('p_value'))})")
    return "; ".join(parts) or "–"


def presence_cells(r: dict[str, Any]) -> list[str]:
    """The presence-table cells of one label, as text."""
    chosen = "–" if r.get("chosen") is None else config_label(r["chosen"])
    sel = _fmt(r.get("selection_mean"))
    if r.get("n_seeds", 1) > 1 and not math.isnan(r.get("selection_sd", math.nan)):
        sel += f" ± {_fmt(r['selection_sd'])}"
    ba = _fmt(r.get("ba_mean"))
    if r.get("n_seeds", 1) > 1:
        ba += f" ± {_fmt(r.get('ba_sd'))} ({r['n_seeds']} seeds)"
    ba += f" [{_fmt(r.get('ci_low'))}–{_fmt(r.get('ci_high'))}]"
    share = r.get("mi_share")
    mi = _interval(r, "mi_bits", 2) + ("" if share is None else f"; {_fmt(share, 2)}")
    return [
        r["label"],
        r.get("level", "–"),
        _fmt(r.get("chance")),
        chosen,
        sel,
        ba,
        _interval(r, "ba_norm", 2),
        mi,
        _p(r.get("p_value")),
        _p(r.get("p_adjusted")),
        beyond_text(r),
        r.get("verdict", "–"),
    ]


PRESENCE_HEAD = [
    "label",
    "level",
    "chance",
    "chosen (features / model / balance)",
    "training-side score",
    "test balanced accuracy [95% CI]",
    "normalised (0 chance, 1 perfect)",
    "information, bits; share of entropy",
    "p",
    "p corrected",
    "beyond associated labels",
    "verdict",
]
EXPERIMENT_COLUMNS = [
    ("label", "label"),
    ("features", "features"),
    ("model", "model"),
    ("balance", "balance"),
    ("seed", "seed"),
    ("status", "status"),
    ("selection_score", "train score"),
    ("balanced_accuracy", "test BA"),
    ("ci_low", "CI low"),
    ("ci_high", "CI high"),
    ("ba_norm", "norm. BA"),
    ("mi_bits", "MI bits"),
    ("p_value", "p"),
    ("n_features", "BAs"),
    ("error", "error"),
]

PROFILE_NOTE = (
    "Two questions: the association analysis asks, BA by BA, whether the BA is active more (or "
    "less) often in one class than in the others, consistently over speakers (marginal; "
    "family-wise error control over BAs); the selectors ask which BAs are still needed given the "
    "others (joint). Correlated BAs share the credit in the joint question, so it can return few "
    "BAs where many are associated."
)


def profile_text(profile: dict[str, Any] | None) -> str:
    """One paragraph on the BA profile of the training speakers (typicality, dropout, dead BAs)."""
    if not profile:
        return "No BA profile (stage `profile` has not run)."
    med = lambda k: _fmt((profile.get(k) or {}).get("q50"), 2)  # noqa: E731
    return (
        f"BA profile of the {profile.get('n_speakers', '?')} training speakers: "
        f"{profile['n_ba']} BAs, {profile['n_dead']} never active, "
        f"{profile['n_always_active']} always active; over the others the median frequency is "
        f"{med('frequency')}, the median typicality (share of speakers who have the BA: "
        f"{profile.get('has_definition', '')}) {med('typicality')} and the median dropout (share "
        f"of a having speaker's utterances without it) {med('dropout')}."
    )


CHOICE_NOTE = (
    "The configuration of each label is chosen on the training-side score only (speaker-grouped "
    "CV of the training speakers, or the held-out training speakers' validation score), never on "
    "a test number; its own test p-value is therefore valid as it is, whatever the number of "
    "configurations tried. The table makes one claim per label: p corrected is that p-value "
    "corrected across the labels of the table. Normalised balanced accuracy and mutual "
    "information (bits, minus its permutation-null mean) compare labels with different numbers "
    "of classes; 'beyond' tests a label within the strata of each label associated with it "
    "(Cramér's V at or above report.beyond_v)."
)


def _experiment_cells(row: pd.Series) -> list[str]:
    out = []
    for key, _ in EXPERIMENT_COLUMNS:
        v = row.get(key)
        if key == "p_value":
            out.append(_p(v))
        elif key in ("balance", "seed", "n_features") and isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        elif key == "error":
            out.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
        else:
            out.append(_fmt(v))
    return out


def _speaker_counts(counts: pd.DataFrame) -> pd.DataFrame:
    names = {
        "train_speakers": "training speakers",
        "test_speakers": "test speakers",
        "train_rows": "training rows",
        "test_rows": "test rows",
    }
    return counts.set_index("class").rename(columns=names)


#: what an empty list means, per selector: the question it asks returned no BA
EMPTY_SELECTION = {
    "slda": "none: no BA passed the entry test given the others (a joint question, see the "
    "association above)",
    "bayes": "none: no BA reached p_direction given all the others (a joint question, see the "
    "association above)",
    "common": "none: no BA is in every intersected list",
}


def _ba_list(method: str, names: list[str], limit: int) -> str:
    if method == "all":
        return "every BA not constant in the training rows"
    if not names:
        return EMPTY_SELECTION.get(method, "none selected")
    return ", ".join(names[:limit]) + (
        f" … ({len(names) - limit} more)" if len(names) > limit else ""
    )


# ------------------------------------------------------------------------------------ markdown
def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def _md_frame(frame: pd.DataFrame, index_name: str = "") -> str:
    head = [index_name] + [str(c) for c in frame.columns]
    rows = [
        [str(i)] + [_fmt(v, 2) if isinstance(v, float) else str(v) for v in row]
        for i, row in zip(frame.index, frame.itertuples(index=False))
    ]
    return _md_table(head, rows)


def to_markdown(rep: PresenceReport, figure_dir: str) -> str:
    """The report as Markdown; figures referenced as ``<figure_dir>/<name>.png``."""

    def fig(name: str, alt: str) -> str:
        return f"![{alt}]({figure_dir}/{name}.png)" if name in rep.figures else ""

    out = [
        "# Presence of modalities in the BAs",
        "",
        f"Built {rep.generated}. Verdicts at alpha = {rep.alpha} "
        f"({rep.correction} across the labels).",
        "",
    ]
    out += _md_presence(rep, fig)
    out += _md_bas(rep, fig)
    out += _md_confounds(rep, fig)
    out += ["## 4. Confusion matrices of the chosen models", ""]
    for label in rep.confusion:
        out += [f"### {label}", "", fig(f"confusion_{label}", f"confusion matrix {label}"), ""]
    out += [
        "## 5. Every configuration run",
        "",
        _md_table(
            [h for _, h in EXPERIMENT_COLUMNS],
            [_experiment_cells(r) for _, r in rep.experiments.iterrows()],
        ),
        "",
    ]
    out += [f"- {n}" for n in rep.notes]
    return "\n".join(out) + "\n"


def _md_presence(rep: PresenceReport, fig: Callable[[str, str], str]) -> list[str]:
    """Markdown lines of section 1: the rule, the presence table, its warnings and figure."""
    out = [
        "## 1. Presence",
        "",
        f"**Rule.** {rep.rule}",
        "",
        CHOICE_NOTE,
        "",
        _md_table(PRESENCE_HEAD, [presence_cells(r) for r in rep.presence]),
        "",
    ]
    for r in rep.presence:
        for w in r.get("warnings", []):
            out.append(f"- **{r['label']}**: {w}")
    return out + ["", fig("presence", "normalised balanced accuracy per label"), ""]


def _md_bas(rep: PresenceReport, fig: Callable[[str, str], str]) -> list[str]:
    """Markdown lines of section 2: per label its associated and selected BAs; shared BAs."""
    out = ["## 2. Which BAs", "", PROFILE_NOTE, "", profile_text(rep.profile), ""]
    out += [fig("effects", "BA effects across labels"), ""]
    for label in rep.selected:
        out += [
            f"### {label}",
            "",
            "Associated BAs (marginal, per BA; frequency in the class vs the others, speaker "
            "intervals):",
            "",
        ]
        out += [f"- {line}" for line in rep.association_lines.get(label, [])] + [""]
        out += ["Jointly needed BAs (selectors):", ""]
        rows = [[m, str(len(b)), _ba_list(m, b, 15)] for m, b in rep.selected[label].items()]
        out += [_md_table(["selector", "n", "BAs"], rows), ""]
        if label in rep.agreement and len(rep.agreement[label]):
            out += ["Jaccard agreement between selectors:", "", _md_frame(rep.agreement[label]), ""]
        if rep.shap_top.get(label):
            out += [f"Top SHAP BAs of the chosen model: {', '.join(rep.shap_top[label])}", ""]
    out += ["### BAs shared across labels", ""]
    if len(rep.shared):
        out += [_md_frame(rep.shared, "BA"), "", fig("shared", "BAs shared across labels"), ""]
    else:
        out += ["No BA matters for more than one label.", ""]
    return out


def _md_confounds(rep: PresenceReport, fig: Callable[[str, str], str]) -> list[str]:
    """Markdown lines of section 3: Cramér's V between labels, warnings, speakers per class."""
    out = [
        "## 3. Confounds",
        "",
        f"Cramér's V (bias-corrected) between labels; pairs at or above {rep.confound_v} "
        "are flagged: there, 'present' may mean 'the other label is present'.",
        "",
    ]
    for unit, mat in rep.association.items():
        out += [f"On {unit}:", "", _md_frame(mat), ""]
    out += [fig("association", "Cramér's V between labels"), ""]
    for c in rep.confounds:
        out.append(
            f"- **warning**: {c['a']} and {c['b']} are nearly the same partition "
            f"(V = {c['v']:.2f} on {c['where']})"
        )
    out.append("")
    for label, counts in rep.class_counts.items():
        out += [
            f"**{label}** ({rep.levels.get(label, '?')}): distinct speakers and rows per class",
            "",
            _md_frame(_speaker_counts(counts), "class"),
            "",
        ]
    return out


# ------------------------------------------------------------------------------------ html
def to_html(rep: PresenceReport) -> str:
    """The report as one self-contained HTML page (inline CSS/JS, images as data URIs, no network).

    The page is the Jinja2 template :data:`smp_balr.report.html_page.PAGE`, rendered with
    autoescape: every text of the report (label and class names, error lines, notes) is
    escaped by the template, none is written as markup.
    """
    return _page_template().render(
        rep=rep,
        css=CSS,
        sort_js=SORT_JS,
        images={n: base64.b64encode(png).decode("ascii") for n, png in rep.figures.items()},
        n_runs=len(rep.experiments),
        choice_note=CHOICE_NOTE,
        profile_note=PROFILE_NOTE,
        profile=profile_text(rep.profile),
        presence=_presence_table(rep),
        warnings=[(r["label"], w) for r in rep.presence for w in r.get("warnings", [])],
        label_bas=[_label_bas(rep, label) for label in rep.selected],
        has_shared=bool(len(rep.shared)),
        class_counts=[
            {
                "label": label,
                "level": rep.levels.get(label, "?"),
                "table": _frame_table(_speaker_counts(counts), "class"),
            }
            for label, counts in rep.class_counts.items()
        ],
        runs=_runs_table(rep),
    )


@functools.lru_cache(maxsize=1)
def _page_template() -> jinja2.Template:
    """The page template, compiled once, escaping every value it is given."""
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(PAGE)


def _table(
    head: list[str],
    rows: list[list[str]],
    cls: str = "",
    row_classes: list[str] | None = None,
    sort_values: list[list[Any]] | None = None,
    text_class: str = "",
) -> dict[str, Any]:
    """A table as the template takes it; numeric cells get class ``num``, others ``text_class``."""
    out = []
    for i, row in enumerate(rows):
        cells = []
        for j, text in enumerate(row):
            sort = None
            if sort_values is not None:
                sort = sort_values[i][j]
                if isinstance(sort, float) and math.isnan(sort):
                    sort = ""
            cls_ = "num" if _is_num(text) else text_class
            cells.append({"text": text, "cls": cls_, "sort": sort, "err": ""})
        out.append({"cls": row_classes[i] if row_classes else "", "cells": cells})
    return {"head": head, "cls": cls, "rows": out}


def _is_num(text: str) -> bool:
    """Whether a cell reads as a number (a dash for a missing one aside): right-aligned."""
    try:
        float(text.replace("–", "").strip() or "x")
    except ValueError:
        return False
    return True


def _frame_table(frame: pd.DataFrame, index_name: str = "") -> dict[str, Any]:
    """A DataFrame as a template table, its index as the first column."""
    head = [index_name] + [str(c) for c in frame.columns]
    rows = [
        [str(i)] + [_fmt(v, 2) if isinstance(v, float) else str(v) for v in row]
        for i, row in zip(frame.index, frame.itertuples(index=False))
    ]
    return _table(head, rows)


def _presence_table(rep: PresenceReport) -> dict[str, Any]:
    """The presence table, its verdict cells coloured (present, or not shown)."""
    table = _table(PRESENCE_HEAD, [presence_cells(r) for r in rep.presence], cls="presence")
    for row, r in zip(table["rows"], rep.presence):
        v = r.get("verdict")
        row["cells"][-1].update(text=v, cls="present" if v == "present" else "notshown")
    return table


def _label_bas(rep: PresenceReport, label: str) -> dict[str, Any]:
    """One label's BAs: associated lines, selector lists, their agreement, the SHAP top list."""
    rows = [[m, str(len(b)), _ba_list(m, b, 40)] for m, b in rep.selected[label].items()]
    agreement = None
    if label in rep.agreement and len(rep.agreement[label]):
        agreement = _frame_table(rep.agreement[label])
    return {
        "label": label,
        "lines": rep.association_lines.get(label, []),
        "selectors": _table(["selector", "n", "BAs"], rows, text_class="bas"),
        "agreement": agreement,
        "shap": rep.shap_top.get(label) or [],
    }


def _runs_table(rep: PresenceReport) -> dict[str, Any]:
    """Every run, sortable, failed ones marked; an error line goes under its run's status."""
    # one column less than EXPERIMENT_COLUMNS, so that the table fits the page
    columns = [c for c in EXPERIMENT_COLUMNS if c[0] != "error"]
    status_at = [k for k, _ in columns].index("status")
    rows, sorts, rclass, errors = [], [], [], []
    for _, r in rep.experiments.iterrows():
        cells = _experiment_cells(r)
        rows.append(cells[: len(columns)])
        errors.append((cells[-1], r["status"]))
        values = [r.get(k) for k, _ in columns]
        sorts.append(
            ["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        )
        rclass.append("failed" if r["status"] == "failed" else "")
    head = [h for _, h in columns]
    table = _table(head, rows, cls="sortable", row_classes=rclass, sort_values=sorts)
    for row, (err, status) in zip(table["rows"], errors):
        if err:
            row["cells"][status_at].update(text=str(status), cls="", err=err)
    return table


def write_documents(rep: PresenceReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``presence.md`` (+ ``presence_files/*.png``) and the self-contained ``presence.html``.

    The three are replaced together (inside the stage's output transaction); the figure
    folder is replaced whole, so no figure of a label no longer studied is left behind.
    """
    from smp_balr.core.outputs import atomic_dir, atomic_path

    out = Path(out_dir)
    fig_dir = out / "presence_files"
    with atomic_dir(fig_dir) as tmp_dir:
        for name, png in rep.figures.items():
            (tmp_dir / f"{name}.png").write_bytes(png)
    md, page = out / "presence.md", out / "presence.html"
    with atomic_path(md) as tmp:
        tmp.write_text(to_markdown(rep, fig_dir.name), encoding="utf-8")
    with atomic_path(page) as tmp:
        tmp.write_text(to_html(rep), encoding="utf-8")
    return md, page
