"""Batched greedy generation over one base model with switchable checkpoints.

The base is loaded once. LoRA/DoRA checkpoints are loaded as named PEFT adapters, switched with
``set_adapter`` and merged into the base weights while active (unmerged when another one is
activated); full fine-tuning checkpoints are swapped in as weights. Generation is greedy
(deterministic), batched with left padding, prompts sorted by length to waste little padding.

:meth:`Engine.sample` draws several seeded candidates per prompt in one batch (temperature, top-p),
each with its mean token log-probability under the model, for validator-guided decoding
(:mod:`expertkit.engines.inference.voting`). :meth:`Engine.from_model` wraps a model already in memory (the one being
trained, for scores while training) without loading anything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.core.checkpoints import checkpoint_kind
from expertkit.core.errors import ExpertkitError
from expertkit.models.base import load_model, load_tokenizer

if TYPE_CHECKING:
    from expertkit.engines.inference.base import Stops, TokenSink
    from expertkit.engines.inference.constrain import Constraint


@dataclass(frozen=True)
class Generation:
    """One output: decoded text (end-of-turn removed), its new-token count, and its share of time."""

    text: str
    new_tokens: int
    finished: bool
    latency_s: float
    #: Mean log-probability of the generated tokens under the model (sampled candidates only).
    logprob: float | None = None


@dataclass(frozen=True)
class Sampling:
    """How :meth:`Engine.sample` draws: ``n`` candidates per prompt, seeded."""

    n: int
    temperature: float
    top_p: float
    seed: int = 0


class Engine:
    """One base model in memory; checkpoints registered by name and activated in place."""

    def __init__(self, base: str, *, device: str | None = None, dtype: Any = None, model: Any = None,
                 tokenizer: Any = None) -> None:
        self.base = base
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base)
        self.model = model if model is not None else load_model(base, device=device, dtype=dtype)
        self.in_memory = model is not None  # a model handed over as it is: generate with it unchanged
        if not self.in_memory:
            self.model.eval()
        self.device = next(self.model.parameters()).device
        self._paths: dict[str, Path] = {}
        self._kinds: dict[str, str] = {}
        self._base_state: dict[str, Any] | None = None
        self._active_full: str | None = None
        self._merged: str | None = None
        self.active: str | None = None
        self.pad_id = self.tokenizer.pad_token_id

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, name: str = "in-memory") -> Engine:
        """An engine over a model already in memory (adapters and all, used as they are)."""
        return cls(name, model=model, tokenizer=tokenizer)

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
                if self._merged is not None:  # peft would unmerge behind our back: the record would lie
                    self.model.unmerge_adapter()
                    self._merged = None
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
        stops: Stops,
        batch_size: int = 32,
        constraints: Sequence[Constraint | None] | None = None,
        sinks: Sequence[TokenSink | None] | None = None,
    ) -> list[Generation]:
        """Greedy outputs for token-id prompts, in the order given, ended by the ``stops`` of the contract.

        ``constraints`` (one per prompt) mask each row's tokens with its grammar; ``sinks`` receive each
        row's tokens as they come and may cancel the row.
        """
        return [c[0] for c in self._run(prompts, max_new_tokens, batch_size, stops, None, constraints, sinks)]

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        sampling: Sampling,
        *,
        max_new_tokens: int,
        stops: Stops,
        batch_size: int = 32,
    ) -> list[list[Generation]]:
        """``sampling.n`` candidates per prompt (each with its mean log-probability), in the order given.

        The candidates of a prompt are drawn in one batch (``num_return_sequences``); ``batch_size``
        counts sequences, so a batch holds ``batch_size // n`` prompts. Seeded per batch: the same
        prompts, settings and seed give the same candidates.
        """
        per_batch = max(1, batch_size // sampling.n)
        return self._run(prompts, max_new_tokens, per_batch, stops, sampling, None, None)

    def _run(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, batch_size: int, stops: Stops,
             sampling: Sampling | None, constraints: Sequence[Constraint | None] | None,
             sinks: Sequence[TokenSink | None] | None) -> list[list[Generation]]:
        import contextlib

        import torch
        from peft import PeftModel

        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[list[Generation] | None] = [None] * len(prompts)
        use_base = not self.in_memory and (self.active is None or self._kinds.get(self.active) == "full")
        disable = (
            self.model.disable_adapter() if use_base and isinstance(self.model, PeftModel)
            else contextlib.nullcontext()
        )
        extra: dict[str, Any] = {}
        if stops.strings:
            extra = {"stop_strings": list(stops.strings), "tokenizer": self.tokenizer}
        n = 1
        if sampling is not None:
            n = sampling.n
            extra.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0,
                         num_return_sequences=n, output_logits=True, return_dict_in_generate=True)
        else:
            extra.update(do_sample=False)
        with disable, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = [list(prompts[i]) for i in idx]
                width = max(len(b) for b in batch)
                input_ids = torch.tensor([[self.pad_id] * (width - len(b)) + b for b in batch],
                                         device=self.device)
                attention = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch],
                                         device=self.device)
                if sampling is not None:
                    torch.manual_seed(sampling.seed + start)
                hooks = _row_hooks(self.tokenizer, self.model.config.vocab_size,
                                   [constraints[i] for i in idx] if constraints else None,
                                   [sinks[i] for i in idx] if sinks else None, stops.token_ids)
                t0 = time.perf_counter()
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=list(stops.token_ids),
                    pad_token_id=self.pad_id,
                    **hooks,
                    **extra,
                )
                logprobs: list[list[float]] | None = None
                if sampling is not None:
                    sequences = out.sequences
                    steps = torch.stack(out.logits, dim=1).float().log_softmax(-1)  # (rows, new, vocab)
                    new = sequences[:, width:]
                    logprobs = steps.gather(-1, new.unsqueeze(-1)).squeeze(-1).tolist()
                else:
                    sequences = out
                per_output = (time.perf_counter() - t0) / (len(batch) * n)
                rows = sequences[:, width:].tolist()
                for k, i in enumerate(idx):
                    results[i] = [
                        self._decode(rows[k * n + j], per_output, stops,
                                     logprobs[k * n + j] if logprobs is not None else None)
                        for j in range(n)
                    ]
        return [r for r in results if r is not None]

    def _decode(self, row: list[int], latency: float, stops: Stops,
                logprobs: list[float] | None = None) -> Generation:
        finished = False
        for n, tok in enumerate(row):
            if tok in stops.token_ids:
                row, finished = row[:n], True
                break
        mean_logprob = None
        if logprobs is not None:  # over the tokens kept, end of turn included
            kept = logprobs[: len(row) + (1 if finished else 0)]
            mean_logprob = sum(kept) / len(kept) if kept else 0.0
        text = self.tokenizer.decode(row, skip_special_tokens=False)
        for stop in stops.strings:
            cut = text.find(stop)
            if cut != -1:
                text, finished = text[:cut], True
        return Generation(text=text.strip(), new_tokens=len(row) + (1 if finished else 0),
                          finished=finished, latency_s=latency, logprob=mean_logprob)


def _row_hooks(tokenizer: Any, vocab_size: int, constraints: Sequence[Constraint | None] | None,
               sinks: Sequence[TokenSink | None] | None, stop_ids: Sequence[int]) -> dict[str, Any]:
    """``generate`` keyword arguments for one batch: grammar masks, a streamer and a per-row stop."""
    extra: dict[str, Any] = {}
    if constraints and any(c is not None for c in constraints):
        from expertkit.engines.inference.constrain import hf_logits_processor

        extra["logits_processor"] = [hf_logits_processor(tokenizer, vocab_size, stop_ids, constraints)]
    if sinks and any(s is not None for s in sinks):
        from transformers import StoppingCriteriaList

        extra["streamer"] = _BatchStreamer(sinks, stop_ids)
        extra["stopping_criteria"] = StoppingCriteriaList([_Cancelled(sinks)])
    return extra


class _BatchStreamer:
    """transformers' streamer protocol for a batch: each row's new token goes to its sink until it stops."""

    def __init__(self, sinks: Sequence[TokenSink | None], stop_ids: Sequence[int]) -> None:
        self.sinks = list(sinks)
        self.stop_ids = set(stop_ids)
        self.done = [s is None for s in self.sinks]
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call carries the prompts
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            sink = self.sinks[row]
            if self.done[row] or sink is None:
                continue
            if token in self.stop_ids or sink.cancelled:
                self.done[row] = True
                continue
            sink.push([token])

    def end(self) -> None:
        pass


class _Cancelled:
    """A stopping criterion: a row whose sink was cancelled (its client went away) ends now."""

    def __init__(self, sinks: Sequence[TokenSink | None]) -> None:
        self.sinks = list(sinks)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.tensor([s is not None and s.cancelled for s in self.sinks], device=input_ids.device)
