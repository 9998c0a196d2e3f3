"""Numeric options checked up front, before anything is loaded or written: one rule, one message shape.

``check_number(value, "--lr", gt=0)`` refuses ``nan``, ``inf``, and values out of range with
``--lr: must be ...``, naming the option the user typed (not the field it ends up in).
"""

from __future__ import annotations

import math

from expertkit.core.errors import ExpertkitError

#: Seeds feed numpy and torch generators, which take 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1
#: Counts (steps, records, cases, batch sizes) past this overflow the libraries' integers.
MAX_COUNT = 10**9


def check_number(value: float | None, option: str, *, ge: float | None = None, gt: float | None = None,
                 lt: float | None = None, le: float | None = None) -> None:
    """Refuse a non-finite ``value`` or one outside the given bounds; ``None`` (not given) passes."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpertkitError(f"must be a number, got {value!r}", key=option)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpertkitError(f"must be a finite number, got {value}", key=option)
    if ge is not None and value < ge:
        raise ExpertkitError(f"must be at least {ge:g}, got {value:g}", key=option)
    if gt is not None and value <= gt:
        raise ExpertkitError(f"must be greater than {gt:g}, got {value:g}", key=option)
    if lt is not None and value >= lt:
        raise ExpertkitError(f"must be less than {lt:g}, got {value:g}", key=option)
    if le is not None and value > le:
        raise ExpertkitError(f"must be at most {le:g}, got {value:g}", key=option)


def check_count(value: int | None, option: str) -> None:
    """A count of steps, records, cases: a whole number, at least 1 (and not absurdly large)."""
    check_number(value, option, ge=1, le=MAX_COUNT)


def check_seed(value: int | None, option: str = "--seed") -> None:
    check_number(value, option, ge=0, le=MAX_SEED)
