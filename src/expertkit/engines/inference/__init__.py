"""One inference engine under ``compare``, ``serve`` and ``ask`` (see :mod:`expertkit.engines.inference.base`)."""

from expertkit.engines.inference.base import (
    InferenceEngine,
    Stops,
    TokenSink,
    contract_stops,
    create_engine,
    engine_class,
    engine_names,
)
from expertkit.engines.inference.run import generate_for, sample_for, voted_for

__all__ = [
    "InferenceEngine",
    "Stops",
    "TokenSink",
    "contract_stops",
    "create_engine",
    "engine_class",
    "engine_names",
    "generate_for",
    "sample_for",
    "voted_for",
]
