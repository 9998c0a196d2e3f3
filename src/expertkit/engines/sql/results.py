"""When two query results are the same: rows as multisets (in order when the gold orders them), columns
up to permutation, numbers with a tolerance (9 significant digits; ``1`` equals ``1.0``)."""

from __future__ import annotations

import decimal
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

#: Most column assignments tried when the columns may be permuted.
MAX_PERMUTATIONS = 2_000


def cell(value: Any) -> Any:
    """A hashable, comparable form of a result cell (numbers to 9 significant digits)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return value
        return float(f"{value:.9g}")
    if isinstance(value, int):
        return float(f"{value:.9g}") if abs(value) < 2**53 else value
    if isinstance(value, list | tuple):
        return tuple(cell(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), cell(v)) for k, v in value.items()))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return value if isinstance(value, str) else str(value)



def _assignments(gold_cols: list[list[Any]], out_cols: list[list[Any]]) -> list[list[int]]:
    """Ways to map each gold column to a distinct output column holding the same multiset of values."""
    sig_out = [Counter(c) for c in out_cols]
    options = [[j for j, sig in enumerate(sig_out) if sig == Counter(g)] for g in gold_cols]
    found: list[list[int]] = []

    def walk(i: int, taken: list[int]) -> None:
        if len(found) >= MAX_PERMUTATIONS:
            return
        if i == len(options):
            found.append(list(taken))
            return
        for j in options[i]:
            if j not in taken:
                taken.append(j)
                walk(i + 1, taken)
                taken.pop()

    walk(0, [])
    return found


def same_result(gold_rows: Sequence[Sequence[Any]], out_rows: Sequence[Sequence[Any]], *, ordered: bool,
                gold_width: int | None = None, out_width: int | None = None) -> bool:
    """Do the rows agree (``ordered``: in the same order), with the output's columns in any order?"""
    gold = [tuple(cell(v) for v in r) for r in gold_rows]
    out = [tuple(cell(v) for v in r) for r in out_rows]
    gw = gold_width if gold_width is not None else (len(gold[0]) if gold else 0)
    ow = out_width if out_width is not None else (len(out[0]) if out else 0)
    if gw != ow or len(gold) != len(out):
        return False
    if not gold:
        return True
    if (gold == out) if ordered else (Counter(gold) == Counter(out)):
        return True
    gold_cols = [[r[i] for r in gold] for i in range(gw)]
    out_cols = [[r[i] for r in out] for i in range(ow)]
    for perm in _assignments(gold_cols, out_cols):
        moved = [tuple(r[j] for j in perm) for r in out]
        if (gold == moved) if ordered else (Counter(gold) == Counter(moved)):
            return True
    return False
