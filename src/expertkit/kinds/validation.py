"""Validators judge an expert's output for its field; a registry keyed by the manifest's output kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from expertkit.core.manifest import OutputSpec


#: Longest JSON output (characters) the json and elastic_dsl validators parse; longer is invalid.
MAX_OUTPUT_CHARS = 4_000_000


def too_long(output: str, limit: int = MAX_OUTPUT_CHARS) -> str | None:
    """Why ``output`` is too long to judge, or None."""
    if len(output) > limit:
        return f"output is {len(output)} characters, over the {limit}-character limit"
    return None


@dataclass
class ValidationResult:
    valid: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "errors": list(self.errors), "warnings": list(self.warnings)}


class Validator(ABC):
    """Base of every validator. ``fields`` are the prompt's canonical contract fields."""

    kind: ClassVar[str]
    #: Contract fields without which an answer cannot be judged (lint validates an answer whenever
    #: these are present and usable, whatever findings the record's other fields have).
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, expert_root: Path, output: OutputSpec) -> None:
        self.expert_root = Path(expert_root)
        self.output = output

    def resource(self, name: str) -> Path | None:
        rel = self.output.resources.get(name)
        return (self.expert_root / rel) if rel else None

    @abstractmethod
    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        """Is ``output`` a valid answer for a prompt with these fields?"""

    @abstractmethod
    def equivalent(self, a: str, b: str, fields: Mapping[str, str]) -> bool:
        """Do two answers mean the same (canonical forms equal)?"""

    def execution_match(self, output: str, gold: str, fields: Mapping[str, str]) -> bool | None:
        """Do both answers give the same result when run? ``None`` where the kind cannot run."""
        return None


def get_validator(expert_root: str | Path, output: OutputSpec) -> Validator:
    """The validator for ``output.kind``, bound to the expert's resources."""
    kind = output.kind
    if kind == "json":
        from expertkit.kinds.json.validator import JsonValidator

        return JsonValidator(Path(expert_root), output)
    if kind == "elastic_dsl":
        from expertkit.kinds.elastic.validator import ElasticDslValidator

        return ElasticDslValidator(Path(expert_root), output)
    if kind == "sql":
        from expertkit.kinds.sql.validator import SqlValidator

        return SqlValidator(Path(expert_root), output)
    raise ValueError(f"no validator for output kind {kind!r}")
