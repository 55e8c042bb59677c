"""A drop folder full of hostile files, through the real `ingest` flow in ONE batch.

tests/hostile_files.py builds every broken kind of file a drop folder receives (empty, disguised,
corrupt, encrypted, scanned, garbled, oversized, zip/PDF bombs, XXE and billion laughs, a file
that takes minutes, a file that needs a gigabyte, FIFOs, sockets, devices, symlinks out of raw/,
awkward names) next to real drafts, under a test config with tight limits (timeout 3 s of CPU,
memory 300 MB above the idle worker, max_file_mb 20, 2 workers). One flow run (module fixture) serves every test: each
flow run starts Prefect's embedded API, so the module pays that once.

What must hold: the batch completes; every file ends in exactly one outcome with the expected
reason; the good files' rows are exactly the rows they get when processed alone; no byte from
outside raw/ reaches a table or the cache; and no file costs the batch more than its own limit.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT
from hostile_files import DOCX_MARKERS, SECRET, TEST_LIMITS, build_raw

from pipeline.config import load_settings
from pipeline.errors import REASONS
from pipeline.readers import REASONS as READER_REASONS
from pipeline.readers import ReaderOptions, parser_version
from pipeline.runtime.job import Job, process_job
from pipeline.runtime.scan import sha256_file
from pipeline.runtime.workers import POLL_SECONDS, WALL_FACTOR, make_work_context
from pipeline.stages.extract import load_rules
from pipeline.store.tables import to_arrow
from pipeline.store.textcache import load_cached

GOOD_DIR = ROOT / "raw"  # the sample drafts, copied in under awkward names as the good files
REQUIRED_REASONS = {"empty_file", "unsupported_format", "corrupt", "encrypted", "no_text_layer",
                    "garbled_text", "too_large", "timeout", "memory_limit", "not_a_regular_file"}
DATA_TABLES = ("documents", "sections", "responsibilities", "quantities", "terms")
# Wall-clock slack over the backstop: killing a worker and reading its answer, on a loaded 2-core box.
SLACK_SECONDS = 2.0


def make_config(base: Path, **limits) -> Path:
    config = base / "config"
    shutil.copytree(ROOT / "config", config)
    settings = yaml.safe_load((config / "pipeline.yaml").read_text(encoding="utf-8"))
    settings.update(limits)
    (config / "pipeline.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return config


class _JobLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.stats: dict[str, object] = {}

    def emit(self, record):
        stats = getattr(record, "job_stats", None)
        if stats is not None:
            self.stats[record.job.source.path] = stats


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from flows.ingest import run_ingest

    base = tmp_path_factory.mktemp("hostile")
    config = make_config(base, **TEST_LIMITS)
    raw, out, cache = base / "raw", base / "out", base / "cache"
    cases = build_raw(raw, base / "outside", GOOD_DIR)
    settings = load_settings(config, cache_dir=str(cache))
    logger = logging.getLogger("policy_pipeline.workers")
    handler, old_level = _JobLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    t0 = time.monotonic()
    try:
        summary = run_ingest(raw_dir=str(raw), out_dir=str(out), config_dir=str(config), cache_dir=str(cache))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    tables = {name: pq.read_table(out / f"{name}.parquet") for name in DATA_TABLES + ("errors",)}
    return SimpleNamespace(base=base, raw=raw, out=out, config=config, settings=settings, cases=cases,
                           summary=summary, seconds=time.monotonic() - t0, tables=tables,
                           stats=handler.stats)


def outcomes(run) -> dict[str, list[str]]:
    """source_path → every outcome it got: "ok" per documents row, the reason per errors row."""
    got: dict[str, list[str]] = {}
    for p in run.tables["documents"].column("source_path").to_pylist():
        got.setdefault(p, []).append("ok")
    for e in run.tables["errors"].to_pylist():
        got.setdefault(e["source_path"], []).append(e["reason"])
    return got


def test_batch_completes_and_covers_every_reason(run):
    assert "busy" not in run.summary
    assert {c.expect for c in run.cases} >= REQUIRED_REASONS
    for case in run.cases:
        assert case.expect in REASONS or case.expect in ("ok", None), case
    # Prefect's start-up, two workers' start-up (and one replacement per killed worker), the slow
    # file's limit and ~40 small files: ~30 s on an idle 2-core machine.
    assert run.seconds < 100, run.seconds


def test_every_file_has_exactly_one_outcome_with_the_expected_reason(run):
    got = outcomes(run)
    wrong = [f"{c.display!r}: expected {c.expect}, got {got.get(c.display)} ({c.what})"
             for c in run.cases
             if got.get(c.display, []) != ([c.expect] if c.expect else [])]
    assert not wrong, "\n".join(wrong)
    unexpected = set(got) - {c.display for c in run.cases}
    assert not unexpected


def test_error_rows_are_complete(run):
    errors = run.tables["errors"].to_pylist()
    assert errors
    for e in errors:
        assert e["reason"] in REASONS, e
        assert e["stage"] in ("scan", "sniff", "parse", "extract"), e
        assert e["message"] and len(e["message"]) > 10, e
        assert e["run_id"], e
        if e["stage"] in ("sniff", "parse"):
            assert e["sha256"] and len(e["sha256"]) == 64, e
    summary_errors = Counter(e["reason"] for e in errors)
    assert dict(run.summary["errors"]) == dict(summary_errors)


def test_reader_reasons_are_pipeline_reasons():
    assert set(READER_REASONS) <= set(REASONS)


def _rows(table, doc_id: str, drop=("run_id",)) -> list[dict]:
    rows = [r for r in table.to_pylist() if r["doc_id"] == doc_id]
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in drop}
        for k in ("doc_id", "section_id", "parent_id"):
            if isinstance(r.get(k), str):
                r[k] = r[k].replace(doc_id, "<doc>")
        out.append(r)
    return sorted(out, key=repr)


def test_good_files_rows_equal_those_of_the_file_processed_alone(run, tmp_path):
    """Each good file's rows in the hostile batch are exactly the rows its pristine twin gets
    when processed on its own (in this process, fresh cache): bad neighbours change nothing."""
    rules = load_rules(run.config)
    ctx = make_work_context(str(run.config), rules.version, str(tmp_path / "cache"), run.settings.pdf_backend,
                            run.settings.terms_per_section)
    from pipeline.readers import sniff
    from pipeline.stages.extract import Source

    checked = 0
    for case in run.cases:
        if case.expect != "ok" or case.reference is None:
            continue
        ref = case.reference
        sha = sha256_file(ref)
        alone = process_job(Job(Source(path=ref.name, name=ref.name, sha256=sha, size=ref.stat().st_size,
                                       format=sniff(ref)), str(ref)), ctx)
        batch_doc = run.tables["documents"].to_pylist()
        doc_id = next(d["doc_id"] for d in batch_doc if d["source_path"] == case.display)
        for name in DATA_TABLES:
            expected = _rows(to_arrow(name, alone.tables.get(name, [])), sha[:16],
                             drop=("run_id", "source_path", "source_name", "sha256", "size_bytes", "format",
                                   "parser", "parser_version"))
            got = _rows(run.tables[name], doc_id,
                        drop=("run_id", "source_path", "source_name", "sha256", "size_bytes", "format",
                              "parser", "parser_version"))
            assert got == expected, (case.display, name)
            assert got or name != "documents"
        checked += 1
    assert checked >= 10


def _cached_text(run, display: str) -> str:
    doc = next(d for d in run.tables["documents"].to_pylist() if d["source_path"] == display)
    parsed = load_cached(run.settings.cache_dir, doc["sha256"], doc["parser_version"])
    assert parsed is not None
    return parsed.text


def test_big5_and_gb18030_decode(run):
    assert _cached_text(run, "encodings/trad-big5.txt") == _cached_text(run, "encodings/trad-utf8.txt")
    assert "㐀䶮𠀀" in _cached_text(run, "encodings/001-gb18030.txt")


def test_docx_table_textbox_content_control_and_insertion_read_once(run):
    text = _cached_text(run, "good/rich content.docx")
    for key, marker in DOCX_MARKERS.items():
        assert text.count(marker) == (0 if key == "deleted" else 1), (key, text)


def test_names_are_stored_faithfully(run):
    docs = {d["source_path"]: d for d in run.tables["documents"].to_pylist()}
    assert docs["good/two\nlines 002.pdf"]["source_name"] == "two\nlines 002.pdf"
    assert docs["good/政策 草案 001.docx"]["source_name"] == "政策 草案 001.docx"
    assert docs["good/bad-\\xff\\xfe-name 003.txt"]["source_name"] == "bad-\\xff\\xfe-name 003.txt"


def test_nothing_from_outside_raw_is_read(run):
    for name, table in run.tables.items():
        assert SECRET not in str(table.to_pylist()), name
    for path in run.settings.cache_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_no_partial_rows(run):
    """Rows exist only for documents that have a documents row, and no failed file has any."""
    doc_ids = set(run.tables["documents"].column("doc_id").to_pylist())
    for name in DATA_TABLES[1:]:
        assert set(run.tables[name].column("doc_id").to_pylist()) <= doc_ids, name
    failed = {e["sha256"][:16] for e in run.tables["errors"].to_pylist()
              if e["sha256"] and e["reason"] != "duplicate"}
    assert not failed & doc_ids


def test_each_file_stays_within_its_limit(run):
    """No job used more CPU than the limit (plus one poll), none ran longer than the wall-clock
    backstop, the slow file was stopped at its limit and the big one by memory before it."""
    limit = TEST_LIMITS["timeout_seconds"]
    by_path = {c.display: c for c in run.cases}
    assert len(run.stats) == run.summary["processed"]
    for path, s in run.stats.items():
        assert s.outcome == (by_path[path].expect if by_path[path].expect != "duplicate" else "ok"), path
        assert s.seconds <= WALL_FACTOR * limit + SLACK_SECONDS, (path, s)
        if s.cpu_seconds is not None:
            assert s.cpu_seconds <= limit + 2 * POLL_SECONDS + 0.2, (path, s)
        if s.peak_rss_mb is not None and s.idle_rss_mb is not None:
            # The limit is on address space added after loading; pages already mapped then (the
            # fork server's preloaded libraries, shared until touched) can still become resident
            # during a worker's first job, so resident size gets a margin beyond the limit.
            assert s.peak_rss_mb <= s.idle_rss_mb + TEST_LIMITS["memory_limit_mb"] + 128, (path, s)
    timeout = run.stats["bad/slow.pdf"]
    assert timeout.outcome == "timeout"
    # Stopped by its CPU limit, or (on a machine too loaded to give it the CPU) by the backstop.
    assert (timeout.cpu_seconds or 0) >= limit or timeout.seconds >= WALL_FACTOR * limit
    memory = run.stats["bad/big.docx"]
    assert memory.outcome == "memory_limit"
    assert memory.cpu_seconds is None or memory.cpu_seconds < limit


# ---------------------------------------------------------------------------------------------
# A bad setting or rule file: exit 2, a message naming it, the previous tables untouched
# ---------------------------------------------------------------------------------------------

def _break_pipeline_yaml(config: Path) -> tuple[str, str]:
    p = config / "pipeline.yaml"
    text = p.read_text(encoding="utf-8")
    assert "timeout_seconds: 3" in text
    p.write_text(text.replace("timeout_seconds: 3", "timeout_seconds: -5"), encoding="utf-8")
    return "pipeline.yaml", "timeout_seconds"


def _break_rule_yaml(config: Path) -> tuple[str, str]:
    p = config / "sections.yaml"
    p.write_text(p.read_text(encoding="utf-8") + "\n  - [unclosed\n", encoding="utf-8")
    return "sections.yaml", "sections.yaml"


def _break_rule_pattern(config: Path) -> tuple[str, str]:
    p = config / "quantities.yaml"
    text = p.read_text(encoding="utf-8")
    i = text.index("pattern:")
    p.write_text(text[:i] + "pattern: '(unbalanced['\n    old_" + text[i:], encoding="utf-8")
    return "quantities.yaml", "quantities.yaml"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("breaker", [_break_pipeline_yaml, _break_rule_yaml, _break_rule_pattern],
                         ids=["setting", "rule-yaml", "rule-pattern"])
def test_bad_config_exits_2_and_leaves_tables_untouched(run, tmp_path, breaker):
    bad = tmp_path / "bad-config"
    shutil.copytree(run.config, bad)
    filename, key = breaker(bad)
    out = tmp_path / "out"
    shutil.copytree(run.out, out)
    before = _digest(out)
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "policy-pipeline"), "ingest", "--config", str(bad),
                        "--raw", str(run.raw / "good"), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert filename in r.stderr and key in r.stderr, r.stderr
    assert _digest(out) == before


def test_parser_versions_known(run):
    # Cache keys the documents rows carry are the readers' current versions.
    opts = ReaderOptions(pdf_backend=run.settings.pdf_backend)
    versions = {fmt: parser_version(fmt, opts) for fmt in ("text", "docx", "pdf")}
    for d in run.tables["documents"].to_pylist():
        assert d["parser_version"] == versions[d["format"]]


# ---------------------------------------------------------------------------------------------
# Reader limits on their own (no flow): variants the batch does not need to repeat
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("filters", [["/FlateDecode", "/FlateDecode"], ["/ASCII85Decode", "/FlateDecode"],
                                     ["/ASCIIHexDecode", "/FlateDecode"]], ids=["flate2", "a85", "hex"])
def test_pdf_bomb_behind_another_filter_is_refused(tmp_path, filters):
    import base64
    import zlib

    import pikepdf
    from pikepdf import Array, Name

    from pipeline.readers import ReaderError, read_paras

    data = zlib.compress(b" " * (120 << 20), 9)  # 120 MB of spaces in ~120 KB
    if filters[0] == "/FlateDecode":
        data = zlib.compress(data)
    elif filters[0] == "/ASCII85Decode":
        data = base64.a85encode(data) + b"~>"
    else:
        data = data.hex().encode() + b">"
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    stream = pikepdf.Stream(pdf, b"")
    stream.write(data, filter=Array([Name(f) for f in filters]))
    page.Contents = pdf.make_indirect(stream)
    path = tmp_path / "bomb.pdf"
    pdf.save(path, stream_decode_level=pikepdf.StreamDecodeLevel.none, compress_streams=False)
    t0 = time.monotonic()
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "too_large"
    assert time.monotonic() - t0 < 5


def test_binary_with_zero_bytes_is_not_taken_for_utf16(tmp_path):
    import random

    from pipeline.readers import ReaderError, read_paras, sniff_format

    rng = random.Random(3)
    # Zero bytes only at odd offsets, like UTF-16-LE ASCII, but the other bytes are noise.
    data = bytes(b for _ in range(4000) for b in (rng.randrange(1, 256), 0 if rng.random() < 0.5 else rng.randrange(1, 256)))
    path = tmp_path / "noise.txt"
    path.write_bytes(data)
    assert sniff_format(path) is None
    with pytest.raises(ReaderError) as exc:
        read_paras(path)
    assert exc.value.reason == "corrupt"
