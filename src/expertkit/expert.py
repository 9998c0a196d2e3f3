"""``Expert``: a manifest, its prompt contract, its data and its output kind, loaded from a folder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.core import manifest as core_manifest
from expertkit.core.contract import FieldSpec, PromptContract
from expertkit.core.errors import ExpertkitError
from expertkit.core.fileio import read_text
from expertkit.core.findings import Finding
from expertkit.core.manifest import MANIFEST_NAME, Manifest, manifest_path
from expertkit.core.settings import SECTIONS, check_sections, resolve_settings
from expertkit.kinds import OutputKind, bind_kind, check_manifest
from expertkit.kinds.validation import ValidationResult

if TYPE_CHECKING:
    from expertkit.kinds.correctness import Matcher
    from expertkit.kinds.scoring import Score

#: Most bytes of training data read for its field values (``unseen_value`` warnings in check-prompt and serve).
MAX_TRAINING_VALUES_BYTES = 256 * 1024 * 1024


def parse_manifest(text: str, path: str | Path = MANIFEST_NAME) -> Manifest:
    """Validate manifest text, its output kind included (:func:`expertkit.kinds.check_manifest`); errors name
    the file, line and key."""
    manifest = core_manifest.parse_manifest(text, path)
    check_manifest(manifest, text, path)
    return manifest


def load_manifest(expert_dir: str | Path) -> Manifest:
    """Read and validate ``EXPERT_DIR/expert.yaml`` (or a path to the yaml itself), its output kind included."""
    path = manifest_path(expert_dir)
    return parse_manifest(read_text(path), path)


class Expert:
    """One expert folder: ``expert.yaml`` plus its data and resources."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        self.contract = PromptContract(manifest.contract)

    @classmethod
    def load(cls, path: str | Path) -> Expert:
        p = Path(path)
        manifest = load_manifest(p)
        root = p if p.is_dir() else p.parent
        for key, rel in manifest.output.resources.items():
            if not (root / rel).exists():
                raise ExpertkitError(f"resource {rel!r} does not exist", path=root / "expert.yaml",
                                     key=f"output.resources.{key}")
        return cls(root, manifest)

    def with_settings(self, overrides: Mapping[str, Any], sections: Sequence[str] | None = None) -> Expert:
        """This expert with some of its manifest's settings overridden (``{"decoding.max_new_tokens": 64}``, the
        command line's ``--set``), validated as the manifest is; ``sections`` limits which may be."""
        check_sections(overrides, sections or list(SECTIONS))
        return Expert(self.root, resolve_settings(self.manifest, None, overrides))

    # ------------------------------------------------------------------ identity and paths
    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def fingerprint(self) -> str:
        return self.contract.fingerprint

    @property
    def train_path(self) -> Path:
        return self.root / self.manifest.data.train

    @property
    def eval_path(self) -> Path:
        return self.root / self.manifest.data.eval

    def paths_outside(self) -> list[str]:
        """Manifest keys whose paths lead out of the expert's folder (absolute, ``..``, or through a link): an
        installed package's must all stay inside it."""
        root = self.root.resolve()
        paths = {"data.train": self.manifest.data.train, "data.eval": self.manifest.data.eval,
                 **{f"output.resources.{k}": v for k, v in self.manifest.output.resources.items()}}
        return [key for key, rel in paths.items() if not (root / rel).resolve().is_relative_to(root)]

    @cached_property
    def kind(self) -> OutputKind:
        """The manifest's output kind, bound to the expert's resources and field roles: it validates, compares
        and finds answers (:mod:`expertkit.kinds`)."""
        return bind_kind(self.root, self.manifest.output, self.contract.fields)

    @property
    def validator(self) -> OutputKind:
        """The output kind, as the validator of answers (the same object as :attr:`kind`)."""
        return self.kind

    @property
    def matcher(self) -> Matcher | None:
        """Compares answers with gold ones as parts and checks their literals (``None`` for kinds without)."""
        return self.kind.matcher

    @property
    def routing_fields(self) -> list[FieldSpec]:
        """The fields whose values pick this expert for ``serve``'s ``model: "auto"``: those that say ``route:
        true``; when none says, the output kind's default routing fields that the contract has."""
        fields = self.contract.fields
        if any(f.route is not None for f in fields):
            return [f for f in fields if f.route]
        return [f for f in fields if f.name in self.kind.default_routing]

    # ------------------------------------------------------------------ the API of the brief
    def render(self, fields: Mapping[str, Any], question: str) -> str:
        """The exact generation prompt for these fields and question."""
        return self.contract.render_prompt(fields, question)

    def check_prompt(self, text: str) -> list[Finding]:
        """Findings for one raw inference prompt: contract drift, wrapper, thinking, unseen values."""
        from expertkit.authoring.lint import check_prompt_text

        return check_prompt_text(self, text)

    def lint(self, path: str | Path | None = None, *, tokenizer: Any | None = None) -> Any:
        """Lint a dataset file (default: the training set, with the eval set for ``eval_leak``)."""
        from expertkit.authoring.lint import lint_file

        target = Path(path) if path is not None else self.train_path
        return lint_file(self, target, eval_path=self.eval_path, tokenizer=tokenizer)

    def validate(self, output: str, fields: Mapping[str, Any]) -> ValidationResult:
        """Validate an output for a prompt with these fields (normalised through the contract)."""
        return self.kind.validate(output, self.contract.normalize(fields))

    def score(self, raw: str, fields: Mapping[str, Any], gold: str | None = None) -> Score:
        """Judge a raw model output as ``compare`` does (reasoning, text around the answer, validity, and
        with ``gold`` equivalence and execution match); fields are normalised through the contract."""
        from expertkit.kinds.scoring import score_output

        return score_output(self, raw, self.contract.normalize(fields), gold)

    # ------------------------------------------------------------------ training-data facts
    def training_field_values(self) -> dict[str, set[str]]:
        """Canonical values each field takes in the training data (empty if there is none)."""
        if not hasattr(self, "_train_values"):
            values: dict[str, set[str]] = {}
            if self.train_path.is_file():
                size = self.train_path.stat().st_size
                if size > MAX_TRAINING_VALUES_BYTES:
                    raise ExpertkitError(f"the training data is {size} bytes, over the {MAX_TRAINING_VALUES_BYTES}-"
                                         "byte limit for reading its field values", path=self.train_path)
                from expertkit.core.data import read_examples

                examples, _ = read_examples(self.train_path)
                counts: dict[str, Counter[str]] = {}
                for ex in examples:
                    for name, value in ex.fields:
                        if name not in self.contract.field_names or self.contract.field(name).multiline:
                            continue
                        canonical, _ = self.contract.canonical_value(self.contract.field(name), value)
                        if canonical is not None:
                            counts.setdefault(name, Counter())[canonical] += 1
                values = {k: set(v) for k, v in counts.items()}
            self._train_values = values
        return self._train_values
