"""Messages and exit codes: every failure is one line, ``FILE:LINE: KEY: message``, exit 2, with control
characters escaped; ``serve`` checks its address before loading anything; an unknown hub id fails at once when
the hub is offline; archives and installs get the usual, umask-respecting permissions.

Before the fix: raw ``PermissionError``/``FileExistsError`` text (read-only folders, ``EXPERTKIT_HOME`` a file or
``/dev/null``), ``list`` printing ``[]`` for a registry that is a file, a newline in a path splitting the error
line, ``serve`` on a busy port or a bad host loading the base and exiting 3, an unknown hub id offline taking
~50 s and 22 retry lines, archives 0600 and installed folders 0700.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from _reliability import BADINPUT, assert_one_line_error, read_only, run_main, snapshot, write_checkpoint

import expertkit.serving.serve
from expertkit.expert import Expert
from expertkit.packaging.package import install_package, package_expert

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    expert = Path(shutil.copytree(BADINPUT / "expert", tmp_path / "expert"))
    checkpoint = write_checkpoint(tmp_path / "run" / "checkpoint-1", Expert.load(expert))
    sql = Path(shutil.copytree(REPO / "experts" / "sql", tmp_path / "sql", ignore=shutil.ignore_patterns("*.jsonl")))
    archive = package_expert(Expert.load(expert), checkpoint, tmp_path / "badinput.expert")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")

    def nothing_loaded(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(expertkit.serving.serve, "build_engine", nothing_loaded)
    monkeypatch.setenv("EXPERTKIT_HOME", str(tmp_path / "home"))
    return {"tmp": tmp_path, "expert": expert, "checkpoint": checkpoint, "sql": sql, "archive": archive,
            "file": a_file, "locked": tmp_path / "locked"}


def _busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


#: case -> (arguments, needles, environment); ``{name}`` are the world's paths, ``{port}`` a busy port.
CASES: dict[str, tuple[list[str], list[str], dict[str, str]]] = {
    "package --out in a read-only folder": (
        ["package", "{expert}", "--checkpoint", "{checkpoint}", "--out", "{locked}/x.expert"],
        ["locked", "--out", "permission denied"], {}),
    "data generate --out-dir a read-only folder": (
        ["data", "generate", "{sql}", "--train-size", "3", "--eval-size", "2", "--out-dir", "{locked}"],
        ["locked", "permission denied"], {}),
    "new --root a read-only folder": (["new", "x", "--dialect", "d", "--task", "t", "--root", "{locked}"],
                                      ["locked", "permission denied"], {}),
    "base tiny --out in a read-only folder": (["base", "tiny", "--out", "{locked}/tiny"],
                                              ["locked", "--out", "permission denied"], {}),
    "install into a read-only registry": (["install", "{archive}"], ["locked", "permission denied"],
                                          {"EXPERTKIT_HOME": "{locked}/home"}),
    "install with EXPERTKIT_HOME a file": (["install", "{archive}"], ["a_file", "EXPERTKIT_HOME", "not a folder"],
                                           {"EXPERTKIT_HOME": "{file}"}),
    "list with EXPERTKIT_HOME a file": (["list"], ["a_file", "EXPERTKIT_HOME", "not a folder"],
                                        {"EXPERTKIT_HOME": "{file}"}),
    "list with EXPERTKIT_HOME /dev/null": (["list"], ["/dev/null", "EXPERTKIT_HOME", "not a folder"],
                                           {"EXPERTKIT_HOME": "/dev/null"}),
    "a newline and an escape in a path": (["lint", "{tmp}/x\nexpertkit: error: forged\x1b[31m"],
                                          ["x\\nexpertkit: error: forged\\x1b[31m", "no such expert"], {}),
    "serve on a busy port": (["serve", "{expert}:{checkpoint}", "--port", "{port}"],
                             ["--port", "another server holds the port"], {}),
    "serve on a host that does not exist": (["serve", "{expert}:{checkpoint}", "--host", "no-such-host.invalid"],
                                            ["--host", "no-such-host.invalid"], {}),
    "an unknown hub id with HF_HUB_OFFLINE": (
        ["train", "{expert}", "--base", "nobody/no-such-model", "--out", "{tmp}/r"],
        ["--base", "nobody/no-such-model", "offline (HF_HUB_OFFLINE is set)"], {"HF_HUB_OFFLINE": "1"}),
    "an unknown hub id, the hub unreachable": (
        ["train", "{expert}", "--base", "nobody/no-such-model", "--out", "{tmp}/r"],
        ["--base", "nobody/no-such-model", "127.0.0.1:9 cannot be reached"],
        {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_with_file_and_key(case: str, world: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    args, needles, env = CASES[case]
    sock, port = _busy_port()
    values = {**{k: str(v) for k, v in world.items()}, "port": str(port)}
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**values))
    read_only(monkeypatch, world["locked"])
    before = snapshot(world["tmp"], skip=[world["tmp"] / "home"])
    try:
        result = run_main([a.format(**values) for a in args], capsys, monkeypatch)
    finally:
        sock.close()
    assert_one_line_error(result, *needles)
    assert "Error:" not in result.stderr and "Errno" not in result.stderr  # no exception text
    assert snapshot(world["tmp"], skip=[world["tmp"] / "home"]) == before


def test_a_recursion_error_anywhere_is_one_line(world: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def deep(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Expert, "render", deep)
    result = run_main(["render", world["expert"], "--field", "Dialect=json", "--field", "Task=extract",
                       "--question", "q"], capsys, monkeypatch)
    assert_one_line_error(result, "nested too deeply")
    assert "RecursionError" not in result.stderr


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_archives_and_installs_get_the_usual_permissions(umask: int, world: dict[str, Any]) -> None:
    old = os.umask(umask)
    try:
        archive = package_expert(Expert.load(world["expert"]), world["checkpoint"], world["tmp"] / "p.expert")
        installed = install_package(archive)
    finally:
        os.umask(old)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(installed.path.stat().st_mode) == 0o777 & ~umask
