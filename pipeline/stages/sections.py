"""Normalised text → the tree of numbered sections.

Invariants:
- A heading is a paragraph that starts with a marker of one of the numbering families in
  `config/sections.yaml`. Inline enumerations (`一是…`), dash bullets and colon-led paragraphs
  never match a family; text wrapped onto a new line by a page break does not start with a marker.
- Levels come from the families the document actually uses, in the order it opens them: a family
  seen for the first time becomes a child of the current section; a family already open closes
  everything below it and starts a sibling. So a document that starts at `（一）` has `（一）` at
  level 1, and a box (`专栏`) becomes a child of the section it stands in, its items its children.
  Annexes (`附件`) always return to the top level.
- A marker must continue its family's count (`（三）` after `（二）`, or after a parent change either
  `1` or the next number of a count that runs across parents); a marker that does not is body text.
- A drafting slip (`1、 总体情况` before `二、`) takes the family whose count it fills.
"""
from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import ClassVar, Literal, Optional

import cn2an

from pipeline.model import ParsedText, Section
from pipeline.prefilter import first_chars
from pipeline.rules import Rule, RuleFile


class Family(Rule):
    kind: Literal["numbered", "box", "annex"] = "numbered"
    rank: int


class SectionRules(RuleFile):
    filename: ClassVar[str] = "sections.yaml"
    required_groups: ClassVar[dict[str, tuple[str, ...]]] = {"families": ("label", "num")}
    families: list[Family]
    heading_terminators: str = "。"
    box_closes_rank: Optional[int] = None

    @cached_property
    def families_by_char(self) -> Optional[dict[str, list["Family"]]]:
        """For each character a heading can start with, the families (in order) whose matches can
        start with it (prefilter.first_chars); None when some family's are not known: then every
        paragraph tries every family."""
        firsts = [first_chars(f.pattern) for f in self.families]
        if any(fc is None for fc in firsts):
            return None
        by_char: dict[str, list[Family]] = {}
        for fam, fc in zip(self.families, firsts):
            for c in fc:
                by_char.setdefault(c, []).append(fam)
        return by_char


@dataclass
class _Candidate:
    pos: int  # paragraph index
    start: int
    end: int  # end of paragraph
    family: Family
    num: Optional[int]
    label: str
    rest: str  # paragraph text after the marker


@lru_cache(maxsize=1024)
def label_number(num: str) -> Optional[int]:
    """The number a label's `num` group writes: digits (full-width too), ① … ⑳ (NFKC turns them
    into digits), or Chinese numerals."""
    num = unicodedata.normalize("NFKC", num).strip()
    if not num:
        return None
    if num.isdigit():
        return int(num)
    try:
        return int(cn2an.cn2an(num, "smart"))
    except (ValueError, KeyError):
        return None


def path_part(label: str) -> str:
    """`一、` → `一`, `1.` → `1`, `专栏 2` → `专栏2`; parentheses kept as written."""
    s = "".join(label.split())
    return s.rstrip("、.．：:")


def _find_candidates(parsed: ParsedText, rules: SectionRules) -> list[_Candidate]:
    text = parsed.text
    starts = parsed.para_starts
    by_char, families = rules.families_by_char, rules.families
    n_text = len(text)
    n_paras = len(starts)
    out = []
    for i, st in enumerate(starts):
        if by_char is not None:
            # A paragraph whose first character starts no family's match is body text: most are.
            fams = by_char.get(text[st]) if st < n_text else None
            if fams is None:
                continue
        else:
            fams = families
        en = starts[i + 1] - 1 if i + 1 < n_paras else n_text
        para = text[st:en]
        for fam in fams:
            m = fam.rx.match(para)
            if m:
                rest = para[m.end("label"):]
                out.append(_Candidate(i, st, en, fam, label_number(m.group("num")),
                                      m.group("label").strip(), rest))
                break
    return out


def _fix_slips(cands: list[_Candidate], rules: SectionRules) -> None:
    """Give a marker the higher-ranked family whose count it fills (`1、` between nothing and `二、`)."""
    numbered = [f for f in rules.families if f.kind == "numbered"]
    # Indices of the candidates of each family (kept up to date as slips change family), so the
    # nearest one before or after a candidate is a bisection, not a scan of the whole list.
    where: dict[str, list[int]] = {}
    for i, c in enumerate(cands):
        where.setdefault(c.family.id, []).append(i)
    for i, c in enumerate(cands):
        if c.family.kind != "numbered" or c.num is None:
            continue
        for fam in numbered:
            if fam.rank >= c.family.rank:
                continue
            idx = where.get(fam.id, [])
            k = bisect_left(idx, i)
            prev = cands[idx[k - 1]] if k else None
            k2 = bisect_right(idx, i)
            nxt = cands[idx[k2]] if k2 < len(idx) else None
            if nxt is None or nxt.num != c.num + 1:
                continue
            if (prev.num if prev else 0) != c.num - 1:
                continue
            lo = idx[k - 1] if k else -1
            own_idx = where[c.family.id]
            j = bisect_left(own_idx, i) - 1  # the last of its own family before it
            if j >= 0 and own_idx[j] > lo and cands[own_idx[j]].num == c.num - 1:
                continue  # it continues its own count: not a slip
            own_idx.remove(i)
            insort(where.setdefault(fam.id, []), i)
            c.family = fam
            break


def _split_heading(rest: str, terminators: str) -> tuple[str, int]:
    """Heading words after the marker and the length of `rest` they take (terminator included)."""
    lead = len(rest) - len(rest.lstrip(" \t\u3000：:"))
    body = rest[lead:]
    cut = min((body.find(t) for t in terminators if t in body), default=-1)
    if cut < 0:
        return body.strip(), len(rest)
    return body[:cut].strip(), lead + cut + 1


def _title_below(text: str, end: int, cands: list[_Candidate], terminators: str) -> str:
    """The heading of a label alone on its line (`附件` ⏎ `重点项目清单`): the next line, unless
    that line is a heading itself."""
    if end + 1 >= len(text) or any(c.start == end + 1 for c in cands):
        return ""
    stop = text.find("\n", end + 1)
    return _split_heading(text[end + 1:stop if stop >= 0 else len(text)], terminators)[0]


def _continued(stack: list, fam: Family, num: Optional[int], resumes: dict) -> Optional[int]:
    """Where a marker of a family already open in `stack` (or closed by an open box) goes: the
    index of the entry whose count it continues (innermost first: a box's own list, then the list
    around the box), or of the open box whose closed items it continues (the box ends there); the
    end of the stack when it starts a box's own list (`专栏1` then `1．` `2．` `3．`); None when it
    continues no count (body text)."""
    if fam.kind != "numbered" or num is None:
        return next((k for k, (f, _, _) in enumerate(stack) if f is fam), None)
    for step in (1, 2):  # the next number first (a box's 1. 2. then the list's 4.), then a skip
        for k in range(len(stack) - 1, -1, -1):
            f, sec, prev = stack[k]
            if sec.section_id in resumes:
                f, prev = resumes[sec.section_id]
            if f is fam and (prev is None or prev < num <= prev + step):
                return k
    own = [k for k, (f, _, _) in enumerate(stack) if f is fam]
    if num == 1 and any(sec.kind == "box" for _, sec, _ in stack[(own[-1] + 1 if own else 0):]):
        return len(stack)
    return None


def text_to_sections(parsed: ParsedText, rules: SectionRules, doc_id: str = "") -> list[Section]:
    cands = _find_candidates(parsed, rules)
    _fix_slips(cands, rules)

    sections: list[Section] = []
    stack: list[tuple[Family, Section, Optional[int]]] = []  # (family, section, its number)
    last_num: dict[str, int] = {}  # per family, across parents
    resumes: dict[str, tuple[Family, Optional[int]]] = {}  # box section id → the items it closed (family, number)
    for c in cands:
        fam = c.family
        closed = None
        # the families open in the stack, and those of the items an open box closed
        open_fams = [f for f, _, _ in stack] + [resumes[sec.section_id][0] for _, sec, _ in stack
                                                 if sec.section_id in resumes]
        if fam.kind == "annex":
            keep = 0
        elif any(f is fam for f in open_fams):
            keep = _continued(stack, fam, c.num, resumes)
            if keep is None:
                continue  # breaks its family's count: body text, not a heading
        else:
            if fam.kind == "numbered" and c.num not in (1, last_num.get(fam.id, 0) + 1):
                continue
            keep = len(stack)
            if fam.kind == "box" and rules.box_closes_rank is not None:
                holders = [k for k, (f, _, _) in enumerate(stack)
                           if f.kind == "numbered" and f.rank < rules.box_closes_rank]
                if holders and holders[-1] + 1 < len(stack):
                    keep = holders[-1] + 1
                    closed = (stack[keep][0], stack[keep][2])  # the items' list may go on after the box
        del stack[keep:]
        parent = stack[-1][1] if stack else None
        heading, used = _split_heading(c.rest, rules.heading_terminators)
        if not heading and fam.kind == "annex":
            heading = _title_below(parsed.text, c.end, cands, rules.heading_terminators)
        ordinal = len(sections) + 1
        part = path_part(c.label)
        sec = Section(
            section_id=f"{doc_id}:{ordinal:04d}" if doc_id else f"{ordinal:04d}",
            parent_id=parent.section_id if parent else None,
            path=f"{parent.path}/{part}" if parent else part,
            label=c.label,
            family=fam.id,
            kind=fam.kind,
            level=len(stack) + 1,
            heading=heading,
            start=c.start,
            body_start=min(c.end, c.end - len(c.rest) + used),
            end=len(parsed.text),
            own_end=len(parsed.text),
            page=parsed.page_at(c.start),
            ordinal=ordinal,
        )
        if c.num is not None:
            last_num[fam.id] = c.num
        sections.append(sec)
        stack.append((fam, sec, c.num))
        if closed is not None:
            resumes[sec.section_id] = closed

    # Close each section at the next heading (own text) and at the next heading of its level or above.
    open_secs: list[Section] = []  # not closed yet; levels strictly increase from bottom to top
    for i, s in enumerate(sections):
        if i + 1 < len(sections):
            s.own_end = sections[i + 1].start - 1
        while open_secs and open_secs[-1].level >= s.level:
            open_secs.pop().end = s.start - 1
        open_secs.append(s)
    for s in open_secs:
        s.end = len(parsed.text)
    return sections


def section_at(sections: list[Section], offset: int) -> Optional[Section]:
    """The innermost section whose own text holds `offset` (None in the preamble)."""
    from bisect import bisect_right

    i = bisect_right([s.start for s in sections], offset) - 1
    return sections[i] if i >= 0 else None
