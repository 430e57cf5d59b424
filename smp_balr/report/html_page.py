"""The presence report's HTML page: its Jinja2 template, style sheet and table-sorting script.

:func:`smp_balr.report.document.to_html` renders :data:`PAGE` with autoescape on: every value
the template is given (label and class names, error lines, notes) reaches the page as text.
Only :data:`CSS` and :data:`SORT_JS`, constants of this module, are written as they are
(``| safe``).

The template gets ``rep`` (the :class:`~smp_balr.report.document.PresenceReport`), ``images``
(figure name -> base64 PNG) and the tables as plain data: a table is ``{head, cls, rows}``,
a row ``{cls, cells}``, a cell ``{text, cls, sort, err}`` (``sort``: the ``data-v`` value the
script sorts on, None for none; ``err``: an error line shown under the text).
"""

from __future__ import annotations

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
background:#f6f7f9;color:#1d2430;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff;
box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.7em;margin:.2em 0 .1em}
h2{border-bottom:2px solid #e3e6ea;padding-bottom:4px;margin-top:2em}
h3{margin-bottom:.3em}
.meta{color:#5b6573;margin-top:0}
.note{background:#f1f5fb;border-left:4px solid #4a78b5;padding:8px 12px;font-size:.93em}
table{border-collapse:collapse;margin:10px 0 18px;font-size:.9em}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
.present{color:#fff;background:#1b7837!important;font-weight:600}
.notshown{background:#eceff2!important;color:#444}
.failed td{color:#8a1c1c}
.warn{color:#8a4b00;background:#fff6e5;border-left:4px solid #e69500;padding:6px 10px;margin:4px 0;
list-style:none}
ul.warnings{padding-left:0}
figure{margin:10px 0}
img{max-width:100%;height:auto;border:1px solid #e3e6ea}
.grid{display:flex;flex-wrap:wrap;gap:18px}
.grid figure{flex:0 1 auto}
figcaption{font-size:.85em;color:#5b6573}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th:after{content:" \\2195";color:#9aa3ad;font-size:.8em}
.bas{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-word;
max-width:720px}
.wide{overflow-x:auto}
table.sortable{font-size:.8em}
table.sortable td,table.sortable th{padding:3px 5px}
.err{font-size:.9em;max-width:250px;white-space:normal;margin-top:2px;
font-family:ui-monospace,Menlo,Consolas,monospace}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),
        asc=th.dataset.dir!=='asc';
      t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});
      th.dataset.dir=asc?'asc':'desc';
      function key(r){var c=r.cells[i],v=c.dataset.v!==undefined?c.dataset.v:c.textContent;
        var n=parseFloat(v);return isNaN(n)?v.toLowerCase():n}
      rows.sort(function(a,b){var x=key(a),y=key(b);if(typeof x!==typeof y){x=String(x);
        y=String(y)}return (x<y?-1:x>y?1:0)*(asc?1:-1)});
      rows.forEach(function(r){body.appendChild(r)});
    });
  });
});
"""

PAGE = """\
{% macro table(t) -%}
<table{% if t.cls %} class="{{ t.cls }}"{% endif %}><thead><tr>
  {%- for h in t.head %}<th>{{ h }}</th>{% endfor -%}
</tr></thead><tbody>
{% for row in t.rows %}
<tr{% if row.cls %} class="{{ row.cls }}"{% endif %}>
  {%- for c in row.cells -%}
  <td{% if c.cls %} class="{{ c.cls }}"{% endif %}
    {%- if c.sort is not none %} data-v="{{ c.sort }}"{% endif %}>{{ c.text }}
    {%- if c.err %}<div class="err">{{ c.err }}</div>{% endif %}</td>
  {%- endfor -%}
</tr>
{% endfor %}
</tbody></table>
{%- endmacro %}
{% macro figure(name, alt) -%}
{% if name in images %}
<figure><img alt="{{ alt }}" src="data:image/png;base64,{{ images[name] }}">
  {%- if caller is defined %}<figcaption>{{ caller() }}</figcaption>{% endif %}</figure>
{% endif %}
{%- endmacro %}
<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Presence of modalities in the BAs</title>
<style>{{ css | safe }}</style></head><body><main>
<h1>Presence of modalities in the BAs</h1>
<p class="meta">Built {{ rep.generated }} · verdicts at alpha = {{ rep.alpha }}
({{ rep.correction }} across the labels) · {{ n_runs }} runs</p>

<h2>1. Presence</h2>
<p class="note"><b>Rule.</b> {{ rep.rule }}</p>
<p class="note">{{ choice_note }}</p>
<div class="wide">{{ table(presence) }}</div>
{% if warnings %}
<ul class="warnings">
{% for label, text in warnings %}
<li class="warn"><b>{{ label }}</b>: {{ text }}</li>
{% endfor %}
</ul>
{% endif %}
{% call figure("presence", "normalised balanced accuracy per label") -%}
Chosen configuration per label: (balanced accuracy - chance) / (1 - chance) on the test
speakers, with its speaker-bootstrap 95% interval; 0 is chance.
{%- endcall %}

<h2>2. Which BAs</h2>
<p class="note">{{ profile_note }}</p><p>{{ profile }}</p>
{% call figure("effects", "BA effects across labels") -%}
Associated BAs: difference of activation frequency, class vs the others (blank: not associated).
{%- endcall %}
{% for b in label_bas %}
<h3>{{ b.label }}</h3>
<p><b>Associated BAs</b> (marginal, per BA)</p>
<ul class="bas">
{% for line in b.lines %}
<li>{{ line }}</li>
{% endfor %}
</ul>
<p><b>Jointly needed BAs</b> (selectors)</p>
{{ table(b.selectors) }}
<div class="grid">
{% if b.agreement %}
<div><b>Jaccard agreement</b>{{ table(b.agreement) }}</div>
{% endif %}
{% if b.shap %}
<div><b>Top SHAP BAs of the chosen model</b><ol class="bas">
{% for ba in b.shap %}
<li>{{ ba }}</li>
{% endfor %}
</ol></div>
{% endif %}
</div>
{% endfor %}
<h3>BAs shared across labels</h3>
{% if has_shared %}
{% call figure("shared", "BAs shared across labels") -%}
Cell: number of sources (selectors other than all, SHAP top list) naming the BA for the label.
{%- endcall %}
{% else %}
<p>No BA matters for more than one label.</p>
{% endif %}

<h2>3. Confounds</h2>
<p>Cramér's V (bias-corrected) between every pair of labels, on utterances and on speakers
(each speaker once, with its most frequent value). Pairs at or above {{ rep.confound_v }} are
outlined: for them, &ldquo;present&rdquo; may mean &ldquo;the other label is present&rdquo;.</p>
{{ figure("association", "Cramér's V between labels") }}
{% if rep.confounds %}
<ul class="warnings">
{% for c in rep.confounds %}
<li class="warn">{{ c.a }} and {{ c.b }} are nearly the same partition
(V = {{ "%.2f" | format(c.v) }} on {{ c.where }})</li>
{% endfor %}
</ul>
{% endif %}
<div class="grid">
{% for c in class_counts %}
<div><b>{{ c.label }}</b> ({{ c.level }}){{ table(c.table) }}</div>
{% endfor %}
</div>

<h2>4. Confusion matrices of the chosen models</h2>
<div class="grid">
{% for label in rep.confusion %}
{% call figure("confusion_" ~ label, "confusion matrix " ~ label) %}{{ label }}{% endcall %}
{% endfor %}
</div>

<h2>5. Every configuration run</h2>
<p>Click a column header to sort.</p>
<div class="wide">{{ table(runs) }}</div>
{% if rep.notes %}
<ul>
{% for note in rep.notes %}
<li>{{ note }}</li>
{% endfor %}
</ul>
{% endif %}
</main><script>{{ sort_js | safe }}</script></body></html>
"""
