"""The evaluation material is what it claims to be (tests/README.md), and `policy-pipeline score`
prints it.

- the scorer is byte for byte the one the annotators use, so scores here and elsewhere compare;
- the real documents are the files MANIFEST.tsv lists, by sha256;
- each seed is in raw/ in the three formats, with its gold.
"""
from __future__ import annotations

import csv
import hashlib
import io
from contextlib import redirect_stdout

from conftest import GOLD_DIR, ROOT, SEED_FILES, SEED_FORMATS, STEMS

from flows.cli import main
from pipeline.evaluation.sets import eval_sets

# sha256 of the annotators' scorer as copied (tests/README.md): change only with a new copy of it.
SCORER_SHA256 = "d169ebc82c41c00d02cf2bd6dece24d5b5368ed2617c67d5ef90167f0bb1b768"


def test_scorer_is_the_annotators_one_byte_for_byte():
    path = ROOT / "pipeline" / "evaluation" / "score.py"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SCORER_SHA256


def test_real_documents_are_the_files_the_manifest_lists():
    real = ROOT / "tests" / "real"
    with open(real / "MANIFEST.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in (real / "input").iterdir())
    for r in rows:
        data = (real / "input" / r["file"]).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (r["sha256"], int(r["bytes"])), r["file"]


def test_each_seed_is_in_raw_in_three_formats_with_its_gold():
    assert len(STEMS) == 5 and all(p.is_file() for p in SEED_FILES)
    assert sorted(p.name for p in (ROOT / "raw").iterdir()) == sorted(f"{s}.{e}" for s in STEMS for e in SEED_FORMATS)
    assert (GOLD_DIR / "GUIDE.md").is_file()


def _score(tmp_path, *args) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        status = main(["score", "--cache", str(tmp_path / "cache"), *args])
    return status, buf.getvalue()


def test_score_command_prints_each_document_and_the_overall_line(monkeypatch, tmp_path):
    monkeypatch.setenv("POLICY_PIPELINE_HOME", str(ROOT))
    status, out = _score(tmp_path, "genre", "seeds")
    assert status == 0
    for stem in eval_sets(ROOT)["genre"].stems() + STEMS:
        assert f"  {stem} " in out
    assert out.count("  overall ") == 4  # genre, then the seeds as .txt, .docx and .pdf
    assert "seeds .pdf:" in out and "titles 18/18" in out and "missed" not in out


def test_score_command_lists_the_misses_with_v(monkeypatch, tmp_path):
    monkeypatch.setenv("POLICY_PIPELINE_HOME", str(ROOT))
    status, out = _score(tmp_path, "genre", "-v")
    assert status == 0
    assert "missed quantities: ['target', 2025, '<=', 2.0, None, '比例']" in out  # k01's 车桩比


def test_score_command_refuses_an_unknown_set(monkeypatch, capsys):
    monkeypatch.setenv("POLICY_PIPELINE_HOME", str(ROOT))
    assert main(["score", "nope"]) == 2
    assert "no set nope" in capsys.readouterr().err
