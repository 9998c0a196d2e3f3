"""The library's progress and warning lines: records of the ``expertkit`` logger, never console output.

A library function with something to say logs it (:func:`say`, :func:`warn`); whoever presents it — the
command line, ``quickstart`` — prints those records (:func:`expertkit.console.print_messages`). Used as a
library, expertkit is silent but for its warnings, which Python's last-resort handler writes to stderr
unless the application configures ``logging`` otherwise.

A record may carry ``style`` (a rich style for the whole line), ``markup`` (whether the text holds rich
markup such as ``[bold]``; plain otherwise) and ``highlight`` (rich's highlighting of numbers and paths).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("expertkit")


def _main_process() -> bool:
    """Under ``accelerate launch`` only the main process speaks (every process runs the same code)."""
    return int(os.environ.get("RANK", "0")) == 0


def say(message: str, *, markup: bool = False, highlight: bool = False, style: str | None = None) -> None:
    """A progress line."""
    if _main_process():
        logger.info(message, extra={"style": style, "markup": markup, "highlight": highlight})


def warn(message: str) -> None:
    """A warning line (shown in yellow by the command line)."""
    if _main_process():
        logger.warning(message, extra={"style": "yellow", "markup": False, "highlight": False})
