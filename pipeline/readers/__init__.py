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
  returns a plausible-looking empty or partial result;
- a reader never inflates a container before checking what it would inflate to (`safezip`,
  `pdf.check_pdf`: `too_large`), and never reads anything but the file it was given (no
  XML entities, DTDs or external relationship targets are resolved).
"""
from __future__ import annotations

import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from pipeline.model import Para
from pipeline.readers import docx as _docx
from pipeline.readers import pdf as _pdf
from pipeline.readers import text as _text
from pipeline.readers.base import REASONS, ReaderError, ReaderOptions

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


def _key(reader: str, libraries: tuple[str, ...], revision: int) -> str:
    return "-".join([reader, *(f"{d}-{_lib_version(d)}" for d in libraries), str(revision)])


# Cache keys: the versions of exactly the libraries each reader runs (its imports, and pdfminer
# under pdfplumber), and a revision to bump whenever our reader's output may change for the same
# input. tests/test_packaging.py checks the libraries against each reader's imports.
READER_LIBRARIES: dict[str, tuple[str, ...]] = {
    "text": ("charset-normalizer",),
    "docx": ("lxml",),
    "pdfplumber": ("pdfplumber", "pdfminer.six", "pikepdf"),
    "pypdfium2": ("pypdfium2", "numpy", "pikepdf"),
}
_REVISIONS = {"text": 1, "docx": 2, "pdfplumber": 1, "pypdfium2": 1}
PARSER_VERSIONS: dict[str, str] = {name: _key(name, libs, _REVISIONS[name]) for name, libs in READER_LIBRARIES.items()}


def parser_name(fmt: str, options: ReaderOptions = ReaderOptions()) -> str:
    """The `PARSER_VERSIONS` key of the reader that `read_paras` uses for `fmt`."""
    if fmt == "pdf":
        return options.pdf_backend
    return fmt


def parser_version(fmt: str, options: ReaderOptions = ReaderOptions()) -> str:
    """The cache key of the reader that `read_paras` uses for `fmt`."""
    return PARSER_VERSIONS[parser_name(fmt, options)]


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted .docx/.xlsx is an OLE2 container holding this stream (MS-OFFCRYPTO).
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_SNIFF_BYTES = 64 * 1024
# Part names that only an Office Open XML package has near its start (a truncated or damaged
# DOCX is still a DOCX: its reader says `corrupt`, not `unsupported_format`).
_OOXML_MARKERS = (b"[Content_Types].xml", b"word/")

# Formats recognised by their first bytes, so a refusal can say what the file is.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"RIFF", "a RIFF file (WebP, WAV, AVI)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
    (b"PK\x03\x04", "a zip archive without word/document.xml (xlsx, pptx, ofd, zip)"),
    (b"PK\x05\x06", "an empty zip archive"),
)


def _head(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _sniff_zip(path: Path, head: bytes) -> Optional[str]:
    from pipeline.readers.safezip import ZipLimit, check_directory

    try:
        check_directory(path)
    except ZipLimit as exc:
        # Refused here: the sniff runs in the main process, without the workers' limits.
        raise ReaderError("too_large", f"{path.name}: {exc}") from None
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "docx" if any(m in head for m in _OOXML_MARKERS) else None
    return "docx" if "word/document.xml" in names else None


def sniff_format(path: Path) -> Optional[str]:
    """"pdf", "docx", "text" or None (unsupported), decided from the bytes, not the name.

    Raises ReaderError("too_large") for a zip whose central directory is too big to parse."""
    path = Path(path)
    head = _head(path)
    if not head:
        return None
    # Acrobat accepts junk before the header within the first 1024 bytes; so do we.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path, head)
    if head.startswith(_OLE2_MAGIC):
        return None
    if _text.looks_like_text(head):
        return "text"
    return None


def sniff(path: Path) -> str:
    """The file's format from its bytes; ReaderError when no reader fits, saying why
    (`unsupported_format`, `encrypted` for a password-protected .docx, `corrupt` for bytes that
    are no known format and no decodable text, `too_large` for a zip directory too big to parse)."""
    fmt = sniff_format(Path(path))
    if fmt is None:
        raise explain_unsupported(Path(path))
    return fmt


def _contains(path: Path, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Whether the file holds `needle`, read in chunks (the file may be max_file_mb large)."""
    with open(path, "rb") as fh:
        prev = b""
        while True:
            data = fh.read(chunk)
            if not data:
                return False
            if needle in prev + data:
                return True
            prev = data[-len(needle):]


def explain_unsupported(path: Path) -> ReaderError:
    """The error for a file `sniff_format` rejects: why, in words a person can act on.

    `unsupported_format` for a format we recognise and do not read (a legacy .doc, an image,
    an HTML page, another zip); `encrypted` for a password-protected .docx (an OLE2 container,
    not a zip); `corrupt` for bytes that are no known format and do not decode as text: a
    text file in a broken or unknown encoding, where reading on would produce mojibake."""
    path = Path(path)
    head = _head(path)
    if head.startswith(_OLE2_MAGIC):
        if _contains(path, _ENCRYPTED_PACKAGE):
            return ReaderError("encrypted", f"{path.name} is a password-protected Office file")
        return ReaderError(
            "unsupported_format",
            f"{path.name} is an OLE2 file (legacy .doc/.xls/.wps); convert it to .docx first",
        )
    kind = _text.markup_kind(head)
    if kind:
        return ReaderError("unsupported_format", f"{path.name} is {kind}, not a document")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return ReaderError("unsupported_format", f"{path.name} is {what}, not PDF, DOCX or text")
    return ReaderError(
        "corrupt",
        f"{path.name} is no known format and its bytes do not decode as text "
        f"(UTF-8/16/32, GB18030/GBK, Big5); starts with {head[:8]!r}",
    )


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
    "parser_version",
    "read_paras",
    "sniff",
    "sniff_format",
]
