"""The comparison's reports: ``compare.json``, ``compare.md`` and a self-contained ``report.html``.

Every report leads with **correctness** (execution match where answers run, else equivalence to the
gold answer; component F1 and ungrounded literals beside it), not validity: a valid answer to another
question is a wrong answer. Outputs are coloured green when correct, amber when valid but wrong (or
surrounded by text), red when invalid or reasoning; each model has an error taxonomy (the expert's kind's:
:meth:`~expertkit.kinds.OutputKind.error_kinds`). The summary's columns are the generic ones and those the
kind adds (:attr:`~expertkit.kinds.OutputKind.report_columns`).

``report.html`` needs nothing but itself: the correctness-vs-step plot is a PNG embedded as base64, the
styles are inline, and every text from the data (prompts, outputs, errors) is HTML-escaped. All three
files are written atomically. The console summary (rich tables) is built here too.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment
from rich import box
from rich.console import Console
from rich.table import Table

from expertkit.core.checkpoints import COMPARE_REPORT_NAME
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import atomic_write_json, atomic_write_text
from expertkit.kinds import OutputKind, kind_class
from expertkit.kinds.correctness import ErrorKind, error_taxonomy, in_taxonomy_order

JSON_NAME = COMPARE_REPORT_NAME
MD_NAME = "compare.md"
HTML_NAME = "report.html"
#: The files ``compare`` writes: a folder holding one of them is an earlier report, replaced by the next.
REPORT_NAMES = (JSON_NAME, MD_NAME, HTML_NAME)
#: Summary columns: report key, header and legend, correctness first.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("correct", "correct", "same result as the gold answer when run, else equivalent to it"),
    ("component_f1", "F1", "component F1 of the answer's (clause, field, operator, value) parts against the gold's"),
    ("equivalent", "equiv", "equivalent to the gold"),
    ("execution_match", "exec", "same result as the gold when run"),
    ("ungrounded", "ungr.", "valid answers with a literal neither in the question nor among the field's known "
                            "values"),
    ("valid", "valid", "answer valid (not necessarily right)"),
    ("reasoning", "reason", "output holds reasoning"),
    ("direct_valid", "direct", "valid with nothing else"),
    ("answer_with_text", "+text", "valid with a fence, label or trailing text"),
    ("mean_output_tokens", "tokens", "mean output tokens"),
    ("mean_latency_s", "ms/out", "latency per output"),
    ("outputs_per_s", "out/s", "outputs per second"),
)
#: The columns of every kind; the others are shown where the expert's kind adds them
#: (:attr:`~expertkit.kinds.OutputKind.report_columns`).
GENERIC_COLUMNS = ("correct", "valid", "reasoning", "direct_valid", "answer_with_text", "mean_output_tokens",
                   "mean_latency_s", "outputs_per_s")
#: Columns left out of the console table (to keep it narrow); compare.md and report.html have them.
SPEED_KEYS = ("mean_output_tokens", "mean_latency_s", "outputs_per_s")
#: Metrics drawn in the plot: key, colour, line style, line width (correctness bold, validity dashed).
PLOTTED: tuple[tuple[str, str, str, float], ...] = (
    ("correct", "tab:green", "-", 2.8),
    ("component_f1", "tab:blue", "-", 1.5),
    ("equivalent", "tab:purple", "-", 1.5),
    ("valid", "tab:gray", "--", 1.5),
    ("reasoning", "tab:red", "-", 1.5),
)
#: Outcome of one output → CSS class: green correct, amber valid but wrong, red invalid or reasoning.
OUTCOME_CSS = {"correct": "ok", "valid_wrong": "warn", "failed": "fail"}
#: Cases listed in compare.md where the best checkpoint fails.
MD_FAILURES = 20


def fmt(key: str, value: Any) -> str:
    """A metric for people: rates in percent, drops in points, latency in ms, ``—`` for not applicable."""
    if value is None:
        return "—"
    if key in ("drop", "valid_drop"):
        return f"{value * 100:.1f} pts"
    if key == "mean_latency_s":
        return f"{value * 1000:.1f}"
    if key in ("mean_output_tokens", "outputs_per_s"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    return str(value)


def _kind(report: Mapping[str, Any]) -> type[OutputKind] | None:
    """The class of the report's output kind; ``None`` where it cannot be loaded here (a plug-in not installed)."""
    try:
        return kind_class(str(report.get("output_kind", "")))
    except ExpertkitError:
        return None


def _columns(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Summary columns of the kind with a value for some model (all with a value where the kind is unknown
    here); ``equiv`` only where correctness is execution match (elsewhere it is the ``correct`` column)."""
    models = report["models"]
    runs = any(m.get("execution_match") is not None for m in models)
    kind = _kind(report)
    shown = None if kind is None else {*GENERIC_COLUMNS, *kind.report_columns}
    return [(k, h) for k, h, _ in COLUMNS
            if (shown is None or k in shown) and any(m.get(k) is not None for m in models)
            and (k != "equivalent" or runs)]


def _legend(columns: Sequence[tuple[str, str]]) -> str:
    """What each shown column means, one line."""
    meaning = {k: text for k, _, text in COLUMNS}
    return " · ".join(f"{h}: {meaning[k]}" for k, h in columns)


def _is_best(report: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    best = report.get("best")
    return bool(best) and best["name"] == row["name"]


def outcome(output: Mapping[str, Any]) -> str:
    """``correct`` (a direct answer, correct — or valid where there is no gold), ``valid_wrong`` (valid
    and no reasoning, but wrong or with text around it) or ``failed`` (invalid, or reasoning)."""
    if output["verdict"] in ("direct_valid", "answer_with_text"):
        if output.get("correct") is not False and output["verdict"] == "direct_valid":
            return "correct"
        return "valid_wrong"
    return "failed"


def _taxonomy(report: Mapping[str, Any]) -> dict[str, ErrorKind]:
    """The error kinds of the report's output kind by name (the generic ones where it cannot be loaded)."""
    kind = _kind(report)
    return {e.name: e for e in (kind.error_kinds() if kind is not None else error_taxonomy())}


def _error_kind(report: Mapping[str, Any], name: str) -> ErrorKind:
    """The error kind ``name`` (one the taxonomy does not hold is shown by its name)."""
    return _taxonomy(report).get(name) or ErrorKind(name, name, name.replace("_", " "))


def _error_kinds(report: Mapping[str, Any]) -> list[str]:
    """Error kinds that some model has, in taxonomy order (any the taxonomy does not hold last)."""
    found = [k for m in report["models"] for k, n in m.get("errors", {}).items() if n]
    return in_taxonomy_order(found, _taxonomy(report).values())


def _correct_basis(report: Mapping[str, Any]) -> str:
    runs = any(m.get("execution_match") is not None for m in report["models"])
    return "same result as the gold answer when run" if runs else "equivalent to the gold answer"


def headline(report: Mapping[str, Any]) -> str:
    """One line for people: the best checkpoint's correctness first, validity after it."""
    best = report.get("best")
    row = next((m for m in report["models"] if best and m["name"] == best["name"]), None)
    if row is None:
        row = report["models"][-1]
    if row.get("correct") is None:
        return f"{row['name']}: valid {fmt('valid', row.get('valid'))} (no gold answers: correctness unknown)"
    parts = [f"{row['name']}: correct {fmt('correct', row['correct'])} ({_correct_basis(report)})"]
    if row.get("component_f1") is not None:
        parts.append(f"component F1 {fmt('component_f1', row['component_f1'])}")
    parts.append(f"valid {fmt('valid', row.get('valid'))}")
    line = ", ".join(parts)
    if (row.get("valid") or 0) - row["correct"] >= 0.2:
        line += " — most valid answers answer another question: validity is not success"
    return line


# ---------------------------------------------------------------------- console
def summary_table(report: Mapping[str, Any]) -> Table:
    """The per-model summary as a rich table, correctness first; the best checkpoint is starred."""
    table = Table(title=f"{report['expert']}: {report['models'][0]['cases']} cases, best by {report['metric']}",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model", no_wrap=True)
    cols = [c for c in _columns(report) if c[0] not in SPEED_KEYS]  # speed: in compare.md and report.html
    for _, header in cols:
        table.add_column(header, justify="right", no_wrap=True)
    for row in report["models"]:
        name = row["name"] + (" ★" if _is_best(report, row) else "")
        table.add_row(name, *(fmt(key, row.get(key)) for key, _ in cols),
                      style="bold green" if _is_best(report, row) else None)
    return table


def errors_table(report: Mapping[str, Any]) -> Table:
    """Per model, how many outputs have each kind of error (an output can have several)."""
    kinds = _error_kinds(report)
    short = {k: _error_kind(report, k).short for k in kinds}
    caption = " · ".join(f"{short[k]}: {k.replace('_', ' ')}" for k in kinds)
    table = Table(title="errors (outputs with each kind)", caption=caption, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model", no_wrap=True)
    for kind in kinds:
        table.add_column(short[kind], justify="right", no_wrap=True)
    for row in report["models"]:
        table.add_row(row["name"], *(str(row.get("errors", {}).get(k, 0)) for k in kinds))
    return table


def drift_table(drift: Mapping[str, Any]) -> Table:
    """Drift kinds with the metric before and after, and the drop."""
    metric = drift["metric"]
    table = Table(title=f"drift on {drift['model']} ({metric})", box=box.SIMPLE_HEAD)
    for col in ("drift", "cases", "clean", "drifted", "drop", "reason"):
        table.add_column(col, justify="left" if col == "drift" else "right", no_wrap=True)
    for k in drift["kinds"]:
        if not k["applicable"]:
            table.add_row(k["kind"], "0", "—", "—", "n/a", "—")
            continue
        table.add_row(k["kind"], str(k["cases"]), fmt(metric, k["baseline"][metric]), fmt(metric, k["drifted"][metric]),
                      fmt("drop", k["drop"]), fmt("reasoning", k["drifted"]["reasoning"]))
    return table


def print_summary(report: Mapping[str, Any], console: Console) -> None:
    """Print the summary and error tables, the best checkpoint and, when present, the drift table."""
    console.print(summary_table(report))
    if _error_kinds(report):
        console.print(errors_table(report))
    best = report.get("best")
    if best:
        value = fmt(best["metric"], best["value"])
        console.print(f"best checkpoint: [bold]{best['name']}[/bold] ({best['metric']} {value})")
    console.print(headline(report), highlight=False)
    if report.get("drift"):
        console.print(drift_table(report["drift"]))


# ---------------------------------------------------------------------- markdown
def _md_text(text: Any) -> str:
    """Text for a markdown table cell or list item: one line, HTML special characters escaped."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _md_code(text: Any) -> str:
    """A one-line code span that no backtick inside can close early (CommonMark)."""
    body = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    return f"{fence} {body} {fence}" if body.startswith("`") or body.endswith("`") else f"{fence}{body}{fence}"


def _failed(output: Mapping[str, Any]) -> bool:
    """Not a direct, correct answer."""
    return outcome(output) != "correct"


def build_markdown(report: Mapping[str, Any]) -> str:
    """``compare.md``: headline (correctness), summary, error taxonomy, best checkpoint, drift, and the cases
    the best checkpoint gets wrong."""
    cols = _columns(report)
    lines = [
        f"# {report['expert']} — checkpoint comparison",
        "",
        f"**{_md_text(headline(report))}**",
        "",
        f"- contract fingerprint: `{report['fingerprint']}`",
        f"- base: {_md_code(report['base'])}; run: {_md_code(report['run'])}; engine: {report['engine']}",
        f"- cases: {report['models'][0]['cases']} from {_md_code(report['cases_source'])}",
        f"- metric for the best checkpoint: `{report['metric']}` ({_tie_text(report)})",
        "",
        "| model | step | " + " | ".join(h for _, h in cols) + " |",
        "|---|---:|" + "---:|" * len(cols),
    ]
    for row in report["models"]:
        name = f"**{row['name']}** ★" if _is_best(report, row) else row["name"]
        step = "" if row["step"] is None else str(row["step"])
        cells = [fmt(key, row.get(key)) for key, _ in cols]
        lines.append(f"| {name} | {step} | " + " | ".join(cells) + " |")
    best = report.get("best")
    pick = f"**Best checkpoint: {best['name']}** ({best['metric']} {fmt(best['metric'], best['value'])})" \
        if best else "No checkpoint to pick."
    lines += ["", _legend(cols), "", pick, ""]
    kinds = _error_kinds(report)
    if kinds:
        lines += ["## Errors", "", "Outputs with each kind of error (an output can have several).", "",
                  "| model | " + " | ".join(k.replace("_", " ") for k in kinds) + " |",
                  "|---|" + "---:|" * len(kinds)]
        for row in report["models"]:
            lines.append(f"| {row['name']} | " + " | ".join(str(row['errors'].get(k, 0)) for k in kinds) + " |")
        lines += [""] + [f"- {k.replace('_', ' ')}: {_error_kind(report, k).description}"
                                for k in kinds] + [""]
    lines += _training_markdown(report)
    drift = report.get("drift")
    if drift:
        metric = drift["metric"]
        lines += [f"## Drift on {drift['model']}", "",
                  f"| drift | what | cases | {metric} clean | {metric} drifted | drop |",
                  "|---|---|---:|---:|---:|---:|"]
        for k in drift["kinds"]:
            if k["applicable"]:
                lines.append(f"| {k['kind']} | {_md_text(k['description'])} | {k['cases']} "
                             f"| {fmt(metric, k['baseline'][metric])} | {fmt(metric, k['drifted'][metric])} "
                             f"| {fmt('drop', k['drop'])} |")
            else:
                lines.append(f"| {k['kind']} | {_md_text(k['description'])} | 0 | — | — | n/a |")
        lines.append("")
    if best:
        failing = [c for c in report["cases"] if _failed(c["outputs"][best["name"]])]
        lines += [f"## Cases {best['name']} gets wrong ({len(failing)})", "",
                  "Not a direct, correct answer.", ""]
        for c in failing[:MD_FAILURES]:
            o = c["outputs"][best["name"]]
            fields = ", ".join(f"{k}={v}" for k, v in c["fields"].items() if "\n" not in v)
            kinds_text = ", ".join(o.get("error_kinds") or []) or "—"
            lines += [f"- line {c['line']} ({_md_text(fields)}): {_md_text(c['question'])}",
                      f"  - gold: {_md_code(c['gold'] or '—')}",
                      f"  - output ({o['verdict']}; {kinds_text}): {_md_code(o['output'][:300] or '(empty)')}",
                      f"  - errors: {_md_text('; '.join(o['errors'])[:300]) or '—'}"]
            if o.get("ungrounded"):
                lines.append(f"  - ungrounded: {_md_text(', '.join(o['ungrounded']))}")
        if len(failing) > MD_FAILURES:
            lines.append(f"- … and {len(failing) - MD_FAILURES} more (see compare.json or report.html)")
        lines.append("")
    return "\n".join(lines)


def _training_markdown(report: Mapping[str, Any]) -> list[str]:
    """The scores recorded while training (``train --eval-every``), when the run has them."""
    training = report.get("training") or {}
    rows = training.get("evaluations") or []
    if not rows:
        return []
    metric = report["metric"]
    reused = sum(int(m.get("reused") or 0) for m in report["models"])
    lines = ["## Scores recorded while training", "",
             f"{len(rows)} evaluation(s) during training; {reused} output(s) reused here instead of generated "
             "again.", "", f"| checkpoint | cases | {metric} | valid | correct | seconds |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [fmt(key, r.get(key)) for key in (metric, "valid", "correct")]
        lines.append(f"| {r.get('name')} | {r.get('cases')} | " + " | ".join(cells) + f" | {r.get('seconds')} |")
    stopped = training.get("stopped")
    if isinstance(stopped, dict):
        lines += ["", f"Training stopped early: {_md_text(stopped.get('reason', ''))}."]
    return [*lines, ""]


def _tie_text(report: Mapping[str, Any]) -> str:
    best = report.get("best") or {}
    ties = best.get("tie_breaks") or []
    return f"ties broken by {', then '.join(ties)}, then the earliest step" if ties else "ties go to the earliest step"


# ---------------------------------------------------------------------- html
def plot_png(models: Sequence[Mapping[str, Any]]) -> bytes:
    """Correctness (bold), component F1, validity (dashed) and reasoning against training step (the base
    at step 0) as a PNG; equivalence only where correctness is execution match."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.8), dpi=100)
    ax = fig.add_subplot()
    steps = [0 if m["step"] is None else m["step"] for m in models]
    runs = any(m.get("execution_match") is not None for m in models)
    for key, colour, style, width in PLOTTED:
        if key == "equivalent" and not runs:
            continue
        values = [m.get(key) for m in models]
        if all(v is None for v in values):
            continue
        ax.plot(steps, [float("nan") if v is None else v * 100 for v in values], marker="o", color=colour,
                linestyle=style, linewidth=width, label=key.replace("_", " "))
    ax.set_title("correctness against training step", fontsize="medium")
    ax.set_xlabel("training step (0 = base)")
    ax.set_ylabel("% of cases")
    ax.set_ylim(-2, 102)
    ax.set_xticks(steps)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ r.expert }} — checkpoint comparison</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
td.num { text-align: right; }
tr.best td { background: #e8f6e8; font-weight: 600; }
.fail { background: #fde8e8; }
.warn { background: #fff1c9; }
.ok { background: #dff5df; }
p.headline { font-size: 17px; font-weight: 600; }
.key span { padding: 1px 6px; margin-right: 6px; border: 1px solid #ccc; }
pre, code { font: 12px/1.3 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; margin: 0; }
.verdict { font-size: 11px; color: #555; }
details summary { cursor: pointer; color: #336; }
</style>
</head>
<body>
<h1>{{ r.expert }} — checkpoint comparison</h1>
<p class="headline" id="headline">{{ head }}</p>
<p>Contract fingerprint <code>{{ r.fingerprint }}</code>; base <code>{{ r.base }}</code>; run <code>{{ r.run }}</code>;
engine {{ r.engine }}; {{ r.models[0].cases }} cases from <code>{{ r.cases_source }}</code>.
Best by <b>{{ r.metric }}</b> ({{ ties }}):
{% if r.best %}<b id="best">{{ r.best.name }}</b> ({{ fmt(r.metric, r.best.value) }}){% else %}none{% endif %}.</p>
<table id="summary">
<thead><tr><th>model</th><th>step</th>{% for _, h in cols %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for m in r.models %}<tr{% if r.best and r.best.name == m.name %} class="best"{% endif %}><td>{{ m.name }}</td>
<td class="num">{{ "" if m.step is none else m.step }}</td>
{% for key, _ in cols %}<td class="num">{{ fmt(key, m[key]) }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
<p class="verdict">{{ legend }}</p>
{% if kinds %}<h2>Errors</h2>
<p>Outputs with each kind of error (an output can have several).</p>
<table id="errors">
<thead><tr><th>model</th>{% for k in kinds %}<th title="{{ descriptions[k] }}">{{ k.replace("_", " ") }}</th>
{% endfor %}</tr></thead>
<tbody>
{% for m in r.models %}<tr><td>{{ m.name }}</td>
{% for k in kinds %}<td class="num">{{ m.errors[k] }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
<ul class="verdict">{% for k in kinds %}<li>{{ k.replace("_", " ") }}: {{ descriptions[k] }}</li>{% endfor %}</ul>
{% endif %}
<img id="metrics-plot" alt="correctness against training step" src="data:image/png;base64,{{ plot }}">
{% if r.drift %}
<h2>Drift on {{ r.drift.model }}</h2>
<table id="drift">
<thead><tr><th>drift</th><th>what</th><th>cases</th><th>{{ r.drift.metric }} clean</th>
<th>{{ r.drift.metric }} drifted</th>
<th>drop</th><th>example prompt</th></tr></thead>
<tbody>
{% for k in r.drift.kinds %}<tr><td>{{ k.kind }}</td><td>{{ k.description }}</td><td class="num">{{ k.cases }}</td>
{% if k.applicable %}<td class="num">{{ fmt(r.drift.metric, k.baseline[r.drift.metric]) }}</td>
<td class="num">{{ fmt(r.drift.metric, k.drifted[r.drift.metric]) }}</td>
<td class="num">{{ fmt("drop", k.drop) }}</td>
<td><details><summary>prompt</summary><pre>{{ k.example_prompt }}</pre></details></td>
{% else %}<td>—</td><td>—</td><td>n/a</td><td></td>{% endif %}</tr>
{% endfor %}</tbody>
</table>
{% endif %}
<h2>Cases</h2>
<p class="key"><span class="ok">green: correct</span>
<span class="warn">amber: valid but wrong (or with text around it)</span>
<span class="fail">red: invalid, or reasoning</span></p>
<table id="cases">
<thead><tr><th>#</th><th>case</th><th>gold</th>{% for m in r.models %}<th>{{ m.name }}</th>{% endfor %}</tr></thead>
<tbody>
{% for c in r.cases %}<tr class="case"><td class="num">{{ loop.index }}</td>
<td>{{ c.question }}<br><details><summary>prompt</summary><pre>{{ c.prompt }}</pre></details></td>
<td><pre>{{ c.gold if c.gold is not none else "—" }}</pre></td>
{% for m in r.models %}{% set o = c.outputs[m.name] %}<td class="{{ css[outcome(o)] }}">
<pre>{{ o.answer or o.output or "(empty)" }}</pre><span class="verdict">{{ o.verdict }}
{%- if o.correct %} · correct{% endif %}{% if o.equivalent %} · equivalent{% endif %}
{%- if o.execution_match %} · same result{% endif %}
{%- if o.component %} · F1 {{ "%.2f" | format(o.component.f1) }}{% endif %}
{%- for k in o.error_kinds or [] %} · {{ k.replace("_", " ") }}{% endfor %}
{%- if o.ungrounded %} ({{ o.ungrounded | join(", ") }}){% endif %}</span>
{% if o.reasoning %}<details><summary>reasoning</summary><pre>{{ o.reasoning }}</pre></details>{% endif %}
{% if o.errors %}<details><summary>errors</summary><pre>{{ o.errors | join("\n") }}</pre></details>{% endif %}</td>
{% endfor %}</tr>
{% endfor %}</tbody>
</table>
</body>
</html>
"""


def build_html(report: Mapping[str, Any]) -> str:
    """``report.html``: summary, plot, drift, and every case with each model's answer (all escaped)."""
    env = Environment(autoescape=True, trim_blocks=False, lstrip_blocks=False)
    template = env.from_string(_HTML)
    plot = base64.b64encode(plot_png(report["models"])).decode("ascii")
    cols = _columns(report)
    kinds = _error_kinds(report)
    return template.render(r=report, cols=cols, fmt=fmt, plot=plot, css=OUTCOME_CSS, legend=_legend(cols),
                           outcome=outcome, head=headline(report), ties=_tie_text(report), kinds=kinds,
                           descriptions={k: _error_kind(report, k).description for k in kinds})


def write_reports(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.json``, ``compare.md`` and ``report.html`` atomically; return their paths by format
    (``json``, ``md``, ``html``)."""
    out = Path(out_dir)
    atomic_write_json(out / JSON_NAME, report)
    atomic_write_text(out / MD_NAME, build_markdown(report))
    atomic_write_text(out / HTML_NAME, build_html(report))
    return {Path(name).suffix[1:]: out / name for name in REPORT_NAMES}
