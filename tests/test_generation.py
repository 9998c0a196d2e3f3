"""The generation engine: one base, checkpoints switched in place, batched greedy decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from expertkit.core.errors import ExpertkitError
from expertkit.engines.inference import Stops
from expertkit.engines.inference.generation import Engine
from expertkit.models.base import build_tiny_base

CORPUS = [f"<|im_start|>user\nquestion {i} about orders<|im_end|>\n{{\"size\":{i}}}" for i in range(200)]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bases")
    return build_tiny_base(root / "a", seed=0, corpus=CORPUS), build_tiny_base(root / "b", seed=1, corpus=CORPUS)


def _stops(engine: Engine) -> Stops:
    """What the qwen3 contract ends a turn with, for this engine's tokenizer."""
    return Stops((engine.tokenizer.convert_tokens_to_ids("<|im_end|>"),))


def _prompts(engine: Engine) -> list[list[int]]:
    texts = ["<|im_start|>user\nquestion 3<|im_end|>\n",
             "<|im_start|>user\norders about question 12 and more<|im_end|>\n"]
    return [engine.tokenizer(t)["input_ids"] for t in texts]


def test_full_checkpoint_swap_equals_loading_it_directly(bases: tuple[Path, Path]) -> None:
    a, b = bases
    engine = Engine(str(a), device="cpu")
    direct_b = Engine(str(b), device="cpu")
    prompts = _prompts(engine)
    base_out = [g.text for g in engine.generate(prompts, max_new_tokens=12, stops=_stops(engine))]
    engine.add("b", b)
    engine.activate("b")
    assert [g.text for g in engine.generate(prompts, max_new_tokens=12, stops=_stops(engine))] == \
        [g.text for g in direct_b.generate(prompts, max_new_tokens=12, stops=_stops(direct_b))]
    engine.activate(None)
    assert [g.text for g in engine.generate(prompts, max_new_tokens=12, stops=_stops(engine))] == base_out


def test_batching_does_not_change_greedy_outputs(bases: tuple[Path, Path]) -> None:
    engine = Engine(str(bases[0]), device="cpu")
    prompts = _prompts(engine) * 3
    one = engine.generate(prompts, max_new_tokens=10, stops=_stops(engine), batch_size=1)
    many = engine.generate(prompts, max_new_tokens=10, stops=_stops(engine), batch_size=6)
    assert [g.text for g in one] == [g.text for g in many]
    assert all(g.new_tokens <= 10 for g in many)


def test_mixing_adapters_and_full_checkpoints_is_refused(bases: tuple[Path, Path], tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    a, b = bases
    adapter = tmp_path / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(a), LoraConfig(r=2, target_modules="all-linear")) \
        .save_pretrained(adapter)
    engine = Engine(str(a), device="cpu")
    engine.add("lora", adapter)
    with pytest.raises(ExpertkitError, match="cannot also hold"):
        engine.add("full", b)


def test_an_active_adapter_is_merged_and_matches_peft(bases: tuple[Path, Path], tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    a = bases[0]
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        path = tmp_path / f"adapter{i}"
        config = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
        get_peft_model(AutoModelForCausalLM.from_pretrained(a), config).save_pretrained(path)
        paths.append(path)
    engine = Engine(str(a), device="cpu")
    for i, path in enumerate(paths):
        engine.add(f"a{i}", path)
    ids = torch.tensor([_prompts(engine)[1]])
    base_logits = AutoModelForCausalLM.from_pretrained(a)(ids).logits
    for i, path in enumerate(paths):
        engine.activate(f"a{i}")
        reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(a), path)(ids).logits
        with torch.no_grad():
            got = engine.model(ids).logits
        assert torch.allclose(got, reference, atol=1e-4)
        assert not torch.allclose(got, base_logits, atol=1e-3)
    engine.activate(None)
    out = engine.generate(_prompts(engine), max_new_tokens=8, stops=_stops(engine))
    plain = Engine(str(a), device="cpu")
    base = plain.generate(_prompts(engine), max_new_tokens=8, stops=_stops(plain))
    assert [g.text for g in out] == [g.text for g in base]
