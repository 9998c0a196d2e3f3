"""Seeded variants of a fixture database, for the test-suite method of execution match (Zhong, Yu & Klein,
EMNLP 2020, "Semantic Evaluation for Text-to-SQL with Distilled Test Suites").

Two queries that agree on one database can still differ (``>`` vs ``>=`` where no row sits on the
boundary); checked on several databases drawn at random, such differences show. Each variant keeps the
fixture's schema and draws every table's rows from the column's type and the values present in the
fixture: primary keys and UNIQUE columns stay unique, foreign keys point at rows of the referenced table (parents are
drawn first), nullable columns get some NULLs, and tables without a primary key get duplicate rows.
The draw is seeded (variant ``i`` of a fixture is always the same), and the engine builds each variant
once (:meth:`expertkit.engines.sql.SqlEngine.with_rows`).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from typing import Any

from expertkit.engines.sql import Database, SqlEngine, Table

#: Most rows a variant table gets (a few more than the fixture's table, within this bound).
MAX_ROWS = 40
NULL_SHARE = 0.1
DUPLICATE_SHARE = 0.15


def _kind(type_name: str) -> str:
    t = type_name.lower()
    if "bool" in t:
        return "bool"
    if "int" in t or t in ("serial", "bigserial"):
        return "int"
    if re.search(r"real|float|double|numeric|decimal|number", t):
        return "float"
    if "timestamp" in t or "datetime" in t:
        return "timestamp"
    if "date" in t:
        return "date"
    if "time" in t:
        return "time"
    if "blob" in t or "bytea" in t:
        return "bytes"
    return "text"


def _fresh(kind: str, present: Sequence[Any], rng: random.Random) -> Any:
    """A value of this kind, near the values present."""
    numbers = [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
    if kind == "int":
        lo, hi = (int(min(numbers)), int(max(numbers))) if numbers else (0, 100)
        return rng.randint(lo - 2, hi + 2)
    if kind == "float":
        lo, hi = (float(min(numbers)), float(max(numbers))) if numbers else (0.0, 100.0)
        return round(rng.uniform(lo, hi + 1.0), 2)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "date":
        base = next((v for v in present if isinstance(v, dt.date)), dt.date(2020, 1, 1))
        value = base + dt.timedelta(days=rng.randint(-400, 400))
        return value if any(isinstance(v, dt.date) for v in present) else value.isoformat()
    if kind in ("timestamp", "time"):
        return rng.choice(list(present)) if present else "2020-01-01 00:00:00"
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(4))
    texts = [v for v in present if isinstance(v, str)]
    if texts and rng.random() < 0.5:
        word = rng.choice(texts)
        return word[: max(1, len(word) - 1)] + rng.choice("aeiouxyz")
    return f"v{rng.randrange(10_000)}"


def draw_tables(tables: Sequence[Table], seed: int) -> list[Table]:
    """Variant rows for these tables (same shape and keys, seeded)."""
    rng = random.Random(seed)
    by_name = {t.name.lower(): t for t in tables}
    order: list[Table] = []
    seen: set[str] = set()

    def visit(table: Table, stack: tuple[str, ...] = ()) -> None:
        key = table.name.lower()
        if key in seen or key in stack:
            return
        for _, ref, _ in table.foreign_keys:
            parent = by_name.get(ref.lower())
            if parent is not None and parent is not table:
                visit(parent, (*stack, key))
        seen.add(key)
        order.append(table)

    for t in tables:
        visit(t)
    drawn: dict[str, Table] = {}
    for table in order:
        names = [c.name for c in table.columns]
        index = {n.lower(): i for i, n in enumerate(names)}
        present = [[row[i] for row in table.rows if row[i] is not None] for i in range(len(names))]
        # a foreign key column draws from the parent's drawn values (the single-column part of the key)
        parents: dict[int, list[Any]] = {}
        for cols, ref, ref_cols in table.foreign_keys:
            parent = drawn.get(ref.lower())
            if parent is None or len(cols) != 1:
                continue
            pnames = [c.name.lower() for c in parent.columns]
            target = (ref_cols[0] if ref_cols and ref_cols[0] else (parent.columns and parent_pk(parent)))
            if isinstance(target, str) and target.lower() in pnames and cols[0].lower() in index:
                j = pnames.index(target.lower())
                parents[index[cols[0].lower()]] = [r[j] for r in parent.rows if r[j] is not None]
        pk = [index[c.lower()] for c in table.primary_key if c.lower() in index]
        unique_sets = [[index[c.lower()] for c in cols if c.lower() in index] for cols in table.unique]
        unique_seen: list[set[tuple[Any, ...]]] = [set() for _ in unique_sets]
        low = min(max(1, len(table.rows) // 2), MAX_ROWS)
        n = rng.randint(low, max(low, min(len(table.rows) + 3, MAX_ROWS)))
        rows: list[tuple[Any, ...]] = []
        keys: set[tuple[Any, ...]] = set()
        tries = 0
        while len(rows) < n and tries < n * 20:
            tries += 1
            if rows and not pk and not unique_sets and rng.random() < DUPLICATE_SHARE:
                rows.append(rng.choice(rows))
                continue
            row: list[Any] = []
            for i, col in enumerate(table.columns):
                if i in parents:
                    pool = parents[i]
                    value = rng.choice(pool) if pool else None
                    if value is None and col.not_null:
                        value = _fresh(_kind(col.type), present[i], rng)
                elif not col.not_null and i not in pk and rng.random() < NULL_SHARE:
                    value = None
                elif present[i] and rng.random() < 0.7:
                    value = rng.choice(present[i])
                else:
                    value = _fresh(_kind(col.type), present[i], rng)
                row.append(value)
            if pk:
                key = tuple(row[i] for i in pk)
                if key in keys or any(v is None for v in key):
                    continue
            taken = [tuple(row[i] for i in cols) for cols in unique_sets]
            if any(None not in value and value in seen for value, seen in zip(taken, unique_seen, strict=True)):
                continue
            if pk:
                keys.add(key)
            for value, seen in zip(taken, unique_seen, strict=True):
                seen.add(value)
            rows.append(tuple(row))
        drawn[table.name.lower()] = Table(table.name, table.columns, table.primary_key, table.foreign_keys, rows,
                                          table.unique)
    return [drawn[t.name.lower()] for t in tables]


def parent_pk(table: Table) -> str | None:
    return table.primary_key[0] if len(table.primary_key) == 1 else None


def build_variants(engine: SqlEngine, db: Database, count: int, *, seed: int = 0) -> list[tuple[str, Database]]:
    """``[(label, database)]``: ``count`` seeded variants of ``db`` (one that does not build is left out)."""
    if count <= 0:
        return []
    base = engine.tables(db)
    out: list[tuple[str, Database]] = []
    for i in range(1, count + 1):
        tables = draw_tables(base, seed * 1_000 + i)
        try:
            out.append((f"variant {i}", engine.with_rows(db, tables, f"variant-{seed}-{i}")))
        except Exception:  # a constraint the draw did not know about (UNIQUE, CHECK): skip this variant
            continue
    return out
