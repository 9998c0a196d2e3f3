"""Shared test setup: a private cache folder, so tests never touch the user's ~/.cache or ~/.expertkit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from expertkit.expert import Expert

# idle OpenMP threads sleep rather than spin: tiny models on 2 shared cores train many times faster
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# real material nobody here wrote (../shared/realdata, beside the checkout); absent in a user's clone
REALDATA = REPO.parent / "shared" / "realdata"


def pytest_sessionstart(session: pytest.Session) -> None:
    """An install older than pyproject.toml's packages and entry points (the shipped experts as
    ``expertkit_experts``, their generators in ``expertkit.generators``) fails every generator test alike: say so."""
    import importlib.util
    from importlib.metadata import entry_points

    if importlib.util.find_spec("expertkit_experts") is None or not entry_points(group="expertkit.generators"):
        pytest.exit("expertkit's install predates pyproject.toml (no expertkit_experts package or generator entry "
                    "points): run `make setup`", returncode=4)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["EXPERTKIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["EXPERTKIT_HOME"] = str(tmp_path_factory.mktemp("home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry of installed experts of the test's own (``$EXPERTKIT_HOME``)."""
    path = tmp_path / "registry"
    monkeypatch.setenv("EXPERTKIT_HOME", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _postgres_dir() -> Iterator[Path]:
    """The embedded PostgreSQL server's folder for this session (outside pytest's 0700 temp tree, which the
    server's system user cannot enter); every server the session started is stopped at its end."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="expertkit-pg-"))
    os.environ["EXPERTKIT_POSTGRES_DIR"] = str(folder)
    yield folder
    import sys

    if "expertkit.engines.sql.postgres" in sys.modules:
        from expertkit.engines.sql.postgres import stop_servers

        stop_servers()
    import psutil

    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or [])
            and p.status() != psutil.STATUS_ZOMBIE]
    shutil.rmtree(folder, ignore_errors=True)
    assert not left, f"postgres processes left running: {left}"


@pytest.fixture
def postmortem_dir() -> Path:
    return FIXTURES / "postmortem"


@pytest.fixture
def realdata() -> Path:
    """``../shared/realdata``; the test is skipped cleanly where it is absent."""
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not beside this checkout")
    return REALDATA


@pytest.fixture(scope="module")
def elastic() -> Expert:
    """The shipped Elasticsearch expert (read-only in tests)."""
    return Expert.load(REPO / "experts" / "elastic")


@pytest.fixture(scope="module")
def sql_expert() -> Expert:
    """The shipped SQL expert (read-only in tests)."""
    return Expert.load(REPO / "experts" / "sql")
