"""Benchmark corpora built from the sample drafts in raw/ (written under bench/out/, git-ignored).

- text drafts: distinct, realistic documents made by recombining the top-level sections of the
  seed `.txt` drafts under another seed's preamble, renumbering the headings, and perturbing
  place names, years (shifted consistently) and figures (scaled per document);
- PDFs: re-combinations of the sample PDFs' pages (pypdf), each a distinct page selection;
- DOCX: the sample DOCX files with their figures perturbed in `word/document.xml`;
- one long PDF: the sample PDFs' pages repeated up to N pages.

Every generator is deterministic for a given seed, so a corpus is only rebuilt when missing.
"""
from __future__ import annotations

import hashlib
import io
import random
import re
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "raw"

CITIES = ["广州", "佛山", "东莞", "珠海", "惠州", "中山", "江门", "肇庆", "汕头", "韶关", "茂名",
          "阳江", "清远", "揭阳", "梅州", "河源", "潮州", "云浮", "汕尾", "湛江", "深圳"]
CN_NUM = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四", "十五"]
_TOP = re.compile(r"^\s*[一二三四五六七八九十]{1,3}、")
_MARKER = re.compile(r"^\s*(?:[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十0-9]{1,3}[)）]|[0-9]{1,2}[.．、]|专栏|附件|[①-⑳])")
_NUM = re.compile(r"(?<![0-9.〔\[])([0-9]+(?:\.[0-9]+)?)(?![0-9])")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_YEAR = re.compile(r"(?<![0-9])(20[12][0-9])(?![0-9])")


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8-sig") for p in sorted(RAW.glob("*.txt"))]


def split_seed(text: str) -> tuple[list[str], list[list[str]]]:
    """(preamble lines, top-level blocks as lists of lines, heading first)."""
    pre: list[str] = []
    blocks: list[list[str]] = []
    for line in text.split("\n"):
        if _TOP.match(line):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        else:
            pre.append(line)
    return pre, blocks


def _perturb_numbers(s: str, factor: float) -> str:
    def sub(m: re.Match) -> str:
        v = m.group(1)
        if m.string[m.end():m.end() + 1] in ("月", "日", "号", "年", "时", "："):
            return v  # dates, times: keep
        if len(v) == 4 and v[:2] in ("19", "20") and "." not in v:
            return v  # a year: shifted separately
        if "." in v:
            d = len(v.split(".")[1])
            return f"{float(v) * factor:.{d}f}"
        if m.string[m.end():m.end() + 1] in ("%", "％"):
            return str(max(1, min(99, round(int(v) * factor))))
        n = int(v)
        if n <= 12:  # small counts, ordinals, months: keep
            return v
        return str(max(1, round(n * factor)))
    return _NUM.sub(sub, s)


def _shift_years(s: str, delta: int) -> str:
    return _YEAR.sub(lambda m: str(int(m.group(1)) + delta) if 2015 <= int(m.group(1)) <= 2030 else m.group(1), s)


def _localise(s: str, city: str) -> str:
    return s.replace("湛江", city).replace("深圳", city)


def make_text_doc(i: int, seeds: list[tuple[list[str], list[list[str]]]], seed: int = 0) -> str:
    """Document `i` of the synthetic text corpus (deterministic)."""
    rng = random.Random(f"{seed}:{i}")
    pre, own = seeds[rng.randrange(len(seeds))]
    pool = [b for _, bl in seeds for b in bl]
    target = rng.choice([6000, 8000, 12000, 17000, 17000, 20000, 24000, 30000])  # bytes
    blocks = list(own[:1]) if own else []  # the base's first section (总体要求 / 总体情况)
    size = sum(len("\n".join(b).encode()) for b in blocks) + len("\n".join(pre).encode())
    while size < target and len(blocks) < len(CN_NUM):
        b = rng.choice(pool)
        if any(b is x for x in blocks) and rng.random() < 0.8:
            continue
        blocks.append(b)
        size += len("\n".join(b).encode())
    city = rng.choice(CITIES)
    delta = rng.choice([0, 0, 1, 2, 5])
    factor = rng.uniform(0.4, 2.5)
    lines = []
    for k, line in enumerate(pre):
        lines.append(line)
        if k == 0 and line.strip():
            lines.append(f"{city}府办〔{2021 + delta}〕{i + 1}号")
    for n, b in enumerate(blocks):
        head = _TOP.sub(f"{CN_NUM[n]}、", b[0], count=1)
        lines.append(head)
        for line in b[1:]:
            if line.strip() and not _MARKER.match(line) and rng.random() < 0.08:
                continue  # drop an occasional body paragraph
            lines.append(line)
    out = []
    for line in lines:
        line = _localise(_shift_years(_perturb_numbers(line, factor), delta), city)
        out.append(line)
    return "\n".join(out) + "\n"


def build_text_corpus(dest: Path, n: int, seed: int = 0) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    seeds = [split_seed(t) for t in seed_texts()]
    paths = []
    for i in range(n):
        p = dest / f"t{i:05d}.txt"
        if not p.exists():
            p.write_text(make_text_doc(i, seeds, seed), encoding="utf-8")
        paths.append(p)
    return paths


def _sample_pdf_pages():
    from pypdf import PdfReader

    readers = [PdfReader(str(p)) for p in sorted(RAW.glob("*.pdf"))]
    return readers, [(r, k) for r in readers for k in range(len(r.pages))]


def build_pdf_corpus(dest: Path, n: int, seed: int = 0, min_pages: int = 2, max_pages: int = 8) -> list[Path]:
    """`n` PDFs, each a distinct selection of the sample pages (in document order of a random start)."""
    from pypdf import PdfWriter

    dest.mkdir(parents=True, exist_ok=True)
    paths = [dest / f"p{i:04d}.pdf" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    readers, pages = _sample_pdf_pages()
    rng = random.Random(f"pdf:{seed}")
    seen = set()
    for i, p in enumerate(paths):
        while True:
            # a run of consecutive pages of one draft, then pages of another: reads like a draft
            k = rng.randint(min_pages, max_pages)
            sel = []
            while len(sel) < k:
                r = rng.randrange(len(readers))
                a = rng.randrange(len(readers[r].pages))
                b = min(len(readers[r].pages), a + rng.randint(1, 4))
                sel += [(r, j) for j in range(a, b)]
            sel = tuple(sel[:k])
            if sel not in seen:
                seen.add(sel)
                break
        if p.exists():
            continue
        w = PdfWriter()
        for r, j in sel:
            w.add_page(readers[r].pages[j])
        w.add_metadata({"/Title": f"bench {i}"})
        with open(p, "wb") as fh:
            w.write(fh)
    return paths


def build_long_pdf(dest: Path, n_pages: int = 300) -> Path:
    from pypdf import PdfWriter

    p = dest / f"long_{n_pages}.pdf"
    if p.exists():
        return p
    dest.mkdir(parents=True, exist_ok=True)
    readers, pages = _sample_pdf_pages()
    w = PdfWriter()
    for k in range(n_pages):
        r, j = pages[k % len(pages)]
        w.add_page(r.pages[j])
    with open(p, "wb") as fh:
        w.write(fh)
    return p


_WT = re.compile(r"(<w:t(?:\s[^>]*)?>)([^<]*)(</w:t>)")


def build_docx_corpus(dest: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` DOCX files: the samples with figures scaled, place names and years changed (distinct)."""
    dest.mkdir(parents=True, exist_ok=True)
    samples = sorted(RAW.glob("*.docx"))
    paths = []
    seen: set[bytes] = set()
    for i in range(n):
        p = dest / f"d{i:04d}.docx"
        paths.append(p)
        if p.exists():
            seen.add(hashlib.sha256(p.read_bytes()).digest())
            continue
        rng = random.Random(f"docx:{seed}:{i}")
        src = samples[i % len(samples)]
        for k in range(1000):  # figures scaled, place names and years changed: distinct text
            factor = rng.uniform(1.3, 3.0) + k * 0.37
            city, delta = CITIES[(i + k) % len(CITIES)], (i // len(CITIES) + k) % 6
            data = _docx_variant(src, lambda t: _localise(_shift_years(
                # a run holding only a number (Word splits `25` from `日`) is left alone: no 9月60日
                _perturb_numbers(t, factor) if _HAN.search(t) else t, delta), city))
            digest = hashlib.sha256(data).digest()
            if digest not in seen:
                break
        else:
            raise RuntimeError(f"no distinct variant of {src.name}")
        seen.add(digest)
        p.write_bytes(data)
    return paths


def _docx_variant(src: Path, change) -> bytes:
    """`src` with `change` applied to every text run of word/document.xml."""
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "word/document.xml":
                xml = data.decode("utf-8")
                xml = _WT.sub(lambda m: m.group(1) + change(m.group(2)) + m.group(3), xml)
                data = xml.encode("utf-8")
            zout.writestr(item, data)
    return buf.getvalue()
