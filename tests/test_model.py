"""Base models: the tiny base builder, its tokenizer, base resolution and loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from expertkit.core.contract import ContractSpec, FieldSpec, PromptContract
from expertkit.core.errors import ExpertkitError
from expertkit.models.base import (
    THINK_TOKENS,
    TINY_SHAPE,
    build_tiny_base,
    load_model,
    load_tokenizer,
    resolve_base,
    tiny_base_path,
)

CONTRACT = PromptContract(ContractSpec(fields=[FieldSpec(name="Task", values=["query_dsl"])]))
CORPUS = [
    CONTRACT.render_conversation({"Task": "query_dsl"}, f"Find orders of customer {name}",
                                 json.dumps({"query": {"term": {"customer": name}}}))
    for name in ("Eddie", "Mary", "Gwen", "Diane", "Jackson", "Elyssa", "Robbie", "Brigitte")
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(tmp_path_factory.mktemp("t") / "tiny", corpus=CORPUS, vocab_size=300)


def test_tiny_base_is_deterministic_and_qwen3_shaped(tiny: Path, tmp_path: Path) -> None:
    again = build_tiny_base(tmp_path / "again", corpus=CORPUS, vocab_size=300)
    a, b = load_file(str(tiny / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((tiny / "config.json").read_text())
    assert config["model_type"] == "qwen3" and config["tie_word_embeddings"] is True
    assert {k: config[k] for k in TINY_SHAPE} == TINY_SHAPE
    other = build_tiny_base(tmp_path / "other", corpus=CORPUS, vocab_size=300, seed=1)
    assert not torch.equal(load_file(str(other / "model.safetensors"))["model.embed_tokens.weight"],
                           a["model.embed_tokens.weight"])
    assert json.loads((tiny / "expertkit_base.json").read_text())["kind"] == "tiny"


def test_tiny_tokenizer_keeps_control_tokens_whole(tiny: Path) -> None:
    tok = load_tokenizer(str(tiny))
    for token in [*CONTRACT.wrapper.control_tokens, *THINK_TOKENS]:  # the default wrapper's control tokens
        assert len(tok(token, add_special_tokens=False)["input_ids"]) == 1
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # as always
    text = CORPUS[0]
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    prompt = CONTRACT.encode_prompt(tok, {"Task": "query_dsl"}, "Find orders of customer Gwen")
    assert tok.decode(prompt) == CONTRACT.render_prompt({"Task": "query_dsl"}, "Find orders of customer Gwen")
    assert prompt.count(tok.convert_tokens_to_ids("<think>")) == 1  # the empty think block's


def test_load_model_runs_on_cpu_in_fp32(tiny: Path) -> None:
    model = load_model(str(tiny), device="cpu")
    assert next(model.parameters()).dtype == torch.float32
    assert model.config._attn_implementation == "sdpa"
    eager = load_model(str(tiny), device="cpu", attn_implementation="eager")
    assert eager.config._attn_implementation == "eager"


def test_resolve_base(tiny: Path, tmp_path: Path) -> None:
    assert resolve_base(str(tiny)) == str(tiny)
    assert resolve_base("Qwen/Qwen3-0.6B") == "Qwen/Qwen3-0.6B"
    with pytest.raises(ExpertkitError, match=r"no config\.json"):
        resolve_base(str(tmp_path))
    with pytest.raises(ExpertkitError, match="no such base model folder"):
        resolve_base("./missing-base")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(ExpertkitError, match="could not load base model"):
        load_tokenizer(str(broken))


def test_tiny_resolves_to_a_cached_build_of_the_shipped_data() -> None:
    if not (Path(__file__).resolve().parents[1] / "experts" / "elastic" / "data" / "train.jsonl").is_file():
        pytest.skip("the shipped dataset is not generated")
    path = Path(resolve_base("tiny"))
    assert path == tiny_base_path() and (path / "expertkit_base.json").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_base("tiny") == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # built once
