"""The read-only statement allow-list every SQL string passes before an engine runs it.

Used by the ``sql`` kind's validator (:mod:`expertkit.kinds.sql.validator`) and by the sandbox that runs
queries on fixtures (:mod:`expertkit.engines.sql.sandbox`): one parsed statement (sqlglot, in the
prompt's dialect) within :data:`MAX_TOKENS` tokens and :data:`MAX_SET_OPERATIONS` set operations, and
read-only (:func:`check_statement`): a SELECT, WITH…SELECT or set operation of selects; no data-modifying
or session statement anywhere inside, no table function that reads files, runs SQL text or reads the
engine's own catalog, no ``FROM 'file.csv'``.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

MAX_SQL_CHARS = 200_000
#: Most tokens and set operations (UNION, INTERSECT, EXCEPT) a query may hold: beyond them the
#: static analysis grows faster than linearly, and no real answer comes near them.
MAX_TOKENS = 5_000
MAX_SET_OPERATIONS = 100
#: Table functions that read the engine's own catalog or settings (not tables of the prompt's schema).
CATALOG_FUNCTION_PREFIXES = ("duckdb_", "pragma_", "pg_", "sqlite_")
DIALECT_ALIASES = {"postgresql": "postgres", "pg": "postgres", "psql": "postgres", "sqlserver": "tsql",
                   "mssql": "tsql", "sqlite3": "sqlite", "mariadb": "mysql", "bq": "bigquery"}
#: Table/scalar functions that read files, other databases or settings, or run SQL given as text.
FILE_FUNCTIONS = frozenset({
    "glob", "query", "query_table", "sniff_csv", "parquet_metadata", "parquet_schema",
    "parquet_file_metadata", "parquet_kv_metadata", "parquet_bloom_probe", "iceberg_metadata",
    "iceberg_snapshots", "sqlite_attach", "postgres_attach", "postgres_query", "mysql_query", "st_read",
    "st_read_meta", "getenv", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
    "lo_import", "lo_export", "dblink", "load_extension", "duckdb_secrets", "which_secret",
    "duckdb_extensions", "read_blob", "read_text",
})
FILE_FUNCTION_PREFIXES = ("read_", "pg_read_", "pg_ls_")
#: First words of statements that are never a read-only query (named when the dialect cannot parse them).
NOT_QUERY_VERBS = frozenset({
    "ATTACH", "DETACH", "COPY", "INSTALL", "LOAD", "PRAGMA", "SET", "RESET", "CALL", "DROP", "DELETE",
    "INSERT", "UPDATE", "UPSERT", "MERGE", "REPLACE", "CREATE", "ALTER", "TRUNCATE", "GRANT", "REVOKE",
    "VACUUM", "ANALYZE", "EXPORT", "IMPORT", "USE", "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT",
    "EXECUTE", "PREPARE", "DEALLOCATE", "EXPLAIN", "DESCRIBE", "SHOW", "SUMMARIZE", "LOCK", "COMMENT",
})
FILE_NAME_RE = re.compile(r"[/\\*?:]|\.(csv|tsv|parquet|json|jsonl|ndjson|txt|db|duckdb|sqlite|gz|zst|arrow|"
                          r"xlsx?)$", re.IGNORECASE)
FILE_FUNCTION_SUFFIXES = ("_scan", "_attach")
_ROUGH_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def _types(*names: str) -> tuple[type[exp.Expression], ...]:
    return tuple(getattr(exp, n) for n in names if isinstance(getattr(exp, n, None), type))


#: Node types that write, change the session or run commands; refused anywhere in the tree.
FORBIDDEN_NODES = _types(
    "Insert", "Update", "Delete", "Merge", "Drop", "Create", "Alter", "Command", "Set", "Pragma", "Copy",
    "Attach", "Detach", "Install", "Use", "Transaction", "Commit", "Rollback", "TruncateTable", "LoadData",
    "Into", "Describe", "Summarize", "Show", "Analyze", "Grant", "Revoke", "Comment", "Refresh", "Cache",
    "Uncache", "Export",
)
TOP_LEVEL_OK = _types("Select", "Union", "Intersect", "Except", "SetOperation", "Subquery")


# ---------------------------------------------------------------------------- parsing
def sql_dialect(name: str | None) -> str | None:
    """The sqlglot dialect for a prompt's dialect value, or None when sqlglot has no such dialect."""
    if not name:
        return None
    key = DIALECT_ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        sqlglot.Dialect.get_or_raise(key)
    except (ValueError, SqlglotError):
        return None
    return key


def _parse_error(exc: Exception, dialect: str | None) -> str:
    label = f" ({dialect})" if dialect else ""
    if isinstance(exc, ParseError) and exc.errors:
        err = exc.errors[0]
        where = f" at line {err.get('line')}, column {err.get('col')}" if err.get("line") else ""
        return f"not valid SQL{label}: {err.get('description')}{where}"
    text = " ".join(str(exc).split())
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return f"not valid SQL{label}: {text[:160]}"


def parse_statement(sql: str, dialect: str | None) -> tuple[exp.Expression | None, str | None]:
    """``(expression, error)``: exactly one parsed statement, or why there is not one."""
    if not isinstance(sql, str):
        return None, "output is not text"
    if len(sql) > MAX_SQL_CHARS:
        return None, f"SQL is {len(sql)} characters, over the {MAX_SQL_CHARS} limit"
    if "\x00" in sql:
        return None, "SQL holds a NUL character"
    rough = len(_ROUGH_TOKEN_RE.findall(sql))  # a fast over-estimate: words inside literals count singly
    if rough > 4 * MAX_TOKENS:
        return None, f"SQL has about {rough} tokens, over the {MAX_TOKENS}-token limit"
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(sql) if dialect else sqlglot.tokenize(sql)
    except RecursionError:
        return None, "SQL nested too deeply"
    except Exception:
        tokens = []
    if len(tokens) > MAX_TOKENS:
        return None, f"SQL has {len(tokens)} tokens, over the {MAX_TOKENS}-token limit"
    set_ops = sum(1 for t in tokens if t.token_type.name in ("UNION", "INTERSECT", "EXCEPT"))
    if set_ops > MAX_SET_OPERATIONS:
        return None, (f"SQL has {set_ops} set operations (UNION/INTERSECT/EXCEPT), "
                      f"over the limit of {MAX_SET_OPERATIONS}")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect)
                      if s is not None and not isinstance(s, exp.Semicolon)]
    except RecursionError:
        return None, "SQL nested too deeply"
    except Exception as exc:  # ParseError, TokenError, or anything else sqlglot raises on junk
        verb = _verb(sql)
        if verb in NOT_QUERY_VERBS:
            return None, f"only read-only SELECT queries are allowed, not {verb}"
        return None, _parse_error(exc, dialect)
    if not statements:
        return None, "no SQL statement"
    if len(statements) > 1:
        return None, f"expected exactly one SQL statement, got {len(statements)}"
    return statements[0], None


def _func_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    try:
        return node.sql_name().lower()
    except Exception:  # pragma: no cover - defensive
        return type(node).__name__.lower()


def _reads_files(name: str) -> bool:
    return (name in FILE_FUNCTIONS or name.startswith(FILE_FUNCTION_PREFIXES)
            or name.endswith(FILE_FUNCTION_SUFFIXES))


def _verb(sql: str) -> str:
    words = re.findall(r"[A-Za-z_]+", sql[:200])
    return words[0].upper() if words else "this statement"


def read_only_problems(expr: exp.Expression, sql: str = "") -> list[str]:
    """Why a parsed statement is not one read-only query (empty when it is)."""
    if not isinstance(expr, TOP_LEVEL_OK):
        verb = _verb(sql) if sql else ""
        what = verb if verb in NOT_QUERY_VERBS else expr.key.upper()
        return [f"only read-only SELECT queries are allowed, not {what}"]
    problems: list[str] = []
    for node in expr.walk():
        if isinstance(node, exp.Select) and not node.expressions:
            problems.append("SELECT names nothing to select")
        elif isinstance(node, FORBIDDEN_NODES):
            if isinstance(node, exp.Into):
                problems.append("SELECT ... INTO creates a table; only read-only queries are allowed")
            else:
                problems.append(f"{node.key.upper()} inside the query is not allowed; only read-only queries")
        elif isinstance(node, exp.Func):
            name = _func_name(node)
            if _reads_files(name):
                problems.append(f"{name}() reads files or runs SQL text; it is not allowed")
        elif isinstance(node, exp.Table) and isinstance(node.this, exp.Literal | exp.Identifier) \
                and FILE_NAME_RE.search(str(node.this.this)):
            problems.append(f"FROM '{node.this.this}' reads a file; only tables of the schema are allowed")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            name = _func_name(node.this)
            if name.startswith(CATALOG_FUNCTION_PREFIXES):
                problems.append(f"{name}() reads the engine's catalog, not a table of the schema; it is not allowed")
        if len(problems) >= 3:
            break
    return list(dict.fromkeys(problems))


def check_statement(sql: str, dialect: str | None = "duckdb") -> str | None:
    """The statement allow-list: None for one read-only query, else the reason it may not run."""
    expr, error = parse_statement(sql, dialect)
    if expr is None:
        return error
    try:
        problems = read_only_problems(expr, sql)
    except RecursionError:
        return "SQL nested too deeply"
    return problems[0] if problems else None
