"""What the command line (and ``quickstart``, its orchestrator) prints with: the library's log records as
console lines on stderr, and progress bars. The library itself never prints (:mod:`expertkit.core.log`)."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from expertkit.core.log import logger

if TYPE_CHECKING:
    from expertkit.evaluation.compare import CompareResult

#: Progress and warnings go to stderr; stdout is for results (tables, JSON, answers).
stderr = Console(stderr=True)
stdout = Console(soft_wrap=True)


class ConsoleHandler(logging.Handler):
    """Prints each ``expertkit`` record as one console line, with its style and markup."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stderr.print(record.getMessage(), style=getattr(record, "style", None),
                         markup=getattr(record, "markup", False), highlight=getattr(record, "highlight", False))
        except Exception:  # a broken stderr must not stop the work
            self.handleError(record)


def print_messages() -> None:
    """Print the library's progress and warnings on stderr (once, however often called)."""
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        logger.addHandler(ConsoleHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


class Bars:
    """Progress bars on stderr, for the library functions that take a ``progress`` (``compare_run``): a context
    manager, started by its first task (an error before any leaves no blank line behind)."""

    def __init__(self) -> None:
        self._progress: Progress | None = None

    def add_task(self, description: str, *, total: float | None) -> TaskID:
        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=stderr, transient=False)
            self._progress.start()
        return self._progress.add_task(description, total=total)

    def advance(self, task_id: TaskID, advance: float) -> None:
        if self._progress is not None:
            self._progress.advance(task_id, advance)

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def progress() -> Bars:
    """Progress bars for one command (``with progress() as bars: compare_run(..., progress=bars)``)."""
    return Bars()


def print_compared(result: CompareResult, *, as_json: bool = False) -> None:
    """A comparison's summary tables and where its reports are; ``as_json``: the tables on stderr and the
    report, as ``compare.json`` holds it, on stdout."""
    from expertkit.evaluation.report import print_summary

    if as_json:
        print_summary(result.report, stderr)
        sys.stdout.write(json.dumps(result.report, indent=2, ensure_ascii=False) + "\n")
        return
    print_summary(result.report, stdout)
    stdout.print(f"reports: {', '.join(str(p) for p in result.paths.values())}")
