"""SQL engines as plug-ins: PostgreSQL (embedded server), SQLite, DuckDB; validity is the engine's word,
the sandbox is the engine's, results compare as the test-suite method does."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from expertkit.engines.sql import ENGINES, Database, SqlEngine, get_engine
from expertkit.engines.sql.postgres import SANDBOX_ROLE, server
from expertkit.engines.sql.results import same_result
from expertkit.engines.sql.variants import build_variants, draw_tables
from expertkit.expert import Expert
from expertkit.kinds.sql.validator import SqlValidator

REPO = Path(__file__).resolve().parents[1]
HR = (REPO / "experts" / "sql" / "schemas" / "hr.sql").read_text()
HR_DATA = (REPO / "experts" / "sql" / "schemas" / "hr.data.sql").read_text()


@pytest.fixture(scope="module")
def expert() -> Expert:
    return Expert.load(REPO / "experts" / "sql")


@pytest.fixture(scope="module")
def fields(expert: Expert) -> dict[str, str]:
    return expert.contract.normalize({"Dialect": "postgres", "Task": "text_to_sql", "Schema": HR})


# ------------------------------------------------------------------------------- the registry
def test_the_dialect_value_picks_a_registered_engine() -> None:
    assert {"postgres", "sqlite", "duckdb"} <= set(ENGINES)
    assert get_engine("PostgreSQL").name == "postgres"  # type: ignore[union-attr]
    assert get_engine("sqlite").name == "sqlite"  # type: ignore[union-attr]
    assert get_engine("postgres") is get_engine("pg")  # one instance per engine
    assert get_engine("mysql") is None and get_engine(None) is None

    class Toy(SqlEngine):  # a new module only has to subclass: it registers itself
        name: ClassVar[str] = "toysql"

        def explain(self, sql: str, schema: str, *, timeout_s: float = 2.0) -> str | None:
            return "toy says no"

        fixture = run = tables = with_rows = None  # type: ignore[assignment]

    try:
        assert ENGINES["toysql"] is Toy
        validator = Expert.load(REPO / "experts" / "sql").validator
        result = validator.validate("SELECT 1", {"Dialect": "toysql", "Schema": "CREATE TABLE t (a INT);"})
        assert result.errors == ["toy says no"]
    finally:
        ENGINES.pop("toysql", None)


# ------------------------------------------------------------------------------- PostgreSQL: validity
REFUSED_BY_POSTGRES = [
    ("SELECT location FROM departments GROUP BY location WHERE budget > 10", 'syntax error at or near "WHERE"'),
    ("SELECT location FROM departments HAVING count(*) > 1 GROUP BY location", 'syntax error at or near "GROUP"'),
    ("SELECT e.first_name FROM employees e JOIN departments d", "syntax error at end of input"),
    ("SELECT name, count(*) FROM departments GROUP BY location",
     'column "departments.name" must appear in the GROUP BY clause or be used in an aggregate function'),
    ("SELECT location, name FROM departments GROUP BY 1", "must appear in the GROUP BY clause"),
    ("SELECT first_name || salary FROM employees GROUP BY first_name", "must appear in the GROUP BY clause"),
    ("SELECT count(*) OVER (), name FROM departments GROUP BY location", "must appear in the GROUP BY clause"),
    ("SELECT 1 FROM departments WHERE EXISTS (SELECT 1 FROM projects GROUP BY status HAVING budget > 1)",
     'column "projects.budget" must appear'),
    ("SELECT name FROM departments WHERE count(*) > 1", "aggregate functions are not allowed in WHERE"),
    ("SELECT max(count(*)) FROM employees", "aggregate function calls cannot be nested"),
    ("SELECT name FROM departments WHERE id == 1", "operator does not exist: integer == integer"),
    ("SELECT IFNULL(budget, 0) FROM departments", "function ifnull(numeric, integer) does not exist"),
    ("SELECT strftime('%Y', hire_date) FROM employees", "function strftime(unknown, date) does not exist"),
    ("SELECT no_such_function(id) FROM employees", "function no_such_function(integer) does not exist"),
    ("SELECT GROUP_CONCAT(name) FROM departments", "function group_concat(text) does not exist"),
    ("SELECT sum(name) FROM departments", "function sum(text) does not exist"),
    ("SELECT avg(hire_date) FROM employees", "function avg(date) does not exist"),
    ("SELECT id, name FROM departments UNION SELECT id FROM employees",
     "each UNION query must have the same number of columns"),
    ("SELECT DISTINCT first_name FROM employees ORDER BY salary",
     "for SELECT DISTINCT, ORDER BY expressions must appear in select list"),
    ("SELECT name FROM departments WHERE budget = 'lots'", 'invalid input syntax for type numeric: "lots"'),
    ("SELECT name FROM departments WHERE id = name", "operator does not exist: integer = text"),
    ("SELECT first_name FROM employees WHERE hire_date > 5", "operator does not exist: date > integer"),
    ("SELECT name FROM departments WHERE name LIKE 1", "operator does not exist: text ~~ integer"),
    ("SELECT name FROM departments WHERE budget > ALL (SELECT first_name FROM employees)",
     "operator does not exist: numeric > text"),
    ("FROM departments SELECT name", 'syntax error at or near "FROM"'),
    ("FROM flights", 'syntax error at or near "FROM"'),  # DuckDB's FROM-first query is not PostgreSQL
    ("SELECT name FROM departments LIMIT 'ten'", 'invalid input syntax for type bigint: "ten"'),
    ("SELECT salry FROM employees", 'column "salry" does not exist (hint: Perhaps you meant to reference the '
                                    'column "employees.salary".)'),
    ("SELECT * FROM employes", 'relation "employes" does not exist'),
    ("SELECT d.name FROM departments d WHERE x.id = 1", 'missing FROM-clause entry for table "x"'),
    ("SELECT name FROM departments ORDER BY 5", "ORDER BY position 5 is not in select list"),
    ("SELECT name FROM departments WHERE id IN (SELECT id, name FROM departments)", "subquery has too many columns"),
    ("SELECT [name] FROM departments", 'syntax error at or near "["'),
    ("SELECT * FROM flights", 'relation "flights" does not exist'),  # another fixture's table
    ('SELECT name FROM departments WHERE location = "Boston"',
     'column "Boston" does not exist; a double-quoted "Boston" is a column name in PostgreSQL, a string is '
     "written 'Boston'"),
]


def test_the_refused_corpus_is_at_least_thirty() -> None:
    assert len(REFUSED_BY_POSTGRES) >= 30


@pytest.mark.parametrize(("sql", "message"), REFUSED_BY_POSTGRES, ids=[s for s, _ in REFUSED_BY_POSTGRES])
def test_postgres_refuses_with_its_own_message(expert: Expert, fields: dict[str, str], sql: str, message: str
                                               ) -> None:
    result = expert.validator.validate(sql, fields)
    assert not result.valid
    assert len(result.errors) == 1 and message in result.errors[0], result.errors
    assert "\n" not in result.errors[0]


def test_postgres_accepts_what_it_plans(expert: Expert, fields: dict[str, str]) -> None:
    for sql in ["SELECT 5 / 2", "SELECT 1; -- done", "select name from departments;",
                "(SELECT 1) UNION (SELECT 2)",
                "SELECT d.name, count(*) FROM departments d JOIN employees e ON e.department_id = d.id GROUP BY d.id",
                "SELECT name FROM departments LIMIT -1"]:  # LIMIT -1 fails only when it runs
        assert expert.validator.validate(sql, fields).errors == [], sql


def test_engine_catalog_functions_are_not_tables_of_the_schema(expert: Expert, fields: dict[str, str]) -> None:
    for dialect in ("postgres", "duckdb"):
        for sql in ("SELECT * FROM duckdb_settings()", "SELECT * FROM duckdb_databases()"):
            result = expert.validator.validate(sql, {**fields, "Dialect": dialect})
            assert not result.valid and "reads the engine's catalog" in result.errors[0]


def test_work_is_capped_with_a_finding(expert: Expert, fields: dict[str, str]) -> None:
    ors = "SELECT name FROM departments WHERE " + " OR ".join(f"id = {i}" for i in range(14_000))
    unions = " UNION ".join(f"SELECT {i}" for i in range(4_000))
    assert "over the 5000-token limit" in expert.validator.validate(ors, fields).errors[0]
    few = " UNION ".join(f"SELECT {i}" for i in range(150))
    assert expert.validator.validate(unions, fields).errors[0].startswith("SQL has")
    assert "set operations" in expert.validator.validate(few, fields).errors[0]


# ------------------------------------------------------------------------------- PostgreSQL: the sandbox
def _checksum(db: Database) -> str:
    with server().connect(db.location) as con:
        tables = [r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                            "ORDER BY 1").fetchall()]
        digest = hashlib.sha256()
        for t in tables:
            digest.update(str(con.execute(f'SELECT md5(string_agg(x::text, \',\' ORDER BY x::text)) FROM "{t}" x')
                              .fetchone()).encode())
        return digest.hexdigest()


HOSTILE = [
    "COPY employees TO '/tmp/expertkit-leak.csv'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('.')",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT set_config('temp_file_limit', '-1', false)",
    "SET statement_timeout = 0",
    "ALTER ROLE expertkit_sandbox SUPERUSER",
    "CREATE TEMP TABLE x (a int)",
    "CREATE TABLE x (a int)",
    "DELETE FROM employees",
    "UPDATE employees SET salary = 0",
    "DROP TABLE assignments",
    "SELECT 1; DROP TABLE assignments",
    "SELECT current_setting('data_directory')",
    "SELECT pg_advisory_lock(1)",  # a session lock would outlive the rollback on the reused connection
    "SELECT pg_try_advisory_lock_shared(1, 2)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",  # the other sandbox sessions: other processes
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
]
RUNAWAY = [
    "SELECT pg_sleep(60)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "SELECT count(*) FROM employees a, employees b, employees c, employees d, employees e, employees f",
]


@pytest.fixture(scope="module")
def pg_fixture() -> Database:
    engine = get_engine("postgres")
    assert engine is not None
    return engine.fixture(HR, HR_DATA)


def test_the_sandbox_role_has_no_powers(pg_fixture: Database) -> None:
    with server().connect() as con:
        row = con.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles "
                          "WHERE rolname = %s", [SANDBOX_ROLE]).fetchone()
        assert row == (False, False, False, False)
        member_of = con.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                                "WHERE r.rolname = %s", [SANDBOX_ROLE]).fetchone()[0]
        assert member_of == 0
    with server().connect(pg_fixture.location, SANDBOX_ROLE) as con:
        assert con.execute("SELECT has_database_privilege(current_database(), 'CREATE'), "
                           "has_database_privilege(current_database(), 'TEMP'), "
                           "has_schema_privilege('public', 'CREATE')").fetchone() == (False, False, False)


def test_hostile_statements_are_contained_by_the_engine(pg_fixture: Database) -> None:
    engine = get_engine("postgres")
    assert engine is not None
    before = _checksum(pg_fixture)
    for sql in HOSTILE:  # straight to the engine: the static checks are not what holds them
        result = engine.run(pg_fixture, sql, timeout_s=1.0)
        assert not result.ok and result.error, sql
    for sql in RUNAWAY:
        start = time.monotonic()
        result = engine.run(pg_fixture, sql, timeout_s=0.5)
        assert result.timed_out and time.monotonic() - start < 5, (sql, result)
    too_many = engine.run(pg_fixture, "SELECT * FROM generate_series(1, 20000)", max_rows=100)
    assert too_many.error == "result has more than 100 rows"
    too_big = engine.run(pg_fixture, "SELECT repeat('x', 100000) FROM generate_series(1, 50)", max_bytes=1_000_000)
    assert too_big.error == "result is over 1000000 bytes"
    assert not Path("/tmp/expertkit-leak.csv").exists()
    assert _checksum(pg_fixture) == before
    assert engine.run(pg_fixture, "SELECT 5 / 2, count(*) FROM departments").rows == [(2, 11)]  # still up


def test_a_schema_is_loaded_without_the_superuser(expert: Expert, fields: dict[str, str]) -> None:
    """The Schema comes from a data file or a request: loading it must not run programs or read files."""
    probe = "DO $$ BEGIN IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN " \
            "RAISE EXCEPTION 'loaded as a superuser'; END IF; END $$;"
    for hostile in (f"CREATE TABLE t (a int); {probe}", "CREATE TABLE t (a int); COPY (SELECT 1) TO PROGRAM 'true'",
                    "CREATE TABLE t (a int); SELECT pg_read_file('/etc/passwd')",
                    "CREATE TABLE t (a int); ALTER ROLE expertkit_sandbox SUPERUSER"):
        result = expert.validator.validate("SELECT a FROM t", {**fields, "Schema": hostile + f" -- {time.time()}"})
        assert "loaded as a superuser" not in " ".join(result.warnings), hostile
        if probe not in hostile:
            assert any("does not load in PostgreSQL" in w and "permission denied" in w for w in result.warnings), \
                (hostile, result.warnings)
    with server().connect() as con:
        assert con.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [SANDBOX_ROLE]).fetchone() == (False,)


# ------------------------------------------------------------------------------- PostgreSQL: the server
SCRIPT = textwrap.dedent("""
    import os, sys, time
    from expertkit.engines.sql import get_engine
    from expertkit.engines.sql.postgres import server
    engine = get_engine("postgres")
    print(engine.explain("SELECT 1", "CREATE TABLE t (a INT);"), server().pid(), flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), 9)
    if sys.argv[1] == "wait":
        time.sleep(60)
""")


def _child(folder: Path, mode: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "EXPERTKIT_POSTGRES_DIR": str(folder)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, mode], env=env, stdout=subprocess.PIPE, text=True,
                            **kwargs)


def _postmaster(folder: Path) -> int | None:
    pid_file = folder / "data" / "postmaster.pid"
    if not pid_file.is_file():
        return None
    pid = int(pid_file.read_text().split()[0])
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return None
    return pid if alive else None


@pytest.fixture
def pg_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="expertkit-pg-test-"))
    yield folder
    pid = _postmaster(folder)
    if pid is not None:  # a failed test must not leave its server behind
        os.kill(pid, signal.SIGTERM)
        psutil.Process(pid).wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def test_server_stops_at_exit_and_an_orphan_is_reused_then_stopped(pg_folder: Path) -> None:
    first = _child(pg_folder, "exit")
    out, _ = first.communicate(timeout=120)
    assert out.split()[0] == "None" and first.returncode == 0
    assert _postmaster(pg_folder) is None  # stopped at exit
    killed = _child(pg_folder, "kill")
    out, _ = killed.communicate(timeout=120)
    orphan = int(out.split()[1])
    assert killed.returncode == -9 and _postmaster(pg_folder) == orphan  # left behind by a killed process
    reuse = _child(pg_folder, "exit")
    out, _ = reuse.communicate(timeout=120)
    assert int(out.split()[1]) == orphan  # found and reused ...
    assert _postmaster(pg_folder) is None  # ... and stopped when that run exits


def test_server_stops_on_ctrl_c(pg_folder: Path) -> None:
    child = _child(pg_folder, "wait")
    assert child.stdout is not None
    pid = int(child.stdout.readline().split()[1])
    assert _postmaster(pg_folder) == pid
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    assert _postmaster(pg_folder) is None


def test_a_server_that_cannot_start_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "EXPERTKIT_POSTGRES_DIR": str(blocker / "pg")}
    proc = subprocess.run([sys.executable, "-m", "expertkit.cli", "validate", str(REPO / "experts" / "sql"),
                           "--output", "SELECT 1", "--field", "Dialect=postgres", "--field", "Task=text_to_sql",
                           "--field", f"Schema={HR}"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the embedded PostgreSQL server cannot start" in lines[0]
    assert "EXPERTKIT_CACHE" in lines[0]


# ------------------------------------------------------------------------------- SQLite
@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "shop.sqlite"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
                      "INSERT INTO item VALUES (1, 'pen', 1.5), (2, 'ink', 3.0), (3, 'pad', 2.25);")
    con.commit()
    con.close()
    return path


def test_sqlite_explains_and_runs_read_only(sqlite_db: Path) -> None:
    engine = get_engine("sqlite")
    assert engine is not None
    schema = "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
    assert engine.explain("SELECT name FROM item WHERE price > 2", schema) is None
    assert engine.explain("SELECT nam FROM item", schema) == "no such column: nam"
    assert engine.explain("SELECT * FROM nope", schema) == "no such table: nope"
    db = engine.open_file(sqlite_db)
    before = sqlite_db.read_bytes()
    assert engine.run(db, "SELECT name FROM item ORDER BY price DESC").rows == [("ink",), ("pad",), ("pen",)]
    for sql in ["DELETE FROM item", "UPDATE item SET price = 0", "DROP TABLE item", "PRAGMA writable_schema = 1",
                f"ATTACH '{sqlite_db.parent / 'x.db'}' AS x", "CREATE TABLE t (a)", "SELECT load_extension('x')"]:
        result = engine.run(db, sql)
        assert not result.ok and result.error, sql
    slow = engine.run(db, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
                      timeout_s=0.3)
    assert slow.timed_out
    assert engine.run(db, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT 50) "
                          "SELECT n FROM r", max_rows=10).error == "result has more than 10 rows"
    assert sqlite_db.read_bytes() == before and not (sqlite_db.parent / "x.db").exists()


# ------------------------------------------------------------------------------- DuckDB
def test_a_schema_cannot_write_files_or_hang(expert: Expert, fields: dict[str, str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite and DuckDB load the prompt's Schema in memory: it attaches no file and ends within a time limit."""
    import expertkit.engines.sql as engines

    monkeypatch.setattr(engines, "SCHEMA_LOAD_TIMEOUT_S", 0.5)
    for sql in (f"CREATE TABLE t (a int); ATTACH DATABASE '{tmp_path / 'a.db'}' AS x; CREATE TABLE x.z (a int);",
                f"CREATE TABLE t (a int); VACUUM INTO '{tmp_path / 'b.db'}';"):
        result = expert.validator.validate("SELECT a FROM t", {**fields, "Dialect": "sqlite", "Schema": sql})
        assert any("does not load in SQLite" in w for w in result.warnings), result.warnings
    assert list(tmp_path.iterdir()) == []
    for dialect, sql in (("sqlite", "CREATE TABLE t AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
                                    "FROM r) SELECT count(*) AS a FROM r;"),
                         ("duckdb", "CREATE TABLE t AS SELECT count(*) AS a FROM range(1000000000000) x, "
                                    "range(9) y;")):
        start = time.monotonic()
        result = expert.validator.validate("SELECT a FROM t", {**fields, "Dialect": dialect, "Schema": sql})
        assert time.monotonic() - start < 10, dialect
        assert any("does not load" in w for w in result.warnings), (dialect, result.warnings)
    # a Schema that loads still does, PRAGMA and all
    ok = "PRAGMA foreign_keys = ON; CREATE TABLE t (a int); CREATE INDEX i ON t (a); INSERT INTO t VALUES (1);"
    assert expert.validator.validate("SELECT a FROM t", {**fields, "Dialect": "sqlite", "Schema": ok}).warnings == []


def test_duckdb_explains_with_its_own_rules(expert: Expert, fields: dict[str, str]) -> None:
    duck = {**fields, "Dialect": "duckdb"}
    assert expert.validator.validate("FROM departments", duck).valid  # DuckDB's FROM-first form
    assert not expert.validator.validate("FROM departments", fields).valid  # not PostgreSQL
    result = expert.validator.validate("SELECT nope FROM departments", duck)
    assert not result.valid and "nope" in result.errors[0]
    engine = get_engine("duckdb")
    assert engine is not None
    db = engine.fixture(HR, HR_DATA)
    assert engine.run(db, "SELECT 5 / 2").rows == [(2.5,)]  # DuckDB's division, not PostgreSQL's
    big = engine.run(db, "SELECT repeat('x', 100000) FROM range(50)", max_bytes=1_000_000)
    assert big.error == "result is over 1000000 bytes"  # capped in bytes, not only in rows


# ------------------------------------------------------------------------------- results and variants
def test_same_result_rules() -> None:
    assert same_result([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], ordered=False)
    assert not same_result([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], ordered=True)
    assert same_result([(1, "a"), (2, "b")], [("a", 1), ("b", 2)], ordered=True)  # columns permuted
    assert not same_result([(1, "a"), (2, "b")], [("a", 2), ("b", 1)], ordered=False)
    assert same_result([(0.1 + 0.2,)], [(0.3,)], ordered=False)  # float tolerance
    assert same_result([(2,)], [(2.0,)], ordered=False)
    assert not same_result([(1,), (1,)], [(1,)], ordered=False)  # multisets
    assert not same_result([(1,)], [(1, 1)], ordered=False)
    assert same_result([], [], ordered=False, gold_width=1, out_width=1)
    assert not same_result([], [], ordered=False, gold_width=1, out_width=2)


def test_variants_keep_keys_and_draw_nulls_and_duplicates(pg_fixture: Database) -> None:
    engine = get_engine("postgres")
    assert engine is not None
    tables = engine.tables(pg_fixture)
    assert [t.name for t in tables] == ["departments", "employees", "projects", "assignments"]
    assert draw_tables(tables, 1) == draw_tables(tables, 1)  # seeded
    drawn = {t.name: t for t in draw_tables(tables, 7)}
    dept_ids = {r[0] for r in drawn["departments"].rows}
    assert len(dept_ids) == len(drawn["departments"].rows)  # primary key unique
    emp = drawn["employees"]
    assert {r[3] for r in emp.rows} <= dept_ids | {None}  # foreign keys point at drawn parents
    assert any(v is None for r in emp.rows for v in r)  # some NULLs
    pairs = [(r[0], r[1]) for r in drawn["assignments"].rows]
    assert len(pairs) == len(set(pairs))  # composite key unique
    variants = build_variants(engine, pg_fixture, 2)
    assert [label for label, _ in variants] == ["variant 1", "variant 2"]
    counts = [engine.run(db, "SELECT count(*) FROM employees").rows[0][0] for _, db in variants]
    assert counts != [200, 200]


def test_execution_match_records_the_deciding_variant(expert: Expert, fields: dict[str, str]) -> None:
    validator = expert.validator
    assert isinstance(validator, SqlValidator)
    gold = "SELECT name FROM departments WHERE budget > 1500000"
    same = validator.execution_outcome("SELECT d.name FROM departments d WHERE NOT d.budget <= 1500000", gold,
                                       fields)
    assert same.match is True and same.decided_by is None and same.databases == 4
    # >= differs from > only where a row sits on the boundary: the fixture has one, so it decides
    edge = validator.execution_outcome("SELECT name FROM departments WHERE budget >= 1500000", gold, fields)
    assert edge.match is False and edge.decided_by == "fixture"
    # the fixture has no NULL location, so these agree there; a variant with NULLs tells them apart
    nulls = validator.execution_outcome("SELECT count(location) FROM departments", "SELECT count(*) FROM departments",
                                        fields)
    assert validator.execution_outcome("SELECT count(location) FROM departments", "SELECT count(*) FROM departments",
                                       fields, variants=0).match is True
    assert nulls.match is False and (nulls.decided_by or "").startswith("variant ")
    assert validator.execution_outcome("SELECT 1", "SELECT 1", fields, variants=0).databases == 1


def test_variants_keep_unique_columns_unique(tmp_path: Path) -> None:
    path = tmp_path / "cars.sqlite"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE model (id INTEGER PRIMARY KEY, name TEXT UNIQUE, maker TEXT);"
                      + "".join(f"INSERT INTO model VALUES ({i}, 'm{i}', 'mk{i % 2}');" for i in range(1, 13)))
    con.commit()
    con.close()
    engine = get_engine("sqlite")
    assert engine is not None
    db = engine.open_file(path)
    (table,) = engine.tables(db)
    assert table.unique == [["name"]] and table.primary_key == ["id"]
    variants = build_variants(engine, db, 3)
    assert len(variants) == 3  # none left out for a UNIQUE violation
    for _, variant in variants:
        names = [r[0] for r in engine.run(variant, "SELECT name FROM model WHERE name IS NOT NULL").rows]
        assert len(names) == len(set(names))
