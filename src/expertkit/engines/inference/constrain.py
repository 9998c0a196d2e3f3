"""Constrained decoding with xgrammar: ``none``, ``json`` (any JSON) or ``schema`` (what the validator accepts).

A :class:`Constraint` is an EBNF grammar (xgrammar's dialect), so both engines take the same one: the
``hf`` engine compiles it for its tokenizer and masks each row's logits with
``xgrammar.contrib.hf.LogitsProcessor`` (one processor per ``generate`` call, one compiled grammar per
row); the ``vllm`` engine hands the text to vLLM's structured outputs.

``schema`` grammars are plug-ins by output kind (:func:`expertkit.kinds.grammars.schema_grammar`): the
``elastic_dsl`` one is in :mod:`expertkit.kinds.elastic.grammar`; the ``json`` kind uses the expert's JSON
Schema. A schema grammar is written in the exact compact form the training data uses (key order, no
spaces): a grammar that admits other spellings pushes a small model off its own distribution.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from expertkit.core.errors import ExpertkitError
from expertkit.kinds.grammars import SCHEMA_GRAMMARS as _SCHEMA_GRAMMARS
from expertkit.kinds.grammars import schema_grammar

if TYPE_CHECKING:
    from expertkit.expert import Expert

CONSTRAIN_MODES: tuple[str, ...] = ("none", "json", "schema")
#: Modules holding the shipped schema grammars (imported on first lookup: they self-register).
BUILTIN_GRAMMAR_MODULES = ("expertkit.kinds.elastic.grammar",)

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
    if mode == "schema":
        _load_builtins()
        if expert.manifest.output.kind not in _SCHEMA_GRAMMARS:
            raise ExpertkitError(f"no schema grammar for output kind {expert.manifest.output.kind!r} "
                                 "(use --constrain json or none)", key="--constrain")
    return mode


def _load_builtins() -> None:
    for module in BUILTIN_GRAMMAR_MODULES:
        importlib.import_module(module)


def json_ebnf() -> str:
    """xgrammar's built-in JSON grammar, as EBNF text."""
    import xgrammar as xgr

    return str(xgr.Grammar.builtin_json_grammar())


def json_schema_ebnf(schema: Mapping[str, Any]) -> str:
    """A JSON Schema as compact EBNF (no spaces, properties in the schema's order)."""
    import xgrammar as xgr

    return str(xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":")))


@schema_grammar("json")
def _json_kind(expert: Expert, fields: Mapping[str, str]) -> str | None:
    schema = getattr(getattr(expert.validator, "_schema_validator", None), "schema", None)
    return json_schema_ebnf(schema) if isinstance(schema, Mapping) else json_ebnf()


_CACHE: dict[tuple[str, str, tuple[tuple[str, str], ...]], Constraint | None] = {}


def constraint_for(expert: Expert, mode: str, fields: Mapping[str, str]) -> Constraint | None:
    """The grammar one output with these canonical ``fields`` must follow under ``mode`` (``None``: free)."""
    if mode == "none":
        return None
    key = (expert.fingerprint + str(expert.root), mode, tuple(sorted(fields.items())))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    if mode == "json":
        found: Constraint | None = Constraint("json", json_ebnf())
    elif mode == "schema":
        _load_builtins()
        builder = _SCHEMA_GRAMMARS.get(expert.manifest.output.kind)
        if builder is None:
            raise ExpertkitError(f"no schema grammar for output kind {expert.manifest.output.kind!r}",
                                 key="--constrain")
        ebnf = builder(expert, fields)
        found = Constraint("schema", ebnf) if ebnf is not None else Constraint("json", json_ebnf())
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
