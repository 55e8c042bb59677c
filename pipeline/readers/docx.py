"""DOCX reader: the body's paragraphs and table rows in document order, as Word shows them.

The package is opened here, not by python-docx: only the parts the text needs are inflated
(document, numbering, styles, relationships, content types; never images), each in bounded
chunks after its stated size passed the zip-bomb limits (`safezip`), and parsed with
entity substitution, DTD loading and network access off. A part that declares a DTD is refused
(`corrupt`): OOXML forbids them, so one is an XXE or billion-laughs attempt. Relationship
targets resolve to members of the same zip; external targets are never followed, so nothing
outside the file is ever read. The body XML is walked directly because python-docx's
`Paragraph.text` misses text a reader does see (tracked insertions, inline content controls,
field results) and `Table.rows[i].cells` repeats merged cells.

What counts as visible text (the "accept all changes" view):
- w:t inside runs, hyperlinks, smart tags, content controls (w:sdt → w:sdtContent only),
  tracked insertions (w:ins, w:moveTo), simple fields (w:fldSimple) and complex-field results;
- not: deleted text (w:del, w:moveFrom, w:delText), field codes (w:instrText), ruby guide text,
  hidden runs (w:vanish), and mc:Fallback (it repeats mc:Choice, typically a text box twice).
Each w:t is visited exactly once, so content controls and insertions are never doubled.

Layout decisions:
- a manual line break (w:br, w:cr) splits the paragraph into two Paras, since authors use it
  to put a heading and its body on separate lines;
- text boxes become Paras of their own right after the paragraph that anchors them;
- a table row whose cells each hold at most one paragraph is one Para (cell texts joined by
  ` | `: a record reads as one line, and its columns stay apart, so a task table's 牵头单位
  column is found as in a text export); a row with a multi-paragraph cell is a layout container
  and yields one Para per cell paragraph, so headings inside it still start paragraphs.

Automatic numbering is rendered from numbering.xml and prefixed to the paragraph text
(`一、总体要求` reads the same whether typed or generated), see `_Numbering`.
"""
from __future__ import annotations

import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from lxml import etree

from pipeline.model import Para
from pipeline.readers.base import ReaderError, ReaderOptions

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"


def _w(tag: str) -> str:
    return f"{{{W_NS}}}{tag}"


W_P, W_TBL, W_TR, W_TC, W_R, W_T = _w("p"), _w("tbl"), _w("tr"), _w("tc"), _w("r"), _w("t")
W_VAL = _w("val")
M_T = f"{{{M_NS}}}t"

# Containers that are transparent at block level (hold paragraphs / tables / rows / cells).
_BLOCK_WRAPPERS = {_w("sdt"), _w("sdtContent"), _w("customXml"), _w("ins"), _w("moveTo")}
# Elements whose content a reader never sees (or sees elsewhere).
_SKIP = {
    _w("pPr"), _w("rPr"), _w("sdtPr"), _w("sdtEndPr"), _w("del"), _w("moveFrom"),
    _w("delText"), _w("instrText"), _w("delInstrText"), _w("rt"), _w("tblPr"), _w("trPr"),
    _w("tcPr"), _w("tblGrid"), _w("sectPr"), _w("footnoteReference"), _w("endnoteReference"),
    _w("commentReference"), _w("annotationRef"),
    f"{{{MC_NS}}}Fallback",
}
_BREAK = "\n"  # internal marker for w:br / w:cr; never left in a Para


# ---------------------------------------------------------------------------------------------
# Number formats
# ---------------------------------------------------------------------------------------------

_CN_DIGITS = "〇一二三四五六七八九"
_CN_LEGAL_SIMPLIFIED = "零壹贰叁肆伍陆柒捌玖"
_CN_LEGAL_TRADITIONAL = "零壹貳參肆伍陸柒捌玖"
_TIANGAN = "甲乙丙丁戊己庚辛壬癸"
_DIZHI = "子丑寅卯辰巳午未申酉戌亥"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_PARENTHESIZED = "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾⑿⒀⒁⒂⒃⒄⒅⒆⒇"
_FULLSTOP = "⒈⒉⒊⒋⒌⒍⒎⒏⒐⒑⒒⒓⒔⒕⒖⒗⒘⒙⒚⒛"


def _cn_counting(n: int, digits: str = _CN_DIGITS, ten: str = "十", hundred: str = "百",
                 thousand: str = "千", zero: str = "零") -> str:
    """一 … 十, 十一, 二十, 一百零一: how Word renders chineseCounting(Thousand)."""
    if n <= 0:
        return digits[0] if n == 0 else str(n)
    if n >= 10000:
        return str(n)
    out = []
    units = ((1000, thousand), (100, hundred), (10, ten), (1, ""))
    pending_zero = False
    for value, unit in units:
        d = (n // value) % 10
        if d == 0:
            if out:
                pending_zero = True
            continue
        if pending_zero:
            out.append(zero)
            pending_zero = False
        if not (value == 10 and d == 1 and not out):  # 十一, not 一十一
            out.append(digits[d])
        out.append(unit)
    return "".join(out)


def _letters(n: int, upper: bool) -> str:
    # Word repeats the letter: a … z, aa … zz, aaa …
    if n <= 0:
        return str(n)
    base = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if upper else "abcdefghijklmnopqrstuvwxyz"
    return base[(n - 1) % 26] * ((n - 1) // 26 + 1)


def _roman(n: int, upper: bool) -> str:
    if n <= 0 or n >= 4000:
        return str(n)
    parts = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
             (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = []
    for value, sym in parts:
        while n >= value:
            out.append(sym)
            n -= value
    s = "".join(out)
    return s if upper else s.lower()


def _from_table(table: str, n: int) -> str:
    return table[n - 1] if 1 <= n <= len(table) else str(n)


def _cycle(table: str, n: int) -> str:
    return table[(n - 1) % len(table)] if n >= 1 else str(n)


def format_number(n: int, fmt: str) -> str:
    """Render counter `n` in the OOXML w:numFmt `fmt` (unknown formats fall back to decimal)."""
    if fmt in ("decimal", "decimalHalfWidth"):
        return str(n)
    if fmt in ("chineseCounting", "chineseCountingThousand", "japaneseCounting",
               "taiwaneseCounting", "taiwaneseCountingThousand"):
        return _cn_counting(n)
    if fmt in ("ideographDigital", "taiwaneseDigital", "japaneseDigitalTenThousand"):
        return "".join(_CN_DIGITS[int(d)] for d in str(n)) if n >= 0 else str(n)
    if fmt == "chineseLegalSimplified":
        return _cn_counting(n, _CN_LEGAL_SIMPLIFIED, "拾", "佰", "仟", "零")
    if fmt in ("ideographLegalTraditional", "japaneseLegal"):
        return _cn_counting(n, _CN_LEGAL_TRADITIONAL, "拾", "佰", "仟", "零")
    if fmt == "ideographTraditional":
        return _cycle(_TIANGAN, n)
    if fmt == "ideographZodiac":
        return _cycle(_DIZHI, n)
    if fmt in ("decimalEnclosedCircle", "decimalEnclosedCircleChinese", "ideographEnclosedCircle"):
        return _from_table(_CIRCLED, n)
    if fmt == "decimalEnclosedParen":
        return _from_table(_PARENTHESIZED, n)
    if fmt == "decimalEnclosedFullstop":
        return _from_table(_FULLSTOP, n)
    if fmt in ("decimalFullWidth", "decimalFullWidth2"):
        return "".join(chr(ord(d) + 0xFEE0) if d.isdigit() else d for d in str(n))
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt == "lowerLetter":
        return _letters(n, upper=False)
    if fmt == "upperLetter":
        return _letters(n, upper=True)
    if fmt == "lowerRoman":
        return _roman(n, upper=False)
    if fmt == "upperRoman":
        return _roman(n, upper=True)
    if fmt == "none":
        return ""
    return str(n)


# Bullets drawn from Symbol/Wingdings sit in the private use area; show what they look like.
_PUA_BULLETS = {"\uf06c": "●", "\uf0b7": "•", "\uf0a7": "▪", "\uf0d8": "➢", "\uf0fc": "✓", "\uf075": "◆",
                "\uf06e": "■", "\uf0a8": "◆", "\uf076": "❖", "\uf0e8": "➔"}


def _visible_bullet(text: str) -> str:
    out = []
    for ch in text:
        if "\ue000" <= ch <= "\uf8ff":
            mapped = _PUA_BULLETS.get(ch)
            if mapped:
                out.append(mapped)
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Numbering
# ---------------------------------------------------------------------------------------------


@dataclass
class _Level:
    fmt: str = "decimal"
    text: str = ""
    start: int = 1
    restart: Optional[int] = None  # w:lvlRestart: restart after this (1-based) level; 0 = never
    is_lgl: bool = False
    suff: str = "tab"
    pstyle: Optional[str] = None


@dataclass
class _Num:
    abstract_id: str
    start_overrides: dict[int, int] = field(default_factory=dict)
    level_overrides: dict[int, _Level] = field(default_factory=dict)


def _val(el: Optional[etree._Element], default: Optional[str] = None) -> Optional[str]:
    if el is None:
        return default
    return el.get(W_VAL, default)


def _int(value: Optional[str], default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _parse_level(lvl: etree._Element) -> _Level:
    level = _Level()
    level.fmt = _val(lvl.find(_w("numFmt")), "decimal") or "decimal"
    text_el = lvl.find(_w("lvlText"))
    level.text = _val(text_el, "") if text_el is not None else ""
    level.start = _int(_val(lvl.find(_w("start"))), 1)
    restart = lvl.find(_w("lvlRestart"))
    level.restart = _int(_val(restart), 0) if restart is not None else None
    is_lgl = lvl.find(_w("isLgl"))
    level.is_lgl = is_lgl is not None and _val(is_lgl, "true") not in ("0", "false", "off")
    level.suff = _val(lvl.find(_w("suff")), "tab") or "tab"
    level.pstyle = _val(lvl.find(_w("pStyle")))
    return level


@dataclass
class _StyleNum:
    num_id: Optional[str]
    ilvl: Optional[int]


class _Numbering:
    """Counters and labels for Word's automatic numbering.

    Counters are kept per list (w:abstractNum) and level, as Word does: two w:num pointing at
    the same abstractNum continue one sequence, and a w:num with w:startOverride restarts it the
    first time it is used. Advancing a level resets every deeper level (unless that level's
    w:lvlRestart says otherwise); a level that has not started yet renders as its w:start.
    """

    def __init__(self, numbering: Optional[etree._Element], styles: Optional[etree._Element]):
        self.abstracts: dict[str, dict[int, _Level]] = {}
        self.abstract_style_link: dict[str, str] = {}
        self.nums: dict[str, _Num] = {}
        self.styles: dict[str, etree._Element] = {}
        self.default_pstyle: Optional[str] = None
        self.counters: dict[str, list[Optional[int]]] = {}
        self.used_nums: set[str] = set()
        if numbering is not None:
            for absn in numbering.iter(_w("abstractNum")):
                aid = absn.get(_w("abstractNumId"))
                levels = {}
                for lvl in absn.findall(_w("lvl")):
                    levels[_int(lvl.get(_w("ilvl")), 0)] = _parse_level(lvl)
                self.abstracts[aid] = levels
                link = _val(absn.find(_w("numStyleLink")))
                if link:
                    self.abstract_style_link[aid] = link
            for num in numbering.iter(_w("num")):
                nid = num.get(_w("numId"))
                entry = _Num(_val(num.find(_w("abstractNumId")), "") or "")
                for ov in num.findall(_w("lvlOverride")):
                    ilvl = _int(ov.get(_w("ilvl")), 0)
                    so = ov.find(_w("startOverride"))
                    if so is not None:
                        entry.start_overrides[ilvl] = _int(_val(so), 1)
                    lvl = ov.find(_w("lvl"))
                    if lvl is not None:
                        entry.level_overrides[ilvl] = _parse_level(lvl)
                self.nums[nid] = entry
        if styles is not None:
            for st in styles.iter(_w("style")):
                sid = st.get(_w("styleId"))
                if sid:
                    self.styles[sid] = st
                if st.get(_w("type")) == "paragraph" and st.get(_w("default")) in ("1", "true", "on"):
                    self.default_pstyle = sid

    # -- resolution ------------------------------------------------------------------------

    def _style_num(self, style_id: Optional[str]) -> _StyleNum:
        """numId/ilvl a paragraph style (or one it is based on) contributes."""
        num_id: Optional[str] = None
        ilvl: Optional[int] = None
        seen = set()
        while style_id and style_id not in seen and style_id in self.styles:
            seen.add(style_id)
            st = self.styles[style_id]
            numpr = st.find(f"{_w('pPr')}/{_w('numPr')}")
            if numpr is not None:
                if num_id is None and numpr.find(_w("numId")) is not None:
                    num_id = _val(numpr.find(_w("numId")))
                if ilvl is None and numpr.find(_w("ilvl")) is not None:
                    ilvl = _int(_val(numpr.find(_w("ilvl"))), 0)
            if num_id is not None and ilvl is not None:
                break
            style_id = _val(st.find(_w("basedOn")))
        return _StyleNum(num_id, ilvl)

    def _abstract_of(self, num_id: str) -> Optional[str]:
        num = self.nums.get(num_id)
        if num is None:
            return None
        aid = num.abstract_id
        # numStyleLink: the list definition lives behind a numbering style's own numId.
        for _ in range(3):
            link = self.abstract_style_link.get(aid)
            if not link:
                break
            linked = self._style_num(link).num_id
            if not linked or linked not in self.nums:
                break
            aid = self.nums[linked].abstract_id
        return aid if aid in self.abstracts else None

    def _level(self, num_id: str, aid: str, ilvl: int) -> Optional[_Level]:
        num = self.nums[num_id]
        if ilvl in num.level_overrides:
            return num.level_overrides[ilvl]
        return self.abstracts[aid].get(ilvl)

    def _start(self, num_id: str, aid: str, ilvl: int) -> int:
        num = self.nums[num_id]
        if ilvl in num.start_overrides:
            return num.start_overrides[ilvl]
        level = self._level(num_id, aid, ilvl)
        return level.start if level else 1

    def paragraph_label(self, p: etree._Element) -> Optional[tuple[str, str]]:
        """(label, separator) for paragraph `p`, advancing the counters; None if not numbered."""
        ppr = p.find(_w("pPr"))
        p_num_id: Optional[str] = None
        p_ilvl: Optional[int] = None
        style_id = self.default_pstyle
        if ppr is not None:
            numpr = ppr.find(_w("numPr"))
            if numpr is not None:
                if numpr.find(_w("numId")) is not None:
                    p_num_id = _val(numpr.find(_w("numId")))
                if numpr.find(_w("ilvl")) is not None:
                    p_ilvl = _int(_val(numpr.find(_w("ilvl"))), 0)
            ps = _val(ppr.find(_w("pStyle")))
            if ps:
                style_id = ps
        style = self._style_num(style_id) if (p_num_id is None or p_ilvl is None) else _StyleNum(None, None)
        num_id = p_num_id if p_num_id is not None else style.num_id
        if not num_id or num_id == "0" or num_id not in self.nums:
            return None
        aid = self._abstract_of(num_id)
        if aid is None:
            return None
        if p_ilvl is not None:
            ilvl = p_ilvl
        elif style.ilvl is not None:
            ilvl = style.ilvl
        else:
            ilvl = next((i for i, lv in self.abstracts[aid].items() if lv.pstyle == style_id), 0)
        ilvl = max(0, min(ilvl, 8))
        level = self._level(num_id, aid, ilvl)
        if level is None:
            return None
        counters = self.counters.setdefault(aid, [None] * 9)
        if num_id not in self.used_nums:
            self.used_nums.add(num_id)
            for lv in self.nums[num_id].start_overrides:
                if 0 <= lv < 9:
                    counters[lv] = None
        counters[ilvl] = self._start(num_id, aid, ilvl) if counters[ilvl] is None else counters[ilvl] + 1
        for deeper in range(ilvl + 1, 9):
            dl = self._level(num_id, aid, deeper)
            # lvlRestart=N: restart only when level N (1-based) or a shallower one advances.
            if dl is not None and dl.restart is not None and (dl.restart == 0 or ilvl + 1 > dl.restart):
                continue
            counters[deeper] = None
        return self._render(num_id, aid, ilvl, level, counters)

    def _render(self, num_id: str, aid: str, ilvl: int, level: _Level,
                counters: list[Optional[int]]) -> tuple[str, str]:
        if level.fmt == "bullet":
            label = _visible_bullet(level.text)
        else:
            out = []
            text = level.text
            i = 0
            while i < len(text):
                ch = text[i]
                if ch == "%" and i + 1 < len(text) and text[i + 1] in "123456789":
                    ref = int(text[i + 1]) - 1
                    ref_level = self._level(num_id, aid, ref)
                    value = counters[ref] if counters[ref] is not None else self._start(num_id, aid, ref)
                    fmt = ref_level.fmt if ref_level else "decimal"
                    if level.is_lgl and ref < ilvl:
                        fmt = "decimal"
                    out.append(format_number(value, fmt))
                    i += 2
                else:
                    out.append(ch)
                    i += 1
            label = "".join(out)
        label = label.strip()
        if not label:
            return "", ""
        if level.suff == "space":
            sep = " "
        elif level.suff == "nothing":
            sep = ""
        else:
            # A tab after "一、" or "（一）" is layout; after "1." it separates like a space.
            sep = " " if label[-1].isascii() and label[-1] not in ")]" else ""
        return label, sep


# ---------------------------------------------------------------------------------------------
# Body walk
# ---------------------------------------------------------------------------------------------


def _is_hidden(run: etree._Element) -> bool:
    rpr = run.find(_w("rPr"))
    if rpr is None:
        return False
    vanish = rpr.find(_w("vanish"))
    return vanish is not None and _val(vanish, "true") not in ("0", "false", "off")


def _sym_char(sym: etree._Element) -> str:
    code = sym.get(_w("char"))
    try:
        ch = chr(int(code, 16)) if code else ""
    except ValueError:
        return ""
    return _visible_bullet(ch)


def _collect_inline(el: etree._Element, out: list[str], boxes: list[etree._Element]) -> None:
    """Visible text of a paragraph's content, in order; text boxes go to `boxes`."""
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or tag in _SKIP:
            continue
        if tag == W_T or tag == M_T:
            if child.text:
                out.append(child.text)
        elif tag == W_R:
            if not _is_hidden(child):
                _collect_inline(child, out, boxes)
        elif tag in (_w("tab"), _w("ptab")):
            out.append("\t")
        elif tag in (_w("br"), _w("cr")):
            out.append(_BREAK)
        elif tag == _w("noBreakHyphen"):
            out.append("-")
        elif tag == _w("sym"):
            out.append(_sym_char(child))
        elif tag == _w("txbxContent"):
            boxes.append(child)
        else:
            _collect_inline(child, out, boxes)


def _blocks(parent: etree._Element) -> Iterator[etree._Element]:
    """w:p and w:tbl children of `parent`, looking through content controls and insertions."""
    for child in parent:
        if child.tag in (W_P, W_TBL):
            yield child
        elif child.tag in _BLOCK_WRAPPERS:
            yield from _blocks(child)


def _children(parent: etree._Element, tag: str) -> Iterator[etree._Element]:
    """Rows of a table / cells of a row, looking through content controls and insertions."""
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag in _BLOCK_WRAPPERS:
            yield from _children(child, tag)


def _clean(text: str) -> str:
    return text.replace("\t", " ").strip()


class _Walker:
    def __init__(self, numbering: _Numbering):
        self.numbering = numbering

    def paragraph(self, p: etree._Element) -> list[str]:
        """Lines of one paragraph (split at manual breaks), label first, then its text boxes."""
        pieces: list[str] = []
        boxes: list[etree._Element] = []
        _collect_inline(p, pieces, boxes)
        label = self.numbering.paragraph_label(p)
        lines = [_clean(s) for s in "".join(pieces).split(_BREAK)]
        lines = [s for s in lines if s]
        if label and label[0] and lines:
            lines[0] = f"{label[0]}{label[1]}{lines[0]}"
        for box in boxes:
            lines.extend(self.blocks(box))
        return lines

    def table(self, tbl: etree._Element) -> list[str]:
        out: list[str] = []
        for tr in _children(tbl, W_TR):
            cells = [self.blocks(tc) for tc in _children(tr, W_TC)]
            if all(len(c) <= 1 for c in cells):
                row = " | ".join(c[0] for c in cells if c)
                if row:
                    out.append(row)
            else:
                for c in cells:
                    out.extend(c)
        return out

    def blocks(self, parent: etree._Element) -> list[str]:
        out: list[str] = []
        for el in _blocks(parent):
            out.extend(self.paragraph(el) if el.tag == W_P else self.table(el))
        return out


# ---------------------------------------------------------------------------------------------
# The package: zip → parts → XML, refusing what could hurt the worker or read outside the file
# ---------------------------------------------------------------------------------------------

RT_OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
RT_NUMBERING = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering"
RT_STYLES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
# Main-part content types of .docx, .docm, .dotx, .dotm: the same WordprocessingML inside.
_WORD_MAIN_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.ms-word.document.macroEnabled.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
}
_PROLOG_BYTES = 64 * 1024
# "<!DOCTYPE" cannot occur in XML text (a "<" there is escaped), only as a declaration (or in a
# comment, which Word never writes), so the bytes are searched first, in UTF-8 and UTF-16.
_DOCTYPE_MARKERS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))


class _Refused(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _parser(**kw) -> etree.XMLParser:
    # defusedxml's settings: entities are never substituted, no DTD is loaded, nothing is fetched
    # (file:// or http://), and libxml2's size and depth limits stay on. python-docx's own parser
    # only sets resolve_entities=False, which is why parts are parsed here and not by it.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_blank_text=True, **kw)


def _check_prolog(name: str, head: bytes) -> None:
    """Refuse a part that declares a DTD. OPC forbids DTDs in package parts (ECMA-376-2 §8.1.4),
    so a DOCTYPE only ever means an XXE or entity-expansion attempt. The prolog is parsed alone,
    with the safe settings, up to the root element's start tag."""
    window = head[:_PROLOG_BYTES]
    if any(marker in window for marker in _DOCTYPE_MARKERS):
        raise _Refused("corrupt", f"{name} declares a DTD (<!DOCTYPE>), which DOCX parts may not; "
                                  "refused unread (XXE / entity expansion)")
    # Other encodings (UTF-32, ...): the parser tells whether the root has a DOCTYPE before it.
    pull = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True,
                               load_dtd=False, huge_tree=False)
    try:
        # Small steps, so that the root's start event comes before any entity reference is parsed.
        for at in range(0, min(len(head), _PROLOG_BYTES), 256):
            pull.feed(head[at:at + 256])
            for _event, el in pull.read_events():
                if el.getroottree().docinfo.doctype:
                    raise _Refused("corrupt", f"{name} declares a DTD (<!DOCTYPE>), which DOCX parts may not; "
                                              "refused unread (XXE / entity expansion)")
                return
    except etree.XMLSyntaxError as exc:
        raise _Refused("corrupt", f"{name}: broken XML: {exc}") from None
    raise _Refused("corrupt", f"{name}: no root element within the first {_PROLOG_BYTES // 1024} KB")


class _Package:
    """The parts of a DOCX the reader needs, found through the package relationships."""

    def __init__(self, path: Path):
        from pipeline.readers.safezip import SafeZip

        self.zip = SafeZip(path)
        self.names = self.zip.names()

    def __enter__(self) -> "_Package":
        return self

    def __exit__(self, *exc) -> None:
        self.zip.__exit__(*exc)

    def xml(self, name: str) -> etree._Element:
        parser = _parser()
        first = True
        for chunk in self.zip.chunks(name):
            if first:
                _check_prolog(name, chunk)
                first = False
            parser.feed(chunk)
        if first:
            raise _Refused("corrupt", f"{name} is empty")
        return parser.close()

    def rels(self, part: str) -> dict[str, str]:
        """relationship type → target part name, for internal relationships of `part`."""
        folder, base = posixpath.split(part)
        rels_name = posixpath.join(folder, "_rels", base + ".rels")
        if rels_name not in self.names:
            return {}
        out: dict[str, str] = {}
        for rel in self.xml(rels_name).iter(f"{{{_PKG_REL_NS}}}Relationship"):
            if rel.get("TargetMode") == "External":
                continue  # never followed: the reader reads only members of this zip
            target = rel.get("Target") or ""
            target = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            out.setdefault(rel.get("Type") or "", posixpath.normpath(target))
        return out

    def main_part(self) -> str:
        main = self.rels("").get(RT_OFFICE_DOCUMENT)
        if main is None and "word/document.xml" in self.names:
            main = "word/document.xml"
        if main is None or main not in self.names:
            raise _Refused("corrupt", "no main document part (word/document.xml)")
        if "[Content_Types].xml" not in self.names:
            raise _Refused("corrupt", "no [Content_Types].xml")
        types = self.xml("[Content_Types].xml")
        ctype = None
        for ov in types.iter(f"{{{_CT_NS}}}Override"):
            if (ov.get("PartName") or "").lstrip("/") == main:
                ctype = ov.get("ContentType")
        if ctype is not None and ctype not in _WORD_MAIN_TYPES:
            raise _Refused("unsupported_format", f"the main part is {ctype}, not a Word document")
        return main

    def optional_xml(self, name: Optional[str]) -> Optional[etree._Element]:
        return self.xml(name) if name and name in self.names else None


def body_to_paras(body: etree._Element, numbering: Optional[etree._Element],
                  styles: Optional[etree._Element]) -> list[Para]:
    """Paras of a w:body, with numbering/styles parts (either may be None)."""
    lines = _Walker(_Numbering(numbering, styles)).blocks(body)
    return [Para(line, None) for line in lines]


def _memory_or(exc: etree.XMLSyntaxError) -> Exception:
    # libxml2 reports a failed allocation (the worker's memory limit) as a syntax error.
    msg = str(exc).lower()
    if "memory" in msg or "unknown error" in msg:
        return MemoryError(f"XML parser: {exc}")
    return exc


def read_docx(path: Path, options: ReaderOptions) -> list[Para]:
    from pipeline.readers.safezip import ZipLimit, ZipRefused

    path = Path(path)
    try:
        with _Package(path) as pkg:
            main = pkg.main_part()
            document = pkg.xml(main)
            body = document.find(_w("body"))
            if body is None:
                raise _Refused("corrupt", f"{main} has no w:body")
            rels = pkg.rels(main)
            numbering = pkg.optional_xml(rels.get(RT_NUMBERING))
            styles = pkg.optional_xml(rels.get(RT_STYLES))
    except _Refused as exc:
        raise ReaderError(exc.reason, f"{path.name}: {exc}") from None
    except ZipRefused as exc:
        raise ReaderError(exc.reason, f"{path.name}: {exc}") from None
    except ZipLimit as exc:
        raise ReaderError("too_large", f"{path.name}: {exc}") from None
    except etree.XMLSyntaxError as exc:
        err = _memory_or(exc)
        if isinstance(err, MemoryError):
            raise err from None
        raise ReaderError("corrupt", f"{path.name}: broken XML part: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, zlib.error) as exc:
        raise ReaderError("corrupt", f"{path.name} is not a readable DOCX: {type(exc).__name__}: {exc}") from None
    return body_to_paras(body, numbering, styles)
