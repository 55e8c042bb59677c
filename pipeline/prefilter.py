"""What a rule pattern needs of a text before it can match: pre-filters derived from the patterns.

The extractors skip a rule on a text it cannot match, with tests derived from the patterns
themselves (rules stay data in config/):
- `may_match` / `quick_check`: one scan of the text for a few characters every match needs;
- `Screen`: one look at a text decides a whole list of rules (set tests on the characters found);
- `first_chars`: the characters a match can start with (which paragraphs can be headings);
- `pair_check`: two characters every match holds side by side (a numeral directly before a unit).
Each is conservative (a construct it does not understand means "no test"), and
tests/test_prefilter.py checks that none ever rejects a text its pattern matches.

A leaf module: it reads pattern strings and rule objects (anything with `pattern` and `rx`), and
imports nothing of the pipeline.
"""
from __future__ import annotations

import re
from functools import lru_cache, reduce
from operator import or_
from typing import NamedTuple, Optional

# ---------------------------------------------------------------------------------------------
# Fast rejection for rule patterns: what characters every match needs
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
                    else:
                        # Any one set of each alternative: their union is needed (a match goes
                        # through one alternative). Taken by rank: the smallest of each, then
                        # the second smallest of each, … (three unions at most).
                        ranked = [sorted(set(a), key=lambda x: (len(x), sorted(x))) for a in inner]
                        req = [frozenset().union(*(a[min(k, len(a) - 1)] for a in ranked))
                               for k in range(min(3, max(len(a) for a in ranked)))]
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
def pattern_requirements(pattern: str) -> Optional[tuple[tuple[frozenset, ...], ...]]:
    """For each top-level alternative of `pattern`, every character set the analysis found that
    each match holds a character of (distinct, smallest first); None when some alternative needs
    nothing known (or the pattern is not understood)."""
    try:
        alts, end = _alternatives(pattern, 0)
    except (_Unsupported, IndexError, ValueError):
        return None
    if end != len(pattern) or not alts or not all(alts):
        return None
    return tuple(tuple(sorted(set(a), key=lambda s: (len(s), sorted(s)))) for a in alts)


@lru_cache(maxsize=None)
def pattern_needs(pattern: str) -> Optional[tuple[tuple[frozenset, ...], ...]]:
    """`pattern_requirements`, the three rarest-looking sets (fewest characters) per alternative:
    enough to reject most texts."""
    req = pattern_requirements(pattern)
    return None if req is None else tuple(alt[:3] for alt in req)


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
    check = rule.quick_check
    return rule.rx.finditer(text) if check is None or check(text) is not None else ()


def runnable(rules, text: str) -> list:
    """The `rules` (in order) whose quick_check `text` passes, and then their pair_check (if
    any); each distinct check runs once."""
    seen: dict = {}
    out = []
    for r in rules:
        ok = True
        for check in (quick_check(r.pattern), pair_check(r.pattern)):
            if check is None:
                continue
            hit = seen.get(check)
            if hit is None:
                hit = seen[check] = check(text) is not None
            if not hit:
                ok = False
                break
        if ok:
            out.append(r)
    return out


def search(rule, text: str):
    """`rule.rx.search(text)`, or None at once when `text` fails the rule's quick_check."""
    check = rule.quick_check
    return rule.rx.search(text) if check is None or check(text) is not None else None


def may_match(pattern: str, text: str) -> bool:
    """False only when `pattern` cannot match anywhere in `text` (see quick_check)."""
    check = quick_check(pattern)
    return check is None or check(text) is not None


# ---------------------------------------------------------------------------------------------
# Screens: which rules of a list can match a text, from one look at the text
#
# `quick_check` costs a scan of the text per rule. A `Screen` looks once at a text for the
# characters that any of its rules needs (one `re.findall` of their union: the few "signal"
# characters a text holds), then decides each rule with set tests - every set of one of the
# rule's alternatives must meet the characters found. Sound for the same reason as quick_check
# (pattern_requirements), and stronger: every required set is tested, not one. Sets wider than
# _MAX_SIGNAL characters are left out (fewer tests, never a wrong rejection).

_MAX_SIGNAL = 256


class Screen:
    """The rules of `rules` that can match a text: `screen.select(screen.look(text))`.

    `look(text)` is a bit mask of the required character sets the text meets (bit k: set k);
    it is also valid for any text whose characters are among those of `text` (a part of it, or
    it with characters blanked to one no rule needs: then fewer sets are met, never more), which
    lets one look at a section decide for its windows too. Which rules pass is cached per mask."""

    def __init__(self, rules):
        self.rules = list(rules)
        sets: dict[frozenset, int] = {}  # each distinct required set → its bit
        tests: list = []
        for r in self.rules:
            req = pattern_requirements(r.pattern)
            alts = None if req is None else tuple(tuple(x for x in alt if len(x) <= _MAX_SIGNAL) for alt in req)
            if alts is None or not all(alts):
                tests.append(None)  # no test: always run
                continue
            masks = []
            for alt in alts:
                m = 0
                for x in alt:
                    m |= sets.setdefault(x, 1 << len(sets))
                masks.append(m)
            tests.append(tuple(masks))
        self._tests = tests
        self._char_bits: dict[str, int] = {}
        for x, bit in sets.items():
            for c in x:
                self._char_bits[c] = self._char_bits.get(c, 0) | bit
        self.alphabet = frozenset(self._char_bits)
        self._findall = (re.compile("[" + "".join(re.escape(c) for c in sorted(self.alphabet)) + "]").findall
                         if self.alphabet else None)
        self._allowed: dict[int, tuple[bool, ...]] = {}
        self._ids: dict[int, frozenset] = {}
        # A rule passes only if the text holds a character of the first (smallest) set of one of
        # its alternatives: one search for the union of those rules out every rule at once.
        if tests and all(t is not None for t in tests):
            first = set()
            for r in self.rules:
                for alt in pattern_requirements(r.pattern):
                    first |= next(x for x in alt if len(x) <= _MAX_SIGNAL)
            self._any = re.compile("[" + "".join(re.escape(c) for c in sorted(first)) + "]").search
        else:
            self._any = None  # some rule is always run

    def any_possible(self, text: str) -> bool:
        """False when no rule of the screen can match `text` (one class search); else True."""
        return self._any is None or self._any(text) is not None

    def look(self, text: str) -> int:
        """The required sets `text` meets, as a bit mask."""
        if self._findall is None:
            return 0
        return reduce(or_, map(self._char_bits.__getitem__, set(self._findall(text))), 0)

    def char_bits(self, c: str) -> int:
        """The bits a text holding the character `c` meets (0 when no rule needs it)."""
        return self._char_bits.get(c, 0)

    def allowed(self, bits: int) -> tuple[bool, ...]:
        """For each rule, whether it may match a text that meets `bits`."""
        out = self._allowed.get(bits)
        if out is None:
            if len(self._allowed) > 65536:
                self._allowed.clear()
            out = self._allowed[bits] = tuple(
                t is None or any(bits & m == m for m in t) for t in self._tests)
        return out

    def ids(self, bits: int) -> frozenset:
        """The `id()` of each rule that may match a text that meets `bits`."""
        out = self._ids.get(bits)
        if out is None:
            if len(self._ids) > 65536:
                self._ids.clear()
            out = self._ids[bits] = frozenset(id(r) for r, ok in zip(self.rules, self.allowed(bits)) if ok)
        return out

    def select(self, bits: int) -> list:
        """The rules (in order) that may match a text that meets `bits`."""
        return [r for r, ok in zip(self.rules, self.allowed(bits)) if ok]


# ---------------------------------------------------------------------------------------------
# First characters: where a match can start


def _first_of_seq(p: str, i: int) -> tuple[Optional[set], bool, int]:
    """From p[i] to the closing ")" or "|": (the characters a match of the sequence can start
    with, or None when unknown; whether it can match the empty string; end)."""
    first: set = set()
    while i < len(p) and p[i] not in "|)":
        c = p[i]
        item: Optional[set]
        empty = False  # the item can match the empty string
        if c == "(":
            if p.startswith(("(?:", "(?>"), i):
                j = i + 3
            elif p.startswith(("(?P<", "(?<"), i) and not p.startswith(("(?<=", "(?<!"), i):
                k = p.find(">", i)
                if k < 0:
                    return None, True, i
                j = k + 1
            elif p.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                # zero-width: consumes nothing; skip it (fewer constraints, still sound)
                _, _, j = _first_of_alts(p, i + (3 if p[i + 2] in "=!" else 4))
                if j >= len(p) or p[j] != ")":
                    return None, True, i
                i = j + 1
                _, i = _quantifier(p, i)
                continue
            elif p.startswith("(?", i):
                return None, True, i  # flags, recursion, conditionals …: not analysed
            else:
                j = i + 1
            item, empty, j = _first_of_alts(p, j)
            if j >= len(p) or p[j] != ")":
                return None, True, i
            i = j + 1
        elif c == "[":
            cs, i = _class_chars(p, i)
            if cs is None:
                return None, True, i
            item = set(cs)
        elif c == "\\":
            if i + 1 < len(p) and p[i + 1] in "bBAZmM":
                i += 2
                _, i = _quantifier(p, i)
                continue  # zero-width
            cs, i = _skip_escape(p, i)
            if cs is None:
                return None, True, i  # a class, a reference …
            item = set(cs)
        elif c in "^$":
            i += 1
            _, i = _quantifier(p, i)
            continue
        elif c == ".":
            return None, True, i
        elif c in "?*+{":
            return None, True, i
        else:
            item = {c}
            i += 1
        lo, i = _quantifier(p, i)
        if item is None:
            return None, True, i
        first |= item
        if lo >= 1 and not empty:
            return first, False, _skip_seq(p, i)
    return first, True, i


def _skip_seq(p: str, i: int) -> int:
    """Index of the "|" or ")" that ends the sequence at p[i] (nested groups and sets skipped)."""
    depth = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            _, i = _class_chars(p, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i
            depth -= 1
        elif c == "|" and depth == 0:
            return i
        i += 1
    return i


def _first_of_alts(p: str, i: int) -> tuple[Optional[set], bool, int]:
    first: set = set()
    empty = False
    while True:
        f, e, i = _first_of_seq(p, i)
        if f is None:
            return None, True, i
        first |= f
        empty = empty or e
        if i < len(p) and p[i] == "|":
            i += 1
            continue
        return first, empty, i


@lru_cache(maxsize=None)
def first_chars(pattern: str) -> Optional[frozenset]:
    """The characters the first character of every match of `pattern` is one of; None when the
    pattern can match the empty string or is not understood (then no position is ruled out)."""
    try:
        first, empty, end = _first_of_alts(pattern, 0)
    except (_Unsupported, IndexError, ValueError):
        return None
    if first is None or empty or end != len(pattern) or not first:
        return None
    return frozenset(first)


# ---------------------------------------------------------------------------------------------
# Adjacent characters: a stronger test for a few broad rules
#
# A Screen knows which characters a text holds, not where. A pattern such as
# `(?P<num>[一二三…]+)(?P<unit>个|家|…)` holds a numeral and a unit somewhere in most sections of a
# draft, but a numeral directly followed by a unit far less often. `pair_check` finds, for each
# alternative of a pattern, two consecutive items that consume at least one character each (zero-
# width assertions between them consume nothing), and tests that the text holds a character of the
# first item's last characters directly followed by one of the second's first characters.


class _Item(NamedTuple):
    first: Optional[frozenset]  # characters a match of the item starts with (None: unknown)
    last: Optional[frozenset]  # … ends with
    empty: bool  # it can match the empty string
    zero: bool  # a zero-width assertion


_UNKNOWN = _Item(None, None, True, False)


def _seq_items(p: str, i: int) -> tuple[list[list[_Item]], int]:
    """From p[i] to the closing ")" (or the end): the items of each alternative."""
    alts: list[list[_Item]] = []
    items: list[_Item] = []
    while i < len(p):
        c = p[i]
        if c == "|":
            alts.append(items)
            items = []
            i += 1
            continue
        if c == ")":
            break
        if c == "(":
            zero = p.startswith(("(?=", "(?!", "(?<=", "(?<!"), i)
            if zero:
                j = i + (3 if p[i + 2] in "=!" else 4)
            elif p.startswith(("(?:", "(?>"), i):
                j = i + 3
            elif p.startswith(("(?P<", "(?<"), i):
                k = p.find(">", i)
                if k < 0:
                    raise _Unsupported("unterminated group name")
                j = k + 1
            elif p.startswith("(?", i):
                raise _Unsupported("flags, recursion …")
            else:
                j = i + 1
            inner, j = _seq_items(p, j)
            if j >= len(p) or p[j] != ")":
                raise _Unsupported("unbalanced parenthesis")
            i = j + 1
            if zero:
                item = _Item(frozenset(), frozenset(), True, True)
            else:
                item = _group_item(inner)
        elif c == "[":
            cs, i = _class_chars(p, i)
            item = _Item(cs, cs, False, False) if cs else _Item(None, None, False, False)
        elif c == "\\":
            if i + 1 < len(p) and p[i + 1] in "bBAZmM":
                i += 2
                item = _Item(frozenset(), frozenset(), True, True)
            else:
                cs, i = _skip_escape(p, i)
                item = _Item(cs, cs, False, False) if cs else _UNKNOWN
        elif c in "^$":
            i += 1
            item = _Item(frozenset(), frozenset(), True, True)
        elif c == ".":
            i += 1
            item = _Item(None, None, False, False)
        elif c in "?*+{":
            raise _Unsupported("repeat without an item")
        else:
            i += 1
            item = _Item(frozenset(c), frozenset(c), False, False)
        lo, i = _quantifier(p, i)
        if lo == 0 and not item.zero:
            item = item._replace(empty=True)
        items.append(item)
    alts.append(items)
    return alts, i


def _group_item(alts: list[list[_Item]]) -> _Item:
    firsts: Optional[set] = set()
    lasts: Optional[set] = set()
    empty = False
    for items in alts:
        f, fe = _edge(items, "first")
        la, _ = _edge(list(reversed(items)), "last")
        firsts = None if f is None or firsts is None else firsts | f
        lasts = None if la is None or lasts is None else lasts | la
        empty = empty or fe or f is None
    return _Item(None if firsts is None else frozenset(firsts), None if lasts is None else frozenset(lasts),
                 empty, False)


def _edge(items: list[_Item], side: str) -> tuple[Optional[set], bool]:
    """Characters the sequence starts (or, reversed, ends) with, and whether it can be empty."""
    out: set = set()
    for it in items:
        if it.zero:
            continue
        chars = getattr(it, side)
        if chars is None:
            return None, True
        out |= chars
        if not it.empty:
            return out, False
    return out, True


@lru_cache(maxsize=None)
def pattern_pairs(pattern: str) -> Optional[tuple[tuple[frozenset, frozenset], ...]]:
    """For each top-level alternative, one pair (A, B): every match holds a character of A
    directly followed by one of B. None when some alternative has no such pair known."""
    try:
        alts, end = _seq_items(pattern, 0)
    except (_Unsupported, IndexError, ValueError):
        return None
    if end != len(pattern):
        return None
    out = []
    for items in alts:
        solid = [it for it in items if not it.zero]
        best = None
        for x, y in zip(solid, solid[1:]):
            if x.empty or y.empty or not x.last or not y.first:
                continue
            if len(x.last) > _MAX_CLASS or len(y.first) > _MAX_CLASS:
                continue
            key = min(len(x.last), len(y.first))
            if best is None or key < best[0]:
                best = (key, (x.last, y.first))
        if best is None:
            return None
        out.append(best[1])
    return tuple(out)


@lru_cache(maxsize=None)
def pair_check(pattern: str):
    """A test a text must pass for `pattern` to match in it (see pattern_pairs), or None."""
    pairs = pattern_pairs(pattern)
    if pairs is None:
        return None

    def cls(chars: frozenset) -> str:
        return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"

    rx = re.compile("|".join(f"{cls(a)}{cls(b)}" for a, b in pairs))
    return rx.search
