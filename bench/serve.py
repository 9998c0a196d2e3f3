"""Serving under load: ``expertkit serve`` with two experts over the tiny base, on loopback.

Starts ``python -m expertkit.cli serve experts/elastic:CK experts/sql:CK --base <tiny> --port P`` as a
subprocess on 127.0.0.1 (a free port), each expert with one LoRA checkpoint (random, untrained adapter
from ``bench._run``: outputs mostly run to the expert's ``max_new_tokens``, 96 and 128 tokens), waits for
``/healthz``, then runs a bounded load with httpx's async client: ``--clients`` concurrent clients send
``--requests`` requests in all, alternating the two experts over their eval questions, three in four to
``POST /v1/experts/{name}/generate`` and one in four to ``POST /v1/chat/completions``. Reported:
requests/s, p50/p90/p99 latency, the mean completion tokens of the chat answers, and errors (any
answer other than 200, and transport errors; target 0). The load stops by itself after ``--requests``
requests or ``--deadline-s`` seconds; the server is then stopped (SIGINT, then SIGKILL after 30 s).

The server runs as shipped: torch's default thread count. ``--server-threads N`` starts it with
``OMP_NUM_THREADS=N`` instead (recorded as ``server_threads``), to see what the thread count costs.

    .venv/bin/python -m bench.serve [--clients 32] [--requests 1000] [--deadline-s 300] [--server-threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import _hf
from bench._run import make_lora_run
from bench.common import record

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        time.sleep(0.25)
    raise RuntimeError(f"the server was not ready within {timeout_s:g} s")


def build_requests(experts: dict[str, list[dict[str, Any]]], n: int) -> list[tuple[str, dict[str, Any]]]:
    """``(path, body)`` for request ``i``: experts alternate, one request in four (of each expert's) is a chat
    completion."""
    names = list(experts)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        rec = experts[name][(i // len(names)) % len(experts[name])]
        if (i // len(names)) % 4 == 3:
            msgs = _hf.messages(rec, with_answer=False)
            out.append(("/v1/chat/completions", {"model": name, "messages": msgs}))
        else:
            out.append((f"/v1/experts/{name}/generate", {"fields": rec["fields"], "question": rec["question"]}))
    return out


async def load(url: str, requests: list[tuple[str, dict[str, Any]]], clients: int, deadline_s: float,
               timeout_s: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    tokens = 0
    next_index = 0
    stop_at = time.perf_counter() + deadline_s

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index, tokens
        while next_index < len(requests) and time.perf_counter() < stop_at:
            path, body = requests[next_index]
            next_index += 1
            t0 = time.perf_counter()
            try:
                resp = await http.post(path, json=body)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[str(resp.status_code)] += 1
            if resp.status_code == 200 and path.endswith("completions"):
                tokens += int(resp.json()["usage"]["completion_tokens"])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout_s) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - t0
    sent = sum(statuses.values())
    errors = sent - statuses.get("200", 0)
    chat = sum(1 for p, _ in requests[:sent] if p.endswith("completions"))
    return {
        "requests": sent,
        "not_sent": len(requests) - sent,
        "seconds": round(seconds, 2),
        "requests_per_s": round(sent / seconds, 2),
        "latency_p50_ms": round(1000 * (percentile(latencies, 50) or 0), 1),
        "latency_p90_ms": round(1000 * (percentile(latencies, 90) or 0), 1),
        "latency_p99_ms": round(1000 * (percentile(latencies, 99) or 0), 1),
        "latency_max_ms": round(1000 * max(latencies, default=0), 1),
        "errors": errors,
        "statuses": dict(statuses),
        "chat_completion_tokens_mean": round(tokens / max(chat, 1), 1),
    }


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--deadline-s", type=float, default=300.0, help="the load stops after this many seconds")
    parser.add_argument("--server-threads", type=int, default=None,
                        help="start the server with OMP_NUM_THREADS=N (default: unset, as shipped)")
    parser.add_argument("--ready-timeout-s", type=float, default=180.0)
    args = parser.parse_args()

    from expertkit.expert import Expert
    from expertkit.models.base import resolve_base, shipped_experts_dir

    base_path = resolve_base(args.base)
    experts = {name: Expert.load(shipped_experts_dir() / name) for name in ("elastic", "sql")}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        specs = []
        for name, expert in experts.items():
            run = make_lora_run(expert, base_path, Path(tmp) / name, steps=[100], seed=len(specs))
            specs.append(f"{expert.root}:{run / 'checkpoint-100'}")
        port = free_port()
        url = f"http://{HOST}:{port}"
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below, after the server stops
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if args.server_threads:
            env["OMP_NUM_THREADS"] = str(args.server_threads)
        server_threads = env.get("OMP_NUM_THREADS", "default")
        proc = subprocess.Popen([sys.executable, "-m", "expertkit.cli", "serve", *specs, "--base", base_path,
                                 "--host", HOST, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            ready_s = wait_ready(url, proc, args.ready_timeout_s)
            records = {name: _hf.read_records(e.eval_path) for name, e in experts.items()}
            figures = asyncio.run(load(url, build_requests(records, args.requests), args.clients, args.deadline_s,
                                       timeout_s=120.0))
        except Exception:
            stop(proc)
            log.close()
            sys.stderr.write((Path(tmp) / "server.log").read_text(errors="replace")[-4000:])
            raise
        code = stop(proc)
        log.close()
    record("serve", {
        "base": args.base,
        "experts": list(experts),
        "checkpoint_kind": "lora (random, untrained)",
        "max_new_tokens": {n: e.manifest.decoding.max_new_tokens for n, e in experts.items()},
        "clients": args.clients,
        "server_threads": server_threads,
        "ready_s": round(ready_s, 1),
        **figures,
        "server_exit_code": code,
        "target_errors": 0,
        "meets_target": figures["errors"] == 0 and figures["not_sent"] == 0,
    })


if __name__ == "__main__":
    main()
