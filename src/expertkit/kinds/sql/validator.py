"""The ``sql`` validator: one read-only SELECT over the prompt's schema, judged by the dialect's engine.

The prompt's ``Dialect`` (else the manifest's ``output.dialect``) picks an engine from the plug-in
registry :mod:`expertkit.engines.sql` (``postgres``, ``sqlite``, ``duckdb``). Checks, in order:

1. Static (sqlglot, in that dialect): the output parses, is exactly one statement (a trailing comment
   is not a statement), stays within a bound of tokens and set operations (the work one record costs),
   and is read-only (the allow-list of :mod:`expertkit.engines.sql.statements`, shared with
   :mod:`expertkit.engines.sql.sandbox`): a SELECT, WITH…SELECT or set operation of selects; no data-modifying
   or session statement anywhere inside (DROP, DELETE, INSERT, UPDATE, MERGE, CREATE, ALTER, ATTACH,
   COPY, INSTALL, LOAD, PRAGMA, SET, CALL, SELECT … INTO), no table function that reads files, runs SQL
   text or reads the engine's own catalog (``read_csv``, ``query``, ``duckdb_settings()`` …), no
   ``FROM 'file.csv'``.
2. The engine's word: ``EXPLAIN`` of the output against the prompt's ``Schema`` (loaded once into the
   engine). The finding is the engine's own message, one line (PostgreSQL: ``column "e.name" must
   appear in the GROUP BY clause or be used in an aggregate function``). Where no engine runs the
   dialect, or the Schema does not load into it (a warning), sqlglot checks tables and columns instead
   (:func:`schema_problems`).

``equivalent`` compares canonical SQL: both sides qualified against the schema (stars expanded,
identifiers normalised and quoted), single-use table aliases replaced by the table name, predicates
normalised, then generated as text.

``execution_match`` runs both on the engine's fixture database for the prompt's Schema
(``<schemas>/<name>.sql`` + ``<name>.data.sql``, or a registered database file such as a Spider
``.sqlite``) and on ``variants`` seeded variants of it (the test-suite method,
:mod:`expertkit.engines.sql.variants`): the results must agree on every database
(:func:`expertkit.engines.sql.results.same_result`). False when the output fails to run; None
without a fixture, or when the gold itself fails. :meth:`SqlValidator.execution_outcome` also says
which database told the two apart.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize import normalize
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from expertkit.core.fileio import atomic_write_text, cache_dir, read_json_or_none
from expertkit.engines.sql import Database, QueryResult, SchemaLoadError, SqlEngine, get_engine
from expertkit.engines.sql.results import same_result
from expertkit.engines.sql.statements import (
    _parse_error,
    check_statement,
    parse_statement,
    read_only_problems,
    sql_dialect,
)
from expertkit.kinds import OutputKind, Role
from expertkit.kinds.correctness import ErrorKind
from expertkit.kinds.json.validator import SHIPPED_ROUTING
from expertkit.kinds.sql.correctness import SqlMatcher
from expertkit.kinds.validation import ExecutionOutcome, ValidationResult

if TYPE_CHECKING:
    from expertkit.core.contract import FieldSpec
    from expertkit.core.manifest import OutputSpec

# ---------------------------------------------------------------------------- schema
@dataclass
class SchemaInfo:
    """Tables of a Schema field: normalised table name -> {normalised column -> type}."""

    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    dialect: str | None = None

    def mapping_schema(self) -> Any:
        """A fresh sqlglot ``MappingSchema`` of the tables (its lookup caches grow with every query)."""
        from sqlglot.schema import MappingSchema

        return MappingSchema(self.tables, dialect=self.dialect, normalize=False)


@lru_cache(maxsize=128)
def parse_schema(ddl: str, dialect: str | None) -> SchemaInfo | str:
    """The tables and columns of CREATE TABLE statements, or why they cannot be read."""
    try:
        statements = [s for s in sqlglot.parse(ddl, read=dialect) if s is not None]
    except Exception as exc:
        return _parse_error(exc, dialect)
    info = SchemaInfo(dialect=dialect)
    for stmt in statements:
        if not isinstance(stmt, exp.Create):
            continue
        stmt = normalize_identifiers(stmt, dialect=dialect)
        kind = str(stmt.args.get("kind") or "").upper()
        target = stmt.this
        if kind == "TABLE" and isinstance(target, exp.Schema) and isinstance(target.this, exp.Table):
            cols: dict[str, str] = {}
            for col in target.expressions:
                if isinstance(col, exp.ColumnDef):
                    ctype = col.args.get("kind")
                    cols[col.name] = ctype.sql(dialect=dialect) if ctype is not None else "UNKNOWN"
            info.tables[target.this.name] = cols
        elif kind == "VIEW" and isinstance(stmt.expression, exp.Query):
            table = target.this if isinstance(target, exp.Schema) else target
            names = stmt.expression.named_selects
            if isinstance(table, exp.Table) and names and "*" not in names:
                info.tables[table.name] = dict.fromkeys(names, "UNKNOWN")
    if not info.tables:
        return "no CREATE TABLE statement"
    return info


def _suggest(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""


def _strip_default_db(expr: exp.Expression) -> None:
    for table in expr.find_all(exp.Table):
        if table.args.get("db") is not None and table.db.lower() in ("public", "main", "dbo") \
                and not table.args.get("catalog"):
            table.set("db", None)


def _table_problems(expr: exp.Expression, info: SchemaInfo) -> list[str]:
    ctes = {cte.alias_or_name for cte in expr.find_all(exp.CTE)}
    problems: list[str] = []
    for table in expr.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # table functions: checked by the allow-list
        name = table.name
        if table.args.get("db") is not None:
            problems.append(f"table '{table.db}.{name}' is not in the schema (use {name!r})")
        elif name not in info.tables and name not in ctes:
            problems.append(f"table {name!r} does not exist (tables: {', '.join(sorted(info.tables))})"
                            f"{_suggest(name, info.tables)}")
    return list(dict.fromkeys(problems))


def _source_columns(source: Any, info: SchemaInfo) -> tuple[str, list[str] | None]:
    """``(label, columns)`` of a scope source; columns None when unknown."""
    if isinstance(source, exp.Table):
        cols = info.tables.get(source.name)
        return f"table {source.name}", list(cols) if cols is not None else None
    if isinstance(source, Scope):
        names = source.expression.named_selects if isinstance(source.expression, exp.Query) else []
        if "*" in names or not names:
            return "a subquery", None
        kind = "CTE" if source.is_cte else "subquery"
        return kind, list(names)
    return "a source", None


def _explain_columns(expr: exp.Expression, info: SchemaInfo) -> list[str]:
    """Why columns do not resolve, scope by scope (used when qualify fails)."""
    problems: list[str] = []
    for scope in traverse_scope(expr):
        if not isinstance(scope.expression, exp.Select):
            continue
        aliases = {s.alias for s in scope.expression.expressions if isinstance(s, exp.Alias)}
        for col in scope.columns:
            if isinstance(col.this, exp.Star):
                continue
            name, qual = col.name, col.table
            if qual:
                owner: Scope | None = scope
                source = None
                while owner is not None and source is None:
                    source = owner.sources.get(qual)
                    owner = owner.parent
                if source is None:
                    problems.append(f"column '{qual}.{name}': no table or alias {qual!r} in the query")
                    continue
                label, cols = _source_columns(source, info)
                if cols is not None and name not in cols:
                    where = label if label.startswith("table") else f"{label} {qual}"
                    problems.append(f"column {name!r} does not exist in {where}{_suggest(name, cols)}")
                continue
            having: list[str] = []
            labels: list[str] = []
            unknown = False
            for alias, source in scope.selected_sources.items():
                label, cols = _source_columns(source[1], info)
                labels.append(label if label.startswith("table") else f"{label} {alias}")
                if cols is None:
                    unknown = True
                elif name in cols:
                    having.append(label if label.startswith("table") else f"{label} {alias}")
            if len(having) > 1:
                problems.append(f"column {name!r} is ambiguous: it is in {', '.join(having)}; qualify it")
            elif not having and not unknown and name not in aliases:
                outer = scope.parent
                found = False
                while outer is not None and not found:
                    for source in outer.selected_sources.values():
                        _, cols = _source_columns(source[1], info)
                        if cols is None or name in cols:
                            found = True
                    outer = outer.parent
                if found:
                    continue
                pool = [c for s in scope.selected_sources.values() for c in (_source_columns(s[1], info)[1] or [])]
                if len(labels) == 1:
                    problems.append(f"column {name!r} does not exist in {labels[0]}{_suggest(name, pool)}")
                elif labels:
                    problems.append(f"column {name!r} does not exist in any of {', '.join(labels)}"
                                    f"{_suggest(name, pool)}")
                else:
                    problems.append(f"column {name!r} does not exist (the query has no FROM)")
    return list(dict.fromkeys(problems))


def _qualify(expr: exp.Expression, info: SchemaInfo | None, dialect: str | None, *, validate: bool
             ) -> exp.Expression:
    return qualify(
        expr,
        schema=info.mapping_schema() if info is not None else None,
        dialect=dialect,
        validate_qualify_columns=validate,
    )


def schema_problems(expr: exp.Expression, info: SchemaInfo, dialect: str | None, sql: str | None = None
                    ) -> list[str]:
    """Tables and columns of ``expr`` that the schema lacks.

    ``expr`` is qualified in place; pass its ``sql`` text so that explaining a failure can parse it
    afresh (else a copy is kept up front).
    """
    tree = normalize_identifiers(expr, dialect=dialect)
    _strip_default_db(tree)
    problems = _table_problems(tree, info)
    if problems:
        return problems
    spare = None if sql is not None else tree.copy()
    try:
        _qualify(tree, info, dialect, validate=True)
    except SqlglotError as exc:
        try:
            if spare is None:
                spare = normalize_identifiers(sqlglot.parse_one(sql or "", read=dialect), dialect=dialect)
                _strip_default_db(spare)
            explained = _explain_columns(spare, info)
        except Exception:
            explained = []
        if explained:
            return explained
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split("\n")[0]
        text = re.sub(r"\.? ?\(?Line: \d+, Col: \d+\)?", "", text).strip()
        return [f"unresolved reference: {text}" if text else "unresolved reference"]
    except RecursionError:
        return ["SQL nested too deeply"]
    except Exception as exc:  # qualify crashing on odd input must not escape
        return [f"could not check columns ({type(exc).__name__})"]
    return []


# ---------------------------------------------------------------------------- equivalence
def _sort_commutative(tree: exp.Expression) -> exp.Expression:
    """Order the operands of AND / OR chains and of ``=`` / ``<>`` by their text."""

    def key(node: exp.Expression) -> str:
        return node.sql(comments=False)

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.EQ | exp.NEQ):
            left, right = node.this, node.expression
            if key(left) > key(right):
                return node.__class__(this=right, expression=left)
        elif isinstance(node, exp.And | exp.Or) and not isinstance(node.parent, node.__class__):
            parts = sorted(node.flatten(), key=key)
            return exp.and_(*parts, copy=False) if isinstance(node, exp.And) else exp.or_(*parts, copy=False)
        return node

    return tree.transform(rewrite, copy=False)


def _rename_single_aliases(tree: exp.Expression) -> None:
    """``FROM employees e`` -> ``FROM employees AS employees`` where the table occurs once."""
    tables = [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]
    counts = Counter(t.name for t in tables)
    alias_counts = Counter(t.alias_or_name for t in tables)
    taken = {t.alias_or_name for t in tables} | {c.alias_or_name for c in tree.find_all(exp.CTE)}
    taken |= {s.alias for s in tree.find_all(exp.Subquery) if s.alias}
    renames: dict[str, str] = {}
    for t in tables:
        alias = t.alias
        if alias and alias != t.name and counts[t.name] == 1 and alias_counts[alias] == 1 \
                and t.name not in (taken - {alias}):
            renames[alias] = t.name
            t.set("alias", exp.TableAlias(this=exp.to_identifier(t.name, quoted=True)))
    if renames:
        for col in tree.find_all(exp.Column):
            if col.table in renames:
                col.set("table", exp.to_identifier(renames[col.table], quoted=True))


def canonical_sql(sql: str, dialect: str | None, info: SchemaInfo | None = None) -> str | None:
    """The canonical text :meth:`SqlValidator.equivalent` compares, or None when it does not parse."""
    expr, error = parse_statement(sql, dialect)
    if expr is None or error:
        return None
    try:
        tree = normalize_identifiers(expr, dialect=dialect)
        _strip_default_db(tree)
        try:
            tree = _qualify(tree, info, dialect, validate=False)
        except SqlglotError:
            tree = _qualify(tree, None, dialect, validate=False)
        _rename_single_aliases(tree)
        with contextlib.suppress(SqlglotError):
            tree = normalize(tree, dnf=False, max_distance=64)
        tree = _sort_commutative(tree)
        return tree.sql(dialect=dialect, normalize=True, identify=True, comments=False)
    except RecursionError:
        return None
    except Exception:
        return " ".join(expr.sql(dialect=dialect, normalize=True, comments=False).split())


# ---------------------------------------------------------------------------- execution
def has_top_level_order(expr: exp.Expression) -> bool:
    """Does the query's outermost level sort its rows?"""
    node = expr.this if isinstance(expr, exp.Subquery) else expr
    return node.args.get("order") is not None


def _ws(text: str) -> str:
    return " ".join(text.split())


#: Where ``data import spider`` (and the like) record database files by their schema's sha256.
DATABASE_INDEX = "databases.json"


def schema_key(schema_text: str) -> str:
    """The key of a Schema: sha256 of its whitespace-normalised text."""
    return hashlib.sha256(_ws(schema_text).encode()).hexdigest()


def register_database(schema_text: str, path: Path) -> None:
    """Remember that prompts with this Schema run on the database file ``path`` (in the cache's index)."""
    index_path = cache_dir() / DATABASE_INDEX
    found = read_json_or_none(index_path)
    index = found if isinstance(found, dict) else {}
    index[schema_key(schema_text)] = str(Path(path).resolve())
    atomic_write_text(index_path, json.dumps(index, indent=0, sort_keys=True))


def registered_database(schema_text: str) -> Path | None:
    index = read_json_or_none(cache_dir() / DATABASE_INDEX)
    found = index.get(schema_key(schema_text)) if isinstance(index, dict) else None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


_CTE = r"\s+(?:RECURSIVE\s+)?\w+\s*(?:\([^()]*\)\s*)?AS\s*(?:NOT\s+)?(?:MATERIALIZED\s+)?\("
#: Where an SQL statement may start in a raw output (group 1), most trusted first: an upper-case ``SELECT``
#: or ``WITH name AS (`` anywhere, then either in any case at the start of a line or after a colon.
_SQL_STARTS = (
    re.compile(r"\b(SELECT\b|WITH" + _CTE + ")"),
    re.compile(r"(?:^|(?<=:))[ \t]*(SELECT\b|WITH" + _CTE + ")", re.I | re.M),
)


class SqlValidator(OutputKind):
    """The ``sql`` kind: validates SQL answers with the dialect's engine; runs them on fixtures for
    execution match."""

    name = "sql"
    roles = (
        Role("dialect", "Dialect", "the SQL dialect of the answer (else the manifest's output.dialect)"),
        Role("schema", "Schema", "the database's CREATE TABLE statements",
             example="CREATE TABLE example (id INTEGER PRIMARY KEY);"),
    )
    example_answer = "SELECT 1;"
    resource_notes = ("Add the schemas the validator runs queries against: a folder of `<name>.sql` (DDL) and "
                      "`<name>.data.sql` (fixture rows) and `output.resources.schemas: schemas`.")
    matcher_class = SqlMatcher
    errors = (ErrorKind("broken_sql", "sql", "the answer does not parse as SQL"),)
    report_columns = ("component_f1", "equivalent", "execution_match", "ungrounded")
    scaffold_routing = SHIPPED_ROUTING
    default_routing = tuple(name for name, _ in SHIPPED_ROUTING)
    #: Seeded variants of each fixture that execution match also runs on (0: the fixture only).
    variants: int | None = 3

    def __init__(self, expert_root: str | Path, output: OutputSpec, fields: Sequence[FieldSpec] = ()) -> None:
        super().__init__(expert_root, output, fields)
        self._fixtures: dict[str, tuple[Path, Path]] | None = None
        self._built: dict[tuple[str, str], Database | None] = {}
        self._variant_dbs: dict[tuple[str, int], list[tuple[str, Database]]] = {}
        self._results: dict[tuple[str, str], QueryResult] = {}
        self._outcomes: dict[tuple[str, str, str, int], ExecutionOutcome] = {}

    @classmethod
    def find_answer(cls, text: str) -> tuple[int, str] | None:
        """The first SQL statement: up to ``;`` (kept), a blank line, or the end."""
        for pattern in _SQL_STARTS:
            m = pattern.search(text)
            if m is None:
                continue
            start = m.start(1)
            body = text[start:]
            ends = [i + 1 for i in (body.find(";"),) if i != -1] + [i for i in (body.find("\n\n"),) if i != -1]
            return start, body[: min(ends)].strip() if ends else body.strip()
        return None

    def schema_text(self, fields: Mapping[str, str]) -> str | None:
        """The prompt's schema (the field playing the ``schema`` role)."""
        return self.value(fields, "schema")

    def dialect_value(self, fields: Mapping[str, str]) -> str | None:
        """The prompt's dialect value (the ``dialect`` role's field, else the manifest's)."""
        value = self.value(fields, "dialect")
        return value if value and value.strip() else self.output.dialect

    def dialect(self, fields: Mapping[str, str]) -> str | None:
        """The sqlglot dialect of the prompt (the ``dialect`` role's field, else the manifest's)."""
        return sql_dialect(self.value(fields, "dialect")) or sql_dialect(self.output.dialect)

    def register_case(self, record: Mapping[str, Any], folder: Path) -> None:
        """A case naming its database file (``"database"``, relative to ``folder``, as ``data import spider``
        writes) has it registered for the case's schema."""
        database = record.get("database")
        fields = record.get("fields")
        schema = self.schema_text(fields) if isinstance(fields, dict) else None
        if isinstance(database, str) and isinstance(schema, str):
            path = (folder / database).resolve()
            if path.is_file():
                register_database(schema, path)

    def engine(self, fields: Mapping[str, str]) -> SqlEngine | None:
        """The engine the prompt's Dialect picks (None: no engine runs it; static checks only)."""
        return get_engine(self.dialect_value(fields))

    def schema(self, fields: Mapping[str, str], dialect: str | None) -> SchemaInfo | str | None:
        text = self.schema_text(fields)
        if not text or not text.strip():
            return None
        return parse_schema(text, dialect)

    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        dialect = self.dialect(fields)
        expr, error = parse_statement(output, dialect)
        if expr is None:
            return ValidationResult(False, [error or "no SQL statement"])
        warnings: list[str] = []
        try:
            errors = read_only_problems(expr, output)
            if errors:
                return ValidationResult(False, errors)
            engine = self.engine(fields)
            schema_text = self.schema_text(fields) or ""
            if engine is not None and schema_text.strip():
                try:
                    message = engine.explain(output, schema_text)
                except SchemaLoadError as exc:
                    warnings.append(f"{exc.message}; tables and columns checked by sqlglot only")
                else:
                    return ValidationResult(message is None, [message] if message else [])
            info = self.schema(fields, dialect)
            if isinstance(info, str):
                field = self.field_name("schema")
                return ValidationResult(True, [], [*warnings, f"the {field} field does not parse ({info}); "
                                                   f"tables and columns not checked"])
            if info is not None:
                errors = schema_problems(expr, info, dialect, output)
        except RecursionError:
            return ValidationResult(False, ["SQL nested too deeply"])
        return ValidationResult(not errors, errors, warnings)

    def equivalent(self, a: str, b: str, fields: Mapping[str, str]) -> bool:
        dialect = self.dialect(fields)
        info = self.schema(fields, dialect)
        info = info if isinstance(info, SchemaInfo) else None
        ca = canonical_sql(a, dialect, info)
        return ca is not None and ca == canonical_sql(b, dialect, info)

    # -------------------------------------------------------------- fixtures
    def fixtures(self) -> dict[str, tuple[Path, Path]]:
        """Whitespace-normalised DDL -> (ddl file, data file) of the ``schemas`` resource."""
        if self._fixtures is None:
            found: dict[str, tuple[Path, Path]] = {}
            folder = self.resource("schemas")
            if folder is not None and folder.is_dir():
                for ddl_path in sorted(folder.glob("*.sql")):
                    if ddl_path.name.endswith(".data.sql"):
                        continue
                    data_path = ddl_path.with_name(ddl_path.name[: -len(".sql")] + ".data.sql")
                    if data_path.is_file():
                        found.setdefault(_ws(ddl_path.read_text(encoding="utf-8")), (ddl_path, data_path))
            self._fixtures = found
        return self._fixtures

    def fixture_db(self, schema_text: str | None, fields: Mapping[str, str] | None = None) -> Database | None:
        """The engine's database for the fixture whose DDL equals ``schema_text`` (or a registered
        database file with that schema), or None."""
        if not schema_text:
            return None
        engine = self.engine(fields or {})
        if engine is None:
            return None
        key = (engine.name, _ws(schema_text))
        if key in self._built:
            return self._built[key]
        db: Database | None = None
        pair = self.fixtures().get(key[1])
        if pair is not None:
            ddl_path, data_path = pair
            db = engine.fixture(ddl_path.read_text(encoding="utf-8"), data_path.read_text(encoding="utf-8"))
        else:
            path = registered_database(schema_text)
            if path is not None:
                db = engine.open_file(path)
        self._built[key] = db
        return db

    def _variants(self, engine: SqlEngine, db: Database, count: int) -> list[tuple[str, Database]]:
        key = (f"{db.engine}:{db.location}", count)
        if key not in self._variant_dbs:
            from expertkit.engines.sql.variants import build_variants

            self._variant_dbs[key] = build_variants(engine, db, count)
        return self._variant_dbs[key]

    def _run(self, engine: SqlEngine, db: Database, sql: str) -> QueryResult:
        key = (f"{db.engine}:{db.location}", sql)
        found = self._results.get(key)
        if found is None:
            problem = check_statement(sql, engine.name)
            found = QueryResult(False, error=problem) if problem else engine.run(db, sql)
            if len(self._results) > 4096:
                self._results.clear()
            self._results[key] = found
        return found

    def execution_outcome(self, output: str, gold: str, fields: Mapping[str, str],
                          variants: int | None = None) -> ExecutionOutcome:
        """Execution match on the fixture and its seeded variants, and which database decided it."""
        count = (self.variants or 0) if variants is None else variants
        schema_text = self.schema_text(fields) or ""
        key = (output, gold, _ws(schema_text), count)
        if key in self._outcomes:
            return self._outcomes[key]
        outcome = self._execution_outcome(output, gold, fields, count)
        if len(self._outcomes) > 4096:
            self._outcomes.clear()
        self._outcomes[key] = outcome
        return outcome

    def _execution_outcome(self, output: str, gold: str, fields: Mapping[str, str], count: int) -> ExecutionOutcome:
        engine = self.engine(fields)
        db = self.fixture_db(self.schema_text(fields), fields)
        if engine is None or db is None:
            return ExecutionOutcome(None, error=f"no fixture database for this {self.field_name('schema')}")
        gold_expr, _ = parse_statement(gold, engine.name)
        ordered = gold_expr is not None and has_top_level_order(gold_expr)
        databases = [("fixture", db)]
        ran = 0
        for i, (label, database) in enumerate(databases):
            gold_result = self._run(engine, database, gold)
            if not gold_result.ok:
                if i == 0:
                    return ExecutionOutcome(None, error=f"the gold answer does not run: {gold_result.error}")
                continue
            out_result = self._run(engine, database, output)
            ran += 1
            if not out_result.ok:
                return ExecutionOutcome(False, label, ran, out_result.error)
            if not same_result(gold_result.rows, out_result.rows, ordered=ordered,
                               gold_width=len(gold_result.columns), out_width=len(out_result.columns)):
                return ExecutionOutcome(False, label, ran)
            if i == 0 and count > 0:
                databases.extend(self._variants(engine, db, count))
        return ExecutionOutcome(True, None, ran)

    def execution_match(self, output: str, gold: str, fields: Mapping[str, str]) -> bool | None:
        return self.execution_outcome(output, gold, fields).match
