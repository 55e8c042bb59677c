"""Normalised text and sections → document metadata (title, 发文字号, issuers, date, draft, period).

The title is the plan's own title, not the notice that may wrap it: a notice `…关于印发X的通知`
yields X only when the document does not also print the plan's title on its own line (as a
ministry's letter followed by the plan does). Titles are looked for before the first section
heading, where a title broken over two or three lines is re-joined, and then in the last lines of
the text (web copies put `相关文件 | 标题` at the end).
"""
from __future__ import annotations

import datetime
from typing import ClassVar, Optional

import regex

from pipeline.model import DocumentMeta, ParsedText, Section
from pipeline.rules import Rule, RuleFile

_HAN_GAP = regex.compile(r"(?<=\p{Han})\s+(?=[\p{Han}（(])|(?<=[）)])\s+(?=\p{Han})")
_HAN_ONLY = regex.compile(r"^[\p{Han}\s]{2,40}$")
_DRAFT_SUFFIX = regex.compile(r"\s*[（(][^（）()]{0,8}(?:稿|草案)[）)]\s*$")
_SPACES = regex.compile(r"\s+")
HEAD_LIMIT = 60  # paragraphs looked at before the first heading
TAIL_LINES = 4


class MetadataRules(RuleFile):
    filename: ClassVar[str] = "metadata.yaml"
    required_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "notice_wrapper": ("inner",), "doc_number": ("number",), "period": ("start", "end"),
        "date": ("y", "m", "d"), "issuer": ("name",), "issuer_label": ("name",)}
    title_kind: Rule
    notice_wrapper: Rule
    not_title: Rule
    draft_marker: Rule
    doc_number: Rule
    period: Rule
    date: Rule
    issuer: Rule
    issuer_label: Rule


def _paragraphs(parsed: ParsedText) -> list[str]:
    return parsed.text.split("\n") if parsed.text else []


def clean_title(s: str) -> str:
    s = s.split("|")[-1] if "|" in s else s
    s = s.strip()
    if s.startswith("《") and s.endswith("》"):
        s = s[1:-1].strip()
    s = _DRAFT_SUFFIX.sub("", s)
    return _HAN_GAP.sub("", s).strip()


def _period_line(line: str, rules: MetadataRules) -> bool:
    """A line that holds the plan period alone, `（2023—2025年）`: the end of a title above it."""
    m = rules.period.rx.search(line)
    return bool(m) and not (line[:m.start()] + line[m.end():]).strip(" \t\u3000（()）")


def _title_candidates(paras: list[str], idx: list[int], rules: MetadataRules):
    """(title, is_notice_inner) for every paragraph window that reads like a title."""
    for i in idx:
        windows = [(paras[i], i)]
        # A title broken over lines: fragments of Han characters only, then the line that ends it.
        j = i
        while _HAN_ONLY.match(paras[j]) and j + 1 < len(paras) and len(windows) < 3:
            j += 1
            windows.append((windows[-1][0] + paras[j], j))
        for w, last in windows:
            t = clean_title(w)
            m = rules.notice_wrapper.rx.search(t)
            if m:
                yield clean_title(m.group("inner")), True
                break
            if 6 <= len(t) <= 80 and rules.title_kind.rx.search(t) and not rules.not_title.rx.search(t):
                if last + 1 < len(paras) and not rules.period.rx.search(t) and _period_line(paras[last + 1], rules):
                    t += paras[last + 1].strip()  # the period on the line below belongs to the title
                yield t, False
                break


def find_title(paras: list[str], head_end: int, rules: MetadataRules) -> Optional[str]:
    head = list(range(min(head_end, HEAD_LIMIT)))
    tail = list(range(max(len(paras) - TAIL_LINES, head_end), len(paras)))
    inner = None
    for region in (head, tail):
        for t, is_inner in _title_candidates(paras, region, rules):
            if not is_inner:
                return t
            inner = inner or t
    if inner:
        return inner
    return clean_title(paras[0]) if paras else None


def _real_date(m) -> bool:
    try:
        datetime.date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return False
    return True


def text_to_metadata(parsed: ParsedText, sections: list[Section], rules: MetadataRules) -> DocumentMeta:
    paras = _paragraphs(parsed)
    starts = parsed.para_starts
    first_heading = sections[0].start if sections else len(parsed.text)
    head_end = next((i for i, st in enumerate(starts) if st >= first_heading), len(paras))
    head_text = "\n".join(paras[:min(head_end, HEAD_LIMIT)])
    tail_text = "\n".join(paras[-TAIL_LINES:])

    meta = DocumentMeta()
    meta.title = find_title(paras, head_end, rules)
    meta.is_draft = bool(rules.draft_marker.rx.search(head_text[:2000]))

    m = next(filter(None, map(rules.doc_number.rx.match, paras[:min(head_end, HEAD_LIMIT)])), None)
    meta.doc_number = _SPACES.sub("", m.group("number")) if m else None

    if meta.title:
        m = rules.period.rx.search(meta.title)
        if m:
            meta.period_start, meta.period_end = int(m.group("start")), int(m.group("end"))

    # A date that does not exist (2月30日, a drafting slip) is not a date: skip it rather than fail.
    dates = [x for x in rules.date.rx.finditer(head_text) if _real_date(x)] or \
        [x for x in rules.date.rx.finditer(tail_text) if _real_date(x)]
    if dates:
        d = next((x for x in dates if "印发" in x.string[x.end():x.end() + 4]), dates[-1])
        meta.date = f"{int(d['y']):04d}-{int(d['m']):02d}-{int(d['d']):02d}"

    issuers: list[str] = []
    for p in paras[:min(head_end, HEAD_LIMIT)] + paras[-TAIL_LINES:]:
        m = rules.issuer_label.rx.match(p)
        names = [m.group("name")] if m else []
        if not names:
            for part in p.split():
                mm = rules.issuer.rx.match(part) if part != "文件" else None
                if mm:
                    names.append(mm.group("name"))
        issuers += [n for n in names if n not in issuers]
    meta.issuers = issuers
    return meta
