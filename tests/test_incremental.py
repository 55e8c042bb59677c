"""Incremental runs, re-extraction after a rule edit, the changes table, locking and crash safety.

All runs go through the real flow in this process (one embedded Prefect API for the module).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from conftest import DATA_TABLES as DATA
from conftest import ROOT, assert_same_tables, table_contents

from flows.cli import format_summary
from flows.ingest import run_ingest
from pipeline.rules import RuleFileError
from pipeline.runtime.lock import run_lock
from pipeline.store.tables import TABLES, recover

SEED = {ext: sorted((ROOT / "raw").glob(f"*.{ext}")) for ext in ("txt", "docx", "pdf")}


@pytest.fixture
def work(tmp_path):
    raw, out, cache, cfg = (tmp_path / d for d in ("raw", "out", "cache", "config"))
    raw.mkdir()
    shutil.copytree(ROOT / "config", cfg)
    return raw, out, cache, cfg


def ingest(raw, out, cache, cfg, **kw):
    return run_ingest(raw_dir=str(raw), out_dir=str(out), cache_dir=str(cache), config_dir=str(cfg),
                      workers=2, **kw)


def edit_rule(cfg, filename, old, new):
    p = cfg / filename
    text = p.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {filename}"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")


def assert_same_as_fresh_run(raw, out, cfg, tmp_path):
    """The tables in `out` equal those of one run over the same raw/ and config/ (run ids aside)."""
    fresh = tmp_path / "fresh"
    ingest(raw, fresh, tmp_path / "fresh-cache", cfg)
    assert_same_tables(table_contents(out), table_contents(fresh))


def drop_approx_word(cfg):
    """An analyst's rule edit: `接近` no longer means "about" (its example goes too)."""
    edit_rule(cfg, "quantities.yaml", "pattern: '(?:接近|大约|约为|约|将近|近)\\s*$'",
              "pattern: '(?:大约|约为|约|将近)\\s*$'")
    edit_rule(cfg, "quantities.yaml", 'examples: ["营业收入接近", "约"]', 'examples: ["营业收入大约", "约"]')


def test_any_sequence_of_runs_equals_one_fresh_run(work, tmp_path):
    raw, out, cache, cfg = work
    a, b, c = SEED["txt"][0], SEED["docx"][1], SEED["pdf"][2]
    shutil.copy(a, raw / "a.txt")
    shutil.copy(b, raw / "b.docx")
    s1 = ingest(raw, out, cache, cfg)
    assert s1["files"]["new"] == 2

    shutil.copy(c, raw / "c.pdf")                       # added
    shutil.copy(SEED["txt"][3], raw / "b.docx")         # changed (other bytes, same name)
    s2 = ingest(raw, out, cache, cfg)
    assert (s2["files"]["new"], s2["files"]["changed"], s2["files"]["unchanged"]) == (1, 1, 1)
    assert s2["processed"] == 2

    (raw / "a.txt").unlink()                            # removed
    (raw / "c.pdf").rename(raw / "c-renamed.pdf")       # renamed: same bytes, not parsed again
    s3 = ingest(raw, out, cache, cfg)
    assert s3["files"]["removed"] == 1 and s3["processed"] == 0
    docs = pd.read_parquet(out / "documents.parquet")
    assert sorted(docs.source_path) == ["b.docx", "c-renamed.pdf"]

    drop_approx_word(cfg)   # rules changed: re-extract all
    s4 = ingest(raw, out, cache, cfg)
    assert s4["trigger"] == "rules_changed" and s4["processed"] == 2

    assert_same_as_fresh_run(raw, out, cfg, tmp_path)


def test_second_run_with_nothing_changed_rewrites_nothing(work):
    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][0], raw)
    ingest(raw, out, cache, cfg)
    before = {n: (out / f"{n}.parquet").stat().st_mtime_ns for n in DATA}
    s = ingest(raw, out, cache, cfg)
    assert s["nothing_changed"] and s["processed"] == 0
    assert before == {n: (out / f"{n}.parquet").stat().st_mtime_ns for n in DATA}
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs.n_unchanged) == [0, 1] and list(runs.trigger) == ["manual", "manual"]


def test_unchanged_files_are_not_opened_and_rule_edits_never_reparse(work):
    raw, out, cache, cfg = work
    pdf = raw / "plan.pdf"
    shutil.copy(SEED["pdf"][2], pdf)
    ingest(raw, out, cache, cfg)
    sections = len(pd.read_parquet(out / "sections.parquet"))
    # Same size and mtime, other bytes: a run that opened the file would now fail on it.
    st = pdf.stat()
    pdf.write_bytes(b"\0" * st.st_size)
    os.utime(pdf, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = ingest(raw, out, cache, cfg)
    assert s["nothing_changed"]
    drop_approx_word(cfg)
    s = ingest(raw, out, cache, cfg)
    assert s["processed"] == 1 and not s["errors"]       # re-extracted from the text cache
    assert len(pd.read_parquet(out / "sections.parquet")) == sections


def test_rule_edit_reports_what_changed(work):
    raw, out, cache, cfg = work
    for p in SEED["txt"]:
        shutil.copy(p, raw)
    first = ingest(raw, out, cache, cfg)
    drop_approx_word(cfg)
    s = ingest(raw, out, cache, cfg)
    ch = pd.read_parquet(out / "changes.parquet")
    row = ch[(ch.table == "quantities") & (ch.change == "changed")].iloc[0]
    assert '"comparator": "~"' in row.before and '"comparator": "="' in row.after
    assert set(ch.old_rules_version) == {first["rules_version"]}
    assert set(ch.new_rules_version) == {s["rules_version"]} != {first["rules_version"]}
    assert "quantities: 1 changed" in s["changes"] and "接近500亿元" in s["changes"]
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs.trigger) == ["manual", "rules_changed"]
    assert list(runs.rules_version) == [first["rules_version"], s["rules_version"]]
    q = pd.read_parquet(out / "quantities.parquet")
    assert set(q.rules_version) == {s["rules_version"]}


ALL = ["documents", "sections", "responsibilities", "quantities", "terms"]


@pytest.mark.parametrize("filename, extracted", [
    ("quantities.yaml", ["quantities"]),
    ("responsibilities.yaml", ["responsibilities"]),
    ("metadata.yaml", ["documents", "quantities"]),
    ("sections.yaml", ALL),
])
def test_a_rule_edit_re_extracts_only_the_tables_of_that_file(work, tmp_path, filename, extracted):
    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][1], raw / "a.txt")
    shutil.copy(SEED["docx"][3], raw / "b.docx")
    first = ingest(raw, out, cache, cfg)
    shutil.copy(SEED["txt"][4], raw / "c.txt")  # a new file in the same run gets every table
    with open(cfg / filename, "a", encoding="utf-8") as fh:
        fh.write("\n# reviewed by an analyst\n")  # other bytes, same rules
    s = ingest(raw, out, cache, cfg)
    assert s["trigger"] == "rules_changed" and s["processed"] == 3
    assert s["tables_extracted"] == extracted
    carried = [t for t in ALL if t not in extracted]
    assert (f"re-extracted: {', '.join(extracted)}" + (f" (carried over: {', '.join(carried)})" if carried else "")
            in format_summary(s).splitlines())
    new_id = pd.read_parquet(out / "documents.parquet").query("source_path == 'c.txt'").doc_id.item()
    for name in ALL:
        df = pd.read_parquet(out / f"{name}.parquet")
        old_docs = df[df.doc_id != new_id]
        # Carried rows keep the run that extracted them; re-extracted ones have this run's.
        assert set(old_docs.run_id) == {s["run_id"] if name in extracted else first["run_id"]}, name
        assert set(df[df.doc_id == new_id].run_id) == {s["run_id"]}, name
        if "rules_version" in df:
            assert set(df.rules_version) == {s["rules_version"]}, name  # carried rows too
    runs = pd.read_parquet(out / "runs.parquet")
    assert filename in runs.rule_versions.iloc[-1]

    assert_same_as_fresh_run(raw, out, cfg, tmp_path)


def test_a_rule_edit_leaves_a_table_it_cannot_change_as_it_is(work, tmp_path):
    """Keywords hold no rules_version and depend on sections.yaml only: after an edit of another
    rule file, with no other change, terms.parquet is not rewritten at all; with a file added or
    removed in the same run, or after an edit of sections.yaml, it is."""
    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][2], raw / "a.txt")  # holds `接近500亿元`: the edit changes a row
    shutil.copy(SEED["docx"][3], raw / "b.docx")
    ingest(raw, out, cache, cfg)

    def identity(name):
        st = (out / f"{name}.parquet").stat()
        return st.st_ino, st.st_mtime_ns

    terms = identity("terms")
    drop_approx_word(cfg)
    s = ingest(raw, out, cache, cfg)
    assert s["tables_extracted"] == ["quantities"] and s["n_changes"] > 0
    assert identity("terms") == terms
    assert identity("sections") != identity("terms")  # carried rows get the new rules_version: rewritten
    assert_same_as_fresh_run(raw, out, cfg, tmp_path / "1")

    edit_rule(cfg, "responsibilities.yaml", "\n", "\n# reviewed\n")
    (raw / "b.docx").unlink()  # a file removed in the same run: its keywords go
    s = ingest(raw, out, cache, cfg)
    assert s["tables_extracted"] == ["responsibilities"] and s["files"]["removed"] == 1
    assert identity("terms") != terms
    assert set(pd.read_parquet(out / "terms.parquet").doc_id) == set(pd.read_parquet(out / "documents.parquet").doc_id)
    assert_same_as_fresh_run(raw, out, cfg, tmp_path / "2")

    terms = identity("terms")
    with open(cfg / "sections.yaml", "a", encoding="utf-8") as fh:
        fh.write("\n# reviewed\n")
    s = ingest(raw, out, cache, cfg)
    assert "terms" in s["tables_extracted"] and identity("terms") != terms


def test_a_file_whose_re_extraction_fails_after_a_rule_edit_keeps_no_rows(work):
    """A rule edit re-extracts some tables of every file and carries the others over; a file whose
    job fails then has no rows in any table (as in a fresh run), only its error, whatever tables
    the edit carried over, the untouched keyword file included."""
    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][0], raw / "small.txt")
    # 650 KB of targets: its quantities take about 2.5 s of CPU, the small draft's milliseconds.
    target = "到2025年，全市数字经济核心产业增加值达到550亿元，比2019年增长30%以上，单个平台资助金额不超过3000万元。"
    (raw / "big.txt").write_text("XX市数字经济发展行动计划\n" + "\n".join(
        f"{i}. 第{i}项任务\n推进数字化转型。（责任单位：市科学技术局）\n" + "\n".join([target] * 80)
        for i in range(1, 100)), encoding="utf-8")
    first = ingest(raw, out, cache, cfg)
    assert first["processed"] == 2 and not first["errors"]
    ids = dict(pd.read_parquet(out / "documents.parquet")[["source_path", "doc_id"]].values)
    for name in ALL:
        assert ids["big.txt"] in set(pd.read_parquet(out / f"{name}.parquet").doc_id), name

    edit_rule(cfg, "pipeline.yaml", "timeout_seconds: 60", "timeout_seconds: 0.5")
    drop_approx_word(cfg)
    s = ingest(raw, out, cache, cfg)
    assert s["tables_extracted"] == ["quantities"] and s["errors"] == {"timeout": 1}
    for name in ALL:
        docs = set(pd.read_parquet(out / f"{name}.parquet").doc_id)
        assert ids["big.txt"] not in docs and ids["small.txt"] in docs, name
    errors = pd.read_parquet(out / "errors.parquet")
    assert list(errors.source_path) == ["big.txt"] and list(errors.reason) == ["timeout"]


def test_rule_edit_after_tables_without_rule_file_versions_re_extracts_everything(work):
    """Tables written before `runs.rule_versions` existed: which file changed is unknown."""
    import pyarrow.parquet as pq

    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][0], raw)
    ingest(raw, out, cache, cfg)
    runs = pq.read_table(out / "runs.parquet")
    pq.write_table(runs.drop_columns(["rule_versions"]), out / "runs.parquet")
    drop_approx_word(cfg)
    s = ingest(raw, out, cache, cfg)
    assert s["tables_extracted"] == ALL
    assert pd.read_parquet(out / "runs.parquet").rule_versions.isna().tolist() == [True, False]


def test_reextract_on_demand(work):
    raw, out, cache, cfg = work
    shutil.copy(SEED["docx"][0], raw)
    ingest(raw, out, cache, cfg)
    drop_approx_word(cfg)
    s = ingest(raw, out, cache, cfg, reextract=True, trigger="reextract")
    assert s["processed"] == 1 and s["tables_extracted"] == ALL  # every table, whatever changed
    s = ingest(raw, out, cache, cfg, reextract=True, trigger="reextract")
    assert s["processed"] == 1 and s["changes"].startswith("changes: none")


def test_invalid_rule_file_stops_the_run_before_anything_is_written(work):
    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][1], raw)
    ingest(raw, out, cache, cfg)
    before = {n: (out / f"{n}.parquet").read_bytes() for n in TABLES}
    edit_rule(cfg, "responsibilities.yaml", "id:", "id: [unclosed")
    with pytest.raises(RuleFileError, match="responsibilities.yaml"):
        ingest(raw, out, cache, cfg)
    assert before == {n: (out / f"{n}.parquet").read_bytes() for n in TABLES}


def test_second_run_waits_or_exits_while_the_folder_is_locked(work):
    raw, out, cache, cfg = work
    shutil.copy(SEED["txt"][1], raw)
    with run_lock(out):
        s = ingest(raw, out, cache, cfg, wait_if_busy=False)
        assert "is being written by pid" in s["busy"]
        assert not (out / "documents.parquet").exists()


WRITER = textwrap.dedent("""
    import sys
    from pipeline.store.tables import to_arrow, write_tables
    out = sys.argv[1]
    gen = 0
    while True:
        gen += 1
        rows = [{"source_path": f"f{i}", "sha256": "x" * 64, "stage": "parse", "reason": "corrupt",
                 "message": "m" * 200, "run_id": str(gen)} for i in range(60000)]
        tables = {name: to_arrow("errors", rows) for name in ("errors",)}
        tables["runs"] = to_arrow("runs", [{"run_id": str(gen)}])
        write_tables(out, tables)
        print(gen, flush=True)
""")


def test_kill_9_mid_write_leaves_one_consistent_set(tmp_path):
    out = tmp_path / "out"
    for delay in (0.3, 0.7, 1.1, 1.6, 2.2):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if (out / "runs.parquet").exists():
            # Readable as they are, and after recovery every table comes from the same write.
            pd.read_parquet(out / "errors.parquet")
            recover(out)
            gens = set(pd.read_parquet(out / "errors.parquet").run_id) | set(pd.read_parquet(out / "runs.parquet").run_id)
            assert len(gens) == 1, gens
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


def test_run_killed_with_kill_9_is_completed_by_the_next_run(work):
    raw, out, cache, cfg = work
    for p in SEED["txt"] + SEED["docx"]:
        shutil.copy(p, raw)
    env = {**os.environ, "POLICY_PIPELINE_HOME": str(ROOT)}
    cmd = [sys.executable, "-m", "flows.cli", "ingest", "--raw", str(raw), "--out", str(out),
           "--cache", str(cache), "--config", str(cfg)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    for line in p.stdout:  # kill as soon as documents are being processed
        if "processed" in line or "to process" in line:
            break
    os.killpg(p.pid, signal.SIGKILL)  # the run and everything it started (workers, Prefect's API)
    p.wait()
    s = ingest(raw, out, cache, cfg)
    assert s["rows"]["documents"] == 10 and not s["errors"]


def test_a_refused_file_is_not_opened_again_while_unchanged(work):
    raw, out, cache, cfg = work
    png = raw / "scan.pdf"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    s = ingest(raw, out, cache, cfg)
    assert s["errors"] == {"unsupported_format": 1}
    st = png.stat()
    png.write_bytes("一、总体要求".encode("utf-8").ljust(st.st_size, b" "))  # readable now, same size
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = ingest(raw, out, cache, cfg)
    assert s["nothing_changed"] and s["errors"] == {"unsupported_format": 1}
