"""``expertkit data import spider``: Spider-layout benchmarks as expertkit cases.

Spider (Yu et al., EMNLP 2018) ships questions (``dev.json``: ``question``, ``query``, ``db_id``), schemas
(``tables.json``) and one SQLite database per ``db_id`` (``DIR/<db_id>/<db_id>.sqlite``). Each question
becomes one record, in the input's order, in the fields shape (``Dialect: sqlite``,
``Task: text_to_sql``, ``Schema:`` the CREATE statements read from the database) with the gold query as
the answer and ``"database"``: the database file, relative to the output file. Each database is also
registered by its Schema (:func:`expertkit.kinds.sql.validator.register_database`), so ``lint``, ``validate``,
``compare --cases`` and ``score`` execute on it. A question whose database file is missing keeps its
place, its Schema built from ``tables.json``; it scores ``execution_match: null``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import atomic_write_jsonl, read_json

_TYPES = {"number": "NUMERIC", "text": "TEXT", "time": "TEXT", "boolean": "BOOLEAN", "others": "TEXT"}


@dataclass
class SpiderImport:
    out: Path
    records: int = 0
    databases: int = 0
    #: ``db_id`` -> number of questions whose database file is missing.
    missing: dict[str, int] = field(default_factory=dict)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_from_database(path: Path) -> str:
    """The CREATE statements of a SQLite database, in creation order."""
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL "
                               "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ExpertkitError(f"not a readable SQLite database: {exc}", path=path) from None
    return ";\n\n".join(r[0].strip().rstrip(";") for r in rows) + ";"


def schema_from_tables(entry: dict[str, Any]) -> str:
    """CREATE statements built from a ``tables.json`` entry (types, primary and foreign keys)."""
    tables = entry["table_names_original"]
    columns = entry["column_names_original"]
    types = entry["column_types"]
    pks = set(entry.get("primary_keys") or [])
    fks: dict[int, int] = {}
    for pair in entry.get("foreign_keys") or []:
        fks[pair[0]] = pair[1]
    out = []
    for t, table in enumerate(tables):
        lines = []
        for i, (owner, name) in enumerate(columns):
            if owner != t:
                continue
            line = f"  {_quote(name)} {_TYPES.get(types[i], 'TEXT')}"
            if i in pks:
                line += " PRIMARY KEY"
            if i in fks:
                ref_owner, ref_name = columns[fks[i]]
                line += f" REFERENCES {_quote(tables[ref_owner])} ({_quote(ref_name)})"
            lines.append(line)
        out.append(f"CREATE TABLE {_quote(table)} (\n" + ",\n".join(lines) + "\n);")
    return "\n\n".join(out)


def import_spider(questions: Path, tables: Path, databases: Path, out: Path) -> SpiderImport:
    """Write the Spider questions as expertkit records to ``out`` (see the module's docstring)."""
    from expertkit.kinds.sql.validator import SqlValidator, register_database

    dialect_field, schema_field = SqlValidator.default_field("dialect"), SqlValidator.default_field("schema")

    items = read_json(questions, what="questions file")
    entries = read_json(tables, what="tables file")
    if not isinstance(items, list):
        raise ExpertkitError("expected a JSON list of questions", path=questions)
    if not isinstance(entries, list):
        raise ExpertkitError("expected a JSON list of schemas", path=tables)
    by_id = {e.get("db_id"): e for e in entries if isinstance(e, dict)}
    if not databases.is_dir():
        raise ExpertkitError("no such databases folder", path=databases)
    result = SpiderImport(out)
    schemas: dict[str, tuple[str, Path | None]] = {}
    records = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("question", "query", "db_id")):
            raise ExpertkitError(f"question {n} needs string keys question, query and db_id", path=questions)
        db_id = item["db_id"]
        if db_id not in schemas:
            db_path = databases / db_id / f"{db_id}.sqlite"
            if db_path.is_file():
                schema = schema_from_database(db_path)
                register_database(schema, db_path)
                schemas[db_id] = (schema, db_path)
                result.databases += 1
            elif db_id in by_id:
                schemas[db_id] = (schema_from_tables(by_id[db_id]), None)
            else:
                raise ExpertkitError(f"question {n}: database {db_id!r} is neither in {databases} nor in the "
                                     "tables file", path=questions)
        schema, db_path = schemas[db_id]
        if db_path is None:
            result.missing[db_id] = result.missing.get(db_id, 0) + 1
        record: dict[str, Any] = {
            "fields": {dialect_field: "sqlite", "Task": "text_to_sql", schema_field: schema},
            "question": item["question"],
            "answer": item["query"].strip(),
            "db_id": db_id,
        }
        if db_path is not None:
            record["database"] = os.path.relpath(db_path.resolve(), out.resolve().parent)
        records.append(record)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExpertkitError(f"cannot create the output folder: {exc.strerror or exc}", path=out.parent) from None
    atomic_write_jsonl(out, records)
    result.records = len(records)
    return result
