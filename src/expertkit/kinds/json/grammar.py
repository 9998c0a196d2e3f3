"""JSON as xgrammar EBNF: any JSON value, or one JSON Schema in the compact form the training data uses.

The ``json`` kind's ``schema`` grammar, and the ``json`` constrained-decoding mode of every kind
(:mod:`expertkit.engines.inference.constrain`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_ebnf() -> str:
    """xgrammar's built-in JSON grammar, as EBNF text."""
    import xgrammar as xgr

    return str(xgr.Grammar.builtin_json_grammar())


def json_schema_ebnf(schema: Mapping[str, Any]) -> str:
    """A JSON Schema as compact EBNF (no spaces, properties in the schema's order)."""
    import xgrammar as xgr

    return str(xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":")))
