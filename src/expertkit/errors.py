"""Errors that the CLI turns into one-line messages (file, line, key) and exit code 2."""

from __future__ import annotations

from pathlib import Path


class ExpertkitError(Exception):
    """A user-facing error: bad input, missing file, refused operation.

    ``str(err)`` is one line: ``path:line: key: message`` with the parts that apply.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line is not None else "")
        elif self.line is not None:
            where = f"line {self.line}"
        parts = [p for p in (where, self.key) if p]
        prefix = ": ".join(parts)
        text = " ".join(self.message.split())  # keep it one line
        return f"{prefix}: {text}" if prefix else text


class ContractError(ExpertkitError):
    """Fields or question that the prompt contract rejects; carries the findings."""

    def __init__(self, message: str, findings: list | None = None, **kwargs) -> None:  # type: ignore[type-arg]
        self.findings = list(findings or [])
        super().__init__(message, **kwargs)


class DriftError(ExpertkitError):
    """A checkpoint whose contract fingerprint differs from the expert's current contract."""
