"""The Hugging Face engine: :class:`~expertkit.engines.inference.generation.Engine` (adapters merged while
active, full weights swapped in place, seeded sampling for voting), registered as ``hf``.

On CPU a small model (under :data:`SMALL_MODEL_PARAMS`) generates on one thread: its matrices are too
small to gain from more, and with several threads it slows down many times over whenever another
process wants the same cores; and in batches of at least :data:`SMALL_MODEL_BATCH` (``min_batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from expertkit.engines.inference.base import InferenceEngine, Stops, TokenSink
from expertkit.engines.inference.generation import Engine, Generation, Sampling

if TYPE_CHECKING:
    from expertkit.engines.inference.constrain import Constraint

#: Models smaller than this generate on one CPU thread.
SMALL_MODEL_PARAMS = 20_000_000
#: The least batch a small model generates on CPU: its steps cost little per row, so wide batches pay.
SMALL_MODEL_BATCH = 128
T = TypeVar("T")


class HfEngine(Engine, InferenceEngine):
    name = "hf"
    streams_tokens = True

    def __init__(self, base: str, checkpoints: Mapping[str, Path] | None = None, **kwargs: Any) -> None:
        super().__init__(base, **kwargs)
        params = sum(p.numel() for p in self.model.parameters())
        self.threads = 1 if self.device.type == "cpu" and params < SMALL_MODEL_PARAMS else None
        self.min_batch = SMALL_MODEL_BATCH if self.threads == 1 else 0

    def _threads(self, work: Callable[[], T]) -> T:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            return work()
        finally:
            torch.set_num_threads(threads)

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
        return self._threads(lambda: super(HfEngine, self).generate(
            prompts, max_new_tokens=max_new_tokens, stops=stops, batch_size=batch_size, constraints=constraints,
            sinks=sinks))

    def sample(self, prompts: Sequence[Sequence[int]], sampling: Sampling, *, max_new_tokens: int, stops: Stops,
               batch_size: int = 32) -> list[list[Generation]]:
        return self._threads(lambda: super(HfEngine, self).sample(
            prompts, sampling, max_new_tokens=max_new_tokens, stops=stops, batch_size=batch_size))
