"""PDF reader: characters with boxes → lines → page furniture removed → paragraphs.

Two backends deliver the same thing, the chars of each page (text + box in top-down page
coordinates); everything after that is the same rule, so both produce the same paragraphs:

    check_pdf (qpdf) → page chars, fake bold dropped → chars_to_lines → drop_furniture → lines_to_paras
      pdfplumber: a `_Char` per char (pdfminer is the cost there)
      pypdfium2:  `_CharArrays`: pdfium's per-char values fetched in bulk through bare ctypes calls,
                  then `_lines_from_arrays`, the same grouping over numpy arrays (a page it cannot
                  take exactly, e.g. fake bold, goes through `_dedupe` and `_Char`s instead)

The pypdfium2 path is a speed-up only: its chars are exactly what pdfium's per-char API gives and
its lines exactly what `chars_to_lines` makes of them (tests/test_pdf_fast.py holds it to that).

check_pdf refuses, before either backend opens the file, what would hurt the worker or mislead:
a user password (`encrypted`), a missing %%EOF (`corrupt`: a cut-off download read short would
pass for a shorter document), too many pages or streams that inflate like a bomb (`too_large`).

Lines: chars are grouped by vertical overlap and ordered by x. Ordering by x (not by content
stream order) is what repairs pypdfium2's `11∶` for a `1∶1` whose colon is drawn later in
another font. Spaces come only from the source (a space glyph, or a gap wider than a glyph).

Furniture: running headers/footers and page counters are dropped from the outer edge of each
page inwards: page-number shapes (`— 3 —`, `- 3 -`, `第3页`, `1/6`, `3`), a browser print's
date-time header and URL footer, and any line repeated at the same height on at least half
of the pages (digits ignored, so `第 3 页`-style counters inside a title repeat too).

Paragraphs: a wrapped line is recognised by geometry. Line i continues into line i+1 when the
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

import math
import re
import threading
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Iterator, Optional

import numpy as np  # already loaded wherever the pipeline runs (pyarrow)

from pipeline.model import Para
from pipeline.readers.base import ReaderError, ReaderOptions

BACKENDS = ("pdfplumber", "pypdfium2")


@dataclass(slots=True)
class _Char:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    upright: bool = True


@dataclass
class _Page:
    number: int  # 1-based
    width: float
    height: float
    chars: list[_Char]
    garbled: int = 0  # glyphs without a Unicode mapping ("(cid:NN)", U+FFFD)


@dataclass
class _Line:
    page: int
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    head_width: float  # width of the first unbreakable unit (see module doc)
    lead_space: bool = False  # the source drew a space before the first glyph
    trail_space: bool = False  # ... or after the last one


@dataclass
class _PageLines:
    """What read_pdf needs of a page: its lines, and its glyphs for the no-text and garbled checks."""

    number: int
    width: float
    height: float
    lines: list[_Line]
    glyphs: int  # chars that are not whitespace (after dedupe, before the upright filter)
    garbled: int


def _page_lines(page: _Page) -> _PageLines:
    glyphs = sum(1 for c in page.chars if not c.text.isspace())
    return _PageLines(page.number, page.width, page.height, chars_to_lines(page), glyphs, page.garbled)


# ---------------------------------------------------------------------------------------------
# Limits, checked with qpdf (pikepdf) before a text backend touches the file
# ---------------------------------------------------------------------------------------------

# pdfminer inflates each content stream, form XObject, font and CMap in one zlib call, so a
# stream that inflates to gigabytes would be allocated whole. Every stream the text path may
# decode is therefore inflated here first, in bounded chunks, only counting: a stream is refused
# (`too_large`) when it inflates past MAX_STREAM_BYTES, or more than MAX_RATIO times its encoded
# size once past RATIO_GRACE_BYTES (page content deflates 3-20x; a bomb 1000x), or all of them
# together past MAX_TOTAL_BYTES. Image XObjects are skipped: neither backend decodes them for text.
MAX_PAGES = 5000
MAX_STREAM_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 100
RATIO_GRACE_BYTES = 10 * 1024 * 1024
_CHUNK = 1 << 20
_FLATE = ("/FlateDecode", "/Fl")
# Filters whose output is no larger than their input, decoded whole when they come before an
# expanding one (an ASCII85-wrapped Flate bomb); or that no text backend decodes.
_TEXT_CODECS = ("/ASCIIHexDecode", "/AHx", "/ASCII85Decode", "/A85")
_PASS_THROUGH = ("/DCTDecode", "/DCT", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode", "/CCF", "/Crypt")
_EOF_WINDOW = 2048


class _TooLarge(Exception):
    pass


def _decode_text_codec(data: bytes, name: str) -> bytes:
    import base64
    import binascii

    if name in ("/ASCIIHexDecode", "/AHx"):
        hexdigits = bytes(b for b in data.split(b">", 1)[0] if chr(b) in "0123456789abcdefABCDEF")
        return binascii.unhexlify(hexdigits + b"0" * (len(hexdigits) % 2))
    body = data.split(b"~>", 1)[0]
    if body.startswith(b"<~"):
        body = body[2:]
    return base64.a85decode(body, adobe=False, ignorechars=b" \t\n\r\x0b\x0c\x00")


def _inflated_size(raw: bytes, filters: list[str], cap: int) -> int:
    """Bytes `raw` decodes to through a filter chain, counted in bounded chunks; _TooLarge past `cap`.

    ASCIIHex/ASCII85 before the first expanding filter are decoded whole (they shrink); chained
    Flate filters are inflated through each other chunk by chunk; RunLength output is counted
    from its length bytes. LZW (no streaming decoder at hand) is left to the worker limits, as
    are filters after the first expanding one, whose output is counted as is (an overestimate)."""
    data = raw
    stages: list[str] = []
    for f in filters:
        if f in _FLATE:
            stages.append("flate")
        elif f in ("/RunLengthDecode", "/RL"):
            stages.append("rl")
        elif f in _TEXT_CODECS and not stages:
            try:
                data = _decode_text_codec(data, f)
            except (ValueError, TypeError):
                return len(data)  # broken: the backend will say so; nothing large to allocate here
        elif f in _TEXT_CODECS or f in _PASS_THROUGH:
            continue
        else:
            break
    if not stages:
        return len(data)

    def flate(chunks):
        d = zlib.decompressobj()
        for chunk in chunks:
            while chunk:
                out = d.decompress(chunk, _CHUNK)
                chunk = d.unconsumed_tail
                if out:
                    yield out
                if d.eof:
                    return
        tail = d.flush()
        if tail:
            yield tail

    def count_rl(chunks) -> int:
        n, pending = 0, 0  # pending: literal bytes still to skip
        for chunk in chunks:
            i = 0
            while i < len(chunk):
                if pending:
                    step = min(pending, len(chunk) - i)
                    i += step
                    pending -= step
                    continue
                length = chunk[i]
                i += 1
                if length == 128:
                    return n
                if length < 128:
                    n += length + 1
                    pending = length + 1
                else:
                    n += 257 - length
                    pending = 1
                if n > cap:
                    raise _TooLarge
        return n

    stream = iter([data[i:i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""])
    total = 0
    try:
        for stage in stages:
            if stage == "rl":
                return count_rl(stream)  # RunLength is last in any sane chain
            stream = flate(stream)
        for out in stream:
            total += len(out)
            if total > cap:
                raise _TooLarge
    except zlib.error:
        return total  # a broken stream: the backend will say so; nothing more to allocate here
    return total


def _filters(d) -> list[str]:
    import pikepdf

    f = d.get("/Filter")
    if f is None:
        return []
    if isinstance(f, pikepdf.Array):
        return [str(x) for x in f]
    return [str(f)]


def check_pdf(path: Path) -> int:
    """Page count after the checks that need no text backend; ReaderError on refusal.

    `encrypted` when qpdf cannot open it with an empty password (an owner-password-only PDF
    opens and is read); `corrupt` when it does not open or has no %%EOF near its end (a
    truncated download would be read as a shorter document); `too_large` past MAX_PAGES or
    the stream limits above."""
    import pikepdf

    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - _EOF_WINDOW))
        if b"%%EOF" not in fh.read():
            raise ReaderError("corrupt", f"{path.name}: no %%EOF at the end: a truncated or damaged PDF")
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError as exc:
        raise ReaderError("encrypted", f"{path.name} needs a password to open") from exc
    except (pikepdf.PdfError, ValueError, RuntimeError, OSError) as exc:
        raise ReaderError("corrupt", f"{path.name} does not open as a PDF: {exc}") from exc
    with pdf:
        try:
            n_pages = len(pdf.pages)
        except (pikepdf.PdfError, RuntimeError, ValueError) as exc:
            raise ReaderError("corrupt", f"{path.name}: page tree unreadable: {exc}") from exc
        if n_pages > MAX_PAGES:
            raise ReaderError("too_large", f"{path.name} has {n_pages} pages (limit {MAX_PAGES})")
        total = 0
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Stream):
                continue
            try:
                d = obj.stream_dict
                if d.get("/Subtype") == pikepdf.Name.Image:
                    continue
                filters = _filters(d)
                if not filters:
                    continue
                raw = obj.read_raw_bytes()
            except (pikepdf.PdfError, RuntimeError, ValueError):
                continue  # unreadable here; the backend decides whether the page is readable
            by_ratio = max(RATIO_GRACE_BYTES, MAX_RATIO * max(len(raw), 1))
            cap = min(MAX_STREAM_BYTES, by_ratio, MAX_TOTAL_BYTES - total)
            try:
                total += _inflated_size(raw, filters, cap)
            except _TooLarge:
                if cap == MAX_TOTAL_BYTES - total:
                    why = f"the streams inflate to more than {MAX_TOTAL_BYTES >> 20} MB together"
                elif cap == by_ratio:
                    why = (f"object {obj.objgen[0]} inflates more than {MAX_RATIO}x its {len(raw)} "
                           "encoded bytes: a decompression bomb")
                else:
                    why = f"object {obj.objgen[0]} inflates past {MAX_STREAM_BYTES >> 20} MB"
                raise ReaderError("too_large", f"{path.name}: {why}") from None
        return n_pages


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------

_CID_RE = re.compile(r"^\(cid:\d+\)$")
_REPLACEMENT = "\ufffd"


def _is_garbled_glyph(text: str) -> bool:
    return text == _REPLACEMENT or bool(_CID_RE.match(text))


def _has_near_duplicates(chars: list[dict], tolerance: float = 1.0) -> bool:
    """Cheap test for "fake bold" (each glyph drawn twice at almost the same spot)."""
    keyed = sorted(chars, key=lambda c: (c["text"], c["top"], c["x0"]))
    for a, b in zip(keyed, keyed[1:]):
        if (a["text"] == b["text"] and not a["text"].isspace()
                and abs(a["top"] - b["top"]) <= tolerance and abs(a["x0"] - b["x0"]) <= tolerance):
            return True
    return False


def _pages_pdfplumber(path: Path) -> Iterator[_Page]:
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        pdf = pdfplumber.open(str(path))
    except Exception as exc:  # pdfplumber wraps every pdfminer failure in PdfminerException
        cause = exc.__cause__ or (exc.args[0] if exc.args else None)
        if isinstance(cause, (PDFPasswordIncorrect, PDFEncryptionError)) or isinstance(exc, (PDFPasswordIncorrect, PDFEncryptionError)):
            raise ReaderError("encrypted", f"{path.name} needs a password to open") from exc
        raise ReaderError("corrupt", f"{path.name} does not open as a PDF: {exc!r}") from exc
    with pdf:
        try:
            pages = list(pdf.pages)
        except Exception as exc:
            raise ReaderError("corrupt", f"{path.name}: page tree unreadable: {exc!r}") from exc
        for number, page in enumerate(pages, start=1):
            try:
                raw = page.chars
                # page.dedupe_chars() is quadratic (sorted(key=list.index)); only pay for it
                # when the page really has doubled glyphs.
                if _has_near_duplicates(raw):
                    raw = page.dedupe_chars().chars
                width, height = float(page.width), float(page.height)
            except Exception as exc:
                raise ReaderError("corrupt", f"{path.name}: page {number} unreadable: {exc!r}") from exc
            chars = []
            garbled = 0
            for c in raw:
                text = c["text"]
                if _is_garbled_glyph(text):
                    garbled += 1
                    text = _REPLACEMENT
                chars.append(_Char(text, float(c["x0"]), float(c["x1"]), float(c["top"]),
                                   float(c["bottom"]), float(c.get("size") or 0.0), bool(c.get("upright", True))))
            page.close()
            yield _Page(number, width, height, chars, garbled)


def _read_pdfplumber(path: Path) -> Iterator[_PageLines]:
    for page in _pages_pdfplumber(path):
        yield _page_lines(page)


def _dedupe(chars: list[_Char], tolerance: float = 1.0) -> list[_Char]:
    """Drop glyphs repeated at (almost) the same place: the "fake bold" trick."""
    keyed = sorted(range(len(chars)), key=lambda i: (chars[i].text, chars[i].top, chars[i].x0))
    drop = set()
    kept: Optional[_Char] = None
    for i in keyed:
        c = chars[i]
        # Compare with the last glyph kept, so a glyph drawn three or four times goes too.
        if (kept is not None and c.text == kept.text and not c.text.isspace()
                and abs(c.top - kept.top) <= tolerance and abs(c.x0 - kept.x0) <= tolerance):
            drop.add(i)
        else:
            kept = c
    return [c for i, c in enumerate(chars) if i not in drop] if drop else chars


# --- pypdfium2: the text page's chars in bulk ---------------------------------------------------
#
# A page holds ~2,000 chars. Asked one by one through pypdfium2.raw (seven calls of ~0.5 µs, then
# a `_Char`), they cost more than pdfium's own parsing of the page. Here each value is fetched for
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


@dataclass
class _CharArrays:
    """A page's chars as parallel arrays, in content-stream order: what `_Char` holds, per column."""

    codes: np.ndarray  # int64 code points (U+FFFD for garbled glyphs)
    x0: np.ndarray
    x1: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    size: np.ndarray
    upright: np.ndarray  # bool

    def to_chars(self) -> list[_Char]:
        return [_Char(chr(c), a, b, t, m, s, u) for c, a, b, t, m, s, u in zip(
            self.codes.tolist(), self.x0.tolist(), self.x1.tolist(), self.top.tolist(),
            self.bottom.tolist(), self.size.tolist(), self.upright.tolist())]


def _pdfium_char_arrays(tp, n: int, height: float) -> tuple[_CharArrays, int]:
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
        return _CharArrays(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty, np.zeros(0, dtype=bool)), 0
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
    chars = _CharArrays(codes, x0, x1, height - y1, height - y0, size, upright)
    return chars, int(garbled.sum())


def _read_pypdfium2(path: Path) -> Iterator[_PageLines]:
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
            chars, garbled = _pdfium_char_arrays(ctypes.cast(textpage.raw, ctypes.c_void_p), n, height)
            textpage.close()
            page.close()
            fast = _lines_from_arrays(number, chars)
            if fast is None:
                yield _page_lines(_Page(number, width, height, _dedupe(chars.to_chars()), garbled))
            else:
                lines, glyphs = fast
                yield _PageLines(number, width, height, lines, glyphs, garbled)
    finally:
        pdf.close()


_BACKEND_FUNCS = {"pdfplumber": _read_pdfplumber, "pypdfium2": _read_pypdfium2}


# ---------------------------------------------------------------------------------------------
# Characters → lines
# ---------------------------------------------------------------------------------------------

def _is_cjk(ch: str) -> bool:
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


def _line_from_chars(page: int, chars: list[_Char]) -> Optional[_Line]:
    chars.sort(key=lambda c: c.x0)
    glyphs = [c for c in chars if not c.text.isspace()]
    if not glyphs:
        return None
    size = median(c.size for c in glyphs) or (glyphs[0].bottom - glyphs[0].top) or 10.0
    out: list[str] = []
    prev: Optional[_Char] = None
    pending_space = False
    for c in chars:
        if c.text.isspace():
            pending_space = prev is not None
            continue
        if prev is not None:
            gap = c.x0 - prev.x1
            # CJK is set solid, so a gap next to it must be wide (a half-width space is
            # 0.5em) before it counts; Latin word spaces can be as narrow as 0.2em.
            cjk = _is_cjk(prev.text[-1]) or _is_cjk(c.text[0])
            wide = gap > (0.4 if cjk else 0.2) * size
            if pending_space or wide:
                out.append(" ")
        out.append(c.text)
        prev = c
        pending_space = False
    return _Line(
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


def chars_to_lines(page: _Page) -> list[_Line]:
    """Group a page's glyphs into lines, top to bottom."""
    chars = page.chars
    upright = [c for c in chars if c.upright]
    # Rotated glyphs that are a small minority are watermarks or stamps, not body text.
    if len(upright) >= 0.9 * len(chars):
        chars = upright
    chars = sorted(chars, key=lambda c: ((c.top + c.bottom) / 2, c.x0))
    groups: list[list[_Char]] = []
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
    """Lookup tables for the array path: str.isspace() below U+3002 and `_is_cjk` over the BMP."""
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
    """`_is_cjk` over an array of code points (beyond the BMP: U+20000-3FFFF)."""
    return np.where(codes < 0x10000, _code_tables()[1][codes & 0xFFFF], (codes >= 0x20000) & (codes <= 0x3FFFF))


def _lines_from_arrays(number: int, chars: _CharArrays) -> Optional[tuple[list[_Line], int]]:
    """`_dedupe` + `chars_to_lines` over arrays: the same lines, and the page's glyph count.

    None when the page needs the `_Char` path: a box or size that is not finite (sorting would
    differ) or glyphs drawn twice (fake bold, for `_dedupe`). Per step, what makes it equal:
    - sorting: numpy's lexsort is stable, as `sorted` is, on the same float64 keys;
    - `_dedupe` drops nothing unless some glyph is within tolerance of its neighbour in
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
        lines.append(_Line(
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


# ---------------------------------------------------------------------------------------------
# Page furniture
# ---------------------------------------------------------------------------------------------

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


def _repeated_lines(pages: list[list[_Line]]) -> set[int]:
    """ids of edge lines whose text (digits ignored) recurs at the same height on ≥ half the pages."""
    if len(pages) < 2:
        return set()
    need = max(2, math.ceil(len(pages) / 2))
    groups: dict[tuple[str, str], list[_Line]] = defaultdict(list)
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
        best: list[_Line] = []
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


def drop_furniture(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Remove running headers, footers and page counters from each page's outer lines."""
    repeated = _repeated_lines(pages)

    def is_furniture(ln: _Line) -> bool:
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


# ---------------------------------------------------------------------------------------------
# Lines → paragraphs
# ---------------------------------------------------------------------------------------------

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


def _frame(lines: list[_Line], fallback: Optional[_Frame] = None) -> Optional[_Frame]:
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


def _heading_like(para_lines: list[_Line]) -> bool:
    return len(para_lines) == 1 and not any(ch in _SENTENCE_PUNCT for ch in para_lines[0].text)


def _continues(prev: _Line, nxt: _Line, para_lines: list[_Line], frame: _Frame, page_break: bool) -> bool:
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


def _join(a: _Line, b: _Line, text: str) -> str:
    # Wrapped Chinese never had a space; between ASCII words keep one only if the source drew it.
    if (a.trail_space or b.lead_space) and text[-1:].isascii() and b.text[:1].isascii():
        return text + " " + b.text
    return text + b.text


def lines_to_paras(pages: list[list[_Line]], page_sizes: list[tuple[float, float]]) -> list[Para]:
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
    para_lines: list[_Line] = []
    text = ""
    prev: Optional[_Line] = None
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


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def read_pdf(path: Path, options: ReaderOptions) -> list[Para]:
    path = Path(path)
    backend = _BACKEND_FUNCS.get(options.pdf_backend)
    if backend is None:
        raise ValueError(f"unknown pdf_backend {options.pdf_backend!r}; choose one of {BACKENDS}")
    check_pdf(path)
    pages: list[list[_Line]] = []
    sizes: list[tuple[float, float]] = []
    n_glyphs = 0
    n_garbled = 0
    blank_pages = 0
    for page in backend(path):
        n_glyphs += page.glyphs
        blank_pages += page.glyphs == 0
        n_garbled += page.garbled
        pages.append(page.lines)
        sizes.append((page.width, page.height))
    if not pages:
        raise ReaderError("corrupt", f"{path.name} has no pages")
    if n_glyphs == 0:
        raise ReaderError("no_text_layer", f"{path.name}: {len(pages)} page(s) without text (scanned?); OCR it first")
    if blank_pages >= 3 and blank_pages > len(pages) / 2:
        # A scan with a typed cover or stamp: what text there is would pass for the document.
        raise ReaderError(
            "no_text_layer", f"{path.name}: {blank_pages} of {len(pages)} pages have no text (scanned?); OCR it first"
        )
    if n_garbled > options.max_garbled_ratio * n_glyphs:
        raise ReaderError(
            "garbled_text",
            f"{path.name}: {n_garbled} of {n_glyphs} glyphs have no Unicode mapping (fonts without ToUnicode)",
        )
    return lines_to_paras(drop_furniture(pages), sizes)
