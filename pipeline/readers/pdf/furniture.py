"""Page furniture: running headers/footers and page counters, dropped from the outer edge of
each page inwards: page-number shapes (`— 3 —`, `- 3 -`, `第3页`, `1/6`, `3`), a browser print's
date-time header and URL footer, and any line repeated at the same height on at least half of
the pages (digits ignored, so `第 3 页`-style counters inside a title repeat too).
"""
from __future__ import annotations

import math
import re
from collections import defaultdict

from pipeline.readers.pdf.records import Line

_DASHES = r"[-—–－―‒~～_·•\s]*"
_PAGE_NUMBER_RES = [
    re.compile(rf"^{_DASHES}\d{{1,4}}{_DASHES}$"),  # 3 | - 3 - | — 3 —
    re.compile(rf"^{_DASHES}[ivxlcIVXLC]{{1,6}}{_DASHES}$"),
    re.compile(r"^第\s*\d{1,4}\s*页\s*[,，/]?\s*(共\s*\d{1,4}\s*页)?$"),
    re.compile(r"^共\s*\d{1,4}\s*页\s*[,，/]?\s*第\s*\d{1,4}\s*页$"),
    re.compile(r"^\d{1,4}\s*/\s*\d{1,4}$"),  # 1/6
    re.compile(r"^(page|p\.?)\s*\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.I),
    re.compile(r"^\d{1,4}\s*of\s*\d{1,4}$", re.I),
]
# A browser's print header starts with the date and time; its footer with the page URL.
_DATETIME_RE = re.compile(
    r"^(\d{4}[/.\-年]\d{1,2}[/.\-月]\d{1,2}日?|\d{1,2}/\d{1,2}/\d{2,4},?)\s*(上午|下午|AM|PM)?\s*\d{1,2}:\d{2}",
    re.I,
)
_URL_RE = re.compile(r"^(https?|file)://|^about:blank|^www\.", re.I)
_MAX_FURNITURE_LINES = 3  # per page edge


def _is_page_number(text: str) -> bool:
    t = text.strip()
    return any(r.match(t) for r in _PAGE_NUMBER_RES)


def _is_browser_furniture(text: str) -> bool:
    t = text.strip()
    return bool(_DATETIME_RE.match(t) or _URL_RE.match(t))


def _repeat_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _repeated_lines(pages: list[list[Line]]) -> set[int]:
    """ids of edge lines whose text (digits ignored) recurs at the same height on ≥ half the pages."""
    if len(pages) < 2:
        return set()
    need = max(2, math.ceil(len(pages) / 2))
    groups: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for lines in pages:
        edge = {"top": lines[:_MAX_FURNITURE_LINES], "bottom": lines[-_MAX_FURNITURE_LINES:]}
        for zone, zone_lines in edge.items():
            for ln in zone_lines:
                groups[(zone, _repeat_key(ln.text))].append(ln)
    found: set[int] = set()
    for members in groups.values():
        if len({ln.page for ln in members}) < need:
            continue
        members = sorted(members, key=lambda ln: ln.top)
        # The largest set of occurrences within 3pt of each other (the header's fixed position).
        best: list[Line] = []
        j = 0
        for i in range(len(members)):
            while members[i].top - members[j].top > 3.0:
                j += 1
            window = members[j : i + 1]
            if len({ln.page for ln in window}) > len({ln.page for ln in best}):
                best = window
        if len({ln.page for ln in best}) >= need:
            found.update(id(ln) for ln in best)
    return found


def drop_furniture(pages: list[list[Line]]) -> list[list[Line]]:
    """Remove running headers, footers and page counters from each page's outer lines."""
    repeated = _repeated_lines(pages)

    def is_furniture(ln: Line) -> bool:
        return id(ln) in repeated or _is_page_number(ln.text) or _is_browser_furniture(ln.text)

    out = []
    for lines in pages:
        lines = list(lines)
        for _ in range(_MAX_FURNITURE_LINES):
            if lines and is_furniture(lines[0]):
                lines.pop(0)
        for _ in range(_MAX_FURNITURE_LINES):
            if lines and is_furniture(lines[-1]):
                lines.pop()
        out.append(lines)
    return out
