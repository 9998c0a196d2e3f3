"""The SQL sandbox: fixtures built once, read-only offline time-limited queries, at both layers."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from expertkit.core.errors import ExpertkitError
from expertkit.engines.sql.sandbox import (
    build_fixture,
    close_connections,
    engine_statement_problem,
    execute_unchecked,
    fixtures_dir,
    run_query,
)

DDL = """CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, salary NUMERIC(10,2),
                        dept_id INTEGER REFERENCES departments(id));"""
DATA = """INSERT INTO departments VALUES (1, 'Eng'), (2, 'Ops');
INSERT INTO employees VALUES (1, 'Ann', 100.5, 1), (2, 'Bob', 90, 2), (3, 'Cy', 120, 1);"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``(db, outside)``: a built fixture in a private cache, and a folder queries must not touch."""
    cache = tmp_path_factory.mktemp("cache")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPERTKIT_CACHE", str(cache))
        db = build_fixture(DDL, DATA)
        yield db, outside
    close_connections()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- fixtures
def test_build_fixture_is_cached_by_content(env: tuple[Path, Path]) -> None:
    db, _ = env
    key = hashlib.sha256(f"{DDL}\n-- data --\n{DATA}".encode()).hexdigest()
    assert db == fixtures_dir() / f"{key}.duckdb"
    assert db.parent.name == "fixtures" and db.is_file()
    mtime = db.stat().st_mtime_ns
    assert build_fixture(DDL, DATA) == db
    assert db.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]  # no temp files left


def test_build_fixture_errors_and_leaves_nothing(env: tuple[Path, Path]) -> None:
    db, outside = env
    with pytest.raises(ExpertkitError, match="does not build"):
        build_fixture("CREATE TABLE t (a INT);", "INSERT INTO nope VALUES (1);")
    # the build runs without file access either
    with pytest.raises(ExpertkitError, match="disabled"):
        build_fixture("CREATE TABLE t (a TEXT, b TEXT);", f"COPY t FROM '{outside / 'secret.csv'}';")
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_build_fixture_falls_back_to_transpiled_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERTKIT_CACHE", str(tmp_path))
    ddl = "CREATE TABLE t (id INT, label NVARCHAR(20));"  # T-SQL type DuckDB does not know
    db = build_fixture(ddl, "INSERT INTO t VALUES (1, 'x');", dialect="tsql")
    assert run_query(db, "SELECT label FROM t").rows == [("x",)]
    close_connections()


# ------------------------------------------------------------------------------- running
def test_run_query_returns_columns_and_rows(env: tuple[Path, Path]) -> None:
    db, _ = env
    result = run_query(db, "SELECT name, salary FROM employees WHERE dept_id = 1 ORDER BY name")
    assert result.ok and result.error is None
    assert result.columns == ["name", "salary"]
    assert [(n, float(s)) for n, s in result.rows] == [("Ann", 100.5), ("Cy", 120.0)]


def test_connection_is_read_only_offline_and_locked(env: tuple[Path, Path]) -> None:
    db, _ = env
    result = run_query(db, "SELECT current_setting('access_mode'), current_setting('enable_external_access'), "
                           "current_setting('lock_configuration'), current_setting('autoload_known_extensions'), "
                           "current_setting('autoinstall_known_extensions')")
    assert result.ok, result.error
    assert result.rows == [("read_only", False, True, False, False)]


def test_errors_are_reported_not_raised(env: tuple[Path, Path]) -> None:
    db, _ = env
    result = run_query(db, "SELECT salry FROM employees")
    assert not result.ok and result.error is not None and "salry" in result.error
    assert not run_query(db, "SELEC 1").ok
    assert not run_query(db, "\ud800 junk \x00").ok
    assert not run_query(db.with_name("missing.duckdb"), "SELECT 1").ok
    assert not execute_unchecked(db, "SELECT '\ud800'").ok


def test_time_limit_interrupts(env: tuple[Path, Path]) -> None:
    db, _ = env
    for sql in (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1",
    ):
        start = time.monotonic()
        result = run_query(db, sql, timeout_s=0.3)
        assert time.monotonic() - start < 3
        assert not result.ok and result.error == "query timed out after 0.3 s"
    assert run_query(db, "SELECT count(*) FROM employees").ok  # the fixture still answers


def test_row_limit(env: tuple[Path, Path]) -> None:
    db, _ = env
    assert run_query(db, "SELECT * FROM range(10)", max_rows=10).ok
    result = run_query(db, "SELECT * FROM range(11)", max_rows=10)
    assert not result.ok and result.error == "result has more than 10 rows"
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"
    assert run_query(db, endless, max_rows=100).error == "result has more than 100 rows"


def test_concurrent_queries(env: tuple[Path, Path]) -> None:
    db, _ = env
    results: list[bool] = []

    def work() -> None:
        for _ in range(10):
            results.append(run_query(db, "SELECT count(*) FROM employees").rows == [(3,)])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 60


# ------------------------------------------------------------------------------- hostile SQL
def hostile(outside: Path) -> list[str]:
    return [
        "DROP TABLE employees",
        "DELETE FROM employees",
        "INSERT INTO employees VALUES (9, 'Eve', 1, 1)",
        "UPDATE employees SET salary = 0",
        "CREATE TABLE x (a INT)",
        f"ATTACH '{outside / 'x.db'}' AS x",
        f"COPY employees TO '{outside / 'out.csv'}'",
        f"EXPORT DATABASE '{outside / 'dump'}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        f"SELECT * FROM read_csv('{outside / 'secret.csv'}')",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM '{outside / 'secret.csv'}'",
        "SELECT * FROM glob('/etc/*')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SELECT 1; DROP TABLE employees",
    ]


def test_hostile_statements_are_refused(env: tuple[Path, Path]) -> None:
    db, outside = env
    before = digest(db)
    for sql in [*hostile(outside), "PRAGMA database_list", "CALL pragma_version()", "CHECKPOINT",
                "SELECT * FROM query('SELECT 1')", "SELECT 1 INTO t2", "VACUUM",
                "WITH d AS (DELETE FROM employees RETURNING *) SELECT * FROM d"]:
        result = run_query(db, sql)
        assert not result.ok, sql
        assert result.error, sql
    assert digest(db) == before
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]


def test_engine_blocks_them_without_the_pre_check(env: tuple[Path, Path]) -> None:
    """The locked read-only connection itself refuses each one: not only the allow-list."""
    db, outside = env
    before = digest(db)
    reasons = {
        "DROP TABLE employees": "read-only",
        "DELETE FROM employees": "read-only",
        "INSERT INTO employees VALUES (9, 'Eve', 1, 1)": "read-only",
        "UPDATE employees SET salary = 0": "read-only",
        "CREATE TABLE x (a INT)": "read-only",
        f"ATTACH '{outside / 'x.db'}' AS x": "disabled by configuration",
        f"COPY employees TO '{outside / 'out.csv'}'": "disabled by configuration",
        f"EXPORT DATABASE '{outside / 'dump'}'": "disabled by configuration",
        "INSTALL httpfs": "disabled by configuration",
        "LOAD httpfs": "disabled through configuration",
        f"SELECT * FROM read_csv('{outside / 'secret.csv'}')": "disabled by configuration",
        "SELECT * FROM read_csv('/etc/passwd')": "disabled by configuration",
        "SELECT * FROM read_text('/etc/hostname')": "disabled by configuration",
        f"SELECT * FROM '{outside / 'secret.csv'}'": "disabled by configuration",
        "SELECT * FROM glob('/etc/*')": "disabled by configuration",
        "SET enable_external_access = true": "locked",
        "SET lock_configuration = false": "locked",
        "SET memory_limit = '100GB'": "locked",
        "SELECT 1; DROP TABLE employees": "read-only",
    }
    for sql, reason in reasons.items():
        result = execute_unchecked(db, sql)
        assert not result.ok, sql
        assert result.error is not None and reason in result.error, (sql, result.error)
    # what the engine allows stays private to one query's cursor and leaves the file alone
    assert execute_unchecked(db, "CREATE TEMP TABLE scratch AS SELECT 1 AS a").ok
    assert not execute_unchecked(db, "SELECT * FROM scratch").ok
    execute_unchecked(db, "CHECKPOINT")
    assert digest(db) == before
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_engine_time_limit_without_the_pre_check(env: tuple[Path, Path]) -> None:
    db, _ = env
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    result = execute_unchecked(db, sql, timeout_s=0.2)
    assert not result.ok and "timed out" in (result.error or "")


def test_engine_statement_check() -> None:
    assert engine_statement_problem("SELECT 1") is None
    assert engine_statement_problem("WITH a AS (SELECT 1) SELECT * FROM a") is None
    assert engine_statement_problem("SELECT 1; SELECT 2") == "expected exactly one SQL statement, got 2"
    assert engine_statement_problem("PRAGMA version") == "only SELECT statements may run, not PRAGMA"
    assert engine_statement_problem("ATTACH 'x.db'") == "only SELECT statements may run, not ATTACH"
    assert (engine_statement_problem("SELEC 1") or "").startswith("DuckDB cannot parse")


def test_pre_check_reasons(env: tuple[Path, Path]) -> None:
    db, _ = env
    assert run_query(db, "DROP TABLE employees").error == "only read-only SELECT queries are allowed, not DROP"
    assert run_query(db, "SELECT * FROM read_csv('/etc/passwd')").error == (
        "read_csv() reads files or runs SQL text; it is not allowed")
    assert run_query(db, "SELECT 1; SELECT 2").error == "expected exactly one SQL statement, got 2"
    assert run_query(db, "SET enable_external_access = true").error == (
        "only read-only SELECT queries are allowed, not SET")


def test_fixtures_dir_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPERTKIT_CACHE", raising=False)
    assert fixtures_dir() == Path(os.path.expanduser("~")) / ".cache" / "expertkit" / "fixtures"
