"""Output kinds: one plug-in class per ``output.kind`` of the manifest, registered on definition.

An :class:`OutputKind` owns everything that varies with what an expert answers: validating an answer
for a prompt's fields, equivalence, execution match, component match and grounding (its
:attr:`~OutputKind.matcher_class`), finding the answer in a raw model output, the ``schema`` grammar
for constrained decoding, the example answer and resource notes ``expertkit new`` writes, the roles
its contract fields play, and the checks of the manifest's ``output`` section. Nothing outside this
package branches on a kind's name (sqlglot's dialects are the model: the core asks the class).

A subclass that sets :attr:`~OutputKind.name` registers itself. The built-in kinds (``json``,
``elastic_dsl``, ``sql``, in ``kinds/json/``, ``kinds/elastic/``, ``kinds/sql/``) are imported on
their first lookup; third-party kinds come from the entry-point group :data:`ENTRY_POINT_GROUP`
(``name = "package.module:KindClass"``), loaded on first lookup too. See ``docs/kinds.md``.

Field roles: a kind names the roles it reads (:class:`Role`: the index, the schema, the dialect); a
contract field takes a role with ``role: NAME`` in ``expert.yaml``, else the role falls to the field
named like the role's ``default`` (so manifests written before roles keep working). The kind reads
values by role (:meth:`OutputKind.value`), never by a field name.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from expertkit.core.errors import ExpertkitError
from expertkit.core.manifest import line_of
from expertkit.core.plugins import load_plugin, plugin_names
from expertkit.kinds.correctness import ErrorKind, error_taxonomy
from expertkit.kinds.validation import ExecutionOutcome, ValidationResult

if TYPE_CHECKING:
    from expertkit.core.contract import FieldSpec
    from expertkit.core.manifest import Manifest, OutputSpec
    from expertkit.kinds.correctness import Matcher

#: The entry-point group third-party kinds register under (the entry point's name is the kind's name).
ENTRY_POINT_GROUP = "expertkit.kinds"
#: The built-in kinds and the modules that define them (imported on first lookup).
BUILTIN_KINDS: dict[str, str] = {
    "json": "expertkit.kinds.json.validator",
    "elastic_dsl": "expertkit.kinds.elastic.validator",
    "sql": "expertkit.kinds.sql.validator",
}
#: The kind ``expertkit new`` scaffolds when none is given.
DEFAULT_KIND = "json"

_REGISTRY: dict[str, type[OutputKind]] = {}
_LOCK = threading.RLock()


@dataclass(frozen=True)
class Role:
    """A part of the prompt a kind reads from one contract field (``role: NAME`` in ``expert.yaml``)."""

    name: str
    #: The field that plays the role when no field declares it.
    default: str
    description: str = ""
    #: An answer cannot be judged without this field (lint then leaves the answer unvalidated).
    needed: bool = False
    #: The field's value in the example record ``expertkit new`` writes (one the kind's example answer fits).
    example: str = ""


class OutputKind(ABC):
    """Base of every output kind, bound to one expert's resources and contract fields.

    ``fields`` passed to the methods are the prompt's canonical contract fields (name → value).
    """

    #: The manifest's ``output.kind``; a subclass that sets it is registered under it.
    name: ClassVar[str]
    #: The roles the kind reads from the contract's fields.
    roles: ClassVar[tuple[Role, ...]] = ()
    #: A gold answer of the right shape (``expertkit new`` writes it as the eval file's example record).
    example_answer: ClassVar[str] = ""
    #: What ``expertkit new``'s README says about the resources this kind's validator uses.
    resource_notes: ClassVar[str] = ""
    #: Compares answers as parts and checks their literals (``None``: the kind has no component match).
    matcher_class: ClassVar[type[Matcher] | None] = None
    #: Raw outputs starting with one of these are taken as the answer as they stand (a direct answer).
    direct_openers: ClassVar[tuple[str, ...]] = ()
    #: Text after a found answer that is not prose stays in the answer, for the validator to reject.
    keeps_trailing_text: ClassVar[bool] = False
    #: The error kinds this kind adds to the generic ones (:func:`~expertkit.kinds.correctness.error_taxonomy`),
    #: e.g. what its matcher's :attr:`~expertkit.kinds.correctness.Matcher.broken` names.
    errors: ClassVar[tuple[ErrorKind, ...]] = ()
    #: The summary metrics (keys of :func:`~expertkit.kinds.scoring.summarize`) the comparison's reports show as
    #: columns for this kind besides the generic ones (correctness, validity, reasoning, speed).
    report_columns: ClassVar[tuple[str, ...]] = ()
    #: The routing fields ``expertkit new`` starts a contract with, as (name, description): each takes one
    #: allowed value (``--field NAME=VALUE``) and ``route: true``. The role fields follow them.
    scaffold_routing: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The fields that route ``serve``'s ``model: "auto"`` when no contract field says ``route`` (manifests
    #: written before ``route`` existed).
    default_routing: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            with _LOCK:
                _REGISTRY[cls.name] = cls

    def __init__(self, expert_root: str | Path, output: OutputSpec, fields: Sequence[FieldSpec] = ()) -> None:
        self.expert_root = Path(expert_root)
        self.output = output
        declared = {f.role: f.name for f in fields if f.role}
        #: Role name → the contract field that plays it.
        self.role_fields: dict[str, str] = {r.name: declared.get(r.name, r.default) for r in self.roles}

    @classmethod
    def error_kinds(cls) -> tuple[ErrorKind, ...]:
        """This kind's error taxonomy, in report order: the generic error kinds and its own :attr:`errors`."""
        return error_taxonomy(cls.errors)

    # ------------------------------------------------------------------ resources and roles
    def resource(self, name: str) -> Path | None:
        """The path of the ``output.resources`` entry ``name`` (relative to the expert), or ``None``."""
        rel = self.output.resources.get(name)
        return (self.expert_root / rel) if rel else None

    @classmethod
    def default_field(cls, role: str) -> str:
        """The field that plays ``role`` when no contract field declares it."""
        return next(r.default for r in cls.roles if r.name == role)

    def field_name(self, role: str) -> str:
        """The contract field that plays ``role``."""
        return self.role_fields[role]

    def value(self, fields: Mapping[str, str], role: str) -> str | None:
        """The prompt's value of the field playing ``role`` (``None`` when absent)."""
        return fields.get(self.role_fields[role])

    @property
    def needs(self) -> tuple[str, ...]:
        """Contract fields without which an answer cannot be judged (lint validates an answer whenever these
        are present and usable, whatever findings the record's other fields have)."""
        return tuple(self.role_fields[r.name] for r in self.roles if r.needed)

    # ------------------------------------------------------------------ judging
    @abstractmethod
    def validate(self, output: str, fields: Mapping[str, str]) -> ValidationResult:
        """Is ``output`` a valid answer for a prompt with these fields?"""

    @abstractmethod
    def equivalent(self, a: str, b: str, fields: Mapping[str, str]) -> bool:
        """Do two answers mean the same (canonical forms equal)?"""

    #: Kinds that run answers: seeded variants of each database execution match also runs on (``expertkit
    #: score --variants``); ``None`` for kinds without.
    variants: int | None = None

    def execution_match(self, output: str, gold: str, fields: Mapping[str, str]) -> bool | None:
        """Do both answers give the same result when run? ``None`` where the kind cannot run."""
        return None

    def execution_outcome(self, output: str, gold: str, fields: Mapping[str, str],
                          variants: int | None = None) -> ExecutionOutcome | None:
        """Execution match and which database decided it; ``None`` for a kind that does not run answers."""
        return None

    @cached_property
    def matcher(self) -> Matcher | None:
        """Component match and grounding for this kind, bound to the same resources (``None`` without)."""
        return self.matcher_class(self) if self.matcher_class is not None else None

    def register_case(self, record: Mapping[str, Any], folder: Path) -> None:
        """Make resources a cases-file record names usable (``expertkit score``); ``folder`` holds the file.
        Nothing by default."""
        return None

    # ------------------------------------------------------------------ answers in raw output
    @classmethod
    @abstractmethod
    def find_answer(cls, text: str) -> tuple[int, str] | None:
        """Start offset and text of the first complete answer in ``text``, or ``None``."""

    # ------------------------------------------------------------------ constrained decoding
    def schema_grammar(self, fields: Mapping[str, str]) -> str | None:
        """The EBNF (xgrammar) an answer for these fields must follow under ``--constrain schema`` (``None``:
        any JSON). Kinds without one do not override it (:attr:`has_schema_grammar`)."""
        raise NotImplementedError

    @classmethod
    def has_schema_grammar(cls) -> bool:
        return cls.schema_grammar is not OutputKind.schema_grammar

    # ------------------------------------------------------------------ the manifest
    @classmethod
    def manifest_problems(cls, manifest: Manifest) -> list[tuple[str, str]]:
        """``(key, message)`` for each problem of the manifest's ``output`` section and field roles."""
        problems: list[tuple[str, str]] = []
        known = [r.name for r in cls.roles]
        seen: dict[str, str] = {}
        for i, spec in enumerate(manifest.contract.fields):
            role = getattr(spec, "role", None)
            if role is None:
                continue
            key = f"contract.fields.{i}.role"
            if role not in known:
                roles = ", ".join(known) or "none"
                problems.append((key, f"unknown role {role!r} for output kind {cls.name!r} (its roles: {roles})"))
            elif role in seen:
                problems.append((key, f"role {role!r} is already played by field {seen[role]!r}"))
            else:
                seen[role] = spec.name
        return problems

    @classmethod
    def scaffold_fields(cls, values: Mapping[str, str]) -> list[dict[str, Any]]:
        """The contract fields ``expertkit new`` starts with: the routing fields (:attr:`scaffold_routing`, each
        allowed the one value ``values`` gives it by field name), then a field for each role no routing field
        plays (named like the role's default, free text, required when the role is needed)."""
        fields: list[dict[str, Any]] = []
        for name, description in cls.scaffold_routing:
            if not values.get(name):
                raise ExpertkitError(f"output kind {cls.name!r} starts a contract with the routing field {name!r}: "
                                     f"give its value with --field {name}=VALUE", key="--field")
            fields.append({"name": name, "values": [values[name]], "route": True, "description": description})
        taken = {name for name, _ in cls.scaffold_routing}
        for role in cls.roles:
            if role.default not in taken:
                fields.append({"name": role.default, "role": role.name, "required": role.needed,
                               "description": role.description or f"The {role.name}."})
        return fields

    @classmethod
    def scaffold_example(cls, values: Mapping[str, str]) -> dict[str, str]:
        """The starting fields' values in the example record ``expertkit new`` writes: the given ones, else the
        role's :attr:`Role.example`, else ``example NAME``."""
        examples = {r.default: r.example for r in cls.roles}
        return {f["name"]: values.get(f["name"]) or examples.get(f["name"]) or f"example {f['name']}"
                for f in cls.scaffold_fields(values)}


def kind_names() -> list[str]:
    """The kinds a manifest may name: built-in, registered, and offered by installed entry points."""
    return sorted({*BUILTIN_KINDS, *_REGISTRY, *plugin_names(ENTRY_POINT_GROUP)})


def _load(name: str) -> None:
    module = BUILTIN_KINDS.get(name)
    if module is not None:
        importlib.import_module(module)
        return
    found = load_plugin(ENTRY_POINT_GROUP, name, what="output kind", key="output.kind")
    if found is None:
        return
    loaded, value = found
    if not (isinstance(loaded, type) and issubclass(loaded, OutputKind)):
        what = f"class {loaded.__qualname__}" if isinstance(loaded, type) else f"a {type(loaded).__name__}"
        raise ExpertkitError(f"output kind {name!r}: entry point {value!r} in group {ENTRY_POINT_GROUP} loads "
                             f"{what}, not a subclass of expertkit.kinds.OutputKind", key="output.kind")
    if name not in _REGISTRY:
        _REGISTRY[name] = loaded


def kind_class(name: str) -> type[OutputKind]:
    """The kind registered as ``name`` (importing a built-in or loading an entry point on first lookup)."""
    with _LOCK:
        if name not in _REGISTRY:
            _load(name)
        found = _REGISTRY.get(name)
    if found is None:
        raise ExpertkitError(f"unknown output kind {name!r} (known: {', '.join(kind_names())})", key="output.kind")
    return found


def check_manifest(manifest: Manifest, text: str, path: str | Path) -> None:
    """The manifest's output kind exists (a plug-in's loaded on first lookup) and accepts the manifest (its
    ``output`` section, its fields' roles); else one error naming ``path``, the line in ``text`` and the key.
    The core parses ``output.kind`` as a plain name: this is where it is checked."""
    try:
        kind = kind_class(manifest.output.kind)
    except ExpertkitError as exc:
        raise ExpertkitError(exc.message, path=path, line=line_of(text, "output.kind"), key="output.kind") from None
    problems = kind.manifest_problems(manifest)
    if problems:
        key, msg = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ExpertkitError(msg + more, path=path, line=line_of(text, key), key=key)


def bind_kind(expert_root: str | Path, output: OutputSpec, fields: Sequence[FieldSpec] = ()) -> OutputKind:
    """The kind of ``output.kind``, bound to the expert's resources and the roles of its contract ``fields``."""
    return kind_class(output.kind)(Path(expert_root), output, fields)


__all__ = ["BUILTIN_KINDS", "DEFAULT_KIND", "ENTRY_POINT_GROUP", "OutputKind", "Role", "bind_kind", "check_manifest",
           "kind_class", "kind_names"]
