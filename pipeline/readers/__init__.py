"""Format readers: one file in, the paragraphs a person would see out.

    sniff_format(path) -> "text" | "docx" | "pdf" | None
    read_paras(path, options) -> list[Para]

Each reader is a plain function `(Path, ReaderOptions) -> list[Para]` registered in `READERS`
under its format name; `read_paras` picks one from the file's first bytes, never from its
extension (government sites serve HTML error pages named `.pdf` and legacy `.doc` files
named `.docx`).

Invariants every reader keeps:
- a `Para` is one paragraph: no "\\n" inside `text`, no leading/trailing whitespace, never empty;
- readers only select and order text, they never invent any (a Word list label is text the
  reader sees, so it is rendered; a PDF's running header is not body text, so it is dropped);
- a file that cannot be read raises `ReaderError` with a machine-readable `reason`, never
  returns a plausible-looking empty or partial result.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from pipeline.model import Para

REASONS = (
    "empty_file",
    "unsupported_format",
    "corrupt",
    "encrypted",
    "no_text_layer",
    "garbled_text",
)


class ReaderError(Exception):
    """A document that cannot be turned into paragraphs, with a `reason` from `REASONS`."""

    def __init__(self, reason: str, message: str):
        if reason not in REASONS:
            raise ValueError(f"unknown ReaderError reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ReaderOptions:
    """Everything a reader may be told. One typed object instead of flags threaded through."""

    pdf_backend: str = "pdfplumber"  # or "pypdfium2"
    # Force a text encoding (a Python codec name) instead of detecting it.
    text_encoding: Optional[str] = None
    # A PDF whose glyphs are more than this share of "(cid:NN)" / U+FFFD is refused as garbled.
    max_garbled_ratio: float = 0.2


# The readers import ReaderError / ReaderOptions from this module, so they are defined above.
from pipeline.readers import docx as _docx  # noqa: E402
from pipeline.readers import pdf as _pdf  # noqa: E402
from pipeline.readers import text as _text  # noqa: E402

READERS: dict[str, Callable[[Path, ReaderOptions], list[Para]]] = {
    "text": _text.read_text,
    "docx": _docx.read_docx,
    "pdf": _pdf.read_pdf,
}

PDF_BACKENDS = _pdf.BACKENDS


def _lib_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:  # pragma: no cover - the venv pins all of them
        return "unknown"


# Cache keys: bump the trailing number whenever a reader's output may change for the same input.
PARSER_VERSIONS: dict[str, str] = {
    "text": f"text-charset-normalizer-{_lib_version('charset-normalizer')}-1",
    "docx": f"docx-python-docx-{_lib_version('python-docx')}-1",
    "pdfplumber": f"pdfplumber-{_lib_version('pdfplumber')}-1",
    "pypdfium2": f"pypdfium2-{_lib_version('pypdfium2')}-1",
}


def parser_name(fmt: str, options: ReaderOptions = ReaderOptions()) -> str:
    """The `PARSER_VERSIONS` key of the reader that `read_paras` uses for `fmt`."""
    if fmt == "pdf":
        return options.pdf_backend
    return fmt


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted .docx/.xlsx is an OLE2 container holding this stream (MS-OFFCRYPTO).
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_SNIFF_BYTES = 64 * 1024


def _head(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def sniff_format(path: Path) -> Optional[str]:
    """"pdf", "docx", "text" or None (unsupported), decided from the bytes, not the name."""
    path = Path(path)
    head = _head(path)
    if not head:
        return None
    # Acrobat accepts junk before the header within the first 1024 bytes; so do we.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, OSError):
            return None
        return "docx" if "word/document.xml" in names else None
    if head.startswith(_OLE2_MAGIC):
        return None
    if _text.looks_like_text(head):
        return "text"
    return None


def explain_unsupported(path: Path) -> ReaderError:
    """The error for a file `sniff_format` rejects: why, in words a person can act on.

    Mostly `unsupported_format`, but `encrypted` for a password-protected .docx (which is an
    OLE2 container, not a zip)."""
    path = Path(path)
    head = _head(path)
    if head.startswith(_OLE2_MAGIC):
        with open(path, "rb") as fh:
            if _ENCRYPTED_PACKAGE in fh.read():
                return ReaderError("encrypted", f"{path.name} is a password-protected Office file")
        return ReaderError(
            "unsupported_format",
            f"{path.name} is an OLE2 file (legacy .doc/.xls/.wps); convert it to .docx first",
        )
    if head.startswith(b"PK\x03\x04"):
        return ReaderError("unsupported_format", f"{path.name} is a zip archive without word/document.xml")
    kind = _text.markup_kind(head)
    if kind:
        return ReaderError("unsupported_format", f"{path.name} is {kind}, not a document")
    return ReaderError("unsupported_format", f"{path.name} starts with {head[:8]!r}, not PDF, DOCX or text")


def read_paras(path: Path, options: ReaderOptions = ReaderOptions()) -> list[Para]:
    """Paragraphs of the file at `path`, in reading order; raises ReaderError if there are none."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ReaderError("empty_file", f"{path.name} has 0 bytes")
    fmt = sniff_format(path)
    if fmt is None:
        raise explain_unsupported(path)
    paras = READERS[fmt](path, options)
    if not paras:
        raise ReaderError("empty_file", f"{path.name} ({fmt}) holds no text")
    return paras


__all__ = [
    "PARSER_VERSIONS",
    "PDF_BACKENDS",
    "READERS",
    "REASONS",
    "ReaderError",
    "ReaderOptions",
    "explain_unsupported",
    "parser_name",
    "read_paras",
    "sniff_format",
]
