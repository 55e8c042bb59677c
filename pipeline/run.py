"""One ingest run, as plain functions the Prefect flow wires together:

    scan_raw → plan_run → (process batches in worker processes) → merge_tables → write_tables

Files are identified by content (sha256). A run processes only files that are new or changed, or
every file when the rules or a reader changed (from the text cache, never re-parsing); the rows of
unchanged files are carried over from the previous tables, and the rows of removed files dropped.
Merging sorts rows by document in a fixed order, so the tables after any sequence of runs equal
those of one fresh run over the same `raw/` and `config/` (run ids and timestamps aside).
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.parse import parser_version
from pipeline.process import Job
from pipeline.readers import ReaderOptions
from pipeline.scan import Scan, error_row, scan_raw
from pipeline.tables import SCHEMAS, TABLES, read_table, to_arrow

DATA_TABLES = ("documents", "sections", "responsibilities", "quantities", "terms")
TRIGGERS = ("manual", "schedule", "rules_changed", "reextract")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


@dataclass
class Plan:
    jobs: list[Job]
    keep: set[str]  # doc_ids whose previous rows are carried over
    renamed: dict[str, str]  # doc_id → new source_path for unchanged files under a new name
    counts: Counter
    reextract: bool
    previous_rules_version: Optional[str]


def plan_run(scan: Scan, previous_docs: pa.Table, rules_version: str, options: ReaderOptions,
             force_reextract: bool = False) -> Plan:
    prev = {d["doc_id"]: d for d in previous_docs.select(
        ["doc_id", "source_path", "rules_version", "parser_version"]).to_pylist()}
    prev_paths = {d["source_path"]: d["doc_id"] for d in prev.values()}
    prev_rv = Counter(d["rules_version"] for d in prev.values()).most_common(1)
    prev_rv = prev_rv[0][0] if prev_rv else None
    reextract = force_reextract or (prev_rv is not None and prev_rv != rules_version)
    counts: Counter = Counter()
    jobs, keep, renamed = [], set(), {}
    current = set()
    for src, path in scan.sources:
        current.add(src.doc_id)
        old = prev.get(src.doc_id)
        if old is None:
            counts["changed" if src.path in prev_paths else "new"] += 1
            jobs.append(Job(src, str(path)))
            continue
        counts["unchanged"] += 1
        if old["source_path"] != src.path:
            renamed[src.doc_id] = src.path
        stale = old["parser_version"] != parser_version(src.format, options)
        if reextract or stale or old["rules_version"] != rules_version:
            jobs.append(Job(src, str(path)))
        else:
            keep.add(src.doc_id)
    counts["removed"] = sum(1 for d in prev.values()
                            if d["doc_id"] not in current and d["source_path"] not in
                            {s.path for s, _ in scan.sources})
    return Plan(jobs, keep, renamed, counts, reextract, prev_rv)


def merge_tables(out: Path, plan: Plan, results: dict[str, list[dict]], run_id: str,
                 errors: list[dict]) -> dict[str, pa.Table]:
    """Previous rows of kept documents + this run's rows, in a fixed order."""
    merged: dict[str, pa.Table] = {}
    keep = pa.array(sorted(plan.keep), pa.string())
    for name in DATA_TABLES:
        rows = results.get(name, [])
        for r in rows:
            r["run_id"] = run_id
        new = to_arrow(name, rows)
        old = read_table(out, name)
        old = old.filter(pc.is_in(old["doc_id"], value_set=keep)) if old.num_rows else old
        if name == "documents" and plan.renamed and old.num_rows:
            paths = [plan.renamed.get(d, p) for d, p in zip(old["doc_id"].to_pylist(),
                                                             old["source_path"].to_pylist())]
            old = old.set_column(old.schema.get_field_index("source_path"), "source_path",
                                 pa.array(paths, pa.string()))
            names = [Path(p).name for p in paths]
            old = old.set_column(old.schema.get_field_index("source_name"), "source_name",
                                 pa.array(names, pa.string()))
        table = pa.concat_tables([old.cast(SCHEMAS[name]), new])
        key = "source_path" if name == "documents" else "doc_id"
        merged[name] = table.take(pc.sort_indices(table, sort_keys=[(key, "ascending")]))
    for e in errors:
        e["run_id"] = run_id
    err = to_arrow("errors", errors)
    merged["errors"] = err.take(pc.sort_indices(err, sort_keys=[("source_path", "ascending")]))
    return merged


def run_record(run_id: str, started: dt.datetime, trigger: str, status: str, rules_version: str,
               parser_versions: dict, counts: Counter, n_failed: int) -> dict:
    ended = dt.datetime.now(dt.timezone.utc)
    return {
        "run_id": run_id, "started_at": started, "ended_at": ended, "trigger": trigger,
        "status": status, "rules_version": rules_version,
        "parser_versions": json.dumps(parser_versions, sort_keys=True),
        "n_new": counts.get("new", 0), "n_changed": counts.get("changed", 0),
        "n_unchanged": counts.get("unchanged", 0), "n_removed": counts.get("removed", 0),
        "n_failed": n_failed, "seconds": (ended - started).total_seconds(),
    }


def append_run(out: Path, record: dict) -> pa.Table:
    old = read_table(out, "runs")
    return pa.concat_tables([old, to_arrow("runs", [record])])


def collect(results: Iterable, rows: dict[str, list[dict]], errors: list[dict]) -> Counter:
    """Fold (job, DocRows | Failure) pairs into per-table row lists and error rows."""
    from pipeline.workers import Failure

    status: Counter = Counter()
    for job, value in results:
        if isinstance(value, Failure):
            errors.append(error_row(job.source.path, job.source.sha256, value.stage, value.reason, value.message))
            status[value.reason] += 1
            continue
        for name, table_rows in value.tables.items():
            rows.setdefault(name, []).extend(table_rows)
        status["ok"] += 1
    return status


__all__ = ["scan_raw", "plan_run", "merge_tables", "collect", "run_record", "append_run",
           "new_run_id", "Scan", "Plan", "DATA_TABLES", "TABLES"]
