"""The vLLM engine (GPU only), registered as ``vllm``: the base loaded once, each adapter a ``LoRARequest``.

Prompts go in as the contract's token ids and decoding is greedy, as with ``hf``; the contract's stop
tokens and strings end a row, special tokens are kept in the text (as ``hf`` decodes), and a row's
grammar goes to vLLM's structured outputs as the same EBNF the ``hf`` engine compiles.

DoRA policy: **refused**, with the reason. vLLM's LoRA kernels apply ``B @ A`` only; DoRA's magnitude
vector would be silently dropped and the answers would not be the ones compare measured. Full-weight
checkpoints are refused too (one base per engine; serve them with ``--engine hf``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import read_json
from expertkit.engines.inference.base import InferenceEngine, Stops, TokenSink
from expertkit.engines.inference.generation import Generation, Sampling, checkpoint_kind

if TYPE_CHECKING:
    from expertkit.engines.inference.constrain import Constraint


def _adapter_config(path: Path) -> dict[str, Any]:
    value = read_json(path / "adapter_config.json", what="adapter config")
    return value if isinstance(value, dict) else {}


class VllmEngine(InferenceEngine):
    name = "vllm"

    @classmethod
    def check_checkpoints(cls, checkpoints: Mapping[str, Path]) -> None:
        full = [n for n, p in checkpoints.items() if checkpoint_kind(Path(p)) != "adapter"]
        if full:
            raise ExpertkitError(f"--engine vllm runs LoRA adapters only; {', '.join(full)} hold full weights "
                                 "(use --engine hf)", key="--engine")
        dora = [n for n, p in checkpoints.items() if _adapter_config(Path(p)).get("use_dora")]
        if dora:
            raise ExpertkitError(f"--engine vllm refuses DoRA adapters ({', '.join(dora)}): its LoRA kernels would "
                                 "drop DoRA's magnitude vectors and answer differently; use --engine hf",
                                 key="--engine")

    def __init__(self, base: str, checkpoints: Mapping[str, Path] | None = None) -> None:
        try:
            import vllm
        except ImportError:
            raise ExpertkitError("--engine vllm needs the vllm package (pip install vllm)", key="--engine") from None
        import torch

        if not torch.cuda.is_available():
            raise ExpertkitError("--engine vllm needs a CUDA GPU; use --engine hf on this machine", key="--engine")
        from expertkit.models.base import load_tokenizer, resolve_base

        checkpoints = dict(checkpoints or {})
        ranks = [int(_adapter_config(Path(p)).get("r", 16)) for p in checkpoints.values()]
        self.base = base
        self.tokenizer = load_tokenizer(base)
        # vLLM accepts only some ranks as the maximum (8, 16, 32, ...): 16 covers the small ones
        self.llm = vllm.LLM(model=resolve_base(base), enable_lora=bool(checkpoints), max_lora_rank=max([16, *ranks]),
                            max_loras=max(len(checkpoints), 1))
        self._requests: dict[str, Any] = {}
        self.active: str | None = None

    def add(self, name: str, path: str | Path) -> None:
        from vllm.lora.request import LoRARequest

        self._requests[name] = LoRARequest(name, len(self._requests) + 1, str(path))

    def activate(self, name: str | None) -> None:
        if name is not None and name not in self._requests:
            raise ExpertkitError(f"unknown checkpoint {name!r}")
        self.active = name

    def _params(self, max_new_tokens: int, stops: Stops, constraint: Constraint | None) -> Any:
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if constraint is not None:
            try:  # vLLM >= 0.11
                from vllm.sampling_params import StructuredOutputsParams

                extra["structured_outputs"] = StructuredOutputsParams(grammar=constraint.ebnf)
            except ImportError:  # older vLLM: guided decoding, the same xgrammar backend
                from vllm.sampling_params import GuidedDecodingParams

                extra["guided_decoding"] = GuidedDecodingParams(grammar=constraint.ebnf, backend="xgrammar")
        return SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop=list(stops.strings),
                              stop_token_ids=list(stops.token_ids), skip_special_tokens=False, **extra)

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
        from vllm.inputs import TokensPrompt

        rows = constraints or [None] * len(prompts)
        params = [self._params(max_new_tokens, stops, c) for c in rows]
        t0 = time.perf_counter()
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], params,
                                    lora_request=self._requests.get(self.active or ""), use_tqdm=False)
        share = (time.perf_counter() - t0) / max(len(prompts), 1)
        results = []
        for n, o in enumerate(outputs):
            first = o.outputs[0]
            sink = sinks[n] if sinks else None
            if sink is not None:  # the offline engine answers whole rows: a stream gets its tokens at once
                sink.push([t for t in first.token_ids if t not in stops.token_ids])
            finished = first.finish_reason == "stop"
            results.append(Generation(text=first.text.strip(), new_tokens=len(first.token_ids), finished=finished,
                                      latency_s=share))
        return results

    def sample(self, prompts: Sequence[Sequence[int]], sampling: Sampling, *, max_new_tokens: int, stops: Stops,
               batch_size: int = 32) -> list[list[Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                seed=sampling.seed, logprobs=0, max_tokens=max_new_tokens, stop=list(stops.strings),
                                stop_token_ids=list(stops.token_ids), skip_special_tokens=False)
        t0 = time.perf_counter()
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], params,
                                    lora_request=self._requests.get(self.active or ""), use_tqdm=False)
        share = (time.perf_counter() - t0) / max(len(prompts) * sampling.n, 1)
        return [[Generation(text=c.text.strip(), new_tokens=len(c.token_ids), finished=c.finish_reason == "stop",
                            latency_s=share,
                            logprob=(c.cumulative_logprob / len(c.token_ids)
                                     if c.cumulative_logprob is not None and c.token_ids else None))
                 for c in o.outputs] for o in outputs]
