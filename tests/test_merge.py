"""The streaming merge (pipeline/store/merge.py) and the worker pool's ordered batches.

The merge is what lets a run over any corpus size hold only a batch and a slice of each previous
table: these tests force tiny slices and row groups so that every boundary case is crossed, and
check the result against the plain in-memory definition (previous rows of kept documents + new
rows, sorted by doc_id, each document's rows in their own order).
"""
from __future__ import annotations

import os
import random
import signal
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import Failure
from pipeline.runtime.workers import WorkerPool
from pipeline.store import merge as merge_mod
from pipeline.store.merge import DATA_TABLES, Merge
from pipeline.store.tables import StagedWrite, read_table, sorted_by, to_arrow, write_tables


def _section_rows(doc: str, n: int, tag: str) -> list[dict]:
    return [{"doc_id": doc, "section_id": f"{doc}-{i}", "ordinal": i, "path": f"{i + 1}",
             "heading": f"{tag} {i}", "text": f"{tag} text {doc} {i}", "rules_version": tag}
            for i in range(n)]


def _tables(docs: dict[str, int], tag: str) -> dict[str, pa.Table]:
    """documents + sections for docs {doc_id: n_sections}; other tables empty."""
    out = {name: to_arrow(name, []) for name in DATA_TABLES}
    out["documents"] = to_arrow("documents", [{"doc_id": d, "source_path": f"raw/{d}.txt", "source_name": f"{d}.txt", "title": f"{tag} {d}",
                                               "rules_version": tag} for d in docs])
    out["sections"] = to_arrow("sections", [r for d, n in docs.items() for r in _section_rows(d, n, tag)])
    return out


def _expected(previous: dict, new: dict, keep: set[str]) -> dict[str, list[dict]]:
    out = {}
    for name in DATA_TABLES:
        rows = [r for r in previous[name].to_pylist() if r["doc_id"] in keep] + new[name].to_pylist()
        out[name] = sorted(rows, key=lambda r: r["doc_id"])  # stable: a document keeps its order
    return out


def _without_run_id(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "run_id"} for r in rows]


@pytest.mark.parametrize("shuffled_previous", [False, True])
def test_merge_in_slices_equals_the_in_memory_definition(tmp_path, monkeypatch, shuffled_previous):
    monkeypatch.setattr(merge_mod, "READ_ROWS", 7)  # slices end inside documents
    monkeypatch.setattr(merge_mod, "FLUSH_BYTES", 1)  # a row group per write
    rnd = random.Random(7)
    ids = sorted(f"{rnd.getrandbits(64):016x}" for _ in range(60))
    prev_docs = {d: rnd.randint(0, 6) for d in ids[:45]}
    previous = _tables(prev_docs, "old")
    if shuffled_previous:  # tables written in another order (an earlier version) are sorted once
        order = list(range(previous["sections"].num_rows))
        rnd.shuffle(order)
        previous["sections"] = previous["sections"].take(order)
    write_tables(tmp_path, previous)

    keep = set(ids[:30])
    reprocessed = set(ids[30:40])  # ids[40:45] are removed; ids[45:] are new
    jobs = sorted(reprocessed | set(ids[45:]))
    new_docs = {d: rnd.randint(0, 6) for d in jobs}
    renamed = {ids[3]: "raw/moved.txt"}

    with StagedWrite(tmp_path) as stage:
        m = Merge(tmp_path, stage, "run-2", keep, reprocessed, renamed, {"new_rules_version": "new"})
        changes = []
        for i in range(0, len(jobs), 4):
            batch = jobs[i:i + 4]
            changes += m.add(_tables({d: new_docs[d] for d in batch}, "new"), batch[-1])
        m.finish()
        stage.commit()

    # Written by the merge: marked sorted, so the next run streams it instead of sorting it.
    assert all(sorted_by(tmp_path, name) == "doc_id" for name in DATA_TABLES)
    assert sorted_by(tmp_path, "runs") is None
    expected = _expected(previous, _tables(new_docs, "new"), keep)
    for r in expected["documents"]:
        if r["doc_id"] in renamed:
            r["source_path"], r["source_name"] = renamed[r["doc_id"]], "moved.txt"
    for name in DATA_TABLES:
        got = read_table(tmp_path, name)
        assert _without_run_id(got.to_pylist()) == _without_run_id(expected[name]), name
        assert pq.ParquetFile(tmp_path / f"{name}.parquet").metadata.num_row_groups >= (name == "sections") * 5
    run_ids = dict(zip(read_table(tmp_path, "documents")["doc_id"].to_pylist(),
                       read_table(tmp_path, "documents")["run_id"].to_pylist()))
    assert {run_ids[d] for d in jobs} == {"run-2"} and run_ids[ids[0]] is None

    # Changes: only the re-extracted documents, every one of them (titles all differ).
    assert {c["doc_id"] for c in changes if c["table"] == "documents"} == reprocessed
    assert read_table(tmp_path, "changes").num_rows == len(changes) == m.change_rows
    assert set(read_table(tmp_path, "changes")["new_rules_version"].to_pylist()) == {"new"}


def test_batches_must_come_in_doc_id_order(tmp_path):
    with StagedWrite(tmp_path) as stage:
        m = Merge(tmp_path, stage, "r", set(), set(), {})
        m.add(_tables({"b": 1}, "x"), "b")
        with pytest.raises(ValueError, match="out of order"):
            m.add(_tables({"a": 1}, "x"), "a")
    assert not (tmp_path / "sections.parquet").exists()  # nothing committed


def test_an_aborted_write_leaves_the_previous_tables(tmp_path):
    write_tables(tmp_path, _tables({"a": 2}, "old"))
    before = (tmp_path / "sections.parquet").read_bytes()
    with pytest.raises(RuntimeError):
        with StagedWrite(tmp_path) as stage:
            m = Merge(tmp_path, stage, "r", set(), {"a"}, {})
            m.add(_tables({"a": 3}, "new"), "a")
            m.finish()
            raise RuntimeError("killed before commit")
    assert (tmp_path / "sections.parquet").read_bytes() == before
    assert not any((tmp_path / ".staging").glob("*/*.parquet"))


# -- the pool's ordered batches ---------------------------------------------------------------

def _context() -> None:
    return None


def _sleep_then_echo(job, ctx):
    seconds, value = job
    time.sleep(seconds)
    if value < 0:
        raise MemoryError
    return value


def test_map_batches_yields_batches_in_job_order_with_failures_in_place():
    # Early jobs are slow: later ones finish first, yet batches come out whole and in order.
    jobs = [(0.3 if i % 5 == 0 else 0.0, -1 if i == 7 else i) for i in range(23)]
    with WorkerPool(2, _context, (), _sleep_then_echo, 30, 256) as pool:
        batches = list(pool.map_batches(jobs, 5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    for k, batch in enumerate(batches):
        assert sorted(job[1] for job, _ in batch) == sorted(j[1] for j in jobs[5 * k:5 * k + 5])
    results = {job[1]: value for b in batches for job, value in b}
    assert isinstance(results[-1], Failure) and results[-1].reason == "memory_limit"
    assert all(results[i] == i for i in range(23) if i != 7)


def test_map_batches_hands_out_jobs_at_most_two_batches_ahead():
    # A first job that never ends soon holds the window: the other worker stops after 2 batches.
    started = []
    jobs = [(2.0, 0)] + [(0.0, i) for i in range(1, 40)]
    with WorkerPool(2, _context, (), _sleep_then_echo, 30, 256) as pool:
        stream = pool._run(jobs, window=6)
        for index, job, value, _ in stream:
            started.append(index)
            if index == 0:
                break
    assert started[-1] == 0
    # Only jobs 1..5 ran before job 0 ended (the other worker may hold some of them behind job 0).
    assert set(started[:-1]) <= set(range(1, 6)) and started[:2] == [1, 2]


def test_within_the_window_the_costliest_jobs_go_first():
    # One worker holding one job at a time: jobs finish in the order they are handed out.
    jobs = [(0.0, i) for i in range(12)]
    cost = {0: 1, 1: 5, 2: 3, 3: 9, 4: 2, 5: 7, 6: 0, 7: 8, 8: 4, 9: 6, 10: 10, 11: 11}
    with WorkerPool(1, _context, (), _sleep_then_echo, 30, 256, prefetch_seconds=0) as pool:
        order = [job[1] for _, job, _, _ in pool._run(jobs, window=4, cost=lambda job: cost[job[1]])]
    # Never more than 4 places past the earliest unfinished job; the costliest allowed first.
    assert order == [3, 1, 2, 0, 7, 5, 4, 9, 8, 6, 11, 10]
    with WorkerPool(1, _context, (), _sleep_then_echo, 30, 256) as pool:
        batches = list(pool.map_batches(jobs, 4, cost=lambda job: cost[job[1]]))
    assert [sorted(j[1] for j, _ in b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def _echo_or_die(job, ctx):
    kind, value = job
    if kind == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        time.sleep(60)
    return value


def test_jobs_a_worker_holds_behind_a_killed_job_run_on_another_worker():
    # Short jobs: each worker holds many at once. A worker that dies, and one killed for its time
    # limit, give their waiting jobs back: every other job answers once, with its own value.
    jobs = [("ok", i) for i in range(200)]
    jobs[60], jobs[130] = ("die", 60), ("hang", 130)
    held = 0
    with WorkerPool(2, _context, (), _echo_or_die, 0.5, 256, prefetch_seconds=10) as pool:
        results = {}
        for _, job, value, _ in pool._run(jobs):
            held = max([held] + [len(w.queue) for w in pool._workers])
            assert job[1] not in results
            results[job[1]] = value
    assert held > 5  # jobs were waiting in the workers' pipes
    assert sorted(results) == list(range(200))
    assert results[60].reason == "memory_limit" and results[130].reason == "timeout"
    assert all(results[i] == i for i in range(200) if i not in (60, 130))
