"""Sections → responsibility lines: who leads, who takes part, who is responsible for a task.

A responsibility line is a parenthesis such as `（责任单位：A牵头，B、C按职责分工负责）`,
`(A、B按职责分工负责)`, `（牵头单位：A；配合单位：B）`, `（A会同B负责）`, or a paragraph (or sentence)
opening with a label, `牵头单位：A` / `配合单位：B`. The rules that recognise them are data
(`config/responsibilities.yaml`); this module only applies them.

Invariants:
- One row per name per line; `position` is the name's order in the line (0-based).
- `start`/`end` are offsets into `parsed.text` of the whole line (its parentheses included), even
  when the line wraps over several paragraphs: parentheses are matched over each section's own
  text with line breaks removed, and an offset map leads back. `line_raw` is that line with its
  line breaks removed.
- `section_id` is that of the innermost section whose own text holds the line's start
  (`section_at`), None in the preamble. A line never spans two sections.
- `agency_raw` is a name as written, after cutting the list (on `、，,；;`, on `和` only between
  two whole names, and into the bodies a trailing parenthesis lists) and removing role words and
  tails (`等有关部门`). A parenthesis that is part of a name (`各县（市、区）政府`) stays in it.
- `agency` is `agency_raw` with the prefix the list leaves out restored: a bare name takes the
  level word or place name of the last name before it in the same line that had one
  (`市科学技术局牵头，市发展和改革局、工业和信息化局` → `市工业和信息化局`). Names complete on their
  own (`各区政府`, `广东海洋大学`, `市委外办`, `深圳银保监局`) are kept and pass no prefix on.
- `role` is `lead` (before 牵头, after `牵头单位：`, before 会同), `participant` (after a lead, after
  配合 or `配合单位：`), or `responsible` (every name of a line without a lead). After a declaration
  that the first-listed unit leads (`排在第一位的部门为牵头部门，下同`), a line that names no lead
  and no participant itself has its first name `lead` and the rest `participant`.
- A parenthesis without a label is a line only if it ends with a role word and every name in it
  looks like a body (`agency_name`), and so must every name of a paragraph that opens with a
  label; body sentences (`由市工业和信息化局牵头建立…`) and other
  parentheses (`（简称…）`, `（2021—2025年）`) are never lines.

How it runs (the output does not depend on any of this): the text is flattened once, each
section's joined text being a slice of it. A parenthesis in which neither a label nor a role word
can match is dropped at once; for the others one look at the body (a normalise.Screen over every
rule read inside a line) says which rules can match in it or in any part of it, and the others are
not run. What a line, a group of names or a name gave is remembered for the rest of the document.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal, Optional

import regex

from pipeline.model import ParsedText, Responsibility, Section
from pipeline.prefilter import Screen, finditer, may_match, pattern_requirements, runnable
from pipeline.rules import Rule, RuleFile
from pipeline.stages.flatten import FlatText, OffsetMap, flatten
from pipeline.stages.sections import section_at  # noqa: F401  (the rule `section_id` follows)

_OPEN = "（("  # _depth_at counts these four characters
_CLOSE = "）)"
_TRIM = " \t\u3000、，,；;。：:"


class RoleWord(Rule):
    """A word that closes a group of names and says what they do."""

    role: Literal["lead", "participant", "duty", "with"]


class Label(Rule):
    """A label (`责任单位：`) opening a list; `role` is that of names no role word claims."""

    role: Literal["lead", "participant", "duty"]


class ResponsibilityRules(RuleFile):
    filename: ClassVar[str] = "responsibilities.yaml"
    required_groups: ClassVar[dict[str, tuple[str, ...]]] = {"level_prefix": ("prefix",)}

    bracket: Rule
    labels: list[Label]
    table_columns: list[Label] = []
    table_cell: Optional[Rule] = None
    other_label: Rule
    role_words: list[RoleWord]
    separators: Rule
    connective: Rule
    keep_whole: list[str] = []
    tail: Rule
    agency_name: Rule
    lead_first: list[Rule]
    level_prefix: Rule
    complete_names: list[Rule]

    @cached_property
    def line_screen(self) -> Screen:
        """Every rule read inside a line, as one Screen."""
        return Screen([*self.labels, self.other_label, *self.role_words, self.separators, self.connective,
                       self.tail, self.agency_name, *self.lead_first, self.level_prefix, *self.complete_names])

    @cached_property
    def opener_screen(self) -> Screen:
        """The labels and role words: a line holds one of them or is no line."""
        return Screen([*self.labels, *self.role_words])


@dataclass
class _Group:
    """Names closed by one role word (or by the end of a labelled segment)."""

    text: str
    kind: str  # lead | participant | duty | with
    rule_id: str  # the role word or label that gave the kind


@dataclass
class _Line:
    start: int  # offsets into parsed.text
    end: int
    raw: str  # as written, line breaks removed
    body: str  # what the names are read from (no outer parentheses)
    paragraph: bool  # the paragraph form (`牵头单位：A`), closed by the paragraph's end
    table: bool = False  # a row of a task table (its header gives the roles)


# ---------------------------------------------------------------------------------------------
# Which rules can match a line: one look at its body (normalise.Screen)
#
# Every function below that reads part of a line takes `ok`, the ids of the rules that may match
# the line's body (`_ok`); a rule outside it cannot match the body nor any part of it, so it is not
# run. `ok=None` means "not looked at": every rule is run.


def _ok(text: str, rules: ResponsibilityRules) -> frozenset:
    """The ids of the rules that may match `text` or any part of it. Most parentheses hold
    neither a label nor a role word: a first look for those alone settles them (empty set)."""
    if not _opens(text, rules):
        return frozenset()
    sc = rules.line_screen
    return sc.ids(sc.look(text))


def _opens(text: str, rules: ResponsibilityRules) -> bool:
    """Whether a label or a role word may match `text` (else it is no line)."""
    first = rules.opener_screen
    return first.any_possible(text) and bool(first.ids(first.look(text)))


def _may(rule: Rule, ok: Optional[frozenset]) -> bool:
    return ok is None or id(rule) in ok


# ---------------------------------------------------------------------------------------------
# Text → candidate lines


def text_to_joined(text: str, start: int, end: int) -> tuple[str, OffsetMap]:
    """`text[start:end]` without line breaks, and the offset in `text` of each kept character."""
    return flatten(text, start, end, "\n")


def sections_to_chunks(text: str, sections: list[Section]) -> list[tuple[int, int]]:
    """The preamble and each section's own text: a line never runs across a heading."""
    cuts = sorted({0, len(text), *(s.start for s in sections)})
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def chunk_to_bracket_lines(text: str, a: int, b: int, rules: ResponsibilityRules,
                           whole: Optional[FlatText] = None, openers_only: bool = False,
                           memo: Optional["_Memo"] = None) -> list[_Line]:
    """Balanced parentheses of `text[a:b]`, matched with its line breaks removed. `whole`: the
    text flattened once (FlatText), of which the chunk's flattened form is a slice.
    `openers_only`: leave out the parentheses that hold neither a label nor a role word (never
    a line: `line_to_roles` rejects them first)."""
    if whole is not None:
        lo, hi = whole.span(a, b)
        if not may_match(rules.bracket.pattern, whole.flat[lo:hi]):
            return []
        joined, offs = whole.part(lo, hi)
    else:
        joined, offs = text_to_joined(text, a, b)
        if not may_match(rules.bracket.pattern, joined):
            return []
    out = []
    for m in rules.bracket.rx.finditer(joined):
        raw = m.group()
        if openers_only:
            body = raw[1:-1]
            opens = memo.opens.get(body) if memo is not None else None
            if opens is None:
                opens = _opens(body, rules)
                if memo is not None:
                    memo.opens[body] = opens
            if not opens:
                continue
        s, e = m.span()
        out.append(_Line(offs[s], offs[e - 1] + 1, raw, raw[1:-1], paragraph=False))
    return out


def chunk_to_label_lines(text: str, a: int, b: int, taken: list[tuple[int, int]],
                         rules: ResponsibilityRules) -> list[_Line]:
    """Paragraphs (or sentences) that open with a label: `牵头单位：A`, `配合单位：B`.

    Matched per paragraph: the label form has no closing mark, so the paragraph end closes it.
    """
    out = []
    chunk = text[a:b]
    labels = runnable(rules.labels, chunk)  # each paragraph is a part of the chunk
    if not labels:
        return out  # no label anywhere in the chunk
    pos = a
    for para in chunk.split("\n"):
        # Only at the paragraph's start or right after a sentence (`。牵头单位：…`); a label
        # inside a parenthesis belongs to a bracket line.
        starts = [m.start() for lab in labels for m in finditer(lab, para)
                  if (m.start() == 0 or para[m.start() - 1] == "。") and not _depth_at(para, m.start())]
        if starts:
            s = pos + min(starts)
            if not any(ts <= s < te for ts, te in taken):
                raw = para[min(starts):].rstrip(_TRIM)
                out.append(_Line(s, s + len(raw), raw, raw, paragraph=True))
        pos += len(para) + 1
    return out


def chunk_to_table_rows(text: str, a: int, b: int, rules: ResponsibilityRules
                        ) -> list[tuple[_Line, list[tuple[str, Label]]]]:
    """Rows of a task table (`序号 | 重点任务 | 牵头单位 | 配合单位`) → (line, [(cell text, its
    column's rule)]) for the responsibility columns, in every row below a header with the same shape."""
    cut = rules.table_cell
    chunk = text[a:b]
    if cut is None or not cut.rx.search(chunk) or not runnable(rules.table_columns, chunk):
        return []  # no cell separator, or no column name anywhere
    out = []
    columns: Optional[dict[int, Label]] = None
    width = 0
    pos = a
    for para in chunk.split("\n"):
        cells = [c.strip() for c in cut.rx.split(para.strip(" |｜"))] if cut.rx.search(para) else ()
        if len(cells) < 2:
            columns = None  # the table ended
        else:
            header = {i: col for i, c in enumerate(cells) for col in rules.table_columns if col.rx.match(c)}
            if header:
                columns, width = header, len(cells)
            elif columns is not None and len(cells) <= width and not _RULE_ROW.match(para):
                got = [(cells[i], col) for i, col in columns.items() if i < len(cells) and cells[i]]
                if got:
                    raw = para.strip()
                    start = pos + para.index(raw[0])
                    out.append((_Line(start, start + len(raw), raw, raw, paragraph=True, table=True), got))
        pos += len(para) + 1
    return out


# A markdown table's rule row (`|---|:---:|`): no cells.
_RULE_ROW = regex.compile(r"^[\s|｜:：\-—－]*$")


def table_row_to_roles(cells: list[tuple[str, Label]], lead_first: Optional[Rule], rules: ResponsibilityRules,
                       ok: frozenset, memo: "_Memo") -> list[tuple[str, str, str]]:
    """A task table row's responsibility cells → [(name, role, rule_id)] (the header names the role)."""
    groups = [(names, _Group(cell, col.role, col.id))
              for cell, col in cells if (names := group_to_names(cell, rules, ok, memo))]
    return groups_to_roles(groups, lead_first) if groups else []


def _depth_at(s: str, i: int) -> int:
    """Open parentheses minus closed ones before `i` (never below 0)."""
    if i <= 0:
        return 0
    d = s.count("（", 0, i) + s.count("(", 0, i) - s.count("）", 0, i) - s.count(")", 0, i)
    return max(d, 0)


# ---------------------------------------------------------------------------------------------
# Body → groups → names


def body_to_segments(body: str, rules: ResponsibilityRules, ok: Optional[frozenset] = None
                     ) -> list[tuple[Optional[Label], str]]:
    """Cut a body at its labels: [(label or None, text)]. Text after an unknown label
    (`完成时限：`) and, in a labelled body, text before the first label hold no names."""
    hits: list[tuple[int, int, Optional[Label]]] = []
    for lab in rules.labels:
        if _may(lab, ok):
            hits += [(m.start(), m.end(), lab) for m in lab.rx.finditer(body) if not _depth_at(body, m.start())]
    if not hits:
        return [(None, body)]
    known = list(hits)
    run_other = _may(rules.other_label, ok) and not _covered(body, rules.other_label, known)
    for m in (rules.other_label.rx.finditer(body) if run_other else ()):
        # `other_label` matches the known labels too; keep only the unknown ones.
        if not _depth_at(body, m.start()) and not any(s < m.end() and m.start() < e for s, e, _ in known):
            hits.append((m.start(), m.end(), None))
    hits.sort(key=lambda h: h[0])
    ends = [h[0] for h in hits[1:]] + [len(body)]
    return [(lab, body[e:nxt]) for (s, e, lab), nxt in zip(hits, ends) if lab is not None]


def _covered(text: str, rule: Rule, spans: list) -> bool:
    """True when every match of `rule` in `text` would overlap one of `spans`: each match holds a
    character of some set the rule requires (pattern_requirements), and every occurrence of
    those characters in `text` lies inside a span (`…单位：` holds the only colon of the line)."""
    req = pattern_requirements(rule.pattern)
    if req is None:
        return False
    for alt in req:  # every alternative must be covered by one of its required sets
        for chars in alt:
            if all(any(s <= i < e for s, e, _ in spans)
                   for i, c in enumerate(text) if c in chars):
                break
        else:
            return False
    return True


def segment_to_groups(text: str, label: Optional[Label], rules: ResponsibilityRules,
                      ok: Optional[frozenset] = None) -> list[_Group]:
    """Cut a segment at its role words; each closes the names since the previous one. Names
    after the last role word take the role of the segment's label."""
    hits = []
    for rw in rules.role_words:
        if _may(rw, ok):
            hits += [(m.start(), m.end(), rw) for m in rw.rx.finditer(text) if not _depth_at(text, m.start())]
    # Leftmost, then longest: `按职责分工负责` wins over the `负责` inside it.
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    groups, pos = [], 0
    for s, e, rw in hits:
        if s < pos:
            continue
        groups.append(_Group(text[pos:s], rw.role, rw.id))
        pos = e
    rest = text[pos:]
    if rest.strip(_TRIM):
        groups.append(_Group(rest, label.role if label else "duty", label.id if label else "-"))
    return [g for g in groups if g.text.strip(_TRIM)]


def split_outside_parens(text: str, rx) -> list[str]:
    """Cut `text` at the matches of `rx` that stand outside parentheses."""
    if rx is None:
        return [text]
    parts, pos = [], 0
    for m in rx.finditer(text):
        if _depth_at(text, m.start()):
            continue
        parts.append(text[pos:m.start()])
        pos = m.end()
    parts.append(text[pos:])
    return parts


def name_to_and_parts(name: str, rules: ResponsibilityRules, ok: Optional[frozenset] = None) -> list[str]:
    """Cut at `和` only between two whole names, never inside a `keep_whole` name."""
    if not _may(rules.connective, ok):
        return [name]
    protected = None  # found only when there is a connective to check
    parts, pos = [], 0
    for m in finditer(rules.connective, name):
        if protected is None:
            protected = []
            for kw in rules.keep_whole:
                i = name.find(kw)
                while i >= 0:
                    protected.append((i, i + len(kw)))
                    i = name.find(kw, i + 1)
        if _depth_at(name, m.start()) or any(s <= m.start() < e for s, e in protected):
            continue
        parts.append(name[pos:m.start()])
        pos = m.end()
    parts.append(name[pos:])
    return parts


def name_to_nested(name: str, rules: ResponsibilityRules, ok: Optional[frozenset] = None) -> list[str]:
    """`各区政府（新区管委会、深汕特别合作区管委会）` → the three bodies; a parenthesis inside a name
    (`各县（市、区）政府`) or one that is not a list of bodies stays."""
    if not name or name[-1] not in _CLOSE:
        return [name]
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        depth += (name[i] in _CLOSE) - (name[i] in _OPEN)
        if depth == 0:
            break
    outer, inner = name[:i], name[i + 1:-1]
    pieces = [p.strip(_TRIM) for p in split_outside_parens(
        inner, rules.separators.rx if _may(rules.separators, ok) else None)]
    if outer and _may(rules.agency_name, ok) and all(rules.agency_name.rx.search(p) for p in [outer] + pieces):
        return [outer] + [p for p in pieces if p]
    return [name]


class _Memo:
    """Per-document memory of what a name or a group of names gave: the same names come back
    line after line in a document (市财政局, 各县（市、区）政府), and every answer below is a
    pure function of the string and the rules."""

    __slots__ = ("lines", "groups", "items", "agency", "naming", "opens", "ok")

    def __init__(self):
        self.items: dict[str, tuple[str, ...]] = {}  # one item of a list → its names
        self.opens: dict[str, bool] = {}  # body → _opens
        self.ok: dict[str, frozenset] = {}  # body → _ok
        self.lines: dict[tuple, Optional[list]] = {}  # (body, paragraph, lead_first id) → roles
        self.groups: dict[str, tuple[str, ...]] = {}  # group text → its names
        self.agency: dict[str, bool] = {}  # name → agency_name matches it
        self.naming: dict[str, tuple[bool, Optional[str]]] = {}  # name → (complete, level prefix)


def group_to_names(text: str, rules: ResponsibilityRules, ok: Optional[frozenset] = None,
                   memo: Optional[_Memo] = None) -> list[str]:
    if memo is not None:
        hit = memo.groups.get(text)
        if hit is not None:
            return list(hit)
    names: list[str] = []
    tail = rules.tail.rx if _may(rules.tail, ok) else None
    for item in split_outside_parens(text, rules.separators.rx if _may(rules.separators, ok) else None):
        got = memo.items.get(item) if memo is not None else None
        if got is None:
            got = _item_to_names(item, rules, ok, tail)
            if memo is not None:
                memo.items[item] = got
        names.extend(got)
    if memo is not None:
        memo.groups[text] = tuple(names)
    return names


def _item_to_names(item: str, rules: ResponsibilityRules, ok: Optional[frozenset], tail) -> tuple[str, ...]:
    """One item of a list (between separators) → its names."""
    names = []
    for part in name_to_and_parts(item.strip(_TRIM), rules, ok):
        for name in name_to_nested(part.strip(_TRIM), rules, ok):
            # The tail stands for unnamed bodies (`…等有关部门`): drop it, keep the name.
            name = name.strip(_TRIM)
            if tail is not None:
                name = tail.sub("", name)
            name = name.strip(_TRIM)
            if name:
                names.append(name)
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# Groups → roles; names → agencies


def groups_to_roles(groups: list[tuple[list[str], _Group]], lead_first: Optional[Rule]
                    ) -> list[tuple[str, str, str]]:
    """[(names, group)] → [(name, role, rule_id)] in line order."""
    kinds = {g.kind for _, g in groups}
    has_lead = bool(kinds & {"lead", "with"})
    if lead_first is not None and not has_lead and "participant" not in kinds:
        # The document said the first-listed unit leads, and this line says nothing else.
        names = [n for ns, _ in groups for n in ns]
        return [(n, "lead" if i == 0 else "participant", lead_first.id) for i, n in enumerate(names)]
    out = []
    seen_participant = False
    for ns, g in groups:
        kind = g.kind
        if kind in ("lead", "with"):
            role = "lead"
        elif kind == "participant":
            role, seen_participant = "participant", True
        elif has_lead:
            role = "participant"
        elif "participant" in kinds and not seen_participant:
            # `（A负责，B配合）`: whoever others assist is leading, though the word is 负责.
            role = "lead"
        else:
            role = "responsible"
        out += [(n, role, g.rule_id) for n in ns]
    return out


def names_to_agencies(names: list[str], rules: ResponsibilityRules, ok: Optional[frozenset] = None,
                      memo: Optional[_Memo] = None) -> list[str]:
    """Restore the prefix a list leaves out: a bare name takes the prefix of the last name before
    it in the line that had one; complete names are kept and pass nothing on. `ok`: `_ok` of a
    text holding every name (the line), or None."""
    out, prefix = [], ""
    complete = [r.rx.search for r in rules.complete_names if _may(r, ok)]
    level = rules.level_prefix.rx.match if _may(rules.level_prefix, ok) else None
    naming = memo.naming if memo is not None else {}
    for n in names:
        info = naming.get(n)
        if info is None:
            if any(search(n) for search in complete):
                info = (True, None)
            else:
                m = level(n) if level is not None else None
                info = (False, m.group("prefix") if m else None)
            naming[n] = info
        is_complete, own_prefix = info
        if is_complete:
            out.append(n)
        elif own_prefix is not None:
            prefix = own_prefix
            out.append(n)
        else:
            out.append(prefix + n)
    return out


def line_to_roles(line: _Line, lead_first: Optional[Rule], rules: ResponsibilityRules,
                  ok: Optional[frozenset] = None, memo: Optional[_Memo] = None
                  ) -> Optional[list[tuple[str, str, str]]]:
    """A candidate → [(name, role, rule_id)], or None if it is not a responsibility line.
    `ok`: `_ok(line.body)`, worked out here when not given."""
    body = line.body
    if ok is None:
        ok = _ok(body, rules)
    if not any(id(r) in ok for r in rules.labels) and not any(id(r) in ok for r in rules.role_words):
        return None  # neither a label nor a role word: a parenthesis in the text
    if memo is not None:  # a line read before in the document reads the same
        key = (body, line.paragraph, id(lead_first) if lead_first is not None else None)
        if key in memo.lines:
            hit = memo.lines[key]
            return None if hit is None else list(hit)
        roles = _line_to_roles(line, lead_first, rules, ok, memo)
        memo.lines[key] = None if roles is None else tuple(roles)
        return roles
    return _line_to_roles(line, lead_first, rules, ok, _Memo())


def _line_to_roles(line: _Line, lead_first: Optional[Rule], rules: ResponsibilityRules,
                   ok: frozenset, memo: "_Memo") -> Optional[list[tuple[str, str, str]]]:
    body = line.body
    for rule in rules.lead_first:
        if id(rule) in ok:
            body = rule.rx.sub("", body)  # the declaration is not a name
    segments = body_to_segments(body, rules, ok)
    labelled = any(role is not None for role, _ in segments)
    if not labelled:
        # No label: it must close with a role word, or it is just a parenthesis in the text.
        tail = body.rstrip(_TRIM)
        if not any(m.end() == len(tail)
                   for rw in rules.role_words if id(rw) in ok for m in rw.rx.finditer(tail)):
            return None
    groups = []
    search = rules.agency_name.rx.search if id(rules.agency_name) in ok else None

    def agency(n: str) -> bool:
        hit = memo.agency.get(n)
        if hit is None:
            hit = memo.agency[n] = search is not None and search(n) is not None
        return hit

    for label, text in segments:
        for g in segment_to_groups(text, label, rules, ok):
            names = group_to_names(g.text, rules, ok, memo)
            # A label inside a parenthesis is evidence enough; a bare parenthesis or a paragraph
            # that merely opens with `责任单位：` must also name only bodies.
            if (not labelled or line.paragraph) and not all(agency(n) for n in names):
                return None
            if names:
                groups.append((names, g))
    if not groups:
        return None
    return groups_to_roles(groups, lead_first)


def text_to_lead_first(text: str, rules: ResponsibilityRules, whole: Optional[FlatText] = None
                       ) -> Optional[tuple[int, Rule]]:
    """Offset and rule of the first declaration that the first-listed unit leads, if any."""
    joined, offs = (whole.flat, whole.offsets) if whole is not None else text_to_joined(text, 0, len(text))
    hits = [(m.start(), r) for r in rules.lead_first for m in finditer(r, joined)]
    if not hits:
        return None
    at, rule = min(hits, key=lambda h: h[0])
    return offs[at], rule


def _declared(decl: Optional[tuple[int, Rule]], line: _Line) -> Optional[Rule]:
    """The declaration rule if it comes before the line or inside it (`…，排在第一位的为牵头单位）`)."""
    return decl[1] if decl is not None and decl[0] < line.end else None


# ---------------------------------------------------------------------------------------------


def _follow_leads(accepted: list, text: str) -> None:
    """`牵头单位：A` then, on the next line, `责任单位：B`: one statement, in which B participates
    under A's lead, as in `（牵头单位：A；责任单位：B）`. (A `配合单位：` line says so itself.)"""
    for k in range(1, len(accepted)):
        (prev, prev_roles, _), (line, roles, ok) = accepted[k - 1], accepted[k]
        if (prev.paragraph and line.paragraph and not prev.table and not line.table
                and not text[prev.end:line.start].strip()
                and any(r == "lead" for _, r, _ in prev_roles) and all(r == "responsible" for _, r, _ in roles)):
            accepted[k] = (line, [(n, "participant", rid) for n, _, rid in roles], ok)


def sections_to_responsibilities(parsed: ParsedText, sections: list[Section],
                                 rules: ResponsibilityRules) -> list[Responsibility]:
    text = parsed.text
    whole = FlatText(text, "\n")  # every chunk's joined text is a slice of it
    decl = text_to_lead_first(text, rules, whole)
    memo = _Memo()
    sc = rules.line_screen
    starts = [s.start for s in sections]  # section_at, without rebuilding this list per line
    rows: list[Responsibility] = []
    for a, b in sections_to_chunks(text, sections):
        lines = chunk_to_bracket_lines(text, a, b, rules, whole, openers_only=True, memo=memo)
        accepted = []
        for line in lines:
            ok = memo.ok.get(line.body)
            if ok is None:
                ok = memo.ok[line.body] = _ok(line.body, rules)
            roles = line_to_roles(line, _declared(decl, line), rules, ok, memo)
            if roles:
                accepted.append((line, roles, ok))
        taken = [(ln.start, ln.end) for ln, _, _ in accepted]
        for line in chunk_to_label_lines(text, a, b, taken, rules):
            ok = _ok(line.body, rules)
            roles = line_to_roles(line, _declared(decl, line), rules, ok, memo)
            if roles:
                accepted.append((line, roles, ok))
        for line, cells in chunk_to_table_rows(text, a, b, rules):
            ok = sc.ids(sc.look(line.body))  # not _ok: a row holds no label nor role word, its header did
            roles = table_row_to_roles(cells, _declared(decl, line), rules, ok, memo)
            if roles:
                accepted.append((line, roles, ok))
        accepted.sort(key=lambda x: x[0].start)
        _follow_leads(accepted, text)
        for line, roles, ok in accepted:
            i = bisect_right(starts, line.start) - 1
            sec = sections[i] if i >= 0 else None
            agencies = names_to_agencies([n for n, _, _ in roles], rules, ok, memo)
            for pos, ((name, role, rid), agency) in enumerate(zip(roles, agencies)):
                rows.append(Responsibility(
                    section_id=sec.section_id if sec else None,
                    agency_raw=name,
                    agency=agency,
                    role=role,
                    line_raw=line.raw,
                    start=line.start,
                    end=line.end,
                    rule_id=rid,
                    position=pos,
                ))
    return rows
