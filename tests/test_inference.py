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
from test_serve import serving

from expertkit.core.checkpoints import RECORD_NAME, RUN_RECORD_NAME, CheckpointRecord, RunRecord
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.models.base import build_tiny_base, choose_base

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "experts"
FIELDS = {"Dialect": "elastic", "Task": "query_dsl", "Index": "kibana_sample_data_flights"}



@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, elastic: Expert) -> dict[str, Any]:
    """A tiny base on the elastic data, a second base (other seed), and a run with a LoRA checkpoint."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from expertkit.core.data import load_examples

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
    assert "'Qwen/Qwen3-0.6B'" in lines[0] and "not in the Hugging Face cache" in lines[0] and "offline" in lines[0]
    assert not (tmp_path / "run").exists()


def test_choose_base_follows_the_records_and_refuses_another(world: dict[str, Any]) -> None:
    record = CheckpointRecord(step=1, base="tiny", base_path=str(world["base"]))
    assert choose_base(None, [("ck", record)]) == str(world["base"])
    assert choose_base(str(world["base"]), [("ck", record)]) == str(world["base"])  # the same, named explicitly
    with pytest.raises(ExpertkitError, match=r"ck was trained on base 'tiny', not on --base '.*other'"):
        choose_base(str(world["other"]), [("ck", record)])
    with pytest.raises(ExpertkitError, match="cannot share one base"):
        choose_base(None, [("a", record), ("b", RunRecord(base="Qwen/Qwen3-0.6B"))])
    with pytest.raises(ExpertkitError, match="records no base model"):
        choose_base(None, [("ck", RunRecord())])


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
    from expertkit.serving.serve import ServeOptions, build_engine, create_app, resolve_expert

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

    from expertkit.core.contract import PromptContract
    from expertkit.engines.inference import contract_stops, create_engine

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
    from expertkit.engines.inference import create_engine, engine_names

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


# ---------------------------------------------------------------------- expertkit ask
def test_ask_one_shot_json_installed_and_bad_input(world: dict[str, Any], elastic: Expert,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ask = ["ask", SHIPPED / "elastic", "--checkpoint", world["checkpoint"]]
    plain = run_main([*ask, *_field_args(), "Only trips flagged as delayed"], capsys, monkeypatch)
    assert plain.code == 0, plain.stderr[-2000:]
    detailed = run_main([*ask, *_field_args(), "--json", "Only trips flagged as delayed"], capsys, monkeypatch)
    body = json.loads(detailed.stdout)
    assert set(body) >= {"answer", "output", "valid", "verdict", "errors", "tokens", "finished", "latency_ms"}
    assert plain.stdout == (body["answer"] or body["output"]) + "\n"
    assert body["fields"] == FIELDS

    # an installed expert by name answers with its own checkpoint, the same answer
    from expertkit.packaging.package import install_package, package_expert

    monkeypatch.setenv("EXPERTKIT_HOME", str(world["root"] / "home"))  # a registry of this test's own
    install_package(package_expert(elastic, world["checkpoint"], world["root"] / "elastic.expert"))
    installed = run_main(["ask", "elastic", *_field_args(), "Only trips flagged as delayed"], capsys, monkeypatch)
    assert installed.code == 0 and installed.stdout == plain.stdout, installed.stderr[-2000:]

    bad_value = run_main([*ask, *_field_args({**FIELDS, "Index": "nope"}), "q"], capsys, monkeypatch)
    assert_one_line_error(bad_value, "--field", "'nope' is not an allowed value of Index")
    lines = world["root"] / "bad.jsonl"
    lines.write_text(json.dumps({"question": "q", "fields": FIELDS}) + "\n{not json\n")
    assert_one_line_error(run_main([*ask, "--jsonl", lines], capsys, monkeypatch), f"{lines}:2")
    lines.write_text(json.dumps({"question": "q", "fields": {**FIELDS, "Index": "nope"}}) + "\n")
    assert_one_line_error(run_main([*ask, "--jsonl", lines], capsys, monkeypatch), f"{lines}:1", "fields",
                          "not an allowed value")
    assert_one_line_error(run_main([*ask, "--jsonl", lines, "q"], capsys, monkeypatch), "not both")
    assert_one_line_error(run_main(["ask", SHIPPED / "elastic", *_field_args(), "q"], capsys, monkeypatch),
                          "--checkpoint")
    assert_one_line_error(run_main([*ask, *_field_args(), "--constrain", "regex", "q"], capsys, monkeypatch),
                          "--constrain", "unknown constrained-decoding mode 'regex'")


def test_ask_session_through_a_terminal_with_history(world: dict[str, Any]) -> None:
    import pty
    import select

    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "EXPERTKIT_DEBUG"}
    proc = subprocess.Popen([sys.executable, "-m", "expertkit.cli", "ask", str(SHIPPED / "elastic"), "--checkpoint",
                             str(world["checkpoint"]), *_field_args()], stdin=secondary, stdout=secondary,
                            stderr=subprocess.PIPE, env=env, close_fds=True)
    os.close(secondary)
    seen = b""

    def read_until(marker: bytes, count: int) -> None:
        nonlocal seen
        deadline = time.monotonic() + 240
        while seen.count(marker) < count:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([primary], [], [], 1)
            if ready:
                try:
                    seen += os.read(primary, 4096)
                except OSError:  # the session ended
                    break

    try:
        read_until(b"> ", 1)
        os.write(primary, b"Only trips flagged as delayed\n")
        read_until(b"> ", 2)
        os.write(primary, b"\x1b[A\n")  # arrow up: the last question again, from the history
        read_until(b"> ", 3)
        os.write(primary, b"\x04")  # Ctrl-D ends the session
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    turns = seen.decode(errors="replace").replace("\r", "").split("> ")
    first, second = turns[1], turns[2]
    assert first.startswith("Only trips flagged as delayed\n")
    assert second.startswith("Only trips flagged as delayed\n")  # recalled from the history
    assert first.split("\n", 1)[1].strip() and first.split("\n", 1)[1] == second.split("\n", 1)[1]


# ---------------------------------------------------------------------- streaming
class SlowSinks:
    """The real engine, with each streamed token delayed; records the outputs of every generate call."""

    def __init__(self, engine: Any, delay_s: float) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.delay_s = delay_s
        self.outputs: list[Any] = []

    def add(self, name: str, path: Any) -> None:
        self.engine.add(name, path)

    def activate(self, name: str | None) -> None:
        self.engine.activate(name)

    def generate(self, prompts: Any, **kwargs: Any) -> Any:
        sinks = kwargs.get("sinks")
        if sinks:
            kwargs["sinks"] = [_Slow(s, self.delay_s) if s is not None else None for s in sinks]
        out = self.engine.generate(prompts, **kwargs)
        self.outputs.extend(out)
        return out


class _Slow:
    def __init__(self, sink: Any, delay_s: float) -> None:
        self.sink, self.delay_s = sink, delay_s

    def push(self, token_ids: Any) -> None:
        time.sleep(self.delay_s)
        self.sink.push(token_ids)

    @property
    def cancelled(self) -> bool:
        return bool(self.sink.cancelled)


def test_streaming_with_the_openai_client(world: dict[str, Any], elastic: Expert) -> None:
    from expertkit.serving.serve import ServeOptions, build_engine, create_app, resolve_expert

    key_file = world["root"] / "key"
    key_file.write_text("k3y\n")
    options = ServeOptions(api_key_file=key_file)
    served = [resolve_expert(f"{SHIPPED / 'elastic'}:{world['checkpoint']}")]
    engine = SlowSinks(build_engine(served, options), delay_s=0.05)
    messages = elastic.contract.messages(FIELDS, "Only trips flagged as delayed")
    with serving(create_app(served, engine, options)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k3y", max_retries=0)
        whole = client.chat.completions.create(model="elastic", messages=messages)
        chunks = list(client.chat.completions.create(model="elastic", messages=messages, stream=True))
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert text == whole.choices[0].message.content and len(chunks) > 3  # token by token
        final = chunks[-1]
        assert final.choices[0].finish_reason == whole.choices[0].finish_reason
        verdict = (final.model_extra or {})["expertkit"]
        assert verdict["verdict"] == (whole.model_extra or {})["expertkit"]["verdict"]
        assert final.usage is not None and final.usage.completion_tokens == whole.usage.completion_tokens
        with httpx.stream("POST", f"{url}/v1/chat/completions", json={"model": "elastic", "messages": messages,
                                                                      "stream": True},
                          headers={"Authorization": "Bearer k3y"}, timeout=60) as raw:
            assert raw.headers["content-type"].startswith("text/event-stream")
            events = [line for line in raw.iter_lines() if line]
        assert events[-1] == "data: [DONE]"

        # auth applies to streams too
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
                model="elastic", messages=messages, stream=True)

        # a client that goes away mid-stream: its row stops, the worker is free at once
        engine.outputs.clear()
        started = time.monotonic()
        stream = client.chat.completions.create(model="elastic", messages=messages, stream=True)
        for n, _ in enumerate(stream):
            if n == 2:
                break
        stream.close()
        deadline = time.monotonic() + 30
        while not engine.outputs:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stopped = engine.outputs[0]
        assert stopped.new_tokens < whole.usage.completion_tokens  # cut short, not run to its end
        assert time.monotonic() - started < 0.05 * whole.usage.completion_tokens + 5
        health = httpx.get(f"{url}/healthz").json()
        assert health["queued"] == 0
        again = client.chat.completions.create(model="elastic", messages=messages)
        assert again.choices[0].message.content == whole.choices[0].message.content


# ---------------------------------------------------------------------- constrained decoding
def test_the_schema_grammar_admits_every_gold_answer_in_its_trained_form(elastic: Expert) -> None:
    from xgrammar.testing import _is_grammar_accept_string

    from expertkit.core.data import load_examples
    from expertkit.engines.inference.constrain import constraint_for

    examples = load_examples(elastic.eval_path)
    for ex in examples:
        constraint = constraint_for(elastic, "schema", elastic.contract.normalize(dict(ex.fields)))
        assert constraint is not None and constraint.mode == "schema"
        assert _is_grammar_accept_string(constraint.ebnf, ex.answer or ""), (ex.line, ex.answer)
    grammar = constraint_for(elastic, "schema", FIELDS)
    assert grammar is not None
    # spaces, another key order, a field of another index, a query type on a field it does not work on
    for wrong in ('{"query": {"term": {"Carrier": "x"}}}', '{"query":{"term":{"Carrier":"x"}},"size":3}',
                  '{"query":{"term":{"clientip":"x"}}}', '{"query":{"range":{"Carrier":{"gte":1}}}}',
                  '{"query":{"match":{"FlightDelayMin":"x"}}}'):
        assert not _is_grammar_accept_string(grammar.ebnf, wrong), wrong


def test_constrained_outputs_follow_the_grammar(world: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, elastic: Expert) -> None:
    from xgrammar.testing import _is_grammar_accept_string

    from expertkit.engines.inference.constrain import constraint_for

    jsonl = world["root"] / "constrained.jsonl"
    lines = elastic.eval_path.read_text().splitlines()[:6]
    jsonl.write_text("\n".join(lines) + "\n")
    for mode in ("json", "schema"):
        result = run_main(["ask", SHIPPED / "elastic", "--checkpoint", world["checkpoint"], "--jsonl", jsonl,
                           "--json", "--constrain", mode], capsys, monkeypatch)
        assert result.code == 0, result.stderr[-2000:]
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        for a in answers:
            grammar = constraint_for(elastic, mode, a["fields"])
            assert grammar is not None
            # a finished output is a whole sentence of the grammar, a cut one a prefix of one
            assert _is_grammar_accept_string(grammar.ebnf, a["output"], require_termination=a["finished"]), a
            if a["finished"] and mode == "schema":
                assert a["valid"], a


# ---------------------------------------------------------------------- validator-guided decoding in ask and serve
def test_ask_and_serve_with_samples_return_the_voted_answer(world: dict[str, Any], elastic: Expert,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from expertkit.serving.serve import ServeOptions, build_engine, create_app, resolve_expert

    question = "Only trips flagged as delayed"
    ask = ["ask", SHIPPED / "elastic", "--checkpoint", world["checkpoint"], *_field_args()]
    result = run_main([*ask, "--samples", "3", "--json", question], capsys, monkeypatch)
    assert result.code == 0, result.stderr[-2000:]
    asked = json.loads(result.stdout)
    vote = asked["vote"]
    assert vote["samples"] == 3 and len(vote["candidates"]) == 3
    assert vote["valid"] == sum(c["valid"] for c in vote["candidates"])
    if vote["chosen"] is None:  # no valid candidate: the greedy answer, with its own verdict
        assert vote["fallback"] == "greedy" and vote["valid"] == 0
        greedy = json.loads(run_main([*ask, "--json", question], capsys, monkeypatch).stdout)
        assert asked["output"] == greedy["output"] and "vote" not in greedy
    else:
        chosen = vote["candidates"][vote["chosen"]]
        assert asked["output"] == chosen["output"] and asked["valid"] and chosen["group"] is not None
        assert len(vote["votes"]) >= 1 and max(vote["votes"]) == vote["votes"][chosen["group"]]
    assert len({c["output"] for c in vote["candidates"]}) > 1  # sampled, not three greedy copies
    assert_one_line_error(run_main([*ask, "--samples", "0", question], capsys, monkeypatch), "--samples")

    options = ServeOptions(samples=3)
    served = [resolve_expert(f"{SHIPPED / 'elastic'}:{world['checkpoint']}")]
    with serving(create_app(served, build_engine(served, options), options)) as url:
        rest = httpx.post(f"{url}/v1/experts/elastic/generate", json={"question": question, "fields": FIELDS},
                          timeout=120).json()
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        messages = elastic.contract.messages(FIELDS, question)
        chat = client.chat.completions.create(model="elastic", messages=messages)
        chunks = list(client.chat.completions.create(model="elastic", messages=messages, stream=True))
    # the same seeded candidates, the same vote, the same answer as ask
    assert rest["vote"] == vote and rest["answer"] == asked["answer"] and rest["verdict"] == asked["verdict"]
    assert (chat.model_extra or {})["expertkit"]["vote"] == vote
    assert chat.choices[0].message.content == asked["answer"]
    # a stream gets the voted answer whole, at the end, with the vote in its last chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == asked["answer"]
    assert (chunks[-1].model_extra or {})["expertkit"]["vote"] == vote
