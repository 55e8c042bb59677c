"""Extraction rules are data: YAML files in `config/`, validated before any output is touched.

Each rule file is checked against a strict pydantic model (unknown keys are errors), every
`pattern` is compiled with the `regex` module, and every problem in every file is reported at
once as `RuleFileError`, naming the file, the rule id and the reason. `rules_version` is a hash of
the rule files' bytes, so every extracted row can say which rules produced it.

A rule's `examples` must each be matched by its pattern and its `counter_examples` must not; the
test suite runs them (tests/test_rules.py), and `RuleSet.check_examples()` does the same on demand.
A pattern must also define the named groups the extraction reads from its matches
(`RuleFile.required_groups`, `Rule.required_groups`): a group renamed in an edit is refused with
the rule's id, instead of failing every document that the rule matches.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Optional, Sequence

import regex
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from pipeline.prefilter import quick_check


class RuleFileError(Exception):
    """One or more rule files are invalid. `problems` lists (file, rule_id, reason)."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        lines = [f"{f}: rule {rid!r}: {reason}" for f, rid, reason in problems]
        super().__init__("invalid rules:\n  " + "\n  ".join(lines))


class Rule(BaseModel):
    """A named pattern with the strings it must and must not match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    description: str = ""
    pattern: str
    examples: list[str] = []
    counter_examples: list[str] = []

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            regex.compile(v, regex.VERSION1)
        except regex.error as e:
            raise ValueError(f"pattern does not compile: {e}") from None
        return v

    @cached_property
    def rx(self) -> "regex.Pattern[str]":
        return regex.compile(self.pattern, regex.VERSION1)

    @cached_property
    def quick_check(self):
        """A cheap search every text the pattern matches in passes, or None (prefilter.quick_check)."""
        return quick_check(self.pattern)

    def example_failures(self) -> list[str]:
        out = [f"example not matched: {e!r}" for e in self.examples if not self.rx.search(e)]
        out += [f"counter-example matched: {c!r}" for c in self.counter_examples if self.rx.search(c)]
        return out

    def required_groups(self) -> tuple[str, ...]:
        """Named groups this rule's own settings make the extraction read (see RuleFile)."""
        return ()


class RuleFile(BaseModel):
    """Base of every rule file: a list of rules with unique ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    filename: ClassVar[str] = ""
    # Field name → the named groups the extraction reads from a match of each rule in that field.
    required_groups: ClassVar[dict[str, tuple[str, ...]]] = {}

    version: int = 1
    description: str = ""

    def _rules_by_field(self) -> list[tuple[str, Rule]]:
        out: list[tuple[str, Rule]] = []
        for name in type(self).model_fields:
            v = getattr(self, name)
            if isinstance(v, Rule):
                out.append((name, v))
            elif isinstance(v, (list, tuple)):
                out.extend((name, x) for x in v if isinstance(x, Rule))
        return out

    def all_rules(self) -> list[Rule]:
        return [r for _, r in self._rules_by_field()]

    def group_failures(self) -> list[tuple[str, str]]:
        """(rule id, reason) for each rule whose pattern lacks a named group the extraction reads."""
        out = []
        for name, r in self._rules_by_field():
            need = dict.fromkeys(self.required_groups.get(name, ()) + r.required_groups())
            missing = [g for g in need if g not in r.rx.groupindex]
            if missing:
                out.append((r.id, f"pattern must define the named group{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(repr(g) for g in missing)}: the extraction reads "
                                  f"{'them' if len(missing) > 1 else 'it'} from every match"))
        return out

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: set[str] = set()
        for r in self.all_rules():
            if r.id in seen:
                raise ValueError(f"duplicate rule id {r.id!r}")
            seen.add(r.id)
        return self


def _problem_rule_id(data, loc: tuple) -> str:
    """Find the id of the rule an error location points into, for the message."""
    node = data
    rid = "-"
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "id" in node:
            rid = str(node["id"])
    return rid


def load_rule_file(path: Path, model: type[RuleFile],
                   content: Optional[bytes] = None) -> tuple[Optional[RuleFile], list[tuple[str, str, str]]]:
    """The rule file at `path` (its bytes, when already read, in `content`), validated."""
    try:
        data = yaml.safe_load((path.read_bytes() if content is None else content).decode("utf-8"))
    except FileNotFoundError:
        return None, [(str(path), "-", "file is missing")]
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        return None, [(str(path), "-", f"not valid YAML: {e}")]
    if not isinstance(data, dict):
        return None, [(str(path), "-", "top level must be a mapping")]
    try:
        obj = model.model_validate(data)
    except ValidationError as e:
        probs = []
        for err in e.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(x) for x in loc)
            probs.append((str(path), _problem_rule_id(data, loc), f"{where}: {err['msg']}"))
        return None, probs
    probs = [(str(path), r.id, f) for r in obj.all_rules() for f in r.example_failures()]
    probs += [(str(path), rid, reason) for rid, reason in obj.group_failures()]
    return (None if probs else obj), probs


@dataclass(frozen=True)
class RuleSet:
    config_dir: Path
    files: dict[str, RuleFile]
    version: str  # rules_version: sha256 of the rule files, first 16 hex digits
    file_versions: dict[str, str]  # rule file name → sha256 of its bytes, first 16 hex digits

    def __getitem__(self, filename: str) -> RuleFile:
        return self.files[filename]


def rule_versions(contents: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    """(rules_version, each file's own hash) of the rule files' bytes, by file name, in the
    order they were loaded. The run compares the per-file hashes with the last run's to
    re-extract only the tables that depend on the files that changed (pipeline/stages/extract.py)."""
    whole = hashlib.sha256()
    per_file = {}
    for name, data in contents.items():
        whole.update(name.encode())
        whole.update(data)
        per_file[name] = hashlib.sha256(data).hexdigest()[:16]
    return whole.hexdigest()[:16], per_file


def load_rule_files(config_dir: Path, models: Sequence[type[RuleFile]]) -> RuleSet:
    """Load and validate the rule file of each of `models` (each stage owns the schema of its own
    file; the list is assembled in pipeline/stages/extract.py); raise RuleFileError listing every
    problem."""
    config_dir = Path(config_dir)
    files: dict[str, RuleFile] = {}
    contents: dict[str, bytes] = {}  # read once: the bytes validated are the bytes versioned
    problems: list[tuple[str, str, str]] = []
    for model in models:
        path = config_dir / model.filename
        try:
            contents[model.filename] = path.read_bytes()
        except FileNotFoundError:
            problems.append((str(path), "-", "file is missing"))
            continue
        obj, probs = load_rule_file(path, model, contents[model.filename])
        problems += probs
        if obj is not None:
            files[model.filename] = obj
    if problems:
        raise RuleFileError(problems)
    version, file_versions = rule_versions(contents)
    return RuleSet(config_dir=config_dir, files=files, version=version, file_versions=file_versions)
