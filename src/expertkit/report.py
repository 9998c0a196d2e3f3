"""The comparison's reports: ``compare.json``, ``compare.md`` and a self-contained ``report.html``.

``report.html`` needs nothing but itself: the metrics-vs-step plot is a PNG embedded as base64, the
styles are inline, and every text from the data (prompts, outputs, errors) is HTML-escaped. All three
files are written atomically. The console summary (a rich table) is built here too.
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

from expertkit.fileio import atomic_write_json, atomic_write_text

JSON_NAME = "compare.json"
MD_NAME = "compare.md"
HTML_NAME = "report.html"
#: Summary columns: report key and header.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("valid", "valid"),
    ("equivalent", "equiv"),
    ("execution_match", "exec"),
    ("reasoning", "reason"),
    ("direct_valid", "direct"),
    ("mean_output_tokens", "tokens"),
    ("mean_latency_s", "ms/out"),
    ("outputs_per_s", "out/s"),
)
LEGEND = ("valid: answer valid · equiv: equivalent to gold · exec: same result as gold when run · "
          "reason: output holds reasoning · direct: valid with no reasoning · tokens: mean output tokens · "
          "ms/out: latency per output · out/s: outputs per second")
#: Metrics drawn in the plot, with colour and line style (direct valid dashed: it often equals valid).
PLOTTED: tuple[tuple[str, str, str], ...] = (
    ("valid", "tab:green", "-"),
    ("equivalent", "tab:blue", "-"),
    ("execution_match", "tab:purple", "-"),
    ("direct_valid", "tab:olive", "--"),
    ("reasoning", "tab:red", "-"),
)
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


def _columns(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Summary columns; execution match only for experts whose answers can run."""
    return [c for c in COLUMNS if c[0] != "execution_match" or report.get("output_kind") == "sql"]


def _is_best(report: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    best = report.get("best")
    return bool(best) and best["name"] == row["name"]


# ---------------------------------------------------------------------- console
def summary_table(report: Mapping[str, Any]) -> Table:
    """The per-model summary as a rich table; the best checkpoint is starred."""
    table = Table(title=f"{report['expert']}: {report['models'][0]['cases']} cases, best by {report['metric']}",
                  box=box.SIMPLE_HEAD)
    table.add_column("model", no_wrap=True)
    cols = _columns(report)
    for _, header in cols:
        table.add_column(header, justify="right", no_wrap=True)
    for row in report["models"]:
        name = row["name"] + (" ★" if _is_best(report, row) else "")
        table.add_row(name, *(fmt(key, row.get(key)) for key, _ in cols),
                      style="bold green" if _is_best(report, row) else None)
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
    """Print the summary table, the best checkpoint and, when present, the drift table."""
    console.print(summary_table(report))
    best = report.get("best")
    if best:
        value = fmt(best["metric"], best["value"])
        console.print(f"best checkpoint: [bold]{best['name']}[/bold] ({best['metric']} {value})")
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
    """Not a direct, valid answer, or not equivalent to the gold one."""
    return output["verdict"] != "direct_valid" or output["equivalent"] is False


def build_markdown(report: Mapping[str, Any]) -> str:
    """``compare.md``: summary, best checkpoint, drift, and the cases the best checkpoint fails."""
    cols = _columns(report)
    lines = [
        f"# {report['expert']} — checkpoint comparison",
        "",
        f"- contract fingerprint: `{report['fingerprint']}`",
        f"- base: {_md_code(report['base'])}; run: {_md_code(report['run'])}; engine: {report['engine']}",
        f"- cases: {report['models'][0]['cases']} from {_md_code(report['cases_source'])}",
        f"- metric for the best checkpoint: `{report['metric']}` (ties go to the earliest step)",
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
    lines += ["", LEGEND, "", pick, ""]
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
                  "Not a direct, valid answer, or not equivalent to the gold answer.", ""]
        for c in failing[:MD_FAILURES]:
            o = c["outputs"][best["name"]]
            fields = ", ".join(f"{k}={v}" for k, v in c["fields"].items() if "\n" not in v)
            equivalent = "" if o["equivalent"] is None else f", equivalent: {'yes' if o['equivalent'] else 'no'}"
            lines += [f"- line {c['line']} ({_md_text(fields)}): {_md_text(c['question'])}",
                      f"  - gold: {_md_code(c['gold'] or '—')}",
                      f"  - output ({o['verdict']}{equivalent}): {_md_code(o['output'][:300] or '(empty)')}",
                      f"  - errors: {_md_text('; '.join(o['errors'])[:300]) or '—'}"]
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


# ---------------------------------------------------------------------- html
def plot_png(models: Sequence[Mapping[str, Any]], output_kind: str) -> bytes:
    """Metrics against training step (the base at step 0) as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.8), dpi=100)
    ax = fig.add_subplot()
    steps = [0 if m["step"] is None else m["step"] for m in models]
    for key, colour, style in PLOTTED:
        if key == "execution_match" and output_kind != "sql":
            continue
        values = [m.get(key) for m in models]
        if all(v is None for v in values):
            continue
        ax.plot(steps, [float("nan") if v is None else v * 100 for v in values], marker="o", color=colour,
                linestyle=style, label=key.replace("_", " "))
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
td.fail { background: #fde8e8; }
td.warn { background: #fff6dc; }
td.ok { background: #f2fbf2; }
pre, code { font: 12px/1.3 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; margin: 0; }
.verdict { font-size: 11px; color: #555; }
details summary { cursor: pointer; color: #336; }
</style>
</head>
<body>
<h1>{{ r.expert }} — checkpoint comparison</h1>
<p>Contract fingerprint <code>{{ r.fingerprint }}</code>; base <code>{{ r.base }}</code>; run <code>{{ r.run }}</code>;
engine {{ r.engine }}; {{ r.models[0].cases }} cases from <code>{{ r.cases_source }}</code>.
Best by <b>{{ r.metric }}</b> (ties go to the earliest step):
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
<img id="metrics-plot" alt="metrics against training step" src="data:image/png;base64,{{ plot }}">
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
<p>Green: direct and valid. Yellow: valid after reasoning. Red: reasoning only, or invalid.</p>
<table id="cases">
<thead><tr><th>#</th><th>case</th><th>gold</th>{% for m in r.models %}<th>{{ m.name }}</th>{% endfor %}</tr></thead>
<tbody>
{% for c in r.cases %}<tr class="case"><td class="num">{{ loop.index }}</td>
<td>{{ c.question }}<br><details><summary>prompt</summary><pre>{{ c.prompt }}</pre></details></td>
<td><pre>{{ c.gold if c.gold is not none else "—" }}</pre></td>
{% for m in r.models %}{% set o = c.outputs[m.name] %}<td class="{{ css[o.verdict] }}">
<pre>{{ o.answer or o.output or "(empty)" }}</pre><span class="verdict">{{ o.verdict }}
{%- if o.equivalent %} · equivalent{% endif %}{% if o.execution_match %} · same result{% endif %}</span>
{% if o.reasoning %}<details><summary>reasoning</summary><pre>{{ o.reasoning }}</pre></details>{% endif %}
{% if o.errors %}<details><summary>errors</summary><pre>{{ o.errors | join("\n") }}</pre></details>{% endif %}</td>
{% endfor %}</tr>
{% endfor %}</tbody>
</table>
</body>
</html>
"""
_CSS = {"direct_valid": "ok", "reasoning_and_valid": "warn", "reasoning_only": "fail", "invalid": "fail"}


def build_html(report: Mapping[str, Any]) -> str:
    """``report.html``: summary, plot, drift, and every case with each model's answer (all escaped)."""
    env = Environment(autoescape=True, trim_blocks=False, lstrip_blocks=False)
    template = env.from_string(_HTML)
    plot = base64.b64encode(plot_png(report["models"], report.get("output_kind", ""))).decode("ascii")
    return template.render(r=report, cols=_columns(report), fmt=fmt, plot=plot, css=_CSS, legend=LEGEND)


def write_reports(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.json``, ``compare.md`` and ``report.html`` atomically; return their paths."""
    out = Path(out_dir)
    paths = {"json": out / JSON_NAME, "md": out / MD_NAME, "html": out / HTML_NAME}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["md"], build_markdown(report))
    atomic_write_text(paths["html"], build_html(report))
    return paths
