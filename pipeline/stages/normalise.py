"""Paragraphs from a reader → the document's normalised text.

The normalised text is what analysts see and what every offset points into: one paragraph per
line, conversion artefacts removed (`[bookmark: _Hlk…]` from Word exports, markdown `#` heading
marks and `**` emphasis), surrounding whitespace (including the full-width space U+3000 used for
indentation) trimmed, empty paragraphs dropped. Characters inside a paragraph are kept as written.
"""
from __future__ import annotations

import re

import regex

from pipeline.model import Para, ParsedText

_ARTEFACTS = regex.compile(r"\[bookmark:[^\]]*\]|\*\*|\u200b|\ufeff")
_MD_HEADING = regex.compile(r"^#{1,6}\s+")
_CONTROL = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# Characters without which neither _CONTROL nor _ARTEFACTS can match: most lines have none.
_SUSPECT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\[*\u200b\ufeff]")


def clean_paragraph(s: str) -> str:
    if _SUSPECT.search(s) is not None:
        s = _CONTROL.sub("", s)
        s = _ARTEFACTS.sub("", s)
    s = s.strip(" \t\r\n\u3000\xa0")
    if s.startswith("#"):
        s = _MD_HEADING.sub("", s)
    return s.strip(" \t\u3000\xa0")


def paras_to_text(paras: list[Para], parser: str, parser_version: str) -> ParsedText:
    parts: list[str] = []
    starts: list[int] = []
    pages = []
    pos = 0
    for p in paras:
        for line in p.text.split("\n"):
            t = clean_paragraph(line)
            if not t:
                continue
            starts.append(pos)
            pages.append(p.page)
            parts.append(t)
            pos += len(t) + 1
    n_pages = max((pg for pg in pages if pg is not None), default=None)
    return ParsedText(
        text="\n".join(parts),
        para_starts=starts,
        para_pages=pages,
        parser=parser,
        parser_version=parser_version,
        n_pages=n_pages,
    )
