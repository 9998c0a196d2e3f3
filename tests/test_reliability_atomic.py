"""Writes other steps read are atomic: a crash mid-write leaves the old file whole and no temporary file behind.

Every writer in ``src/`` is checked to go through ``fileio.atomic_write_*`` or a temporary folder renamed when
whole; a few are crashed halfway (a write that raises, as a full disk or a kill between write and rename would).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_package import make_checkpoint, make_expert

from expertkit.core import fileio
from expertkit.core.errors import ExpertkitError
from expertkit.expert import Expert
from expertkit.packaging.package import install_package, list_installed, package_expert, remove_installed

SRC = Path(__file__).resolve().parents[1] / "src" / "expertkit"
REPO = SRC.parents[1]
#: Direct writes allowed in ``src/``: (file, text of the line, why it is safe).
DIRECT_WRITES = [
    ("fileio.py", 'with os.fdopen(fd, "wb") as fh:', "the temporary file of atomic_write_bytes"),
    ("base.py", "(tmp / TINY_MARKER).write_text(", "a temporary folder, moved into place whole"),
    ("qwen3.py", "(tmp / TINY_MARKER).write_text(", "a temporary folder, moved into place whole"),
    ("scaffold.py", "(tmp / ", "a temporary folder, renamed when whole"),
    ("package.py", 'with os.fdopen(fd, "wb") as raw, tarfile.open(', "a temporary file renamed over the archive"),
    ("package.py", 'with target.open("xb") as fh:', "extraction into the staging folder, renamed when verified"),
    ("package.py", 'with (home / ".lock").open("a") as fh:', "the registry's lock file (empty: flock only)"),
    ("train.py", 'with self.path.open("a", encoding="utf-8") as fh:',
     "loss.jsonl gets a line per step; a line cut by a kill is skipped, and resume trims the log"),
]
#: Writers of what another step reads: reports, registry, datasets, run records.
ATOMIC_WRITERS = [
    "src/expertkit/evaluation/report.py", "src/expertkit/packaging/package.py", "src/expertkit/authoring/generators.py",
    "experts/sql/generator.py", "experts/elastic/generator.py", "src/expertkit/training/train.py",
]
_WRITE_RE = re.compile(r"\.write_(text|bytes)\(|open\([^)]*[\"'][wax]b?\+?[\"']|\.open\([\"'][wax]|json\.dump\(")


def test_every_writer_is_atomic_or_writes_into_a_temporary_folder() -> None:
    unexpected = []
    for path in sorted([*SRC.rglob("*.py"), *(REPO / "experts").rglob("*.py")]):  # the shipped generators write too
        for line in path.read_text().splitlines():
            text = line.strip()
            if not _WRITE_RE.search(text) or text.startswith(("#", '"', "'")):
                continue
            if not any(path.name == name and text.startswith(start) for name, start, _ in DIRECT_WRITES):
                unexpected.append(f"{path.relative_to(REPO)}: {text}")
    assert not unexpected, f"direct writes outside fileio.atomic_write_*: {unexpected}"
    for name in ATOMIC_WRITERS:
        assert "atomic_write_" in (REPO / name).read_text(), name


class Crash(RuntimeError):
    """A write that fails halfway (a full disk, an I/O error)."""


def crash_on_fsync(monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """The ``after``-th+1 ``os.fsync`` raises: the temporary file is written, the rename has not happened."""
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise Crash("disk full")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith("."))


WRITERS: dict[str, Callable[[Path], None]] = {
    "atomic_write_bytes": lambda p: fileio.atomic_write_bytes(p, b"new" * 1000),
    "atomic_write_text": lambda p: fileio.atomic_write_text(p, "new" * 1000),
    "atomic_write_json": lambda p: fileio.atomic_write_json(p, {"new": list(range(1000))}),
    "atomic_write_jsonl": lambda p: fileio.atomic_write_jsonl(p, [{"new": i} for i in range(1000)]),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_crash_mid_write_keeps_the_old_file(writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out" / "file.json"
    target.parent.mkdir()
    target.write_text('{"old": true}\n')
    crash_on_fsync(monkeypatch)
    with pytest.raises(Crash):
        WRITERS[writer](target)
    assert target.read_text() == '{"old": true}\n'
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    WRITERS[writer](target)
    assert "new" in target.read_text() and leftovers(tmp_path) == []


def test_comparison_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from expertkit.evaluation.report import write_reports

    out = tmp_path / "compare"
    out.mkdir()
    (out / "compare.json").write_text('{"old": true}')
    crash_on_fsync(monkeypatch)
    with pytest.raises(Crash):
        write_reports({"new": True}, out)
    assert json.loads((out / "compare.json").read_text()) == {"old": True}
    assert sorted(p.name for p in out.iterdir()) == ["compare.json"]


def test_generated_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from expertkit.authoring.generators import generate_dataset

    root = Path(shutil.copytree(REPO / "experts" / "elastic", tmp_path / "elastic"))
    train, evals = root / "data" / "train.jsonl", root / "data" / "eval.jsonl"
    old_eval = evals.read_bytes()
    crash_on_fsync(monkeypatch, after=1)  # the training set is written, the eval set crashes
    with pytest.raises(Crash):
        generate_dataset(Expert.load(root), train_size=5, eval_size=3, seed=1, force=True)  # over the old ones
    assert len(train.read_text().splitlines()) == 5 and evals.read_bytes() == old_eval
    assert leftovers(root / "data") == []


def _archive(tmp: Path, version: str = "0.1.0") -> tuple[Expert, Path]:
    expert = make_expert(tmp / f"src-{version}", version=version)
    return expert, package_expert(expert, make_checkpoint(tmp / f"run-{version}", expert), tmp / f"{version}.expert")


def test_registry_index_crash_rolls_the_install_back(tmp_path: Path, home: Path) -> None:
    _, first = _archive(tmp_path, "0.1.0")
    _, second = _archive(tmp_path, "0.2.0")
    install_package(first)
    index = (home / "index.json").read_text()
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Crash):
        crash_on_fsync(mp)
        install_package(second)
    assert (home / "index.json").read_text() == index
    assert [i.version for i in list_installed()] == ["0.1.0"]
    assert not (home / "experts" / "invoices" / "0.2.0").exists()  # the unlisted copy is taken back out
    assert leftovers(home) == [".lock"] and list((home / "tmp").iterdir()) == []
    assert install_package(second).version == "0.2.0"


def test_an_install_killed_before_its_index_entry_can_be_redone(tmp_path: Path, home: Path) -> None:
    """A kill between the folder rename and the index write leaves an unlisted folder and a staging folder."""
    _, archive = _archive(tmp_path)
    installed = install_package(archive)
    remove_installed("invoices")
    shutil.copytree(tmp_path / "src-0.1.0" / "invoices", installed.path)  # the unlisted folder
    (home / "tmp" / "install-killed").mkdir()  # a staging folder nobody will finish
    (home / "tmp" / "install-killed" / "partial.bin").write_bytes(b"x" * 100)
    again = install_package(archive)
    assert [i.version for i in list_installed()] == ["0.1.0"] and again.path == installed.path
    assert (again.checkpoint_path / "expertkit.json").is_file()
    assert list((home / "tmp").iterdir()) == []


def test_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expert = make_expert(tmp_path / "src")
    checkpoint = make_checkpoint(tmp_path / "run", expert)
    out = tmp_path / "out"
    out.mkdir()
    (out / "invoices.expert").write_bytes(b"the old archive")
    real = tarfile.TarFile.addfile
    calls = {"n": 0}

    def addfile(self: tarfile.TarFile, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise Crash("disk full")
        real(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "addfile", addfile)
    with pytest.raises(Crash):
        package_expert(expert, checkpoint, out / "invoices.expert", force=True)  # over the old one
    assert (out / "invoices.expert").read_bytes() == b"the old archive"
    assert sorted(p.name for p in out.iterdir()) == ["invoices.expert"]


def test_scaffolded_experts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from expertkit.authoring.scaffold import new_expert

    def rename(self: Path, target: Any) -> Path:
        raise Crash("killed before the rename")

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(Crash):
        new_expert("half", values={"Dialect": "json", "Task": "extract"}, root=tmp_path)
    assert list((tmp_path / "experts").iterdir()) == []


def test_a_file_in_the_way_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(ExpertkitError, match="a file is in the way"):
        fileio.atomic_write_text(tmp_path / "blocker" / "report.json", "{}")
    assert (tmp_path / "blocker").read_text() == "x"
