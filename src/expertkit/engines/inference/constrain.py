"""Constrained decoding with xgrammar: ``none``, ``json`` (any JSON) or ``schema`` (what the validator accepts).

A :class:`Constraint` is an EBNF grammar (xgrammar's dialect), so both engines take the same one: the
``hf`` engine compiles it for its tokenizer and masks each row's logits with
``xgrammar.contrib.hf.LogitsProcessor`` (one processor per ``generate`` call, one compiled grammar per
row); the ``vllm`` engine hands the text to vLLM's structured outputs.

``schema`` grammars belong to the output kind (:meth:`expertkit.kinds.OutputKind.schema_grammar`: one EBNF
per index for Query DSL, the expert's JSON Schema for JSON). A schema grammar is written in the exact
compact form the training data uses (key order, no spaces): a grammar that admits other spellings pushes
a small model off its own distribution.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from expertkit.core.errors import ExpertkitError
from expertkit.kinds.json.grammar import json_ebnf

if TYPE_CHECKING:
    from expertkit.expert import Expert

CONSTRAIN_MODES: tuple[str, ...] = ("none", "json", "schema")
#: The modes by meaning: free decoding, any JSON, the output kind's schema grammar.
FREE, ANY_JSON, SCHEMA = CONSTRAIN_MODES
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Constraint:
    """A grammar in xgrammar's EBNF that one output must follow."""

    mode: str
    ebnf: str


def check_mode(mode: str) -> str:
    if mode not in CONSTRAIN_MODES:
        raise ExpertkitError(f"unknown constrained-decoding mode {mode!r} (one of {', '.join(CONSTRAIN_MODES)})",
                             key="--constrain")
    return mode


def resolve_mode(expert: Expert, given: str | None) -> str:
    """``--constrain`` if given, else the manifest's ``decoding.constrain``; ``schema`` needs a grammar."""
    mode = check_mode(given if given is not None else expert.manifest.decoding.constrain)
    if mode == SCHEMA and not expert.kind.has_schema_grammar():
        raise ExpertkitError(f"no schema grammar for output kind {expert.kind.name!r} "
                             "(use --constrain json or none)", key="--constrain")
    return mode


_CACHE: dict[tuple[str, str, tuple[tuple[str, str], ...]], Constraint | None] = {}


def constraint_for(expert: Expert, mode: str, fields: Mapping[str, str]) -> Constraint | None:
    """The grammar one output with these canonical ``fields`` must follow under ``mode`` (``None``: free)."""
    if mode == FREE:
        return None
    key = (expert.fingerprint + str(expert.root), mode, tuple(sorted(fields.items())))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    if mode == ANY_JSON:
        found: Constraint | None = Constraint(ANY_JSON, json_ebnf())
    elif mode == SCHEMA:
        if not expert.kind.has_schema_grammar():
            raise ExpertkitError(f"no schema grammar for output kind {expert.kind.name!r}", key="--constrain")
        ebnf = expert.kind.schema_grammar(fields)
        found = Constraint(SCHEMA, ebnf) if ebnf is not None else Constraint(ANY_JSON, json_ebnf())
    else:
        check_mode(mode)
        found = None
    with _LOCK:
        if len(_CACHE) < 4096:
            _CACHE[key] = found
    return found


# ---------------------------------------------------------------------- the hf engine's side
class _Compiler:
    """One xgrammar compiler per tokenizer (and stop tokens), compiled grammars cached by their text."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: Sequence[int]) -> None:
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids))
        self.compiler = xgr.GrammarCompiler(info, max_threads=1)
        self.compiled: dict[str, Any] = {}

    def compile(self, ebnf: str) -> Any:
        if ebnf not in self.compiled:
            self.compiled[ebnf] = self.compiler.compile_grammar(ebnf)
        return self.compiled[ebnf]


_COMPILERS: dict[tuple[int, int, tuple[int, ...]], _Compiler] = {}


def hf_logits_processor(tokenizer: Any, vocab_size: int, stop_ids: Sequence[int],
                        constraints: Sequence[Constraint | None]) -> Any:
    """A fresh xgrammar logits processor for one batch (every row constrained: a free row gets any JSON)."""
    from xgrammar.contrib.hf import LogitsProcessor

    key = (id(tokenizer), vocab_size, tuple(stop_ids))
    with _LOCK:
        compiler = _COMPILERS.get(key)
        if compiler is None:
            compiler = _COMPILERS[key] = _Compiler(tokenizer, vocab_size, stop_ids)
        grammars = [compiler.compile(c.ebnf if c is not None else json_ebnf()) for c in constraints]
    return LogitsProcessor(grammars)
