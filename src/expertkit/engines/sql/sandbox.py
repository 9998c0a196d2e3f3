"""Read-only, offline, time-limited DuckDB execution of generated SQL.

Two layers guard a fixture:

* before running, :func:`run_query` refuses anything but one read-only SELECT: sqlglot's allow-list
  (:func:`expertkit.engines.sql.statements.check_statement`) and DuckDB's own parser (one statement, of type
  SELECT);
* the engine itself (:func:`execute_unchecked`, which does no statement checks): the fixture is opened
  ``read_only`` with ``enable_external_access=false`` (no files, no ATTACH, no COPY, no INSTALL),
  ``lock_configuration=true`` (no ``SET`` can undo that), extension autoload/autoinstall off, no temp
  directory, a memory limit; each query runs on its own cursor (its own temp catalog) and a timer
  thread calls ``interrupt()`` at ``timeout_s``. More than ``max_rows`` rows, or ``max_bytes`` of
  cells, is a failure.

Fixtures are built once from DDL and INSERTs by :func:`build_fixture` into
``$EXPERTKIT_CACHE/fixtures/<sha256>.duckdb`` (default ``~/.cache/expertkit``), through a temp file
renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import cache_dir
from expertkit.engines.sql.statements import check_statement

#: Most bytes of result cells one query may return (strings and blobs by length, other values 8).
MAX_RESULT_BYTES = 16 * 1024 * 1024

#: Settings of every sandbox connection (the locked configuration).
SANDBOX_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "temp_directory": "",
    "memory_limit": "1GB",
    "threads": 1,
    "lock_configuration": True,
}


@dataclass
class QueryResult:
    """What one query gave: columns and rows, or why it did not run."""

    ok: bool
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None
    #: The query ran past its time limit (and was interrupted).
    timed_out: bool = False


def fixtures_dir() -> Path:
    """Where built fixtures live: ``$EXPERTKIT_CACHE/fixtures`` (default ``~/.cache/expertkit/fixtures``)."""
    return cache_dir() / "fixtures"


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_fixture(ddl_sql: str, data_sql: str, *, dialect: str | None = None,
                  inserts: Sequence[tuple[str, Sequence[Any]]] = ()) -> Path:
    """The DuckDB file holding ``ddl_sql`` + ``data_sql`` (built once, cached by their sha256).

    The SQL runs as DuckDB SQL; when that fails and ``dialect`` names another sqlglot dialect, the
    text transpiled from it is tried. ``inserts`` (``(statement, parameters)`` pairs) run after them;
    ``data_sql`` must tell them apart in the cache key. Raises :class:`ExpertkitError` when neither builds.
    """
    key = hashlib.sha256(f"{ddl_sql}\n-- data --\n{data_sql}".encode()).hexdigest()
    folder = fixtures_dir()
    target = folder / f"{key}.duckdb"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    attempts = [(ddl_sql, data_sql)]
    if dialect and dialect != "duckdb":
        try:
            import sqlglot

            attempts.append((";\n".join(sqlglot.transpile(ddl_sql, read=dialect, write="duckdb")),
                             ";\n".join(sqlglot.transpile(data_sql, read=dialect, write="duckdb"))))
        except Exception:
            pass
    first_error = ""
    for ddl, data in attempts:
        tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp.duckdb"
        try:
            config = {k: v for k, v in SANDBOX_CONFIG.items() if k not in ("memory_limit", "temp_directory")}
            con = duckdb.connect(str(tmp), config=config)
            try:
                if ddl.strip():
                    con.execute(ddl)
                if data.strip():
                    con.execute(data)
                for statement, params in inserts:
                    con.execute(statement, list(params))
                con.execute("CHECKPOINT")
            finally:
                con.close()
            os.replace(tmp, target)
            return target
        except (duckdb.Error, OSError) as exc:
            first_error = first_error or _one_line(exc)
        finally:
            for leftover in (tmp, Path(f"{tmp}.wal")):
                leftover.unlink(missing_ok=True)
    raise ExpertkitError(f"the SQL fixture does not build in DuckDB: {first_error}")


# ---------------------------------------------------------------------------- connections
_LOCK = threading.Lock()
_CONNECTIONS: dict[tuple[str, int, int], duckdb.DuckDBPyConnection] = {}


def _connection(db_path: Path) -> duckdb.DuckDBPyConnection:
    """The shared read-only, locked connection to a fixture (one per file version)."""
    path = db_path.resolve()
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_mtime_ns)
    with _LOCK:
        con = _CONNECTIONS.get(key)
        if con is None:
            con = duckdb.connect(str(path), read_only=True, config=dict(SANDBOX_CONFIG))
            _CONNECTIONS[key] = con
        return con


def close_connections() -> None:
    """Close every cached fixture connection."""
    with _LOCK:
        for con in _CONNECTIONS.values():
            with contextlib.suppress(duckdb.Error):
                con.close()
        _CONNECTIONS.clear()


def _interrupt(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(Exception):  # the query may have ended first
        cursor.interrupt()


def execute_unchecked(db_path: str | Path, sql: str, *, timeout_s: float = 2.0, max_rows: int = 10_000,
                      max_bytes: int = MAX_RESULT_BYTES) -> QueryResult:
    """Run ``sql`` on the locked read-only fixture with no statement checks (the engine layer)."""
    path = Path(db_path)
    if not path.is_file():
        return QueryResult(False, error=f"no fixture database at {path}")
    try:
        base = _connection(path)
        with _LOCK:
            cursor = base.cursor()
    except (duckdb.Error, OSError) as exc:
        return QueryResult(False, error=f"cannot open the fixture: {_one_line(exc)}")
    timer = threading.Timer(timeout_s, _interrupt, args=(cursor,))
    timer.daemon = True
    timer.start()
    try:
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows: list[Any] = []
        size = 0
        while cursor.description and len(rows) <= max_rows:
            batch = cursor.fetchmany(min(256, max_rows + 1 - len(rows)))
            if not batch:
                break
            rows.extend(batch)
            size += sum(len(v) if isinstance(v, str | bytes) else 8 for row in batch for v in row)
            if size > max_bytes:
                return QueryResult(False, columns, [], f"result is over {max_bytes} bytes")
    except duckdb.InterruptException:
        return QueryResult(False, error=f"query timed out after {timeout_s:g} s", timed_out=True)
    except Exception as exc:  # duckdb errors, and junk the driver cannot encode
        if not timer.is_alive() and "interrupt" in str(exc).lower():
            return QueryResult(False, error=f"query timed out after {timeout_s:g} s", timed_out=True)
        return QueryResult(False, error=_one_line(exc))
    finally:
        timer.cancel()
        with contextlib.suppress(duckdb.Error):
            cursor.close()
    if len(rows) > max_rows:
        return QueryResult(False, columns, [], f"result has more than {max_rows} rows")
    return QueryResult(True, columns, [tuple(r) for r in rows])


_PARSER: list[duckdb.DuckDBPyConnection] = []


def engine_statement_problem(sql: str) -> str | None:
    """DuckDB's own parse: exactly one statement, of type SELECT (None when so)."""
    try:
        with _LOCK:
            if not _PARSER:
                _PARSER.append(duckdb.connect(":memory:", config=dict(SANDBOX_CONFIG)))
            statements = _PARSER[0].extract_statements(sql)
    except Exception as exc:
        return f"DuckDB cannot parse the query: {_one_line(exc)}"
    if len(statements) != 1:
        return f"expected exactly one SQL statement, got {len(statements)}"
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        return f"only SELECT statements may run, not {getattr(kind, 'name', kind)}"
    return None


def run_query(db_path: str | Path, sql: str, *, timeout_s: float = 2.0, max_rows: int = 10_000
              ) -> QueryResult:
    """Run one read-only query on a fixture: allow-list first, then the locked engine."""
    problem = check_statement(sql, "duckdb") or engine_statement_problem(sql)
    if problem:
        return QueryResult(False, error=problem)
    return execute_unchecked(db_path, sql, timeout_s=timeout_s, max_rows=max_rows)
