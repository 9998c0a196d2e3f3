"""The real model path: bases from the manifest/run/checkpoint, one engine under compare/serve/ask,
``expertkit ask``, SSE streaming, constrained decoding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from _reliability import assert_one_line_error, run_main
from expertkit.checkpoints import RECORD_NAME, RUN_RECORD_NAME, choose_base
from expertkit.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.model import build_tiny_base
from test_serve import serving

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "experts"
FIELDS = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"}


@pytest.fixture(scope="module")
def elastic() -> Expert:
    return Expert.load(SHIPPED / "elastic")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, elastic: Expert) -> dict[str, Any]:
    """A tiny base on the elastic data, a second base (other seed), and a run with a LoRA checkpoint."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from expertkit.data import load_examples

    examples = load_examples(elastic.eval_path)[:200]
    corpus = [elastic.contract.render_conversation(dict(e.fields), e.question, e.answer or "") for e in examples]
    root = tmp_path_factory.mktemp("inference")
    base = build_tiny_base(root / "base", corpus=corpus, vocab_size=600)
    other = build_tiny_base(root / "other", corpus=corpus, vocab_size=600, seed=1)
    run = root / "run"
    checkpoint = run / "checkpoint-1"
    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(checkpoint)
    record = {"step": 1, "expert": "elastic", "fingerprint": elastic.fingerprint,
              "contract": elastic.contract.canonical(), "method": "lora", "base": "tiny", "base_path": str(base)}
    (checkpoint / RECORD_NAME).write_text(json.dumps(record))
    (run / RUN_RECORD_NAME).write_text(json.dumps({"expert": "elastic", "base": "tiny",
                                                   "options": {"base_path": str(base)}}))
    cases = root / "cases.jsonl"
    lines = elastic.eval_path.read_text().splitlines()[:4]
    cases.write_text("\n".join(lines) + "\n")
    return {"root": root, "base": base, "other": other, "run": run, "checkpoint": checkpoint, "cases": cases}


# ---------------------------------------------------------------------- the right base
def test_train_without_base_takes_the_manifests_and_fails_fast_offline(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           "EXPERTKIT_CACHE": str(tmp_path / "cache")}
    env.pop("EXPERTKIT_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "expertkit.cli", "train", str(SHIPPED / "elastic"),
                             "--out", str(tmp_path / "run"), "--steps", "1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "'Qwen/Qwen3-0.6B'" in lines[0] and "not in the local Hugging Face cache" in lines[0]
    assert not (tmp_path / "run").exists()


def test_choose_base_follows_the_records_and_refuses_another(world: dict[str, Any]) -> None:
    record = {"base": "tiny", "base_path": str(world["base"])}
    assert choose_base(None, [("ck", record)]) == str(world["base"])
    assert choose_base(str(world["base"]), [("ck", record)]) == str(world["base"])  # the same, named explicitly
    with pytest.raises(ExpertkitError, match=r"ck was trained on base 'tiny', not on --base '.*other'"):
        choose_base(str(world["other"]), [("ck", record)])
    with pytest.raises(ExpertkitError, match="cannot share one base"):
        choose_base(None, [("a", record), ("b", {"base": "Qwen/Qwen3-0.6B"})])
    with pytest.raises(ExpertkitError, match="records no base model"):
        choose_base(None, [("ck", {})])


def test_serve_and_ask_refuse_a_checkpoint_on_another_base(world: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    spec = f"{SHIPPED / 'elastic'}:{world['checkpoint']}"
    result = run_main(["serve", spec, "--base", world["other"]], capsys, monkeypatch)
    assert_one_line_error(result, "trained on base 'tiny'", str(world["other"]))
    result = run_main(["ask", SHIPPED / "elastic", "--checkpoint", world["checkpoint"], "--base", world["other"],
                       *_field_args(), "q"], capsys, monkeypatch)
    assert_one_line_error(result, "trained on base 'tiny'", str(world["other"]))
    result = run_main(["compare", SHIPPED / "elastic", "--run", world["run"], "--base", world["other"]],
                      capsys, monkeypatch)
    assert_one_line_error(result, "trained on base 'tiny'", str(world["other"]))


def _field_args(fields: dict[str, str] = FIELDS) -> list[str]:
    return [arg for name, value in fields.items() for arg in ("--field", f"{name}={value}")]


# ---------------------------------------------------------------------- one engine, three commands
def test_compare_serve_and_ask_give_byte_identical_answers(world: dict[str, Any], elastic: Expert,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from expertkit.serve import ServeOptions, build_engine, create_app, resolve_expert

    out = world["root"] / "compare"
    result = run_main(["compare", SHIPPED / "elastic", "--run", world["run"], "--cases", world["cases"],
                       "--out", out, "--json"], capsys, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    report = json.loads((out / "compare.json").read_text())
    compared = [c["outputs"]["checkpoint-1"] for c in report["cases"]]
    questions = [{"question": c["question"], "fields": c["fields"]} for c in report["cases"]]

    jsonl = world["root"] / "questions.jsonl"
    jsonl.write_text("".join(json.dumps(q) + "\n" for q in questions))
    result = run_main(["ask", SHIPPED / "elastic", "--checkpoint", world["checkpoint"], "--jsonl", jsonl, "--json"],
                      capsys, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    asked = [json.loads(line) for line in result.stdout.splitlines()]

    options = ServeOptions()
    served = [resolve_expert(f"{SHIPPED / 'elastic'}:{world['checkpoint']}")]
    with serving(create_app(served, build_engine(served, options), options)) as url:
        answers = [httpx.post(f"{url}/v1/experts/elastic/generate", json=q, timeout=120).json() for q in questions]

    assert [a["output"] for a in asked] == [c["output"] for c in compared]
    assert [a["answer"] for a in asked] == [c["answer"] for c in compared] == [s["answer"] for s in answers]
    assert [a["verdict"] for a in asked] == [c["verdict"] for c in compared] == [s["verdict"] for s in answers]
    assert [a["finished"] for a in asked] == [c["finished"] for c in compared]
    assert any(a["answer"] for a in asked)  # real text, not empty outputs compared with each other
    for a in asked:  # the end of turn is a stop, never text
        assert "<|im_end|>" not in a["output"] and "<|endoftext|>" not in a["output"]
        assert a["finished"] or a["tokens"] == elastic.manifest.decoding.max_new_tokens


def test_generation_stops_where_the_contracts_wrapper_ends_a_turn(world: dict[str, Any], elastic: Expert) -> None:
    """A model that always says <|endoftext|>: a stop for the qwen3 wrapper, plain text for the tags one."""
    import torch
    from transformers import AutoModelForCausalLM

    from expertkit.contract import PromptContract
    from expertkit.inference import contract_stops, create_engine

    full = world["root"] / "eot-model"
    model = AutoModelForCausalLM.from_pretrained(world["base"])
    with torch.no_grad():
        model.model.norm.weight.zero_()  # every logit 0: greedy picks token 0, <|endoftext|>
    model.save_pretrained(full)
    engine = create_engine("hf", str(world["base"]), {"eot": full})
    engine.activate("eot")
    prompt = elastic.contract.encode_prompt(engine.tokenizer, FIELDS, "anything")
    qwen = contract_stops(elastic.contract, engine.tokenizer)
    [out] = engine.generate([prompt], max_new_tokens=5, stops=qwen)
    assert (out.text, out.finished, out.new_tokens) == ("", True, 1)
    tags = PromptContract(elastic.contract.spec.model_copy(update={"wrapper": "tags"}))
    [out] = engine.generate([prompt], max_new_tokens=5, stops=contract_stops(tags, engine.tokenizer))
    assert not out.finished and out.text == "<|endoftext|>" * 5


def test_vllm_refuses_dora_adapters_with_the_reason(tmp_path: Path) -> None:
    from expertkit.inference import create_engine, engine_names

    assert engine_names() == ["hf", "vllm"]
    adapter = tmp_path / "dora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "use_dora": True}))
    with pytest.raises(ExpertkitError, match=r"refuses DoRA adapters \(ck\): its LoRA kernels would drop"):
        create_engine("vllm", "unused", {"ck": adapter})
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    with pytest.raises(ExpertkitError, match="LoRA adapters only"):
        create_engine("vllm", "unused", {"ck": full})
    with pytest.raises(ExpertkitError, match="unknown engine 'tgi'"):
        create_engine("tgi", "unused", {})
