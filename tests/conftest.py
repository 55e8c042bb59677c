"""Shared fixtures: the project's rules, and the seed drafts with their gold annotations.

The seeds and gold live in `../shared/` beside the repository (CI has it there too); the copies of
the seeds in `raw/` are the sample drafts the README's run command ingests.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from pipeline.model import Para
from pipeline.stages.extract import load_rules
from pipeline.stages.normalise import paras_to_text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GOLD_DIR = SHARED / "gold"
SEEDS_DIR = SHARED / "seeds" if (SHARED / "seeds").is_dir() else ROOT / "raw"
STEMS = sorted(p.stem for p in GOLD_DIR.glob("*.json")) if GOLD_DIR.is_dir() else []

needs_gold = pytest.mark.skipif(not STEMS, reason=f"gold annotations not found under {GOLD_DIR}")


def fold(s) -> str:
    """The scorer's comparison form: NFKC, no whitespace, no markup."""
    s = unicodedata.normalize("NFKC", str(s or ""))
    s = re.sub(r"\[bookmark:[^\]]*\]", "", s).replace("**", "")
    return re.sub(r"\s+", "", s)


def fold_path(p) -> str:
    return "/".join(x for x in (re.sub(r"[、.．:：]$", "", fold(x)) for x in str(p or "").split("/")) if x)


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
