"""The inference engine interface: one base model, checkpoints added and activated, batches generated.

Engines register themselves by name (``name = "hf"`` on the class); :func:`create_engine` builds one
from that name, so ``compare``, ``serve`` and ``ask`` never branch on which engine runs. Every engine
stops where the contract says a turn ends (:func:`contract_stops`) and decodes greedily; a row may
carry a grammar (:class:`~expertkit.engines.inference.constrain.Constraint`) that masks what it may generate, a sink
that receives its tokens as they come (streaming) and that may cancel it.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from expertkit.core.errors import ExpertkitError
from expertkit.engines.inference.generation import Generation, Sampling, checkpoint_kind

if TYPE_CHECKING:
    from expertkit.core.contract import PromptContract
    from expertkit.engines.inference.constrain import Constraint

#: Modules holding the engines shipped with expertkit (imported on first lookup: they self-register).
BUILTIN_ENGINE_MODULES = ("expertkit.engines.inference.hf", "expertkit.engines.inference.vllm")
_ENGINES: dict[str, type[InferenceEngine]] = {}


@dataclass(frozen=True)
class Stops:
    """Where generation ends: token ids (single-token end-of-turn markers) and strings (the others)."""

    token_ids: tuple[int, ...]
    strings: tuple[str, ...] = ()


def contract_stops(contract: PromptContract, tokenizer: Any) -> Stops:
    """The contract's end-of-turn markers for ``tokenizer``: a marker that is one control token is a stop
    token (cheaper and exact), any other stays a stop string; the tokenizer's own end-of-sequence too."""
    ids: list[int] = []
    strings: list[str] = []
    control = {str(t) for t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values()}
    vocab = tokenizer.get_vocab()
    for stop in contract.stop_strings:
        if stop in control and stop in vocab:
            ids.append(int(vocab[stop]))
        else:
            strings.append(stop)
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int) and eos not in ids:
        ids.append(eos)
    return Stops(tuple(ids), tuple(strings))


class TokenSink(Protocol):
    """Receives one row's new token ids as they are generated; ``cancelled`` ends the row early."""

    def push(self, token_ids: Sequence[int]) -> None: ...

    @property
    def cancelled(self) -> bool: ...


class InferenceEngine(ABC):
    """One base model in memory; checkpoints registered by name and activated in turn."""

    #: The name ``--engine`` selects; a subclass with a name registers itself.
    name: ClassVar[str] = ""
    #: Whether :meth:`generate` feeds sinks token by token (else once, at the end).
    streams_tokens: ClassVar[bool] = False
    tokenizer: Any
    base: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _ENGINES[cls.name] = cls

    @classmethod
    def check_checkpoints(cls, checkpoints: Mapping[str, Path]) -> None:
        """Refuse, before anything is loaded, checkpoints this engine cannot run (one line, the reason)."""
        kinds = {checkpoint_kind(Path(p)) for p in checkpoints.values()}
        if len(kinds) > 1:  # full weights cannot be swapped in under injected adapter layers
            raise ExpertkitError("the checkpoints mix LoRA/DoRA adapters and full weights; one engine holds "
                                 "one kind (compare or serve each kind on its own)", key="--checkpoints")

    @abstractmethod
    def add(self, name: str, path: str | Path) -> None:
        """Register a checkpoint (adapter or full weights) under ``name``."""

    @abstractmethod
    def activate(self, name: str | None) -> None:
        """Make ``name`` (or the bare base, ``None``) the model that generates."""

    @abstractmethod
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
        """Greedy outputs for token-id prompts, in the order given, ended by ``stops``."""


    def sample(self, prompts: Sequence[Sequence[int]], sampling: Sampling, *, max_new_tokens: int, stops: Stops,
               batch_size: int = 32) -> list[list[Generation]]:
        """``sampling.n`` seeded candidates per prompt, each with its mean log-probability (for voting)."""
        raise ExpertkitError(f"the {self.name} engine does not sample candidates", key="--samples")


def engine_names() -> list[str]:
    for module in BUILTIN_ENGINE_MODULES:
        importlib.import_module(module)
    return sorted(_ENGINES)


def engine_class(name: str) -> type[InferenceEngine]:
    names = engine_names()
    if name not in _ENGINES:
        raise ExpertkitError(f"unknown engine {name!r} (one of {', '.join(names)})", key="--engine")
    return _ENGINES[name]


def create_engine(name: str, base: str, checkpoints: Mapping[str, Path]) -> InferenceEngine:
    """Check the checkpoints against the engine's policy, load the base, add every checkpoint."""
    cls = engine_class(name)
    cls.check_checkpoints(checkpoints)
    engine = cls(base, checkpoints)  # type: ignore[call-arg]
    for label, path in checkpoints.items():
        try:
            engine.add(label, path)
        except ExpertkitError:
            raise
        except Exception as exc:
            raise ExpertkitError(f"cannot load this checkpoint over base {base!r}: {type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())[:300]}", path=path) from None
    return engine
