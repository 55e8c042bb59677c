"""The real `ingest` flow on the seed drafts in all three formats: scores, contract, provenance, CLI.

One flow run (module fixture) serves most tests: each run in a new process starts Prefect's embedded
API, so the suite pays that once here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import GOLD_DIR, ROOT, SEED_FILES

from flows.ingest import run_ingest
from pipeline.evaluation.sets import score_dir
from pipeline.store.tables import SCHEMA_VERSION, SCHEMAS
from pipeline.store.textcache import load_cached


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("seeds")
    raw = base / "raw"
    raw.mkdir()
    for p in SEED_FILES:
        shutil.copy(p, raw)
    out, cache = base / "out", base / "cache"
    summary = run_ingest(raw_dir=str(raw), out_dir=str(out), workers=2, cache_dir=str(cache))
    return summary, out, cache


def score(out, ext):
    return score_dir(out, GOLD_DIR, ext)["overall"]


@pytest.mark.parametrize("ext", ["txt", "docx", "pdf"])
def test_seed_scores_per_format(seed_run, ext):
    _, out, _ = seed_run
    o = score(out, ext)
    for table in ("sections", "responsibilities", "quantities"):
        assert o[table]["f1"] >= 0.97, (ext, table, o[table])
    assert o["titles"] == "5/5"
    assert o["section_levels"] == 1.0


def test_summary_counts_every_file(seed_run):
    summary, _, _ = seed_run
    n = len(SEED_FILES)
    assert summary["files"]["new"] == n and summary["status"]["ok"] == n
    assert summary["rows"]["documents"] == n and not summary["errors"]


@pytest.mark.parametrize("name", [t for t in SCHEMAS])
def test_tables_have_the_declared_schema_and_read_with_pandas_and_duckdb(seed_run, name):
    _, out, _ = seed_run
    path = out / f"{name}.parquet"
    f = pq.read_table(path)
    assert f.schema.remove_metadata() == SCHEMAS[name]
    assert f.schema.metadata[b"schema_version"].decode() == SCHEMA_VERSION
    assert len(pd.read_parquet(path)) == f.num_rows
    assert duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0] == f.num_rows


def test_every_row_traces_back_to_its_words(seed_run):
    _, out, cache = seed_run
    docs = pd.read_parquet(out / "documents.parquet").set_index("doc_id")
    q = pd.read_parquet(out / "quantities.parquet")
    r = pd.read_parquet(out / "responsibilities.parquet")
    s = pd.read_parquet(out / "sections.parquet")
    for doc_id, d in docs.iterrows():
        parsed = load_cached(cache, d.sha256, d.parser_version)
        assert parsed is not None, d.source_path
        for row in q[q.doc_id == doc_id].itertuples():
            assert parsed.text[row.start:row.end] == row.raw
        for row in s[s.doc_id == doc_id].itertuples():
            assert parsed.text[row.start:row.body_start].lstrip().startswith(row.label)
        for row in r[r.doc_id == doc_id].itertuples():
            assert row.agency_raw in parsed.text[row.start:row.end].replace("\n", "")
        if d.format == "pdf":
            assert s[s.doc_id == doc_id].page_start.notna().all()
            assert q[q.doc_id == doc_id].page.notna().all()


def test_metadata_of_the_ministry_letter(seed_run):
    _, out, _ = seed_run
    docs = pd.read_parquet(out / "documents.parquet")
    d = docs[docs.source_name == "002_ef17eb8ff52a8b39.pdf"].iloc[0]
    assert d.title == "广东省培育前沿新材料战略性新兴产业集群行动计划（2021-2025年）"
    assert d.doc_number == "粤科高字〔2020〕217号"
    assert (d.period_start, d.period_end) == (2021, 2025)
    assert str(d.date) == "2020-09-25"
    assert "广东省科学技术厅" in list(d.issuers) and not d.is_draft


def test_agency_prefix_is_restored_next_to_the_name_as_written(seed_run):
    _, out, _ = seed_run
    r = pd.read_parquet(out / "responsibilities.parquet")
    row = r[(r.agency_raw == "工业和信息化局") & r.line_raw.str.contains("市科学技术局牵头")].iloc[0]
    assert row.agency == "市工业和信息化局"


def test_terms_give_keywords_per_section_with_the_user_dictionary(seed_run):
    _, out, _ = seed_run
    t = pd.read_parquet(out / "terms.parquet")
    s = pd.read_parquet(out / "sections.parquet")
    assert set(t.section_id) <= set(s.section_id)
    sid = s[s.heading == "新能源材料"].section_id.iloc[0]
    assert "锂离子电池" in set(t[t.section_id == sid].term)


def _processes_with(env_entry: bytes, cmd_part: bytes) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            if cmd_part in (d / "cmdline").read_bytes() and env_entry in (d / "environ").read_bytes().split(b"\0"):
                found.append(int(d.name))
        except (OSError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a container's init may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.mark.parametrize("kind", ["embedded", "server"])
def test_a_local_api_stops_when_its_run_is_killed(tmp_path, kind):
    # kill -9 of the run gives it no chance to stop its Prefect API: the API stops by itself.
    code = ("import sys, time; from flows.api import LocalAPI\n"
            f"api = LocalAPI({kind!r}).start(); api.wait(); print(api.proc.pid, flush=True); time.sleep(600)")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    run = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        api_pid = int(run.stdout.readline())
        assert _alive(api_pid)
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 60
    while _alive(api_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(api_pid)


def test_cli_prints_summary_and_exits_zero(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(ROOT / "raw" / "003_af7725881e400d8b.txt", raw)
    (raw / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    home = tmp_path / "prefect"
    env = {**os.environ, "POLICY_PIPELINE_HOME": str(ROOT), "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    r = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", "--raw", str(raw),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    # The CLI ran against the Prefect API it started itself (flows/api.py), and stopped it.
    assert (home / "embedded-api.log").exists() and (home / "prefect.db").exists()
    assert not _processes_with(f"PREFECT_HOME={home}".encode(), b"create_embedded_app")
    assert "files: 2 new" in r.stdout and "failed: 1" in r.stdout
    assert "errors by reason: corrupt 1" in r.stdout
    assert "Traceback" not in r.stderr and "database is locked" not in r.stderr
    assert len(pd.read_parquet(tmp_path / "out" / "documents.parquet")) == 1


def test_fast_pdf_backend_scores_the_same(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in (p for p in SEED_FILES if p.suffix == ".pdf"):
        shutil.copy(p, raw)
    out = tmp_path / "out"
    run_ingest(raw_dir=str(raw), out_dir=str(out), cache_dir=str(tmp_path / "cache"), pdf_backend="pypdfium2")
    docs = pd.read_parquet(out / "documents.parquet")
    assert set(docs.parser) == {"pypdfium2"}
    o = score(out, "pdf")
    for table in ("sections", "responsibilities", "quantities"):
        assert o[table]["f1"] >= 0.97, (table, o[table])
    assert o["titles"] == "5/5"


def test_impossible_date_is_skipped_not_fatal(rules):
    from pipeline.model import Para
    from pipeline.stages.metadata import text_to_metadata
    from pipeline.stages.normalise import paras_to_text
    from pipeline.stages.sections import text_to_sections

    parsed = paras_to_text([Para(x) for x in ["某市行动计划", "2023年2月30日印发", "2023年3月1日", "一、总体要求"]],
                           "text", "test")
    meta = text_to_metadata(parsed, text_to_sections(parsed, rules["sections.yaml"]), rules["metadata.yaml"])
    assert meta.date == "2023-03-01"


@pytest.mark.parametrize("lines,title,period", [
    (["四川省推进制造业数字化转型实施方案", "（2023—2025年）", "（征求意见稿）", "一、总体要求"],
     "四川省推进制造业数字化转型实施方案（2023—2025年）", (2023, 2025)),
    (["某市产业集群行动计划（2021-2025年）", "（2022—2026年）", "一、总体要求"],  # period already in the title
     "某市产业集群行动计划（2021-2025年）", (2021, 2025)),
    (["某市产业集群行动计划", "2023年3月1日", "一、总体要求"], "某市产业集群行动计划", (None, None)),
])
def test_a_plan_period_on_the_line_below_the_title_is_part_of_it(lines, title, period, rules):
    from pipeline.model import Para
    from pipeline.stages.metadata import text_to_metadata
    from pipeline.stages.normalise import paras_to_text
    from pipeline.stages.sections import text_to_sections

    parsed = paras_to_text([Para(x) for x in lines], "text", "test")
    meta = text_to_metadata(parsed, text_to_sections(parsed, rules["sections.yaml"]), rules["metadata.yaml"])
    assert (meta.title, (meta.period_start, meta.period_end)) == (title, period)
