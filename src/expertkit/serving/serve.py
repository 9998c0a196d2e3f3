"""Serving: several experts over one base model, a REST endpoint per expert and an OpenAI-compatible API.

Each served expert is given as ``EXPERT_DIR:CHECKPOINT_DIR``, as an installed ``NAME[@VERSION]``, or as a
folder holding a ``checkpoint/`` folder (the layout of an installed package). Checkpoints trained on another
contract are refused unless ``allow_drift``.

Every prompt is tokenised by the expert's contract (``encode_prompt``: user text with
``split_special_tokens=True``), so text in a field or question never becomes a control token. One worker
thread owns the model: it takes queued requests, batches those for the same expert and adapter, and
generates; a full queue answers 503, a request past its time limit 504.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import errno
import hmac
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h11
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from expertkit.authoring.lint import check_messages
from expertkit.core.checkpoints import (
    Checkpoint,
    check_contract,
    is_checkpoint,
    load_checkpoint,
    verify_checksums,
)
from expertkit.core.contract import parse_system_block
from expertkit.core.errors import ContractError, ExpertkitError
from expertkit.core.fileio import read_text
from expertkit.core.findings import Finding
from expertkit.core.log import warn
from expertkit.core.options import check_count
from expertkit.engines.inference import (
    InferenceEngine,
    TokenSink,
    contract_stops,
    create_engine,
    engine_class,
    generate_for,
    voted_for,
)
from expertkit.engines.inference.constrain import resolve_mode
from expertkit.engines.inference.generation import Generation, Sampling
from expertkit.expert import Expert
from expertkit.kinds.scoring import score_output
from expertkit.models.base import choose_base

#: The model name that routes a request by its fields.
AUTO = "auto"


@dataclass
class ServeOptions:
    """Server settings; the limits apply per request."""

    #: The base model (None: the one the checkpoints were trained on; another one is refused).
    base: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_file: Path | None = None
    engine: str = "hf"
    allow_drift: bool = False
    #: Requests waiting for the worker; one more is answered 503.
    queue_size: int = 64
    #: Most requests the worker takes from the queue in one round (batched per expert).
    max_batch: int = 16
    max_body_bytes: int = 256 * 1024
    max_question_chars: int = 8000
    #: Seconds from arrival to answer, queueing included; past it, 504.
    request_timeout_s: float = 60.0
    #: Cap on every expert's ``decoding.max_new_tokens``.
    max_new_tokens: int | None = None
    #: Seconds a client has to send a whole request (head and body) once it starts one; past it the
    #: connection is closed (slow-loris clients hold no file descriptor for long).
    read_timeout_s: float = 10.0
    #: Open connections at most; one more is closed at once.
    max_connections: int = 256
    #: none | json | schema for every expert (None: each expert's manifest ``decoding.constrain``).
    constrain: str | None = None
    #: Validator-guided decoding: candidates per request (1: greedy), temperature, top-p and seed from each
    #: expert's manifest ``decoding``; the voted answer is returned, the vote in the ``expertkit`` block.
    samples: int = 1
    #: ``decoding.KEY -> value`` overrides of every served expert's manifest (``--set``).
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServedExpert:
    """An expert and the checkpoint that serves it."""

    expert: Expert
    checkpoint: Checkpoint
    source: str
    drift: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.expert.name

    @property
    def label(self) -> str:
        """``NAME@VERSION/checkpoint-N``: what answered a request."""
        return f"{self.name}@{self.expert.manifest.version}/{self.checkpoint.name}"


# ---------------------------------------------------------------------- what to serve
def resolve_expert(spec: str, *, allow_drift: bool = False) -> ServedExpert:
    """``EXPERT_DIR:CHECKPOINT_DIR``, an installed ``NAME[@VERSION]``, or a folder with ``checkpoint/``."""
    from expertkit.packaging.package import CHECKPOINT_DIR, resolve_installed

    path = Path(spec).expanduser()
    left, sep, right = spec.rpartition(":")
    if path.is_dir():
        expert_dir, checkpoint_dir = path, path / CHECKPOINT_DIR
        if not is_checkpoint(checkpoint_dir):
            raise ExpertkitError(f"no {CHECKPOINT_DIR}/ with a trained checkpoint here: give EXPERT_DIR:CHECKPOINT_DIR "
                                 "or an installed NAME[@VERSION]", path=path)
    elif sep and left and Path(left).expanduser().is_dir():
        expert_dir, checkpoint_dir = Path(left).expanduser(), Path(right).expanduser()
    elif "/" not in spec and ":" not in spec:
        installed = resolve_installed(spec)
        expert_dir, checkpoint_dir = installed.path, installed.checkpoint_path
    else:
        raise ExpertkitError("no such expert folder (give EXPERT_DIR:CHECKPOINT_DIR or an installed "
                             "NAME[@VERSION])", path=spec)
    expert = Expert.load(expert_dir)
    outside = expert.paths_outside()
    if outside and Path(checkpoint_dir) == Path(expert_dir) / CHECKPOINT_DIR:  # a package: nothing outside it
        raise ExpertkitError(f"{outside[0]!r} points outside the package", path=expert.root / "expert.yaml",
                             key=outside[0])
    checkpoint = load_checkpoint(checkpoint_dir)
    verify_checksums(checkpoint)  # once, at start: every request is answered by these weights
    drift = check_contract(checkpoint, expert, allow_drift=allow_drift)
    return ServedExpert(expert, checkpoint, spec, tuple(drift))


def serve_base(experts: Sequence[ServedExpert], given: str | None) -> str:
    """The base every served checkpoint was trained on (``given`` must be that base)."""
    return choose_base(given, [(served.label, served.checkpoint.record) for served in experts])


def build_engine(experts: Sequence[ServedExpert], options: ServeOptions) -> InferenceEngine:
    """Load the base once and register every expert's checkpoint under the expert's name."""
    engine_class(options.engine)
    base = serve_base(experts, options.base)
    return create_engine(options.engine, base, {served.name: served.checkpoint.path for served in experts})


# ---------------------------------------------------------------------- the worker
@dataclass
class _Job:
    expert: str
    prompt_ids: list[int]
    max_new_tokens: int
    fields: dict[str, str] = field(default_factory=dict)
    sink: TokenSink | None = None
    future: concurrent.futures.Future[Generation] = field(default_factory=concurrent.futures.Future)
    #: With ``--samples N``: the vote that chose the answer (set by the worker before the result).
    vote: dict[str, Any] | None = None


class _Worker:
    """The one thread that touches the model: it batches queued jobs per expert and generates."""

    def __init__(self, engine: InferenceEngine, experts: Mapping[str, tuple[Expert, str]], queue_size: int,
                 max_batch: int, samples: int = 1) -> None:
        self.engine = engine
        self.samples = samples
        self.experts = dict(experts)  # name -> (expert, constrained-decoding mode)
        self.max_batch = max_batch
        self.queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="expertkit-generate", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(ExpertkitError("the server is shutting down"))

    def submit(self, job: _Job) -> None:
        """Queue a job; raises :class:`queue.Full` when the queue is full."""
        self.queue.put_nowait(job)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                jobs = [self.queue.get(timeout=0.1)]
            except queue.Empty:
                continue
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            groups: dict[tuple[str, int], list[_Job]] = {}
            for job in jobs:
                groups.setdefault((job.expert, job.max_new_tokens), []).append(job)
            for (name, budget), group in groups.items():
                self._generate(name, budget, [j for j in group if j.future.set_running_or_notify_cancel()])

    def _generate(self, name: str, budget: int, group: list[_Job]) -> None:
        if not group:
            return
        expert, mode = self.experts[name]
        if self.samples > 1:
            self._vote(expert, mode, name, budget, group)
            return
        sinks = [j.sink for j in group]
        try:
            outputs = generate_for(self.engine, expert, name, [j.prompt_ids for j in group], [j.fields for j in group],
                                   max_new_tokens=budget, constrain=mode, batch_size=len(group),
                                   sinks=sinks if any(s is not None for s in sinks) else None)
        except Exception as exc:
            for job in group:
                job.future.set_exception(exc)
            return
        for job, output in zip(group, outputs, strict=True):
            job.future.set_result(output)

    def _vote(self, expert: Expert, mode: str, name: str, budget: int, group: list[_Job]) -> None:
        """Validator-guided decoding: the voted answer (a stream receives it whole, at the end)."""
        dec = expert.manifest.decoding
        sampling = Sampling(n=self.samples, temperature=dec.temperature, top_p=dec.top_p, seed=dec.seed)
        try:
            voted = voted_for(self.engine, expert, name, [j.prompt_ids for j in group], [j.fields for j in group],
                              sampling, max_new_tokens=budget, constrain=mode,
                              batch_size=len(group) * self.samples)
        except Exception as exc:
            for job in group:
                job.future.set_exception(exc)
            return
        for job, (output, vote) in zip(group, voted, strict=True):
            job.vote = vote.to_dict()
            job.future.set_result(output)


# ---------------------------------------------------------------------- requests and errors
class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: always encodable, even when a request echoed back held lone surrogates."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


#: Characters of an error message echoed back at most (a request's text quoted in it is cut).
MAX_ERROR_MESSAGE = 2000
#: Findings of one error answer at most (see ``ServeOptions.max_error_findings``).
MAX_ERROR_FINDINGS = 20


class ApiError(Exception):
    """An error answer: HTTP status, a code, a message and, for contract problems, the findings (capped: an
    answer is never much bigger than the request)."""

    def __init__(self, status: int, code: str, message: str, findings: Sequence[Finding] = (),
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.findings = list(findings)
        self.headers = dict(headers or {})

    def response(self) -> AsciiJSONResponse:
        kind = {401: "authentication_error", 404: "not_found_error", 413: "invalid_request_error",
                503: "overloaded_error", 504: "timeout_error"}.get(self.status, "invalid_request_error")
        if self.status >= 500 and self.status not in (503, 504):
            kind = "server_error"
        message = self.message if len(self.message) <= MAX_ERROR_MESSAGE else (
            self.message[:MAX_ERROR_MESSAGE] + f"... ({len(self.message) - MAX_ERROR_MESSAGE} more characters)")
        body: dict[str, Any] = {"message": message, "type": kind, "code": self.code, "param": None}
        if self.findings:
            body["findings"] = [f.to_dict() for f in self.findings[:MAX_ERROR_FINDINGS]]
            if len(self.findings) > MAX_ERROR_FINDINGS:
                body["findings_omitted"] = len(self.findings) - MAX_ERROR_FINDINGS
        return AsciiJSONResponse({"error": body}, status_code=self.status, headers=self.headers)


class GenerateRequest(BaseModel):
    """``POST /v1/experts/{name}/generate``."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any]
    question: str
    max_new_tokens: int | None = Field(default=None, ge=1)


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions`` (other OpenAI parameters are accepted and ignored: decoding is greedy)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    n: int = 1


def _contract_error(name: str, findings: Sequence[Finding], *, status: int, code: str) -> ApiError:
    errors = [f for f in findings if f.severity == "error"]
    summary = "; ".join(f"{f.code}: {f.message}" for f in errors[:5])
    if len(errors) > 5:
        summary += f"; and {len(errors) - 5} more"
    return ApiError(status, code, f"the request does not fit {name}'s prompt contract: {summary}", errors)


def _contract_findings(exc: ContractError) -> list[Finding]:
    return exc.findings or [Finding("contract", "error", exc.message)]


def _message_text(index: int, message: Mapping[str, Any]) -> dict[str, str]:
    role, content = message.get("role"), message.get("content")
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise ApiError(400, "unsupported_content", f"messages[{index}]: only text content is supported")
        content = "".join(t for t in texts if isinstance(t, str))
    if not isinstance(role, str) or not isinstance(content, str):
        raise ApiError(400, "invalid_message", f"messages[{index}] needs a 'role' and text 'content'")
    return {"role": role, "content": content}


def _matches(expert: Expert, fields: Mapping[str, Any]) -> bool:
    """Do the request's values of the expert's routing fields (aliases allowed) fit its contract?"""
    contract = expert.contract
    keys = [f for f in expert.routing_fields if f.values is not None]
    if not keys:
        try:
            contract.normalize(fields)
        except ContractError:
            return False
        return True
    for spec in keys:
        value = fields.get(spec.name)
        if not isinstance(value, str) or contract.canonical_value(spec, value)[0] is None:
            return False
    return True


#: An API key file is a few dozen bytes; a bigger one is not a key file.
MAX_API_KEY_BYTES = 64 * 1024


def read_api_key(path: Path) -> str:
    """The bearer key held by ``path`` (surrounding whitespace dropped); an empty file is an error."""
    key = read_text(path, max_bytes=MAX_API_KEY_BYTES, key="--api-key-file").strip()
    if not key:
        raise ExpertkitError("the API key file is empty", path=path, key="--api-key-file")
    if not key.isascii() or not key.isprintable():
        raise ExpertkitError("the API key holds non-ASCII or control characters: HTTP headers are Latin-1, so no "
                             "client could send it (use printable ASCII)", path=path, key="--api-key-file")
    return key


class _Service:
    """The experts, the request-side tokenizer and the worker, shared by the endpoints."""

    def __init__(self, experts: Sequence[ServedExpert], engine: InferenceEngine, options: ServeOptions) -> None:
        self.options = options
        self.experts: dict[str, ServedExpert] = {}
        for served in experts:
            if served.name == AUTO:
                raise ExpertkitError(f"an expert may not be named {AUTO!r}: the name routes by fields",
                                     path=served.expert.root)
            if served.name in self.experts:
                raise ExpertkitError(f"expert {served.name!r} is given twice ({self.experts[served.name].source} "
                                     f"and {served.source})")
            self.experts[served.name] = served
        if not self.experts:
            raise ExpertkitError("no experts to serve")
        # the worker thread decodes with the engine's tokenizer; requests encode with their own copy
        self.tokenizer = copy.deepcopy(engine.tokenizer)
        modes = {name: (served.expert, resolve_mode(served.expert, options.constrain))
                 for name, served in self.experts.items()}
        check_count(options.samples, "--samples")
        self.worker = _Worker(engine, modes, options.queue_size, options.max_batch, options.samples)
        for served in self.experts.values():  # read once, now: never by a request, on the event loop
            served.expert.training_field_values()
        self.created = int(time.time())
        #: Jobs dropped because their client disconnected while they waited.
        self.dropped = 0
        # checks run in worker threads: the tokenizer and the validators are used by one at a time
        self._tokenizing = threading.Lock()
        self._judging = threading.Lock()
        self.api_key = read_api_key(options.api_key_file) if options.api_key_file is not None else None

    # ------------------------------------------------------------------ lookup
    def lookup(self, name: str, fields: Mapping[str, Any]) -> ServedExpert:
        if name == AUTO:
            return self.route(fields)
        served = self.experts.get(name)
        if served is None:
            raise ApiError(404, "model_not_found", f"no expert {name!r} is served (served: "
                           f"{', '.join(self.experts)}; or {AUTO!r} to route by fields)")
        return served

    def route(self, fields: Mapping[str, Any]) -> ServedExpert:
        found = [s for s in self.experts.values() if _matches(s.expert, fields)]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(s.name for s in found)
            raise ApiError(400, "ambiguous_model", f"the fields fit several experts ({names}); name one as the model")
        routing = {s.name: [f for f in s.expert.routing_fields if f.values] for s in self.experts.values()}
        names = list(dict.fromkeys(f.name for specs in routing.values() for f in specs))
        given = ", ".join(f"{k}={fields.get(k)!r}" for k in names)
        served = "; ".join(
            f"{name} (" + ", ".join(f"{f.name}: {'/'.join(f.values or [])}" for f in specs) + ")"
            for name, specs in routing.items()
        )
        raise ApiError(400, "no_matching_expert", f"no served expert's contract fits {given}; served: {served}")

    # ------------------------------------------------------------------ answering
    def check_question(self, question: str) -> None:
        if len(question) > self.options.max_question_chars:
            raise ApiError(413, "question_too_long", f"the question is {len(question)} characters, over the "
                           f"limit of {self.options.max_question_chars}")

    def prompt(self, served: ServedExpert, fields: Mapping[str, Any], question: str, *, status: int,
               code: str) -> tuple[dict[str, str], list[int]]:
        """Canonical fields and the prompt's token ids, or the contract's findings as an error answer."""
        contract = served.expert.contract
        try:
            canonical = contract.normalize(fields)
            with self._tokenizing:
                prompt_ids = contract.encode_prompt(self.tokenizer, canonical, question)
        except ContractError as exc:
            raise _contract_error(served.name, _contract_findings(exc), status=status, code=code) from None
        limit = self.tokenizer.model_max_length
        if len(prompt_ids) > limit:
            raise ApiError(413, "prompt_too_long", f"the prompt is {len(prompt_ids)} tokens, over the model's {limit}")
        return canonical, prompt_ids

    def budget(self, served: ServedExpert, requested: int | None) -> int:
        limits = [served.expert.manifest.decoding.max_new_tokens, self.options.max_new_tokens, requested]
        return min(x for x in limits if x is not None)

    def submit(self, served: ServedExpert, prompt_ids: list[int], budget: int, fields: Mapping[str, str],
               sink: TokenSink | None = None) -> _Job:
        job = _Job(served.name, prompt_ids, budget, dict(fields), sink)
        try:
            self.worker.submit(job)
        except queue.Full:
            raise ApiError(503, "queue_full", f"{self.options.queue_size} requests are waiting; try again shortly",
                           headers={"Retry-After": "1"}) from None
        return job

    def remaining(self, started: float) -> float:
        return max(self.options.request_timeout_s - (time.perf_counter() - started), 0.001)

    async def run(self, served: ServedExpert, prompt_ids: list[int], budget: int, started: float,
                  fields: Mapping[str, str], request: Request | None = None
                  ) -> tuple[Generation, dict[str, Any] | None]:
        """Queue the job and wait for it (its output, and its vote with ``--samples``); a client that disconnects
        meanwhile has its job dropped (a job still queued is never generated)."""
        job = self.submit(served, prompt_ids, budget, fields)
        remaining = self.remaining(started)
        answer = asyncio.ensure_future(asyncio.wrap_future(job.future))
        waiting: set[asyncio.Future[Any]] = {answer}
        gone = asyncio.ensure_future(_disconnect(request)) if request is not None else None
        if gone is not None:
            waiting.add(gone)
        try:
            done, _ = await asyncio.wait(waiting, timeout=max(remaining, 0.001), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if gone is not None:
                gone.cancel()
        if answer not in done:
            answer.cancel()  # cancels the queued job too: the worker skips it
            if gone is not None and gone in done:
                self.dropped += 1
                raise ApiError(499, "client_closed", "the client closed the connection")
            raise ApiError(504, "timeout", f"no answer within {self.options.request_timeout_s:g} s")
        try:
            return answer.result(), job.vote
        except ExpertkitError as exc:
            raise ApiError(503, "unavailable", exc.message) from None
        except Exception as exc:
            raise ApiError(500, "generation_failed", f"{type(exc).__name__}: {exc}") from None

    def stream(self, request: Request, served: ServedExpert, fields: Mapping[str, str], question: str,
               prompt_ids: list[int], budget: int, started: float, findings: Sequence[Finding]) -> StreamingResponse:
        """Server-Sent Events in OpenAI's chunk format: the role, text deltas as tokens come, then a chunk
        with the finish reason, the usage and expertkit's verdict, then ``data: [DONE]``.

        The request is queued before the response starts (a full queue is still a 503); past the time
        limit the stream ends with an error event; a client that goes away cancels its row.
        """
        sink = _StreamSink(asyncio.get_running_loop())
        job = self.submit(served, prompt_ids, budget, fields, sink)
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        stops = contract_stops(served.expert.contract, self.tokenizer)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": served.name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
            return f"data: {json.dumps(body, ensure_ascii=True, separators=(',', ':'))}\n\n"

        async def events() -> AsyncIterator[str]:
            decoder = _DeltaDecoder(self.tokenizer, stops.strings)
            try:
                yield chunk({"role": "assistant", "content": ""})
                future = asyncio.wrap_future(job.future)
                while True:
                    getter = asyncio.ensure_future(sink.queue.get())
                    done, _ = await asyncio.wait({getter, future}, timeout=self.remaining(started),
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        text = decoder.push(getter.result())
                        if text:
                            yield chunk({"content": text})
                        continue
                    getter.cancel()
                    if not done:
                        raise TimeoutError
                    break
                while not sink.queue.empty():
                    decoder.push(sink.queue.get_nowait())
                output = future.result()
                rest = decoder.finish(output.text)
                if rest:
                    yield chunk({"content": rest})
                judged = await run_in_threadpool(self.judge, served, output, fields, question, job.vote)
                usage = {"prompt_tokens": len(prompt_ids), "completion_tokens": output.new_tokens,
                         "total_tokens": len(prompt_ids) + output.new_tokens}
                yield chunk({}, "stop" if output.finished else "length", usage=usage,
                            expertkit={**judged, "warnings": [f.to_dict() for f in findings],
                                       "latency_ms": _latency_ms(started)})
            except TimeoutError:
                error = {"message": f"no answer within {self.options.request_timeout_s:g} s", "type": "timeout_error",
                         "code": "timeout", "param": None}
                yield f"data: {json.dumps({'error': error})}\n\n"
            except Exception as exc:
                error = {"message": f"{type(exc).__name__}: {exc}", "type": "server_error",
                         "code": "generation_failed", "param": None}
                yield f"data: {json.dumps({'error': error}, ensure_ascii=True)}\n\n"
            finally:  # also when the client went away: its row stops at the next token, a queued job is dropped
                sink.cancel()
                job.future.cancel()
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def judge(self, served: ServedExpert, output: Generation, fields: Mapping[str, str],
              question: str, vote: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._judging:  # judged in worker threads: the validators are used by one at a time
            score = score_output(served.expert, output.text, fields, None, question)
        judged = {"answer": score.answer, "valid": score.valid, "errors": score.errors, "verdict": score.verdict,
                  "reasoning_removed": score.has_reasoning, "checkpoint": served.label}
        return {**judged, "vote": vote} if vote is not None else judged


class _StreamSink:
    """One streamed row: the worker pushes token ids (from its thread), the response reads them (on the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[list[int]] = asyncio.Queue()
        self._cancelled = threading.Event()

    def push(self, token_ids: Sequence[int]) -> None:
        if not self._cancelled.is_set():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, list(token_ids))

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()


class _DeltaDecoder:
    """Token ids in, text deltas out: text that might still turn into a stop string is held back."""

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = [s for s in stop_strings if s]
        self.ids: list[int] = []
        self.sent = ""
        self.stopped = False

    def _visible(self) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=False).lstrip()
        for stop in self.stop_strings:
            cut = text.find(stop)
            if cut != -1:
                text, self.stopped = text[:cut], True
        if not self.stopped:
            hold = max((n for s in self.stop_strings for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
            text = text[: len(text) - hold]
            text = text.rstrip("\ufffd")  # a character whose bytes are not all here yet
        return text

    def push(self, token_ids: Sequence[int]) -> str:
        if self.stopped:
            return ""
        self.ids.extend(token_ids)
        text = self._visible()
        if not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent):], text
        return delta

    def finish(self, final: str) -> str:
        """What is left to send so that the stream adds up to ``final`` (the output, as the worker decoded it)."""
        if final.startswith(self.sent):
            delta, self.sent = final[len(self.sent):], final
            return delta
        return ""


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def check_json_body(body: bytes) -> None:
    """Raise :class:`ApiError` 422 for a body that is not one clean JSON document: not UTF-8, broken,
    nested too deeply, or an object with a key given twice (which value would count is up to the parser)."""
    try:
        json.loads(body.decode("utf-8"), object_pairs_hook=_unique_pairs)
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_request", f"malformed request: the body is not UTF-8 (byte {exc.start})") from None
    except _DuplicateKey as exc:
        raise ApiError(422, "invalid_request", f"malformed request: key {str(exc)[:100]!r} is given twice") from None
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_request", f"malformed request: broken JSON: {exc.msg} (line {exc.lineno}, "
                       f"column {exc.colno})") from None
    except RecursionError:
        raise ApiError(422, "invalid_request", "malformed request: JSON nested too deeply") from None


class _BodyGuard:
    """ASGI middleware: a request body over ``max_bytes`` (declared or streamed) is answered 413; a POST body
    that is not one clean JSON document (see :func:`check_json_body`) 422. The body is read here, whole
    (it is small), and handed on unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        too_large = ApiError(413, "body_too_large", f"the request body is over {self.max_bytes} bytes")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_large.response()(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await too_large.response()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                check_json_body(body)
            except ApiError as exc:
                await exc.response()(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


async def _disconnect(request: Request) -> None:
    """Return once the client has disconnected (the request's body is read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _latency_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


# ---------------------------------------------------------------------- the app
def create_app(experts: Sequence[ServedExpert], engine: InferenceEngine, options: ServeOptions) -> FastAPI:
    """The FastAPI app over loaded experts and an engine holding their checkpoints."""
    service = _Service(experts, engine, options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.worker.start()
        try:
            yield
        finally:
            service.worker.stop()

    app = FastAPI(title="expertkit", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=AsciiJSONResponse)
    app.state.service = service
    app.add_middleware(_BodyGuard, max_bytes=options.max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))[:100]}: {e.get('msg')}" for e in errors[:10])
        if len(errors) > 10:
            problems += f"; and {len(errors) - 10} more"
        return ApiError(422, "invalid_request", f"malformed request: {problems}").response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return ApiError(500, "internal_error", f"the server failed on this request ({type(exc).__name__})").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        message = f"the request body is over {options.max_body_bytes} bytes" if exc.status_code == 413 else exc.detail
        return ApiError(exc.status_code, code, str(message)).response()

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if service.api_key is not None and request.url.path != "/healthz":
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), service.api_key.encode()):
                return ApiError(401, "invalid_api_key", "missing or wrong API key (Authorization: Bearer KEY)",
                                headers={"WWW-Authenticate": "Bearer"}).response()
        return await call_next(request)

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "experts": list(service.experts), "queued": service.worker.queue.qsize()}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": service.created, "owned_by": "expertkit",
             "version": s.expert.manifest.version, "fingerprint": s.expert.fingerprint, "checkpoint": s.label}
            for name, s in service.experts.items()
        ]}

    @app.post("/v1/experts/{name}/generate")
    async def generate(name: str, body: GenerateRequest, request: Request) -> dict[str, Any]:
        started = time.perf_counter()

        def check() -> tuple[ServedExpert, dict[str, str], list[int]]:
            service.check_question(body.question)
            served = service.lookup(name, body.fields)
            fields, prompt_ids = service.prompt(served, body.fields, body.question, status=422,
                                                code="contract_rejected")
            return served, fields, prompt_ids

        served, fields, prompt_ids = await run_in_threadpool(check)  # validation never blocks the event loop
        output, vote = await service.run(served, prompt_ids, service.budget(served, body.max_new_tokens), started,
                                         fields, request)
        judged = await run_in_threadpool(service.judge, served, output, fields, body.question, vote)
        return {"expert": served.name, **judged, "latency_ms": _latency_ms(started)}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        started = time.perf_counter()
        served, findings, fields, question, prompt_ids = await run_in_threadpool(check_chat, body)
        requested = body.max_completion_tokens or body.max_tokens
        if body.stream:
            return service.stream(request, served, fields, question, prompt_ids, service.budget(served, requested),
                                  started, findings)
        output, vote = await service.run(served, prompt_ids, service.budget(served, requested), started, fields,
                                         request)
        judged = await run_in_threadpool(service.judge, served, output, fields, question, vote)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": served.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": judged.pop("answer")},
                         "finish_reason": "stop" if output.finished else "length", "logprobs": None}],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": output.new_tokens,
                      "total_tokens": len(prompt_ids) + output.new_tokens},
            "expertkit": {**judged, "warnings": [f.to_dict() for f in findings],
                          "latency_ms": _latency_ms(started)},
        }

    def check_chat(body: ChatRequest) -> tuple[ServedExpert, list[Finding], dict[str, str], str, list[int]]:
        """The chat request checked against the contract (in a worker thread: it can take a while)."""
        if body.n != 1:
            raise ApiError(400, "unsupported", "n must be 1 (one answer per request; the server's --samples "
                           "sets the candidates it votes among)")
        messages = [_message_text(i, m) for i, m in enumerate(body.messages)]
        roles = [m["role"] for m in messages]
        if len(messages) > 2 or any(r not in ("system", "user") for r in roles) or roles == ["user", "system"]:
            raise ApiError(400, "invalid_messages", f"an expert answers one question: send one system message "
                           f"(the field block) and one user message, not {roles}")
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        question = next((m["content"] for m in messages if m["role"] == "user"), "")
        service.check_question(question)
        pairs, _ = parse_system_block(system)
        served = service.lookup(body.model, dict(pairs))
        findings = check_messages(served.expert, messages)
        if any(f.severity == "error" for f in findings):
            raise _contract_error(served.name, findings, status=400, code="contract_drift")
        fields, prompt_ids = service.prompt(served, dict(pairs), question, status=400, code="contract_drift")
        return served, findings, fields, question, prompt_ids

    return app


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with what production servers add: a client must send a whole request
    (head and body) within ``read_timeout_s`` of starting it, and at most ``max_connections`` are open."""

    read_timeout_s: float = 10.0
    max_connections: int = 256
    _read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("refused a connection: %d are open (the cap)", len(self.connections) - 1)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._arm()  # a request is being read (no-op while the timer runs)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # the whole request is in (or the connection is over)
        elif self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            self._disarm()  # between requests: uvicorn's keep-alive timeout applies

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._read_timer is None and not self.transport.is_closing():
            self._read_timer = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.logger.warning("closed a connection that sent no whole request within %g s", self.read_timeout_s)
            self.transport.close()


def server_config(app: ASGIApp, options: ServeOptions, *, log_level: str = "info") -> Any:
    """uvicorn's settings for ``app``: the guarded protocol, with the options' read timeout and connection cap."""
    import uvicorn

    protocol = type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "read_timeout_s": options.read_timeout_s, "max_connections": options.max_connections})
    return uvicorn.Config(app, host=options.host, port=options.port, log_level=log_level, http=protocol,
                          timeout_keep_alive=5)


def check_address(host: str, port: int) -> None:
    """Refuse, before anything is loaded, an address that cannot be listened on (bad host, busy port)."""
    if not 0 <= port <= 65535:
        raise ExpertkitError(f"port {port} is not in 0-65535", key="--port")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ExpertkitError(f"cannot listen on host {host!r}: {getattr(exc, 'strerror', None) or exc}",
                             key="--host") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            busy = exc.errno == errno.EADDRINUSE
            raise ExpertkitError(f"cannot listen on {host}:{port}: {exc.strerror}"
                                 + (" (another server holds the port)" if busy else ""),
                                 key="--port" if busy else "--host") from None


def run_server(specs: Sequence[str], options: ServeOptions) -> None:
    """Load the experts and the base, then serve until interrupted."""
    import uvicorn

    if not specs:
        raise ExpertkitError("name at least one expert to serve")
    check_count(options.samples, "--samples")
    check_address(options.host, options.port)
    if options.api_key_file is not None:
        read_api_key(options.api_key_file)  # before the base is loaded: a bad key file fails fast
    experts = [resolve_expert(spec, allow_drift=options.allow_drift) for spec in specs]
    if options.settings:
        experts = [replace(served, expert=served.expert.with_settings(options.settings, ("decoding",)))
                   for served in experts]
    for served in experts:
        if served.drift:
            warn(f"expertkit: warning: {served.name} serves a checkpoint of another contract: "
                 f"{'; '.join(served.drift)}")
    if options.api_key_file is None and options.host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"expertkit: warning: serving on {options.host} without --api-key-file")
    for served in experts:  # a bad --constrain fails before the base is loaded
        resolve_mode(served.expert, options.constrain)
    app = create_app(experts, build_engine(experts, options), options)
    uvicorn.Server(server_config(app, options)).run()
