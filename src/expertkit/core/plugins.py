"""Plug-ins installed by other packages: the entry points of one group (``expertkit.kinds``,
``expertkit.generators``), listed and loaded with one rule and one message shape.

A registry (kinds, generators) owns what a plug-in must be; this module only finds and imports it, and a
plug-in that fails to import is reported in one line naming its entry point, never a traceback.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from expertkit.core.errors import ExpertkitError


def plugin_entry_points(group: str) -> dict[str, EntryPoint]:
    """The installed entry points of ``group`` by name (the first one where two packages offer a name)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def plugin_names(group: str) -> list[str]:
    return sorted(plugin_entry_points(group))


def load_plugin(group: str, name: str, *, what: str, key: str, path: Path | None = None) -> tuple[Any, str] | None:
    """``(object, entry point value)`` of the plug-in ``name`` of ``group``; None where none is installed.

    ``what`` names the plug-in in the message (``"output kind"``, ``"generator"``), ``key`` and ``path`` the
    setting that asked for it."""
    ep = plugin_entry_points(group).get(name)
    if ep is None:
        return None
    try:
        return ep.load(), ep.value
    except Exception as exc:  # a broken plug-in is its author's to fix: say which one, in one line
        raise ExpertkitError(f"{what} {name!r} (entry point {ep.value!r} in group {group}) cannot be loaded: "
                             f"{type(exc).__name__}: {exc}", path=path, key=key) from None
