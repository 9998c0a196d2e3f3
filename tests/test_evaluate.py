"""``compare``: scoring and verdicts, the best checkpoint, drifted prompts, checkpoint selection and refusal,
and a small end-to-end comparison over a tiny base with LoRA checkpoints made here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from expertkit.console import print_compared
from expertkit.core.checkpoints import RECORD_NAME, RUN_RECORD_NAME, Run
from expertkit.core.data import load_examples
from expertkit.core.errors import DriftError, ExpertkitError
from expertkit.evaluation.compare import (
    DRIFT_KINDS,
    CompareOptions,
    compare_run,
    load_cases,
    pick_best,
    score_output,
    summarize,
    verdict_of,
)
from expertkit.expert import Expert
from expertkit.kinds.scoring import SCORER_VERSION
from expertkit.models.base import build_tiny_base, shipped_experts_dir

SHIPPED = shipped_experts_dir()
FIELDS = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"}
GOLD = '{"query":{"term":{"FlightDelay":true}}}'




# ---------------------------------------------------------------------- scoring, verdicts, best
def test_verdicts() -> None:
    assert verdict_of(False, True) == "direct_valid"
    assert verdict_of(True, True) == "reasoning_and_valid"
    assert verdict_of(True, False) == "reasoning_only"
    assert verdict_of(False, False) == "invalid"
    assert verdict_of(False, True, True) == "answer_with_text"
    assert verdict_of(True, True, True) == "reasoning_and_valid"
    assert verdict_of(False, False, True) == "invalid"


@pytest.mark.parametrize(
    ("raw", "verdict", "valid", "equivalent"),
    [
        (GOLD, "direct_valid", True, True),
        ('{"query": {"term": {"FlightDelay": true}}}', "direct_valid", True, True),
        ('{"query":{"term":{"Cancelled":true}}}', "direct_valid", True, False),
        (f"```json\n{GOLD}\n```", "answer_with_text", True, True),
        (f"{GOLD}\nThis finds the delayed flights.", "answer_with_text", True, True),
        (f"Answer: {GOLD}", "answer_with_text", True, True),
        (f"<think>\nDelayed flights: a term on FlightDelay.\n</think>\n\n{GOLD}", "reasoning_and_valid", True, True),
        (f"Let me work out which field holds the delay. {GOLD}", "reasoning_and_valid", True, True),
        ("<think>\nThe user wants delayed flights, so", "reasoning_only", False, False),
        ("Okay, so the user is asking about delayed flights", "reasoning_only", False, False),
        ("<think>\nhmm\n</think>\n\n{\"query\":{\"term\":{\"no_such_field\":1}}}", "reasoning_only", False, False),
        ('{"query":{"term":{"no_such_field":1}}}', "invalid", False, False),
        ('{"query":{"term":', "invalid", False, False),
        ("", "invalid", False, False),
    ],
)
def test_score_output(elastic: Expert, raw: str, verdict: str, valid: bool, equivalent: bool) -> None:
    s = score_output(elastic, raw, FIELDS, GOLD)
    assert (s.verdict, s.valid, s.equivalent) == (verdict, valid, equivalent)
    assert s.execution_match is None  # elastic answers cannot run here
    assert bool(s.errors) == (not valid)
    assert s.to_dict()["output"] == raw


def test_score_without_gold(elastic: Expert) -> None:
    s = score_output(elastic, GOLD, FIELDS, None)
    assert s.valid and s.equivalent is None and s.execution_match is None


def test_execution_match_through_the_sql_validator(sql_expert: Expert) -> None:
    case = next(ex for ex in load_examples(sql_expert.eval_path) if "FROM customers" in (ex.answer or ""))
    fields = sql_expert.contract.normalize(dict(case.fields))
    gold = "SELECT name FROM customers ORDER BY id"
    same_rows = score_output(sql_expert, "SELECT c.name AS who FROM customers AS c ORDER BY c.id", fields, gold)
    assert same_rows.valid and same_rows.execution_match is True and same_rows.verdict == "direct_valid"
    other_rows = score_output(sql_expert, "SELECT email FROM customers ORDER BY id", fields, gold)
    assert other_rows.valid and other_rows.execution_match is False and not other_rows.equivalent
    talk = score_output(sql_expert, f"The query is below.\n{gold}", fields, gold)
    assert talk.verdict == "reasoning_and_valid" and talk.execution_match is True and talk.equivalent
    wrong_column = score_output(sql_expert, "SELECT nickname FROM customers", fields, gold)
    assert not wrong_column.valid and wrong_column.execution_match is False
    assert summarize([same_rows, other_rows, talk, wrong_column])["execution_match"] == 0.5


def test_summarize_rates(elastic: Expert) -> None:
    outputs = [GOLD, f"<think>\nx y z\n</think>\n{GOLD}", "Okay, so the user wants flights", "{"]
    scores = [score_output(elastic, raw, FIELDS, GOLD) for raw in outputs]
    m = summarize(scores, seconds=2.0)
    assert m["cases"] == 4
    assert m["valid"] == 0.5 and m["equivalent"] == 0.5 and m["reasoning"] == 0.5 and m["direct_valid"] == 0.25
    assert m["execution_match"] is None
    assert m["verdicts"] == {"direct_valid": 1, "answer_with_text": 0, "reasoning_and_valid": 1, "reasoning_only": 1,
                             "invalid": 1}
    assert m["outputs_per_s"] == 2.0


def _row(name: str, step: int | None, **metrics: Any) -> dict[str, Any]:
    return {"name": name, "step": step, **metrics}


def test_best_checkpoint_by_metric_ties_to_the_earliest() -> None:
    rows = [
        _row("base", None, valid=1.0, equivalent=1.0),
        _row("checkpoint-100", 100, valid=0.5, equivalent=0.1),
        _row("checkpoint-150", 150, valid=0.9, equivalent=0.3),
        _row("checkpoint-200", 200, valid=0.9, equivalent=0.2),
    ]
    assert pick_best(rows, "valid") == {"name": "checkpoint-150", "step": 150, "metric": "valid", "value": 0.9,
                                        "tie_breaks": []}
    assert pick_best(rows, "equivalent")["name"] == "checkpoint-150"  # type: ignore[index]
    unknown = [_row("checkpoint-5", 5, execution_match=None), _row("checkpoint-9", 9, execution_match=None)]
    assert pick_best(unknown, "execution_match")["name"] == "checkpoint-5"  # type: ignore[index]
    assert pick_best([rows[0]], "valid") is None  # the base is never "the best checkpoint"


def test_best_checkpoint_by_correctness_then_f1_then_validity() -> None:
    rows = [
        _row("checkpoint-100", 100, equivalent=0.05, component_f1=0.40, valid=0.99),
        _row("checkpoint-200", 200, equivalent=0.05, component_f1=0.55, valid=0.90),
        _row("checkpoint-300", 300, equivalent=0.05, component_f1=0.55, valid=0.95),
        _row("checkpoint-400", 400, equivalent=0.01, component_f1=0.90, valid=1.00),
    ]
    best = pick_best(rows, "equivalent")
    assert best == {"name": "checkpoint-300", "step": 300, "metric": "equivalent", "value": 0.05,
                    "tie_breaks": ["component_f1", "valid"]}
    assert pick_best(rows, "valid")["name"] == "checkpoint-400"  # type: ignore[index]
    sql = [_row("checkpoint-1", 1, execution_match=0.5, equivalent=0.2, valid=0.7),
           _row("checkpoint-2", 2, execution_match=0.5, equivalent=0.3, valid=0.6)]
    assert pick_best(sql, "execution_match")["name"] == "checkpoint-2"  # type: ignore[index]


def test_shipped_experts_are_picked_by_correctness() -> None:
    assert Expert.load(SHIPPED / "elastic").manifest.evaluation.metric == "equivalent"
    assert Expert.load(SHIPPED / "sql").manifest.evaluation.metric == "execution_match"


# ---------------------------------------------------------------------- drifted prompts
def _drift(expert: Expert, fields: dict[str, str], question: str = "Only trips flagged as delayed") -> dict[str, Any]:
    return {v.kind: v for v in expert.contract.drift_variants(fields, question)}


def test_drift_variants_come_from_the_contract_and_each_raises_its_code(elastic: Expert) -> None:
    variants = _drift(elastic, FIELDS)
    assert list(variants) == list(DRIFT_KINDS)
    prompts = {kind: v.prompt for kind, v in variants.items()}
    clean = elastic.contract.render_prompt(FIELDS, "Only trips flagged as delayed")
    assert "Dialect: elasticsearch\n" in prompts["alias"]
    assert "Task: query_dsl\nDialect: elastic\nIndex:" in prompts["order"]
    assert "Index:" not in prompts["missing"]
    assert prompts["other_wrapper"].startswith("<|system|>\nDialect: elastic")
    assert prompts["thinking"].endswith("<|im_start|>assistant\n")
    assert variants["other_wrapper"].description == "the prompt in the other wrapper (tags <-> qwen3)"
    for kind, v in variants.items():  # every drift is one that check-prompt refuses, with the code it names
        assert v.prompt is not None and v.prompt != clean
        assert v.code in {f.code for f in elastic.check_prompt(v.prompt) if f.severity == "error"}, kind
    assert [v.code for v in variants.values()] == [
        "alias_value", "field_order", "missing_field", "wrapper_mismatch", "thinking_mismatch"]


def test_drift_kinds_that_do_not_apply(sql_expert: Expert, tmp_path: Path) -> None:
    schema = (SHIPPED / "sql" / "schemas" / "shop.sql").read_text()
    sql = _drift(sql_expert, {"Dialect": "postgres", "Task": "text_to_sql", "Schema": schema}, "How many orders?")
    # Schema is multi-line: "missing" drops Task, the last single-line field; "order" swaps Dialect and Task
    assert "Task:" not in sql["missing"].prompt
    assert "Task: text_to_sql\nDialect: postgres\nSchema:" in sql["order"].prompt
    tags = tmp_path / "tags"
    shutil.copytree(SHIPPED / "elastic", tags, ignore=shutil.ignore_patterns("data"))
    manifest = yaml.safe_load((tags / "expert.yaml").read_text())
    manifest["contract"]["wrapper"] = "tags"
    manifest["contract"]["fields"] = [{"name": "Task", "values": ["query_dsl"]}]
    (tags / "expert.yaml").write_text(yaml.safe_dump(manifest))
    tagged = Expert.load(tags)
    one = _drift(tagged, {"Task": "query_dsl"})
    assert one["thinking"].prompt is None and one["order"].prompt is None and one["missing"].prompt is None
    clean = tagged.contract.render_prompt({"Task": "query_dsl"}, "Only trips flagged as delayed")
    assert one["alias"].prompt == clean.replace("Task: query_dsl", "Task: QUERY_DSL")
    assert one["other_wrapper"].prompt.startswith("<|im_start|>system\n")
    for v in (one["alias"], one["other_wrapper"]):
        assert v.code in {f.code for f in tagged.check_prompt(v.prompt) if f.severity == "error"}


# ---------------------------------------------------------------------- a run made by hand
def _record(expert: Expert, step: int, **extra: Any) -> dict[str, Any]:
    return {"step": step, "expert": expert.name, "fingerprint": expert.fingerprint,
            "contract": expert.contract.canonical(), "method": "lora", **extra}


@pytest.fixture(scope="module")
def small_expert(tmp_path_factory: pytest.TempPathFactory, elastic: Expert) -> Expert:
    """The shipped elastic expert with 6 eval cases and short outputs (same contract)."""
    root = tmp_path_factory.mktemp("experts") / "elastic"
    shutil.copytree(SHIPPED / "elastic", root, ignore=shutil.ignore_patterns("data"))
    (root / "data").mkdir()
    lines = elastic.eval_path.read_text().splitlines()[:6]
    (root / "data" / "eval.jsonl").write_text("\n".join(lines) + "\n")
    manifest = yaml.safe_load((root / "expert.yaml").read_text())
    manifest["decoding"] = {"max_new_tokens": 12}
    manifest["evaluation"] = {"metric": "valid", "batch_size": 4}
    (root / "expert.yaml").write_text(yaml.safe_dump(manifest))
    expert = Expert.load(root)
    assert expert.fingerprint == elastic.fingerprint
    return expert


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, small_expert: Expert, elastic: Expert) -> Path:
    """A run: a tiny base, LoRA checkpoints 2 and 4, a half-written checkpoint-6 and tmp-checkpoint-8."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    examples = load_examples(elastic.train_path)[:300]
    corpus = [elastic.contract.render_conversation(dict(e.fields), e.question, e.answer or "") for e in examples]
    tmp = tmp_path_factory.mktemp("run")
    base = build_tiny_base(tmp / "base", corpus=corpus, vocab_size=600)
    run = tmp / "run"
    run.mkdir()
    for step in (2, 4):
        torch.manual_seed(step)
        model = AutoModelForCausalLM.from_pretrained(base)
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
        peft_model.save_pretrained(run / f"checkpoint-{step}")
        (run / f"checkpoint-{step}" / RECORD_NAME).write_text(json.dumps(_record(small_expert, step)))
    shutil.copytree(run / "checkpoint-4", run / "checkpoint-6")
    (run / "checkpoint-6" / RECORD_NAME).unlink()
    shutil.copytree(run / "checkpoint-4", run / "tmp-checkpoint-8")
    (run / RUN_RECORD_NAME).write_text(json.dumps({"expert": "elastic", "base": "tiny",
                                                   "options": {"base_path": str(base)}}))
    return run


def test_checkpoint_selection(run_dir: Path) -> None:
    chosen, incomplete = Run(run_dir).select(None)
    assert [c.step for c in chosen] == [2, 4]
    assert incomplete == ["checkpoint-6", "tmp-checkpoint-8"]
    assert [c.step for c in Run(run_dir).select("4, checkpoint-2,4")[0]] == [2, 4]
    with pytest.raises(ExpertkitError, match="incomplete"):
        Run(run_dir).select("6")
    with pytest.raises(ExpertkitError, match=r"no complete checkpoint-9 \(steps: 2, 4\)"):
        Run(run_dir).select("9")
    with pytest.raises(ExpertkitError, match="expected steps"):
        Run(run_dir).select("last")


def test_checkpoint_of_another_contract_is_refused(tmp_path: Path, run_dir: Path, small_expert: Expert) -> None:
    drifted = tmp_path / "run"
    shutil.copytree(run_dir, drifted)
    record = json.loads((drifted / "checkpoint-2" / RECORD_NAME).read_text())
    record["contract"]["fields"][0]["values"] = ["elasticsearch"]
    record["contract"]["fields"][0]["aliases"] = {}
    record["fingerprint"] = "0123456789abcdef"
    (drifted / "checkpoint-2" / RECORD_NAME).write_text(json.dumps(record))
    with pytest.raises(DriftError, match=r"checkpoint-2.*field 'Dialect' values"):
        compare_run(small_expert, CompareOptions(run_dir=drifted, out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    proc = subprocess.run([sys.executable, "-m", "expertkit.cli", "compare", str(small_expert.root), "--run",
                           str(drifted)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--allow-drift" in proc.stderr
    allowed = compare_run(small_expert, CompareOptions(run_dir=drifted, out_dir=tmp_path / "out",
                                                       checkpoints="2", max_cases=2, allow_drift=True))
    row = allowed.report["models"][1]
    assert row["name"] == "checkpoint-2" and any("Dialect" in c for c in row["contract_changes"])


def test_runs_mixing_adapters_and_full_weights_are_refused(tmp_path: Path, run_dir: Path,
                                                           small_expert: Expert) -> None:
    mixed = tmp_path / "run"
    shutil.copytree(run_dir, mixed)
    base = Path(json.loads((run_dir / RUN_RECORD_NAME).read_text())["options"]["base_path"])
    shutil.copytree(base, mixed / "checkpoint-10")
    (mixed / "checkpoint-10" / RECORD_NAME).write_text(json.dumps(_record(small_expert, 10, method="full")))
    with pytest.raises(ExpertkitError, match="mix LoRA/DoRA adapters and full weights"):
        compare_run(small_expert, CompareOptions(run_dir=mixed, out_dir=tmp_path / "out"))
    only_full = compare_run(small_expert, CompareOptions(run_dir=mixed, out_dir=tmp_path / "out", checkpoints="10",
                                                         max_cases=2))
    assert [m["kind"] for m in only_full.report["models"]] == ["base", "full"]
    # the base's own weights as a "full checkpoint": the same outputs as the base
    outputs = [{name: o["output"] for name, o in c["outputs"].items()} for c in only_full.report["cases"]]
    assert all(o["base"] == o["checkpoint-10"] for o in outputs)


def test_engine_choice(tmp_path: Path, run_dir: Path, small_expert: Expert) -> None:
    with pytest.raises(ExpertkitError, match="unknown engine 'tgi'"):
        compare_run(small_expert, CompareOptions(run_dir=run_dir, engine="tgi"))
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ExpertkitError, match="--engine vllm needs the vllm package"):
            compare_run(small_expert, CompareOptions(run_dir=run_dir, engine="vllm", out_dir=tmp_path))
    else:
        import torch

        if not torch.cuda.is_available():
            with pytest.raises(ExpertkitError, match="needs a CUDA GPU"):
                compare_run(small_expert, CompareOptions(run_dir=run_dir, engine="vllm", out_dir=tmp_path))


def test_compare_takes_decoding_and_evaluation_settings(tmp_path: Path, run_dir: Path, small_expert: Expert) -> None:
    report = compare_run(small_expert, CompareOptions(run_dir=run_dir, out_dir=tmp_path / "cmp", checkpoints="4",
                                                      max_cases=2, settings={"decoding.max_new_tokens": 3,
                                                                             "evaluation.metric": "correct"})).report
    assert (report["max_new_tokens"], report["metric"], len(report["cases"])) == (3, "correct", 2)
    assert all(0 < out["new_tokens"] <= 3 for case in report["cases"] for out in case["outputs"].values())


def test_compare_end_to_end(tmp_path: Path, run_dir: Path, small_expert: Expert,
                            capsys: pytest.CaptureFixture[str]) -> None:
    result = compare_run(small_expert, CompareOptions(run_dir=run_dir, out_dir=tmp_path / "cmp", drift=True))
    report = result.report
    assert capsys.readouterr().out == ""  # the library returns the report; the command line prints it
    print_compared(result, as_json=True)
    printed = json.loads(capsys.readouterr().out)  # --json: compare.json on stdout, nothing else
    assert printed == json.loads((tmp_path / "cmp" / "compare.json").read_text()) == report
    assert {"expert", "fingerprint", "metric", "models", "cases", "best", "drift"} <= report.keys()
    assert report["expert"] == "elastic" and report["fingerprint"] == small_expert.fingerprint
    assert report["skipped"] == ["checkpoint-6", "tmp-checkpoint-8"]
    assert [(m["name"], m["step"], m["kind"]) for m in report["models"]] == [
        ("base", None, "base"), ("checkpoint-2", 2, "adapter"), ("checkpoint-4", 4, "adapter")]
    for m in report["models"]:
        assert m["cases"] == 6 and 0 <= m["valid"] <= 1 and m["execution_match"] is None
        assert 0 < m["mean_output_tokens"] <= 12 and m["outputs_per_s"] > 0
        assert sum(m["verdicts"].values()) == 6
        # correctness, per model and case: equivalence, component match, error taxonomy
        outs = [c["outputs"][m["name"]] for c in report["cases"]]
        assert m["correct"] == m["equivalent"] == sum(o["correct"] for o in outs) / 6
        assert m["component_f1"] == pytest.approx(sum(o["component"]["f1"] for o in outs) / 6)
        assert m["errors"]["missing_clause"] == sum("missing_clause" in o["error_kinds"] for o in outs)
        assert all(bool(o["error_kinds"]) != (o["correct"] and o["verdict"] == "direct_valid") for o in outs)
    assert report["scorer_version"] == SCORER_VERSION
    assert report["best"]["name"] in ("checkpoint-2", "checkpoint-4") and report["best"]["metric"] == "valid"
    case = report["cases"][0]
    assert {"fields", "question", "gold", "prompt", "outputs"} <= case.keys()
    assert case["prompt"] == small_expert.render(case["fields"], case["question"])
    for out in case["outputs"].values():
        assert {"output", "answer", "reasoning", "valid", "equivalent", "execution_match", "verdict",
                "errors"} <= out.keys()
    # adapters switched in place really change the outputs
    outputs = {name: [c["outputs"][name]["output"] for c in report["cases"]] for name in ("base", "checkpoint-2")}
    assert outputs["base"] != outputs["checkpoint-2"]
    drift = report["drift"]
    assert drift["model"] == report["best"]["name"]
    assert [k["kind"] for k in drift["kinds"]] == list(DRIFT_KINDS)
    for k in drift["kinds"]:
        assert k["applicable"] and k["cases"] == 6 and len(k["outputs"]) == 6
        assert k["drop"] == pytest.approx(k["baseline"]["valid"] - k["drifted"]["valid"])
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {"compare.json", "compare.md", "report.html"}


def test_cases_file_and_bad_cases(tmp_path: Path, small_expert: Expert) -> None:
    good = tmp_path / "cases.jsonl"
    good.write_text(json.dumps({"fields": {"Dialect": "es", "Task": "query_dsl", "Index": "kibana_sample_data_logs"},
                                "question": "All logs"}) + "\n")
    (case,) = load_cases(small_expert, good, None)
    assert case.fields["Dialect"] == "elastic" and case.gold is None  # canonical, and no gold needed
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"fields": {"Dialect": "sql", "Task": "query_dsl"}, "question": "x"}) + "\n")
    with pytest.raises(ExpertkitError, match=r"bad.jsonl:1: case cannot be rendered"):
        load_cases(small_expert, bad, None)
