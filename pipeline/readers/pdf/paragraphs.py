"""Lines → paragraphs.

A wrapped line is recognised by geometry. Line i continues into line i+1 when the
first unbreakable unit of i+1 (a CJK character with the closing punctuation glued to it, or an
ASCII word) would not have fitted in the room left at the end of i before the right edge of
the text block. If it would have fitted, the line was ended on purpose. Inside the narrow band
where measurement cannot tell, a line ending in sentence punctuation ends the paragraph.
Besides: a heading marker (一、 （一） 1. 1、 （1） ① 专栏 附件 …) always starts a paragraph; a
first-line indent or an extra-large vertical gap starts one; and across a page break a short
last line that does not end a sentence continues onto the next page (files converted from
another PDF often carry such a break: "培育建成 5" ⏎ "个具有…"). A paragraph keeps the
page where it starts. Wrapped lines are joined without a space unless the source had one.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from statistics import median
from typing import Optional

from pipeline.model import Para
from pipeline.readers.pdf.records import Line

_CN_NUM = "一二三四五六七八九十百零〇"
_MARKER_RE = re.compile(
    rf"""^(
        [{_CN_NUM}]+\s*[、.．]                       # 一、
      | [（(]\s*[{_CN_NUM}]+\s*[）)]                # （一） (一)
      | \d{{1,3}}\s*(?:[、．]|\.(?!\d))             # 1、 1. (not 1.5)
      | [（(]\s*\d{{1,3}}\s*[）)]                   # （1） (1)
      | [①-⑳⑴-⒇⒈-⒛]                              # ① ⑴ ⒈
      | 第[{_CN_NUM}\d]+[章节条部分篇]               # 第一章
      | 专栏\s*(?:[\d{_CN_NUM}]+|[:：\s]|$)          # 专栏 3 / 专栏：
      | 附件\s*(?:[\d{_CN_NUM}]+|[:：\s]|$)          # 附件1 / 附件：
    )""",
    re.X,
)
# Markup the seed texts carry into their PDFs; it is not a marker but may precede one.
_LEADING_MARKUP_RE = re.compile(r"^(?:\s|\*\*|#+|\[bookmark:[^\]]*\])+")
_TERMINAL = set("。！？；：!?;:…）)」』”】")
_SENTENCE_PUNCT = set("。，；！？,;!?")


def starts_with_marker(text: str) -> bool:
    return bool(_MARKER_RE.match(_LEADING_MARKUP_RE.sub("", text)))


def _mode_edge(values: list[float], pick_max: bool) -> Optional[float]:
    """The most common position (±1pt), e.g. the right edge most full lines end at."""
    if not values:
        return None
    counts = Counter(round(v) for v in values)
    best = max(counts, key=lambda v: (counts[v - 1] + counts[v] + counts[v + 1], v if pick_max else -v))
    near = [v for v in values if abs(v - best) <= 1.5]
    return max(near) if pick_max else min(near)


def _left_edge(values: list[float]) -> Optional[float]:
    """Where continuation lines start: the leftmost position shared by a tenth of the lines.

    Not the most common one: with first-line indents and short paragraphs, most lines are
    indented first lines."""
    if not values:
        return None
    counts = Counter(round(v) for v in values)
    need = max(2, 0.1 * len(values)) if len(values) >= 2 else 1
    for v in sorted(counts):
        if counts[v - 1] + counts[v] + counts[v + 1] >= need:
            return min(x for x in values if abs(x - v) <= 1.5)
    return min(values)


@dataclass
class _Frame:
    left: float
    right: float
    gap: float  # the usual vertical gap between consecutive lines of a paragraph
    # Paragraphs open with a first-line indent (常见公文格式: two characters), so an indented
    # line always starts a paragraph, even after a line that filled the measure.
    indented: bool = False


def _frame(lines: list[Line], fallback: Optional[_Frame] = None) -> Optional[_Frame]:
    if not lines:
        return fallback
    lo = min(ln.x0 for ln in lines)
    hi = max(ln.x1 for ln in lines)
    long_lines = [ln for ln in lines if ln.x1 - ln.x0 > 0.5 * (hi - lo)]
    right = _mode_edge([ln.x1 for ln in long_lines], pick_max=True)
    left = _left_edge([ln.x0 for ln in lines])
    gaps = [b.top - a.bottom for a, b in zip(lines, lines[1:]) if b.page == a.page and b.top > a.bottom]
    gap = median(gaps) if gaps else (fallback.gap if fallback else 0.5 * lines[0].size)
    if right is None or left is None:
        return fallback
    # Lines that follow a clearly short line open a paragraph; are they indented?
    opens = [b.x0 - left > 0.8 * b.size for a, b in zip(lines, lines[1:])
             if a.page == b.page and right - a.x1 > 3 * a.size]
    indented = len(opens) >= 3 and sum(opens) >= 0.6 * len(opens)
    return _Frame(left, right, gap, indented)


def _heading_like(para_lines: list[Line]) -> bool:
    return len(para_lines) == 1 and not any(ch in _SENTENCE_PUNCT for ch in para_lines[0].text)


def _continues(prev: Line, nxt: Line, para_lines: list[Line], frame: _Frame, page_break: bool) -> bool:
    if starts_with_marker(nxt.text):
        return False
    size = max(prev.size, nxt.size)
    if frame.indented and nxt.x0 > frame.left + 0.8 * size:
        return False
    if not page_break:
        if nxt.top - prev.bottom > frame.gap + 0.8 * size:
            return False  # paragraph spacing
        if len(para_lines) > 1 and abs(nxt.x0 - prev.x0) > 0.8 * size:
            return False  # first-line indent / outdented next item
    slack = frame.right - (prev.x1 + nxt.head_width)
    ends_sentence = prev.text[-1] in _TERMINAL
    if slack < -0.5:
        return True  # the next line's first unit did not fit: a wrap
    if slack <= 0.3 * size:
        return not ends_sentence  # too close to measure
    if page_break:
        return not ends_sentence and not _heading_like(para_lines) and nxt.x0 <= frame.left + 0.8 * size
    return False


def _join(a: Line, b: Line, text: str) -> str:
    # Wrapped Chinese never had a space; between ASCII words keep one only if the source drew it.
    if (a.trail_space or b.lead_space) and text[-1:].isascii() and b.text[:1].isascii():
        return text + " " + b.text
    return text + b.text


def lines_to_paras(pages: list[list[Line]], page_sizes: list[tuple[float, float]]) -> list[Para]:
    all_lines = [ln for lines in pages for ln in lines]
    doc_frame = _frame(all_lines)
    if doc_frame is None:
        return []
    common_size = Counter((round(w), round(h)) for w, h in page_sizes).most_common(1)[0][0]
    frames = []
    for lines, (w, h) in zip(pages, page_sizes):
        # Landscape or odd-sized pages have their own text block.
        frames.append(_frame(lines, doc_frame) if (round(w), round(h)) != common_size else doc_frame)

    paras: list[Para] = []
    para_lines: list[Line] = []
    text = ""
    prev: Optional[Line] = None
    for lines, frame in zip(pages, frames):
        for i, ln in enumerate(lines):
            if prev is not None and _continues(prev, ln, para_lines, frame, page_break=(i == 0)):
                text = _join(prev, ln, text)
                para_lines.append(ln)
            else:
                if para_lines:
                    paras.append(Para(text.strip(), para_lines[0].page))
                para_lines = [ln]
                text = ln.text
            prev = ln
    if para_lines:
        paras.append(Para(text.strip(), para_lines[0].page))
    return [p for p in paras if p.text]
