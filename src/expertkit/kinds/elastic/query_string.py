"""The Lucene syntax of ``query_string``, parsed with luqum: does it parse, and which fields it names.

Elasticsearch refuses a ``query_string`` whose query does not parse (``Failed to parse query``);
``simple_query_string`` never does, so only ``query_string`` comes here.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.Lock()  # luqum's ply parser keeps state per parser object


def _unescape(name: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in name:
        if escaped or ch != "\\":
            out.append(ch)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def field_terms(text: str) -> tuple[list[tuple[str, Any]], str | None]:
    """``([(field, value or None), ...], problem)``: the ``field:value`` terms of a query_string query.

    ``value`` is the plain term (or each range bound) searched for in that field, None for phrases,
    wildcards, regexes and groups the caller should not type-check.
    """
    if not text.strip():
        return [], None
    from luqum import tree
    from luqum.exceptions import IllegalCharacterError, ParseError
    from luqum.parser import parser

    try:
        with _LOCK:
            root = parser.parse(text)
    except (ParseError, IllegalCharacterError) as exc:
        return [], " ".join(str(exc).split())[:160]
    except Exception as exc:  # luqum raises a few plain errors on odd input
        return [], f"{type(exc).__name__}: {' '.join(str(exc).split())[:140]}"

    out: list[tuple[str, Any]] = []

    def values(node: Any) -> list[Any]:
        if isinstance(node, tree.Word):
            word = node.value
            if any(c in word for c in "*?") or word.startswith("/"):
                return [None]
            return [_unescape(word)]
        if isinstance(node, tree.Range):
            return [_unescape(b.value) for b in (node.low, node.high)
                    if isinstance(b, tree.Word) and b.value != "*"]
        if isinstance(node, tree.From | tree.To):
            inner = node.a
            return [_unescape(inner.value)] if isinstance(inner, tree.Word) and inner.value != "*" else []
        if isinstance(node, tree.FieldGroup | tree.Group | tree.BaseOperation | tree.Unary):
            found: list[Any] = []
            for child in node.children:
                found.extend(values(child))
            return found
        if isinstance(node, tree.Boost):
            return values(node.expr)
        return [None]

    def walk(node: Any) -> None:
        if isinstance(node, tree.SearchField):
            name = _unescape(node.name)
            expr = node.expr
            if isinstance(expr, tree.SearchField):  # a:b:c -- Lucene reads "b:c" as the term
                out.append((name, None))
                return
            found = values(expr)
            out.extend((name, v) for v in found or [None])
            return
        for child in getattr(node, "children", ()):
            walk(child)

    walk(root)
    return out, None
