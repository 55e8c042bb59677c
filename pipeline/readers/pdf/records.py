"""The records the PDF reader passes between its steps: a backend's chars, a page, a line."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Char:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    upright: bool = True


@dataclass
class Page:
    number: int  # 1-based
    width: float
    height: float
    chars: list[Char]
    garbled: int = 0  # glyphs without a Unicode mapping ("(cid:NN)", U+FFFD)


@dataclass
class Line:
    page: int
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    head_width: float  # width of the first unbreakable unit (see module doc)
    lead_space: bool = False  # the source drew a space before the first glyph
    trail_space: bool = False  # ... or after the last one


@dataclass
class PageLines:
    """What read_pdf needs of a page: its lines, and its glyphs for the no-text and garbled checks."""

    number: int
    width: float
    height: float
    lines: list[Line]
    glyphs: int  # chars that are not whitespace (after dedupe, before the upright filter)
    garbled: int


@dataclass
class CharArrays:
    """A page's chars as parallel arrays, in content-stream order: what `Char` holds, per column."""

    codes: np.ndarray  # int64 code points (U+FFFD for garbled glyphs)
    x0: np.ndarray
    x1: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    size: np.ndarray
    upright: np.ndarray  # bool

    def to_chars(self) -> list[Char]:
        return [Char(chr(c), a, b, t, m, s, u) for c, a, b, t, m, s, u in zip(
            self.codes.tolist(), self.x0.tolist(), self.x1.tolist(), self.top.tolist(),
            self.bottom.tolist(), self.size.tolist(), self.upright.tolist())]
