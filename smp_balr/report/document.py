"""The report's content as plain data, rendered to Markdown and to one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

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
    return f"{_fmt(r.get(key), digits)} [{_fmt(r.get(key + '_ci_low'), digits)}–{_fmt(r.get(key + '_ci_high'), digits)}]"


def beyond_text(r: dict[str, Any]) -> str:
    """The label's presence beyond each associated label, e.g. ``present beyond Gender (p 0.002)``."""
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
    "Two questions: the association analysis asks, BA by BA, whether the BA is active more (or less) "
    "often in one class than in the others, consistently over speakers (marginal; family-wise error "
    "control over BAs); the selectors ask which BAs are still needed given the others (joint). "
    "Correlated BAs share the credit in the joint question, so it can return few BAs where many are "
    "associated."
)


def profile_text(profile: dict[str, Any] | None) -> str:
    """One paragraph on the BA profile of the training speakers (typicality, dropout, dead BAs)."""
    if not profile:
        return "No BA profile (stage `profile` has not run)."
    med = lambda k: _fmt((profile.get(k) or {}).get("q50"), 2)  # noqa: E731
    return (
        f"BA profile of the {profile.get('n_speakers', '?')} training speakers: {profile['n_ba']} BAs, "
        f"{profile['n_dead']} never active, {profile['n_always_active']} always active; over the others the "
        f"median frequency is {med('frequency')}, the median typicality (share of speakers who have the BA: "
        f"{profile.get('has_definition', '')}) {med('typicality')} and the median dropout (share of a having "
        f"speaker's utterances without it) {med('dropout')}."
    )


CHOICE_NOTE = (
    "The configuration of each label is chosen on the training-side score only (speaker-grouped CV of "
    "the training speakers, or the held-out training speakers' validation score), never on a test "
    "number; its own test p-value is therefore valid as it is, whatever the number of configurations "
    "tried. The table makes one claim per label: p corrected is that p-value corrected across the "
    "labels of the table. Normalised balanced accuracy and mutual information (bits, minus its "
    "permutation-null mean) compare labels with different numbers of classes; 'beyond' tests a label "
    "within the strata of each label associated with it (Cramér's V at or above report.beyond_v)."
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
    "slda": "none: no BA passed the entry test given the others (a joint question, see the association above)",
    "bayes": "none: no BA reached p_direction given all the others (a joint question, see the association above)",
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
    fig = lambda name, alt: f"![{alt}]({figure_dir}/{name}.png)" if name in rep.figures else ""  # noqa: E731
    out = [
        "# Presence of modalities in the BAs",
        "",
        f"Built {rep.generated}. Verdicts at alpha = {rep.alpha} "
        f"({rep.correction} across the labels).",
        "",
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
    out += ["", fig("presence", "normalised balanced accuracy per label"), ""]
    out += ["## 2. Which BAs", "", PROFILE_NOTE, "", profile_text(rep.profile), ""]
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
    out += [
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
            f"- **warning**: {c['a']} and {c['b']} are nearly the same partition (V = {c['v']:.2f} on {c['where']})"
        )
    out.append("")
    for label, counts in rep.class_counts.items():
        out += [
            f"**{label}** ({rep.levels.get(label, '?')}): distinct speakers and rows per class",
            "",
            _md_frame(_speaker_counts(counts), "class"),
            "",
        ]
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


# ------------------------------------------------------------------------------------ html
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f6f7f9;color:#1d2430;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff;box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.7em;margin:.2em 0 .1em}h2{border-bottom:2px solid #e3e6ea;padding-bottom:4px;margin-top:2em}
h3{margin-bottom:.3em}.meta{color:#5b6573;margin-top:0}.note{background:#f1f5fb;border-left:4px solid #4a78b5;padding:8px 12px;font-size:.93em}
table{border-collapse:collapse;margin:10px 0 18px;font-size:.9em}th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}.present{color:#fff;background:#1b7837!important;font-weight:600}
.notshown{background:#eceff2!important;color:#444}.failed td{color:#8a1c1c}.warn{color:#8a4b00;background:#fff6e5;border-left:4px solid #e69500;padding:6px 10px;margin:4px 0;list-style:none}
ul.warnings{padding-left:0}figure{margin:10px 0}img{max-width:100%;height:auto;border:1px solid #e3e6ea}
.grid{display:flex;flex-wrap:wrap;gap:18px}.grid figure{flex:0 1 auto}figcaption{font-size:.85em;color:#5b6573}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}table.sortable th:after{content:" \\2195";color:#9aa3ad;font-size:.8em}
.bas{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-word;max-width:720px}
.wide{overflow-x:auto}table.sortable{font-size:.8em}table.sortable td,table.sortable th{padding:3px 5px}.err{font-size:.9em;max-width:250px;white-space:normal;margin-top:2px;font-family:ui-monospace,Menlo,Consolas,monospace}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),asc=th.dataset.dir!=='asc';
      t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});th.dataset.dir=asc?'asc':'desc';
      function key(r){var c=r.cells[i],v=c.dataset.v!==undefined?c.dataset.v:c.textContent;var n=parseFloat(v);return isNaN(n)?v.toLowerCase():n}
      rows.sort(function(a,b){var x=key(a),y=key(b);if(typeof x!==typeof y){x=String(x);y=String(y)}return (x<y?-1:x>y?1:0)*(asc?1:-1)});
      rows.forEach(function(r){body.appendChild(r)});
    });
  });
});
"""


class Html(str):
    """A table cell that is already HTML (escaped where needed): written as is."""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _img(rep: PresenceReport, name: str, alt: str, caption: str = "") -> str:
    if name not in rep.figures:
        return ""
    data = base64.b64encode(rep.figures[name]).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _html_table(
    head: list[str],
    rows: list[list[str]],
    cls: str = "",
    row_classes: list[str] | None = None,
    sort_values: list[list[Any]] | None = None,
) -> str:
    out = [
        f'<table class="{cls}">' if cls else "<table>",
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>",
    ]
    for i, row in enumerate(rows):
        rc = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            num = _is_num(cell)
            attrs = ' class="num"' if num else ""
            if sort_values is not None:
                v = sort_values[i][j]
                if isinstance(v, float) and math.isnan(v):
                    v = ""
                attrs += f' data-v="{_e(v)}"'
            cells.append(f"<td{attrs}>{cell if isinstance(cell, Html) else _e(cell)}</td>")
        out.append(f"<tr{rc}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _is_num(text: str) -> bool:
    try:
        float(text.replace("–", "").strip() or "x")
    except ValueError:
        return False
    return True


def _frame_html(frame: pd.DataFrame, index_name: str = "") -> str:
    head = [index_name] + [str(c) for c in frame.columns]
    rows = [
        [str(i)] + [_fmt(v, 2) if isinstance(v, float) else str(v) for v in row]
        for i, row in zip(frame.index, frame.itertuples(index=False))
    ]
    return _html_table(head, rows)


def to_html(rep: PresenceReport) -> str:
    """The report as one self-contained HTML page (inline CSS/JS, images as data URIs, no network reference)."""
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Presence of modalities in the BAs</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>Presence of modalities in the BAs</h1>",
        f'<p class="meta">Built {_e(rep.generated)} · verdicts at alpha = {_e(rep.alpha)} '
        f"({_e(rep.correction)} across the labels) · {len(rep.experiments)} runs</p>",
        "<h2>1. Presence</h2>",
        f'<p class="note"><b>Rule.</b> {_e(rep.rule)}</p>',
        f'<p class="note">{_e(CHOICE_NOTE)}</p>',
    ]
    rows, classes = [], []
    for r in rep.presence:
        cells = presence_cells(r)
        v = r.get("verdict")
        cells[-1] = Html(f"<span>{_e(v)}</span>")
        rows.append(cells)
        classes.append("")
    table = _html_table(PRESENCE_HEAD, rows, cls="presence")
    # colour the verdict cells
    for r in rep.presence:
        v = r.get("verdict")
        css = "present" if v == "present" else "notshown"
        table = table.replace(
            f"<td><span>{_e(v)}</span></td>", f'<td class="{css}">{_e(v)}</td>', 1
        )
    parts.append(f'<div class="wide">{table}</div>')
    warns = [
        f'<li class="warn"><b>{_e(r["label"])}</b>: {_e(w)}</li>'
        for r in rep.presence
        for w in r.get("warnings", [])
    ]
    if warns:
        parts.append('<ul class="warnings">' + "".join(warns) + "</ul>")
    parts.append(
        _img(
            rep,
            "presence",
            "normalised balanced accuracy per label",
            "Chosen configuration per label: (balanced accuracy - chance) / (1 - chance) on the test speakers, with its "
            "speaker-bootstrap 95% interval; 0 is chance.",
        )
    )

    parts.append("<h2>2. Which BAs</h2>")
    parts.append(f'<p class="note">{_e(PROFILE_NOTE)}</p><p>{_e(profile_text(rep.profile))}</p>')
    parts.append(
        _img(
            rep,
            "effects",
            "BA effects across labels",
            "Associated BAs: difference of activation frequency, class vs the others (blank: not associated).",
        )
    )
    for label in rep.selected:
        parts.append(f"<h3>{_e(label)}</h3>")
        lines = rep.association_lines.get(label, [])
        parts.append(
            '<p><b>Associated BAs</b> (marginal, per BA)</p><ul class="bas">'
            + "".join(f"<li>{_e(x)}</li>" for x in lines)
            + "</ul><p><b>Jointly needed BAs</b> (selectors)</p>"
        )
        rows = [[m, str(len(b)), _ba_list(m, b, 40)] for m, b in rep.selected[label].items()]
        body = _html_table(["selector", "n", "BAs"], rows).replace("<td>", '<td class="bas">')
        parts.append(body)
        extra = []
        if label in rep.agreement and len(rep.agreement[label]):
            extra.append(
                "<div><b>Jaccard agreement</b>" + _frame_html(rep.agreement[label]) + "</div>"
            )
        if rep.shap_top.get(label):
            extra.append(
                '<div><b>Top SHAP BAs of the chosen model</b><ol class="bas">'
                + "".join(f"<li>{_e(b)}</li>" for b in rep.shap_top[label])
                + "</ol></div>"
            )
        parts.append('<div class="grid">' + "".join(extra) + "</div>")
    parts.append("<h3>BAs shared across labels</h3>")
    if len(rep.shared):
        parts.append(
            _img(
                rep,
                "shared",
                "BAs shared across labels",
                "Cell: number of sources (selectors other than all, SHAP top list) naming the BA for the label.",
            )
        )
    else:
        parts.append("<p>No BA matters for more than one label.</p>")

    parts.append("<h2>3. Confounds</h2>")
    parts.append(
        f"<p>Cramér's V (bias-corrected) between every pair of labels, on utterances and on speakers (each "
        f"speaker once, with its most frequent value). Pairs at or above {_e(rep.confound_v)} are outlined: "
        "for them, &ldquo;present&rdquo; may mean &ldquo;the other label is present&rdquo;.</p>"
    )
    parts.append(_img(rep, "association", "Cramér's V between labels"))
    if rep.confounds:
        parts.append(
            '<ul class="warnings">'
            + "".join(
                f'<li class="warn">{_e(c["a"])} and {_e(c["b"])} are nearly the same partition (V = {c["v"]:.2f} on {_e(c["where"])})</li>'
                for c in rep.confounds
            )
            + "</ul>"
        )
    grid = []
    for label, counts in rep.class_counts.items():
        grid.append(
            f"<div><b>{_e(label)}</b> ({_e(rep.levels.get(label, '?'))})"
            + _frame_html(_speaker_counts(counts), "class")
            + "</div>"
        )
    parts.append('<div class="grid">' + "".join(grid) + "</div>")

    parts.append('<h2>4. Confusion matrices of the chosen models</h2><div class="grid">')
    for label in rep.confusion:
        parts.append(_img(rep, f"confusion_{label}", f"confusion matrix {label}", label))
    parts.append("</div>")

    parts.append("<h2>5. Every configuration run</h2><p>Click a column header to sort.</p>")
    # the error line goes under the status (one column less, so the table fits the page)
    columns = [c for c in EXPERIMENT_COLUMNS if c[0] != "error"]
    status_at = [k for k, _ in columns].index("status")
    rows, sorts, rclass = [], [], []
    for _, r in rep.experiments.iterrows():
        cells = _experiment_cells(r)[: len(columns)]
        err = _experiment_cells(r)[-1]
        if err:
            cells[status_at] = Html(f'{_e(r["status"])}<div class="err">{_e(err)}</div>')
        rows.append(cells)
        values = [r.get(k) for k, _ in columns]
        sorts.append(
            ["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        )
        rclass.append("failed" if r["status"] == "failed" else "")
    parts.append(
        '<div class="wide">'
        + _html_table(
            [h for _, h in columns], rows, cls="sortable", row_classes=rclass, sort_values=sorts
        )
        + "</div>"
    )
    if rep.notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in rep.notes) + "</ul>")
    parts.append(f"</main><script>{SORT_JS}</script></body></html>")
    return "\n".join(parts)


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
