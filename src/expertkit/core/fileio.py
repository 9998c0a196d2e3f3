"""File reading with precise errors, and atomic writes (temp file + rename)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from expertkit.core.errors import ExpertkitError

MAX_LINE_BYTES = 4 * 1024 * 1024
#: Most bytes :func:`read_text` reads (manifests, key files, records, schemas): enforced while reading.
MAX_TEXT_BYTES = 64 * 1024 * 1024
#: A ``\\uD800``-``\\uDFFF`` escape: JSON text that may decode to a lone surrogate.
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_file(path: Path, key: str | None = None) -> None:
    """A regular file, or an error: a FIFO would block forever and a device (``/dev/zero``) never ends."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ExpertkitError("no such file", path=path, key=key) from None
    except NotADirectoryError:
        raise ExpertkitError("no such file (a file is in the way)", path=path, key=key) from None
    except PermissionError:
        raise ExpertkitError("cannot read this file: permission denied", path=path, key=key) from None
    except OSError as exc:
        raise ExpertkitError(f"cannot read this file: {exc.strerror}", path=path, key=key) from None
    if stat.S_ISDIR(mode):
        raise ExpertkitError("is a directory, expected a file", path=path, key=key)
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else (
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ExpertkitError(f"is {kind}, expected a regular file", path=path, key=key)


def open_regular(path: str | Path, key: str | None = None) -> Any:
    """Open a regular file for reading in binary (refusing FIFOs, devices and folders before opening)."""
    p = Path(path)
    _check_file(p, key)
    try:
        # O_NONBLOCK: a file swapped for a FIFO between the check and the open does not block the open
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError:
        raise ExpertkitError("cannot read this file: permission denied", path=p, key=key) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ExpertkitError("is not a regular file", path=p, key=key)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: str | Path, *, max_bytes: int = MAX_TEXT_BYTES, key: str | None = None) -> bytes:
    """The bytes of a regular file, refusing one over ``max_bytes`` (checked while reading, not after)."""
    p = Path(path)
    with open_regular(p, key) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ExpertkitError(f"file is over the {max_bytes}-byte limit", path=p, key=key)
    return data


def read_text(path: str | Path, *, max_bytes: int = MAX_TEXT_BYTES, key: str | None = None) -> str:
    """Read a UTF-8 text file (a leading BOM is dropped); errors name the file and line."""
    p = Path(path)
    data = read_bytes(p, max_bytes=max_bytes, key=key)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExpertkitError(f"invalid UTF-8 (byte {exc.start})", path=p, line=line, key=key) from None


def read_json(path: str | Path, *, what: str = "JSON file", max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """A bounded JSON file; unreadable, broken or too deeply nested JSON is one error naming the file."""
    p = Path(path)
    text = read_text(p, max_bytes=max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExpertkitError(f"unreadable {what}: {exc.msg}", path=p, line=exc.lineno) from None
    except RecursionError:
        raise ExpertkitError(f"unreadable {what}: nested too deeply", path=p) from None


def read_json_or_none(path: str | Path, *, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """A JSON file expertkit keeps for itself (a cache index, a marker, recorded scores): its value, or ``None``
    when it is missing or cannot be read, and the caller rebuilds what it held."""
    try:
        return json.loads(read_text(path, max_bytes=max_bytes))
    except (ExpertkitError, ValueError, RecursionError):
        return None


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


@dataclass(frozen=True)
class BadLine:
    """A JSONL line that holds no JSON value: invalid UTF-8, broken JSON, nested too deeply, a lone surrogate."""

    message: str


def iter_jsonl(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES,
               bad_lines: Literal["raise", "yield"] = "raise") -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of a JSONL file.

    A line that holds no JSON value (unreadable bytes, broken JSON, a lone surrogate escape ``"\\ud800"``:
    JSON for text that is not Unicode, nesting too deep, a line longer than ``max_line_bytes``) raises
    :class:`ExpertkitError` naming file and line, or with ``bad_lines="yield"`` comes as
    ``(line_number, BadLine(message))`` and reading goes on (past the rest of an over-long line, never held in
    memory). A file that cannot be read always raises.
    """
    p = Path(path)
    with open_regular(p) as fh:
        # readline(limit): a line is never held beyond the limit (a 1 GiB file without newlines costs 4 MiB)
        for number, raw in enumerate(iter(lambda: fh.readline(max_line_bytes + 4), b""), start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if len(raw.rstrip(b"\r\n")) > max_line_bytes:
                message = f"line is over the {max_line_bytes}-byte limit"
                if bad_lines == "raise":
                    raise ExpertkitError(message, path=p, line=number)
                while raw and not raw.endswith(b"\n"):  # skip to the next line, a chunk at a time
                    raw = fh.readline(_SKIP_CHUNK)
                yield number, BadLine(message)
                continue
            value = _json_line(raw)
            if isinstance(value, BadLine) and bad_lines == "raise":
                raise ExpertkitError(value.message, path=p, line=number)
            if value is not _BLANK:
                yield number, value


def read_log_rows(path: str | Path) -> list[Any]:
    """The values of a log that is only appended to (``loss.jsonl``, a bench's results): none when the file
    does not exist, and a line a kill cut short (or any line holding no JSON value) skipped."""
    if not Path(path).is_file():
        return []
    return [value for _, value in iter_jsonl(path, bad_lines="yield") if not isinstance(value, BadLine)]


_BLANK = object()
#: Bytes read at a time while skipping the rest of an over-long line.
_SKIP_CHUNK = 1024 * 1024


def _json_line(raw: bytes) -> Any:
    """The JSON value of one line, :data:`_BLANK` for a blank line, or a :class:`BadLine`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadLine(f"invalid UTF-8 (column {exc.start + 1})")
    text = text.rstrip("\r\n")  # parsed without its line end: an error at the end names the last column, not 1
    if not text.strip():
        return _BLANK
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadLine(f"broken JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return BadLine("JSON nested too deeply")
    if _SURROGATE_ESCAPE_RE.search(text) and has_lone_surrogate(value):
        return BadLine("invalid Unicode: a string holds a lone UTF-16 surrogate escape")
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def utc_now() -> str:
    """The time written into records (run, checkpoint, comparison): UTC, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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
        usual_file_mode(fd)  # mkstemp makes 0600 files; keep the usual permissions
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


# ---------------------------------------------------------------------- where outputs go
def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable_parent(path: Path, key: str | None) -> None:
    """The folder ``path`` will be created in (its nearest existing ancestor) is a writable folder."""
    anchor = _nearest_existing(path.parent if path.parent != path else path)
    if not anchor.is_dir():
        raise ExpertkitError("cannot write here: a file is in the way", path=anchor, key=key)
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise ExpertkitError("cannot write here: permission denied", path=anchor, key=key)


def check_output_file(path: str | Path, *, key: str, force: bool = False, protect: Iterable[Path] = ()) -> Path:
    """Check, before any work, that a file can be written at ``path`` without losing anything.

    Refused: a folder; an existing file unless ``force``; a file inside one of the ``protect`` folders
    (say, the expert being packaged), even with ``force``; a place that cannot be written.
    """
    p = Path(path)
    resolved = p.resolve()
    for folder in protect:
        if resolved.is_relative_to(Path(folder).resolve()):
            raise ExpertkitError(f"lies inside {folder}, which this command reads; write it elsewhere", path=p,
                                 key=key)
    if p.is_dir():
        raise ExpertkitError("is a directory; give a file name", path=p, key=key)
    if p.exists() or p.is_symlink():
        if not force:
            raise ExpertkitError("already exists; pass --force to overwrite it", path=p, key=key)
        if not os.access(p.parent, os.W_OK | os.X_OK):
            raise ExpertkitError("cannot write here: permission denied", path=p.parent, key=key)
    _check_writable_parent(p, key)
    return p


def check_output_dir(path: str | Path, *, key: str, ours: Iterable[str] = ()) -> Path:
    """Check, before any work, that the folder ``path`` may be written: absent, empty, or holding one of the
    ``ours`` marker files (our own earlier output, which is replaced); never someone else's folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ExpertkitError("is a file, expected a folder", path=p, key=key)
    if p.is_dir():
        try:
            children = sorted(c.name for c in p.iterdir())
        except PermissionError:
            raise ExpertkitError("cannot read this folder: permission denied", path=p, key=key) from None
        if children and not any((p / m).exists() for m in ours):
            shown = ", ".join(children[:3]) + (f" and {len(children) - 3} more" if len(children) > 3 else "")
            raise ExpertkitError(f"is not empty ({shown}) and holds no earlier output of this command; "
                                 "choose another folder", path=p, key=key)
        if not os.access(p, os.W_OK | os.X_OK):
            raise ExpertkitError("cannot write in this folder: permission denied", path=p, key=key)
        return p
    _check_writable_parent(p, key)
    return p


def usual_dir_mode(path: str | Path) -> None:
    """Give a folder made by ``mkdtemp`` (0700) the usual umask-respecting permissions."""
    os.chmod(path, 0o777 & ~_umask())


def usual_file_mode(fd: int) -> None:
    """Give a file made by ``mkstemp`` (0600) the usual umask-respecting permissions."""
    os.fchmod(fd, 0o666 & ~_umask())
