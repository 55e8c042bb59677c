"""Compare the DOCX and PDF readers against the TXT of the same seed document.

    .venv/bin/python tests/compare_readers.py [SEED_DIR]

The seeds NNN_*.{txt,docx,pdf} are one document in three formats (the docx/pdf were made from
the txt by an office suite), so after removing whitespace and the txt's markup (`**`,
`[bookmark: …]`) all three must hold the same characters. Per seed and format it reports:
- headings: txt lines that start with a section marker and also start a paragraph;
- duty lines: `（责任单位：…）` / `（…按职责分工负责）` found whole inside one paragraph;
- diff: characters inserted / deleted relative to the txt (difflib on the joined strings);
- seconds spent reading.
"""
from __future__ import annotations

import difflib
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.readers import ReaderOptions, read_paras  # noqa: E402

SEEDS = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "raw"  # the seeds: the sample drafts

_MARKUP = re.compile(r"\[bookmark:[^\]]*\]|\*\*|\s+")
_HEADING = re.compile(
    r"^(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[）)]|\d{1,2}(?:\.(?!\d)|、|．)"
    r"|[（(]\d{1,2}[）)]|[①-⑳]|专栏|附件|第[一二三四五六七八九十\d]+[章节条])"
)
_OPEN, _CLOSE = "（(", "）)"


def norm(text: str) -> str:
    return _MARKUP.sub("", text)


def duty_lines(text: str) -> list[str]:
    """Bracketed responsibility clauses, with balanced (possibly nested) brackets."""
    found = []
    for m in re.finditer(r"[（(]责任单位|按?职责分工负责[）)]|负责[）)]", text):
        if m.group().startswith(("（", "(")):
            depth, i = 0, m.start()
            for j in range(i, len(text)):
                depth += text[j] in _OPEN
                depth -= text[j] in _CLOSE
                if depth == 0:
                    found.append(text[i : j + 1])
                    break
        else:
            end = m.end() - 1
            depth = 0
            for j in range(end, -1, -1):
                depth += text[j] in _CLOSE
                depth -= text[j] in _OPEN
                if depth == 0:
                    clause = text[j : end + 1]
                    if "责任单位" not in clause:  # already taken from its opening bracket
                        found.append(clause)
                    break
    return found


def compare(seed_txt: Path) -> list[str]:
    out = []
    txt_paras = read_paras(seed_txt)
    txt_lines = [norm(p.text) for p in txt_paras]
    headings = [ln for ln in txt_lines if _HEADING.match(ln)]
    duties = [d for ln in txt_lines for d in duty_lines(ln)]
    reference = "".join(txt_lines)
    variants = [
        ("docx", seed_txt.with_suffix(".docx"), ReaderOptions()),
        ("pdf/pdfplumber", seed_txt.with_suffix(".pdf"), ReaderOptions(pdf_backend="pdfplumber")),
        ("pdf/pypdfium2", seed_txt.with_suffix(".pdf"), ReaderOptions(pdf_backend="pypdfium2")),
    ]
    out.append(f"== {seed_txt.stem}: txt {len(txt_paras)} lines, {len(headings)} headings, {len(duties)} duty lines")
    for name, path, options in variants:
        if not path.exists():
            out.append(f"  {name:15s} missing")
            continue
        t0 = time.perf_counter()
        paras = read_paras(path, options)
        secs = time.perf_counter() - t0
        normed = [norm(p.text) for p in paras]
        # A heading counts when some paragraph starts with it (a txt line wrapped at a page
        # break may be continued by the PDF reader, so the paragraph can be longer).
        missing_heads = [h for h in headings if not any(p.startswith(h[:30]) for p in normed)]
        broken_duties = [d for d in duties if not any(norm(d) in p for p in normed)]
        joined = "".join(normed)
        ops = difflib.SequenceMatcher(None, reference, joined, autojunk=False).get_opcodes()
        inserted = sum(j2 - j1 for tag, _, _, j1, j2 in ops if tag in ("insert", "replace"))
        deleted = sum(i2 - i1 for tag, i1, i2, _, _ in ops if tag in ("delete", "replace"))
        pages = {p.page for p in paras}
        out.append(
            f"  {name:15s} paras={len(paras):3d} pages={len(pages - {None}) or '-':>2} "
            f"headings {len(headings) - len(missing_heads)}/{len(headings)}  "
            f"duty lines {len(duties) - len(broken_duties)}/{len(duties)}  "
            f"+{inserted}/-{deleted} chars  {secs:.2f}s"
        )
        for h in missing_heads:
            out.append(f"      heading not at a paragraph start: {h[:40]}")
        for d in broken_duties:
            out.append(f"      duty line split: {d[:60]}")
        for tag, i1, i2, j1, j2 in ops:
            if tag != "equal":
                ctx = reference[max(0, i1 - 10) : i1]
                out.append(f"      {tag}: txt[{reference[i1:i2][:40]!r}] → {name}[{joined[j1:j2][:40]!r}] after …{ctx}")
    return out


def main() -> int:
    seeds = sorted(SEEDS.glob("*.txt"))
    if not seeds:
        print(f"no seeds in {SEEDS}")
        return 1
    totals = {}
    for seed in seeds:
        lines = compare(seed)
        print("\n".join(lines))
        for line in lines:
            m = re.match(r"\s+(\S+)\s.*?([\d.]+)s$", line)
            if m and "/" in line:
                totals[m.group(1)] = totals.get(m.group(1), 0.0) + float(m.group(2))
    print("total seconds:", {k: round(v, 2) for k, v in totals.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
