"""Settings declared once: the manifest's ``training``, ``decoding``, ``evaluation`` (and ``data``) models.

The pydantic models of :mod:`expertkit.core.manifest` are the only declaration of a setting: its default, its
documentation and its checks. Everything else layers values on top of them, in this order:

1. the manifest (``expert.yaml``);
2. a named **profile**, a dict of overrides (:data:`PROFILES`; ``tiny``, the tiny base's recipe);
3. the command line: its named options (``--lr``) and ``--set SECTION.KEY=VALUE`` for any setting.

:func:`resolve_settings` applies 2 and 3 to 1 and validates the result with the same models, so that a bad
value given on the command line fails as it would in the manifest, naming the option the user typed.
:func:`diff_settings` compares two sets of resolved settings field by field (a resumed run against its
record).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError

from expertkit.core.errors import ExpertkitError
from expertkit.core.manifest import DataSpec, DecodingSpec, EvaluationSpec, Manifest, TrainingSpec
from expertkit.core.options import check_number

#: The manifest sections that hold settings, and their models.
SECTIONS: dict[str, type[BaseModel]] = {"training": TrainingSpec, "decoding": DecodingSpec,
                                        "evaluation": EvaluationSpec, "data": DataSpec}

#: Named profiles: overrides applied on top of the manifest (and under the command line's).
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    #: The tiny base (``--base tiny`` or a folder built by ``expertkit base tiny``): about 2.5 minutes on
    #: 2 CPU cores (see :mod:`expertkit.training.train` for how it was measured).
    "tiny": {
        "training": {
            "method": "full",
            "learning_rate": 3e-3,
            "batch_size": 16,
            "steps": 1200,
            "save_every": 100,
            "lr_scheduler": "cosine",
            "warmup_steps": 20,
            "question_noise": 0.25,
            "max_tokens_per_batch": None,  # padding-free, about batch_size examples' tokens
        },
    },
}

#: A setting that, given alone, clears another one it takes precedence over (``--epochs`` counts the steps).
CLEARS: dict[str, str] = {"training.epochs": "training.steps"}


def setting_names(sections: Iterable[str] = SECTIONS) -> list[str]:
    """Every ``SECTION.KEY`` the command line's ``--set`` accepts."""
    return [f"{section}.{name}" for section in sections for name in SECTIONS[section].model_fields]


def describe(key: str, note: str = "") -> str:
    """A setting's help text for the command line, from its one declaration: the model's description, then
    ``note`` and where its default comes from."""
    section, name = _split(key, SECTIONS, key)
    text = SECTIONS[section].model_fields[name].description or ""
    sentences = ". ".join(part.strip().rstrip(".") for part in (text, note) if part.strip())
    return f"{sentences} (default: the manifest's {key})."


def _split(key: str, sections: Iterable[str], option: str) -> tuple[str, str]:
    allowed = list(sections)
    section, _, name = key.partition(".")
    if section in allowed and name in SECTIONS[section].model_fields:
        return section, name
    takes = ", ".join(s + ".*" for s in allowed)
    if section in SECTIONS and name in SECTIONS[section].model_fields:
        raise ExpertkitError(f"{key!r} is not a setting this command takes (it takes only {takes})", key=option)
    if section in allowed:  # a close name in the section given, else the section's names
        fields = list(SECTIONS[section].model_fields)
        close = [f"{section}.{n}" for n in difflib.get_close_matches(name, fields, n=1)]
        known = f" ({section}.*: {', '.join(fields)})"
    else:
        close = difflib.get_close_matches(key, setting_names(allowed), n=1)
        known = f" (settings: {takes})"
    hint = f"; did you mean {close[0]}?" if close else known
    raise ExpertkitError(f"unknown setting {key!r}{hint}", key=option)


def check_sections(overrides: Mapping[str, Any], sections: Iterable[str], option: str = "--set") -> None:
    """Refuse a key outside ``sections`` (a command's ``--set`` takes the settings it uses)."""
    sections = list(sections)
    for key in overrides:
        _split(key, sections, option)


def parse_set(items: Iterable[str], sections: Iterable[str] = SECTIONS, option: str = "--set") -> dict[str, Any]:
    """``["training.learning_rate=2e-4", ...]`` as ``{"training.learning_rate": 2e-4}``; values are read as YAML
    scalars or flow collections (``null`` unsets, ``[q_proj, v_proj]`` is a list)."""
    sections = list(sections)
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ExpertkitError(f"expects SECTION.KEY=VALUE, got {item!r}", key=option)
        _split(key, sections, option)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        parsed[key] = value
    return parsed


def _bounds(model: type[BaseModel], name: str) -> dict[str, float]:
    bounds: dict[str, float] = {}
    for meta in model.model_fields[name].metadata:
        for cls, word in ((annotated_types.Ge, "ge"), (annotated_types.Gt, "gt"), (annotated_types.Le, "le"),
                          (annotated_types.Lt, "lt")):
            if isinstance(meta, cls):
                bounds[word] = getattr(meta, word)
    return bounds


def check_setting(key: str, value: Any, option: str | None = None) -> None:
    """A value given for ``SECTION.KEY`` checked by the model's own declaration: a number finite and in range
    (with the message of :func:`~expertkit.core.options.check_number`), anything else valid; the message names
    ``option`` (default: the key)."""
    option = option or key
    section, name = _split(key, SECTIONS, option)
    if isinstance(value, int | float) and not isinstance(value, bool):
        check_number(value, option, **_bounds(SECTIONS[section], name))
    try:
        SECTIONS[section].model_validate({name: value})
    except ValidationError as exc:
        raise ExpertkitError(_message(exc.errors()[0]), key=option) from None


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", "")).replace("'", "")
        return f"unknown value {err.get('input')!r} ({expected})"
    if err["type"] == "extra_forbidden":
        return "unknown key"
    return str(err["msg"])


def resolve_settings(manifest: Manifest, profile: str | None = None, overrides: Mapping[str, Any] | None = None,
                     *, names: Mapping[str, str] | None = None) -> Manifest:
    """The manifest with ``profile``'s overrides, then ``overrides`` (``SECTION.KEY -> value``), applied and
    validated by the manifest's own models.

    ``names`` maps a key to the option the user typed (``training.learning_rate -> --lr``), for the message of
    a refused value; without it the message names the key. A key of :data:`CLEARS` given without the key it
    clears unsets that one (``--epochs 2`` over a profile's ``steps``).
    """
    if profile is not None and profile not in PROFILES:
        raise ExpertkitError(f"unknown profile {profile!r} ({', '.join(PROFILES)})", key="--profile")
    names = names or {}
    given = dict(overrides or {})
    for key, value in given.items():
        check_setting(key, value, names.get(key, key))
    for key, cleared in CLEARS.items():
        if given.get(key) is not None and cleared not in given:
            given[cleared] = None
    data = {section: getattr(manifest, section).model_dump() for section in SECTIONS}
    layers: list[tuple[Mapping[str, Any], str | None]] = []
    if profile is not None:
        layers.append(({f"{s}.{k}": v for s, values in PROFILES[profile].items() for k, v in values.items()},
                       f"profile {profile}"))
    layers.append((given, None))
    for layer, origin in layers:
        for key, value in layer.items():
            section, name = _split(key, SECTIONS, names.get(key, key))
            data[section][name] = value
        for section in SECTIONS:
            try:
                SECTIONS[section].model_validate(data[section])
            except ValidationError as exc:
                err = exc.errors()[0]
                head = f"{section}.{err['loc'][0]}" if err["loc"] else section
                where = names.get(head, head) if origin is None else f"{origin}: {head}"
                raise ExpertkitError(_message(err), key=where) from None
    return manifest.model_copy(update={section: SECTIONS[section].model_validate(data[section])
                                       for section in SECTIONS})


def diff_settings(recorded: Mapping[str, Any], requested: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``key -> (recorded, requested)`` for every key whose values differ (a key missing on one side counts
    as ``None`` there)."""
    return {key: (recorded.get(key), requested.get(key)) for key in sorted({*recorded, *requested})
            if recorded.get(key) != requested.get(key)}
