"""The package's shape: the import layers (import-linter) and the lazy public API of ``expertkit``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import expertkit

REPO = Path(__file__).resolve().parents[1]


def test_the_import_layers_hold() -> None:
    """The contracts in pyproject.toml ([tool.importlinter]): cli -> services -> core, no cycles. A
    failure prints lint-imports' report: the import to fix, with its file and line."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.is_file(), "lint-imports is missing: pip install -e '.[dev]'"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_import_expertkit_does_not_import_torch() -> None:
    code = ("import expertkit, sys; "
            "heavy = sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets', 'fastapi') "
            "if m in sys.modules); assert not heavy, heavy; "
            "from expertkit import Expert, __all__; assert Expert.__module__ == 'expertkit.expert'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves_to_its_defining_module() -> None:
    assert expertkit.__all__ == sorted(expertkit._EXPORTS)  # one list, no name twice
    for name in expertkit.__all__:
        value = getattr(expertkit, name)
        assert getattr(value, "__name__", name) == name, name
        assert name in dir(expertkit)
    from expertkit import Expert, PromptContract, load_manifest
    from expertkit.core.contract import PromptContract as Defined

    assert PromptContract is Defined
    expert = Expert.load(REPO / "experts" / "elastic")
    assert expert.manifest == load_manifest(REPO / "experts" / "elastic")


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = expertkit.Nope  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from expertkit import Nope  # type: ignore[attr-defined]  # noqa: F401


def test_the_wheel_ships_the_experts_and_registers_their_generators(tmp_path: Path) -> None:
    """A non-editable install has the shipped experts (``expertkit_experts``: every tracked file of experts/)
    and finds their generators through the ``expertkit.generators`` entry points."""
    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in ("src", "experts"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("expertkit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    shipped = {p.relative_to(REPO / "experts").as_posix() for p in (REPO / "experts").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert {"elastic/expert.yaml", "elastic/generator.py", "sql/data/train.jsonl"} <= shipped
    assert {f"expertkit_experts/{rel}" for rel in shipped} <= names
    assert "expertkit/expert.py" in names and not any(n.startswith("experts/") for n in names)
    assert "elastic = expertkit_experts.elastic.generator" in entry_points
    assert "sql = expertkit_experts.sql.generator" in entry_points
