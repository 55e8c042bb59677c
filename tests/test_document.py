"""document_rows: the rows of the tables asked for, the same whichever other tables are asked."""
from __future__ import annotations

import pytest
from conftest import SEEDS_DIR, seed_text

from pipeline.stages.extract import ALL_TABLES, TABLE_RULES, Source, document_rows

STEMS = sorted(p.stem for p in SEEDS_DIR.glob("*.txt"))
ROW_TABLES = [t for t in ALL_TABLES if t != "terms"]  # keywords are found apart (pipeline/runtime/job.py)


@pytest.mark.parametrize("stem", STEMS)
def test_each_table_alone_has_the_rows_of_a_full_extraction(stem, rules):
    parsed = seed_text(stem)
    src = Source(f"{stem}.txt", f"{stem}.txt", "ab" * 32, len(parsed.text), "text")
    full = document_rows(src, parsed, rules).tables
    assert set(full) == set(ROW_TABLES) and all(full[t] for t in ROW_TABLES)
    for table in TABLE_RULES:
        alone = document_rows(src, parsed, rules, (table,)).tables
        # Only what was asked; keywords need the sections' rows.
        assert set(alone) == ({"sections"} if table == "terms" else {table})
        for name, rows in alone.items():
            assert rows == full[name], (table, name)
