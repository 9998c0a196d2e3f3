"""Errors that the CLI turns into one-line messages (file, line, key) and exit code 2."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: C0 and C1 control characters and DEL (a newline in a path could forge a second error line; ESC colours it).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``): always one line."""
    return _CONTROL_RE.sub(lambda m: repr(m.group(0))[1:-1], text)


def one_line(text: str) -> str:
    """Free text for a one-line message: runs of spaces, tabs and newlines become one space, other control
    characters are escaped."""
    return escape_control(re.sub(r"[ \t\n\r]+", " ", text).strip())


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
            where = escape_control(self.path) + (f":{self.line}" if self.line is not None else "")
        elif self.line is not None:
            where = f"line {self.line}"
        parts = [p for p in (where, escape_control(self.key) if self.key else None) if p]
        prefix = ": ".join(parts)
        text = one_line(self.message)  # keep it one line
        return f"{prefix}: {text}" if prefix else text


class ContractError(ExpertkitError):
    """Fields or question that the prompt contract rejects; carries the findings."""

    def __init__(self, message: str, findings: list | None = None, **kwargs) -> None:  # type: ignore[type-arg]
        self.findings = list(findings or [])
        super().__init__(message, **kwargs)


class DriftError(ExpertkitError):
    """A checkpoint whose contract fingerprint differs from the expert's current contract."""


def from_os_error(exc: OSError, *, key: str | None = None) -> ExpertkitError:
    """A one-line error for a failed file operation: ``FILE: permission denied`` (not the exception's repr)."""
    reason = (exc.strerror or type(exc).__name__).lower()
    path = exc.filename
    if exc.filename2 is not None:
        reason += f" (-> {exc.filename2})"
    return ExpertkitError(f"cannot write or read here: {reason}" if path is not None else reason,
                          path=os.fsdecode(path) if path is not None else None, key=key)
