"""The package's shape: the import layers (import-linter) and the lazy public API of ``expertkit``."""

from __future__ import annotations

import subprocess
import sys
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
