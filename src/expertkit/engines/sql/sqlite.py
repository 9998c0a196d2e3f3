"""The ``sqlite`` engine: Python's ``sqlite3``, read-only, with an authorizer and a time limit.

A case's database file is opened with a ``mode=ro`` URI; an authorizer allows reads only (SELECT, reads
of columns, functions, recursive CTEs: no ATTACH, PRAGMA, writes, schema changes or transactions); a
progress handler ends a query past its time limit. ``EXPLAIN`` of a statement runs on an in-memory
database holding only the prompt's CREATE statements. Fixtures built from DDL and data live in
``$EXPERTKIT_CACHE/sqlite/<sha256>.sqlite``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import expertkit.engines.sql as engines
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import cache_dir
from expertkit.engines.sql import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    Column,
    Database,
    QueryResult,
    SchemaLoadError,
    SqlEngine,
    Table,
    fetch_capped,
    one_line,
)

_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
            getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action not in _ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _load_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """For loading a schema in memory: anything but a file (``ATTACH``, ``VACUUM INTO``) or an extension."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _error(exc: BaseException) -> str:
    text = one_line(exc)
    return "not authorized: only read-only queries may run" if text == "not authorized" else text


def _sandboxed(con: sqlite3.Connection) -> sqlite3.Connection:
    con.set_authorizer(_authorizer)
    with contextlib.suppress(AttributeError):
        con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, DEFAULT_MAX_BYTES)  # type: ignore[attr-defined]
    return con


class SqliteEngine(SqlEngine):
    """SQLite through Python's ``sqlite3``."""

    name = "sqlite"
    aliases = ("sqlite3",)

    def __init__(self) -> None:
        self._schemas: dict[str, sqlite3.Connection | str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ validity
    def _schema_db(self, schema: str) -> sqlite3.Connection:
        key = hashlib.sha256(schema.encode()).hexdigest()
        found = self._schemas.get(key)
        if found is None:
            con = sqlite3.connect(":memory:", check_same_thread=False)
            con.set_authorizer(_load_authorizer)  # the schema comes from a data file or a request
            deadline = time.monotonic() + engines.SCHEMA_LOAD_TIMEOUT_S
            con.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            try:
                con.executescript(schema)
            except (sqlite3.Error, ValueError) as exc:
                con.close()
                late = time.monotonic() > deadline
                found = (f"the schema does not load in SQLite: "
                         f"{f'over {engines.SCHEMA_LOAD_TIMEOUT_S:g} s' if late else one_line(exc)}")
            else:
                con.set_progress_handler(None, 0)
                found = _sandboxed(con)
            self._schemas[key] = found
        if isinstance(found, str):
            raise SchemaLoadError(found)
        return found

    def explain(self, sql: str, schema: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str | None:
        with self._lock:
            con = self._schema_db(schema)
            deadline = time.monotonic() + timeout_s
            con.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            try:
                con.execute("EXPLAIN " + sql).fetchall()
            except (sqlite3.Error, ValueError, OverflowError) as exc:
                return _error(exc)
            finally:
                con.set_progress_handler(None, 0)
        return None

    # ------------------------------------------------------------------ databases
    def _build(self, key: str, fill: Any) -> Database:
        folder = cache_dir() / "sqlite"
        target = folder / f"{key}.sqlite"
        if not target.is_file():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ExpertkitError(f"cannot create the SQLite fixture folder: {one_line(exc)}", path=folder) from None
            tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
            try:
                con = sqlite3.connect(tmp)
                try:
                    fill(con)
                    con.commit()
                finally:
                    con.close()
                os.replace(tmp, target)
            except sqlite3.Error as exc:
                raise ExpertkitError(f"the SQL fixture does not build in SQLite: {one_line(exc)}") from None
            finally:
                tmp.unlink(missing_ok=True)
        return Database(self.name, str(target))

    def fixture(self, ddl: str, data: str) -> Database:
        key = hashlib.sha256(f"{ddl}\n-- data --\n{data}".encode()).hexdigest()
        return self._build(key, lambda con: con.executescript(f"{ddl};\n{data}"))

    def open_file(self, path: Path) -> Database:
        if not Path(path).is_file():
            raise ExpertkitError("no such SQLite database file", path=path)
        return Database(self.name, str(Path(path).resolve()))

    def _connect(self, db: Database) -> sqlite3.Connection:
        uri = Path(db.location).resolve().as_uri() + "?mode=ro"
        return _sandboxed(sqlite3.connect(uri, uri=True, check_same_thread=False))

    def run(self, db: Database, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS,
            max_bytes: int = DEFAULT_MAX_BYTES) -> QueryResult:
        if not Path(db.location).is_file():
            return QueryResult(False, error=f"no database file at {db.location}")
        try:
            con = self._connect(db)
        except sqlite3.Error as exc:
            return QueryResult(False, error=f"cannot open the database: {one_line(exc)}")
        deadline = time.monotonic() + timeout_s
        expired = [False]

        def progress() -> int:
            expired[0] = time.monotonic() > deadline
            return int(expired[0])

        con.set_progress_handler(progress, 1000)
        try:
            cursor = con.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            return fetch_capped(cursor.fetchmany, columns, max_rows=max_rows, max_bytes=max_bytes)
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            if expired[0]:
                return QueryResult(False, error=f"query timed out after {timeout_s:g} s", timed_out=True)
            return QueryResult(False, error=_error(exc))
        finally:
            con.close()

    # ------------------------------------------------------------------ variants
    def tables(self, db: Database) -> list[Table]:
        con = sqlite3.connect(Path(db.location).resolve().as_uri() + "?mode=ro", uri=True)
        con.text_factory = lambda b: b.decode("utf-8", "replace")
        try:
            names = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
            out: list[Table] = []
            for name in names:
                quoted = '"' + name.replace('"', '""') + '"'
                info = con.execute(f"PRAGMA table_info({quoted})").fetchall()
                columns = [Column(r[1], str(r[2] or ""), bool(r[3])) for r in info]
                pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
                fks: dict[int, tuple[list[str], str, list[str]]] = {}
                for r in con.execute(f"PRAGMA foreign_key_list({quoted})"):
                    cols, _, ref_cols = fks.setdefault(r[0], ([], r[2], []))
                    cols.append(r[3])
                    ref_cols.append(r[4] or "")
                unique = []
                for index in con.execute(f"PRAGMA index_list({quoted})").fetchall():
                    if index[2] and index[3] != "pk":
                        info_rows = con.execute(f"PRAGMA index_info({_quote(index[1])})").fetchall()
                        unique.append([r[2] for r in info_rows if r[2]])
                rows = con.execute(f"SELECT * FROM {quoted}").fetchall()
                out.append(Table(name, columns, pk, list(fks.values()), rows, unique))
            return out
        finally:
            con.close()

    def with_rows(self, db: Database, tables: Sequence[Table], tag: str) -> Database:
        src = sqlite3.connect(Path(db.location).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            ddl = [r[0] for r in src.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        finally:
            src.close()
        key = hashlib.sha256(f"{db.location}\n{os.stat(db.location).st_mtime_ns}\n{tag}".encode()).hexdigest()

        def fill(con: sqlite3.Connection) -> None:
            for statement in ddl:
                con.execute(statement)
            for table in tables:
                if table.rows:
                    quoted = '"' + table.name.replace('"', '""') + '"'
                    marks = ", ".join("?" * len(table.columns))
                    con.executemany(f"INSERT INTO {quoted} VALUES ({marks})", table.rows)

        return self._build(key, fill)
