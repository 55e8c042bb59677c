"""Readers on real files: DOCX/TXT/PDF built here in tmp_path, plus the seed documents.

No mocks: every test writes bytes to disk and reads them back through `read_paras`.
PDFs are written with pikepdf using the non-embedded standard CJK font STSong-Light
(UniGB-UTF16-H), which both pdfminer and pdfium map to Unicode without a font file, so the
geometry of every line is known exactly.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import docx
import pikepdf
import pytest
from conftest import SEEDS_DIR, STEMS
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from hostile_files import cid_glyph_pdf, cjk_font
from pikepdf import Dictionary

from pipeline.model import Para
from pipeline.readers import (
    PARSER_VERSIONS,
    READERS,
    ReaderError,
    ReaderOptions,
    parser_name,
    read_paras,
    sniff_format,
)
from pipeline.readers.docx import format_number

SEEDS = SEEDS_DIR  # the sample drafts in raw/, the seeds of tests/gold
BACKENDS = ["pdfplumber", "pypdfium2"]


def texts(paras: list[Para]) -> list[str]:
    return [p.text for p in paras]


def no_ws(s: str) -> str:
    return re.sub(r"\s+", "", s)


# =============================================================================================
# Registry
# =============================================================================================


def test_registry_is_keyed_by_format_and_versions_name_every_reader():
    assert set(READERS) == {"text", "docx", "pdf"}
    assert {"text", "docx", "pdfplumber", "pypdfium2"} <= set(PARSER_VERSIONS)
    assert PARSER_VERSIONS["pdfplumber"].startswith("pdfplumber-pdfplumber-0.11")
    assert parser_name("pdf", ReaderOptions(pdf_backend="pypdfium2")) == "pypdfium2"
    assert parser_name("docx") == "docx"


def test_reader_error_carries_reason_and_message():
    err = ReaderError("corrupt", "broken xref")
    assert err.reason == "corrupt" and "broken xref" in str(err)
    with pytest.raises(ValueError):
        ReaderError("nonsense", "x")


# =============================================================================================
# Text
# =============================================================================================

SIMPLIFIED = (
    "湛江市培育前沿新材料战略性新兴产业集群高质量发展实施方案\n"
    "（征求意见稿）\n"
    "\n"
    "一、总体要求\r\n"
    "（一）总体思路\n"
    "　　到2025年，产业营业收入达到10亿元，力争建成1家以上省级创新平台。\n"
    "（责任单位：市科学技术局牵头，市发展和改革局按职责分工负责）\n"
)
TRADITIONAL = (
    "深圳市關於推動新材料產業集群高質量發展的若干措施\n"
    "一、重點支持領域\n"
    "（一）建立政府與市場協同機制。由市工業和信息化局牽頭建立新材料產業工作專班。\n"
    "（責任單位：市工業和信息化局、發展改革委、科技創新委）\n"
)
EXPECTED_SIMPLIFIED = [
    "湛江市培育前沿新材料战略性新兴产业集群高质量发展实施方案",
    "（征求意见稿）",
    "一、总体要求",
    "（一）总体思路",
    "到2025年，产业营业收入达到10亿元，力争建成1家以上省级创新平台。",
    "（责任单位：市科学技术局牵头，市发展和改革局按职责分工负责）",
]


@pytest.mark.parametrize(
    "name,data,expected",
    [
        ("gbk", SIMPLIFIED.encode("gbk"), EXPECTED_SIMPLIFIED),
        ("gb18030", (SIMPLIFIED + "㐀䶮𠀀\n").encode("gb18030"), EXPECTED_SIMPLIFIED + ["㐀䶮𠀀"]),
        ("big5", TRADITIONAL.encode("big5"), [ln for ln in TRADITIONAL.splitlines() if ln]),
        ("utf16_bom", SIMPLIFIED.encode("utf-16"), EXPECTED_SIMPLIFIED),
        ("utf16be_bom", b"\xfe\xff" + SIMPLIFIED.encode("utf-16-be"), EXPECTED_SIMPLIFIED),
        ("utf32_bom", SIMPLIFIED.encode("utf-32"), EXPECTED_SIMPLIFIED),
        ("utf8_bom", SIMPLIFIED.encode("utf-8-sig"), EXPECTED_SIMPLIFIED),
        ("utf8", SIMPLIFIED.encode("utf-8"), EXPECTED_SIMPLIFIED),
    ],
)
def test_text_encodings(tmp_path, name, data, expected):
    path = tmp_path / f"{name}.txt"
    path.write_bytes(data)
    assert sniff_format(path) == "text"
    paras = read_paras(path)
    assert texts(paras) == expected
    assert all(p.page is None for p in paras)


def test_text_forced_encoding(tmp_path):
    path = tmp_path / "forced.txt"
    path.write_bytes(SIMPLIFIED.encode("gbk"))
    assert texts(read_paras(path, ReaderOptions(text_encoding="gb18030"))) == EXPECTED_SIMPLIFIED


def test_text_undecodable_bytes_are_corrupt(tmp_path):
    path = tmp_path / "junk.txt"
    path.write_bytes("总体要求".encode("gb18030") + b"\xff\xfe\xfd\x80\x81\xff\xff" * 20)
    assert sniff_format(path) is None  # not text: refused before any reader runs
    with pytest.raises(ReaderError) as exc:
        READERS["text"](path, ReaderOptions())
    assert exc.value.reason == "corrupt"


def test_text_binary_controls_are_corrupt(tmp_path):
    path = tmp_path / "ctrl.txt"
    path.write_bytes(b"abc\x00\x01\x02def" * 10)
    with pytest.raises(ReaderError) as exc:
        READERS["text"](path, ReaderOptions())
    assert exc.value.reason == "corrupt"


@pytest.mark.parametrize("data", [b"", b"\n\r\n  \n\xe3\x80\x80\n"])
def test_text_empty(tmp_path, data):
    path = tmp_path / "empty.txt"
    path.write_bytes(data)
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "empty_file"


# =============================================================================================
# Sniffing
# =============================================================================================

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("image.pdf", PNG, "unsupported_format"),
        ("legacy.docx", OLE2, "unsupported_format"),
        ("legacy.doc", OLE2 + "WordDocument".encode("utf-16-le"), "unsupported_format"),
        ("locked.docx", OLE2 + "EncryptedPackage".encode("utf-16-le"), "encrypted"),
        ("page.docx", b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>", "unsupported_format"),
        ("page.pdf", b"\xef\xbb\xbf  <html lang='zh'><head><title>\xe9\x94\x99\xe8\xaf\xaf</title></head></html>", "unsupported_format"),
        ("memo.rtf", b"{\\rtf1\\ansi hello}", "unsupported_format"),
    ],
)
def test_sniff_refuses_by_content_not_name(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    assert sniff_format(path) is None
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == reason
    assert path.name in str(exc.value)


def test_sniff_other_zip_is_unsupported(tmp_path):
    path = tmp_path / "sheet.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    assert sniff_format(path) is None
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "unsupported_format"


def test_sniff_recognises_real_formats_under_wrong_names(tmp_path):
    d = docx.Document()
    d.add_paragraph("一、总体要求")
    d.save(tmp_path / "really_docx.pdf")
    pdf_path = tmp_path / "really_pdf.txt"
    make_pdf(pdf_path, [[(50, 60, "一、总体要求", 10)]])
    txt_path = tmp_path / "really_text.docx"
    txt_path.write_text("一、总体要求\n", encoding="utf-8")
    assert sniff_format(tmp_path / "really_docx.pdf") == "docx"
    assert sniff_format(pdf_path) == "pdf"
    assert sniff_format(txt_path) == "text"
    for path in (tmp_path / "really_docx.pdf", pdf_path, txt_path):
        assert texts(read_paras(path)) == ["一、总体要求"]


def test_zero_byte_file_is_empty(tmp_path):
    path = tmp_path / "nothing.pdf"
    path.write_bytes(b"")
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "empty_file"


# =============================================================================================
# DOCX
# =============================================================================================

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

NUMBERING_XML = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:numbering xmlns:w="{W}">
  <w:abstractNum w:abstractNumId="10">
    <w:multiLevelType w:val="multilevel"/>
    <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="%1、"/><w:suff w:val="nothing"/></w:lvl>
    <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="（%2）"/></w:lvl>
    <w:lvl w:ilvl="2"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%3."/><w:suff w:val="nothing"/></w:lvl>
    <w:lvl w:ilvl="3"><w:start w:val="1"/><w:numFmt w:val="decimalEnclosedCircle"/><w:lvlText w:val="%4"/></w:lvl>
  </w:abstractNum>
  <w:abstractNum w:abstractNumId="20">
    <w:lvl w:ilvl="0"><w:start w:val="3"/><w:numFmt w:val="ideographTraditional"/><w:lvlText w:val="%1."/><w:suff w:val="space"/></w:lvl>
  </w:abstractNum>
  <w:abstractNum w:abstractNumId="30">
    <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="附件%1"/><w:suff w:val="space"/></w:lvl>
  </w:abstractNum>
  <w:num w:numId="1"><w:abstractNumId w:val="10"/></w:num>
  <w:num w:numId="2"><w:abstractNumId w:val="20"/></w:num>
  <w:num w:numId="3"><w:abstractNumId w:val="10"/>
    <w:lvlOverride w:ilvl="0"><w:startOverride w:val="5"/></w:lvlOverride>
  </w:num>
  <w:num w:numId="4"><w:abstractNumId w:val="30"/></w:num>
</w:numbering>
"""


def _numbered(d, text: str, num_id: int | None = None, ilvl: int | None = None, style: str | None = None):
    p = d.add_paragraph(text, style=style)
    if num_id is not None:
        ppr = p._p.get_or_add_pPr()
        numpr = parse_xml(
            f'<w:numPr {nsdecls("w")}>'
            + (f'<w:ilvl w:val="{ilvl}"/>' if ilvl is not None else "")
            + f'<w:numId w:val="{num_id}"/></w:numPr>'
        )
        ppr.append(numpr)
    return p


def _replace_part(path: Path, name: str, data: str) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, data.encode("utf-8") if item.filename == name else src.read(item.filename))
    tmp.replace(path)


def test_docx_auto_numbering_renders_labels(tmp_path):
    d = docx.Document()
    # A heading style that carries its own numbering (numId 1, level 0), as Word templates do.
    style = d.styles.add_style("CNHeading1", WD_STYLE_TYPE.PARAGRAPH)
    style.element.get_or_add_pPr().append(
        parse_xml(f'<w:numPr {nsdecls("w")}><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>')
    )
    d.add_paragraph("湛江市培育前沿新材料战略性新兴产业集群高质量发展实施方案")
    _numbered(d, "总体要求", 1, 0)
    _numbered(d, "总体思路", 1, 1)
    d.add_paragraph("以习近平新时代中国特色社会主义思想为指导。")  # unnumbered body: counters untouched
    _numbered(d, "提高前沿新材料基础研究能力。", 1, 2)
    _numbered(d, "突破前沿新材料核心技术。", 1, 2)
    _numbered(d, "第一个要点", 1, 3)
    _numbered(d, "总体目标", 1, 1)
    _numbered(d, "重启的第三级", 1, 2)  # level 2 restarts after level 1 advanced
    _numbered(d, "重点任务", style="CNHeading1")  # numbering from the paragraph style
    _numbered(d, "实施核心技术攻坚行动", 1, 1)
    _numbered(d, "保障措施", 1, 0)
    _numbered(d, "天干编号", 2, 0)  # ideographTraditional with w:start 3
    _numbered(d, "天干编号二", 2, 0)
    _numbered(d, "重新起算", 3, 0)  # same list, startOverride 5
    _numbered(d, "继续", 3, 0)
    _numbered(d, "湛江前沿新材料产业链图谱", 4, 0)
    _numbered(d, "", 1, 1)  # an empty numbered paragraph: counted, not emitted
    _numbered(d, "空段之后", 1, 1)
    path = tmp_path / "numbered.docx"
    d.save(path)
    _replace_part(path, "word/numbering.xml", NUMBERING_XML)

    assert texts(read_paras(path)) == [
        "湛江市培育前沿新材料战略性新兴产业集群高质量发展实施方案",
        "一、总体要求",
        "（一）总体思路",
        "以习近平新时代中国特色社会主义思想为指导。",
        "1.提高前沿新材料基础研究能力。",
        "2.突破前沿新材料核心技术。",
        "①第一个要点",
        "（二）总体目标",
        "1.重启的第三级",
        "二、重点任务",
        "（一）实施核心技术攻坚行动",
        "三、保障措施",
        "丙. 天干编号",
        "丁. 天干编号二",
        "五、重新起算",
        "六、继续",
        "附件1 湛江前沿新材料产业链图谱",
        "（二）空段之后",
    ]


@pytest.mark.parametrize(
    "n,fmt,expected",
    [
        (1, "chineseCounting", "一"),
        (10, "chineseCounting", "十"),
        (11, "chineseCounting", "十一"),
        (20, "chineseCounting", "二十"),
        (23, "chineseCountingThousand", "二十三"),
        (101, "chineseCountingThousand", "一百零一"),
        (110, "chineseCountingThousand", "一百一十"),
        (3, "ideographTraditional", "丙"),
        (12, "ideographTraditional", "乙"),
        (4, "chineseLegalSimplified", "肆"),
        (3, "decimalEnclosedCircle", "③"),
        (21, "decimalEnclosedCircle", "21"),
        (12, "decimalFullWidth", "１２"),
        (2, "lowerLetter", "b"),
        (27, "lowerLetter", "aa"),
        (4, "upperRoman", "IV"),
        (7, "decimal", "7"),
        (7, "somethingNew", "7"),
    ],
)
def test_number_formats(n, fmt, expected):
    assert format_number(n, fmt) == expected


def test_docx_table_content_control_and_tracked_changes_in_order(tmp_path):
    d = docx.Document()
    d.add_paragraph("一、重点任务")
    table = d.add_table(rows=3, cols=3)
    table.cell(0, 0).text = "序号"
    table.cell(0, 1).text = "任务"
    table.cell(0, 2).text = "责任单位"
    table.cell(1, 0).text = "1"
    table.cell(1, 1).text = "建设创新平台"
    table.cell(1, 2).text = "市科学技术局"
    merged = table.cell(2, 0).merge(table.cell(2, 2))  # one cell spanning the row: text once
    merged.text = "合计"
    # A row whose cell holds several paragraphs is a layout container: one Para per paragraph.
    row = table.add_row()
    row.cells[0].text = "2"
    row.cells[1].text = "（一）实施行动"
    row.cells[1].add_paragraph("1.推进高新区发展。")
    p = d.add_paragraph("前文")
    p._p.append(parse_xml(
        f'<w:ins {nsdecls("w")} w:id="1" w:author="a" w:date="2024-01-01T00:00:00Z">'
        "<w:r><w:t>插入</w:t></w:r></w:ins>"
    ))
    p._p.append(parse_xml(
        f'<w:del {nsdecls("w")} w:id="2" w:author="a" w:date="2024-01-01T00:00:00Z">'
        "<w:r><w:delText>删除</w:delText></w:r></w:del>"
    ))
    p._p.append(parse_xml(
        f'<w:sdt {nsdecls("w")}><w:sdtPr><w:alias w:val="单位"/></w:sdtPr>'
        "<w:sdtContent><w:r><w:t>行内控件</w:t></w:r></w:sdtContent></w:sdt>"
    ))
    p.add_run("后文")
    d.element.body.insert(
        len(d.element.body) - 1,  # before w:sectPr
        parse_xml(
            f'<w:sdt {nsdecls("w")}><w:sdtPr><w:tag w:val="x"/></w:sdtPr><w:sdtContent>'
            "<w:p><w:r><w:t>块级控件内容</w:t></w:r></w:p>"
            "</w:sdtContent></w:sdt>"
        ),
    )
    q = d.add_paragraph("域结果：")
    q._p.append(parse_xml(
        f'<w:r {nsdecls("w")}><w:fldChar w:fldCharType="begin"/></w:r>'
    ))
    q._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:instrText> PAGE </w:instrText></w:r>'))
    q._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:fldChar w:fldCharType="separate"/></w:r>'))
    q._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:t>7</w:t></w:r>'))
    q._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:fldChar w:fldCharType="end"/></w:r>'))
    r = d.add_paragraph("标题行")
    r.add_run().add_break()
    r.add_run("（一）换行后的正文")
    path = tmp_path / "mixed.docx"
    d.save(path)

    assert texts(read_paras(path)) == [
        "一、重点任务",
        "序号 | 任务 | 责任单位",
        "1 | 建设创新平台 | 市科学技术局",
        "合计",
        "2",
        "（一）实施行动",
        "1.推进高新区发展。",
        "前文插入行内控件后文",
        "块级控件内容",
        "域结果：7",
        "标题行",
        "（一）换行后的正文",
    ]


def test_docx_broken_xml_is_corrupt(tmp_path):
    path = tmp_path / "broken.docx"
    d = docx.Document()
    d.add_paragraph("x")
    d.save(path)
    _replace_part(path, "word/document.xml", "<w:document xmlns:w='oops'><w:body><w:p>")
    assert sniff_format(path) == "docx"
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "corrupt"


def test_docx_without_text_is_empty(tmp_path):
    path = tmp_path / "blank.docx"
    docx.Document().save(path)
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "empty_file"


# =============================================================================================
# PDF: a tiny typesetter and writer
# =============================================================================================

FONT_SIZE = 10.0
LEFT, RIGHT = 50.0, 450.0  # text block: 40 CJK characters per line
PITCH = 15.0
_CLOSERS = set("，。、；：？！）》」』】”’%")


def _width(ch: str) -> float:
    return FONT_SIZE / 2 if ch.isascii() else FONT_SIZE  # STSong-Light: /W [1 95 500], /DW 1000


def _units(text: str) -> list[str]:
    """Unbreakable units the way an office suite wraps: ASCII words, CJK + closing punctuation."""
    units: list[str] = []
    for ch in text:
        if units and (ch in _CLOSERS or (ch.isascii() and ch.isalnum() and units[-1][-1:].isascii()
                                         and units[-1][-1:].isalnum())):
            units[-1] += ch
        else:
            units.append(ch)
    return units


def typeset(paragraphs: list[str], indent: float = 0.0) -> list[tuple[float, str]]:
    """(x, text) lines: greedy fill to RIGHT, paragraphs start on a new line."""
    lines = []
    for para in paragraphs:
        x0 = LEFT + indent
        line, width = "", 0.0
        for unit in _units(para):
            w = sum(_width(c) for c in unit)
            if line and x0 + width + w > RIGHT + 0.01:
                lines.append((x0, line))
                x0, line, width = LEFT, "", 0.0
            line += unit
            width += w
        lines.append((x0, line))
    return lines


def paginate(lines, per_page: int, header: str | None = None, footer=None, top: float = 60.0):
    pages = []
    for start in range(0, len(lines), per_page):
        n = len(pages) + 1
        page = [(x, top + i * PITCH, text, FONT_SIZE) for i, (x, text) in enumerate(lines[start : start + per_page])]
        if header:
            page.insert(0, (LEFT, 25.0, header, 9.0))
        if footer:
            page.append((250.0, 800.0, footer(n), 9.0))
        pages.append(page)
    return pages


def make_pdf(path: Path, pages, encryption=None, copies: int = 1, extra_ops=None) -> None:
    """pages: [[(x, top, text, size), ...], ...] on A4; text in STSong-Light via UniGB-UTF16-H."""
    pdf = pikepdf.new()
    font = cjk_font(pdf)
    for number, lines in enumerate(pages):
        ops = []
        for x, top, text, size in lines:
            y = 842 - top - size
            hexed = text.encode("utf-16-be").hex()
            ops.append(f"BT /F1 {size} Tf 1 0 0 1 {x} {y} Tm <{hexed}> Tj ET")
            for k in range(1, copies):  # "fake bold": the same glyphs again, nudged right
                ops.append(f"BT /F1 {size} Tf 1 0 0 1 {x + 0.25 * k} {y} Tm <{hexed}> Tj ET")
        if extra_ops:
            ops.extend(extra_ops(number))
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = Dictionary(Font=Dictionary(F1=font))
        page.Contents = pdf.make_stream("\n".join(ops).encode("ascii"))
    pdf.save(path, encryption=encryption)


POLICY = [
    "广东省培育前沿新材料战略性新兴产业集群行动计划",
    "一、总体情况",
    "前沿新材料是具有战略性、前瞻性和颠覆性的新材料，是未来产业发展的制高点，具有重要引领作用和重大应用前景。"
    "结合国家、省相关规划和我省新材料产业发展的现状，重点发展智能、仿生与超材料。",
    "（一）发展现状。",
    "2019年，我省前沿新材料产业营业收入接近500亿元，产业技术水平和综合实力位居全国前列，"
    "新型显示、OLED蒸镀材料和5G关键材料等领域形成了较强优势。",
    "（二）存在问题。核心技术和专用装备水平相对落后。",
    "1.突破前沿新材料核心技术。围绕先进金属材料、新能源材料、生物医用材料、海洋材料、新型复合材料等领域，"
    "突破一批关键技术。（责任单位：市科学技术局牵头，市发展和改革局、工业和信息化局按职责分工负责）",
    "专栏1：创新平台建设",
    "新型研发机构：围绕新型半导体、新能源材料等领域构建一批国内领先的新型研发机构。",
    "附件1 湛江前沿新材料产业链图谱",
]


def _read(path: Path, backend: str) -> list[Para]:
    return read_paras(path, ReaderOptions(pdf_backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_rejoins_wrapped_lines_and_drops_running_header_and_footer(tmp_path, backend):
    lines = typeset(POLICY)
    assert len(lines) > len(POLICY)  # some paragraphs really wrap
    pages = paginate(lines, per_page=5, header="广东省前沿新材料行动计划（征求意见稿）", footer=lambda n: f"— {n} —")
    path = tmp_path / "policy.pdf"
    make_pdf(path, pages)
    paras = _read(path, backend)
    assert texts(paras) == POLICY
    # Each paragraph keeps the page it starts on.
    starts, line_no = [], 0
    for para in POLICY:
        starts.append(line_no // 5 + 1)
        line_no += len(typeset([para]))
    assert [p.page for p in paras] == starts


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "footer",
    [lambda n: f"- {n} -", lambda n: f"第{n}页", lambda n: f"{n}/4", lambda n: str(n), lambda n: f"第 {n} 页 共 4 页"],
    ids=["dash", "di-ye", "slash", "bare", "di-gong"],
)
def test_pdf_page_counters_removed(tmp_path, backend, footer):
    pages = paginate(typeset(POLICY), per_page=5, footer=footer)
    path = tmp_path / "counters.pdf"
    make_pdf(path, pages)
    assert texts(_read(path, backend)) == POLICY


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_browser_print_header_and_footer_removed(tmp_path, backend):
    lines = typeset(POLICY)
    pages = paginate(lines, per_page=6)
    total = len(pages)
    for n, page in enumerate(pages, start=1):
        page.insert(0, (20.0, 12.0, "2022/5/6 10:21", 8.0))
        page.insert(1, (250.0, 12.0, "广东省人民政府门户网站", 8.0))
        page.append((20.0, 815.0, "https://www.gd.gov.cn/zwgk/wjk/qbwj/yfh/content/post_3111111.html", 8.0))
        page.append((540.0, 815.0, f"{n}/{total}", 8.0))
    path = tmp_path / "browser.pdf"
    make_pdf(path, pages)
    assert texts(_read(path, backend)) == POLICY


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_continuation_across_page_break_of_a_short_line(tmp_path, backend):
    # The source itself broke the line at a page end ("培育建成 5" ⏎ page ⏎ "个具有…").
    body = typeset(POLICY[2:3] + ["（二）主要目标"])
    page1 = [(x, 60.0 + i * PITCH, text, FONT_SIZE) for i, (x, text) in enumerate(body)]
    page1.append((LEFT, 60.0 + len(body) * PITCH, "（三）产业集群格局形成，产业生态不断优化。培育建成 5", FONT_SIZE))
    pages = [
        page1,
        [(LEFT, 60.0, "个具有全球竞争力的产业基地和7个特色产业集聚区。", FONT_SIZE),
         (LEFT, 75.0, "专栏 3：创新平台建设", FONT_SIZE)],
        [(LEFT, 60.0, "新型研发机构：构建一批国内领先的新型研发机构。", FONT_SIZE)],
    ]
    path = tmp_path / "pagebreak.pdf"
    make_pdf(path, pages)
    paras = _read(path, backend)
    assert texts(paras) == [
        POLICY[2],
        "（二）主要目标",
        "（三）产业集群格局形成，产业生态不断优化。培育建成 5个具有全球竞争力的产业基地和7个特色产业集聚区。",
        "专栏 3：创新平台建设",  # a heading at a page end does not swallow the next page
        "新型研发机构：构建一批国内领先的新型研发机构。",
    ]
    assert [p.page for p in paras] == [1, 1, 1, 2, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_first_line_indent_separates_paragraphs_that_fill_the_line(tmp_path, backend):
    # Official documents indent each paragraph by two characters. Paragraphs 3 and 4 end
    # exactly at the right edge, so only the indent of the next line says a new one starts.
    paragraphs = [
        "为贯彻省委、省政府关于推进制造强省建设的工作部署，加快培育先进材料产业集群，促进产业迈向全球价值链中高端。",
        "一、总体情况",
        "为" * 37 + "。",  # one indented line, exactly full
        "加" * 77 + "。",  # two lines, the second exactly full
        "先进材料产业是我省的重要产业，成为支撑我省经济发展的主导力量之一。",
        "二、发展目标",
        "到2025年，先进材料产业集群营业收入达到3万亿元。",
    ]
    lines = typeset(paragraphs, indent=2 * FONT_SIZE)
    assert lines[3][1] == "为" * 37 + "。" and lines[5][1].endswith("。")
    path = tmp_path / "indent.pdf"
    make_pdf(path, paginate(lines, per_page=30))
    assert texts(_read(path, backend)) == paragraphs


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_ratio_drawn_out_of_order_is_repaired(tmp_path, backend):
    # The ratio's second half is drawn last, in its own text object: content-stream order
    # "按1" "的比例配套。" "∶1", reading order 按1∶1的比例配套。 (pdfium reports stream order).
    # (A one-glyph text object in this non-embedded test font is dropped by pdfium, hence "∶1".)
    def ratio(number):
        y = 842 - 60 - FONT_SIZE
        return [f"BT /F1 10 Tf 1 0 0 1 {LEFT + 60} {y} Tm <{'按1'.encode('utf-16-be').hex()}> Tj ET",
                f"BT /F1 10 Tf 1 0 0 1 {LEFT + 90} {y} Tm <{'的比例配套。'.encode('utf-16-be').hex()}> Tj ET",
                f"BT /F1 10 Tf 1 0 0 1 {LEFT + 75} {y} Tm <{'∶1'.encode('utf-16-be').hex()}> Tj ET"]

    path = tmp_path / "ratio.pdf"
    make_pdf(path, [[(LEFT, 60.0, "（一）资助", FONT_SIZE)]], extra_ops=ratio)
    paras = _read(path, backend)
    assert "按1∶1的比例配套。" in no_ws("".join(texts(paras)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("copies", [2, 4])
def test_pdf_fake_bold_is_deduplicated(tmp_path, backend, copies):
    path = tmp_path / "bold.pdf"
    make_pdf(path, paginate(typeset(POLICY[:4]), per_page=30), copies=copies)
    assert texts(_read(path, backend)) == POLICY[:4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_owner_password_only_is_read(tmp_path, backend):
    path = tmp_path / "owner.pdf"
    make_pdf(path, paginate(typeset(POLICY[:3]), per_page=30),
             encryption=pikepdf.Encryption(owner="owner-secret", user="", R=6))
    assert texts(_read(path, backend)) == POLICY[:3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_user_password_is_encrypted(tmp_path, backend):
    path = tmp_path / "locked.pdf"
    make_pdf(path, paginate(typeset(POLICY[:3]), per_page=30),
             encryption=pikepdf.Encryption(owner="owner-secret", user="user-secret", R=4))
    with pytest.raises(ReaderError) as exc:
        _read(path, backend)
    assert exc.value.reason == "encrypted"


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_without_text_is_no_text_layer(tmp_path, backend):
    path = tmp_path / "scan.pdf"
    make_pdf(path, [[], []], extra_ops=lambda n: ["0.5 g 50 50 400 700 re f"])
    with pytest.raises(ReaderError) as exc:
        _read(path, backend)
    assert exc.value.reason == "no_text_layer"


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_mostly_scanned_is_no_text_layer(tmp_path, backend):
    # A typed cover page in front of scanned pages would otherwise pass for the whole document.
    pages = [[(LEFT, 60.0, "关于印发行动计划的通知", FONT_SIZE)], [], [], []]
    path = tmp_path / "mostly_scanned.pdf"
    make_pdf(path, pages, extra_ops=lambda n: ["0.5 g 50 50 400 700 re f"] if n else [])
    with pytest.raises(ReaderError) as exc:
        _read(path, backend)
    assert exc.value.reason == "no_text_layer"


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_image_annex_pages_are_fine(tmp_path, backend):
    pages = paginate(typeset(POLICY), per_page=30) + [[], []]  # two chart pages at the end
    path = tmp_path / "with_charts.pdf"
    make_pdf(path, pages, extra_ops=lambda n: ["0.5 g 50 50 400 700 re f"] if n else [])
    assert texts(_read(path, backend)) == POLICY


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_fonts_without_unicode_are_garbled(tmp_path, backend):

    path = tmp_path / "garbled.pdf"
    cid_glyph_pdf(path, lines=1)
    with pytest.raises(ReaderError) as exc:
        _read(path, backend)
    assert exc.value.reason == "garbled_text"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n" + bytes(range(256)) * 8, b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n%%EOF"],
    ids=["garbage", "dangling-pages"],
)
def test_pdf_broken_is_corrupt(tmp_path, backend, data):
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    assert sniff_format(path) == "pdf"
    with pytest.raises(ReaderError) as exc:
        _read(path, backend)
    assert exc.value.reason == "corrupt"


def test_pdf_unknown_backend_is_a_programming_error(tmp_path):
    path = tmp_path / "x.pdf"
    make_pdf(path, [[(LEFT, 60.0, "一、总体要求", FONT_SIZE)]])
    with pytest.raises(ValueError):
        read_paras(path, ReaderOptions(pdf_backend="mupdf"))


# =============================================================================================
# Seeds: the same documents as txt, docx and pdf
# =============================================================================================

SEED_STEMS = STEMS
_MARKUP = re.compile(r"\[bookmark:[^\]]*\]|\*\*|\s+")


@pytest.mark.parametrize("stem", SEED_STEMS)
def test_seed_docx_matches_txt_paragraph_for_paragraph(stem):
    txt = [no_ws(p.text) for p in read_paras(SEEDS / f"{stem}.txt")]
    got = [no_ws(p.text) for p in read_paras(SEEDS / f"{stem}.docx")]
    assert got == txt


@pytest.mark.parametrize("stem", SEED_STEMS)
def test_seed_pdf_backends_agree_and_hold_the_txt_characters(stem):
    reference = _MARKUP.sub("", "".join(p.text for p in read_paras(SEEDS / f"{stem}.txt")))
    plumber = _read(SEEDS / f"{stem}.pdf", "pdfplumber")
    pdfium = _read(SEEDS / f"{stem}.pdf", "pypdfium2")
    assert plumber == pdfium
    assert _MARKUP.sub("", "".join(p.text for p in plumber)) == reference
    assert all(p.page is not None and p.page >= 1 for p in plumber)


def test_seed_002_paragraph_continues_across_page_break():
    for backend in BACKENDS:
        paras = _read(SEEDS / "002_ef17eb8ff52a8b39.pdf", backend)
        hit = [p for p in paras if "培育建成 5个具有全球竞争力的产业基地" in p.text]
        assert len(hit) == 1 and hit[0].text.startswith("（三）产业集群格局形成") and hit[0].page == 2


def test_seed_003_ratio_survives_pypdfium2():
    paras = _read(SEEDS / "003_af7725881e400d8b.pdf", "pypdfium2")
    assert any("按不超过1∶1的比例" in p.text for p in paras)


def test_seed_000_responsibility_line_stays_in_its_paragraph():
    for backend in BACKENDS:
        paras = _read(SEEDS / "000_eb1ffd486ff57c8e.pdf", backend)
        para = next(p for p in paras if p.text.startswith("1.提高前沿新材料基础研究能力"))
        assert para.text.endswith(
            "（责任单位：市科学技术局牵头，市发展和改革局、工业和信息化局、广东海洋大学、广东医科大学、岭南师范学院按职责分工负责）"
        )
        assert para.page == 2


@pytest.mark.skipif(shutil.which("libreoffice") is None and shutil.which("soffice") is None,
                    reason="libreoffice not installed")
def test_docx_converted_by_libreoffice_reads_like_the_docx(tmp_path):
    import subprocess

    d = docx.Document()
    for para in POLICY:
        d.add_paragraph(para)
    src = tmp_path / "policy.docx"
    d.save(src)
    office = shutil.which("libreoffice") or shutil.which("soffice")
    subprocess.run([office, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(src)],
                   check=True, timeout=120, capture_output=True)
    for backend in BACKENDS:
        assert [no_ws(t) for t in texts(_read(tmp_path / "policy.pdf", backend))] == [no_ws(t) for t in POLICY]
