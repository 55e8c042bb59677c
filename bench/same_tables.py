"""Are two code trees' output tables the same? The check behind "no behaviour change".

    .venv/bin/python bench/same_tables.py build OUT [--tree DIR]   # ingest every corpus with the code in DIR
    .venv/bin/python bench/same_tables.py diff OUT_A OUT_B         # compare two such builds, table by table

`build` runs `policy-pipeline ingest` (the code of `--tree`, default this checkout, on
PYTHONPATH) on each corpus: the sample drafts in raw/, the genre drafts, the real documents and
a synthetic corpus from bench/corpus.py (300 text drafts, 20 PDFs, 20 DOCX), each with a fresh
cache, so every file is read and extracted by that tree. `diff` compares the Parquet tables of two
builds row for row, ignoring `run_id`, run timings and the columns that name the code
(`parser_version`, `rules_version`, which hash the rule files), and prints each difference.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LINEAGE = {"run_id", "rules_version", "parser_version"}
TABLES = ("documents", "sections", "responsibilities", "quantities", "terms", "errors")


def corpora(work: Path) -> dict[str, Path]:
    from bench.corpus import build_docx_corpus, build_pdf_corpus, build_text_corpus

    synth = work / "synthetic"
    if not synth.exists():
        build_text_corpus(synth, 300)
        build_pdf_corpus(synth, 20)
        build_docx_corpus(synth, 20)
    return {"seeds": ROOT / "raw", "genre": ROOT / "tests" / "genre" / "raw", "real": ROOT / "tests" / "real" / "input",
            "synthetic": synth}


def build(out: Path, tree: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for name, raw in corpora(out.parent / ".same-tables-corpus").items():
        dest = out / name
        shutil.rmtree(dest, ignore_errors=True)
        cache = out / f".cache-{name}"
        shutil.rmtree(cache, ignore_errors=True)
        cmd = [sys.executable, "-m", "flows.cli", "ingest", "--raw", str(raw), "--out", str(dest), "--cache", str(cache),
               "--config", str(tree / "config")]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)


def _frame(path: Path):
    import pandas as pd

    df = pd.read_parquet(path)
    df = df.drop(columns=[c for c in df.columns if c in LINEAGE])
    df = df.map(lambda v: tuple(v) if hasattr(v, "tolist") and not isinstance(v, str) else v)
    # Compared as plain strings (object dtype): empty Arrow-backed columns cannot be merged.
    return df.astype(str).astype(object).sort_values(list(df.columns)).reset_index(drop=True)


def diff(a: Path, b: Path) -> int:
    import pandas as pd

    bad = 0
    for corpus in sorted(p.name for p in a.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for table in TABLES:
            pa_, pb = a / corpus / f"{table}.parquet", b / corpus / f"{table}.parquet"
            if not pb.exists():
                print(f"{corpus}/{table}: missing in {b}")
                bad += 1
                continue
            fa, fb = _frame(pa_), _frame(pb)
            if list(fa.columns) != list(fb.columns):
                print(f"{corpus}/{table}: columns differ: {list(fa.columns)} vs {list(fb.columns)}")
                bad += 1
                continue
            m = fa.merge(fb, how="outer", indicator=True)
            only = m[m["_merge"] != "both"]
            status = "same" if only.empty and len(fa) == len(fb) else f"{len(only)} rows differ"
            print(f"{corpus}/{table}: {len(fa)} vs {len(fb)} rows, {status}")
            if not only.empty:
                bad += 1
                with pd.option_context("display.width", 200, "display.max_colwidth", 60):
                    print(only.head(10).to_string())
    print("identical" if not bad else f"{bad} tables differ")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out", type=Path)
    b.add_argument("--tree", type=Path, default=ROOT)
    d = sub.add_parser("diff")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        build(args.out.resolve(), args.tree.resolve())
        return 0
    return diff(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
