"""The pypdfium2 backend: pdfium's per-char values fetched in bulk through bare ctypes calls,
then `lines_from_arrays`, the grouping of `chars_to_lines` over numpy arrays (a page it cannot
take exactly, e.g. fake bold, goes through `dedupe` and `Char`s instead).

The path is a speed-up only: its chars are exactly what pdfium's per-char API gives and its
lines exactly what `chars_to_lines` makes of them (tests/test_pdf_fast.py holds it to that).
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.readers.base import ReaderError
from pipeline.readers.pdf.lines import (
    dedupe,
    lines_from_arrays,
    page_lines,
)
from pipeline.readers.pdf.records import CharArrays, Page, PageLines

# --- pypdfium2: the text page's chars in bulk ---------------------------------------------------
#
# A page holds ~2,000 chars. Asked one by one through pypdfium2.raw (seven calls of ~0.5 µs, then
# a `Char`), they cost more than pdfium's own parsing of the page. Here each value is fetched for
# all chars of the page at once (`map` over bare ctypes functions, ~0.2 µs a call) into arrays,
# and only what the per-char API would give:
# - code points: one FPDFText_GetText for the page. Its text has one UTF-16 unit per char only
#   when every char is "printing" (the last char's text index is count-1) and none is beyond the
#   BMP (pdfium leaves those out: the count comes back short); otherwise, and for the 0xFFFE
#   units pdfium writes for chars without a code point, FPDFText_GetUnicode per char;
# - pdfium's generated spaces and line breaks (FPDFText_IsGenerated) are always U+0020/000D/000A,
#   so only chars with those code points are asked;
# - a glyph without a Unicode mapping (FPDFText_HasUnicodeMapError), the loose box, font size
#   and angle: one call per char each, the floor of this path (~1 µs a char).

_PDFIUM_FUNCS = None


def _pdfium_funcs():
    """pdfium's text functions as bare ctypes prototypes (restype only, no argtypes, GIL kept).

    Arguments go in as a c_void_p handle, Python ints (C int indices) and ctypes buffers, which is
    what the C signatures take; skipping ctypes' per-argument conversion halves the cost of a call."""
    global _PDFIUM_FUNCS
    if _PDFIUM_FUNCS is None:
        import ctypes
        from types import SimpleNamespace

        from pypdfium2 import raw

        def bare(name: str, restype):
            return ctypes.PYFUNCTYPE(restype)(ctypes.cast(getattr(raw, name), ctypes.c_void_p).value)

        _PDFIUM_FUNCS = SimpleNamespace(
            get_text=bare("FPDFText_GetText", ctypes.c_int),
            text_index=bare("FPDFText_GetTextIndexFromCharIndex", ctypes.c_int),
            unicode=bare("FPDFText_GetUnicode", ctypes.c_uint),
            generated=bare("FPDFText_IsGenerated", ctypes.c_int),
            map_error=bare("FPDFText_HasUnicodeMapError", ctypes.c_int),
            loose_box=bare("FPDFText_GetLooseCharBox", ctypes.c_int),
            char_box=bare("FPDFText_GetCharBox", ctypes.c_int),
            font_size=bare("FPDFText_GetFontSize", ctypes.c_double),
            angle=bare("FPDFText_GetCharAngle", ctypes.c_float),
        )
    return _PDFIUM_FUNCS


class _CharBuffers:
    """Output buffers for pages of up to `capacity` chars: UTF-16 text and one FS_RECTF (left, top,
    right, bottom as float32) per char, with a ready pointer to each rect."""

    def __init__(self, capacity: int) -> None:
        import ctypes

        self.capacity = capacity
        self.text = (ctypes.c_ushort * (capacity + 1))()
        self.rects = (ctypes.c_float * (4 * capacity))()
        self.rect_refs = [ctypes.byref(self.rects, 16 * k) for k in range(capacity)]


_BUFFERS = threading.local()
_KEEP_BUFFERS_UP_TO = 1 << 16  # chars; a bigger page gets buffers of its own, freed with it


def _char_buffers(n: int) -> _CharBuffers:
    """Buffers for a page of `n` chars: this thread's, grown as pages need, reused across documents."""
    buf = getattr(_BUFFERS, "buf", None)
    if buf is not None and buf.capacity >= n:
        return buf
    if n > _KEEP_BUFFERS_UP_TO:
        return _CharBuffers(n)
    buf = _BUFFERS.buf = _CharBuffers(min(_KEEP_BUFFERS_UP_TO, max(n, 4096, 2 * (buf.capacity if buf else 0))))
    return buf


def char_arrays(tp, n: int, height: float) -> tuple[CharArrays, int]:
    """The chars of text page `tp` (a c_void_p) with `n` chars, and how many are garbled.

    Same selection and values as asking pdfium char by char: pdfium's generated spaces and line
    breaks and control characters other than tab are skipped; a glyph without a Unicode mapping
    (or mapped to U+0000, U+FFFD, U+FFFE or a lone surrogate) is counted and becomes U+FFFD; the
    box is the loose box (the glyph's advance by the font's height, like pdfminer's), else the
    tight one, else the char is skipped; the size is the font size, else the box height; a char
    is upright within 0.05 rad."""
    import ctypes
    from itertools import repeat

    if n <= 0:
        empty = np.zeros(0)
        return CharArrays(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty, np.zeros(0, dtype=bool)), 0
    fn = _pdfium_funcs()
    buf = _char_buffers(n)
    if fn.get_text(tp, 0, n, buf.text) == n + 1 and fn.text_index(tp, n - 1) == n - 1:
        codes = np.frombuffer(buf.text, np.uint16, n).astype(np.int64)
        unset = np.flatnonzero(codes == 0xFFFE)
        if unset.size:
            codes[unset] = [fn.unicode(tp, k) for k in unset.tolist()]
    else:
        codes = np.fromiter(map(fn.unicode, repeat(tp, n), range(n)), np.int64, n)

    maybe_generated = np.flatnonzero((codes == 0x20) | (codes == 0x0D) | (codes == 0x0A))
    generated = np.zeros(n, dtype=bool)
    if maybe_generated.size:
        generated[maybe_generated] = [fn.generated(tp, k) == 1 for k in maybe_generated.tolist()]
    index = np.flatnonzero(~generated)
    unmapped = np.fromiter(map(fn.map_error, repeat(tp, index.size), index.tolist()), np.int32, index.size) == 1
    codes = codes[index]
    garbled = (unmapped | (codes == 0) | (codes == 0xFFFD) | (codes == 0xFFFE)
               | ((codes >= 0xD800) & (codes <= 0xDFFF)))
    codes[garbled] = 0xFFFD
    keep = garbled | (codes >= 0x20) | (codes == 0x09)
    index, codes = index[keep], codes[keep]
    if codes.size and int(codes.max()) > 0x10FFFF:
        chr(int(codes.max()))  # ValueError, as `chr` per char raised

    m = index.size
    k_list = index.tolist()
    found = list(map(fn.loose_box, repeat(tp, m), k_list, buf.rect_refs[:m]))
    rects = np.frombuffer(buf.rects, np.float32, 4 * m).reshape(m, 4).astype(np.float64)
    x0, y1, x1, y0 = rects[:, 0], rects[:, 1], rects[:, 2], rects[:, 3]
    if 0 in found:  # never for a valid index; kept for the per-char API's fallback semantics
        left, right, bottom, top = (ctypes.c_double() for _ in range(4))
        lost = []
        for j in [j for j, ok in enumerate(found) if not ok]:
            if fn.char_box(tp, k_list[j], ctypes.byref(left), ctypes.byref(right),
                           ctypes.byref(bottom), ctypes.byref(top)):
                x0[j], x1[j], y0[j], y1[j] = left.value, right.value, bottom.value, top.value
            else:
                lost.append(j)
        if lost:
            stay = np.ones(m, dtype=bool)
            stay[lost] = False
            index, codes, x0, x1, y0, y1 = (a[stay] for a in (index, codes, x0, x1, y0, y1))
            m = index.size
            k_list = index.tolist()
    size = np.fromiter(map(fn.font_size, repeat(tp, m), k_list), np.float64, m)
    no_size = size == 0
    size[no_size] = (y1 - y0)[no_size]
    angle = np.fromiter(map(fn.angle, repeat(tp, m), k_list), np.float64, m)
    upright = (angle < 0) | (np.minimum(angle, 2 * math.pi - angle) < 0.05)
    chars = CharArrays(codes, x0, x1, height - y1, height - y0, size, upright)
    return chars, int(garbled.sum())


def read_pages(path: Path) -> Iterator[PageLines]:
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == raw.FPDF_ERR_PASSWORD or "password" in str(exc).lower():
            raise ReaderError("encrypted", f"{path.name} needs a password to open") from exc
        raise ReaderError("corrupt", f"{path.name} does not open as a PDF: {exc}") from exc
    try:
        for index in range(len(pdf)):
            number = index + 1
            try:
                page = pdf[index]
                width, height = page.get_size()
                textpage = page.get_textpage()
            except pdfium.PdfiumError as exc:
                raise ReaderError("corrupt", f"{path.name}: page {number} unreadable: {exc}") from exc
            width, height = float(width), float(height)
            n = textpage.count_chars()
            chars, garbled = char_arrays(ctypes.cast(textpage.raw, ctypes.c_void_p), n, height)
            textpage.close()
            page.close()
            fast = lines_from_arrays(number, chars)
            if fast is None:
                yield page_lines(Page(number, width, height, dedupe(chars.to_chars()), garbled))
            else:
                lines, glyphs = fast
                yield PageLines(number, width, height, lines, glyphs, garbled)
    finally:
        pdf.close()
