"""The pypdfium2 path reads chars in bulk and builds lines over arrays (pipeline/readers/pdf/pdfium.py, lines.py):
it must give exactly what asking pdfium char by char and building `Char` lines gives.

Checked three ways, on the seed PDFs and on PDFs built here to hit the special cases (a ratio
drawn out of order, a rotated stamp, fake bold, Latin words, glyphs without Unicode, a code point
outside the BMP, an unmapped control code):
- chars: `F.char_arrays` against the per-char API loop the reader used before (`_oracle_chars`);
- lines: `lines_from_arrays` against `dedupe` + `chars_to_lines` on the same chars, every field;
- paragraphs: both backends agree wherever their extraction does.
"""
from __future__ import annotations

import ctypes
import dataclasses
import math
from pathlib import Path

import pikepdf
import pytest
from conftest import SEEDS_DIR, STEMS
from hostile_files import cjk_font
from pikepdf import Array, Dictionary, Name
from test_readers import FONT_SIZE, LEFT, POLICY, make_pdf, paginate, typeset

from pipeline.readers import ReaderError, ReaderOptions, read_paras
from pipeline.readers.pdf import lines as L
from pipeline.readers.pdf import pdfium as F
from pipeline.readers.pdf import records

SEED_PDFS = [SEEDS_DIR / f"{stem}.pdf" for stem in STEMS]


def _oracle_chars(tp, height: float) -> tuple[list[records.Char], int]:
    """The reader's former per-char loop over pypdfium2.raw, verbatim in what it selects and reads."""
    from pypdfium2 import raw

    left, bottom, right, top = (ctypes.c_double() for _ in range(4))
    rect = raw.FS_RECTF()
    chars, garbled = [], 0
    for k in range(raw.FPDFText_CountChars(tp)):
        if raw.FPDFText_IsGenerated(tp, k) == 1:
            continue
        code = raw.FPDFText_GetUnicode(tp, k)
        unmapped = raw.FPDFText_HasUnicodeMapError(tp, k) == 1
        if unmapped or code in (0, 0xFFFD, 0xFFFE) or 0xD800 <= code <= 0xDFFF:
            garbled += 1
            text = L.REPLACEMENT
        elif code < 0x20 and code != 0x09:
            continue
        else:
            text = chr(code)
        if not raw.FPDFText_GetLooseCharBox(tp, k, ctypes.byref(rect)):
            if not raw.FPDFText_GetCharBox(tp, k, ctypes.byref(left), ctypes.byref(right),
                                           ctypes.byref(bottom), ctypes.byref(top)):
                continue
            x0, x1, y0, y1 = left.value, right.value, bottom.value, top.value
        else:
            x0, x1, y0, y1 = rect.left, rect.right, rect.bottom, rect.top
        size = raw.FPDFText_GetFontSize(tp, k) or (y1 - y0)
        angle = raw.FPDFText_GetCharAngle(tp, k)
        upright = angle < 0 or min(angle, 2 * math.pi - angle) < 0.05
        chars.append(records.Char(text, x0, x1, height - y1, height - y0, float(size), upright))
    return chars, garbled


def _pages(path: Path):
    """(number, width, height, oracle chars, oracle garbled, array chars, array garbled) per page."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            width, height = (float(v) for v in page.get_size())
            textpage = page.get_textpage()
            oracle, oracle_garbled = _oracle_chars(textpage.raw, height)
            arrays, garbled = F.char_arrays(ctypes.cast(textpage.raw, ctypes.c_void_p),
                                                    textpage.count_chars(), height)
            textpage.close()
            page.close()
            yield index + 1, width, height, oracle, oracle_garbled, arrays, garbled
    finally:
        pdf.close()


def _assert_fast_path_exact(path: Path) -> int:
    """Chars and lines of every page equal the per-char reference; returns pages on the fast path."""
    fast_pages = 0
    for number, width, height, oracle, oracle_garbled, arrays, garbled in _pages(path):
        assert arrays.to_chars() == oracle, f"page {number}: chars differ"
        assert garbled == oracle_garbled
        deduped = L.dedupe(oracle)
        reference = L.chars_to_lines(records.Page(number, width, height, deduped, garbled))
        fast = L.lines_from_arrays(number, arrays)
        if fast is None:  # a page the array path hands back to the reference path
            continue
        lines, glyphs = fast
        assert [dataclasses.astuple(ln) for ln in lines] == [dataclasses.astuple(ln) for ln in reference]
        assert glyphs == sum(1 for c in deduped if not c.text.isspace())
        fast_pages += 1
    return fast_pages


def _texts(path: Path, backend: str) -> list[tuple[str, int]]:
    return [(p.text, p.page) for p in read_paras(path, ReaderOptions(pdf_backend=backend))]


def _hex(text: str) -> str:
    return text.encode("utf-16-be").hex()


# ---------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SEED_PDFS, ids=lambda p: p.stem)
def test_seed_chars_and_lines_equal_the_per_char_reference(path):
    assert _assert_fast_path_exact(path) >= 1


@pytest.mark.parametrize("path", SEED_PDFS, ids=lambda p: p.stem)
def test_seed_backends_give_identical_paragraphs(path):
    assert _texts(path, "pypdfium2") == _texts(path, "pdfplumber")


def test_seed_ratio_colon_drawn_late_reads_1_1():
    # pdfium emits this ratio as "11∶": the colon is drawn afterwards in another font.
    seed = SEEDS_DIR / "003_af7725881e400d8b.pdf"
    text = "".join(t for t, _ in _texts(seed, "pypdfium2"))
    assert "按不超过1∶1的比例" in text
    assert "11∶" not in text
    assert _assert_fast_path_exact(seed) >= 1


# ---------------------------------------------------------------------------------------------
# PDFs built here
# ---------------------------------------------------------------------------------------------

def _ratio_ops(number):
    y = 842 - 60 - FONT_SIZE
    return [f"BT /F1 10 Tf 1 0 0 1 {LEFT + 60} {y} Tm <{_hex('按1')}> Tj ET",
            f"BT /F1 10 Tf 1 0 0 1 {LEFT + 90} {y} Tm <{_hex('的比例配套。')}> Tj ET",
            f"BT /F1 10 Tf 1 0 0 1 {LEFT + 75} {y} Tm <{_hex('∶1')}> Tj ET"]


def test_built_ratio_drawn_out_of_order(tmp_path):
    path = tmp_path / "ratio.pdf"
    make_pdf(path, [[(LEFT, 60.0, "（一）资助", FONT_SIZE)]], extra_ops=_ratio_ops)
    assert _assert_fast_path_exact(path) == 1
    text = "".join(t for t, _ in _texts(path, "pypdfium2")).replace(" ", "")
    assert "按1∶1的比例配套。" in text
    assert _texts(path, "pypdfium2") == _texts(path, "pdfplumber")


def test_built_policy_with_header_footer_latin_and_indent(tmp_path):
    paras = POLICY + ["Made in China 2025 and the Guangdong-Hong Kong-Macao Greater Bay Area plan (GBA) apply."]
    pages = paginate(typeset(paras, indent=2 * FONT_SIZE), per_page=12,
                     header="广东省科学技术厅文件", footer=lambda n: f"— {n} —")
    path = tmp_path / "policy.pdf"
    make_pdf(path, pages)
    assert _assert_fast_path_exact(path) == len(pages)
    assert _texts(path, "pypdfium2") == _texts(path, "pdfplumber")


def _rotated(text: str, x: float, y: float, degrees: float = 30.0) -> str:
    # (pdfium drops text objects of this non-embedded font set at exactly 90°, so 30°.)
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return f"BT /F1 10 Tf {c:.4f} {s:.4f} {-s:.4f} {c:.4f} {x} {y} Tm <{_hex(text)}> Tj ET"


def test_built_rotated_stamp_is_dropped_on_the_fast_path(tmp_path):
    path = tmp_path / "stamp.pdf"  # a few turned glyphs: well under a tenth of the page
    make_pdf(path, paginate(typeset(POLICY), per_page=30), extra_ops=lambda n: [_rotated("内部资料", 400, 300)])
    chars = next(_pages(path))[3]
    assert 0 < sum(not c.upright for c in chars) < 0.1 * len(chars)
    assert _assert_fast_path_exact(path) == 1
    got = _texts(path, "pypdfium2")
    assert [t for t, _ in got] == POLICY


def test_built_mostly_rotated_page_keeps_its_text(tmp_path):
    # A page set at an angle: the turned glyphs are the page, so none is dropped.
    path = tmp_path / "turned.pdf"
    make_pdf(path, [[]], extra_ops=lambda n: [_rotated(line, 100 + 15 * i, 100) for i, line in enumerate(POLICY[:4])])
    chars = next(_pages(path))[3]
    assert chars and not any(c.upright for c in chars)
    assert _assert_fast_path_exact(path) == 1


def _typeset_arrays(lines: list[str], copies: int = 1, size: float = 10.0) -> records.CharArrays:
    """A page's chars as pdfium would hand them over when it has no glyph boxes to compare: one
    glyph per code point, `size` wide, a line every 15 pt, each glyph drawn `copies` times, the
    copies nudged 0.25 pt right (the "fake bold" of WPS and Word exports)."""
    import numpy as np

    rows = [(ord(ch), LEFT + size * i + 0.25 * k, 60.0 + 15 * n)
            for n, line in enumerate(lines) for i, ch in enumerate(line) for k in range(copies)]
    codes, x0, top = (np.array(col) for col in zip(*rows))
    return records.CharArrays(codes, x0.astype(float), x0 + size, top.astype(float), top + size,
                              np.full(len(rows), size), np.ones(len(rows), dtype=bool))


@pytest.mark.parametrize("copies", [2, 3])
def test_doubled_glyphs_go_through_dedupe(copies):
    # Where pdfium has the font, it drops a glyph drawn again on the spot of the one before
    # itself; where it has none (a non-embedded CJK font on a machine without CJK fonts), the
    # copies reach us. Built as arrays, so the test does not depend on the machine's fonts.
    single, doubled = _typeset_arrays(POLICY[:2]), _typeset_arrays(POLICY[:2], copies)
    assert len(doubled.codes) == copies * len(single.codes)
    assert L.lines_from_arrays(1, doubled) is None  # not taken on the fast path ...
    lines = L.chars_to_lines(records.Page(1, 595.0, 842.0, L.dedupe(doubled.to_chars())))
    assert [ln.text for ln in lines] == POLICY[:2]  # ... but by dedupe + chars_to_lines, once
    fast, glyphs = L.lines_from_arrays(1, single)
    assert lines == fast and glyphs == len(single.codes)


@pytest.mark.parametrize("copies", [2, 3])
def test_built_fake_bold_reads_once_on_both_backends(tmp_path, copies):
    # Whoever drops the copies (pdfium itself when a CJK font is installed, else dedupe), the
    # text comes out once, on either backend.
    path = tmp_path / "bold.pdf"
    make_pdf(path, paginate(typeset(POLICY[:4]), per_page=30), copies=copies)
    for backend in ("pypdfium2", "pdfplumber"):
        assert [t for t, _ in _texts(path, backend)] == POLICY[:4]


def _identity_pdf(path: Path, mappings: bytes, pages: list[list[bytes]]) -> None:
    """One line of hex glyph codes (CIDs) per entry, 15pt apart."""
    pdf = pikepdf.new()
    font = cjk_font(pdf, to_unicode=mappings)
    for lines in pages:
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = Dictionary(Font=Dictionary(F1=font))
        ops = [b"BT /F1 10 Tf 1 0 0 1 50 %d Tm <%s> Tj ET" % (700 - 15 * i, codes) for i, codes in enumerate(lines)]
        page.Contents = pdf.make_stream(b"\n".join(ops))
    pdf.save(path)


def test_built_codes_outside_the_bmp_and_unmapped_control_codes(tmp_path):
    # CID 3 has no mapping and is the control code 0x03 for pdfium (page 1); CID 2 maps to
    # U+20000, two surrogate chars on one glyph for pdfium (page 2). Either way the page text
    # is not one unit per char, so each char's code point is asked for, with the same result
    # (page 2's two U+FFFD on one spot then go through dedupe like fake bold).
    path = tmp_path / "nonbmp.pdf"
    mappings = b"<0001> <4E00>\n<0002> <D840DC00>\n<0004> <0041>\n<0005> <4E8C>"
    body = [b"0001" * (i + 1) + b"0005" * (25 - i) for i in range(20)]  # all different: pdfium drops repeats
    _identity_pdf(path, mappings, [[b"000100030004" * 3] + body, [b"000100020004" * 3] + body])
    assert _assert_fast_path_exact(path) == 1
    assert _texts(path, "pypdfium2")  # few garbled glyphs among many: read, not refused


def test_built_code_points_beyond_the_bmp_read_one_by_one(tmp_path):
    # Glyph names u20000 / u1F600 give pdfium one char each beyond the BMP; its page text
    # (UCS-2) leaves them out, so the reader must notice the short count and ask per char.
    pdf = pikepdf.new()
    font = pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica,
        Encoding=Dictionary(Type=Name.Encoding, BaseEncoding=Name.WinAnsiEncoding,
                            Differences=Array([65, Name("/u20000"), Name("/u1F600")])),
    ))
    page = pdf.add_blank_page(page_size=(595, 842))
    page.Resources = Dictionary(Font=Dictionary(F1=font))
    page.Contents = pdf.make_stream(b"BT /F1 10 Tf 1 0 0 1 50 700 Tm (xAyBz) Tj ET")
    path = tmp_path / "beyond_bmp.pdf"
    pdf.save(path)
    assert "\U00020000" in "".join(c.text for c in next(_pages(path))[3])
    assert _assert_fast_path_exact(path) == 1
    assert "x\U00020000y\U0001F600z" in "".join(t for t, _ in _texts(path, "pypdfium2"))


def test_big_page_gets_its_own_buffers():
    small = F._char_buffers(100)
    assert F._char_buffers(50) is small
    big = F._char_buffers(F._KEEP_BUFFERS_UP_TO + 1)
    assert big.capacity > F._KEEP_BUFFERS_UP_TO and F._char_buffers(100) is small


def test_built_mostly_unmapped_glyphs_are_garbled_on_both_paths(tmp_path):
    path = tmp_path / "unmapped.pdf"
    _identity_pdf(path, b"<0001> <4E00>", [[b"0001" * (i + 1) + b"0007" * 30 for i in range(10)]])
    assert _assert_fast_path_exact(path) == 1
    with pytest.raises(ReaderError) as exc:
        _texts(path, "pypdfium2")
    assert exc.value.reason == "garbled_text"


# ---------------------------------------------------------------------------------------------
# The array helpers against their per-char definitions
# ---------------------------------------------------------------------------------------------

def test_cjk_mask_matches_is_cjk():
    import numpy as np

    codes = np.arange(0x41000)
    mask = L._cjk_mask(codes)
    expected = np.array([L.is_cjk(chr(c)) for c in range(0x41000) if not 0xD800 <= c <= 0xDFFF])
    assert (mask[(codes < 0xD800) | (codes > 0xDFFF)] == expected).all()


def test_space_codes_are_pythons_isspace():
    assert L._SPACE_CODES == [c for c in range(0x110000) if chr(c).isspace()]


def test_non_finite_boxes_go_to_the_reference_path():
    import numpy as np

    arrays = records.CharArrays(np.array([0x4E00, 0x4E8C]), np.array([0.0, np.nan]), np.array([10.0, 20.0]),
                           np.array([5.0, 5.0]), np.array([15.0, 15.0]), np.array([10.0, 10.0]),
                           np.array([True, True]))
    assert L.lines_from_arrays(1, arrays) is None
