"""What a kind's judging returns, and the size limit of JSON outputs (the kinds are :mod:`expertkit.kinds`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class ExecutionOutcome:
    """What execution match found: the verdict, and which database decided it."""

    match: bool | None
    #: ``"fixture"`` or ``"variant N"`` (the first database where the results differ), else None.
    decided_by: str | None = None
    #: Databases both queries ran on.
    databases: int = 0
    error: str | None = None
