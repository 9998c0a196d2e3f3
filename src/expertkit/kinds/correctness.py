"""Correctness beyond validity: how far a wrong answer is from the gold one, and whether its literals are
grounded: the component-match side of an output kind (:attr:`expertkit.kinds.OutputKind.matcher_class`).

A :class:`Matcher` compares an answer with the gold answer as parts (for Query DSL: the (clause, field,
operator, value) tuples of query, filters, aggregations, sort and size — Spider's partial matching
carried over; for SQL, Spider's partial matching itself on sqlglot's tree), giving precision, recall
and F1 of the parts and the kinds of difference (wrong field,
wrong value, wrong operator, missing clause, extra clause); and it finds the answer's literals that are
neither in the question nor among the field's known values (``ungrounded``), when the expert ships known
values as its ``values`` resource.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from expertkit.kinds import OutputKind

@dataclass(frozen=True)
class ErrorKind:
    """One kind of error of a judged output: its name, short header (the console's error table) and meaning."""

    name: str
    short: str
    description: str


#: The error kinds of every output kind that come before a kind's own (:attr:`OutputKind.errors
#: <expertkit.kinds.OutputKind.errors>`) in report order.
GENERIC_ERRORS_FIRST: tuple[ErrorKind, ...] = (
    ErrorKind("wrong_field", "field", "a part of the gold answer on another field"),
    ErrorKind("wrong_value", "value", "a part of the gold answer with another value"),
    ErrorKind("ungrounded_value", "ungr.", "a literal neither in the question nor among the field's known values"),
    ErrorKind("wrong_operator", "op",
              "a part of the gold answer with another operator (query or aggregation type, bound)"),
    ErrorKind("missing_clause", "missing", "a part of the gold answer left out"),
    ErrorKind("extra_clause", "extra", "a part the gold answer does not have"),
    ErrorKind("wrong_structure", "struct.",
              "the gold answer's parts, arranged otherwise (must for filter, a lone query for a bool)"),
    ErrorKind("wrong_result", "result", "valid, but not the gold answer's result when run"),
)
#: The error kinds of every output kind that come after a kind's own.
GENERIC_ERRORS_LAST: tuple[ErrorKind, ...] = (
    ErrorKind("broken", "broken", "the answer does not parse"),
    ErrorKind("invalid", "inv.", "the answer parses but the validator rejects it"),
    ErrorKind("reasoning", "reason", "the output holds reasoning"),
    ErrorKind("trailing_text", "text", "a code fence, a label or text around the answer"),
)


def error_taxonomy(own: Iterable[ErrorKind] = ()) -> tuple[ErrorKind, ...]:
    """The error kinds in report order: the generic ones with a kind's ``own`` among them (an own kind with a
    generic name replaces the generic one)."""
    own = tuple(own)
    names = {e.name for e in own}
    return (*(e for e in GENERIC_ERRORS_FIRST if e.name not in names), *own,
            *(e for e in GENERIC_ERRORS_LAST if e.name not in names))


def in_taxonomy_order(names: Iterable[str], taxonomy: Iterable[ErrorKind]) -> list[str]:
    """``names`` (no repeats) in the taxonomy's order; names it does not hold go last, alphabetically."""
    order = {e.name: i for i, e in enumerate(taxonomy)}
    return sorted(set(names), key=lambda n: (order.get(n, len(order)), n))


#: One part of an answer: (clause, field, operator, value), all strings.
Part = tuple[str, str, str, str]


@dataclass(frozen=True)
class PartMatch:
    """An answer's parts against the gold answer's: precision, recall, F1 and the kinds of difference."""

    precision: float
    recall: float
    f1: float
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def match_parts(answer: Iterable[Part], gold: Iterable[Part]) -> PartMatch:
    """Multiset precision/recall/F1 of ``answer``'s parts against ``gold``'s, and what differs.

    Parts left over on both sides are paired when they share the clause and two of field, operator and
    value (the third is then wrong); a gold part left unpaired is a missing clause, an answer part an
    extra one.
    """
    a, g = Counter(answer), Counter(gold)
    common = sum((a & g).values())
    na, ng = sum(a.values()), sum(g.values())
    precision = common / na if na else (1.0 if not ng else 0.0)
    recall = common / ng if ng else (1.0 if not na else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    left_a, left_g = list((a - g).elements()), list((g - a).elements())
    differences: set[str] = set()
    for gp in list(left_g):
        for ap in left_a:
            if ap[0] != gp[0]:
                continue
            same = [ap[i] == gp[i] for i in (1, 2, 3)]
            if sum(same) < 2:
                continue
            differences.add(("wrong_field", "wrong_operator", "wrong_value")[same.index(False)])
            left_a.remove(ap)
            left_g.remove(gp)
            break
    if left_g:
        differences.add("missing_clause")
    if left_a:
        differences.add("extra_clause")
    return PartMatch(precision, recall, f1, in_taxonomy_order(differences, GENERIC_ERRORS_FIRST))


_DATE_RE = re.compile(r"^(now\b|\d{4}-\d{2}(-\d{2})?)", re.I)
_WORD_RE = re.compile(r"\w+")
_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?")


def grounded(value: str, question: str, known: Set[str] = frozenset(), wildcards: str = "*?") -> bool:
    """Is the literal ``value`` in the question (whole, all its words, or a number as written, ``1,000``
    for 1000 included) or among the ``known`` values (lower case)? Dates and date math count as grounded
    (a question says "last week"); ``wildcards`` are pattern characters to ignore."""
    if _NUMBER_RE.fullmatch(value):
        digits = question.replace(",", "")
        return bool(re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", digits)) or value in known
    bare = value.strip().strip(wildcards).strip()
    if not bare or _DATE_RE.match(bare):
        return True
    low, q = bare.lower(), question.lower()
    if low in q or low in known:
        return True
    words = _WORD_RE.findall(re.sub(f"[{re.escape(wildcards)}]", " ", low))
    q_words = set(_WORD_RE.findall(q))
    return bool(words) and all(w in q_words or w in q for w in words)


class Matcher(ABC):
    """Compares answers of one output kind as parts and checks their literals."""

    #: The error kind of an answer that does not parse: the generic ``broken``, or one the kind declares in
    #: :attr:`OutputKind.errors <expertkit.kinds.OutputKind.errors>`.
    broken: ClassVar[str] = "broken"

    def __init__(self, validator: OutputKind) -> None:
        self.validator = validator  # the kind it belongs to: its resources and roles are the matcher's

    def resource(self, name: str) -> Path | None:
        return self.validator.resource(name)

    @abstractmethod
    def parses(self, answer: str) -> bool:
        """Does ``answer`` parse at all (a broken one is :attr:`broken`, else ``invalid``)?"""

    @abstractmethod
    def parts(self, answer: str) -> list[Part] | None:
        """The answer's parts, or ``None`` when it does not parse."""

    def compare(self, answer: str, gold: str) -> PartMatch | None:
        """The answer's parts against the gold answer's (all zero, with no differences named, when the
        answer does not parse); ``None`` when the gold answer does not parse."""
        gold_parts = self.parts(gold)
        if gold_parts is None:
            return None
        parts = self.parts(answer)
        if parts is None:
            return PartMatch(0.0, 0.0, 0.0)
        return match_parts(parts, gold_parts)

    def ungrounded(self, answer: str, fields: Mapping[str, str], question: str) -> list[str]:
        """The answer's literals found neither in the question nor among the field's known values."""
        return []
