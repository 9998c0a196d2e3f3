"""The run folder as one object: its layout, its records, its checkpoints.

A run folder (:class:`Run`) holds::

    run.json             the run record (:class:`RunRecord`): expert, base, method, contract fingerprint,
                         the plan it trains with (``options``), the data's hash, history, evaluations
    loss.jsonl           one line per optimizer step
    eval.jsonl           one line per checkpoint scored while training
    checkpoint-N/        a complete checkpoint (:class:`Checkpoint`)
    tmp-checkpoint-N/    a checkpoint being written (or removed): never listed
    compare/             ``expertkit compare``'s reports (``compare.json``, ``compare.md``, ``report.html``)

A checkpoint is *complete* once its record ``expertkit.json`` (:class:`CheckpointRecord`) exists — it is
written last, and the folder itself is written under a temporary name and renamed when whole — so a save
killed halfway is never listed, compared, resumed from or packaged.

Each checkpoint holds the PEFT adapter files (``adapter_config.json``, ``adapter_model.safetensors``)
or, for full fine-tuning, the model files; the exported chat template (``chat_template.jinja``); a copy
of the manifest (``expert.yaml``); the scores recorded while training (``eval.json``); and the record
(step, contract fingerprint and canonical contract, base, method, ...).

Records are read and written by their classes only (``RunRecord.read``/``write``,
``CheckpointRecord.read``/``write``): writes are atomic, keys a record does not declare are kept as they
are (records of older and newer versions load and round-trip), and a malformed record is one error naming
the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from expertkit.core.contract import diff_contracts
from expertkit.core.errors import DriftError, ExpertkitError
from expertkit.core.fileio import (
    atomic_write_json,
    atomic_write_jsonl,
    read_json,
    read_json_or_none,
    read_log_rows,
)

if TYPE_CHECKING:
    from expertkit.expert import Expert

# ---------------------------------------------------------------------- the layout
RUN_RECORD_NAME = "run.json"
LOSS_LOG_NAME = "loss.jsonl"
EVAL_LOG_NAME = "eval.jsonl"
CHECKPOINT_PREFIX = "checkpoint-"
TMP_PREFIX = "tmp-"
COMPARE_DIR_NAME = "compare"
COMPARE_REPORT_NAME = "compare.json"
RECORD_NAME = "expertkit.json"
SCORES_NAME = "eval.json"
CHAT_TEMPLATE_NAME = "chat_template.jinja"
ADAPTER_CONFIG_NAME = "adapter_config.json"
MODEL_CONFIG_NAME = "config.json"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")
_ANY_CHECKPOINT_RE = re.compile(rf"^(?:{TMP_PREFIX})?{CHECKPOINT_PREFIX}(\d+)$")


# ---------------------------------------------------------------------- records
class _Record(BaseModel):
    """A JSON record: declared keys typed, others kept as they are; only the keys given are written."""

    model_config = ConfigDict(extra="allow")

    #: Keys left out of the file while they are ``None`` (instead of written as ``null``).
    _omit_when_none: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The record as written: the keys read or set, in declaration order, then the undeclared ones."""
        data = self.model_dump(mode="json", exclude_unset=True)
        return {k: v for k, v in data.items() if not (v is None and k in self._omit_when_none)}

    @classmethod
    def parse(cls, value: Any, path: Path, what: str) -> Self:
        """Validate a decoded record; the first problem is one error naming the file and the field."""
        if not isinstance(value, dict):
            raise ExpertkitError(f"{what} is not a JSON object", path=path)
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or None
            raise ExpertkitError(cls._message(key, str(err["msg"]), what), path=path, key=key) from None

    @classmethod
    def _message(cls, key: str | None, problem: str, what: str) -> str:
        return f"malformed {what}: {problem}"

    def _write(self, path: Path) -> None:
        atomic_write_json(path, self.to_json())


#: Whether two references name the same base model: ``(recorded, recorded_path, given) -> bool``.
SameBase = Callable[[str, str | None, str], bool]


class BaseRecord(Protocol):
    """What :func:`choose_base` reads of a record: the base's name and, where known, its folder."""

    @property
    def base(self) -> str | None: ...

    @property
    def base_path(self) -> str | None: ...


class StopRecord(BaseModel):
    """Why a run scored while training stopped early."""

    step: int
    reason: str


class DataRecord(_Record):
    """The training data a run trains on."""

    train: str | None = None
    records: int | None = None
    skipped: dict[str, int] = Field(default_factory=dict)
    sha256: str | None = None


class RunAction(_Record):
    """One session of a run: ``train``, ``resume`` or ``continue``, its steps and when it started."""

    action: str
    from_step: int
    to_step: int
    started: str | None = None


class RunRecord(_Record):
    """``run.json``. ``options`` is the plan the run trains with (``training.train.TrainPlan`` as a dict: the
    training module owns its keys); ``evaluations``, ``best`` and ``stopped`` exist once checkpoints are
    scored while training."""

    _omit_when_none: ClassVar[frozenset[str]] = frozenset({"stopped"})

    expert: str | None = None
    expert_root: str | None = None
    base: str | None = None
    method: str | None = None
    fingerprint: str | None = None
    contract: dict[str, Any] | None = None
    world_size: int | None = None
    global_batch: int | None = None
    global_batch_unit: str | None = None
    padding_free: bool | None = None
    max_tokens_per_batch: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    data: DataRecord | None = None
    created: str | None = None
    history: list[RunAction] = Field(default_factory=list)
    evaluations: list[dict[str, Any]] = Field(default_factory=list)
    best: dict[str, Any] | None = None
    stopped: StopRecord | None = None

    @property
    def base_path(self) -> str | None:
        """The base's folder the run resolved (``options.base_path``)."""
        path = self.options.get("base_path")
        return path if isinstance(path, str) and path else None

    @property
    def planned_steps(self) -> int:
        """The steps the run is planned for (``options.steps``; 0 when unknown)."""
        steps = self.options.get("steps")
        return steps if isinstance(steps, int) and not isinstance(steps, bool) else 0

    @classmethod
    def read(cls, run_dir: str | Path) -> RunRecord | None:
        """The run's record, or ``None`` when the folder has none."""
        path = Path(run_dir) / RUN_RECORD_NAME
        if not path.is_file():
            return None
        return cls.parse(read_json(path, what="run record"), path, "run record")

    def write(self, run_dir: str | Path) -> None:
        """Write ``run.json`` atomically."""
        self._write(Path(run_dir) / RUN_RECORD_NAME)


class CheckpointRecord(_Record):
    """``checkpoint-N/expertkit.json``: written last, it marks the checkpoint whole."""

    expert: str | None = None
    expert_version: str | None = None
    fingerprint: str = ""
    contract: dict[str, Any] | None = None
    method: str | None = None
    base: str | None = None
    base_path: str | None = None
    world_size: int | None = None
    global_batch: int | None = None
    global_batch_unit: str | None = None
    padding_free: bool | None = None
    max_tokens_per_batch: int | None = None
    step: StrictInt
    loss: float | None = None
    learning_rate: float | None = None
    epoch: float | None = None
    saved: str | None = None
    #: sha256 of each weights file, by file name (older records have none).
    weights_sha256: dict[str, str] | None = None
    #: The scores of the checkpoint when it was scored while training (a row of ``eval.jsonl``).
    eval: dict[str, Any] | None = None

    @classmethod
    def _message(cls, key: str | None, problem: str, what: str) -> str:
        if key == "step":
            return "checkpoint record has no integer 'step'"
        return super()._message(key, problem, what)

    @classmethod
    def read(cls, folder: str | Path) -> CheckpointRecord:
        """The record of a checkpoint folder (an error when it has none: the save was interrupted)."""
        path = Path(folder) / RECORD_NAME
        if not path.is_file():
            raise ExpertkitError(f"incomplete checkpoint (no {RECORD_NAME}): a save was interrupted", path=folder)
        return cls.parse(read_json(path, what="checkpoint record"), path, "checkpoint record")

    def write(self, folder: str | Path) -> None:
        """Write the record into ``folder`` atomically (last: it marks the folder whole)."""
        self._write(Path(folder) / RECORD_NAME)


# ---------------------------------------------------------------------- checkpoints
def checkpoint_kind(path: Path) -> str:
    """``adapter`` (PEFT folder) or ``full`` (a whole model folder)."""
    if (path / ADAPTER_CONFIG_NAME).is_file():
        return "adapter"
    if (path / MODEL_CONFIG_NAME).is_file():
        return "full"
    raise ExpertkitError("neither a PEFT adapter nor a model folder", path=path)


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint folder and its record."""

    step: int
    path: Path
    record: CheckpointRecord

    @property
    def name(self) -> str:
        return f"{CHECKPOINT_PREFIX}{self.step}"

    @property
    def fingerprint(self) -> str:
        return self.record.fingerprint

    @property
    def kind(self) -> str:
        """``adapter`` or ``full`` (:func:`checkpoint_kind`)."""
        return checkpoint_kind(self.path)

    @property
    def scores_path(self) -> Path:
        """The scores recorded while training (``eval.json``; see ``evaluation.checkpoint_scores``)."""
        return self.path / SCORES_NAME

    def read_scores(self) -> dict[str, Any] | None:
        """The scores recorded while training as decoded JSON (their format is ``evaluation.checkpoint_scores``'s);
        ``None`` when there are none or they cannot be read (``compare`` then generates instead)."""
        value = read_json_or_none(self.scores_path)
        return value if isinstance(value, dict) else None

    def write_scores(self, value: dict[str, Any]) -> None:
        """Write the scores recorded while training (atomically)."""
        atomic_write_json(self.scores_path, value)

    @property
    def run(self) -> Run:
        """The run folder the checkpoint lies in."""
        return Run(self.path.parent)

    def update_record(self, **changes: Any) -> Checkpoint:
        """Write the record with ``changes`` (validated, atomically); the checkpoint as it is now."""
        record = CheckpointRecord.parse({**self.record.to_json(), **changes}, self.path / RECORD_NAME,
                                        "checkpoint record")
        record.write(self.path)
        return Checkpoint(step=record.step, path=self.path, record=record)


#: Most bytes a safetensors header may take (the format's own limit is 100 MB).
MAX_SAFETENSORS_HEADER = 100_000_000


def verify_safetensors(path: Path) -> None:
    """A loadable safetensors file: its header parses and its tensors end exactly where the file does (a
    truncated or padded copy is refused, naming the file); reads the header only."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 2 or length > min(size - 8, MAX_SAFETENSORS_HEADER):
                raise ExpertkitError(f"not a whole safetensors file ({size} bytes, header length {length}): "
                                     "truncated or damaged", path=path)
            header = json.loads(fh.read(length))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ExpertkitError("not a whole safetensors file (its header is not JSON): damaged", path=path) from None
    except OSError as exc:
        raise ExpertkitError(f"cannot read this weights file: {exc.strerror}", path=path) from None
    if not isinstance(header, dict):
        raise ExpertkitError("not a whole safetensors file (no header object): damaged", path=path)
    ends = [t.get("data_offsets", [0, 0])[1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    if not all(isinstance(e, int) for e in ends):
        raise ExpertkitError("not a whole safetensors file (bad tensor offsets): damaged", path=path)
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        raise ExpertkitError(f"truncated or damaged weights: {size} bytes, the header describes {expected}",
                             path=path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_digests(folder: Path) -> dict[str, str]:
    """sha256 of each weights file (``*.safetensors``) of a checkpoint folder, for its record."""
    return {p.name: sha256_file(p) for p in sorted(folder.glob("*.safetensors"))}


def verify_checksums(checkpoint: Checkpoint, digests: dict[str, str] | None = None) -> None:
    """Check the weights against the sha256 the record holds (where it holds one: older records do not);
    ``digests`` (name -> sha256) are already computed ones. Reads every weights file: done where a checkpoint
    is served or packaged, not on every listing."""
    recorded = checkpoint.record.weights_sha256
    if recorded is None:
        return
    for name, expected in sorted(recorded.items()):
        path = checkpoint.path / name
        if not path.is_file():
            raise ExpertkitError("a weights file of the record is missing", path=path)
        actual = (digests or {}).get(name) or sha256_file(path)
        if actual != expected:
            raise ExpertkitError("damaged weights: the file does not match the sha256 its checkpoint recorded",
                                 path=path)


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a complete checkpoint folder (it holds its record); reads nothing."""
    return (Path(path) / RECORD_NAME).is_file()


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a complete checkpoint folder; an incomplete or foreign folder, or damaged weights, is an error."""
    p = Path(path)
    if not p.is_dir():
        raise ExpertkitError("no such checkpoint folder", path=p)
    record = CheckpointRecord.read(p)
    for weights in sorted(p.glob("*.safetensors")):
        verify_safetensors(weights)
    return Checkpoint(step=record.step, path=p, record=record)


# ---------------------------------------------------------------------- the run
@dataclass(frozen=True)
class RunProgress:
    """How far a run got: its latest complete checkpoint, the steps planned, an early stop."""

    latest: Checkpoint | None
    planned: int
    stopped: StopRecord | None = None

    @property
    def done(self) -> int:
        """The step of the latest complete checkpoint (0 without one)."""
        return self.latest.step if self.latest is not None else 0

    @property
    def finished(self) -> bool:
        """Trained to its planned steps, or stopped early: ``--resume`` has nothing to do (``--continue-to`` has)."""
        return self.done >= self.planned or self.stopped is not None

    @property
    def stopped_early(self) -> bool:
        return self.stopped is not None and self.done < self.planned


class Run:
    """A run folder: its layout, its records and its checkpoints (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -------------------------------------------------------------- the layout
    @property
    def record_path(self) -> Path:
        return self.path / RUN_RECORD_NAME

    @property
    def loss_log_path(self) -> Path:
        return self.path / LOSS_LOG_NAME

    @property
    def eval_log_path(self) -> Path:
        return self.path / EVAL_LOG_NAME

    @property
    def compare_dir(self) -> Path:
        """Where ``compare`` writes its reports by default."""
        return self.path / COMPARE_DIR_NAME

    @property
    def compare_report_path(self) -> Path:
        return self.compare_dir / COMPARE_REPORT_NAME

    def checkpoint_path(self, step: int) -> Path:
        return self.path / f"{CHECKPOINT_PREFIX}{step}"

    def tmp_checkpoint_path(self, step: int) -> Path:
        """Where checkpoint ``step`` is written before it is whole (and renamed to before it is removed)."""
        return self.path / f"{TMP_PREFIX}{CHECKPOINT_PREFIX}{step}"

    def holds_run(self) -> bool:
        """Whether the folder holds a run already: a record, a loss log or checkpoint folders (whole or not)."""
        if self.record_path.exists() or self.loss_log_path.exists():
            return True
        prefixes = (CHECKPOINT_PREFIX, TMP_PREFIX + CHECKPOINT_PREFIX)
        return self.path.is_dir() and any(c.name.startswith(prefixes) for c in self.path.iterdir())

    # -------------------------------------------------------------- the record
    @property
    def record(self) -> RunRecord | None:
        """``run.json`` as it is on disk now (``None`` when there is none)."""
        return RunRecord.read(self.path) if self.path.is_dir() else None

    def write_record(self, record: RunRecord) -> None:
        record.write(self.path)

    # -------------------------------------------------------------- checkpoints
    def _require(self) -> None:
        if not self.path.is_dir():
            raise ExpertkitError("no such run folder", path=self.path)

    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, by ascending step (temporary and half-written ones skipped)."""
        self._require()
        found = [load_checkpoint(child) for child in self.path.iterdir()
                 if child.is_dir() and _CHECKPOINT_RE.match(child.name) and is_checkpoint(child)]
        return sorted(found, key=lambda c: c.step)

    @property
    def latest(self) -> Checkpoint | None:
        """The complete checkpoint of the highest step, the one a resumed run starts from."""
        found = self.checkpoints()
        return found[-1] if found else None

    def incomplete(self, complete: Iterable[Checkpoint] | None = None) -> list[str]:
        """Names of checkpoint folders that are not whole (``checkpoint-N`` without its record,
        ``tmp-checkpoint-N`` being written or removed), by step."""
        self._require()
        done = {c.path.name for c in (self.checkpoints() if complete is None else complete)}
        names = [c.name for c in self.path.iterdir() if c.is_dir() and _ANY_CHECKPOINT_RE.match(c.name)
                 and c.name not in done]
        return sorted(names, key=lambda n: int(_ANY_CHECKPOINT_RE.match(n).group(1)))  # type: ignore[union-attr]

    def select(self, steps: str | None) -> tuple[list[Checkpoint], list[str]]:
        """Complete checkpoints (all, or the steps named like ``100,150`` or ``checkpoint-100``) and the names
        of the incomplete folders; a step without a complete checkpoint is an error (``--checkpoints``)."""
        complete = self.checkpoints()
        incomplete = self.incomplete(complete)
        if steps is None:
            return complete, incomplete
        by_step = {c.step: c for c in complete}
        chosen: list[Checkpoint] = []
        for item in (s.strip() for s in steps.split(",") if s.strip()):
            digits = item.removeprefix(CHECKPOINT_PREFIX)
            if not digits.isdigit():
                raise ExpertkitError(f"expected steps like 100,150, got {item!r}", key="--checkpoints")
            step = int(digits)
            if step not in by_step:
                if self.checkpoint_path(step).name in incomplete:
                    raise ExpertkitError(f"{CHECKPOINT_PREFIX}{step} is incomplete (no {RECORD_NAME}): its save "
                                         "was interrupted", path=self.checkpoint_path(step), key="--checkpoints")
                have = ", ".join(str(s) for s in by_step) or "none"
                raise ExpertkitError(f"no complete {CHECKPOINT_PREFIX}{step} (steps: {have})", path=self.path,
                                     key="--checkpoints")
            if by_step[step] not in chosen:
                chosen.append(by_step[step])
        if not chosen:
            raise ExpertkitError("no steps given", key="--checkpoints")
        return sorted(chosen, key=lambda c: c.step), incomplete

    def remove_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Remove a checkpoint: renamed to its temporary name first, so that a removal cut short is never
        listed as a checkpoint."""
        doomed = checkpoint.path.with_name(TMP_PREFIX + checkpoint.path.name)
        os.replace(checkpoint.path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def remove_tmp_checkpoints(self) -> None:
        """Remove the half-written (or half-removed) ``tmp-checkpoint-N`` folders."""
        for child in self.path.iterdir():
            if child.is_dir() and child.name.startswith(TMP_PREFIX + CHECKPOINT_PREFIX):
                shutil.rmtree(child, ignore_errors=True)

    # -------------------------------------------------------------- state
    def progress(self, record: RunRecord | None = None) -> RunProgress:
        """How far the run got (its ``record`` when already read); the one place "finished" is decided."""
        record = record if record is not None else self.record
        return RunProgress(latest=self.latest, planned=record.planned_steps if record else 0,
                           stopped=record.stopped if record else None)

    @property
    def finished(self) -> bool:
        """Whether the run is finished (:attr:`RunProgress.finished`); a folder without a run is not."""
        record = self.record
        return record is not None and self.progress(record).finished

    def base(self, given: str | None, checkpoints: Sequence[Checkpoint] | None = None, *, same: SameBase) -> str:
        """The base the run was trained on (its recorded folder when it still exists), from the run record and
        the ``checkpoints``' records (all by default); a ``given`` base must be the same one (as ``same`` says:
        :func:`expertkit.models.base.same_base`)."""
        record = self.record or RunRecord()
        chosen = self.checkpoints() if checkpoints is None else checkpoints
        try:
            return choose_base(given, [("the run", record), *((ck.name, ck.record) for ck in chosen)], same)
        except ExpertkitError as exc:
            raise ExpertkitError(exc.message, path=self.path, key="--base") from None

    # -------------------------------------------------------------- logs
    def read_log(self, path: Path, last_step: int | None = None) -> list[dict[str, Any]]:
        """The rows of a step log (``loss.jsonl``, ``eval.jsonl``) up to ``last_step`` (all when ``None``);
        lines cut by a kill are skipped."""
        return [row for row in read_log_rows(path) if isinstance(row, dict) and isinstance(row.get("step"), int)
                and (last_step is None or row["step"] <= last_step)]

    def trim_log(self, path: Path, last_step: int) -> list[dict[str, Any]]:
        """Keep the rows of a step log up to ``last_step`` (a resumed run logs the later ones again); return
        them."""
        rows = self.read_log(path, last_step)
        if path.is_file():
            atomic_write_jsonl(path, rows)
        return rows

    # -------------------------------------------------------------- the comparison
    def compare_report(self) -> dict[str, Any] | None:
        """``compare/compare.json`` (``None`` when the run was not compared); unreadable is an error."""
        path = self.compare_report_path
        if not path.is_file():
            return None
        report = read_json(path, what="comparison report")
        if not isinstance(report, dict):
            raise ExpertkitError("unreadable comparison report: not a JSON object", path=path)
        return report


def list_checkpoints(run_dir: str | Path) -> list[Checkpoint]:
    """The complete checkpoints of the run folder ``run_dir``: ``Run(run_dir).checkpoints()``."""
    return Run(run_dir).checkpoints()


# ---------------------------------------------------------------------- the contract and the base
def contract_changes(checkpoint: Checkpoint, expert: Expert) -> list[str]:
    """What differs between the contract a checkpoint was trained on and the expert's current one."""
    if checkpoint.fingerprint == expert.fingerprint:
        return []
    old = checkpoint.record.contract
    if old is None:
        return [f"fingerprint {checkpoint.fingerprint or 'missing'} -> {expert.fingerprint}"]
    return diff_contracts(old, expert.contract.canonical())


def check_contract(checkpoint: Checkpoint, expert: Expert, *, allow_drift: bool = False) -> list[str]:
    """Refuse a checkpoint trained on another contract unless ``allow_drift``; return the changes."""
    changes = contract_changes(checkpoint, expert)
    if changes and not allow_drift:
        raise DriftError(
            f"trained on contract {checkpoint.fingerprint or '?'}, the expert's is {expert.fingerprint}: "
            + "; ".join(changes)
            + " (retrain, or pass --allow-drift)",
            path=checkpoint.path,
        )
    return changes


def recorded_base(record: BaseRecord) -> tuple[str, str | None] | None:
    """``(base, base_path)`` a run or checkpoint record names, or ``None``."""
    if not record.base:
        return None
    return record.base, record.base_path or None


def choose_base(given: str | None, sources: Sequence[tuple[str, BaseRecord]], same: SameBase) -> str:
    """The base to load for checkpoints whose records are ``sources`` (``(label, record)``).

    The recorded base (its folder when that still exists, else its name) unless ``given``; a ``given``
    base other than the recorded one, or records naming different bases, are refused in one line
    naming both. ``same`` says whether two references name the same base
    (:func:`expertkit.models.base.same_base`: resolving a name to its files is the models' business).
    """
    recorded = [(label, found) for label, record in sources if (found := recorded_base(record)) is not None]
    for label, (base, path) in recorded[1:]:
        first_label, (first, first_path) = recorded[0]
        if not same(first, first_path, path or base):
            raise ExpertkitError(f"{first_label} was trained on base {first!r} but {label} on {base!r}: "
                                 "they cannot share one base model", key="--base")
    if given is not None:
        for label, (base, path) in recorded:
            if not same(base, path, given):
                raise ExpertkitError(f"{label} was trained on base {base!r}, not on --base {given!r} "
                                     f"(leave --base out to use {base!r})", key="--base")
        return given
    if not recorded:
        labels = ", ".join(label for label, _ in sources) or "the checkpoint"
        raise ExpertkitError(f"{labels} records no base model; pass --base", key="--base")
    base, path = recorded[0][1]
    return path if path is not None and Path(path).is_dir() else base
