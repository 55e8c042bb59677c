"""One document's normalised text → its rows in every table.

    ParsedText → text_to_sections → text_to_metadata
               → sections_to_responsibilities / sections_to_quantities → rows

A pure function of the text, the rules and the source's identity: the same inputs give the same
rows, which is what lets a rule change re-extract the corpus from cached text, and lets the
incremental and fresh runs be compared row for row. Keywords (`terms`) depend on the section texts
only and are computed separately (pipeline/stages/terms.py) so that they can be cached across rule changes.

Each table depends on some of the rule files only (TABLE_RULES): after an edit of
`quantities.yaml`, only the quantities are extracted again, and the other tables' rows are carried
over (`tables_to_extract`, `document_rows(..., tables=...)`).
"""
from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Optional

from pipeline.model import ParsedText
from pipeline.rules import RuleFile, RuleSet, load_rule_files
from pipeline.stages.metadata import MetadataRules, text_to_metadata
from pipeline.stages.quantities import QuantityRules, sections_to_quantities
from pipeline.stages.responsibilities import ResponsibilityRules, sections_to_responsibilities
from pipeline.stages.sections import SectionRules, text_to_sections

# The rule files, one per stage: each stage module owns the schema of its own file.
RULE_FILES: tuple[type[RuleFile], ...] = (SectionRules, ResponsibilityRules, QuantityRules, MetadataRules)

# The rule files each table's rows depend on: every table hangs off the sections, the documents'
# metadata feeds the quantities (the plan period dates a target), and keywords are per section.
TABLE_RULES: dict[str, tuple[str, ...]] = {
    "documents": (SectionRules.filename, MetadataRules.filename),
    "sections": (SectionRules.filename,),
    "responsibilities": (SectionRules.filename, ResponsibilityRules.filename),
    "quantities": (SectionRules.filename, MetadataRules.filename, QuantityRules.filename),
    "terms": (SectionRules.filename,),
}
ALL_TABLES = tuple(TABLE_RULES)


def load_rules(config_dir: Path) -> RuleSet:
    """Every stage's rule file from `config_dir`, validated; RuleFileError lists every problem."""
    return load_rule_files(config_dir, RULE_FILES)


def tables_to_extract(old: Optional[dict], new: dict) -> tuple[str, ...]:
    """The tables whose rows change when the rule files go from versions `old` to `new` (file name
    → hash); every table when the old versions are unknown."""
    if not old:
        return ALL_TABLES
    changed = {f for f in old.keys() | new.keys() if old.get(f) != new.get(f)}
    return tuple(t for t, files in TABLE_RULES.items() if changed & set(files))


@dataclass(frozen=True)
class Source:
    """A file in `raw/`, identified by its content."""

    path: str  # as given to the run (relative to the raw folder's parent when possible)
    name: str
    sha256: str
    size: int
    format: str

    @property
    def doc_id(self) -> str:
        return self.sha256[:16]


@dataclass
class DocRows:
    """All rows one document contributes, keyed by table name."""

    tables: dict[str, list[dict]] = field(default_factory=dict)


def _fields(record) -> dict:
    """A flat record's fields, in order (dataclasses.asdict deep-copies every value: 4x slower here).
    The records are plain dataclasses whose instance dict is exactly their fields."""
    d = record.__dict__.copy()
    if len(d) != len(record.__dataclass_fields__):  # something else was stored on it
        d = {f.name: getattr(record, f.name) for f in fields(record)}
    return d


def _page_finder(parsed: ParsedText):
    """`parsed.page_at` as a closure over its lists (it is called for every row)."""
    starts, pages = parsed.para_starts, parsed.para_pages
    if not pages:
        return lambda offset: None
    return lambda offset: pages[max(bisect_right(starts, offset) - 1, 0)]


def document_rows(src: Source, parsed: ParsedText, rules: RuleSet, tables: Iterable[str] = ALL_TABLES) -> DocRows:
    """The document's rows in `tables` (other than `terms`, see pipeline/runtime/job.py); the stages
    the other tables need alone are skipped. `sections` rows come with `terms` too: keywords are
    found per section."""
    tables = set(tables)
    doc_id = src.doc_id
    rv = rules.version
    sections = text_to_sections(parsed, rules["sections.yaml"], doc_id=doc_id)
    meta = (text_to_metadata(parsed, sections, rules["metadata.yaml"])
            if tables & {"documents", "quantities"} else None)
    page_at = _page_finder(parsed)
    out: dict[str, list[dict]] = {}
    if "documents" in tables:
        date = dt.date.fromisoformat(meta.date) if meta.date else None
        out["documents"] = [{
            "doc_id": doc_id, "source_path": src.path, "source_name": src.name, "format": src.format,
            "sha256": src.sha256, "size_bytes": src.size, "title": meta.title,
            "doc_number": meta.doc_number, "issuers": meta.issuers, "date": date,
            "is_draft": meta.is_draft, "period_start": meta.period_start, "period_end": meta.period_end,
            "n_pages": parsed.n_pages, "n_chars": len(parsed.text), "n_sections": len(sections),
            "parser": parsed.parser, "parser_version": parsed.parser_version, "rules_version": rv,
        }]
    if tables & {"sections", "terms"}:
        out["sections"] = _section_rows(sections, parsed.text, doc_id, page_at, rv)
    if "responsibilities" in tables:
        out["responsibilities"] = _located(
            sections_to_responsibilities(parsed, sections, rules["responsibilities.yaml"]), doc_id, page_at, rv)
    if "quantities" in tables:
        out["quantities"] = _located(
            sections_to_quantities(parsed, sections, meta, rules["quantities.yaml"]), doc_id, page_at, rv)
    return DocRows(out)


def _section_rows(sections: list, text: str, doc_id: str, page_at, rv: str) -> list[dict]:
    """The sections table's rows: each section's own text (up to its first child) with pages."""
    secs = []
    for s in sections:
        start, end = s.start, s.end
        secs.append({
            "doc_id": doc_id, "section_id": s.section_id, "parent_id": s.parent_id,
            "ordinal": s.ordinal, "path": s.path, "level": s.level, "kind": s.kind,
            "family": s.family, "label": s.label, "heading": s.heading,
            "text": text[s.body_start:s.own_end].strip(), "start": start,
            "body_start": s.body_start, "own_end": s.own_end, "end": end,
            "page_start": page_at(start), "page_end": page_at(max(start, end - 1)), "rules_version": rv,
        })
    return secs


def _located(records: list, doc_id: str, page_at, rv: str) -> list[dict]:
    rows = []
    for r in records:
        row = _fields(r)
        row["doc_id"], row["page"], row["rules_version"] = doc_id, page_at(r.start), rv
        rows.append(row)
    return rows


def section_texts(rows: DocRows) -> list[tuple[str, str]]:
    """(section_id, heading + own text) for keyword extraction."""
    return [(s["section_id"], f"{s['heading']}\n{s['text']}") for s in rows.tables["sections"]]
