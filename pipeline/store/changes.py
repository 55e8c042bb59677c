"""What a re-extraction changed: old rows vs new rows of the same documents, per table.

Rows are matched by a key that names the thing a row is about, not its position in the table:

- documents: the document; sections: the section path; responsibilities: the line's offset and the
  agency's position in it; quantities: the figure's offset.

A key present only in the new rows is `added`, only in the old rows `removed`, in both with other
values `changed` (lineage columns — run_id, rules_version — are ignored). A removed and an added
row of the same document whose text spans overlap are one `changed` row: a rule that now takes the
comparator word into a figure (`500亿元` → `接近500亿元`) changed that figure, it did not replace it. The result is the
`changes` table and a short printed summary with a few examples per table, so an analyst can see
what a rule edit did without diffing files by hand.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

KEYS: dict[str, tuple[str, ...]] = {
    "documents": ("doc_id",),
    "sections": ("doc_id", "path"),
    "responsibilities": ("doc_id", "start", "position"),
    "quantities": ("doc_id", "start"),
}
IGNORED = {"run_id", "rules_version"}
SHOWN = {
    "documents": ("title", "doc_number", "is_draft", "period_end"),
    "sections": ("path", "heading", "level"),
    "responsibilities": ("agency_raw", "role"),
    "quantities": ("raw", "kind", "year", "comparator", "value", "unit"),
}


def _content(table: pa.Table, doc_ids: pa.Array) -> pa.Table:
    """The given documents' rows without lineage columns, in table order."""
    if not table.num_rows:
        return table.drop_columns([c for c in IGNORED if c in table.column_names])
    table = table.filter(pc.is_in(table["doc_id"], value_set=doc_ids))
    return table.drop_columns([c for c in IGNORED if c in table.column_names])


def _doc_slices(table: pa.Table) -> dict[str, tuple[int, int]]:
    """doc_id → (offset, length): tables keep each document's rows together."""
    out: dict[str, tuple[int, int]] = {}
    ids = table["doc_id"].to_pylist()
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            out[ids[start]] = (start, i - start)
            start = i
    return out


def changed_documents(old: pa.Table, new: pa.Table) -> set[str]:
    """Documents whose rows differ at all, compared slice by slice in Arrow (no Python rows)."""
    a, b = _doc_slices(old), _doc_slices(new)
    changed = set(a.keys() ^ b.keys())
    for doc in a.keys() & b.keys():
        if a[doc][1] != b[doc][1] or not old.slice(*a[doc]).equals(new.slice(*b[doc])):
            changed.add(doc)
    return changed


def _jsonable(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in IGNORED}, ensure_ascii=False,
                      default=str, sort_keys=True)


def diff_tables(old: dict[str, pa.Table], new: dict[str, pa.Table], doc_ids: Iterable[str]) -> list[dict]:
    """One change row per added, removed or changed row of the given documents.

    Documents whose rows are identical (most of them, after a typical rule edit) are skipped in
    Arrow (the whole table at once when both are in the same document order); only the others are
    compared row by row.
    """
    ids = pa.array(sorted(doc_ids), pa.string())
    out: list[dict] = []
    for name, key_cols in KEYS.items():
        if name not in old:  # a table the run left as it was
            continue
        o, n = _content(old[name], ids), _content(new[name], ids)
        if o.num_rows == n.num_rows and o.equals(n):  # the usual case, in one comparison
            continue
        docs = pa.array(sorted(changed_documents(o, n)), pa.string())
        if not len(docs):
            continue
        before = {tuple(r[k] for k in key_cols): r for r in o.filter(pc.is_in(o["doc_id"], value_set=docs)).to_pylist()}
        after = {tuple(r[k] for k in key_cols): r for r in n.filter(pc.is_in(n["doc_id"], value_set=docs)).to_pylist()}
        pairs = [(k, before.get(k), after.get(k)) for k in before.keys() | after.keys()]
        if "start" in key_cols:
            pairs = _pair_overlapping(pairs)
        for key, a, b in sorted(pairs, key=lambda p: tuple(map(str, p[0]))):
            if a is not None and b is not None:
                if _jsonable(a) == _jsonable(b):
                    continue
                change = "changed"
            else:
                change = "added" if a is None else "removed"
            out.append({
                "table": name, "doc_id": key[0], "change": change,
                "key": "/".join(map(str, key[1:])) or key[0],
                "before": _jsonable(a) if a else None, "after": _jsonable(b) if b else None,
            })
    return out


def _pair_overlapping(pairs: list[tuple]) -> list[tuple]:
    """Join a removed and an added row of one document whose [start, end) spans overlap."""
    whole = [p for p in pairs if p[1] is not None and p[2] is not None]
    removed = [p for p in pairs if p[2] is None]
    added = [p for p in pairs if p[1] is None]
    used: set[int] = set()
    for key, a, _ in removed:
        match = next((i for i, (_, _, b) in enumerate(added) if i not in used
                      and b["doc_id"] == a["doc_id"] and b.get("position") == a.get("position")
                      and b["start"] < a["end"] and a["start"] < b["end"]), None)
        if match is None:
            whole.append((key, a, None))
        else:
            used.add(match)
            whole.append((key, a, added[match][2]))
    whole += [p for i, p in enumerate(added) if i not in used]
    return whole


def _brief(table: str, row_json: str) -> str:
    row = json.loads(row_json)
    return " ".join(f"{row.get(c)}" for c in SHOWN[table] if row.get(c) is not None)


class ChangeLog:
    """Running totals of change rows, for the printed summary: counts per table, the documents
    most changed and a few examples per table, without keeping every change row."""

    def __init__(self, examples: int = 3):
        self.examples = examples
        self.counts: dict[str, Counter] = {}
        self.shown: dict[str, list[tuple[str, str]]] = {}  # table → [(text, doc_id)]
        self.per_doc: Counter = Counter()
        self.n = 0

    def add(self, changes: Iterable[dict]) -> None:
        for c in changes:
            table = c["table"]
            self.n += 1
            self.counts.setdefault(table, Counter())[c["change"]] += 1
            self.per_doc[c["doc_id"]] += 1
            shown = self.shown.setdefault(table, [])
            if len(shown) < self.examples:
                if c["change"] == "changed":
                    text = f"~ {_brief(table, c['before'])}  →  {_brief(table, c['after'])}"
                elif c["change"] == "added":
                    text = f"+ {_brief(table, c['after'])}"
                else:
                    text = f"- {_brief(table, c['before'])}"
                if all(text != t for t, _ in shown):
                    shown.append((text, c["doc_id"]))

    def text(self, names: dict[str, str]) -> str:
        """A short text; `names` gives a document's source path by doc_id."""
        if not self.n:
            return "changes: none (the rule edit changed no rows)"
        lines = ["changes after re-extraction:"]
        for table in sorted(self.counts, key=lambda t: list(KEYS).index(t) if t in KEYS else len(KEYS)):
            cnt = self.counts[table]
            lines.append(f"  {table}: " + ", ".join(f"{cnt[k]} {k}" for k in ("added", "removed", "changed") if cnt[k]))
            lines += [f"    {text}   ({names.get(doc, doc)})" for text, doc in self.shown[table]]
        lines.append("  by document: " + "; ".join(
            f"{names.get(d, d)} {n}" for d, n in self.per_doc.most_common(5)))
        return "\n".join(lines)


def summarise(changes: list[dict], names: dict[str, str], examples: int = 3) -> str:
    """A short text: counts per table, the documents most changed, a few examples."""
    log = ChangeLog(examples)
    log.add(changes)
    return log.text(names)
