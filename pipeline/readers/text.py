"""Plain-text reader: bytes → str → one Para per non-empty line.

Encoding is decided in this order, first match wins:
1. a byte-order mark (UTF-32 before UTF-16, since the UTF-32-LE BOM starts with the UTF-16-LE one);
2. UTF-32 / UTF-16 without a BOM, recognised by where the zero bytes fall (ASCII, digits and line
   breaks in UTF-16-LE are `xx 00`; every UTF-32 code unit has a zero high byte) and then
   decoded strictly;
3. strict UTF-8 (valid UTF-8 is practically never an accident for CJK text);
4. charset-normalizer restricted to the encodings Chinese government files actually use
   (GB18030 ⊃ GBK ⊃ GB2312, Big5). Restricting matters: unrestricted, any byte soup "decodes"
   as some single-byte code page, and we would hand garbage on as text.
Nothing matches → ReaderError("corrupt").

Limits: UTF-16 without a BOM that holds no ASCII at all (not even a line break) has no zero bytes
and is not recognised. A very short file (a handful of characters) can be valid in both GB18030 and Big5;
charset-normalizer then picks by coherence and may pick wrong. Policy files are long enough.
"""
from __future__ import annotations

import codecs
from pathlib import Path
from typing import Optional

from charset_normalizer import from_bytes

from pipeline.model import Para
from pipeline.readers.base import ReaderError, ReaderOptions

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# big5hkscs is a superset of big5 used by Hong Kong sites; gb18030 covers GBK and GB2312.
_CJK_CANDIDATES = ["gb18030", "big5", "big5hkscs"]

_MARKUP_PREFIXES = (
    ("<!doctype html", "an HTML page"),
    ("<html", "an HTML page"),
    ("<head", "an HTML page"),
    ("<body", "an HTML page"),
    ("<?xml", "an XML file"),
    ("{\\rtf", "an RTF file"),
)

# Control characters never found in real text; their presence means binary data.
_BINARY_CONTROLS = set(range(0x00, 0x09)) | {0x0B, 0x0E, 0x0F} | set(range(0x10, 0x1A)) | {0x1C, 0x1D, 0x1E, 0x1F, 0x7F}


def _bom_encoding(data: bytes) -> Optional[tuple[str, int]]:
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc, len(bom)
    return None


def markup_kind(head: bytes) -> Optional[str]:
    """"an HTML page" etc. if the bytes open like markup that only pretends to be a document."""
    bom = _bom_encoding(head)
    start = head[bom[1]:] if bom and bom[0] == "utf-8" else head
    prefix = start[:64].decode("latin-1").lstrip().lower()
    for marker, kind in _MARKUP_PREFIXES:
        if prefix.startswith(marker):
            return kind
    return None


def _has_binary_controls(text: str) -> bool:
    return any(ord(ch) in _BINARY_CONTROLS for ch in text)


_SAMPLE = 64 * 1024


def unmarked_utf16_32(data: bytes) -> Optional[str]:
    """"utf-32-le/be" or "utf-16-le/be" for BOM-less UTF-16/32 text, judged by its zero bytes."""
    sample = data[:_SAMPLE]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    quad = sample[: len(sample) - len(sample) % 4]
    if quad:
        cols = [quad[i::4] for i in range(4)]
        if not cols[3].strip(b"\x00") and max(cols[2]) <= 0x10:
            return "utf-32-le"
        if not cols[0].strip(b"\x00") and max(cols[1]) <= 0x10:
            return "utf-32-be"
    pair = sample[: len(sample) - len(sample) % 2]
    even, odd = pair[0::2].count(0), pair[1::2].count(0)
    units = len(pair) // 2
    # Zero bytes mostly on one side (ASCII, digits, line breaks), and enough of them. The other side
    # has a few too: CJK code points ending in 00 (U+4E00 一 is "00 4E" in UTF-16-LE).
    if odd >= 0.02 * units and even * 3 <= odd:
        return "utf-16-le"
    if even >= 0.02 * units and odd * 3 <= even:
        return "utf-16-be"
    return None


def _mostly_printable(text: str) -> bool:
    # Binary data that happens to decode as UTF-16 is full of unassigned and private-use code points.
    sample = text[:_SAMPLE]
    bad = sum(1 for ch in sample if not (ch.isprintable() or ch.isspace()))
    return bad <= 0.01 * max(len(sample), 1)


def decode_bytes(data: bytes, encoding: Optional[str] = None) -> tuple[str, str]:
    """(text, encoding name). Raises ReaderError("corrupt") when the bytes are not text."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise ReaderError("corrupt", f"cannot decode as {encoding}: {exc}") from exc
    bom = _bom_encoding(data)
    if bom:
        enc, skip = bom
        try:
            text = data[skip:].decode(enc)
        except UnicodeDecodeError as exc:
            raise ReaderError("corrupt", f"starts with a {enc} byte-order mark but does not decode: {exc}") from exc
        return text, enc
    wide = unmarked_utf16_32(data)
    if wide:
        try:
            text = data.decode(wide)
        except UnicodeDecodeError as exc:
            raise ReaderError("corrupt", f"zero bytes say {wide} (no byte-order mark) but it does not decode: {exc}") from exc
        if _has_binary_controls(text) or not _mostly_printable(text):
            raise ReaderError("corrupt", f"decodes as {wide} but holds binary control or unassigned characters")
        return text, wide
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if _has_binary_controls(text):
            raise ReaderError("corrupt", "valid UTF-8 but holds binary control characters")
        return text, "utf-8"
    match = from_bytes(data, cp_isolation=_CJK_CANDIDATES).best()
    if match is None:
        raise ReaderError("corrupt", "bytes decode neither as UTF-8/16/32 nor as GB18030/GBK/Big5")
    text = str(match)
    if _has_binary_controls(text):
        raise ReaderError("corrupt", f"decodes as {match.encoding} but holds binary control characters")
    return text, match.encoding


def looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file are plain text (not markup, not binary)."""
    if markup_kind(head):
        return False
    if _bom_encoding(head):
        return True
    if b"\x00" in head and not unmarked_utf16_32(head):
        return False
    # `head` may end inside a multi-byte character: drop up to 3 trailing bytes and retry.
    for cut in range(4):
        sample = head[: len(head) - cut] if cut else head
        try:
            decode_bytes(sample)
            return True
        except ReaderError:
            continue
    return False


def text_to_paras(text: str) -> list[Para]:
    """One Para per line; blank lines dropped, surrounding (incl. full-width) spaces stripped."""
    paras = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            paras.append(Para(line, None))
    return paras


def read_text(path: Path, options: ReaderOptions) -> list[Para]:
    data = Path(path).read_bytes()
    if not data:
        raise ReaderError("empty_file", f"{Path(path).name} has 0 bytes")
    text, _encoding = decode_bytes(data, options.text_encoding)
    return text_to_paras(text)
