"""Manifest validation and the contract-level CLI commands (render, lint, check-prompt), bad input included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from expertkit import load_manifest, parse_manifest
from expertkit.core.errors import ExpertkitError

GOOD = """name: demo
output:
  kind: json
contract:
  fields:
    - name: Dialect
      values: [elastic]
      aliases: {elasticsearch: elastic}
    - name: Task
      values: [query_dsl]
"""


def run_cli(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expertkit.cli", *map(str, args)], capture_output=True, text=True,
                          input=stdin, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def expert_dir(tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    (d / "data").mkdir(parents=True)
    (d / "expert.yaml").write_text(GOOD)
    rows = [{"fields": {"Dialect": "elastic", "Task": "query_dsl"}, "question": f"q{i}", "answer": "{}"}
            for i in range(3)]
    (d / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "data" / "eval.jsonl").write_text(json.dumps({**rows[0], "question": "other"}) + "\n")
    return d


def test_manifest_defaults() -> None:
    m = parse_manifest(GOOD)
    assert m.base_model == "Qwen/Qwen3-0.6B" and m.contract.wrapper == "qwen3"
    assert m.training.method == "lora" and m.evaluation.metric == "valid"


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (GOOD + "colour: red\n", 11, "colour"),
        (GOOD + "training:\n  lr: 3\n", 12, "training.lr"),
        (GOOD + "training:\n  batch_size: many\n", 12, "training.batch_size"),
        (GOOD.replace("kind: json", "kind: xml"), 3, "output.kind"),
        (GOOD.replace("    - name: Task\n", "    - nome: Task\n"), 9, "contract.fields.1"),
        ("name: demo\nbad: [unclosed\n", 3, None),
    ],
)
def test_bad_manifest_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str | None) -> None:
    (tmp_path / "expert.yaml").write_text(text)
    with pytest.raises(ExpertkitError) as info:
        load_manifest(tmp_path)
    err = info.value
    assert err.path and err.path.endswith("expert.yaml")
    assert err.line == line
    if key:
        assert err.key is not None and err.key.startswith(key)


def test_render_cli_prints_exact_prompt_and_fingerprint(expert_dir: Path) -> None:
    proc = run_cli("render", expert_dir, "--field", "Dialect=elasticsearch", "--field", "Task=query_dsl",
                   "--question", "All of it", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["prompt"].startswith("<|im_start|>system\nDialect: elastic\nTask: query_dsl<|im_end|>")
    assert data["prompt"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert len(data["fingerprint"]) == 16


def test_lint_cli_exit_codes(expert_dir: Path) -> None:
    assert run_cli("lint", expert_dir).returncode == 0
    train = expert_dir / "data" / "train.jsonl"
    train.write_text(train.read_text() + json.dumps({"fields": {"Dialect": "x"}, "question": "q", "answer": "{}"}))
    proc = run_cli("lint", expert_dir, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)["reports"][0]
    assert report["counts"]["unknown_value"] == 1 and report["records"] == 4


def test_check_prompt_cli_gates_on_drift(expert_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        json.dumps({"messages": [{"role": "system", "content": "Dialect: elastic\nTask: query_dsl"},
                                 {"role": "user", "content": "q"}]}) + "\n"
        + json.dumps({"messages": [{"role": "system", "content": "Task: query_dsl\nDialect: elasticsearch"},
                                   {"role": "user", "content": "q"}]}) + "\n"
    )
    proc = run_cli("check-prompt", expert_dir, "--prompts", prompts, "--json")
    assert proc.returncode == 1
    found = json.loads(proc.stdout)["findings"]
    assert {(f["line"], f["code"]) for f in found} == {(2, "alias_value"), (2, "field_order")}


def test_lint_reports_lines_that_are_not_records_and_goes_on(expert_dir: Path) -> None:
    """A line that is not valid JSON is a ``parse_error`` at its line, as ruff reports a syntax error; exit 1."""
    train = expert_dir / "data" / "train.jsonl"
    train.write_bytes(b'{"fields": {}, "question": "q", "answer": "{}"}\n{"broken": \n\xff\xfe\n{"a": 1}\n')
    proc = run_cli("lint", expert_dir, "--data", train, "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)["reports"][0]
    found = [(f["line"], f["code"], f["message"]) for f in report["findings"] if f["severity"] == "error"]
    assert [(line, code) for line, code, _ in found if line != 1] == [
        (2, "parse_error"), (3, "parse_error"), (4, "parse_error")]
    assert "broken JSON" in found[-3][2] and "invalid UTF-8" in found[-2][2] and "none of the keys" in found[-1][2]
    assert {code for line, code, _ in found if line == 1} == {"missing_field"}  # line 1 was linted too
    assert report["records"] == 4


@pytest.mark.parametrize(("make", "needles"), [
    (lambda p: p.mkdir(), ["train.jsonl", "is a directory"]),
    (lambda p: p.write_text("\n\n"), ["train.jsonl", "no records"]),
])
def test_unreadable_dataset_is_one_line_exit_2(expert_dir: Path, make: Any, needles: list[str]) -> None:
    train = expert_dir / "data" / "train.jsonl"
    train.unlink()
    make(train)
    assert_one_line_error(run_cli("lint", expert_dir), *needles)


def test_bad_manifest_and_paths_are_one_line_exit_2(expert_dir: Path, tmp_path: Path) -> None:
    (expert_dir / "expert.yaml").write_text(GOOD + "colour: red\n")
    assert_one_line_error(run_cli("lint", expert_dir), "expert.yaml:11", "colour", "unknown key")
    assert_one_line_error(run_cli("render", tmp_path / "nowhere", "--question", "q"), "nowhere")
    assert_one_line_error(run_cli("check-prompt", tmp_path / "nowhere", "--prompt", "x"), "nowhere")


def test_engine_messages_keep_their_brackets_in_the_console(tmp_path: Path) -> None:
    """Engine and user text printed to the console is text, not rich markup: ``[maybe]`` stays ``[maybe]``."""
    expert = Path(__file__).resolve().parents[1] / "experts" / "elastic"
    answer = '{"query":{"term":{"Cancelled":"maybe"}}}'
    fields = ["--field", "Dialect=elastic", "--field", "Task=query_dsl", "--field", "Index=kibana_sample_data_flights"]
    proc = run_cli("validate", expert, *fields, "--output", answer)
    assert proc.returncode == 1
    assert "[maybe]" in proc.stdout and "[true]" in proc.stdout, proc.stdout
    record = {"fields": {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"},
              "question": "Which flights were cancelled?", "answer": answer}
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps(record) + "\n", encoding="utf-8")
    wide = subprocess.run([sys.executable, "-m", "expertkit.cli", "lint", str(expert), "--data", str(data)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert wide.returncode == 1
    assert "[maybe]" in wide.stdout, wide.stdout
