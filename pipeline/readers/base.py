"""What every reader shares: the options it may be told and the error it raises."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

REASONS = (
    "empty_file",
    "unsupported_format",
    "corrupt",
    "encrypted",
    "no_text_layer",
    "garbled_text",
    "too_large",  # a container that would inflate past the limits (zip or PDF bomb), or too many pages
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
