"""The one way an expert's prompts are generated: the same stops, grammars and batching for compare,
serve and ask, so that the three give byte-identical answers for the same checkpoint and question."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from expertkit.engines.inference.base import InferenceEngine, Stops, TokenSink, contract_stops
from expertkit.engines.inference.generation import Generation, Sampling

if TYPE_CHECKING:
    from expertkit.engines.inference.voting import Vote
    from expertkit.expert import Expert


def _prepare(engine: InferenceEngine, expert: Expert, checkpoint: str | None, prompts: Sequence[Sequence[int]],
             batch_size: int) -> tuple[int, Stops, list[int]]:
    """``checkpoint`` activated; the batch size the engine takes, the contract's stops, and the prompts'
    positions sorted by length (a batch wastes little padding; the engine keeps the order it is given)."""
    if not getattr(engine, "in_memory", False):  # a model handed over (training) is used as it is
        engine.activate(checkpoint)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    return max(batch_size, getattr(engine, "min_batch", 0)), contract_stops(expert.contract, engine.tokenizer), order


def generate_for(
    engine: InferenceEngine,
    expert: Expert,
    checkpoint: str | None,
    prompts: Sequence[Sequence[int]],
    fields: Sequence[Mapping[str, str]],
    *,
    max_new_tokens: int,
    constrain: str = "none",
    batch_size: int = 32,
    sinks: Sequence[TokenSink | None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> list[Generation]:
    """Greedy outputs of ``checkpoint`` (``None``: the base) for an expert's encoded prompts, in order.

    ``fields`` are each prompt's canonical fields (they pick the grammar of ``constrain``); ``advance(n)``
    is called after every batch of ``n``.
    """
    from expertkit.engines.inference.constrain import constraint_for

    batch_size, stops, order = _prepare(engine, expert, checkpoint, prompts, batch_size)
    constraints = [constraint_for(expert, constrain, f) for f in fields]
    any_constraint = any(c is not None for c in constraints)
    out: list[Generation | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = engine.generate([prompts[i] for i in idx], max_new_tokens=max_new_tokens, stops=stops,
                                batch_size=batch_size,
                                constraints=[constraints[i] for i in idx] if any_constraint else None,
                                sinks=[sinks[i] for i in idx] if sinks else None)
        for i, g in zip(idx, batch, strict=True):
            out[i] = g
        if advance is not None:
            advance(len(idx))
    return [g for g in out if g is not None]


def sample_for(
    engine: InferenceEngine,
    expert: Expert,
    checkpoint: str | None,
    prompts: Sequence[Sequence[int]],
    sampling: Sampling,
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    advance: Callable[[int], None] | None = None,
) -> list[list[Generation]]:
    """``sampling.n`` seeded candidates per prompt (with log-probabilities), in prompt order.

    Prompts are batched by length, ``batch_size // n`` at a time; each batch is seeded with
    ``sampling.seed`` plus its first position, so a run is reproducible for the same prompts and batch size.
    """
    batch_size, stops, order = _prepare(engine, expert, checkpoint, prompts, batch_size)
    out: list[list[Generation] | None] = [None] * len(prompts)
    step = max(1, batch_size // sampling.n)
    for start in range(0, len(order), step):
        idx = order[start : start + step]
        seeded = replace(sampling, seed=sampling.seed + start)
        got = engine.sample([prompts[i] for i in idx], seeded, max_new_tokens=max_new_tokens, stops=stops,
                            batch_size=batch_size)
        for i, g in zip(idx, got, strict=True):
            out[i] = g
        if advance is not None:
            advance(len(idx))
    return [g for g in out if g is not None]


def voted_for(
    engine: InferenceEngine,
    expert: Expert,
    checkpoint: str | None,
    prompts: Sequence[Sequence[int]],
    fields: Sequence[Mapping[str, str]],
    sampling: Sampling,
    *,
    max_new_tokens: int,
    constrain: str = "none",
    batch_size: int = 32,
) -> list[tuple[Generation, Vote]]:
    """Validator-guided decoding for ``ask`` and ``serve``: per prompt, the voted candidate
    (:func:`expertkit.engines.inference.voting.vote`) and its vote; where no candidate is valid, the greedy output of
    :func:`generate_for` instead. A chosen candidate's latency is that of all the prompt's candidates."""
    from expertkit.engines.inference.voting import vote_or_greedy

    drawn = sample_for(engine, expert, checkpoint, prompts, sampling, max_new_tokens=max_new_tokens,
                       batch_size=batch_size)
    return vote_or_greedy(expert, fields, drawn, lambda idx: generate_for(
        engine, expert, checkpoint, [prompts[i] for i in idx], [fields[i] for i in idx],
        max_new_tokens=max_new_tokens, constrain=constrain, batch_size=batch_size))
