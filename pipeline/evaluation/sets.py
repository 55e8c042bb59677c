"""The evaluation sets, extracted in-process as a worker would, and scored by `score.py`.

    files ─ sniff ─ process_job (reader → normalise → document_rows) ─ to_arrow ─ OUT/*.parquet
    OUT + gold/*.json ─ score.py ─ P/R/F1 per document and table, title
                      └ 发文字号 (documents.doc_number against the gold's doc_number: score.py does not read it)

Three sets, under the project folder (`pipeline.config.project_dir`):

- `seeds`: the five sample drafts in `raw/`, each as .txt, .docx and .pdf, against `tests/gold/`,
  scored once per format;
- `genre`: `tests/genre/raw/` (drafts written in styles the seeds lack) against `tests/genre/gold/`;
- `real`: `tests/real/input/` (published documents, byte for byte as found) against `tests/real/gold/`.

Only files whose stem has a gold file are read. A file the pipeline refuses (an `.html` page:
`unsupported_format`) has no rows and scores 0; its reason is kept beside the score. Keywords
(`terms`) and the per-file time and memory limits are left out: the scores need neither.
`policy-pipeline score` and the tests (`tests/test_genre.py`, `tests/test_real.py`, the seed tests)
all go through `extract_to_dir` and `score_dir` here.
"""
from __future__ import annotations

import io
import json
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import pyarrow.parquet as pq

from pipeline.errors import PipelineError
from pipeline.evaluation import score as scorer
from pipeline.readers import ReaderError, ReaderOptions, sniff
from pipeline.rules import RuleSet
from pipeline.runtime.job import Job, WorkContext, process_job
from pipeline.runtime.scan import sha256_file
from pipeline.stages.extract import Source
from pipeline.store.tables import to_arrow

SCORED_TABLES = ("sections", "responsibilities", "quantities")
TABLES = ("documents",) + SCORED_TABLES


@dataclass(frozen=True)
class EvalSet:
    name: str
    input_dir: Path
    gold_dir: Path
    exts: tuple[Optional[str], ...] = (None,)  # score each extension apart (the seeds), or all at once

    def stems(self) -> list[str]:
        return sorted(p.stem for p in self.gold_dir.glob("*.json"))

    def files(self) -> list[Path]:
        """The input files that have gold, in name order."""
        stems = set(self.stems())
        return sorted(p for p in self.input_dir.iterdir()
                      if p.is_file() and not p.name.startswith(".") and p.stem in stems)


def eval_sets(project: Optional[Path] = None) -> dict[str, EvalSet]:
    if project is None:
        from pipeline.config import project_dir

        project = project_dir()
    project = Path(project)
    tests = project / "tests"
    return {
        "seeds": EvalSet("seeds", project / "raw", tests / "gold", ("txt", "docx", "pdf")),
        "genre": EvalSet("genre", tests / "genre" / "raw", tests / "genre" / "gold"),
        "real": EvalSet("real", tests / "real" / "input", tests / "real" / "gold"),
    }


def extract_to_dir(paths: Iterable[Path], out_dir: Path, rules: RuleSet,
                   options: ReaderOptions = ReaderOptions(), cache_dir: Optional[Path] = None) -> dict[str, PipelineError]:
    """The files' rows in documents / sections / responsibilities / quantities, written as
    `out_dir/<table>.parquet`, as an ingest run extracts them (`process_job`, without the worker
    limits); the files that failed, by name, with the error that a run would write to `errors`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list] = {name: [] for name in TABLES}
    failed: dict[str, PipelineError] = {}
    with tempfile.TemporaryDirectory(prefix="eval-cache-") as tmp:
        ctx = WorkContext(rules=rules, options=options, cache_dir=Path(cache_dir or tmp),
                          config_dir=rules.config_dir, terms_per_section=0)
        for path in paths:
            path = Path(path)
            try:
                fmt = sniff(path)
            except ReaderError as e:
                failed[path.name] = PipelineError(e.reason, e.message, stage="sniff")
                continue
            src = Source(path=path.name, name=path.name, sha256=sha256_file(path), size=path.stat().st_size,
                         format=fmt)
            try:
                doc = process_job(Job(src, str(path), TABLES), ctx)
            except PipelineError as e:
                failed[path.name] = e
                continue
            for name in TABLES:
                rows[name] += doc.tables.get(name, [])
    for name, r in rows.items():
        pq.write_table(to_arrow(name, r), out_dir / f"{name}.parquet")
    return failed


def score_dir(out_dir: Path, gold_dir: Path, ext: Optional[str] = None, verbose: bool = False) -> dict:
    """score.py's JSON report on the tables in `out_dir` (`--ext` when given, the misses with
    `verbose`), with each document's 发文字号 checked too: `doc_number_ok`, `doc_number` (gold, got),
    and `overall["doc_numbers"]` as `ok/n`, like `titles`."""
    argv = ["--out", str(out_dir), "--gold", str(gold_dir), "--json"]
    argv += ["--ext", ext] if ext else []
    argv += ["-v"] if verbose else []
    buf = io.StringIO()
    with redirect_stdout(buf):
        scorer.main(argv)
    report = json.loads(buf.getvalue())

    docs = pq.read_table(Path(out_dir) / "documents.parquet", columns=["source_path", "doc_number"]).to_pylist()
    got: dict[str, Optional[str]] = {}
    for d in docs:
        p = Path(d["source_path"])
        if ext and p.suffix.lower().lstrip(".") != ext.lower().lstrip("."):
            continue
        got.setdefault(p.stem, d["doc_number"])
    n_ok = 0
    for stem, row in report["documents"].items():
        want = json.loads((Path(gold_dir) / f"{stem}.json").read_text(encoding="utf-8")).get("doc_number")
        have = got.get(stem)
        row["doc_number"] = [want, have]
        # Like the scorer's tables: a document not read has no 发文字号, right when the gold has none.
        row["doc_number_ok"] = scorer.fold(want) == scorer.fold(have)
        n_ok += row["doc_number_ok"]
    report["overall"]["doc_numbers"] = f"{n_ok}/{len(report['documents'])}"
    return report


def evaluate(s: EvalSet, rules: RuleSet, work_dir: Path, verbose: bool = False,
             options: ReaderOptions = ReaderOptions(), cache_dir: Optional[Path] = None) -> dict:
    """Extract the set into `work_dir` and score it: {ext (None for all): report}; a document
    that was not read carries `error: [reason, message]`."""
    failed = extract_to_dir(s.files(), work_dir, rules, options, cache_dir)
    reports = {}
    for ext in s.exts:
        report = score_dir(work_dir, s.gold_dir, ext, verbose)
        for stem, row in report["documents"].items():
            for name, e in failed.items():
                if Path(name).stem == stem and (ext is None or Path(name).suffix.lstrip(".") == ext):
                    row["error"] = [e.reason, e.message]
        reports[ext] = report
    return reports


def format_report(s: EvalSet, reports: dict, verbose: bool = False) -> str:
    """One line per document (F1 per table, title, 发文字号), an overall line per format."""
    lines = []
    width = max([len(st) for st in s.stems()] + [8])
    head = f"  {'document':<{width}}  {'sect':>5} {'resp':>5} {'qty':>5}  title  doc_no"
    for ext, report in reports.items():
        lines.append(f"{s.name}{f' .{ext}' if ext else ''}: {s.input_dir} against {s.gold_dir}")
        lines.append(head)
        for stem, row in report["documents"].items():
            cells = " ".join(f"{row[t]['f1']:5.2f}" for t in SCORED_TABLES)
            ok = lambda b: "ok" if b else "WRONG"  # noqa: E731
            line = f"  {stem:<{width}}  {cells}  {ok(row['title_ok']):<5}  {ok(row['doc_number_ok'])}"
            if not row["found"]:
                reason = row.get("error", ["not found", ""])[0]
                line += f"  (not read: {reason})"
            lines.append(line)
            if verbose:
                if row.get("error"):
                    lines.append(f"     error: {row['error'][0]}: {row['error'][1]}")
                if not row["doc_number_ok"]:
                    lines.append(f"     doc_number: gold {row['doc_number'][0]!r}, got {row['doc_number'][1]!r}")
                for t in SCORED_TABLES:
                    for k in row[t].get("missed", []):
                        lines.append(f"     missed {t}: {k}")
                    for k in row[t].get("extra", []):
                        lines.append(f"     extra  {t}: {k}")
        o = report["overall"]
        cells = " ".join(f"{o[t]['f1']:5.3f}" for t in SCORED_TABLES)
        lines.append(f"  {'overall':<{width}}  {cells}  titles {o['titles']}  doc_numbers {o['doc_numbers']}"
                     f"  levels {o['section_levels']}")
        lines.append("")
    return "\n".join(lines)
