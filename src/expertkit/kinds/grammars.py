"""The registry of ``schema`` grammars by output kind (used by :mod:`expertkit.engines.inference.constrain`).

A kind's plug-in registers a builder ``(expert, fields) -> EBNF`` with :func:`schema_grammar`; the
inference engines look it up by the manifest's ``output.kind``. The registry lives with the kinds, below
the engines, so a kind never imports an engine to register its grammar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from expertkit.expert import Expert

SchemaGrammar = Callable[["Expert", Mapping[str, str]], str | None]
SCHEMA_GRAMMARS: dict[str, SchemaGrammar] = {}


def schema_grammar(kind: str) -> Callable[[SchemaGrammar], SchemaGrammar]:
    """Register the ``schema`` grammar builder of an output kind: ``(expert, fields) -> EBNF``."""

    def register(builder: SchemaGrammar) -> SchemaGrammar:
        SCHEMA_GRAMMARS[kind] = builder
        return builder

    return register
