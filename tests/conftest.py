"""Shared fixtures: the project's rules, the seed drafts with their gold annotations, and the
per-document checks of the scored sets (tests/test_genre.py, tests/test_real.py).

Everything is in the repository (tests/README.md): the seeds are the sample drafts in `raw/`
(each as .txt, .docx and .pdf), their gold is `tests/gold/`, the scorer is
`pipeline/evaluation/score.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluation.score import fold, fold_path  # noqa: F401  (the scorer's comparison form)
from pipeline.evaluation.sets import SCORED_TABLES
from pipeline.model import Para
from pipeline.stages.extract import load_rules
from pipeline.stages.normalise import paras_to_text

ROOT = Path(__file__).resolve().parents[1]
GOLD_DIR = ROOT / "tests" / "gold"
SEEDS_DIR = ROOT / "raw"
STEMS = sorted(p.stem for p in GOLD_DIR.glob("*.json"))
SEED_FORMATS = ("txt", "docx", "pdf")
# The seed files by name: raw/ is also the drop folder of `make run`, so anything else in it is
# not a seed.
SEED_FILES = [SEEDS_DIR / f"{stem}.{ext}" for stem in STEMS for ext in SEED_FORMATS]


@pytest.fixture(scope="session")
def rules():
    return load_rules(ROOT / "config")


def gold(stem: str) -> dict:
    return json.loads((GOLD_DIR / f"{stem}.json").read_text(encoding="utf-8"))


def seed_text(stem: str):
    raw = (SEEDS_DIR / f"{stem}.txt").read_text(encoding="utf-8-sig")
    return paras_to_text([Para(line) for line in raw.split("\n")], "text", "test")


DATA_TABLES = ("documents", "sections", "responsibilities", "quantities", "terms", "errors")


def table_contents(out: Path, names=DATA_TABLES) -> dict:
    """Each table as a sorted DataFrame without `run_id`: what two runs are compared on."""
    import pandas as pd

    got = {}
    for name in names:
        df = pd.read_parquet(out / f"{name}.parquet").drop(columns=["run_id"], errors="ignore")
        df = df.map(lambda v: tuple(v) if hasattr(v, "tolist") and not isinstance(v, str) else v)
        got[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return got


def assert_same_tables(a: dict, b: dict) -> None:
    import pandas as pd

    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


# --- scored sets: one test per document and check ---------------------------------------------

CHECKS = SCORED_TABLES + ("title", "doc_number")


def document_cases(stems, known_misses: dict) -> list:
    """One pytest.param per (document, check); a known miss is a strict xfail naming its reason,
    so a fix shows up as an XPASS failure and the entry has to go."""
    unknown = set(known_misses) - {(stem, check) for stem in stems for check in CHECKS}
    assert not unknown, f"known misses for no document or check: {sorted(unknown)}"
    return [pytest.param(stem, check, id=f"{stem}-{check}",
                         marks=[pytest.mark.xfail(strict=True, reason=known_misses[stem, check])]
                         if (stem, check) in known_misses else [])
            for stem in stems for check in CHECKS]


def check_document(report: dict, stem: str, check: str, floors: dict) -> None:
    """The scorer's row for `stem` meets `floors[table]` (F1), or has the title / 发文字号 right;
    the message lists what was missed and what was extra."""
    row = report["documents"][stem]
    why = f"not read: {row['error'][0]}: {row['error'][1]}" if row.get("error") else ""
    if check in SCORED_TABLES:
        cell = row[check]
        detail = [f"missed {k}" for k in cell.get("missed", [])] + [f"extra  {k}" for k in cell.get("extra", [])]
        assert cell["f1"] >= floors[check], "\n".join(
            [f"{stem} {check}: F1 {cell['f1']} < {floors[check]} (gold {cell['gold']}, pred {cell['pred']}) {why}"]
            + detail[:40] + ([f"... {len(detail) - 40} more"] if len(detail) > 40 else []))
    elif check == "title":
        assert row["title_ok"], f"{stem}: title wrong {why}"
    else:
        gold_number, got = row["doc_number"]
        assert row["doc_number_ok"], f"{stem}: 发文字号 {got!r}, gold {gold_number!r} {why}"
