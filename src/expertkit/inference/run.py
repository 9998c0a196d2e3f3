"""The one way an expert's prompts are generated: the same stops, grammars and batching for compare,
serve and ask, so that the three give byte-identical answers for the same checkpoint and question."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from expertkit.expert import Expert
from expertkit.generation import Generation
from expertkit.inference.base import InferenceEngine, TokenSink, contract_stops


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
    from expertkit.constrain import constraint_for

    if not getattr(engine, "in_memory", False):  # a model handed over (training) is used as it is
        engine.activate(checkpoint)
    batch_size = max(batch_size, getattr(engine, "min_batch", 0))
    stops = contract_stops(expert.contract, engine.tokenizer)
    constraints = [constraint_for(expert, constrain, f) for f in fields]
    any_constraint = any(c is not None for c in constraints)
    # sorted by length so that a batch wastes little padding; the engine keeps the order it is given
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
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
