"""Liger's kernels (the ``gpu`` extra): on where CUDA and triton are, the loss unchanged within bf16 tolerance;
off with the reason anywhere else."""

from __future__ import annotations

import pytest
import torch

from expertkit.training.train import liger_available


def test_liger_says_why_it_is_off() -> None:
    on, note = liger_available()
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert (on, note) == (False, "Liger kernels off (no CUDA device)")


def test_liger_kernels_keep_the_loss() -> None:
    on, note = liger_available()
    if not on:
        pytest.skip(note)
    from liger_kernel.transformers import _apply_liger_kernel_to_instance
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=4096, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=64)
    model = Qwen3ForCausalLM(config).to("cuda", torch.bfloat16)
    ids = torch.randint(0, 4096, (4, 128), device="cuda")
    positions = torch.arange(64, device="cuda").repeat(4, 2)  # two packed sequences per row
    with torch.no_grad():
        unfused = model(input_ids=ids, position_ids=positions, labels=ids).loss.float()
        # as TRL applies them: layer kernels only, its own fused LM head stays
        _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=False)
        fused = model(input_ids=ids, position_ids=positions, labels=ids).loss.float()
    assert abs(float(fused) - float(unfused)) <= 2e-2 * float(unfused)
