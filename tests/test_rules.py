"""Rule files: every rule's examples and counter-examples, and refusal of broken files."""
from __future__ import annotations

import shutil

import pytest
from conftest import ROOT

from pipeline.rules import RuleFileError
from pipeline.stages.extract import RULE_FILES, load_rules

ALL_RULES = []
for _model in RULE_FILES:
    from pipeline.rules import load_rule_file

    _obj, _ = load_rule_file(ROOT / "config" / _model.filename, _model)
    if _obj is not None:
        ALL_RULES += [(_model.filename, r) for r in _obj.all_rules()]


@pytest.mark.parametrize("filename,rule", ALL_RULES, ids=[f"{f}:{r.id}" for f, r in ALL_RULES])
def test_rule_examples(filename, rule):
    for ex in rule.examples:
        assert rule.rx.search(ex), f"{filename}:{rule.id} misses its example {ex!r}"
    for ex in rule.counter_examples:
        assert not rule.rx.search(ex), f"{filename}:{rule.id} matches its counter-example {ex!r}"


def test_every_rule_file_loads(rules):
    assert set(rules.files) == {m.filename for m in RULE_FILES}
    assert len(rules.version) == 16


@pytest.fixture
def config_copy(tmp_path):
    dst = tmp_path / "config"
    shutil.copytree(ROOT / "config", dst)
    return dst


def test_broken_pattern_is_refused_with_file_rule_and_reason(config_copy):
    p = config_copy / "sections.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace(
        "pattern: '^(?P<label>[（(]\\s*(?P<num>[一二", "pattern: '^(?P<label>[（(\\s*(?P<num>[一二", 1), encoding="utf-8")
    with pytest.raises(RuleFileError) as e:
        load_rules(config_copy)
    (file, rule_id, reason), = e.value.problems
    assert file.endswith("sections.yaml") and rule_id == "paren_cn" and "does not compile" in reason


def test_failing_example_and_unknown_key_are_both_reported(config_copy):
    p = config_copy / "sections.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("    rank: 6\n", "    rank: 6\n    colour: red\n", 1),
                 encoding="utf-8")
    m = config_copy / "metadata.yaml"
    m.write_text(m.read_text(encoding="utf-8").replace('examples: ["（征求意见稿）"', 'examples: ["（意见稿）"', 1),
                 encoding="utf-8")
    with pytest.raises(RuleFileError) as e:
        load_rules(config_copy)
    by_file = {(f.rsplit("/", 1)[-1], rid): reason for f, rid, reason in e.value.problems}
    assert "Extra inputs are not permitted" in by_file[("sections.yaml", "box")]
    assert "example not matched: '（意见稿）'" in by_file[("metadata.yaml", "draft_marker")]


def rename_group(config, filename: str, rule_id: str, group: str) -> None:
    """Rename a named group in the pattern of rule `rule_id` (the first pattern after its id)."""
    p = config / filename
    lines = p.read_text(encoding="utf-8").split("\n")
    at = next(i for i, ln in enumerate(lines) if ln.strip().lstrip("- ") == f"id: {rule_id}")
    k = next(i for i in range(at, len(lines)) if lines[i].strip().startswith("pattern:"))
    assert f"(?P<{group}>" in lines[k]
    lines[k] = lines[k].replace(f"(?P<{group}>", f"(?P<{group}_renamed>")
    p.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("filename, rule_id, group", [
    ("sections.yaml", "paren_cn", "num"),
    ("metadata.yaml", "date", "y"),
    ("metadata.yaml", "notice_wrapper", "inner"),
    ("responsibilities.yaml", "level_prefix", "prefix"),
    ("quantities.yaml", "year_target", "year"),  # a year rule without a fixed year
    ("quantities.yaml", "range", "num_max"),  # a figure shape reads its own groups
    ("quantities.yaml", "rate", "per"),
])
def test_a_group_the_extraction_reads_cannot_be_renamed_away(config_copy, filename, rule_id, group):
    """The pattern still compiles and matches its examples: without this check, every document
    the rule matches would fail in extraction ("no such group")."""
    rename_group(config_copy, filename, rule_id, group)
    with pytest.raises(RuleFileError) as e:
        load_rules(config_copy)
    (file, rid, reason), = e.value.problems
    assert file.endswith(filename) and rid == rule_id
    assert f"pattern must define the named group '{group}'" in reason


def test_rules_version_follows_the_rule_files(config_copy):
    before = load_rules(config_copy).version
    p = config_copy / "metadata.yaml"
    p.write_text(p.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert load_rules(config_copy).version != before


def test_missing_rule_file_is_named(config_copy):
    (config_copy / "metadata.yaml").unlink()
    with pytest.raises(RuleFileError, match="metadata.yaml.*missing"):
        load_rules(config_copy)
