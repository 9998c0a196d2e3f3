"""End to end on the real Qwen3 shape: its tokenizer, special-token ids, chat template and a 151,936-row
embedding (``expertkit base qwen3-shape``, 2 layers, random weights): train, compare, serve, package."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from _mini import mini_expert, mini_records
from safetensors.torch import load_file, save_file
from test_manifest_and_cli import assert_one_line_error, run_cli
from test_serve import serving
from transformers import AutoConfig, AutoTokenizer, GenerationConfig
from typer.testing import CliRunner

from expertkit.cli import app
from expertkit.core.checkpoints import Run
from expertkit.evaluation.compare import CompareOptions, compare_run
from expertkit.expert import Expert
from expertkit.models.qwen3 import QWEN3_0_6B, qwen3_chat_template
from expertkit.packaging.package import TEMPLATE_NAME, package_expert
from expertkit.serving.ask import CHECKPOINT_NAME, Asker, AskOptions, Question
from expertkit.serving.serve import ServeOptions, build_engine, create_app, resolve_expert
from expertkit.training.train import TrainOptions, train_expert

ENDOFTEXT, IM_START, IM_END = 151643, 151644, 151645
LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def _stop_at_once(base: Path, expert: Expert) -> None:
    """Make the random model answer ``<|im_end|>`` first, so that stopping is observable: with the attention
    and MLP outputs zeroed, each position's logits are its own token's embedding against all the (tied)
    embeddings, largest for itself; ``<|im_end|>``'s row is set to twice the row of the prompt's last token."""
    tokenizer = AutoTokenizer.from_pretrained(base)
    record = mini_records(1)[0]
    last = expert.contract.encode_prompt(tokenizer, record["fields"], record["question"])[-1]
    path = base / "model.safetensors"
    state = load_file(str(path))
    for name, tensor in state.items():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            tensor.zero_()
    embed = state["model.embed_tokens.weight"]
    embed[IM_END] = 2 * embed[last]
    save_file(state, str(path), metadata={"format": "pt"})


def test_qwen3_shape_trains_compares_serves_and_packages(tmp_path: Path) -> None:
    root = mini_expert(tmp_path / "mini", 16)
    expert = Expert.load(root)
    record = mini_records(1, offset=1000)[0]

    # the base: real tokenizer and ids, Qwen3-0.6B's configuration with 2 layers
    base = tmp_path / "base"
    built = CliRunner().invoke(app, ["base", "qwen3-shape", "--out", str(base)])
    assert built.exit_code == 0, built.output
    tokenizer = AutoTokenizer.from_pretrained(base)
    assert len(tokenizer) == 151_669
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (ENDOFTEXT, IM_END)
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<think>", "</think>"]) == [IM_START, 151667, 151668]
    config = AutoConfig.from_pretrained(base)
    assert (config.vocab_size, config.num_hidden_layers, config.pad_token_id, config.eos_token_id) == (
        QWEN3_0_6B["vocab_size"], 2, ENDOFTEXT, IM_END)
    assert GenerationConfig.from_pretrained(base).eos_token_id == [IM_END, ENDOFTEXT]
    messages = expert.contract.messages(record["fields"], record["question"])
    prompt = expert.contract.render_prompt(record["fields"], record["question"])
    assert tokenizer.chat_template == qwen3_chat_template()
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         enable_thinking=False) == prompt
    _stop_at_once(base, expert)

    # a few LoRA steps (the manifest's recipe: padding-free batches of about batch_size examples)
    run = tmp_path / "run"
    result = train_expert(expert, TrainOptions(base=str(base), out_dir=run, steps=2, save_every=2, batch_size=2))
    assert result.method == "lora" and result.steps == 2 and result.final_loss is not None
    run_record = Run(run).record
    assert run_record is not None and run_record.padding_free is True
    (checkpoint,) = Run(run).checkpoints()
    adapter = json.loads((checkpoint.path / "adapter_config.json").read_text())
    # "all-linear", resolved on Qwen3's layer names: every linear layer of both blocks, nothing else
    targets = set(adapter["target_modules"])
    assert targets == {f"model.layers.{i}.{part}.{name}" for i in range(2) for name in LINEAR
                       for part in (("self_attn",) if name in ("q_proj", "k_proj", "v_proj", "o_proj") else ("mlp",))}
    trained = {key.split(".")[-3] for key in load_file(str(checkpoint.path / "adapter_model.safetensors"))
               if ".layers." in key and "lora_A" in key}
    assert trained == LINEAR
    # the exported chat template renders the contract's prompt with the real tokenizer, ids included
    exported = AutoTokenizer.from_pretrained(checkpoint.path)
    assert (checkpoint.path / "chat_template.jinja").read_text() == expert.contract.chat_template()
    assert exported.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == prompt
    assert exported(prompt, add_special_tokens=False)["input_ids"] == expert.contract.encode_prompt(
        tokenizer, record["fields"], record["question"])

    # compare: every output stops at <|im_end|> (one new token, the end of turn)
    report = compare_run(expert, CompareOptions(run_dir=run, out_dir=tmp_path / "compare")).report
    assert [m["cases"] for m in report["models"]] == [4, 4]
    for model in report["models"]:
        assert (model["unfinished"], model["mean_output_tokens"]) == (0, 1)

    # serve: the OpenAI endpoint answers and stops for the same reason
    options = ServeOptions(base=str(base))
    served = [resolve_expert(f"{root}:{checkpoint.path}")]
    engine = build_engine(served, options)
    with serving(create_app(served, engine, options)) as url:
        reply = httpx.post(f"{url}/v1/chat/completions", json={"model": "mini", "messages": messages},
                           timeout=120).json()
    assert reply["choices"][0]["finish_reason"] == "stop", reply
    assert reply["usage"]["completion_tokens"] == 1
    assert reply["usage"]["prompt_tokens"] == len(exported(prompt, add_special_tokens=False)["input_ids"])

    # ask: the same checkpoint (over the base already loaded) stops at <|im_end|> too, with serve's answer
    engine.add(CHECKPOINT_NAME, checkpoint.path)
    (answer,) = Asker(expert, AskOptions(checkpoint=checkpoint.path), engine=engine).ask(
        [Question(record["fields"], record["question"])])
    assert (answer.finished, answer.tokens) == (True, 1)
    assert "<|im_end|>" not in answer.output and answer.answer == reply["choices"][0]["message"]["content"]

    # package: the archive's chat template is the contract's
    archive = package_expert(expert, checkpoint.path, tmp_path / "mini.expert")
    with tarfile.open(archive) as tar:
        member: Any = tar.extractfile(TEMPLATE_NAME)
        assert member is not None and member.read().decode() == expert.contract.chat_template()


@pytest.mark.parametrize(("layers", "needle"), [("0", "--layers"), ("x", "--layers")])
def test_base_qwen3_shape_refuses_bad_layers(tmp_path: Path, layers: str, needle: str) -> None:
    proc = run_cli("base", "qwen3-shape", "--out", tmp_path / "b", "--layers", layers)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "b").exists()


def test_base_qwen3_shape_never_writes_into_someone_elses_folder(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    assert_one_line_error(run_cli("base", "qwen3-shape", "--out", tmp_path / "b"), "is not empty")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["notes.txt"]
