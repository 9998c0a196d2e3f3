"""SQL answers as parts — Spider's partial matching, on sqlglot's syntax tree — and their string literals
checked against the question.

Every ``SELECT`` of the statement (subqueries under ``sub/``, one level per nesting) gives
``(clause, column, operator, value)`` parts, with table qualifiers and aliases dropped and names in lower
case:

* ``select``: each projection (the aggregate as operator: ``count``, ``sum``…), and ``distinct``;
* ``from``: each table, with ``from`` or the join's kind as operator;
* ``where`` and ``having``: each conjunct (``where/or`` for the disjuncts of an ``OR``) as column,
  comparison (``eq``, ``gt``, ``like``, ``in`` — one part per value —, ``between.low``/``between.high``,
  ``not_…``) and value;
* ``group``, ``order`` (with ``asc``/``desc``) and ``limit``.

Correctness stays execution match (with equivalence beside it); the parts give partial credit, the kinds
of difference and a tie-break. A literal of a condition (string or number) that is not in the question
(whole, all its words, or the number as written) is ``ungrounded``; dates are not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from expertkit.kinds.correctness import Matcher, Part, grounded

if TYPE_CHECKING:
    from sqlglot import exp

#: Answers up to this long have their parts cached.
MAX_CACHED_CHARS = 20_000


def _bare(node: exp.Expression) -> str:
    """``node`` as lower-case SQL with table qualifiers dropped."""
    from sqlglot import exp

    def strip(n: exp.Expression) -> exp.Expression:
        return exp.column(n.name) if isinstance(n, exp.Column) and n.table else n

    return node.transform(strip).sql().lower()


class _Walker:
    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.literals: list[tuple[str, str, bool]] = []  # (column, value, is a string)

    def select(self, select: exp.Select, prefix: str) -> None:
        from sqlglot import exp

        for proj in select.expressions:
            node = proj.unalias()
            if isinstance(node, exp.AggFunc):
                inner = node.this if isinstance(node.this, exp.Expression) else exp.Star()
                distinct = isinstance(inner, exp.Distinct)
                arg = inner.expressions[0] if distinct and inner.expressions else inner
                op = node.key + (".distinct" if distinct else "")
                self.parts.append((f"{prefix}select", _bare(arg), op, ""))
            else:
                self.parts.append((f"{prefix}select", _bare(node), "", ""))
        if select.args.get("distinct"):
            self.parts.append((f"{prefix}select", "", "distinct", ""))
        source = select.args.get("from") or select.args.get("from_")
        if source is not None and isinstance(source.this, exp.Table):
            self.parts.append((f"{prefix}from", source.this.name.lower(), "from", ""))
        for join in select.args.get("joins") or []:
            if isinstance(join.this, exp.Table):
                kind = " ".join(k for k in (join.side, join.kind) if k).lower() or "join"
                self.parts.append((f"{prefix}from", join.this.name.lower(), kind, ""))
        for key in ("where", "having"):
            if select.args.get(key) is not None:
                self.condition(select.args[key].this, f"{prefix}{key}")
        for e in select.args["group"].expressions if select.args.get("group") is not None else []:
            self.parts.append((f"{prefix}group", _bare(e), "", ""))
        for e in select.args["order"].expressions if select.args.get("order") is not None else []:
            self.parts.append((f"{prefix}order", _bare(e.this), "desc" if e.args.get("desc") else "asc", ""))
        limit = select.args.get("limit")
        if limit is not None:
            value = limit.expression if limit.expression is not None else limit.this
            self.parts.append((f"{prefix}limit", "", "=", _bare(value) if value is not None else ""))

    def condition(self, node: exp.Expression, clause: str) -> None:
        from sqlglot import exp

        if isinstance(node, exp.Paren):
            self.condition(node.this, clause)
        elif isinstance(node, exp.And):
            self.condition(node.left, clause)
            self.condition(node.right, clause)
        elif isinstance(node, exp.Or):
            for side in (node.left, node.right):
                self.condition(side, clause if clause.endswith("/or") else f"{clause}/or")
        elif isinstance(node, exp.Not):
            before = len(self.parts)
            self.condition(node.this, clause)
            self.parts[before:] = [(c, f, f"not_{op}", v) for c, f, op, v in self.parts[before:]]
        elif isinstance(node, exp.In):
            column = _bare(node.this)
            for value in node.expressions:
                self.value(clause, column, "in", value)
            if node.args.get("query") is not None:
                self.parts.append((clause, column, "in", _bare(node.args["query"])))
        elif isinstance(node, exp.Between):
            column = _bare(node.this)
            self.value(clause, column, "between.low", node.args["low"])
            self.value(clause, column, "between.high", node.args["high"])
        elif isinstance(node, exp.Binary):
            self.value(clause, _bare(node.left), node.key, node.right)
        else:
            self.parts.append((clause, "", node.key, _bare(node)))

    def value(self, clause: str, column: str, op: str, value: exp.Expression) -> None:
        from sqlglot import exp

        self.parts.append((clause, column, op, _bare(value)))
        if isinstance(value, exp.Literal):
            self.literals.append((column, value.this, value.is_string))


def _walk(answer: str, dialect: str | None) -> _Walker | None:
    """The parts and literals of ``answer`` (short answers cached: scoring asks for them several times)."""
    return _walk_cached(answer, dialect) if len(answer) <= MAX_CACHED_CHARS else _walk_once(answer, dialect)


@lru_cache(maxsize=4096)
def _walk_cached(answer: str, dialect: str | None) -> _Walker | None:
    return _walk_once(answer, dialect)


def _walk_once(answer: str, dialect: str | None) -> _Walker | None:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(answer, read=dialect)
    except (SqlglotError, ValueError, RecursionError):
        return None
    if tree is None:
        return None
    walker = _Walker()
    try:
        for select in tree.find_all(exp.Select):
            depth = sum(1 for p in _parents(select) if isinstance(p, exp.Select))
            walker.select(select, "sub/" * depth)
    except Exception:  # never raise on an output (RecursionError included): no parts
        return None
    return walker


def _parents(node: exp.Expression) -> list[Any]:
    out = []
    parent = node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


class SqlMatcher(Matcher):
    """Parts of SQL statements (sqlglot) in the manifest's dialect; literals against the question."""

    broken = "broken_sql"

    def _dialect(self) -> str | None:
        dialect = self.validator.output.dialect
        return dialect.lower() if dialect else None

    def parses(self, answer: str) -> bool:
        return _walk(answer, self._dialect()) is not None

    def parts(self, answer: str) -> list[Part] | None:
        walker = _walk(answer, self._dialect())
        return None if walker is None else list(walker.parts)

    def ungrounded(self, answer: str, fields: Mapping[str, str], question: str) -> list[str]:
        walker = _walk(answer, self._dialect())
        if walker is None:
            return []
        out: list[str] = []
        for column, value, is_string in walker.literals:
            if not grounded(value, question, wildcards="%_"):
                item = f"{column}={value!r}" if is_string else f"{column}={value}"
                if item not in out:
                    out.append(item)
        return out
