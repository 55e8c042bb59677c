"""The fixed list of reasons a file can fail for: the `reason` column of `errors.parquet`."""
from __future__ import annotations

REASONS: dict[str, str] = {
    "empty_file": "the file has no bytes, or no text at all",
    "unsupported_format": "the bytes are not a PDF, DOCX or text file (sniffed, not taken from the extension)",
    "corrupt": "the file claims a format but cannot be read as it (broken zip or PDF, undecodable text)",
    "encrypted": "password-protected (a PDF that opens with an empty user password is read)",
    "no_text_layer": "a scanned or image-only PDF: nothing to extract without OCR",
    "garbled_text": "a text layer without usable Unicode ((cid:NN) glyphs or replacement characters)",
    "too_large": "larger than max_file_mb, or a DOCX/PDF that would inflate past the limits (a bomb)",
    "timeout": "parsing took longer than timeout_seconds; the worker was killed",
    "memory_limit": "parsing needed more than memory_limit_mb; the worker was stopped",
    "not_a_regular_file": "a symlink leaving raw/, a FIFO, a device or a directory",
    "duplicate": "the same bytes as another file in raw/; the document is kept once, under the other path",
    "extraction_failed": "the text was read but an extraction stage raised an error (a bug: please report)",
}


class PipelineError(Exception):
    """A file that ends in the errors table instead of the data tables."""

    def __init__(self, reason: str, message: str, stage: str = "parse"):
        if reason not in REASONS:
            raise ValueError(f"unknown error reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.stage = stage
