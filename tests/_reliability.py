"""Helpers shared by the ``test_reliability_*`` modules: running the CLI, snapshots, a tiny base."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BADINPUT = Path(__file__).resolve().parent / "badinput"
TINY_CORPUS = [
    "<|im_start|>system\nDialect: json\nTask: extract<|im_end|>\n<|im_start|>user\nWhat is the total of invoice "
    f"{i}?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n{{\"total\": {i}}}<|im_end|>\n"
    for i in range(40)
]
_BASES: dict[str, Path] = {}


@dataclass
class CliResult:
    """What one CLI run gave back."""

    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def tiny_base(factory: pytest.TempPathFactory) -> Path:
    """A tiny base built once per test session (its tokenizer knows the ``badinput`` expert's prompts)."""
    if "base" not in _BASES:
        from expertkit.models.base import build_tiny_base

        _BASES["base"] = build_tiny_base(factory.mktemp("reliability-base") / "tiny", corpus=TINY_CORPUS,
                                         vocab_size=400)
    return _BASES["base"]


def copy_expert(dest: Path) -> Path:
    """A copy of the bad-input expert (tests/badinput/expert) at ``dest``, the test's to change."""
    return Path(shutil.copytree(BADINPUT / "expert", dest))


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EXPERTKIT_DEBUG"}
    return {**env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def run_subprocess(args: Sequence[str | Path], *, timeout: float = 180, memory_limit: int | None = None,
                   env: dict[str, str] | None = None) -> CliResult:
    """``python -m expertkit.cli ARGS`` in a fresh process; ``memory_limit`` caps its address space
    (``RLIMIT_AS``, bytes): a memory bound asserted without timing anything."""

    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    proc = subprocess.run([sys.executable, "-m", "expertkit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**cli_env(), **(env or {})}, timeout=timeout, preexec_fn=limit)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_main(args: Sequence[str | Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
             ) -> CliResult:
    """``expertkit.cli.main()`` in this process, with ``sys.argv`` set to ``ARGS``."""
    from expertkit import cli

    monkeypatch.setattr(sys, "argv", ["expertkit", *map(str, args)])
    monkeypatch.delenv("EXPERTKIT_DEBUG", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    captured = capsys.readouterr()
    code = stopped.value.code
    return CliResult(code if isinstance(code, int) else 1, captured.out, captured.err)


def assert_one_line_error(result: CliResult, *needles: str) -> str:
    """Exit code 2, no traceback, exactly one line on stderr holding every needle; returns that line."""
    assert result.code == 2, (result.code, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(result.lines) == 1, result.stderr
    line = result.lines[0]
    assert line.startswith("expertkit: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def snapshot(root: Path, *, skip: Sequence[Path] = ()) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: relative path -> (size, mtime_ns)."""
    skipped = [p.resolve() for p in skip]
    out: dict[str, tuple[int, int]] = {}
    for path in root.rglob("*"):
        if any(path.resolve().is_relative_to(s) for s in skipped):
            continue
        stat = path.lstat()
        out[str(path.relative_to(root))] = (0 if path.is_dir() else stat.st_size, stat.st_mtime_ns)
    return out


def safetensors_bytes() -> bytes:
    """A small, whole safetensors file (checkpoints' weights are verified when they are registered)."""
    import numpy as np
    from safetensors.numpy import save

    return save({"lora_A.weight": np.zeros((2, 4), dtype=np.float32)})


#: Placeholder adapter weights: a whole, loadable safetensors file.
WEIGHTS = safetensors_bytes()


def write_checkpoint(folder: Path, expert: Any, *, step: int = 1, base: str = "tiny") -> Path:
    """A complete adapter checkpoint record (with placeholder adapter files), as training leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text('{"r": 4, "peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(WEIGHTS)
    record = {"step": step, "expert": expert.name, "fingerprint": expert.fingerprint,
              "contract": expert.contract.canonical(), "method": "lora", "base": base}
    (folder / "expertkit.json").write_text(json.dumps(record))
    return folder


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Make ``folder`` read-only: mode 0555, and, for root (whom modes do not stop), the calls that create or
    replace entries in it (``os.access``, ``os.open``, ``os.mkdir``, ``os.rename``, ``os.replace``) refused as the
    kernel refuses them for anyone else."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return folder
    locked = folder.absolute()

    def inside(path: Any) -> bool:
        p = Path(os.fsdecode(path)).absolute()
        return p == locked or p.parent == locked

    def denied(path: Any) -> OSError:
        return PermissionError(13, "Permission denied", os.fsdecode(path))

    real_access, real_open, real_mkdir = os.access, os.open, os.mkdir
    real_rename, real_replace = os.rename, os.replace

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(os.fsdecode(path)).absolute() == locked:
            return False
        return real_access(path, mode, *args, **kwargs)

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and inside(path) and Path(os.fsdecode(path)) != locked:
            raise denied(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path) and Path(os.fsdecode(path)).absolute() != locked:
            raise denied(path)
        real_mkdir(path, *args, **kwargs)

    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if inside(dst) or inside(src):
            raise denied(dst)
        real_rename(src, dst, *args, **kwargs)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if inside(dst) or inside(src):
            raise denied(dst)
        real_replace(src, dst, *args, **kwargs)

    for name, fake in (("access", access), ("open", open_), ("mkdir", mkdir), ("rename", rename),
                       ("replace", replace)):
        monkeypatch.setattr(os, name, fake)
    return folder
