"""The first stage: a file → its normalised text, through the reader its bytes call for.

    file_to_text(path, fmt, options) = paras_to_text(READERS[fmt](path, options)), refused when
    no usable text is left
"""
from __future__ import annotations

from pathlib import Path

from pipeline.model import ParsedText
from pipeline.readers import READERS, ReaderError, ReaderOptions, parser_name, parser_version
from pipeline.stages.normalise import paras_to_text

_REPLACEMENT = "\ufffd"


def file_to_text(path: Path, fmt: str, options: ReaderOptions) -> ParsedText:
    """Read `path` with the reader for `fmt` and normalise; ReaderError when there is no usable text.

    Text whose characters are mostly U+FFFD (a lossy conversion upstream: the file was saved
    from mojibake) is refused as `garbled_text` whatever the format, with the ratio the PDF
    reader applies to glyphs without a Unicode mapping."""
    paras = READERS[fmt](Path(path), options)
    parsed = paras_to_text(paras, parser=parser_name(fmt, options), parser_version=parser_version(fmt, options))
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
