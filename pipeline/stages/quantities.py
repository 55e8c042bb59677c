"""Sections → quantities: the figures an analyst would put in a table (GUIDE.md, "Quantities").

Invariants:
- Every rule is data in `config/quantities.yaml`; this module only combines them. Figures are
  found by patterns that start on a digit, a Chinese numeral or a fixed word (翻, 有效期, 百分之),
  over a section's own text with line breaks removed (a PDF wrap `培育建成 5⏎个…` is one figure);
  an offset map keeps `start`/`end` offsets into `parsed.text`, and `raw == parsed.text[start:end]`
  (comparator words included: `不超过3000万元`, `1家以上`).
- A number inside an excluded span (years, dates, plan periods, document numbers, names such as
  `5G` `“20+8”` `十三五` `一带一路`, ordinals, time spans) never starts a figure: those spans are
  blanked before figures are looked for, with offsets unchanged.
- A figure that only says which things are counted is not a quantity (`产值超50亿的…企业5家`
  gives 5 家 only); neither is `N年` without a duration word (`支持年限不超过三年` is one).
- `value` is the number as written in the unit as written (`550` `亿元`; `百亿级` → 100 `亿元`
  `>=`; a ratio `1∶1` → 1 `比例`, value = right ÷ left); `value_max` only for `range`.
  `value_base`/`unit_base` normalise the magnitude: `550 亿元` → 5.5e10 `元`; a share becomes a
  fraction, `30 %` → 0.3 with unit_base `"1"`; a bare magnitude (`50 亿`) has unit_base None,
  its base unit not being written; units without a magnitude are copied.
- Comparator: a word after the figure decides (`以上` → >=, even after `超过`), else the longest
  word before it (`不超过` over `超过`), else a share's word before its base (`不超过总投资的50%`),
  else a list's head (`不超过100万元、70万元`), else `=`.
- Kind: `term` when a rule says so (有效期5年); `funding` in a section that says who qualifies
  (适用范围, 申报条件: a condition of the support, as `不少于3家单位的联合体` is); `target` when a
  `到20XX年` stands in the sentence; `funding` when the sentence holds a support word (资助, 补助,
  给予 … or, outside any target context, 支持 for money, a share or a condition); otherwise the
  governing year mark (its sentence, then earlier sentences of the section, then the headings and
  text of its ancestors) decides target or baseline; a figure in a status section (现状, not
  under a goal heading) with no year is a baseline; anything else is a target.
- Year: the governing mark's year; targets without one take `meta.period_end` (None without a
  plan period); funding only a year written in its own sentence.
- `section_id` is the innermost section whose own text holds the figure (`section_at`), None in
  the preamble.

How it runs (the output does not depend on any of this): the text is flattened and put in
half-width form once, each section's chunk being a slice of it. One look at a chunk (a
normalise.Screen over the exclusions, year masks, years and figures) says which of those rules can
match in it; a chunk where no figure rule can (nor, for the broad `chinese`, a numeral directly
before a unit: normalise.pair_check) is neither masked nor scanned, and a chunk's year marks are
read only when a figure asks for them.
"""
from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, ClassVar, Literal, NamedTuple, Optional

import cn2an
import regex
from pydantic import BaseModel, ConfigDict, model_validator

from pipeline.model import DocumentMeta, ParsedText, Quantity, Section
from pipeline.prefilter import Screen, may_match, pair_check, pattern_pairs, search
from pipeline.rules import Rule, RuleFile
from pipeline.stages.flatten import FlatText, OffsetMap
from pipeline.stages.sections import section_at  # noqa: F401  (the rule `section_id` follows)

Comparator = Literal[">=", ">", "<=", "<", "~", "=", "range"]

MACRO = regex.compile(r"<<([A-Z_]+)>>")
BLANK = "\ue000"  # private-use character that replaces excluded spans: matches no pattern
SENTENCE_ENDS = "。！？!?|｜\t"  # a table's cells are sentences of their own
PART_ENDS = SENTENCE_ENDS + "；;"
CLAUSE_ENDS = PART_ENDS + "，,：:"
WINDOW = 16  # characters looked at before a number for its comparator / rate words
METRIC_MAX = 24
# Full-width digits, Latin letters, ％ and ． are matched in their half-width form (one character for
# one, so offsets hold): ２０２５年 is a year like 2025年. Other characters are matched as written.
HALF_WIDTH = str.maketrans({chr(c): chr(c - 0xFEE0) for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                                            *range(0xFF41, 0xFF5B), 0xFF05, 0xFF0E)})
# (plain character classes are scanned with `re`: several times faster than `regex` for them)
_FULL_WIDTH = re.compile("[" + "".join(re.escape(chr(c)) for c in HALF_WIDTH) + "]")
# Fixed patterns of this module, compiled once (regex's own pattern cache costs a lookup per call).
_CLAUSE_CUT = regex.compile(r"[，,：:]")
_ITEM_CUT = regex.compile(r"、|(?<!及)和|以及")
_THING_START = regex.compile(r"\p{Han}|[“\"（(]")
# The things a scale qualifies, between it and their count (千亿级 企业 1—2个): a few words.
_COUNTED_NOUN = regex.compile(r"\p{Han}{1,12}")
# A count that describes what it is part of (不少于3家单位的联合体): a condition, not a goal.
_CONDITION = regex.compile(r"\p{Han}{0,4}?的")


# ---------------------------------------------------------------------------------------------
# Rule file schema


class UnitTable(BaseModel):
    """The unit vocabulary; the UNIT-family macros are generated from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scalable: list[str]
    plain: list[str]
    magnitudes: dict[str, float]
    bare_magnitudes: list[str] = []
    per: list[str] = []
    fractions: dict[str, float] = {}
    counts: list[str] = []
    not_after_chinese: list[str] = []
    duration: list[str] = []
    scale_default: str = "元"

    @cached_property
    def bases(self) -> dict[str, tuple[Optional[float], Optional[str]]]:
        """unit → (factor or None for "as written", base unit), filled as units are met."""
        return {}


class FigureRule(Rule):
    """A figure shape; named groups num / num_max / left / right / unit."""

    shape: Literal["single", "range", "ratio", "scale"] = "single"
    kind: Optional[Literal["term"]] = None  # a fixed kind (有效期5年 → term)
    comparator: Optional[Comparator] = None  # a fixed comparator (百亿级 → >=)
    fixed_unit: Optional[str] = None  # a unit the pattern implies (百分之三十 → %)

    def required_groups(self) -> tuple[str, ...]:
        # A scale (百亿级) may leave its number out: it then counts one.
        return {"ratio": ("left", "right"), "range": ("num", "num_max"), "single": ("num",)}.get(self.shape, ())


class ComparatorRule(Rule):
    comparator: Literal[">=", ">", "<=", "<", "~", "="]
    side: Literal["before", "after"]


class YearRule(Rule):
    role: Literal["target", "deadline", "baseline", "plain", "reference"]
    year: Optional[int] = None  # fixed year for marks naming a plan (到“十四五”末 → 2025)

    def required_groups(self) -> tuple[str, ...]:
        return () if self.year is not None else ("year",)


def _alternation(words) -> str:
    """Longest first, so that 个百分点 is tried before 个 and 千瓦时 before 千瓦."""
    return "|".join(regex.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def units_to_macros(units: dict) -> dict[str, str]:
    """The UNIT family of macros, generated from the `units` table of the rule file."""
    t = UnitTable.model_validate(units)
    mag = _alternation(t.magnitudes)
    scal = _alternation(t.scalable)
    per = f"(?:\\s*/\\s*(?:{_alternation(t.per)}))?" if t.per else ""
    bare = f"|(?:{_alternation(t.bare_magnitudes)})" if t.bare_magnitudes else ""

    def unit(excluded=()):
        plain = [u for u in t.plain if u not in excluded]
        scalable = [u for u in t.scalable if u not in excluded]
        return (f"(?:(?:{_alternation(plain)})|(?:(?:{mag})?(?:{_alternation(scalable)}){per}){bare})")

    return {"MAG": f"(?:{mag})", "SCALED_UNIT": f"(?:{scal})", "UNIT": unit(),
            "CN_UNIT": unit(set(t.not_after_chinese))}


def expand_macros(pattern: str, macros: dict[str, str]) -> str:
    for _ in range(10):  # macros may use macros; ten levels is far more than needed
        new = MACRO.sub(lambda m: macros[m.group(1)] if m.group(1) in macros else m.group(0), pattern)
        if new == pattern:
            break
        pattern = new
    return pattern


class QuantityRules(RuleFile):
    filename: ClassVar[str] = "quantities.yaml"
    required_groups: ClassVar[dict[str, tuple[str, ...]]] = {"rate": ("per",)}

    macros: dict[str, str] = {}
    units: UnitTable
    exclusions: list[Rule]
    figures: list[FigureRule]
    comparators: list[ComparatorRule]
    years: list[YearRule]
    year_masks: list[Rule]
    funding_cues: Rule
    support_cues: Rule
    future_cues: Rule
    threshold_words: Rule
    target_headings: Rule
    status_headings: Rule
    scope_headings: Optional[Rule] = None
    duration_context: Rule
    rate: Rule
    threshold_qualifier: Rule
    clause_qualifier: Rule
    list_joiner: Rule
    metric_lead: Rule
    metric_trail: Rule

    @cached_property
    def scanners(self) -> "_Scanners":
        return _scanners(self)

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, data: Any) -> Any:
        """Replace `<<NAME>>` in every pattern before the patterns are compiled and checked."""
        if not isinstance(data, dict) or "units" not in data:
            return data
        try:
            macros = {**units_to_macros(data["units"]), **(data.get("macros") or {})}
        except Exception:  # let field validation report the broken units table
            return data

        def walk(node):
            if isinstance(node, dict):
                return {k: (expand_macros(v, macros) if k == "pattern" and isinstance(v, str) else walk(v))
                        for k, v in node.items()}
            if isinstance(node, list):
                return [walk(x) for x in node]
            return node

        return {k: (v if k in ("macros", "units") else walk(v)) for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# Working records


class YearMark(NamedTuple):
    pos: int  # in chunk.flat
    year: int
    role: str  # target | baseline | plain | reference


class _Chunk:
    """A section's own text (or the preamble) with line breaks removed.

    `masked` and `marks` are worked out on first use: a chunk in which no figure rule can match
    is never masked, and the year marks of a chunk are read only when a figure in it, or in a
    section below it, asks for them."""

    __slots__ = ("section", "flat", "offsets", "half", "bits", "_rules", "_masked", "_marks", "mark_pos",
                 "heading_flags")

    def __init__(self, section: Optional[Section], flat: str, offsets: OffsetMap, half: Optional[str] = None,
                 rules: Optional[QuantityRules] = None):
        self.section = section
        self.flat = flat  # text without line breaks, as written
        self.offsets = offsets  # offsets[i] = offset in parsed.text of flat[i]
        self.half = flat if half is None else half  # flat in half-width form (HALF_WIDTH)
        self._rules = rules
        self.bits = _look(self.half, rules) if rules is not None else 0  # what the scanners know of it
        self._masked: Optional[str] = None
        self._marks: Optional[list[YearMark]] = None
        self.mark_pos: Optional[list[int]] = None  # [m.pos for m in marks], for bisection
        # (a target heading, a status heading, a scope heading) in the section's chain, once asked
        self.heading_flags: Optional[tuple[bool, bool, bool]] = None

    @property
    def masked(self) -> str:
        """`half` with the excluded spans blanked."""
        if self._masked is None:
            self._masked = flat_to_masked(self.half, self._rules, self.bits)
        return self._masked

    @property
    def marks(self) -> list[YearMark]:
        if self._marks is None:
            self._marks = flat_to_year_marks(self.half, self._rules, self.bits)
        return self._marks

    def figure_rules(self) -> tuple[bool, ...]:
        """For each figure rule, whether it may match: the Screen's answer, then for the broad
        rules the adjacency test (normalise.pair_check: a numeral directly before a unit). Both
        hold for `masked` when they hold for `half` (blanking only removes characters)."""
        sc = self._rules.scanners
        allowed = sc.screen.allowed(self.bits)[sc.figures]
        return tuple(ok and (check is None or check(self.half) is not None)
                     for ok, check in zip(allowed, sc.figure_pairs))


@dataclass
class _Figure:
    rule: FigureRule
    start: int  # in chunk.flat: the number (or the fixed word)
    end: int  # after the unit
    value: float
    value_max: Optional[float]
    unit: str
    comparator: str = "="
    cmp_start: int = -1  # start of the `before` comparator word, if any
    before_cmp: Optional[str] = None
    after_end: int = -1  # end of the `after` comparator word, if any
    lead: str = ""  # fixed words of the pattern before the number (有效期, 翻)


# ---------------------------------------------------------------------------------------------
# Small conversions


@lru_cache(maxsize=4096)
def numeral_to_float(s: str) -> Optional[float]:
    """`1,000` → 1000; `5039.8` → 5039.8; `五` → 5; `百` → 100; `十二` → 12 (cn2an)."""
    s = unicodedata.normalize("NFKC", s).replace(",", "").strip()
    if not s:
        return None
    try:
        return float(s)
    except ValueError:
        pass
    if s[0] in "十百千":  # cn2an wants the leading 一 that writers drop (百亿 = 一百亿)
        s = "一" + s
    try:
        return float(cn2an.cn2an(s, "smart"))
    except (ValueError, KeyError, IndexError):
        return None


def unit_to_base(value: float, unit: str, units: UnitTable) -> tuple[Optional[float], Optional[str]]:
    """`550 亿元` → (5.5e10, 元); `30 %` → (0.3, "1"); `50 亿` → (5e9, None); `5 家` → (5, 家)."""
    factor, base = _unit_base(unit, units)
    return (value if factor is None else value * factor), base


def _unit_base(unit: str, units: UnitTable) -> tuple[Optional[float], Optional[str]]:
    """(factor or None for "as written", base unit) of `unit`, worked out once per unit."""
    hit = units.bases.get(unit)
    if hit is None:
        hit = units.bases[unit] = _unit_base_uncached(unit, units)
    return hit


def _unit_base_uncached(unit: str, units: UnitTable) -> tuple[Optional[float], Optional[str]]:
    u = unicodedata.normalize("NFKC", unit)
    if unit in units.fractions or u in units.fractions:
        return units.fractions.get(unit, units.fractions.get(u, 1.0)), "1"
    head, _, per = unit.partition("/")
    for mag in sorted(units.magnitudes, key=len, reverse=True):
        rest = head[len(mag):]
        if head.startswith(mag) and head not in units.scalable and (not rest or rest in units.scalable):
            if not rest:
                return units.magnitudes[mag], None
            return units.magnitudes[mag], rest + (f"/{per}" if per else "")
    return None, unit


class _Scanners(NamedTuple):
    """The rules run over every chunk, and one Screen (normalise.Screen) deciding them all from a
    single look at the chunk: exclusions, year masks, years, figures (slices of `screen.rules`)."""

    screen: Screen
    exclusions: slice
    year_masks: slice
    years: slice
    figures: slice
    blank_bits: int  # what BLANK adds to a look (0 unless some rule needs BLANK itself)
    figure_pairs: tuple  # pair_check of each figure rule (None: no test)


def _scanners(rules: QuantityRules) -> _Scanners:
    """Built once per rule file (`QuantityRules.scanners`)."""
    groups = [rules.exclusions, rules.year_masks, rules.years, rules.figures]
    sc = Screen([r for g in groups for r in g])
    cuts, at = [], 0
    for g in groups:
        cuts.append(slice(at, at + len(g)))
        at += len(g)
    pairs = tuple(pair_check(r.pattern) for r in rules.figures)
    if any(BLANK in a or BLANK in b for r in rules.figures for a, b in (pattern_pairs(r.pattern) or ())):
        pairs = tuple(None for _ in pairs)  # a rule reads BLANK: a pair could appear by blanking
    return _Scanners(sc, *cuts, sc.char_bits(BLANK), pairs)


def _look(flat: str, rules: QuantityRules) -> int:
    """What the scanners need to know of `flat` (valid for it with spans blanked too)."""
    sc = rules.scanners
    return sc.screen.look(flat) | sc.blank_bits


def _selected(rules: QuantityRules, group: str, bits: Optional[int], s: str) -> list:
    """The rules of the scanners' `group` that may match `s` (which meets `bits`)."""
    sc = rules.scanners
    if bits is None:
        bits = _look(s, rules)
    cut = getattr(sc, group)
    return [r for r, ok in zip(sc.screen.rules[cut], sc.screen.allowed(bits)[cut]) if ok]


def _spans(rules: QuantityRules, group: str, s: str, bits: Optional[int]) -> list[tuple[int, int]]:
    return [m.span() for r in _selected(rules, group, bits, s) for m in r.rx.finditer(s)]


def _blank(s: str, spans: list[tuple[int, int]]) -> str:
    """`s` with every character inside one of `spans` replaced by BLANK (same length)."""
    if not spans:
        return s
    parts, pos = [], 0
    for a, b in sorted(spans):
        a = max(a, pos)
        if b <= a:
            continue
        parts += (s[pos:a], BLANK * (b - a))
        pos = b
    parts.append(s[pos:])
    return "".join(parts)


def flat_to_masked(flat: str, rules: QuantityRules, bits: Optional[int] = None) -> str:
    """Blank the excluded spans (same length, so positions are kept). `bits`: `_look(flat)`."""
    return _blank(flat, _spans(rules, "exclusions", flat, bits))


def flat_to_year_marks(flat: str, rules: QuantityRules, bits: Optional[int] = None) -> list[YearMark]:
    """Year marks, with titles of other documents (《…（2021-2025年）》) and plan periods hidden."""
    if bits is None:
        bits = _look(flat, rules)
    hidden = _blank(flat, _spans(rules, "year_masks", flat, bits))
    taken: list[tuple[int, int]] = []
    marks = []
    for r in _selected(rules, "years", bits, hidden):  # earlier rules win on overlap
        for m in r.rx.finditer(hidden):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append(m.span())
            year = r.year if r.year is not None else int(m.group("year"))
            marks.append(YearMark(m.start(), year, r.role))
    return sorted(marks)


@lru_cache(maxsize=64)
def _delimiters(s: str, ends: str) -> list[int]:
    """Sorted positions in `s` of the characters in `ends` (one pass per text and delimiter set)."""
    return [m.start() for m in _delimiter_rx(ends).finditer(s)] if ends else []


@lru_cache(maxsize=None)
def _delimiter_rx(ends: str) -> "re.Pattern[str]":
    return re.compile("[" + "".join(re.escape(c) for c in ends) + "]")


def _bounds(s: str, pos: int, ends: str) -> tuple[int, int]:
    """The span around `pos` delimited by any of `ends` (the delimiter closes the span)."""
    d = _delimiters(s, ends)
    i = bisect_left(d, pos)
    return (d[i - 1] + 1 if i else 0), (d[i] if i < len(d) else len(s))


# ---------------------------------------------------------------------------------------------
# Figures


def masked_to_figures(masked: str, rules: QuantityRules, allowed: Optional[tuple[bool, ...]] = None
                      ) -> list[_Figure]:
    """Every figure in the blanked text; overlaps resolved by start, then length, then rule order.
    `allowed`: which figure rules may match (`_Chunk.figure_rules`); all are tried without it."""
    cands = []
    if allowed is None:
        allowed = tuple(True for _ in rules.figures)
    for order, (r, ok) in enumerate(zip(rules.figures, allowed)):
        if not ok:
            continue
        for m in r.rx.finditer(masked):
            fig = match_to_figure(m, r, rules)
            if fig is not None:
                cands.append((m.start(), -(m.end() - m.start()), order, fig))
    cands.sort(key=lambda c: c[:3])
    out: list[_Figure] = []
    last_end = -1
    for start, _, _, fig in cands:
        if start >= last_end:
            out.append(fig)
            last_end = fig.end
    return out


def match_to_figure(m, r: FigureRule, rules: QuantityRules) -> Optional[_Figure]:
    g = m.groupdict()
    unit = r.fixed_unit or (g.get("unit") or "").strip()
    unit = "".join(unit.split())
    if r.shape == "ratio":
        left, right = numeral_to_float(g["left"]), numeral_to_float(g["right"])
        if not left or right is None:
            return None
        return _Figure(r, m.start(), m.end(), right / left, None, "比例")
    value = numeral_to_float(g["num"]) if g.get("num") else (1.0 if r.shape == "scale" else None)
    if value is None:
        return None
    value_max = None
    if r.shape == "range":
        value_max = numeral_to_float(g["num_max"])
        if value_max is None or value_max <= value:
            return None
    if r.shape == "scale" and unit in rules.units.magnitudes:
        unit += rules.units.scale_default  # 百亿级 → 100 亿元
    fig = _Figure(r, m.start(), m.end(), value, value_max, unit)
    if g.get("num"):
        fig.lead = m.string[m.start():m.start("num")].strip()
    if r.comparator:
        fig.comparator = r.comparator
    elif r.shape == "range":
        fig.comparator = "range"
    return fig


def figure_to_comparator(flat: str, fig: _Figure, floor: int, rules: QuantityRules) -> None:
    """Set the comparator from the words around the figure (`after` words decide)."""
    if fig.comparator == "range" or fig.rule.comparator:
        return
    after = flat[fig.end:fig.end + 8]
    for r in rules.comparators:
        if r.side == "after":
            m = search(r, after)
            if m:
                fig.comparator, fig.after_end = r.comparator, fig.end + m.end()
                break
    window_start = max(floor, fig.start - WINDOW)
    best = _before_word(flat[window_start:fig.start], rules)
    if best is not None:
        fig.cmp_start, fig.before_cmp = window_start + best[0], best[1]
    elif fig.unit in rules.units.fractions or fig.unit == "比例":
        share = _share_before_word(flat, fig, floor, rules)
        if share is not None:
            fig.before_cmp = share[1]
    if fig.before_cmp and fig.after_end < 0:
        fig.comparator = fig.before_cmp


def _before_word(window: str, rules: QuantityRules, candidates: Optional[list] = None
                 ) -> Optional[tuple[int, str, int]]:
    """The longest `before` comparator ending the window: (start in window, comparator, end).
    `candidates`: the `before` rules that may match a text holding the window (all without)."""
    best = None
    for r in (rules.comparators if candidates is None else candidates):
        if r.side != "before":
            continue
        m = search(r, window)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), r.comparator, m.end())
    return best


def _share_before_word(flat: str, fig: _Figure, floor: int,
                       rules: QuantityRules) -> Optional[tuple[int, str, int]]:
    """A share's comparator written before its base: `不超过总投资的50%` → <=."""
    a, _ = _bounds(flat, fig.start, CLAUSE_ENDS)
    a = max(a, floor)
    prefix = flat[a:fig.start].rstrip()
    if not prefix.endswith("的"):
        return None
    # nearest comparator first, and none with a digit between it and the base: below the last
    # digit every `prefix[k:]` holds that digit, so the search stops there
    last_digit = max((i for i, c in enumerate(prefix) if c.isdigit()), default=0)
    # a rule that cannot match the prefix cannot match a part of it
    candidates = [r for r in rules.comparators if r.side == "before" and may_match(r.pattern, prefix)]
    if not candidates:
        return None
    for k in range(len(prefix) - 1, last_digit, -1):
        best = _before_word(prefix[:k], rules, candidates)
        if best is not None:
            return best
    return None


# ---------------------------------------------------------------------------------------------
# Kind and year


def _chain(sec: Optional[Section], by_id: dict[str, Section]) -> list[Section]:
    """The section and its ancestors, innermost first."""
    out = []
    while sec is not None:
        out.append(sec)
        sec = by_id.get(sec.parent_id) if sec.parent_id else None
    return out


def _mark_positions(chunk: _Chunk) -> list[int]:
    """Positions of the chunk's year marks (sorted, as the marks are), computed once per chunk."""
    if chunk.mark_pos is None or len(chunk.mark_pos) != len(chunk.marks):
        chunk.mark_pos = [mk.pos for mk in chunk.marks]
    return chunk.mark_pos


# Year marks that govern figures in their own sentence only: a comparison year (比2020年), and a
# task's deadline (2024年底前完成…), which says nothing of the next sentence's figures.
_OWN_SENTENCE = ("reference", "deadline")


def year_mark_to_kind(mark: YearMark, sentence: str, ctx_target: bool, meta: DocumentMeta,
                      rules: QuantityRules, later_target: bool = False) -> str:
    """The kind a year mark gives. A `plain` year (2019年…) is a baseline when it is before the plan
    period (or not after the document's date); without either, when a later target year follows it
    in the same section (`2023年，…2.38万亿元。到2027年，…`: where things start from), or when
    nothing in the sentence or the headings looks ahead."""
    if mark.role in ("target", "baseline"):
        return mark.role
    if mark.role == "deadline":
        return "target"
    if meta.period_start is not None:
        return "baseline" if mark.year < meta.period_start else "target"
    if meta.date and meta.date[:4].isdigit():
        return "baseline" if mark.year <= int(meta.date[:4]) else "target"
    if later_target:
        return "baseline"
    if ctx_target or search(rules.future_cues, sentence):
        return "target"
    return "baseline"


def _support_term(flat: str, fig: "_Figure", rules: QuantityRules) -> bool:
    """In a sentence with a weak support word (支持), whether the figure is part of the support."""
    if _unit_base(fig.unit, rules.units)[1] not in rules.units.counts:  # 1万人 counts people
        return True
    c0, c1 = _bounds(flat, fig.start, CLAUSE_ENDS)
    end = fig.after_end if fig.after_end >= 0 else fig.end
    return bool(search(rules.support_cues, flat[c0:c1])) or bool(_CONDITION.match(flat, end))


def figure_to_kind_year(chunk: _Chunk, fig: _Figure, chain: list[Section], chunks: dict[str, _Chunk],
                        meta: DocumentMeta, rules: QuantityRules) -> tuple[str, Optional[int]]:
    """Kind and year of a figure (see the module docstring for the order of the tests)."""
    if fig.rule.kind:
        return fig.rule.kind, None
    s0, s1 = _bounds(chunk.flat, fig.start, SENTENCE_ENDS)
    sentence = chunk.flat[s0:s1]
    marks = chunk.marks
    pos = _mark_positions(chunk)
    i0 = bisect_left(pos, s0)
    in_sentence = [mk for mk in marks[i0:bisect_left(pos, s1, i0)] if mk.role != "reference"]
    if chunk.heading_flags is None:  # the same for every figure of the chunk
        headings = [s.heading for s in chain]
        target_at = [bool(search(rules.target_headings, h)) for h in headings]
        # A status word under a goal heading describes the goal (二、发展目标 › 3.数字化转型成效明显)
        status_at = [bool(search(rules.status_headings, h)) and not any(target_at[k + 1:])
                     for k, h in enumerate(headings)]
        scope = rules.scope_headings
        chunk.heading_flags = (any(target_at), any(status_at),
                               scope is not None and any(search(scope, h) for h in headings))
    target_heading, status_heading, scope_heading = chunk.heading_flags
    if scope_heading:  # 适用范围: who qualifies for the support
        return "funding", (in_sentence[0].year if in_sentence else None)

    # The governing year mark: its sentence (nearest before, else first after), earlier sentences
    # of the section, then the ancestors' headings and text (nearest above first).
    before = [mk for mk in in_sentence if mk.pos < fig.start]
    governing = before[-1] if before else (in_sentence[0] if in_sentence else None)
    if governing is None:
        governing = next((mk for mk in reversed(marks[:i0]) if mk.role not in _OWN_SENTENCE), None)
    in_chunk = governing is not None  # else it comes from an ancestor, if any
    for anc in chain[1:]:
        if governing is not None:
            break
        ac = chunks.get(anc.section_id)
        governing = next((mk for mk in reversed(ac.marks) if mk.role not in _OWN_SENTENCE), None) if ac else None
    ctx_target = target_heading or (governing is not None and governing.role in ("target", "deadline"))

    # 到2025年 in the sentence itself outweighs support words (到2025年，累计支持100家企业)
    targets = [mk for mk in in_sentence if mk.role in ("target", "deadline")]
    if targets:
        pre = [mk for mk in targets if mk.pos < fig.start]
        return "target", (pre[-1] if pre else targets[0]).year
    # 支持 is also the verb of many tasks: it means funding only outside any target context, and
    # only for the support itself: money, a share, or a condition on what is supported (不少于3家
    # 单位的联合体); not for a count a later clause sets out to reach (支持…，新建…中心20个)
    if search(rules.funding_cues, sentence) or (
            search(rules.support_cues, sentence) and not ctx_target and meta.period_end is None
            and _support_term(chunk.flat, fig, rules)):
        return "funding", (in_sentence[0].year if in_sentence else None)
    if governing is not None:
        later = in_chunk and governing.role == "plain" and any(
            mk.role == "target" and mk.pos > governing.pos and mk.year > governing.year for mk in marks)
        return year_mark_to_kind(governing, sentence, ctx_target, meta, rules, later), governing.year
    if status_heading:
        return "baseline", None
    return "target", meta.period_end


# ---------------------------------------------------------------------------------------------
# Qualifiers


def _joined(flat: str, a: _Figure, b: _Figure, rules: QuantityRules) -> bool:
    """True when `b` is the next item of a list that `a` is in (100万元、70万元 / 65%和55%)."""
    a_end = a.after_end if a.after_end >= 0 else a.end
    b_start = b.cmp_start if b.cmp_start >= 0 else b.start
    return bool(rules.list_joiner.rx.match(flat[a_end:b_start]))


def figures_to_kept(flat: str, figs: list[_Figure], rules: QuantityRules) -> list[bool]:
    """Which figures are quantities. Dropped: a duration word missing for 年 (5年 is a time
    expression), and qualifiers - figures that only say which things are counted or measured."""
    n = len(figs)
    # a threshold word governs a whole list: 首次突破10亿元、50亿元、100亿元的企业
    threshold = []
    for i, fig in enumerate(figs):
        start = fig.cmp_start if fig.cmp_start >= 0 else fig.start
        threshold.append(fig.comparator in (">", ">=")
                         or bool(search(rules.threshold_words, flat[max(0, start - WINDOW):fig.start]))
                         or (i > 0 and threshold[i - 1] and figs[i - 1].unit == fig.unit
                             and _joined(flat, figs[i - 1], fig, rules)))
    qualifier = [False] * n
    for i in range(n - 1, -1, -1):
        fig, later = figs[i], (figs[i + 1] if i + 1 < n else None)
        if later is None:
            continue
        end = fig.after_end if fig.after_end >= 0 else fig.end
        later_begin = later.cmp_start if later.cmp_start >= 0 else later.start
        _, part_end = _bounds(flat, fig.start, PART_ENDS)
        _, clause_end = _bounds(flat, fig.start, CLAUSE_ENDS)
        if _joined(flat, fig, later, rules) and fig.unit == later.unit:
            # one list, one role: 首次突破10亿元、50亿元、100亿元的企业 are all thresholds
            qualifier[i] = qualifier[i + 1]
        elif threshold[i] and later.start < part_end and rules.threshold_qualifier.rx.match(flat[end:]):
            qualifier[i] = True  # 产值超 50 亿的…龙头企业 5 家
        elif later.start < clause_end and rules.clause_qualifier.rx.match(flat[end:later_begin]):
            qualifier[i] = True  # 任意三个销售合同累计销售额的30%
    kept = []
    for i, fig in enumerate(figs):
        keep = not qualifier[i]
        prev = figs[i - 1] if i else None
        if keep and prev is not None and fig.rule.shape == "scale" and prev.unit in rules.units.counts \
                and not flat[(prev.after_end if prev.after_end >= 0 else prev.end):fig.start].strip():
            keep = False  # 2-3个千亿级产业集群: the scale says which clusters are counted
        nxt = figs[i + 1] if i + 1 < n else None
        if keep and nxt is not None and fig.rule.shape == "scale" and nxt.unit in rules.units.counts \
                and _COUNTED_NOUN.fullmatch(flat, fig.end, nxt.cmp_start if nxt.cmp_start >= 0 else nxt.start):
            keep = False  # 千亿级企业1—2个: the same, with the count after the things counted
        if keep and fig.unit in rules.units.duration and not fig.rule.kind and fig.comparator == "=":
            start = fig.cmp_start if fig.cmp_start >= 0 else fig.start
            keep = bool(search(rules.duration_context, flat[max(0, start - WINDOW):fig.start]))
        kept.append(keep)
    return kept


# ---------------------------------------------------------------------------------------------
# Metric


def _clean_metric(s: str, rules: QuantityRules) -> str:
    s = s.replace(BLANK, "").strip()
    for _ in range(3):  # lead and trail words come in runs (按不超过…的)
        t = rules.metric_trail.rx.sub("", rules.metric_lead.rx.sub("", s)).strip()
        if t == s:
            break  # nothing left to trim: another round would change nothing
        s = t
    return s.strip(" ，,、；;。“”\"")


def _respective_item(flat: str, figs: list[_Figure], k: int, rules: QuantityRules) -> Optional[str]:
    """`对国际标准、国家标准…分别给予不超过100万元、50万元…`: the k-th figure's own item."""
    head = k
    while head and _joined(flat, figs[head - 1], figs[head], rules):
        head -= 1
    tail = k
    while tail + 1 < len(figs) and _joined(flat, figs[tail], figs[tail + 1], rules):
        tail += 1
    if head == tail:
        return None
    s0, _ = _bounds(flat, figs[head].start, SENTENCE_ENDS)
    at = flat.rfind("分别", s0, figs[head].start)
    if at < 0:
        return None
    clauses = [c for c in _CLAUSE_CUT.split(flat[s0:at]) if "、" in c]
    if not clauses:
        return None
    items = [x for x in _ITEM_CUT.split(clauses[-1]) if x.strip()]
    n = tail - head + 1
    if len(items) < n:
        return None
    return _clean_metric(items[len(items) - n + (k - head)], rules) or None


def figure_to_metric(flat: str, figs: list[_Figure], k: int, prev_end: int, rules: QuantityRules) -> str:
    """A short name of what is measured, as written: the words before the figure in its clause,
    or, for a count or a scale (`1家以上省级创新平台`, `百亿级材料集群`), the thing after it."""
    fig = figs[k]
    if fig.rule.kind:  # 有效期5年: the fixed word is the metric
        return fig.lead or fig.unit
    item = _respective_item(flat, figs, k, rules)
    if item:
        return item
    a, b = _bounds(flat, fig.start, CLAUSE_ENDS)
    next_start = figs[k + 1].start if k + 1 < len(figs) else len(flat)
    start = fig.cmp_start if fig.cmp_start >= 0 else fig.start
    end = fig.after_end if fig.after_end >= 0 else fig.end
    after = flat[end:min(b, next_start if next_start > end else b)]
    after = _ITEM_CUT.split(after, maxsplit=1)[0].lstrip("的 ").strip()
    counted = fig.rule.shape == "scale" or fig.unit.split("/")[0][-1:] in rules.units.counts \
        or fig.unit in rules.units.counts
    if counted and after and _THING_START.match(after) and not after.startswith(("以", "左右")):
        metric = after
    else:
        before = _clean_metric(flat[max(a, prev_end):start], rules)
        metric = before or _clean_metric(after, rules) or fig.unit
    metric = metric.strip(" ，,、；;。“”\"")
    return metric[-METRIC_MAX:] if len(metric) > METRIC_MAX else metric


# ---------------------------------------------------------------------------------------------
# Entry point


def document_to_chunks(parsed: ParsedText, sections: list[Section], rules: QuantityRules) -> list[_Chunk]:
    """The preamble and each section's own text (its label skipped: `1.` is not a figure).

    The text is flattened (and put in half-width form) once; each chunk is a slice of that."""
    text = parsed.text
    whole = FlatText(text, "\r\n")
    half_whole = whole.flat.translate(HALF_WIDTH) if _FULL_WIDTH.search(text) is not None else whole.flat
    bounds = [(0, sections[0].start if sections else len(text), None)]
    for s in sections:
        at = text.find(s.label, s.start, s.own_end + 1) if s.label else -1
        begin = at + len(s.label) if at >= 0 else s.start
        bounds.append((begin, max(begin, s.own_end), s))
    out = []
    for a, b, sec in bounds:
        lo, hi = whole.span(a, b)
        flat, offsets = whole.part(lo, hi)
        out.append(_Chunk(sec, flat, offsets, half_whole[lo:hi] if half_whole is not whole.flat else flat, rules))
    return out


def chunk_to_figures(chunk: _Chunk, rules: QuantityRules) -> list[_Figure]:
    """The chunk's figures with comparators and rate units set (list items share a comparator)."""
    allowed = chunk.figure_rules()
    if not any(allowed):
        return []  # nothing to mask
    flat = chunk.flat
    figs = masked_to_figures(chunk.masked, rules, allowed)
    prev_end = 0
    for k, fig in enumerate(figs):
        figure_to_comparator(flat, fig, prev_end, rules)
        # a list continues its head's comparator: 不超过100万元、70万元、50万元
        if k and fig.before_cmp is None and fig.after_end < 0 and fig.comparator == "=" \
                and figs[k - 1].before_cmp and figs[k - 1].unit == fig.unit \
                and _joined(flat, figs[k - 1], fig, rules):
            fig.before_cmp = fig.comparator = figs[k - 1].before_cmp
        m = search(rules.rate, flat[max(prev_end, fig.start - WINDOW):fig.cmp_start if fig.cmp_start >= 0 else fig.start])
        if m and "/" not in fig.unit and fig.rule.shape == "single":
            fig.unit = f"{fig.unit}/{m.group('per')}"  # 每亩300元 → 元/亩
        prev_end = fig.after_end if fig.after_end >= 0 else fig.end
    return figs


def _round(x: Optional[float]) -> Optional[float]:
    """Drop binary noise from scaling (9997.96 × 1e4 = 99979599.99999999)."""
    return None if x is None else float(f"{x:.12g}")


def sections_to_quantities(parsed: ParsedText, sections: list[Section], meta: DocumentMeta,
                           rules: QuantityRules) -> list[Quantity]:
    by_id = {s.section_id: s for s in sections}
    starts = [s.start for s in sections]  # section_at, without rebuilding this list per figure
    chunks = document_to_chunks(parsed, sections, rules)
    chunk_of = {c.section.section_id: c for c in chunks if c.section is not None}
    out: list[Quantity] = []
    for chunk in chunks:
        flat = chunk.flat
        figs = chunk_to_figures(chunk, rules)
        if not figs:
            continue
        kept = figures_to_kept(flat, figs, rules)
        chain = _chain(chunk.section, by_id)
        prev_end = 0
        for k, fig in enumerate(figs):
            start = fig.cmp_start if fig.cmp_start >= 0 else fig.start
            end = fig.after_end if fig.after_end >= 0 else fig.end
            if kept[k]:
                kind, year = figure_to_kind_year(chunk, fig, chain, chunk_of, meta, rules)
                t0, t1 = chunk.offsets[start], chunk.offsets[end - 1] + 1
                value_base, unit_base = unit_to_base(fig.value, fig.unit, rules.units)
                i = bisect_right(starts, t0) - 1
                sec = sections[i] if i >= 0 else None
                out.append(Quantity(
                    section_id=sec.section_id if sec else None,
                    kind=kind,
                    year=year,
                    comparator=fig.comparator,
                    value=fig.value,
                    value_max=fig.value_max,
                    unit=fig.unit,
                    value_base=_round(value_base),
                    unit_base=unit_base,
                    metric=figure_to_metric(flat, figs, k, prev_end, rules),
                    raw=parsed.text[t0:t1],
                    start=t0,
                    end=t1,
                    rule_id=fig.rule.id,
                ))
            prev_end = end
    return out
