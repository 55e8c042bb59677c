"""A file → its normalised text, through the reader its bytes call for, with a text cache.

The cache is keyed by the file's sha256 and the reader's version, so a rule change never re-parses a
PDF or DOCX, and a reader change re-parses everything it touches. Entries are written atomically
(temp file, then rename): a killed worker never leaves half an entry.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

from pipeline.model import ParsedText
from pipeline.normalise import paras_to_text
from pipeline.readers import PARSER_VERSIONS, READERS, ReaderError, ReaderOptions, explain_unsupported, sniff_format


def parser_version(fmt: str, options: ReaderOptions) -> str:
    if fmt == "pdf":
        return PARSER_VERSIONS[options.pdf_backend]
    return PARSER_VERSIONS[fmt]


def _cache_path(cache_dir: Path, sha256: str, version: str) -> Path:
    return Path(cache_dir) / "text" / sha256[:2] / f"{sha256}.{version}.json"


def load_cached(cache_dir: Path, sha256: str, version: str) -> Optional[ParsedText]:
    p = _cache_path(cache_dir, sha256, version)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return ParsedText(**d)


def store_cached(cache_dir: Path, sha256: str, parsed: ParsedText) -> None:
    p = _cache_path(cache_dir, sha256, parsed.parser_version)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(parsed.__dict__, fh, ensure_ascii=False)
    os.replace(tmp, p)


_REPLACEMENT = "\ufffd"


def parse_file(path: Path, fmt: str, options: ReaderOptions) -> ParsedText:
    """Read `path` with the reader for `fmt` and normalise; ReaderError when there is no usable text.

    Text whose characters are mostly U+FFFD (a lossy conversion upstream: the file was saved
    from mojibake) is refused as `garbled_text` whatever the format, with the ratio the PDF
    reader applies to glyphs without a Unicode mapping."""
    paras = READERS[fmt](Path(path), options)
    parsed = paras_to_text(paras, parser=options.pdf_backend if fmt == "pdf" else fmt,
                           parser_version=parser_version(fmt, options))
    if not parsed.text.strip():
        if fmt == "pdf":
            raise ReaderError("no_text_layer", "the PDF has no text layer (a scan or images only)")
        raise ReaderError("empty_file", "the file holds no text")
    visible = sum(1 for ch in parsed.text if not ch.isspace())
    bad = parsed.text.count(_REPLACEMENT)
    if bad > options.max_garbled_ratio * visible:
        raise ReaderError("garbled_text", f"{bad} of {visible} characters are U+FFFD replacement characters "
                                          "(the text was damaged before it reached us)")
    return parsed


def sniff(path: Path) -> str:
    """The file's format from its bytes; ReaderError when no reader fits, saying why
    (`unsupported_format`, `encrypted` for a password-protected .docx, `corrupt` for bytes that
    are no known format and no decodable text, `too_large` for a zip directory too big to parse)."""
    fmt = sniff_format(Path(path))
    if fmt is None:
        raise explain_unsupported(Path(path))
    return fmt
