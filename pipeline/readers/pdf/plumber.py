"""The pdfplumber backend: a `Char` per char (pdfminer is the cost there)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pipeline.readers.base import ReaderError
from pipeline.readers.pdf.lines import (
    REPLACEMENT,
    is_garbled_glyph,
    page_lines,
)
from pipeline.readers.pdf.records import Char, Page, PageLines


def _has_near_duplicates(chars: list[dict], tolerance: float = 1.0) -> bool:
    """Cheap test for "fake bold" (each glyph drawn twice at almost the same spot)."""
    keyed = sorted(chars, key=lambda c: (c["text"], c["top"], c["x0"]))
    for a, b in zip(keyed, keyed[1:]):
        if (a["text"] == b["text"] and not a["text"].isspace()
                and abs(a["top"] - b["top"]) <= tolerance and abs(a["x0"] - b["x0"]) <= tolerance):
            return True
    return False


def _pages_pdfplumber(path: Path) -> Iterator[Page]:
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
                if is_garbled_glyph(text):
                    garbled += 1
                    text = REPLACEMENT
                chars.append(Char(text, float(c["x0"]), float(c["x1"]), float(c["top"]),
                                   float(c["bottom"]), float(c.get("size") or 0.0), bool(c.get("upright", True))))
            page.close()
            yield Page(number, width, height, chars, garbled)


def read_pages(path: Path) -> Iterator[PageLines]:
    for page in _pages_pdfplumber(path):
        yield page_lines(page)
