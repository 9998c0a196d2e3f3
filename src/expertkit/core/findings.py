"""Findings: what lint, check-prompt and the contract report about a record or prompt."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One problem found in a record or prompt."""

    code: str
    severity: Severity
    message: str
    line: int | None = None
    field: str | None = None
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def at_line(self, line: int | None) -> Finding:
        return Finding(self.code, self.severity, self.message, line, self.field, self.suggestion)

    def with_severity(self, severity: Severity) -> Finding:
        return Finding(self.code, severity, self.message, self.line, self.field, self.suggestion)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        fld = f"[{self.field}] " if self.field else ""
        return f"{where}{self.severity} {self.code}: {fld}{self.message}"


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
