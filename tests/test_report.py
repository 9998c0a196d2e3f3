"""Reports: compare.json keys, compare.md, and report.html — escaped, self-contained, rendered by Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from _chromium import AMBER, GREEN, RED, render_in_chromium
from rich.console import Console

from expertkit.evaluation.compare import DRIFT_KINDS, VERDICTS, pick_best, score_output, summarize
from expertkit.evaluation.report import build_html, build_markdown, print_summary, write_reports
from expertkit.expert import Expert
from expertkit.models.base import shipped_experts_dir

FIELDS = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"}
GOLD = '{"query":{"term":{"FlightDelay":true}}}'
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
QUESTION = f"delayed flights {HOSTILE}"
WRONG = ['{"query":{"term":{"Cancelled":true}}}', '{"query":{"match_all":{}}}',
         '{"query":{"term":{"DestWeather":"Heco"}}}']
#: Outputs per model (base, then checkpoints): checkpoint-200 is always valid but mostly wrong,
#: checkpoint-100 less often valid but more often right.
OUTPUTS = {
    "base": ["<think>\nhmm", HOSTILE, "{", "Okay, so the user wants some flights"],
    "checkpoint-100": [f"<think>\nterm query\n</think>\n{GOLD}", "{", GOLD, f"```json\n{GOLD}\n```"],
    "checkpoint-200": [GOLD, *WRONG],
}


def make_report(drift: bool = True, metric: str = "equivalent") -> dict[str, Any]:
    """A report shaped like compare_run's, from real scores of hand-written outputs."""
    expert = Expert.load(shipped_experts_dir() / "elastic")
    prompt = expert.render(FIELDS, QUESTION)
    scores = {name: [score_output(expert, raw, FIELDS, GOLD, QUESTION) for raw in outs]
              for name, outs in OUTPUTS.items()}
    models = [{"name": name, "step": None if name == "base" else int(name.split("-")[1]), "path": "/x",
               "kind": "base" if name == "base" else "adapter", "contract_changes": [], "generation_s": 1.0,
               **summarize(s, 1.0)} for name, s in scores.items()]
    report: dict[str, Any] = {
        "version": 1, "expert": "elastic", "expert_version": "0.1.0", "fingerprint": expert.fingerprint,
        "output_kind": "elastic_dsl", "metric": metric, "run": "runs/x", "base": "tiny", "engine": "hf",
        "cases_source": "eval.jsonl", "max_new_tokens": 96, "batch_size": 32, "created": "now", "skipped": [],
        "models": models, "best": pick_best(models, metric),
        "cases": [{"line": i + 1, "fields": FIELDS, "question": QUESTION, "gold": GOLD, "prompt": prompt,
                   "outputs": {name: s[i].to_dict() for name, s in scores.items()}} for i in range(4)],
    }
    if drift:
        base = summarize(scores["checkpoint-200"])
        worse = summarize(scores["checkpoint-100"])
        report["drift"] = {"model": "checkpoint-200", "step": 200, "metric": "valid", "kinds": [
            {"kind": k, "description": HOSTILE, "cases": 4, "applicable": True, "baseline": base, "drifted": worse,
             "drop": base["valid"] - worse["valid"], "valid_drop": base["valid"] - worse["valid"],
             "example_prompt": prompt, "outputs": []} for k in DRIFT_KINDS]}
    return report


def test_json_md_html_written_atomically(tmp_path: Path) -> None:
    report = make_report()
    paths = write_reports(report, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["compare.json", "compare.md", "report.html"]
    data = json.loads(paths["json"].read_text())
    assert data == report
    # correctness picks the best checkpoint, not validity
    assert data["best"] == {"name": "checkpoint-100", "step": 100, "metric": "equivalent", "value": 0.75,
                            "tie_breaks": ["component_f1", "valid"]}
    assert [m["valid"] for m in data["models"]] == [0.0, 0.75, 1.0]
    assert [m["correct"] for m in data["models"]] == [0.0, 0.75, 0.25]
    assert set(data["models"][0]["verdicts"]) == set(VERDICTS)
    errors = [{k: n for k, n in m["errors"].items() if n} for m in data["models"]]
    assert errors == [
        {"broken_json": 2, "reasoning": 2},
        {"broken_json": 1, "reasoning": 1, "trailing_text": 1},
        # Cancelled for FlightDelay; match_all and a term on DestWeather for a term on FlightDelay, and
        # "Heco" is neither in the question nor among DestWeather's known values
        {"wrong_field": 1, "ungrounded_value": 1, "missing_clause": 2, "extra_clause": 2},
    ]
    md = paths["md"].read_text()
    assert md.splitlines()[2] == ("**checkpoint-100: correct 75.0% (equivalent to the gold answer), component F1 "
                                  "75.0%, valid 75.0%**")
    assert "| **checkpoint-100** ★ | 100 | 75.0% | 75.0% |" in md  # correct, then component F1 first
    assert "**Best checkpoint: checkpoint-100** (equivalent 75.0%)" in md
    assert "ties broken by component_f1, then valid, then the earliest step" in md
    assert "## Errors" in md and "| checkpoint-200 |" in md
    assert "## Drift on checkpoint-200" in md and "| alias |" in md
    assert "## Cases checkpoint-100 gets wrong (3)" in md  # the fenced one is right but not a clean answer
    assert "<script>" not in md and "&lt;script&gt;" in md


def test_validity_only_headline_warns_and_valid_stays_available() -> None:
    report = make_report(drift=False, metric="valid")
    assert report["best"]["name"] == "checkpoint-200"  # an expert that asks for validity gets it
    md = build_markdown(report)
    assert "checkpoint-200: correct 25.0%" in md and "validity is not success" in md


def test_html_escapes_everything_and_is_self_contained() -> None:
    html = build_html(make_report())
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;|im_start|&gt;system" in html  # the rendered prompt, escaped
    assert re.search(r'<img id="metrics-plot"[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', html)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    assert html.count('<tr class="case">') == 4
    assert 'td class="fail"' in html and 'td class="ok"' in html and 'td class="warn"' in html
    assert 'id="errors"' in html and "ungrounded value" in html


def test_markdown_without_drift_and_console_table() -> None:
    report = make_report(drift=False)
    assert "Drift" not in build_markdown(report)
    console = Console(record=True, width=100)
    print_summary(report, console)
    text = console.export_text()
    assert "checkpoint-100 ★" in text and "best checkpoint: checkpoint-100 (equivalent 75.0%)" in text
    assert text.index("correct") < text.index("valid")  # correctness leads
    assert "errors (outputs with each kind)" in text and "ungrounded" in text and "broken" in text
    assert "exec" not in text and "equiv " not in text  # execution match only for SQL; equiv is "correct" here


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install -y chromium); .ci/run installs it")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    paths = write_reports(make_report(), tmp_path / "out")
    attrs = render_in_chromium(paths["html"], tmp_path)
    complete, natural_w, natural_h, shown_w, shown_h = attrs["img"].split(",")
    assert complete == "true" and int(natural_w) == 750 and int(natural_h) == 380
    assert int(shown_w) > 0 and int(shown_h) > 0
    assert attrs["summary"] == "3" and attrs["cases"] == "4" and attrs["drift"] == str(len(DRIFT_KINDS))
    assert attrs["best"] == "checkpoint-100"
    # green correct, amber valid but wrong (or with text), red invalid or reasoning, as the browser paints them
    assert attrs["colours"] == f"{GREEN};{AMBER};{RED}"
    assert attrs["counts"] == "2,4,6"
    assert attrs["headline"].startswith("checkpoint-100: correct 75.0%") and attrs["errors"] == "3"
    assert attrs["scripts"] == "1"  # the probe only: the hostile text stayed text
