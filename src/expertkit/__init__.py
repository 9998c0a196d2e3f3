"""expertkit: small task experts with one prompt contract.

The public API is the names in ``__all__``; every other module is an implementation detail whose
path may change. The names are imported on first use (PEP 562), so ``import expertkit`` stays cheap
and does not import torch::

    from expertkit import Expert

    expert = Expert.load("experts/my_expert")
    report = expert.lint()  # the training set against the contract, as `expertkit lint` does
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module that defines it (imported when the name is first used).
_EXPORTS: dict[str, str] = {
    # the expert and its contract
    "Expert": "expertkit.expert",
    "PromptContract": "expertkit.core.contract",
    "Manifest": "expertkit.core.manifest",
    "load_manifest": "expertkit.expert",
    "parse_manifest": "expertkit.expert",
    "Finding": "expertkit.core.findings",
    # errors
    "ExpertkitError": "expertkit.core.errors",
    "ContractError": "expertkit.core.errors",
    "DriftError": "expertkit.core.errors",
    # authoring
    "new_expert": "expertkit.authoring.scaffold",
    "generate_dataset": "expertkit.authoring.generators",
    "lint_file": "expertkit.authoring.lint",
    "LintReport": "expertkit.authoring.lint",
    # judging one output
    "OutputKind": "expertkit.kinds",
    "kind_class": "expertkit.kinds",
    "Role": "expertkit.kinds",
    "ValidationResult": "expertkit.kinds.validation",
    "Score": "expertkit.kinds.scoring",
    "score_output": "expertkit.kinds.scoring",
    # runs and checkpoints
    "Run": "expertkit.core.checkpoints",
    "Checkpoint": "expertkit.core.checkpoints",
    "load_checkpoint": "expertkit.core.checkpoints",
    "list_checkpoints": "expertkit.core.checkpoints",
    # train, compare, package, serve
    "TrainOptions": "expertkit.training.train",
    "TrainResult": "expertkit.training.train",
    "train_expert": "expertkit.training.train",
    "CompareOptions": "expertkit.evaluation.compare",
    "CompareResult": "expertkit.evaluation.compare",
    "compare_run": "expertkit.evaluation.compare",
    "package_expert": "expertkit.packaging.package",
    "install_package": "expertkit.packaging.package",
    "list_installed": "expertkit.packaging.package",
    "remove_installed": "expertkit.packaging.package",
    "InstalledExpert": "expertkit.packaging.package",
    "AskOptions": "expertkit.serving.ask",
    "Asker": "expertkit.serving.ask",
    "ServeOptions": "expertkit.serving.serve",
    "run_server": "expertkit.serving.serve",
    "run_quickstart": "expertkit.quickstart",
    "QuickstartResult": "expertkit.quickstart",
}

__all__ = [
    "AskOptions",
    "Asker",
    "Checkpoint",
    "CompareOptions",
    "CompareResult",
    "ContractError",
    "DriftError",
    "Expert",
    "ExpertkitError",
    "Finding",
    "InstalledExpert",
    "LintReport",
    "Manifest",
    "OutputKind",
    "PromptContract",
    "QuickstartResult",
    "Role",
    "Run",
    "Score",
    "ServeOptions",
    "TrainOptions",
    "TrainResult",
    "ValidationResult",
    "compare_run",
    "generate_dataset",
    "install_package",
    "kind_class",
    "lint_file",
    "list_checkpoints",
    "list_installed",
    "load_checkpoint",
    "load_manifest",
    "new_expert",
    "package_expert",
    "parse_manifest",
    "remove_installed",
    "run_quickstart",
    "run_server",
    "score_output",
    "train_expert",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'expertkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names come from __getattr__
    from expertkit.authoring.generators import generate_dataset
    from expertkit.authoring.lint import LintReport, lint_file
    from expertkit.authoring.scaffold import new_expert
    from expertkit.core.checkpoints import Checkpoint, Run, list_checkpoints, load_checkpoint
    from expertkit.core.contract import PromptContract
    from expertkit.core.errors import ContractError, DriftError, ExpertkitError
    from expertkit.core.findings import Finding
    from expertkit.core.manifest import Manifest
    from expertkit.evaluation.compare import CompareOptions, CompareResult, compare_run
    from expertkit.expert import Expert, load_manifest, parse_manifest
    from expertkit.kinds import OutputKind, Role, kind_class
    from expertkit.kinds.scoring import Score, score_output
    from expertkit.kinds.validation import ValidationResult
    from expertkit.packaging.package import (
        InstalledExpert,
        install_package,
        list_installed,
        package_expert,
        remove_installed,
    )
    from expertkit.quickstart import QuickstartResult, run_quickstart
    from expertkit.serving.ask import Asker, AskOptions
    from expertkit.serving.serve import ServeOptions, run_server
    from expertkit.training.train import TrainOptions, TrainResult, train_expert
