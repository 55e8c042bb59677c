"""Paragraphs from a reader → the document's normalised text.

The normalised text is what analysts see and what every offset points into: one paragraph per
line, conversion artefacts removed (`[bookmark: _Hlk…]` from Word exports, markdown `#` heading
marks and `**` emphasis), surrounding whitespace (including the full-width space U+3000 used for
indentation) trimmed, empty paragraphs dropped. Characters inside a paragraph are kept as written.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from typing import Optional

import regex

from pipeline.model import Para, ParsedText

_ARTEFACTS = regex.compile(r"\[bookmark:[^\]]*\]|\*\*|\u200b|\ufeff")
_MD_HEADING = regex.compile(r"^#{1,6}\s+")
_CONTROL = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# Characters without which neither _CONTROL nor _ARTEFACTS can match: most lines have none.
_SUSPECT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\[*\u200b\ufeff]")


def clean_paragraph(s: str) -> str:
    if _SUSPECT.search(s) is not None:
        s = _CONTROL.sub("", s)
        s = _ARTEFACTS.sub("", s)
    s = s.strip(" \t\r\n\u3000\xa0")
    if s.startswith("#"):
        s = _MD_HEADING.sub("", s)
    return s.strip(" \t\u3000\xa0")


def paras_to_text(paras: list[Para], parser: str, parser_version: str) -> ParsedText:
    parts: list[str] = []
    starts: list[int] = []
    pages = []
    pos = 0
    for p in paras:
        for line in p.text.split("\n"):
            t = clean_paragraph(line)
            if not t:
                continue
            starts.append(pos)
            pages.append(p.page)
            parts.append(t)
            pos += len(t) + 1
    n_pages = max((pg for pg in pages if pg is not None), default=None)
    return ParsedText(
        text="\n".join(parts),
        para_starts=starts,
        para_pages=pages,
        parser=parser,
        parser_version=parser_version,
        n_pages=n_pages,
    )


# ---------------------------------------------------------------------------------------------
# Flattened views of the normalised text (extractors match across line breaks)

_LINES = {"\n": regex.compile(r"[^\n]+"), "\r\n": regex.compile(r"[^\r\n]+")}


class OffsetMap:
    """`m[i]` = offset in the text of character `i` of a flattened slice; kept as runs, not per
    character, so building it costs one entry per line, not one per character."""

    __slots__ = ("_flat", "_text", "_len")

    def __init__(self, flat_starts: list[int], text_starts: list[int], length: int):
        self._flat, self._text, self._len = flat_starts, text_starts, length

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> int:
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("offset map index out of range")
        k = bisect_right(self._flat, i) - 1
        return self._text[k] + i - self._flat[k]

    def __iter__(self):
        return (self[i] for i in range(self._len))


def flatten(text: str, start: int, end: int, breaks: str = "\n") -> tuple[str, OffsetMap]:
    """`text[start:end]` without the characters in `breaks` ("\\n" or "\\r\\n"), and the offset map."""
    seg = text[start:end]
    if not any(b in seg for b in breaks):
        return seg, OffsetMap([0], [start], len(seg))
    flat_starts, text_starts, parts = [], [], []
    n = 0
    for m in _LINES[breaks].finditer(seg):
        flat_starts.append(n)
        text_starts.append(start + m.start())
        s = m.group()
        parts.append(s)
        n += len(s)
    return "".join(parts), OffsetMap(flat_starts, text_starts, n)


# ---------------------------------------------------------------------------------------------
# Fast rejection for rule patterns
#
# Most rule patterns need particular characters somewhere in a match (`级` for 百亿级, a digit and
# a unit for 550亿元, `：` for 责任单位：). Scanning a short text for a few characters is far cheaper
# than running the pattern over it, so the extractors ask `may_match` first. The analysis is
# deliberately conservative: anything it does not fully understand (inline flags, fuzzy matching,
# set operations, `\p{…}`, recursion, …) adds no requirement or switches the filter off, so a
# pattern is never skipped on a text it could match.

_QUANT = re.compile(r"\{(\d*)(?:,(\d*))?\}")
_MAX_CLASS = 256  # wider ranges are not expanded: no requirement


class _Unsupported(Exception):
    pass


def _class_chars(p: str, i: int) -> tuple[Optional[frozenset], int]:
    """Parse the set starting at p[i] == "[": (its characters or None when not a plain set, end)."""
    j = i + 1
    negated = j < len(p) and p[j] == "^"
    if negated:
        j += 1
    if j < len(p) and p[j] == "]":
        raise _Unsupported("set starting with ]")
    chars: list[str] = []
    plain = not negated
    depth = 1
    prev: Optional[str] = None  # last literal, for a range
    while j < len(p):
        c = p[j]
        if c == "\\":
            if j + 1 >= len(p):
                raise _Unsupported("trailing backslash")
            e = p[j + 1]
            j += 2
            if e.isalnum() or e == "_":
                plain = False  # \d, \p{…}, \x41 …: not expanded
                prev = None
                continue
            chars.append(e)
            prev = e
            continue
        if c == "[":
            depth += 1
            plain = False
        elif c == "]":
            depth -= 1
            if depth == 0:
                return (frozenset(chars) if plain and chars else None), j + 1
            plain = False
        elif depth == 1 and p[j:j + 2] in ("--", "&&", "||", "~~"):
            plain = False  # VERSION1 set operations
            j += 2
            prev = None
            continue
        elif c == "-" and prev is not None and j + 1 < len(p) and p[j + 1] in "\\[":
            plain = False  # a range to an escape, or a set operation
            j += 1
            prev = None
            continue
        elif c == "-" and prev is not None and j + 1 < len(p) and p[j + 1] != "]":
            lo, hi = ord(prev), ord(p[j + 1])
            if hi < lo or hi - lo > _MAX_CLASS:
                plain = False
            else:
                chars.extend(chr(k) for k in range(lo + 1, hi + 1))
            j += 2
            prev = None
            continue
        else:
            chars.append(c)
            prev = c
        j += 1
    raise _Unsupported("unterminated set")


def _skip_escape(p: str, i: int) -> tuple[Optional[frozenset], int]:
    """p[i] == "\\": (the literal it stands for, or None for a class/assertion/reference, end)."""
    if i + 1 >= len(p):
        raise _Unsupported("trailing backslash")
    e = p[i + 1]
    j = i + 2
    if not (e.isalnum() or e == "_"):
        return frozenset(e), j
    if e in "pPNxuUgkL" and j < len(p) and p[j] in "{<":
        close = "}" if p[j] == "{" else ">"
        k = p.find(close, j)
        if k < 0:
            raise _Unsupported("unterminated escape")
        return None, k + 1
    if e == "x":
        return None, j + 2
    if e == "u":
        return None, j + 4
    if e == "U":
        return None, j + 8
    if e.isdigit():
        while j < len(p) and p[j].isdigit():
            j += 1
    return None, j


def _quantifier(p: str, i: int) -> tuple[int, int]:
    """(minimum repeats, end) of the quantifier at p[i], or (1, i) when there is none."""
    if i >= len(p):
        return 1, i
    c = p[i]
    if c in "?*+":
        lo, j = (0 if c in "?*" else 1), i + 1
    elif c == "{":
        m = _QUANT.match(p, i)
        if not m or (m.group(1) == "" and m.group(2) is None):
            raise _Unsupported("not a counted repeat (fuzzy matching?)")
        lo, j = int(m.group(1) or 0), m.end()
    else:
        return 1, i
    if j < len(p) and p[j] in "?+":  # lazy / possessive
        j += 1
    return lo, j


def _alternatives(p: str, i: int) -> tuple[list[list[frozenset]], int]:
    """Parse from p[i] to the closing ")" (or the end): for each alternative, the character sets
    of which every match holds at least one character each."""
    alts: list[list[frozenset]] = []
    need: list[frozenset] = []
    while i < len(p):
        c = p[i]
        if c == "|":
            alts.append(need)
            need = []
            i += 1
            continue
        if c == ")":
            break
        req: list[frozenset] = []
        if c == "(":
            if p.startswith("(?", i):
                if p.startswith(("(?:", "(?>", "(?|"), i):
                    kind, j = "group", i + 3
                elif p.startswith(("(?P<", "(?<"), i) and not p.startswith(("(?<=", "(?<!"), i):
                    k = p.find(">", i)
                    if k < 0:
                        raise _Unsupported("unterminated group name")
                    kind, j = "group", k + 1
                elif p.startswith(("(?=", "(?!"), i):
                    kind, j = "look", i + 3
                elif p.startswith(("(?<=", "(?<!"), i):
                    kind, j = "look", i + 4
                elif p.startswith("(?R)", i) or p.startswith("(?&", i) or (i + 2 < len(p) and p[i + 2].isdigit()):
                    k = p.find(")", i)
                    kind, j = "skip", k + 1
                else:
                    raise _Unsupported("flags or an unknown group")
            else:
                kind, j = "group", i + 1
            if kind == "skip":
                i = j
            else:
                inner, j = _alternatives(p, j)
                if j >= len(p) or p[j] != ")":
                    raise _Unsupported("unbalanced parenthesis")
                i = j + 1
                if kind == "group" and inner and all(inner):
                    if len(inner) == 1:
                        req = inner[0]
                    else:  # one set per alternative, the smallest; their union is needed
                        req = [frozenset().union(*(min(a, key=len) for a in inner))]
        elif c == "[":
            s, i = _class_chars(p, i)
            req = [s] if s else []
        elif c == "\\":
            s, i = _skip_escape(p, i)
            req = [s] if s else []
        elif c in ".^$":
            i += 1
        elif c in "?*+{":
            raise _Unsupported("repeat without an item")
        else:
            req = [frozenset(c)]
            i += 1
        lo, i = _quantifier(p, i)
        if lo >= 1:
            need.extend(req)
    alts.append(need)
    return alts, i


@lru_cache(maxsize=None)
def pattern_needs(pattern: str) -> Optional[tuple[tuple[frozenset, ...], ...]]:
    """For each top-level alternative of `pattern`, character sets that every match holds a
    character of; None when some alternative needs nothing known (or the pattern is not understood)."""
    try:
        alts, end = _alternatives(pattern, 0)
    except (_Unsupported, IndexError, ValueError):
        return None
    if end != len(pattern) or not alts or not all(alts):
        return None
    # the two rarest-looking sets (fewest characters) per alternative are enough to reject most texts
    return tuple(tuple(sorted(set(a), key=lambda s: (len(s), sorted(s)))[:3]) for a in alts)


_MAX_CHECK = 24  # characters of the one set tested before a pattern is run


@lru_cache(maxsize=None)
def quick_check(pattern: str):
    """A cheap test a text must pass for `pattern` to have any match in it: the `search` of a
    one-class `re` pattern (a few characters every match holds one of), or None (no test)."""
    needs = pattern_needs(pattern)
    if needs is None:
        return None
    chars = frozenset().union(*(alt[0] for alt in needs))  # the smallest set of each alternative
    if len(chars) > _MAX_CHECK:
        return None
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]").search


def finditer(rule, text: str):
    """`rule.rx.finditer(text)`, or nothing when `text` fails the rule's quick_check."""
    check = quick_check(rule.pattern)
    return rule.rx.finditer(text) if check is None or check(text) is not None else ()


def runnable(rules, text: str) -> list:
    """The `rules` (in order) whose quick_check `text` passes; each distinct check runs once."""
    seen: dict = {}
    out = []
    for r in rules:
        check = quick_check(r.pattern)
        if check is None:
            out.append(r)
            continue
        ok = seen.get(check.__self__)
        if ok is None:
            ok = seen[check.__self__] = check(text) is not None
        if ok:
            out.append(r)
    return out


def search(rule, text: str):
    """`rule.rx.search(text)`, or None at once when `text` fails the rule's quick_check."""
    check = quick_check(rule.pattern)
    return rule.rx.search(text) if check is None or check(text) is not None else None


def may_match(pattern: str, text: str) -> bool:
    """False only when `pattern` cannot match anywhere in `text` (see quick_check)."""
    check = quick_check(pattern)
    return check is None or check(text) is not None
