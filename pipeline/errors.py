"""The fixed list of reasons a file can fail for: the `reason` column of `errors.parquet`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

REASONS: dict[str, str] = {
    "empty_file": "the file has no bytes, or no text at all",
    "unsupported_format": "the bytes are a format we recognise and do not read (legacy .doc, image, HTML, "
                          "another zip), whatever the extension",
    "corrupt": "unreadable, or claims a format but cannot be read as it (truncated or broken zip/PDF, a DOCX "
               "part that is not well-formed or declares a DTD, bytes that decode in no supported encoding)",
    "encrypted": "password-protected (a PDF that opens with an empty user password is read)",
    "no_text_layer": "a scanned or image-only PDF: nothing to extract without OCR",
    "garbled_text": "a text layer without usable Unicode ((cid:NN) glyphs or replacement characters)",
    "too_large": "larger than max_file_mb, or a DOCX/PDF that would inflate past the container limits (a bomb), "
                 "too many zip members or PDF pages",
    "timeout": "parsing used more than timeout_seconds of CPU (or 3x that of wall time blocked); the worker was killed",
    "memory_limit": "parsing needed more than memory_limit_mb, or the worker died while parsing",
    "not_a_regular_file": "a symlink leaving raw/ (or dangling), a FIFO, a socket, a device, or a directory "
                          "named like a file",
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


@dataclass(frozen=True)
class Failure:
    """A job's outcome when it yields no rows: what its `errors` row says."""

    reason: str
    message: str
    stage: str = "parse"


def failure_from(exc: BaseException, memory_limit_mb: Optional[int] = None) -> Failure:
    """The one mapping from an exception that ended a job to its error row.

    A PipelineError says its own reason. MemoryError is `memory_limit` (with the budget when the
    job ran under one). Anything else escaped every stage's own handling: a bug, reported as
    `extraction_failed` rather than taking the batch down."""
    if isinstance(exc, PipelineError):
        return Failure(exc.reason, exc.message, exc.stage)
    if isinstance(exc, MemoryError):
        if memory_limit_mb is None:
            return Failure("memory_limit", "out of memory")
        detail = f" ({exc})" if str(exc) else ""
        return Failure("memory_limit", f"needed more than {memory_limit_mb} MB{detail}")
    return Failure("extraction_failed", f"{type(exc).__name__}: {exc}", "extract")
