"""Run folders and their checkpoints.

A run folder holds ``run.json`` (expert, base, method, contract fingerprint), ``loss.jsonl`` and
``checkpoint-N/`` folders. A checkpoint is *complete* once its record ``expertkit.json`` exists —
it is written last, and the folder itself is written under a temporary name and renamed when whole —
so a save killed halfway is never listed, compared, resumed from or packaged.

Each checkpoint holds the PEFT adapter files (``adapter_config.json``, ``adapter_model.safetensors``)
or, for full fine-tuning, the model files; the exported chat template (``chat_template.jinja``); a copy
of the manifest (``expert.yaml``); and the record (step, contract fingerprint and canonical contract).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.core.contract import diff_contracts
from expertkit.core.errors import DriftError, ExpertkitError
from expertkit.core.fileio import read_json

if TYPE_CHECKING:
    from expertkit.expert import Expert

RECORD_NAME = "expertkit.json"
RUN_RECORD_NAME = "run.json"
CHAT_TEMPLATE_NAME = "chat_template.jinja"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    record: dict[str, Any]

    @property
    def name(self) -> str:
        return f"checkpoint-{self.step}"

    @property
    def fingerprint(self) -> str:
        return str(self.record.get("fingerprint", ""))


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


#: The record's key for the sha256 of each weights file, written at save time.
WEIGHTS_SHA256 = "weights_sha256"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(checkpoint: Checkpoint, digests: dict[str, str] | None = None) -> None:
    """Check the weights against the sha256 the record holds (where it holds one: older records do not);
    ``digests`` (name -> sha256) are already computed ones. Reads every weights file: done where a checkpoint
    is served or packaged, not on every listing."""
    recorded = checkpoint.record.get(WEIGHTS_SHA256)
    if not isinstance(recorded, dict):
        return
    for name, expected in sorted(recorded.items()):
        path = checkpoint.path / str(name)
        if not path.is_file():
            raise ExpertkitError("a weights file of the record is missing", path=path)
        actual = (digests or {}).get(str(name)) or sha256_file(path)
        if actual != expected:
            raise ExpertkitError("damaged weights: the file does not match the sha256 its checkpoint recorded",
                                 path=path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a complete checkpoint folder; an incomplete or foreign folder, or damaged weights, is an error."""
    p = Path(path)
    if not p.is_dir():
        raise ExpertkitError("no such checkpoint folder", path=p)
    record_path = p / RECORD_NAME
    if not record_path.is_file():
        raise ExpertkitError(f"incomplete checkpoint (no {RECORD_NAME}): a save was interrupted", path=p)
    record = read_json(record_path, what="checkpoint record")
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise ExpertkitError("checkpoint record has no integer 'step'", path=record_path, key="step")
    for weights in sorted(p.glob("*.safetensors")):
        verify_safetensors(weights)
    return Checkpoint(step=record["step"], path=p, record=record)


def list_checkpoints(run_dir: str | Path) -> list[Checkpoint]:
    """Complete checkpoints of a run, by ascending step (temporary and half-written ones skipped)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ExpertkitError("no such run folder", path=root)
    found = []
    for child in root.iterdir():
        if child.is_dir() and _CHECKPOINT_RE.match(child.name) and (child / RECORD_NAME).is_file():
            found.append(load_checkpoint(child))
    return sorted(found, key=lambda c: c.step)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``run.json`` (empty if absent)."""
    path = Path(run_dir) / RUN_RECORD_NAME
    if not path.is_file():
        return {}
    value = read_json(path, what="run record")
    return value if isinstance(value, dict) else {}


def contract_changes(checkpoint: Checkpoint, expert: Expert) -> list[str]:
    """What differs between the contract a checkpoint was trained on and the expert's current one."""
    if checkpoint.fingerprint == expert.fingerprint:
        return []
    old = checkpoint.record.get("contract")
    if not isinstance(old, dict):
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


def recorded_base(record: dict[str, Any]) -> tuple[str, str | None] | None:
    """``(base, base_path)`` a run or checkpoint record names, or ``None``."""
    base = record.get("base")
    if not isinstance(base, str) or not base:
        return None
    path = record.get("base_path")
    return base, path if isinstance(path, str) and path else None
