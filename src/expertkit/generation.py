"""Batched greedy generation over one base model with switchable checkpoints.

The base is loaded once. LoRA/DoRA checkpoints are loaded as named PEFT adapters, switched with
``set_adapter`` and merged into the base weights while active (unmerged when another one is
activated); full fine-tuning checkpoints are swapped in as weights. Generation is greedy
(deterministic), batched with left padding, prompts sorted by length to waste little padding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expertkit.errors import ExpertkitError
from expertkit.model import load_model, load_tokenizer


@dataclass(frozen=True)
class Generation:
    """One output: decoded text (end-of-turn removed), its new-token count, and its share of time."""

    text: str
    new_tokens: int
    finished: bool
    latency_s: float


def checkpoint_kind(path: Path) -> str:
    """``adapter`` (PEFT folder) or ``full`` (a whole model folder)."""
    if (path / "adapter_config.json").is_file():
        return "adapter"
    if (path / "config.json").is_file():
        return "full"
    raise ExpertkitError("neither a PEFT adapter nor a model folder", path=path)


class Engine:
    """One base model in memory; checkpoints registered by name and activated in place."""

    def __init__(self, base: str, *, device: str | None = None, dtype: Any = None) -> None:
        self.base = base
        self.tokenizer = load_tokenizer(base)
        self.model = load_model(base, device=device, dtype=dtype)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self._paths: dict[str, Path] = {}
        self._kinds: dict[str, str] = {}
        self._base_state: dict[str, Any] | None = None
        self._active_full: str | None = None
        self._merged: str | None = None
        self.active: str | None = None
        vocab = self.tokenizer.get_vocab()
        self.pad_id = self.tokenizer.pad_token_id
        self.eos_ids = [vocab[t] for t in ("<|im_end|>", "<|endoftext|>") if t in vocab]
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in self.eos_ids:
            self.eos_ids.append(self.tokenizer.eos_token_id)

    # ------------------------------------------------------------------ checkpoints
    def add(self, name: str, path: str | Path) -> None:
        """Register a checkpoint; adapters are loaded now, full weights when activated."""
        p = Path(path)
        kind = checkpoint_kind(p)
        others = set(self._kinds.values()) - {kind}
        if others:
            # full weights cannot be swapped under LoRA-wrapped layers: one kind per engine
            raise ExpertkitError(f"this engine holds {others.pop()} checkpoints; it cannot also hold a {kind} one",
                                 path=p)
        if kind == "adapter":
            from peft import PeftModel

            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(p), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(p), adapter_name=name)
            self.model.eval()
        self._paths[name] = p
        self._kinds[name] = kind

    @property
    def names(self) -> list[str]:
        return list(self._paths)

    def _restore_base_weights(self) -> None:
        if self._active_full is not None:
            self._restore_base_weights_from(self._base_model())

    def _restore_base_weights_from(self, model: Any) -> None:
        if self._base_state is not None:
            model.load_state_dict(self._base_state, strict=False)
        self._active_full = None

    def _base_model(self) -> Any:
        from peft import PeftModel

        return self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model

    def activate(self, name: str | None) -> None:
        """Make ``name`` (or the bare base, ``None``) the model that generates."""
        if name is not None and name not in self._paths:
            raise ExpertkitError(f"unknown checkpoint {name!r}")
        kind = self._kinds.get(name) if name else None
        if kind == "full":
            import torch
            from safetensors.torch import load_file

            if self._active_full != name:
                model = self._base_model()
                if self._base_state is None:
                    self._base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                state: dict[str, Any] = {}
                for shard in sorted(self._paths[name].glob("*.safetensors")):
                    state.update(load_file(str(shard), device=str(self.device)))
                with torch.no_grad():
                    result = model.load_state_dict(state, strict=False)
                missing = [k for k in result.missing_keys if k != "lm_head.weight"]  # tied to the embeddings
                if result.unexpected_keys or missing:
                    self._restore_base_weights_from(model)
                    raise ExpertkitError(
                        "checkpoint weights do not fit the base model "
                        f"(unexpected {result.unexpected_keys[:3]}, missing {missing[:3]})",
                        path=self._paths[name],
                    )
                self._active_full = name
        else:
            self._restore_base_weights()
        if self._merged is not None and self._merged != name:
            self.model.unmerge_adapter()
            self._merged = None
        if kind == "adapter" and self._merged != name:
            # merged into the base weights, the adapter costs nothing per token (about 2x on CPU)
            self.model.set_adapter(name)
            self.model.merge_adapter()
            self._merged = name
        self.active = name

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        batch_size: int = 32,
        stop_strings: Sequence[str] = (),
    ) -> list[Generation]:
        """Greedy outputs for token-id prompts, in the order given."""
        import contextlib

        import torch
        from peft import PeftModel

        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Generation | None] = [None] * len(prompts)
        use_base = self.active is None or self._kinds.get(self.active) == "full"
        disable = (
            self.model.disable_adapter() if use_base and isinstance(self.model, PeftModel)
            else contextlib.nullcontext()
        )
        extra: dict[str, Any] = {}
        if stop_strings:
            extra = {"stop_strings": list(stop_strings), "tokenizer": self.tokenizer}
        with disable, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = [list(prompts[i]) for i in idx]
                width = max(len(b) for b in batch)
                input_ids = torch.tensor([[self.pad_id] * (width - len(b)) + b for b in batch],
                                         device=self.device)
                attention = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch],
                                         device=self.device)
                t0 = time.perf_counter()
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=self.eos_ids,
                    pad_token_id=self.pad_id,
                    **extra,
                )
                per_output = (time.perf_counter() - t0) / len(batch)
                for row, i in zip(out[:, width:].tolist(), idx, strict=True):
                    results[i] = self._decode(row, per_output, stop_strings)
        return [r for r in results if r is not None]

    def _decode(self, row: list[int], latency: float, stop_strings: Sequence[str]) -> Generation:
        finished = False
        for n, tok in enumerate(row):
            if tok in self.eos_ids:
                row, finished = row[:n], True
                break
        text = self.tokenizer.decode(row, skip_special_tokens=False)
        for stop in stop_strings:
            cut = text.find(stop)
            if cut != -1:
                text, finished = text[:cut], True
        return Generation(text=text.strip(), new_tokens=len(row) + (1 if finished else 0),
                          finished=finished, latency_s=latency)
