"""Hostile clients on loopback: slow-loris connections, amplifying errors, duplicate keys, a key no client can
send, clients that leave. The server is the real uvicorn one (``serve.server_config``: the guarded protocol)
over the stub engine of ``test_serve``.

Before the fix 150 connections sending partial headers and 50 sending partial bodies were never timed out
(file descriptors 9 -> 209, no cap); a 240 KB chat body got a 13 MB error answer; a non-ASCII key locked every
client out; a key given twice in a body was taken silently; queued requests of clients that had left were
still generated; ``HEAD /healthz`` was 405.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from _reliability import assert_one_line_error, run_main, tiny_base
from test_serve import JSON_FIELDS, Stub, make_expert, running, write_record

import expertkit.serving.serve
from expertkit.core.checkpoints import load_checkpoint
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.serving.serve import ServedExpert, ServeOptions, create_app, read_api_key, server_config

GEN = "/v1/experts/jsonx/generate"
CHAT = "/v1/chat/completions"
SYSTEM = "Dialect: json\nTask: extract"
OPTIONS = ServeOptions(host="127.0.0.1", port=0, read_timeout_s=1.0, max_connections=32, queue_size=8)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tiny_base(tmp_path_factory)
    root = tmp_path_factory.mktemp("hostile-clients")
    expert = make_expert(root, "jsonx")
    checkpoint = root / "checkpoint"
    checkpoint.mkdir()
    write_record(checkpoint, expert)
    return {"base": base, "served": [ServedExpert(expert, load_checkpoint(checkpoint), "jsonx")]}


@contextmanager
def guarded(world: dict[str, Any], options: ServeOptions = OPTIONS) -> Iterator[dict[str, Any]]:
    """The app under uvicorn with the guarded protocol, on a free loopback port."""
    stub = Stub(world["base"])
    app = create_app(world["served"], stub, options)
    with running(server_config(app, options, log_level="error")) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield {"port": port, "client": client, "stub": stub, "server": server,
                       "service": app.state.service}
        finally:
            stub.release.set()  # never leave the worker blocked when the server stops


def _connect(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed this connection (read: EOF) within the socket's timeout."""
    try:
        while sock.recv(65536):
            pass  # an error answer may come first
        return True
    except (TimeoutError, ConnectionResetError):
        return False
    finally:
        sock.close()


def _open_connections(server: Any) -> int:
    return len(server.server_state.connections)


# ---------------------------------------------------------------------- the cases
def slow_headers(env: dict[str, Any]) -> None:
    socks = [_connect(env["port"], b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: app")
             for _ in range(30)]
    assert all(_closed_by_server(s) for s in socks)  # within the socket timeout: the read timeout closed them
    assert env["client"].get("/healthz").status_code == 200


def slow_bodies(env: dict[str, Any]) -> None:
    head = f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    socks = [_connect(env["port"], head.encode() + b'{"fields": ') for _ in range(20)]
    assert all(_closed_by_server(s) for s in socks)
    assert env["client"].get("/healthz").status_code == 200


def connection_cap(world: dict[str, Any]) -> None:
    with guarded(world, replace(OPTIONS, read_timeout_s=60, max_connections=8)) as env:
        socks = [_connect(env["port"], b"GET /hea") for _ in range(20)]
        deadline = time.monotonic() + 10
        while _open_connections(env["server"]) > 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _open_connections(env["server"]) <= 8  # no read timeout yet: the cap closed the rest
        for s in socks:
            s.close()


def amplified_stray_lines(env: dict[str, Any]) -> None:
    system = SYSTEM + "\n" + "x\n" * 80_000
    body = {"model": "jsonx", "messages": [{"role": "system", "content": system}, {"role": "user", "content": "q"}]}
    r = env["client"].post(CHAT, json=body)
    assert r.status_code == 400, r.text[:500]
    assert len(r.content) < 16_384, len(r.content)
    assert len(r.json()["error"]["findings"]) == 20 and r.json()["error"]["findings_omitted"] > 79_000


def amplified_unknown_fields(env: dict[str, Any]) -> None:
    fields = {**JSON_FIELDS, **{f"F{i}": "x" for i in range(18_000)}}
    r = env["client"].post(GEN, json={"fields": fields, "question": "q"})
    assert r.status_code == 422, r.text[:500]
    assert len(r.content) < 16_384, len(r.content)


def duplicate_key_generate(env: dict[str, Any]) -> None:
    body = b'{"fields": {"Dialect": "json", "Task": "extract"}, "question": "a", "question": "b"}'
    r = env["client"].post(GEN, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "given twice" in r.json()["error"]["message"], r.text


def duplicate_key_chat(env: dict[str, Any]) -> None:
    body = (b'{"model": "jsonx", "messages": [{"role": "system", "content": "Dialect: json\\nTask: extract", '
            b'"content": "Dialect: json\\nTask: other"}, {"role": "user", "content": "q"}]}')
    r = env["client"].post(CHAT, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "given twice" in r.json()["error"]["message"], r.text


def head_healthz(env: dict[str, Any]) -> None:
    r = env["client"].head("/healthz")
    assert r.status_code == 200 and r.content == b""


def validation_off_the_loop(env: dict[str, Any]) -> None:
    seen: list[bool] = []
    real = expertkit.serving.serve.check_messages

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return real(*args, **kwargs)

    expertkit.serving.serve.check_messages = spy  # type: ignore[assignment]
    try:
        body = {"model": "jsonx", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "q"}]}
        assert env["client"].post(CHAT, json=body).status_code == 200
    finally:
        expertkit.serving.serve.check_messages = real  # type: ignore[assignment]
    assert seen == [False]  # in a worker thread, not on the event loop


def disconnected_client(env: dict[str, Any]) -> None:
    stub, service = env["stub"], env["service"]
    stub.release.clear()
    stub.entered.clear()
    first = threading.Thread(target=lambda: env["client"].post(GEN, json={"fields": JSON_FIELDS, "question": "a"}))
    first.start()
    assert stub.entered.wait(timeout=30)  # the worker is busy with the first request
    body = json.dumps({"fields": JSON_FIELDS, "question": "b"}).encode()
    sock = _connect(env["port"], f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    deadline = time.monotonic() + 30
    while service.worker.queue.qsize() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.close()  # the second client leaves while its request waits
    while service.dropped < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stub.release.set()
    first.join(timeout=30)
    assert service.dropped == 1
    deadline = time.monotonic() + 30
    while service.worker.queue.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stub.calls == [("jsonx", 1)]  # the second request was never generated


#: case -> (needs its own server, the check)
CASES: dict[str, tuple[bool, Callable[[Any], None]]] = {
    "30 connections sending partial headers": (False, slow_headers),
    "20 connections sending partial bodies": (False, slow_bodies),
    "more connections than the cap": (True, connection_cap),
    "80k stray lines in a chat system message": (False, amplified_stray_lines),
    "18k unknown fields": (False, amplified_unknown_fields),
    "a key given twice in a generate body": (False, duplicate_key_generate),
    "a key given twice in a chat body": (False, duplicate_key_chat),
    "HEAD /healthz": (False, head_healthz),
    "contract checks off the event loop": (False, validation_off_the_loop),
    "a client that leaves while queued": (False, disconnected_client),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_client(case: str, world: dict[str, Any]) -> None:
    own, check = CASES[case]
    if own:
        check(world)
        return
    with guarded(world) as env:
        check(env)


@pytest.mark.parametrize("key", ["clé-secrète", "key\u200bwith-zero-width", "tab\tinside"])
def test_a_key_no_client_can_send_is_refused_at_start(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    path.write_text(key + "\n", encoding="utf-8")
    with pytest.raises(ExpertkitError, match="non-ASCII or control characters"):
        read_api_key(path)

    def nothing_loaded(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the base was loaded before the key was checked")

    monkeypatch.setattr(expertkit.serving.serve, "build_engine", nothing_loaded)
    result = run_main(["serve", "nope", "--api-key-file", path, "--base", "/nonexistent"], capsys, monkeypatch)
    assert_one_line_error(result, "--api-key-file", "non-ASCII")


def test_the_training_values_are_read_once_at_start_with_a_cap(world: dict[str, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed manifest's ``data.train`` at a big member made every chat request re-read it on the event
    loop (3.8 s, RSS 474 -> 2,607 MB): now it is read when the app is made, at most 256 MiB, never again."""
    import expertkit.core.data
    import expertkit.expert

    expert = make_expert(tmp_path, "jsonx")
    record = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "q"},
                           {"role": "assistant", "content": "{}"}]}
    (expert.root / "data" / "train.jsonl").write_text(json.dumps(record) + "\n")
    served = [ServedExpert(expert, world["served"][0].checkpoint, "jsonx")]
    reads: list[str] = []
    real = expertkit.core.data.read_examples

    def counted(path: Any) -> Any:
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(expertkit.core.data, "read_examples", counted)
    app = create_app(served, Stub(world["base"]), OPTIONS)
    assert len(reads) == 1  # at start
    with running(server_config(app, OPTIONS, log_level="error")) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        body = {"model": "jsonx", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "q"}]}
        for _ in range(3):
            assert httpx.post(f"http://127.0.0.1:{port}{CHAT}", json=body, timeout=30).status_code == 200
    assert len(reads) == 1  # never by a request
    monkeypatch.setattr(expertkit.expert, "MAX_TRAINING_VALUES_BYTES", 10)
    again = [ServedExpert(Expert.load(expert.root), world["served"][0].checkpoint, "jsonx")]
    with pytest.raises(ExpertkitError, match="over the 10-byte limit"):
        create_app(again, Stub(world["base"]), OPTIONS)
