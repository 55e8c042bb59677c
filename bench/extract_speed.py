"""Extraction speed, before vs after, side by side in one run; and a check that the rows are identical.

    .venv/bin/python bench/extract_speed.py [--docs N] [--mutants M] [--rounds R] [--baseline-ref REF]

The baseline is the current tree with the extraction modules (sections, normalise, document,
extract/*) taken from git `REF` (read with `git show`, nothing in the work tree changes), copied
under bench/out/; both use the current config/ (a rule edit changes rules_version in every row).
Both trees run `document_rows` on the same inputs in alternating subprocesses (R rounds, best of
each kept): the 5 seed texts (as tests/conftest.py builds them), the sample PDFs and DOCX as the
readers parse them, N synthetic drafts (bench/corpus.py) and a 300-page PDF (`long`). The rows of
both must be equal, and so must those of M `mutants` (randomly edited drafts: rule words and
numerals inserted, characters deleted, paragraphs wrapped or joined, digits made full-width),
which are compared but not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
OWNED = ["pipeline/stages/quantities.py", "pipeline/stages/responsibilities.py",
         "pipeline/stages/metadata.py", "pipeline/stages/sections.py", "pipeline/stages/normalise.py",
         "pipeline/stages/extract.py"]
# The commit before the second round of extraction speed work (the first started at cb8c4e9).
BASELINE_REF = "6a32dfa"


def baseline_tree(ref: str) -> Path:
    """A copy of the current `pipeline/` with the owned modules as they were at `ref`."""
    dest = OUT / "baseline" / ref
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ROOT / "pipeline", dest / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for rel in OWNED:
        src = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=ROOT, capture_output=True, check=True).stdout
        (dest / rel).write_bytes(src)
    return dest


# Characters the mutants insert: what the rules look at (numerals, units, brackets, quotes,
# delimiters, role words, full-width forms, stray line breaks and the private-use blank).
_MUTANT_ALPHABET = list("0123456789０１２５一二两三五十百千万亿年月日号元家个项%％.．,，。；;：:、（）()《》“”〔〕"
                        "-—～至到以上下左右的和及与超过不少于最高约近每第大级\r \u3000\ue000牵头负责配合单位")
_MUTANT_WORDS = ["（责任单位：市科学技术局）", "牵头单位：", "按职责分工负责", "会同", "到2025年，", "截至2021年底",
                 "不超过", "以上", "百亿级", "1∶1配套", "“十四五”", "5G", "第3批", "有效期5年", "翻一番", "（一）",
                 "1.", "专栏1 ", "附件", "百分之三十", "排在第一位的部门为牵头部门，下同", "等有关部门"]


def mutate(text: str, rng) -> list[str]:
    """`text` with random edits (characters and rule words inserted or deleted, paragraphs
    joined or wrapped, digits made full-width), as paragraphs: equivalence off the beaten track."""
    chars = list(text)
    for _ in range(rng.randint(5, 60)):
        i = rng.randrange(len(chars) + 1)
        r = rng.random()
        if r < 0.35:
            chars.insert(i, rng.choice(_MUTANT_ALPHABET))
        elif r < 0.5:
            chars[i:i] = list(rng.choice(_MUTANT_WORDS))
        elif r < 0.7 and i < len(chars):
            del chars[i:i + rng.randint(1, 4)]
        elif r < 0.85:
            chars.insert(i, "\n")  # a wrap
        elif i < len(chars) and chars[i] == "\n":
            del chars[i]  # two paragraphs joined
    out = "".join(chars)
    if rng.random() < 0.3:
        out = out.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789" if rng.random() < 0.5})
    return out.split("\n")


def build_inputs(n_docs: int, n_mutants: int = 0) -> Path:
    """Pickled ParsedText fields of every input document (built once with the current tree)."""
    path = OUT / (f"extract_inputs_{n_docs}.pkl" if not n_mutants else f"extract_inputs_{n_docs}_m{n_mutants}.pkl")
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT))
    from corpus import build_long_pdf, build_text_corpus

    from pipeline.model import Para
    from pipeline.readers import ReaderOptions
    from pipeline.stages.normalise import paras_to_text
    from pipeline.stages.read import file_to_text

    docs = []
    for p in sorted((ROOT / "raw").glob("*.txt")):
        raw = p.read_text(encoding="utf-8-sig")
        docs.append(("seed", p.name, paras_to_text([Para(x) for x in raw.split("\n")], "text", "test")))
    for p in sorted((ROOT / "raw").glob("*.pdf")):
        docs.append(("pdf", p.name, file_to_text(p, "pdf", ReaderOptions(pdf_backend="pypdfium2"))))
    for p in sorted((ROOT / "raw").glob("*.docx")):
        docs.append(("docx", p.name, file_to_text(p, "docx", ReaderOptions())))
    for p in build_text_corpus(OUT / "corpus" / "text", n_docs):
        docs.append(("synthetic", p.name, file_to_text(p, "text", ReaderOptions())))
    long_pdf = build_long_pdf(OUT / "corpus", 300)
    docs.append(("long", long_pdf.name, file_to_text(long_pdf, "pdf", ReaderOptions(pdf_backend="pypdfium2"))))
    import random
    bases = [d for k, _, d in docs if k in ("seed", "synthetic", "pdf", "docx")]
    for i in range(n_mutants):
        rng = random.Random(f"mutant:{i}")
        base = rng.choice(bases)
        paras = [Para(x, page=(k // 20 + 1) if rng.random() < 0.5 else None)
                 for k, x in enumerate(mutate(base.text, rng))]
        docs.append(("mutant", f"m{i:05d}", paras_to_text(paras, "text", "test")))
    with open(path, "wb") as fh:
        pickle.dump([(k, n, d.__dict__) for k, n, d in docs], fh)
    return path


def worker(inputs: Path, rows_out: Path, reps: int) -> None:
    """Runs inside the tree on sys.path: time document_rows and each stage; dump the rows."""
    from pipeline.model import ParsedText
    from pipeline.stages.extract import Source, document_rows, load_rules
    from pipeline.stages.metadata import text_to_metadata
    from pipeline.stages.quantities import sections_to_quantities
    from pipeline.stages.responsibilities import sections_to_responsibilities
    from pipeline.stages.sections import text_to_sections

    rules = load_rules(ROOT / "config")
    docs = [(k, n, ParsedText(**d)) for k, n, d in pickle.loads(inputs.read_bytes())]
    srcs = [Source(n, n, f"{i:064x}", len(d.text), "text") for i, (_, n, d) in enumerate(docs)]
    rows = [document_rows(s, d, rules).tables for s, (_, _, d) in zip(srcs, docs)]
    with open(rows_out, "wb") as fh:
        pickle.dump(rows, fh)

    def timed(fn, subset) -> float:
        best = float("inf")
        for _ in range(reps):  # CPU time: the machine is shared, wall time is noisy
            t = time.process_time()
            for item in subset:
                fn(item)
            best = min(best, time.process_time() - t)
        return best

    res = {}
    for kind in ("seed", "synthetic", "long", "all"):  # mutants: compared, not timed
        sub = [(s, d) for s, (k, _, d) in zip(srcs, docs) if (kind == "all" and k != "mutant") or k == kind]
        res[kind] = {"n": len(sub), "bytes": sum(len(d.text.encode()) for _, d in sub),
                     "seconds": timed(lambda x: document_rows(x[0], x[1], rules), sub)}
    # per stage, on the seeds
    seeds = [d for k, _, d in docs if k == "seed"]
    pre = [(d, text_to_sections(d, rules["sections.yaml"], doc_id="x")) for d in seeds]
    pre = [(d, s, text_to_metadata(d, s, rules["metadata.yaml"])) for d, s in pre]
    res["stages"] = {
        "sections": timed(lambda d: text_to_sections(d, rules["sections.yaml"], doc_id="x"), seeds) / len(seeds),
        "metadata": timed(lambda x: text_to_metadata(x[0], x[1], rules["metadata.yaml"]), pre) / len(seeds),
        "responsibilities": timed(lambda x: sections_to_responsibilities(x[0], x[1], rules["responsibilities.yaml"]),
                                  pre) / len(seeds),
        "quantities": timed(lambda x: sections_to_quantities(x[0], x[1], x[2], rules["quantities.yaml"]),
                            pre) / len(seeds),
    }
    # The regex floor: every scanning pattern of quantities.yaml (exclusions, year masks, figures,
    # years: the ~30 patterns run over all text), then every pattern of every rule file, each run
    # once over each whole synthetic document; what the patterns alone cost, with no logic around.
    synth = [d.text for k, _, d in docs if k == "synthetic"]
    q = rules["quantities.yaml"]
    scanning = [*q.exclusions, *q.year_masks, *q.figures, *q.years]
    every = [r for f in rules.files.values() for r in f.all_rules()]
    nbytes = sum(len(t.encode()) for t in synth)
    for name, rs in (("regex_floor_scanning", scanning), ("regex_floor_all", every)):
        res[name] = {"rules": len(rs), "bytes": nbytes, "n": len(synth),
                     "seconds": timed(lambda t: [None for r in rs for _ in r.rx.finditer(t)], synth)}
    print(json.dumps(res))


def run_tree(tree: Path, inputs: Path, rows_out: Path, reps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    p = subprocess.run([sys.executable, str(Path(__file__)), "--worker", str(inputs), str(rows_out), str(reps)],
                       env=env, capture_output=True, text=True, cwd=HERE)
    if p.returncode:
        raise RuntimeError(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def compare(inputs: Path, rounds: int = 2, reps: int = 3, ref: str = BASELINE_REF) -> dict:
    """Time baseline and current trees alternately; check their rows are equal."""
    base = baseline_tree(ref)
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for name, tree in (("before", base), ("after", ROOT)):
            r = run_tree(tree, inputs, OUT / f"rows_{name}.pkl", reps)
            if name not in best:
                best[name] = r
            else:
                for k in ("seed", "synthetic", "long", "all"):
                    best[name][k]["seconds"] = min(best[name][k]["seconds"], r[k]["seconds"])
                for k, v in r["stages"].items():
                    best[name]["stages"][k] = min(best[name]["stages"][k], v)
    a = pickle.loads((OUT / "rows_before.pkl").read_bytes())
    b = pickle.loads((OUT / "rows_after.pkl").read_bytes())
    diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    best["identical"] = len(a) == len(b) and not diffs
    best["n_differing_docs"] = len(diffs) + abs(len(a) - len(b))
    return best


def report(res: dict) -> str:
    lines = ["| extraction (document_rows, 1 core, CPU time) | before | after | speed-up |", "|---|---:|---:|---:|"]
    for k in ("seed", "synthetic", "long", "all"):
        b, a = res["before"][k], res["after"][k]
        if not a["n"]:
            continue
        mb, ma = b["seconds"] / b["n"] * 1e3, a["seconds"] / a["n"] * 1e3
        lines.append(f"| {k} ({a['n']} docs, avg {a['bytes'] / a['n'] / 1024:.1f} KB) ms/doc | {mb:.2f} | {ma:.2f} | {mb / ma:.1f}× |")
        lines.append(f"| {k} MB/s (docs/s) | {b['bytes'] / b['seconds'] / 1e6:.2f} ({b['n'] / b['seconds']:.0f}) "
                     f"| {a['bytes'] / a['seconds'] / 1e6:.2f} ({a['n'] / a['seconds']:.0f}) | |")
    for k, v in res["after"]["stages"].items():
        bv = res["before"]["stages"][k]
        lines.append(f"| seeds: {k} ms/doc | {bv * 1e3:.2f} | {v * 1e3:.2f} | {bv / v:.1f}× |")
    for k, label in (("regex_floor_scanning", "the quantity patterns that scan all text"),
                     ("regex_floor_all", "every pattern of every rule file")):
        r = res["after"].get(k)
        if r and r["n"]:
            lines.append(f"| regex floor: {r['rules']} patterns ({label}), each once over each whole synthetic "
                         f"draft | | {r['bytes'] / r['seconds'] / 1e6:.1f} MB/s ({r['seconds'] / r['n'] * 1e3:.2f} ms/doc) | |")
    lines.append(f"| rows identical before/after | | {'yes' if res['identical'] else 'NO (%d docs differ)' % res['n_differing_docs']} | |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=300, help="synthetic drafts besides the samples")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mutants", type=int, default=0, help="randomly edited drafts, compared only")
    ap.add_argument("--baseline-ref", default=BASELINE_REF)
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs(a.docs, a.mutants)
    res = compare(inputs, a.rounds, a.reps, a.baseline_ref)
    print(report(res))
    if not res["identical"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
