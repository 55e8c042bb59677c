"""Typed records that flow between the stages.

read_* → ParsedText → text_to_sections → sections_to_quantities / sections_to_responsibilities → tables

Offsets (`start`, `end`) are always character offsets into `ParsedText.text`, the document's
normalised text (paragraphs joined by "\\n"), so every row can be traced back to its words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Para:
    """One paragraph as a reader found it: its text and the (1-based) page it starts on."""

    text: str
    page: Optional[int] = None


@dataclass
class ParsedText:
    """A document's normalised text and where each paragraph came from."""

    text: str
    para_starts: list[int]  # offset of each paragraph in `text`
    para_pages: list[Optional[int]]  # page of each paragraph (None for formats without pages)
    parser: str
    parser_version: str
    n_pages: Optional[int] = None

    def page_at(self, offset: int) -> Optional[int]:
        """Page of the paragraph that holds `offset`."""
        from bisect import bisect_right

        i = bisect_right(self.para_starts, offset) - 1
        return self.para_pages[max(i, 0)] if self.para_pages else None


@dataclass
class Section:
    section_id: str
    parent_id: Optional[str]
    path: str  # labels of ancestors and self, normalised, joined by "/"
    label: str  # marker as written: "一、", "（一）", "1.", "专栏 2", "附件1"
    family: str  # numbering family id from config/sections.yaml, e.g. "cn_dun", "paren_cn"
    kind: str  # "numbered" | "box" | "annex"
    level: int
    heading: str
    start: int  # offset of the heading line
    body_start: int  # offset where the section's own body starts (after the heading)
    end: int  # end of the section including its children
    own_end: int  # end of the section's own text, before its first child
    page: Optional[int] = None
    ordinal: int = 0  # document order


@dataclass
class Responsibility:
    section_id: Optional[str]
    agency_raw: str
    agency: str  # with the omitted prefix restored
    role: str  # lead | participant | responsible
    line_raw: str
    start: int
    end: int
    rule_id: str
    position: int = 0  # order in the line


@dataclass
class Quantity:
    section_id: Optional[str]
    kind: str  # target | baseline | funding | term
    year: Optional[int]
    comparator: str  # >= > <= < ~ = range
    value: float
    value_max: Optional[float]
    unit: str
    value_base: Optional[float]
    unit_base: Optional[str]
    metric: str
    raw: str
    start: int
    end: int
    rule_id: str


@dataclass
class DocumentMeta:
    title: Optional[str] = None
    doc_number: Optional[str] = None
    issuers: list[str] = field(default_factory=list)
    date: Optional[str] = None  # ISO date
    is_draft: bool = False
    period_start: Optional[int] = None
    period_end: Optional[int] = None
