"""Builders for a hostile raw/ folder: every kind of broken file a drop folder receives, next to good ones.

`build_raw(raw, outside, good_dir)` writes the files and returns one `Case` per path with the
outcome the pipeline must give it: "ok" (rows in the tables) or a reason from pipeline/errors.py.
Everything is made here with the libraries the project depends on (pikepdf, python-docx,
zipfile, zlib, Pillow); nothing is downloaded. Used by tests/test_hostile.py and bench/hostile.py.

The timeout and memory cases are real files that are slow or big for the real parsers, sized for
the test limits (`TEST_LIMITS`: timeout_seconds 3 of CPU, memory_limit_mb 300) with a wide margin either way:
- `slow.pdf`: 2,000 pages each showing the same 2,000 CJK glyphs (one shared content stream, so
  the file is 10 KB): pdfplumber needs ~0.09 s a page, three minutes in all; well under the page
  and stream limits, so only the clock stops it.
- `big.docx`: a 3.5 MB DOCX whose document.xml inflates to 60 MB of short, mostly empty
  paragraphs (inflate ratio ~18, so not a bomb by the zip limits): libxml2's tree for it needs
  ~1 GB, so the parse hits a 300 MB budget after ~17 MB of XML, in ~1 s.
"""
from __future__ import annotations

import io
import os
import random
import shutil
import socket
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import docx
import pikepdf
from pikepdf import Array, Dictionary, Name

SECRET = "SECRET-OUTSIDE-RAW-7f3a9c"  # written outside raw/; must never reach a table or the cache
# timeout_seconds is CPU time (pipeline/runtime/workers.py): the memory case needs ~1 s of CPU and the
# largest good PDF ~0.7 s however loaded the machine is; slow.pdf needs minutes.
TEST_LIMITS = {"timeout_seconds": 3, "memory_limit_mb": 300, "max_file_mb": 20, "workers": 2}


@dataclass(frozen=True)
class Case:
    path: str  # relative to raw/, as the file system gives it (undecodable bytes as surrogates)
    expect: Optional[str]  # "ok", a reason, or None: no outcome at all (hidden files)
    what: str
    # For good files: the pristine file whose rows it must reproduce exactly.
    reference: Optional[Path] = None

    @property
    def display(self) -> str:
        """The path as the tables store it (invalid UTF-8 bytes shown as \\xNN)."""
        return self.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# =============================================================================================
# Low-level writers
# =============================================================================================

def deflate_raw(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def repeated_deflate(block: bytes, times: int) -> tuple[bytes, int, int]:
    """Raw deflate of `block` * `times` without building it: (data, crc32, size).

    One full-flushed compression of `block` references nothing before it, so the compressed
    bytes can be repeated; an empty final block ends the stream."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    unit = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(6, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    return unit * times + end, crc, len(block) * times


@dataclass
class Member:
    name: str
    data: bytes  # as stored in the zip (already deflated when method is 8)
    crc: int
    size: int  # stated uncompressed size
    method: int = 8
    flags: int = 0


def member(name: str, content: bytes) -> Member:
    return Member(name, deflate_raw(content), zlib.crc32(content), len(content))


def write_zip(path: Path, members: list[Member]) -> None:
    """A zip written by hand, so that headers may say what a hostile file says."""
    out = io.BytesIO()
    central = []
    for m in members:
        name = m.name.encode("utf-8")
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m.flags, m.method, 0, 0x21,
                              m.crc, len(m.data), m.size, len(name), 0))
        out.write(name)
        out.write(m.data)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, m.flags, m.method, 0, 0x21,
                                   m.crc, len(m.data), m.size, len(name), 0, 0, 0, 0, 0, offset) + name)
    cd_start = out.tell()
    for c in central:
        out.write(c)
    cd_size = out.tell() - cd_start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), cd_size, cd_start, 0))
    path.write_bytes(out.getvalue())


def docx_members(paragraphs: list[str]) -> list[Member]:
    """The members of a real python-docx document holding `paragraphs`."""
    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    with zipfile.ZipFile(buf) as zf:
        return [member(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def with_document_xml(members: list[Member], doc: Member) -> list[Member]:
    return [doc if m.name == "word/document.xml" else m for m in members]


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def document_xml(body: str, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{prolog}'
            f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>').encode("utf-8")


def para(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


# ---- PDF ------------------------------------------------------------------------------------

def cjk_font(pdf: pikepdf.Pdf, to_unicode: bytes | None = None):
    """STSong-Light, not embedded. By default UniGB-UTF16-H: both backends map it to Unicode without
    a font file. With `to_unicode` (bfchar lines, `<0041> <4E00>`), Identity-H glyph codes whose
    only Unicode mapping is that ToUnicode CMap."""
    identity = to_unicode is not None
    descriptor = pdf.make_indirect(Dictionary(
        Type=Name.FontDescriptor, FontName=Name("/STSong-Light"), Flags=6, FontBBox=Array([0, -200, 1000, 900]),
        ItalicAngle=0, Ascent=880, Descent=-120, CapHeight=880, StemV=80))
    system = (("Identity", 0) if identity else ("GB1", 2))
    cid = pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType0, BaseFont=Name("/STSong-Light"),
        CIDSystemInfo=Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String(system[0]),
                                 Supplement=system[1]),
        FontDescriptor=descriptor, DW=1000, **({} if identity else {"W": Array([1, 95, 500])})))
    font = Dictionary(Type=Name.Font, Subtype=Name.Type0, BaseFont=Name("/STSong-Light"),
                      Encoding=Name("/Identity-H" if identity else "/UniGB-UTF16-H"), DescendantFonts=Array([cid]))
    if identity:
        n = to_unicode.count(b"\n") + 1
        font.ToUnicode = pdf.make_stream(
            b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
            b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
            + f"{n} beginbfchar\n".encode() + to_unicode + b"\nendbfchar\n"
            b"endcmap CMapName currentdict /CMap defineresource pop end end")
    return pdf.make_indirect(font)


def text_ops(lines: list[str], top: float = 60.0, pitch: float = 15.0, size: float = 10.0) -> bytes:
    ops = []
    for i, line in enumerate(lines):
        y = 842 - top - i * pitch - size
        ops.append(f"BT /F1 {size} Tf 1 0 0 1 50 {y} Tm <{line.encode('utf-16-be').hex()}> Tj ET")
    return "\n".join(ops).encode("ascii")


def text_pdf(path: Path, pages: list[list[str]], encryption=None) -> None:
    pdf = pikepdf.new()
    font = cjk_font(pdf)
    for lines in pages:
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = Dictionary(Font=Dictionary(F1=font))
        page.Contents = pdf.make_stream(text_ops(lines))
    pdf.save(path, encryption=encryption)


POLICY = [
    "关于印发某市培育新材料产业集群行动计划的通知",
    "一、总体要求",
    "到2025年，新材料产业营业收入达到500亿元，培育10家以上龙头企业。",
    "二、重点任务",
    "（一）突破关键核心技术。（责任单位：市科学技术局牵头，市工业和信息化局配合）",
]


# =============================================================================================
# The cases
# =============================================================================================

TRADITIONAL = (
    "深圳市關於推動新材料產業集群高質量發展的若干措施\n"
    "一、重點支持領域\n"
    "（一）建立政府與市場協同機制。由市工業和信息化局牽頭建立新材料產業工作專班，統籌推進產業發展。\n"
    "（二）加強關鍵核心技術攻關。到2025年，新材料產業營業收入達到1000億元，培育10家以上龍頭企業。\n"
    "（責任單位：市工業和信息化局、發展改革委、科技創新委）\n"
    "二、保障措施\n"
    "（一）加大財政資金支持力度。對符合條件的項目給予最高500萬元資助。\n"
    "（責任單位：市財政局、市工業和信息化局）\n"
)


def _good(raw: Path, good_dir: Path) -> list[Case]:
    """Real drafts under awkward names: spaces, Chinese, a newline, invalid UTF-8 bytes."""
    src = {p.name[:3] + p.suffix: p for p in good_dir.iterdir()}
    plan = [
        ("good/000.txt", "000.txt", "plain UTF-8 draft"),
        ("good/政策 草案 001.docx", "001.docx", "DOCX named with Chinese and spaces"),
        ("good/two\nlines 002.pdf", "002.pdf", "PDF whose name holds a newline"),
        (os.fsdecode(b"good/bad-\xff\xfe-name 003.txt"), "003.txt", "name with invalid UTF-8 bytes"),
        ("good/004.docx", "004.docx", "plain DOCX"),
        ("good/003.pdf", "003.pdf", "plain PDF"),
    ]
    out = []
    for rel, key, what in plan:
        dst = raw / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src[key].read_bytes())
        out.append(Case(rel, "ok", what, reference=src[key]))
    return out


def _encodings(raw: Path, good_dir: Path) -> list[Case]:
    text = next(p for p in good_dir.iterdir() if p.name.startswith("001") and p.suffix == ".txt")
    t = text.read_text(encoding="utf-8-sig")
    variants = {
        "gbk": t.encode("gbk"),
        "gb18030": (t + "\n附：㐀䶮𠀀\n").encode("gb18030"),
        "utf16le-nobom": t.encode("utf-16-le"),
        "utf16be-nobom": t.encode("utf-16-be"),
        "utf16-bom": t.encode("utf-16"),
        "utf32le-nobom": t.encode("utf-32-le"),
        "utf32-bom": t.encode("utf-32"),
        "utf8-bom": t.encode("utf-8-sig"),
    }
    out = []
    d = raw / "encodings"
    d.mkdir(parents=True, exist_ok=True)
    for name, data in variants.items():
        (d / f"001-{name}.txt").write_bytes(data)
        same = name != "gb18030"  # which has a line of CJK Extension A/B characters added
        out.append(Case(f"encodings/001-{name}.txt", "ok", f"text in {name}", reference=text if same else None))
    (d / "trad-big5.txt").write_bytes(TRADITIONAL.encode("big5"))
    (d / "trad-utf8.txt").write_bytes(TRADITIONAL.encode("utf-8"))
    out.append(Case("encodings/trad-big5.txt", "ok", "traditional Chinese in Big5"))
    out.append(Case("encodings/trad-utf8.txt", "ok", "the same in UTF-8 (reference for Big5)"))
    return out


DOCX_MARKERS = {
    "table": "表格单元格内容甲",
    "textbox": "文本框里的说明乙",
    "sdt": "内容控件里的文字丙",
    "ins": "修订插入的句子丁",
    "deleted": "已删除的旧句子戊",  # must NOT appear
}


def _rich_docx(raw: Path) -> list[Case]:
    """Text in a table, a text box (mc:AlternateContent with its VML fallback), a content
    control and a tracked insertion, each to be read exactly once; deleted text never."""
    m = DOCX_MARKERS
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    wps = "http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
    box_content = f"<w:txbxContent>{para(m['textbox'])}</w:txbxContent>"
    body = (
        para("关于印发某区数字经济发展行动计划的通知")
        + para("一、总体要求")
        + f"<w:tbl><w:tr><w:tc>{para(m['table'])}</w:tc><w:tc>{para('第二列')}</w:tc></w:tr></w:tbl>"
        + "<w:p><w:r><w:t>正文段落。</w:t></w:r><w:r>"
        + f'<mc:AlternateContent xmlns:mc="{mc}"><mc:Choice Requires="wps">'
        + f'<w:drawing><wps:wsp xmlns:wps="{wps}"><wps:txbx>{box_content}</wps:txbx></wps:wsp></w:drawing>'
        + f"</mc:Choice><mc:Fallback><w:pict>{box_content}</w:pict></mc:Fallback></mc:AlternateContent>"
        + "</w:r></w:p>"
        + f"<w:sdt><w:sdtPr/><w:sdtContent>{para(m['sdt'])}</w:sdtContent></w:sdt>"
        + f'<w:p><w:ins w:id="1" w:author="a"><w:r><w:t>{m["ins"]}</w:t></w:r></w:ins>'
        + f'<w:del w:id="2" w:author="a"><w:r><w:delText>{m["deleted"]}</w:delText></w:r></w:del></w:p>'
        + para("二、保障措施")
    )
    members = with_document_xml(docx_members(["x"]), member("word/document.xml", document_xml(body)))
    write_zip(raw / "good" / "rich content.docx", members)
    return [Case("good/rich content.docx", "ok", "DOCX text in table, text box, content control, insertion")]


def _empty(raw: Path) -> list[Case]:
    d = raw / "bad"
    (d / "zero.txt").write_bytes(b"")
    (d / "blank.txt").write_bytes("\n  \r\n\u3000\n".encode("utf-8"))
    docx.Document().save(d / "blank.docx")
    return [Case("bad/zero.txt", "empty_file", "0 bytes"),
            Case("bad/blank.txt", "empty_file", "whitespace only"),
            Case("bad/blank.docx", "empty_file", "DOCX without text")]


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def _unsupported(raw: Path) -> list[Case]:
    d = raw / "bad"
    (d / "legacy.docx").write_bytes(OLE2 + "WordDocument".encode("utf-16-le") + b"\x00" * 1024)
    (d / "image.pdf").write_bytes(PNG)
    (d / "error-page.pdf").write_bytes("<!DOCTYPE html>\n<html><head><title>404 页面不存在</title></head>"
                                       "<body>404 Not Found</body></html>".encode("utf-8"))
    (d / "portal.docx").write_bytes(b"\xef\xbb\xbf  <html lang='zh'><body>login</body></html>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    (d / "sheet.docx").write_bytes(buf.getvalue())
    (d / "memo.docx").write_bytes(b"{\\rtf1\\ansi \\f0 memo}")
    return [Case("bad/legacy.docx", "unsupported_format", "legacy .doc (OLE2) named .docx"),
            Case("bad/image.pdf", "unsupported_format", "PNG named .pdf"),
            Case("bad/error-page.pdf", "unsupported_format", "HTML 404 page named .pdf"),
            Case("bad/portal.docx", "unsupported_format", "HTML with BOM named .docx"),
            Case("bad/sheet.docx", "unsupported_format", "xlsx-like zip named .docx"),
            Case("bad/memo.docx", "unsupported_format", "RTF named .docx")]


def _corrupt(raw: Path, good_dir: Path) -> list[Case]:
    d = raw / "bad"
    good_docx = next(good_dir.glob("000*.docx")).read_bytes()
    good_pdf = next(good_dir.glob("000*.pdf")).read_bytes()
    (d / "truncated.docx").write_bytes(good_docx[: len(good_docx) // 2])
    (d / "truncated.pdf").write_bytes(good_pdf[: len(good_pdf) // 2])
    rng = random.Random(1)
    (d / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + bytes(rng.randrange(256) for _ in range(20000)) + b"\n%%EOF\n")
    (d / "undecodable.txt").write_bytes(bytes(rng.randrange(128, 256) for _ in range(5000)))
    base = docx_members(["x"])
    write_zip(d / "broken-xml.docx", with_document_xml(
        base, member("word/document.xml", f'<w:document xmlns:w="{W_NS}"><w:body><w:p>'.encode())))
    # A member that states 4 KB but inflates to 64 MB: zipfile stops at the stated size, the CRC fails.
    head = document_xml(para("开头")).replace(b"</w:body></w:document>", b"")
    spaces, _, _ = repeated_deflate(b" " * (1 << 20), 64)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    liar = Member("word/document.xml", c.compress(head) + c.flush(zlib.Z_FULL_FLUSH) + spaces,
                  zlib.crc32(head), 4096)
    write_zip(d / "lying-size.docx", with_document_xml(base, liar))
    return [Case("bad/truncated.docx", "corrupt", "DOCX cut in half (no central directory)"),
            Case("bad/truncated.pdf", "corrupt", "PDF cut in half (no %%EOF, no xref)"),
            Case("bad/garbage.pdf", "corrupt", "PDF header followed by random bytes"),
            Case("bad/undecodable.txt", "corrupt", "bytes that decode in no supported encoding"),
            Case("bad/broken-xml.docx", "corrupt", "document.xml is not well-formed"),
            Case("bad/lying-size.docx", "corrupt", "member states 4 KB, inflates to 64 MB")]


def _encrypted(raw: Path) -> list[Case]:
    d = raw / "bad"
    pages = [POLICY]
    text_pdf(d / "user-password.pdf", pages, encryption=pikepdf.Encryption(owner="o-secret", user="u-secret", R=4))
    text_pdf(d / "user-password-aes256.pdf", [POLICY[:3]],
             encryption=pikepdf.Encryption(owner="o-secret", user="u-secret", R=6))
    (d / "office-encrypted.docx").write_bytes(OLE2 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 2048)
    # Zip-level encryption (traditional PKWARE) on document.xml: flag bit 0 set.
    members = docx_members(["加密"])
    members = [Member(m.name, m.data, m.crc, m.size, m.method, 1) if m.name == "word/document.xml" else m
               for m in members]
    write_zip(d / "zip-encrypted.docx", members)
    good = raw / "good"
    text_pdf(good / "owner-password-only.pdf", [POLICY[1:]], encryption=pikepdf.Encryption(owner="o-secret", user="", R=6))
    return [Case("bad/user-password.pdf", "encrypted", "PDF with a user password (RC4)"),
            Case("bad/user-password-aes256.pdf", "encrypted", "PDF with a user password (AES-256)"),
            Case("bad/office-encrypted.docx", "encrypted", "password-protected Word file (OLE2 EncryptedPackage)"),
            Case("bad/zip-encrypted.docx", "encrypted", "DOCX with a zip-encrypted document.xml"),
            Case("good/owner-password-only.pdf", "ok", "owner password only: opens with an empty user password")]


def _image_pdf(path: Path, n_pages: int) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("L", (620, 877), 255)
    draw = ImageDraw.Draw(img)
    for y in range(80, 800, 24):  # lines of "print", as a scan shows them
        draw.rectangle([60, y, 560, y + 10], fill=40)
    data = zlib.compress(img.tobytes())
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, data)
    image.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Image, Width=img.width, Height=img.height,
                                   ColorSpace=Name.DeviceGray, BitsPerComponent=8, Filter=Name.FlateDecode)
    for _ in range(n_pages):
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = Dictionary(XObject=Dictionary(Im0=image))
        page.Contents = pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im0 Do Q")
    pdf.save(path)


def _no_text(raw: Path) -> list[Case]:
    _image_pdf(raw / "bad" / "scanned.pdf", 3)
    return [Case("bad/scanned.pdf", "no_text_layer", "three scanned pages, images only")]


def cid_glyph_pdf(path: Path, lines: int = 30) -> None:
    """A PDF whose CID font has no ToUnicode map: its text layer is (cid:NN) glyphs only."""
    pdf = pikepdf.new()
    cid = pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType2, BaseFont=Name("/SubsetSong"),
        CIDSystemInfo=Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0),
        FontDescriptor=pdf.make_indirect(Dictionary(
            Type=Name.FontDescriptor, FontName=Name("/SubsetSong"), Flags=4, FontBBox=Array([0, -200, 1000, 900]),
            ItalicAngle=0, Ascent=880, Descent=-120, CapHeight=880, StemV=80)),
        DW=1000))
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type0, BaseFont=Name("/SubsetSong"),
                                        Encoding=Name("/Identity-H"), DescendantFonts=Array([cid])))
    page = pdf.add_blank_page(page_size=(595, 842))
    page.Resources = Dictionary(Font=Dictionary(F1=font))
    ops = []
    for line in range(lines):
        gids = "".join(f"{0x1000 + line * 40 + i:04x}" for i in range(40))
        ops.append(f"BT /F1 10 Tf 1 0 0 1 50 {780 - line * 15} Tm <{gids}> Tj ET")
    page.Contents = pdf.make_stream("\n".join(ops).encode())
    pdf.save(path)


def _garbled(raw: Path) -> list[Case]:
    d = raw / "bad"
    cid_glyph_pdf(d / "cid-glyphs.pdf")
    (d / "replacement-chars.txt").write_text("一、总体要求\n" + "\ufffd" * 400 + "\n", encoding="utf-8")
    return [Case("bad/cid-glyphs.pdf", "garbled_text", "CID font without ToUnicode: (cid:NN) glyphs"),
            Case("bad/replacement-chars.txt", "garbled_text", "text that is mostly U+FFFD")]


def _too_large(raw: Path) -> list[Case]:
    d = raw / "bad"
    with open(d / "huge.txt", "wb") as fh:  # sparse: over max_file_mb (20 in the test config)
        fh.truncate(21 * 1024 * 1024)
    base = docx_members(["x"])
    data, crc, size = repeated_deflate(b" " * (1 << 20), 2048)
    write_zip(d / "zip-bomb.docx", with_document_xml(base, Member("word/document.xml", data, crc, size)))
    many = base + [member(f"word/media/pad{i}.bin", b"") for i in range(10_001)]
    write_zip(d / "many-members.docx", many)
    # PDF whose only content stream inflates 1000x to 1 GB.
    pdf = pikepdf.new()
    data, _, _ = repeated_deflate(b" " * (1 << 20), 1024)
    page = pdf.add_blank_page(page_size=(595, 842))
    stream = pikepdf.Stream(pdf, b"")
    stream.write(b"x\x9c" + data, filter=Name.FlateDecode)  # zlib header + the raw deflate
    page.Contents = pdf.make_indirect(stream)
    pdf.save(d / "flate-bomb.pdf", stream_decode_level=pikepdf.StreamDecodeLevel.none, compress_streams=False)
    # 6,000 pages (limit 5,000), all sharing one small content stream.
    pdf = pikepdf.new()
    font = cjk_font(pdf)
    content = pdf.make_stream(text_ops(["第页"]))
    res = Dictionary(Font=Dictionary(F1=font))
    for _ in range(6000):
        p = pdf.add_blank_page(page_size=(595, 842))
        p.Resources, p.Contents = res, content
    pdf.save(d / "many-pages.pdf")
    return [Case("bad/huge.txt", "too_large", "21 MB, over max_file_mb"),
            Case("bad/zip-bomb.docx", "too_large", "document.xml inflates 1000x to 2 GB"),
            Case("bad/many-members.docx", "too_large", "zip with 10,000+ members"),
            Case("bad/flate-bomb.pdf", "too_large", "content stream inflates 1000x to 1 GB"),
            Case("bad/many-pages.pdf", "too_large", "6,000 pages")]


SLOW_PAGES = 2000


def slow_pdf(path: Path, pages: int = SLOW_PAGES) -> None:
    """Pages of 50 lines x 40 CJK glyphs sharing one content stream: slow for pdfminer, tiny on disk."""
    line = "前沿新材料是具有战略性前瞻性和颠覆性的新材料是未来产业发展的制高点具有重要引领作用"[:40]
    pdf = pikepdf.new()
    font = cjk_font(pdf)
    content = pdf.make_stream(text_ops([line] * 50, top=30.0))
    res = Dictionary(Font=Dictionary(F1=font))
    for _ in range(pages):
        p = pdf.add_blank_page(page_size=(595, 842))
        p.Resources, p.Contents = res, content
    pdf.save(path)


def big_docx(path: Path, megabytes: int = 60) -> None:
    """document.xml of `megabytes` MB of short paragraphs, inflate ratio ~18 (not a bomb)."""
    rng = random.Random(7)
    parts, size = [], 0
    while size < 1 << 20:
        s = "<w:p/>" * rng.randrange(1, 12) + f"<w:p><w:r><w:t>{rng.randrange(10000)}</w:t></w:r></w:p>"
        parts.append(s)
        size += len(s)
    block = "".join(parts).encode()
    head = document_xml("").replace(b"</w:body></w:document>", b"")
    tail = b"</w:body></w:document>"
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    unit = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    start = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(6, zlib.DEFLATED, -15)
    end = last.compress(tail) + last.flush()
    crc = zlib.crc32(head)
    for _ in range(megabytes):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    doc = Member("word/document.xml", start + unit * megabytes + end, crc,
                 len(head) + len(block) * megabytes + len(tail))
    write_zip(path, with_document_xml(docx_members(["x"]), doc))


def _limits(raw: Path) -> list[Case]:
    slow_pdf(raw / "bad" / "slow.pdf")
    big_docx(raw / "bad" / "big.docx")
    return [Case("bad/slow.pdf", "timeout", f"{SLOW_PAGES} dense pages: minutes of pdfminer work"),
            Case("bad/big.docx", "memory_limit", "60 MB document.xml: a ~1 GB XML tree")]


def _xml_attacks(raw: Path, outside: Path) -> list[Case]:
    d = raw / "bad"
    secret = outside / "secret.txt"
    base = docx_members(["x"])
    xxe = document_xml(para("&xxe;"), f'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file://{secret}">]>\n')
    write_zip(d / "xxe.docx", with_document_xml(base, member("word/document.xml", xxe)))
    dtd = document_xml(para("外部DTD"), f'<!DOCTYPE w:document SYSTEM "file://{outside / "evil.dtd"}">\n')
    write_zip(d / "external-dtd.docx", with_document_xml(base, member("word/document.xml", dtd)))
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    laughs = document_xml(para("&lol9;"), f"<!DOCTYPE w:document [{ents}]>\n")
    write_zip(d / "billion-laughs.docx", with_document_xml(base, member("word/document.xml", laughs)))
    # The same XXE in styles.xml, a part the reader also parses.
    styles = (f'<?xml version="1.0"?><!DOCTYPE w:styles [<!ENTITY xxe SYSTEM "file://{secret}">]>'
              f'<w:styles xmlns:w="{W_NS}"><w:style w:styleId="&xxe;"/></w:styles>').encode()
    write_zip(d / "xxe-styles.docx", [member(m.name, styles) if m.name == "word/styles.xml" else m
                                      for m in docx_members(POLICY)])
    return [Case("bad/xxe.docx", "corrupt", "external entity pointing at a file outside raw/"),
            Case("bad/external-dtd.docx", "corrupt", "external DTD outside raw/"),
            Case("bad/billion-laughs.docx", "corrupt", "nested entity expansion"),
            Case("bad/xxe-styles.docx", "corrupt", "external entity in styles.xml")]


def _not_regular(raw: Path, outside: Path) -> list[Case]:
    d = raw / "special"
    d.mkdir(parents=True, exist_ok=True)
    cases = []
    os.mkfifo(d / "fifo.txt")
    cases.append(Case("special/fifo.txt", "not_a_regular_file", "a FIFO (opening it would block)"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(d / "sock.pdf"))
        cases.append(Case("special/sock.pdf", "not_a_regular_file", "a unix socket"))
    except OSError:
        pass  # path too long for AF_UNIX
    finally:
        sock.close()
    try:
        os.mknod(d / "device.txt", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
        cases.append(Case("special/device.txt", "not_a_regular_file", "a character device"))
    except (PermissionError, OSError):
        pass  # not root / nodev mount
    os.symlink(outside / "secret.txt", d / "secret-link.txt")
    os.symlink(os.path.relpath(outside / "secret.txt", d), d / "relative-link.txt")
    os.symlink("/etc/passwd", d / "passwd.txt")
    os.symlink("/dev/zero", d / "zero.pdf")
    os.symlink(outside, d / "outside-dir.docx")
    os.symlink(d / "nowhere.pdf", d / "dangling.pdf")
    os.symlink(d / "loop.txt", d / "loop.txt")
    (d / "通知.pdf").mkdir()
    cases += [Case("special/secret-link.txt", "not_a_regular_file", "absolute symlink to a file outside raw/"),
              Case("special/relative-link.txt", "not_a_regular_file", "relative ../ symlink outside raw/"),
              Case("special/passwd.txt", "not_a_regular_file", "symlink to /etc/passwd"),
              Case("special/zero.pdf", "not_a_regular_file", "symlink to /dev/zero"),
              Case("special/outside-dir.docx", "not_a_regular_file", "symlink to a directory outside raw/"),
              Case("special/dangling.pdf", "not_a_regular_file", "dangling symlink"),
              Case("special/loop.txt", "not_a_regular_file", "symlink to itself"),
              Case("special/通知.pdf", "not_a_regular_file", "a directory named like a file")]
    return cases


def _duplicates_and_hidden(raw: Path) -> list[Case]:
    d = raw / "zz"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw / "good" / "000.txt", d / "000 copy.txt")
    os.symlink(raw / "good" / "004.docx", d / "inside-link.docx")
    (d / ".hidden.txt").write_text("一、隐藏文件\n", encoding="utf-8")
    (d / "~$lock.docx").write_bytes(b"\x05user" + b"\x00" * 157)
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    return [Case("zz/000 copy.txt", "duplicate", "same bytes as good/000.txt"),
            Case("zz/inside-link.docx", "duplicate", "symlink inside raw/ to good/004.docx"),
            Case("zz/.hidden.txt", None, "hidden file: not a document, no row"),
            Case("zz/~$lock.docx", None, "Word lock file: not a document, no row"),
            Case("zz/.git/HEAD", None, "inside a hidden folder: not a document, no row")]


def build_raw(raw: Path, outside: Path, good_dir: Path, include_limits: bool = True) -> list[Case]:
    """Fill `raw` with every hostile case (and good files from `good_dir`); `outside` gets the
    secret file the XXE and symlink cases point at. Returns the cases, one per path."""
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "bad").mkdir(exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text(f"一、{SECRET}\n", encoding="utf-8")
    (outside / "evil.dtd").write_text(f'<!ENTITY leak "{SECRET}">', encoding="utf-8")
    builders: list[Callable[[], list[Case]]] = [
        lambda: _good(raw, good_dir),
        lambda: _encodings(raw, good_dir),
        lambda: _rich_docx(raw),
        lambda: _empty(raw),
        lambda: _unsupported(raw),
        lambda: _corrupt(raw, good_dir),
        lambda: _encrypted(raw),
        lambda: _no_text(raw),
        lambda: _garbled(raw),
        lambda: _too_large(raw),
        lambda: _xml_attacks(raw, outside),
        lambda: _not_regular(raw, outside),
        lambda: _duplicates_and_hidden(raw),
    ]
    if include_limits:
        builders.append(lambda: _limits(raw))
    cases = []
    for build in builders:
        cases += build()
    return cases
