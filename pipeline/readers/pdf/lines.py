"""Characters → lines.

Chars are grouped by vertical overlap and ordered by x. Ordering by x (not by content stream
order) is what repairs pypdfium2's `11∶` for a `1∶1` whose colon is drawn later in another
font. Spaces come only from the source (a space glyph, or a gap wider than a glyph). Glyphs
drawn twice at (almost) the same place, the "fake bold" trick, are dropped first (`dedupe`).
"""
from __future__ import annotations

import re
from statistics import median
from typing import Optional

import numpy as np

from pipeline.readers.pdf.records import Char, CharArrays, Line, Page, PageLines

_CID_RE = re.compile(r"^\(cid:\d+\)$")
REPLACEMENT = "\ufffd"


def is_garbled_glyph(text: str) -> bool:
    return text == REPLACEMENT or bool(_CID_RE.match(text))


def dedupe(chars: list[Char], tolerance: float = 1.0) -> list[Char]:
    """Drop glyphs repeated at (almost) the same place: the "fake bold" trick."""
    keyed = sorted(range(len(chars)), key=lambda i: (chars[i].text, chars[i].top, chars[i].x0))
    drop = set()
    kept: Optional[Char] = None
    for i in keyed:
        c = chars[i]
        # Compare with the last glyph kept, so a glyph drawn three or four times goes too.
        if (kept is not None and c.text == kept.text and not c.text.isspace()
                and abs(c.top - kept.top) <= tolerance and abs(c.x0 - kept.x0) <= tolerance):
            drop.add(i)
        else:
            kept = c
    return [c for i, c in enumerate(chars) if i not in drop] if drop else chars


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF
            or 0x3000 <= o <= 0x303F or 0x20000 <= o <= 0x3FFFF or ch in "“”‘’…—·")


# Characters that may not start a line (kinsoku): they travel with the character before them.
_CLOSERS = set("，。、；：？！）》」』】〕〉”’%‰…—·．,.;:?!)]}％")
# Characters that may not end a line: they travel with the character after them.
_OPENERS = set("（《「『【〔〈“‘([{")


def _is_ascii_word_char(ch: str) -> bool:
    return ch.isascii() and not ch.isspace() and ch not in _OPENERS


def _head_width(texts, x0s: list[float], x1s: list[float], first_size: float,
                start: int = 0, end: Optional[int] = None) -> float:
    """Width of the first unbreakable unit of the glyphs texts[start:end] (x0s/x1s alike)."""
    end = len(texts) if end is None else end
    first = texts[start]
    k = start
    if first.isascii() and first.isalnum():
        while (k + 1 < end and _is_ascii_word_char(texts[k + 1])
               and x0s[k + 1] - x1s[k] < 0.2 * max(first_size, 1.0)):
            k += 1
    elif first in _OPENERS and end - start > 1:
        k = start + 1
    while k + 1 < end and texts[k + 1] in _CLOSERS:
        k += 1
    return float(x1s[k] - x0s[start])


def _line_from_chars(page: int, chars: list[Char]) -> Optional[Line]:
    chars.sort(key=lambda c: c.x0)
    glyphs = [c for c in chars if not c.text.isspace()]
    if not glyphs:
        return None
    size = median(c.size for c in glyphs) or (glyphs[0].bottom - glyphs[0].top) or 10.0
    out: list[str] = []
    prev: Optional[Char] = None
    pending_space = False
    for c in chars:
        if c.text.isspace():
            pending_space = prev is not None
            continue
        if prev is not None:
            gap = c.x0 - prev.x1
            # CJK is set solid, so a gap next to it must be wide (a half-width space is
            # 0.5em) before it counts; Latin word spaces can be as narrow as 0.2em.
            cjk = is_cjk(prev.text[-1]) or is_cjk(c.text[0])
            wide = gap > (0.4 if cjk else 0.2) * size
            if pending_space or wide:
                out.append(" ")
        out.append(c.text)
        prev = c
        pending_space = False
    return Line(
        page=page,
        text="".join(out),
        x0=glyphs[0].x0,
        x1=max(c.x1 for c in glyphs),
        top=min(c.top for c in glyphs),
        bottom=max(c.bottom for c in glyphs),
        size=size,
        head_width=_head_width([c.text for c in glyphs], [c.x0 for c in glyphs], [c.x1 for c in glyphs],
                               glyphs[0].size),
        lead_space=chars[0].text.isspace(),
        trail_space=chars[-1].text.isspace(),
    )


def chars_to_lines(page: Page) -> list[Line]:
    """Group a page's glyphs into lines, top to bottom."""
    chars = page.chars
    upright = [c for c in chars if c.upright]
    # Rotated glyphs that are a small minority are watermarks or stamps, not body text.
    if len(upright) >= 0.9 * len(chars):
        chars = upright
    chars = sorted(chars, key=lambda c: ((c.top + c.bottom) / 2, c.x0))
    groups: list[list[Char]] = []
    band_top = band_bottom = 0.0
    for c in chars:
        h = max(c.bottom - c.top, 0.1)
        if groups:
            overlap = min(c.bottom, band_bottom) - max(c.top, band_top)
            if overlap >= 0.5 * min(h, band_bottom - band_top):
                groups[-1].append(c)
                if h > band_bottom - band_top and not c.text.isspace():
                    band_top, band_bottom = c.top, c.bottom
                continue
        groups.append([c])
        band_top, band_bottom = c.top, c.bottom
    lines = [_line_from_chars(page.number, g) for g in groups]
    return sorted((ln for ln in lines if ln is not None), key=lambda ln: ln.top)


# Python's str.isspace() code points (all below U+3001), for the array path.
_SPACE_CODES = [c for c in range(0x3001) if chr(c).isspace()]
_CODE_TABLES = None


def _code_tables():
    """Lookup tables for the array path: str.isspace() below U+3002 and `is_cjk` over the BMP."""
    global _CODE_TABLES
    if _CODE_TABLES is None:
        space = np.zeros(0x3002, dtype=bool)
        space[_SPACE_CODES] = True
        cjk = np.zeros(0x10000, dtype=bool)
        for lo, hi in ((0x2E80, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF), (0x3000, 0x303F)):
            cjk[lo:hi + 1] = True
        cjk[[ord(c) for c in "“”‘’…—·"]] = True
        _CODE_TABLES = space, cjk
    return _CODE_TABLES


def _space_mask(codes):
    """str.isspace() over an array of code points."""
    return _code_tables()[0][np.minimum(codes, 0x3001)]


def _cjk_mask(codes):
    """`is_cjk` over an array of code points (beyond the BMP: U+20000-3FFFF)."""
    return np.where(codes < 0x10000, _code_tables()[1][codes & 0xFFFF], (codes >= 0x20000) & (codes <= 0x3FFFF))


def lines_from_arrays(number: int, chars: CharArrays) -> Optional[tuple[list[Line], int]]:
    """`dedupe` + `chars_to_lines` over arrays: the same lines, and the page's glyph count.

    None when the page needs the `Char` path: a box or size that is not finite (sorting would
    differ) or glyphs drawn twice (fake bold, for `dedupe`). Per step, what makes it equal:
    - sorting: numpy's lexsort is stable, as `sorted` is, on the same float64 keys;
    - `dedupe` drops nothing unless some glyph is within tolerance of its neighbour in
      (text, top, x0) order (a drop is always relative to the last glyph kept, which is the
      neighbour until the first drop), so that is all that is checked;
    - grouping is the band walk of `chars_to_lines` itself, over plain floats;
    - within a line, spaces, gaps, median size, edges and the first unit are computed per line
      exactly as `_line_from_chars` does, over the glyphs in x order."""
    n = chars.codes.size
    if n == 0:
        return [], 0
    columns = (chars.x0, chars.x1, chars.top, chars.bottom, chars.size)
    if not all(np.isfinite(a).all() for a in columns):
        return None
    codes, x0, x1, top, bottom, size = chars.codes, *columns
    space = _space_mask(codes)

    order = np.lexsort((x0, top, codes))
    c, t, x, s = codes[order], top[order], x0[order], space[order]
    if ((c[1:] == c[:-1]) & ~s[1:] & (np.abs(t[1:] - t[:-1]) <= 1.0) & (np.abs(x[1:] - x[:-1]) <= 1.0)).any():
        return None
    glyph_count = n - int(space.sum())

    upright = chars.upright
    n_upright = int(upright.sum())
    if n_upright < n and n_upright >= 0.9 * n:
        codes, x0, x1, top, bottom, size, space = (a[upright] for a in (codes, x0, x1, top, bottom, size, space))
        n = n_upright

    # Group into lines: sorted by (middle, x0), then the band walk of chars_to_lines.
    order = np.lexsort((x0, (top + bottom) / 2))
    codes, x0, x1, top, bottom, size, space = (a[order] for a in (codes, x0, x1, top, bottom, size, space))
    # The walk is chars_to_lines' own, with min/max spelled out (same values, a third of the time).
    line_ids: list[int] = []
    add = line_ids.append
    line = -1
    band_top = band_bottom = 0.0
    for c_top, c_bottom, c_space in zip(top.tolist(), bottom.tolist(), space.tolist()):
        h = c_bottom - c_top
        if 0.1 > h:  # noqa: PLR1730
            h = 0.1
        if line >= 0:
            band = band_bottom - band_top
            lowest = band_bottom if band_bottom < c_bottom else c_bottom  # noqa: FURB136
            highest = band_top if band_top > c_top else c_top  # noqa: FURB136
            if lowest - highest >= 0.5 * (band if band < h else h):  # noqa: FURB136
                if h > band and not c_space:
                    band_top, band_bottom = c_top, c_bottom
                add(line)
                continue
        line += 1
        band_top, band_bottom = c_top, c_bottom
        add(line)
    line_of = np.array(line_ids, dtype=np.int64)

    # Within a line, x order (stable: ties keep the middle order, as list.sort does).
    order = np.lexsort((x0, line_of))
    codes, x0, x1, top, bottom, size, space, line_of = (
        a[order] for a in (codes, x0, x1, top, bottom, size, space, line_of))
    is_glyph = ~space
    g = np.flatnonzero(is_glyph)  # glyph positions, line by line
    if g.size == 0:
        return [], glyph_count
    g_line = line_of[g]
    lines_with_glyphs, g_start, g_count = np.unique(g_line, return_index=True, return_counts=True)
    g_end = g_start + g_count

    # Median glyph size per line, else the first glyph's height, else 10.
    sizes = size[g][np.lexsort((size[g], g_line))]
    mid = g_start + g_count // 2
    med = np.where(g_count % 2 == 1, sizes[mid], (sizes[mid - 1] + sizes[mid]) / 2)
    first_height = bottom[g[g_start]] - top[g[g_start]]
    line_size = np.where(med != 0, med, np.where(first_height != 0, first_height, 10.0))

    # A space before a glyph: the source drew one since the previous glyph, or the gap is wide.
    after = np.zeros(g.size, dtype=bool)
    after[1:] = g_line[1:] == g_line[:-1]
    spaces_before = np.cumsum(space)[g]
    pending = np.zeros(g.size, dtype=bool)
    pending[1:] = spaces_before[1:] > spaces_before[:-1]
    gap = np.zeros(g.size)
    gap[1:] = x0[g[1:]] - x1[g[:-1]]
    cjk = _cjk_mask(codes[g])
    near_cjk = cjk.copy()
    near_cjk[1:] |= cjk[:-1]
    per_line_size = np.repeat(line_size, g_count)
    wide = gap > np.where(near_cjk, 0.4, 0.2) * per_line_size
    insert = after & (pending | wide)

    # All lines' text in one string: glyphs with the inserted spaces, sliced per line.
    where = np.arange(g.size) + np.cumsum(insert)
    out = np.full(g.size + int(insert.sum()), 0x20, dtype="<u4")
    out[where] = codes[g]
    page_text = out.tobytes().decode("utf-32-le")
    text_start, text_end = where[g_start].tolist(), (where[g_end - 1] + 1).tolist()

    gx0, gx1, gsize = x0[g], x1[g], size[g]
    line_x0 = gx0[g_start].tolist()
    line_x1 = np.maximum.reduceat(gx1, g_start).tolist()
    line_top = np.minimum.reduceat(top[g], g_start).tolist()
    line_bottom = np.maximum.reduceat(bottom[g], g_start).tolist()
    glyph_text = codes[g].astype("<u4").tobytes().decode("utf-32-le")
    # First and last char of each line, spaces included, for lead/trail_space.
    lead = space[np.searchsorted(line_of, lines_with_glyphs, side="left")].tolist()
    trail = space[np.searchsorted(line_of, lines_with_glyphs, side="right") - 1].tolist()

    lines = []
    for j, (a, b) in enumerate(zip(g_start.tolist(), g_end.tolist())):
        lines.append(Line(
            page=number,
            text=page_text[text_start[j]:text_end[j]],
            x0=line_x0[j],
            x1=line_x1[j],
            top=line_top[j],
            bottom=line_bottom[j],
            size=line_size[j].item(),
            head_width=_head_width(glyph_text, gx0, gx1, gsize[a], a, b),  # reads a few glyphs
            lead_space=lead[j],
            trail_space=trail[j],
        ))
    return sorted(lines, key=lambda ln: ln.top), glyph_count


def page_lines(page: Page) -> PageLines:
    glyphs = sum(1 for c in page.chars if not c.text.isspace())
    return PageLines(page.number, page.width, page.height, chars_to_lines(page), glyphs, page.garbled)
