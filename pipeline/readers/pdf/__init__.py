"""PDF reader: characters with boxes → lines → page furniture removed → paragraphs.

Two backends deliver the same thing, the chars of each page (text + box in top-down page
coordinates); everything after that is the same rule, so both produce the same paragraphs:

    check_pdf (qpdf) → page chars, fake bold dropped → chars_to_lines → drop_furniture → lines_to_paras
      pdfplumber: a `Char` per char (pdfminer is the cost there)
      pypdfium2:  `CharArrays`: pdfium's per-char values fetched in bulk through bare ctypes calls,
                  then `lines_from_arrays`, the same grouping over numpy arrays (a page it cannot
                  take exactly, e.g. fake bold, goes through `dedupe` and `Char`s instead)

One module a step: `safety` (qpdf limits), `plumber` and `pdfium` (the backends), `lines`
(chars → lines), `furniture`, `paragraphs` (lines → paragraphs); `records` holds what they pass
on. The layout thresholds each step uses are named and explained in `thresholds.PdfLayout`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.model import Para
from pipeline.readers.base import ReaderError, ReaderOptions
from pipeline.readers.pdf import pdfium, plumber
from pipeline.readers.pdf.furniture import drop_furniture
from pipeline.readers.pdf.paragraphs import lines_to_paras
from pipeline.readers.pdf.records import Line
from pipeline.readers.pdf.safety import check_pdf

BACKENDS = ("pdfplumber", "pypdfium2")
_BACKENDS = {"pdfplumber": plumber.read_pages, "pypdfium2": pdfium.read_pages}


def read_pdf(path: Path, options: ReaderOptions) -> list[Para]:
    path = Path(path)
    backend = _BACKENDS.get(options.pdf_backend)
    if backend is None:
        raise ValueError(f"unknown pdf_backend {options.pdf_backend!r}; choose one of {BACKENDS}")
    check_pdf(path)
    pages: list[list[Line]] = []
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
