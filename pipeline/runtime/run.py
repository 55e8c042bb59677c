"""One ingest run, as plain functions the Prefect flow wires together:

    scan_raw → plan_run → (batches processed in worker processes → RunOutput.add) → RunOutput.finish

Files are identified by content (sha256). A run processes only files that are new or changed, or
every file when the rules or a reader changed (from the text cache, never re-parsing); the rows of
unchanged files are carried over from the previous tables, and the rows of removed files dropped.
Jobs run in doc_id order and every data table is kept sorted by doc_id (pipeline/store/merge.py), so the
tables after any sequence of runs equal those of one fresh run over the same `raw/` and `config/`
(run ids and timestamps aside), and a run streams: it never holds a whole table.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import Failure, failure_from
from pipeline.readers import ReaderOptions, parser_version
from pipeline.runtime.job import Job
from pipeline.runtime.scan import Scan, error_row, scan_raw
from pipeline.stages.extract import ALL_TABLES, tables_to_extract
from pipeline.store.merge import DATA_TABLES, Merge
from pipeline.store.tables import (
    SCHEMA_VERSION,
    SCHEMAS,
    TABLES,
    StagedWrite,
    count_rows,
    decode_rows,
    read_table,
    table_metadata,
    to_arrow,
)

TRIGGERS = ("manual", "schedule", "rules_changed", "reextract")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


@dataclass
class Previous:
    """What the last run left in the output folder."""

    documents: pa.Table
    errors: pa.Table
    last_run: Optional[dict]

    @classmethod
    def read(cls, out: Path) -> "Previous":
        runs = read_table(out, "runs")
        last = runs.slice(runs.num_rows - 1).to_pylist()[0] if runs.num_rows else None
        return cls(read_table(out, "documents"), read_table(out, "errors"), last)


@dataclass
class Plan:
    jobs: list[Job]
    keep: set[str]  # doc_ids whose previous rows are carried over
    reprocessed: set[str]  # doc_ids that had rows and are extracted again (their changes are reported)
    renamed: dict[str, str]  # doc_id → new source_path for unchanged files under a new name
    carried_errors: list[dict]  # errors of unchanged files that failed before: not retried
    counts: Counter
    reextract: bool
    previous_rules_version: Optional[str]
    # The tables a rule edit re-extracts, and the reprocessed documents that get only those (the
    # rest of their rows are carried over). New, changed or stale files, and a forced
    # re-extraction, get every table.
    tables: tuple[str, ...] = ALL_TABLES
    partial: set[str] = field(default_factory=set)

    @property
    def carried_tables(self) -> tuple[str, ...]:
        """The tables whose rows of the partly re-extracted documents are carried over."""
        return tuple(t for t in ALL_TABLES if t not in self.tables)


def plan_run(scan: Scan, previous: Previous, rules_version: str, parser_versions: dict,
             options: ReaderOptions, force_reextract: bool = False,
             rule_versions: Optional[dict] = None) -> Plan:
    """Decide per file: process it, carry its previous rows (or error) over, or drop it; and,
    after a rule edit, which of its tables to extract again (pipeline/stages/extract.py, TABLE_RULES).
    `rule_versions` are the rule files' hashes (RuleSet.file_versions); without them, a rule
    edit re-extracts every table."""
    prev = {d["doc_id"]: d for d in previous.documents.select(
        ["doc_id", "source_path", "rules_version", "parser_version"]).to_pylist()}
    prev_paths = {d["source_path"] for d in prev.values()}
    prev_failed = {(e["source_path"], e["sha256"]): e for e in previous.errors.to_pylist()
                   if e["stage"] not in ("scan", "sniff") and e["sha256"]}
    prev_paths |= {p for p, _ in prev_failed}
    last = previous.last_run or {}
    prev_rv = last.get("rules_version")
    reextract = force_reextract or (prev_rv is not None and prev_rv != rules_version)
    tables = ALL_TABLES
    if reextract and not force_reextract and rule_versions and last.get("rule_versions"):
        tables = tables_to_extract(json.loads(last["rule_versions"]), rule_versions)
    partial: set[str] = set()
    same_parsers = last.get("parser_versions") == json.dumps(parser_versions, sort_keys=True)

    counts: Counter = Counter()
    jobs, keep, reprocessed, renamed, carried = [], set(), set(), {}, []
    current_ids, current_paths = set(), set()
    for src, path in scan.sources:
        current_ids.add(src.doc_id)
        current_paths.add(src.path)
        old = prev.get(src.doc_id)
        failed = prev_failed.get((src.path, src.sha256))
        if old is None and failed is None:
            counts["changed" if src.path in prev_paths else "new"] += 1
            jobs.append(Job(src, str(path)))
            continue
        counts["unchanged"] += 1
        if failed is not None:
            if reextract or not same_parsers:
                jobs.append(Job(src, str(path)))
            else:
                carried.append({k: failed[k] for k in ("source_path", "sha256", "stage", "reason", "message")})
            continue
        if old["source_path"] != src.path:
            renamed[src.doc_id] = src.path
        stale = old["parser_version"] != parser_version(src.format, options)
        if reextract or stale or old["rules_version"] != rules_version:
            if tables != ALL_TABLES and not stale and old["rules_version"] == prev_rv:
                # The same text under an edited rule file: only the tables that depend on it.
                jobs.append(Job(src, str(path), tables))
                partial.add(src.doc_id)
            else:
                jobs.append(Job(src, str(path)))
            reprocessed.add(src.doc_id)
        else:
            keep.add(src.doc_id)
    counts["removed"] = sum(1 for d in prev.values()
                            if d["doc_id"] not in current_ids and d["source_path"] not in current_paths)
    counts["removed"] += sum(1 for p, sha in prev_failed if p not in current_paths)
    jobs.sort(key=lambda job: job.source.doc_id)  # the order the tables are kept in (pipeline/store/merge.py)
    return Plan(jobs, keep, reprocessed, renamed, carried, counts, reextract, prev_rv, tables, partial)


def nothing_changed(out: Path, plan: Plan, errors: list[dict]) -> bool:
    """True when this run would write the same tables as are there: then nothing is rewritten."""
    if plan.jobs or plan.renamed or plan.counts["removed"]:
        return False
    fields = ("source_path", "sha256", "stage", "reason", "message")
    old = sorted(tuple(e[k] for k in fields) for e in read_table(out, "errors").to_pylist())
    return old == sorted(tuple(e[k] for k in fields) for e in errors)


def untouched_tables(out: Path, plan: Plan) -> frozenset[str]:
    """The data tables this run would write exactly as they are, which it leaves in place: after
    a rule edit, a table that does not depend on the edited file and whose rows hold no
    rules_version (terms), when every job is such a partial re-extraction (no file is new, changed,
    stale or removed). A file written by another schema version, or not kept sorted by doc_id,
    is rewritten."""
    if plan.counts["removed"] or plan.renamed or any(job.source.doc_id not in plan.partial for job in plan.jobs):
        return frozenset()
    current = {"schema_version": SCHEMA_VERSION, "sorted_by": "doc_id"}
    return frozenset(t for t in plan.carried_tables if "rules_version" not in SCHEMAS[t].names
                     and current.items() <= table_metadata(out, t).items())


def run_record(run_id: str, started: dt.datetime, trigger: str, status: str, rules_version: str,
               parser_versions: dict, counts: Counter, n_failed: int,
               rule_versions: Optional[dict] = None) -> dict:
    ended = dt.datetime.now(dt.timezone.utc)
    return {
        "run_id": run_id, "started_at": started, "ended_at": ended, "trigger": trigger,
        "status": status, "rules_version": rules_version,
        "parser_versions": json.dumps(parser_versions, sort_keys=True),
        "rule_versions": json.dumps(rule_versions, sort_keys=True) if rule_versions else None,
        "n_new": counts.get("new", 0), "n_changed": counts.get("changed", 0),
        "n_unchanged": counts.get("unchanged", 0), "n_removed": counts.get("removed", 0),
        "n_failed": n_failed, "seconds": (ended - started).total_seconds(),
    }


@dataclass
class RunContext:
    run_id: str
    started: dt.datetime
    trigger: str
    rules_version: str
    parser_versions: dict
    rule_versions: Optional[dict] = None  # rule file → hash (RuleSet.file_versions)


class RunOutput:
    """Where one run's tables are written: opened before the first batch, fed batch after batch
    (`add`, batches in doc_id order, see pipeline/store/merge.py), committed by `finish`.

    Data tables are rewritten only when documents were processed, renamed or removed; the errors
    table when its contents change; the `runs` table always. Nothing is visible before `finish`
    commits, and an exception in between (`abort`) leaves the previous tables as they were."""

    def __init__(self, out: Path, ctx: RunContext, plan: Plan):
        self.out, self.ctx, self.plan = Path(out), ctx, plan
        self.errors: list[dict] = []
        self.status: Counter = Counter()
        self.stage = StagedWrite(self.out)
        self.merge: Optional[Merge] = None
        if plan.jobs or plan.renamed or plan.counts["removed"]:
            self.merge = Merge(self.out, self.stage, ctx.run_id, plan.keep, plan.reprocessed, plan.renamed,
                               {"old_rules_version": plan.previous_rules_version,
                                "new_rules_version": ctx.rules_version},
                               carried={t: plan.partial for t in plan.carried_tables},
                               rules_version=ctx.rules_version, untouched=untouched_tables(self.out, plan))

    def add(self, batch: "BatchResult") -> None:
        self.errors += batch.errors
        self.status += batch.status
        if batch.last_id is not None:
            self.merge.add(batch.tables, batch.last_id, batch.failed)

    def abort(self) -> None:
        self.stage.abort()

    def finish(self, scan_errors: list[dict]) -> dict:
        """Write errors, changes and the run record, commit, and say what the run did."""
        plan, ctx = self.plan, self.ctx
        errors = scan_errors + self.errors + plan.carried_errors
        unchanged = self.merge is None and nothing_changed(self.out, plan, errors)
        if self.merge is not None:
            self.merge.finish()
        if not unchanged:
            old_errors = {(e["source_path"], e["sha256"]): e["run_id"]
                          for e in read_table(self.out, "errors").to_pylist()}
            carried = {id(e) for e in plan.carried_errors}
            for e in errors:
                # An error carried over keeps the run that found it, like carried-over rows do.
                e["run_id"] = old_errors.get((e["source_path"], e["sha256"])) if id(e) in carried else ctx.run_id
            self.stage.append("errors", _sorted(to_arrow("errors", errors), "source_path"))
        if plan.reprocessed or not (self.out / "changes.parquet").exists():
            if "changes" not in self.stage.staged():
                self.stage.append("changes", to_arrow("changes", []))
        record = run_record(ctx.run_id, ctx.started, ctx.trigger, "completed", ctx.rules_version,
                            ctx.parser_versions, plan.counts, len(errors), ctx.rule_versions)
        self.stage.append("runs", append_run(self.out, record))
        self.stage.commit()

        changes = None
        if plan.reprocessed:
            names = {job.source.doc_id: job.source.path for job in plan.jobs}
            changes = self.merge.changes.text(names)
        return {
            "run_id": ctx.run_id, "trigger": ctx.trigger, "rules_version": ctx.rules_version,
            "previous_rules_version": plan.previous_rules_version, "out_dir": str(self.out),
            "tables_extracted": list(plan.tables) if plan.reprocessed else None,
            "tables_carried": list(plan.carried_tables) if plan.reprocessed else None,
            "files": dict(plan.counts), "processed": len(plan.jobs),
            "errors": dict(Counter(e["reason"] for e in errors)),
            "nothing_changed": unchanged,
            "rows": {name: count_rows(self.out, name) for name in TABLES},
            "changes": changes,
            "n_changes": self.merge.change_rows if self.merge is not None else 0,
            "status": dict(self.status),
        }


def _sorted(table: pa.Table, key: str) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[(key, "ascending")]))


def append_run(out: Path, record: dict) -> pa.Table:
    old = read_table(out, "runs")
    return pa.concat_tables([old, to_arrow("runs", [record])])


@dataclass
class BatchResult:
    """One batch's output: its rows as Arrow tables (compact, and opaque to Prefect's parameter
    introspection, which would otherwise walk every row), its error rows, outcome counts, and the
    last doc_id of its jobs (batches arrive in doc_id order; None for an empty batch), and the
    doc_ids of its failed jobs."""

    tables: dict[str, pa.Table]
    errors: list[dict]
    status: Counter
    last_id: Optional[str]
    failed: frozenset[str] = frozenset()


def collect(results: Iterable) -> BatchResult:
    """Fold (job, encoded rows | Failure) pairs into per-table Arrow tables and error rows."""
    parts: dict[str, list[pa.Table]] = {name: [] for name in DATA_TABLES}
    errors: list[dict] = []
    status: Counter = Counter()
    last_id = None
    failed = set()
    for job, value in results:
        last_id = max(last_id or "", job.source.doc_id)
        if isinstance(value, Failure):
            errors.append(error_row(job.source.path, job.source.sha256, value.stage, value.reason, value.message))
            status[value.reason] += 1
            failed.add(job.source.doc_id)
            continue
        for name, table in decode_rows(value).items():
            parts[name].append(table)
        status["ok"] += 1
    tables = {name: pa.concat_tables(p) if p else to_arrow(name, []) for name, p in parts.items()}
    return BatchResult(tables, errors, status, last_id, frozenset(failed))


def run_in_process(jobs: Iterable, context_args: tuple) -> Iterator[tuple]:
    """The jobs in this process, one after the other: no time or memory limit (see WorkerPool)."""
    from pipeline.runtime.job import process_encoded
    from pipeline.runtime.workers import make_work_context

    ctx = make_work_context(*context_args)
    for job in jobs:
        try:
            yield job, process_encoded(job, ctx)
        except Exception as e:
            yield job, failure_from(e)


__all__ = ["scan_raw", "plan_run", "collect", "RunOutput", "new_run_id", "BatchResult",
           "Previous", "RunContext", "Scan", "Plan", "DATA_TABLES", "TABLES"]
