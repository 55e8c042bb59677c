"""Flattened views of the normalised text: extractors match across line breaks.

`flatten(text, a, b)` is `text[a:b]` without its line breaks, with an `OffsetMap` back to offsets
in the text; `FlatText` flattens a whole text once so that the flattened form of any part of it
is a slice.
"""
from __future__ import annotations

from bisect import bisect_right


class OffsetMap:
    """`m[i]` = offset in the text of character `i` of a flattened slice; kept as runs, not per
    character, so building it costs one entry per line, not one per character. A map of a part of
    a flattened text shares the whole text's runs (`base` = where the part starts in the whole)."""

    __slots__ = ("_flat", "_text", "_len", "_base")

    def __init__(self, flat_starts: list[int], text_starts: list[int], length: int, base: int = 0):
        self._flat, self._text, self._len, self._base = flat_starts, text_starts, length, base

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> int:
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("offset map index out of range")
        i += self._base
        k = bisect_right(self._flat, i) - 1
        return self._text[k] + i - self._flat[k]

    def __iter__(self):
        return (self[i] for i in range(self._len))


def flatten(text: str, start: int, end: int, breaks: str = "\n") -> tuple[str, OffsetMap]:
    """`text[start:end]` without the characters in `breaks` ("\\n" or "\\r\\n"), and the offset map."""
    seg = text[start:end]
    if not any(b in seg for b in breaks):
        return seg, OffsetMap([0], [start], len(seg))
    pieces = seg.split(breaks[0])  # each piece but the last is followed by one break character
    for b in breaks[1:]:
        if b in seg:
            pieces = [q for p in pieces for q in p.split(b)]
    flat_starts, text_starts = [], []
    n, pos = 0, start
    for q in pieces:
        if q:
            flat_starts.append(n)
            text_starts.append(pos)
            n += len(q)
        pos += len(q) + 1
    return "".join(pieces), OffsetMap(flat_starts, text_starts, n)


class FlatText:
    """A whole text flattened once (`flatten(text, 0, len(text), breaks)`), so that the flattened
    form of any part of it is a slice: `cut(a, b)` == `flatten(text, a, b, breaks)`, without
    scanning the part again (removing characters commutes with slicing)."""

    __slots__ = ("flat", "offsets", "_flat_starts", "_text_starts", "_ends")

    def __init__(self, text: str, breaks: str = "\n"):
        self.flat, self.offsets = flatten(text, 0, len(text), breaks)
        self._flat_starts, self._text_starts = self.offsets._flat, self.offsets._text
        n = len(self._flat_starts)
        # run k covers text[_text_starts[k] : _text_starts[k] + run length]
        self._ends = [self._flat_starts[k + 1] if k + 1 < n else len(self.flat) for k in range(n)]

    def index(self, x: int) -> int:
        """How many kept characters stand before text offset `x`."""
        k = bisect_right(self._text_starts, x) - 1
        if k < 0:
            return 0
        return min(self._flat_starts[k] + x - self._text_starts[k], self._ends[k])

    def span(self, a: int, b: int) -> tuple[int, int]:
        """`(index(a), index(b))`, never reversed."""
        lo = self.index(a)
        return lo, max(lo, self.index(b))

    def cut(self, a: int, b: int) -> tuple[str, OffsetMap]:
        return self.part(*self.span(a, b))

    def part(self, lo: int, hi: int) -> tuple[str, OffsetMap]:
        """`flat[lo:hi]` and its offset map."""
        return self.flat[lo:hi], OffsetMap(self._flat_starts, self._text_starts, hi - lo, lo)
