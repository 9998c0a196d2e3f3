"""The ``duckdb`` engine: :mod:`expertkit.engines.sql.sandbox` (a locked, read-only, offline DuckDB connection).

``EXPLAIN`` runs on an in-memory database holding only the prompt's CREATE statements, with the same
locked configuration.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

import expertkit.engines.sql as engines
from expertkit.core.errors import ExpertkitError
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
    one_line,
    sandbox,
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckdbEngine(SqlEngine):
    """DuckDB through :mod:`expertkit.engines.sql.sandbox`."""

    name = "duckdb"

    def __init__(self) -> None:
        self._schemas: dict[str, duckdb.DuckDBPyConnection | str] = {}
        self._lock = threading.Lock()

    def explain(self, sql: str, schema: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str | None:
        key = hashlib.sha256(schema.encode()).hexdigest()
        with self._lock:
            found = self._schemas.get(key)
            if found is None:
                config = {k: v for k, v in sandbox.SANDBOX_CONFIG.items() if k != "lock_configuration"}
                con = duckdb.connect(":memory:", config=config)
                # the schema comes from a data file or a request: it may not run for ever
                timer = threading.Timer(engines.SCHEMA_LOAD_TIMEOUT_S, con.interrupt)
                timer.start()
                try:
                    con.execute(schema)
                    con.execute("SET lock_configuration = true")
                    found = con
                except duckdb.Error as exc:
                    con.close()
                    late = not timer.is_alive()
                    found = (f"the schema does not load in DuckDB: "
                             f"{f'over {engines.SCHEMA_LOAD_TIMEOUT_S:g} s' if late else one_line(exc)}")
                finally:
                    timer.cancel()
                self._schemas[key] = found
            if isinstance(found, str):
                raise SchemaLoadError(found)
            cursor = found.cursor()
        try:
            cursor.execute("EXPLAIN " + sql)
            return None
        except Exception as exc:  # duckdb errors, and junk the driver cannot encode
            return one_line(exc)
        finally:
            cursor.close()

    def fixture(self, ddl: str, data: str) -> Database:
        return Database(self.name, str(sandbox.build_fixture(ddl, data, dialect="postgres")), ddl)

    def open_file(self, path: Path) -> Database:
        if not Path(path).is_file():
            raise ExpertkitError("no such DuckDB database file", path=path)
        return Database(self.name, str(Path(path).resolve()))

    def run(self, db: Database, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS,
            max_bytes: int = DEFAULT_MAX_BYTES) -> QueryResult:
        return sandbox.execute_unchecked(db.location, sql, timeout_s=timeout_s, max_rows=max_rows,
                                         max_bytes=max_bytes)

    def tables(self, db: Database) -> list[Table]:
        con = duckdb.connect(db.location, read_only=True, config=dict(sandbox.SANDBOX_CONFIG))
        try:
            out: list[Table] = []
            names = [r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_oid").fetchall()]
            for name in names:
                cols = con.execute("SELECT column_name, data_type, NOT is_nullable FROM duckdb_columns() "
                                   "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
                                   [name]).fetchall()
                pk: list[str] = []
                unique: list[list[str]] = []
                fks: list[tuple[list[str], str, list[str]]] = []
                for kind, columns, ref, ref_cols in con.execute(
                        "SELECT constraint_type, constraint_column_names, referenced_table, "
                        "referenced_column_names FROM duckdb_constraints() WHERE schema_name = 'main' "
                        "AND table_name = ?", [name]).fetchall():
                    if kind == "PRIMARY KEY":
                        pk = list(columns)
                    elif kind == "UNIQUE":
                        unique.append(list(columns))
                    elif kind == "FOREIGN KEY" and ref:
                        fks.append((list(columns), ref, list(ref_cols or [])))
                rows = con.execute(f"SELECT * FROM {_quote(name)}").fetchall()
                out.append(Table(name, [Column(c, str(t), bool(nn)) for c, t, nn in cols], pk, fks, rows, unique))
            return out
        finally:
            con.close()

    def with_rows(self, db: Database, tables: Sequence[Table], tag: str) -> Database:
        con = duckdb.connect(db.location, read_only=True, config=dict(sandbox.SANDBOX_CONFIG))
        try:
            ddl = ";\n".join(r[0] for r in con.execute(
                "SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_oid").fetchall())
        finally:
            con.close()
        inserts: list[tuple[str, list[Any]]] = []
        for table in tables:
            marks = ", ".join("?" * len(table.columns))
            inserts += [(f"INSERT INTO {_quote(table.name)} VALUES ({marks})", list(row)) for row in table.rows]
        path = sandbox.build_fixture(ddl, f"-- variant {tag} of {db.location}", inserts=inserts)
        return Database(self.name, str(path), db.ddl)
