"""File reading with precise errors, and atomic writes (temp file + rename)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from expertkit.errors import ExpertkitError

MAX_LINE_BYTES = 4 * 1024 * 1024
#: A ``\\uD800``-``\\uDFFF`` escape: JSON text that may decode to a lone surrogate.
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ExpertkitError("no such file", path=path)
    if path.is_dir():
        raise ExpertkitError("is a directory, expected a file", path=path)


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file (a leading BOM is dropped); errors name the file and line."""
    p = Path(path)
    _check_file(p)
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExpertkitError(f"invalid UTF-8 (byte {exc.start})", path=p, line=line) from None


def has_lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a string (or key) with a lone UTF-16 surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def iter_jsonl(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of a JSONL file.

    Raises :class:`ExpertkitError` naming file and line for unreadable bytes, broken JSON, a lone
    surrogate escape (``"\\ud800"``: JSON for text that is not Unicode) or a line longer than
    ``max_line_bytes``.
    """
    p = Path(path)
    _check_file(p)
    with p.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if len(raw) > max_line_bytes:
                raise ExpertkitError(
                    f"line is {len(raw)} bytes, over the {max_line_bytes}-byte limit", path=p, line=number
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ExpertkitError(f"invalid UTF-8 (column {exc.start + 1})", path=p, line=number) from None
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ExpertkitError(f"broken JSON: {exc.msg} (column {exc.colno})", path=p, line=number) from None
            except RecursionError:
                raise ExpertkitError("JSON nested too deeply", path=p, line=number) from None
            if _SURROGATE_ESCAPE_RE.search(text) and has_lone_surrogate(value):
                raise ExpertkitError("invalid Unicode: a string holds a lone UTF-16 surrogate escape", path=p,
                                     line=number)
            yield number, value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir() -> Path:
    """Where expertkit caches built artefacts (``$EXPERTKIT_CACHE``, default ``~/.cache/expertkit``)."""
    return Path(os.environ.get("EXPERTKIT_CACHE", Path.home() / ".cache" / "expertkit"))


def ensure_dir(path: str | Path, *, key: str | None = None) -> Path:
    """Create the folder ``path`` (and its parents); a file in the way or no permission is a user error."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ExpertkitError("cannot create this folder: a file is in the way", path=p, key=key) from None
    except PermissionError:
        raise ExpertkitError("cannot create this folder: permission denied", path=p, key=key) from None
    return p


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    p = Path(path)
    ensure_dir(p.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; keep the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
