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
import hashlib
import json
import os
import stat
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.document import Source
from pipeline.parse import parser_version, sniff
from pipeline.process import Job
from pipeline.readers import ReaderError, ReaderOptions
from pipeline.tables import SCHEMAS, TABLES, read_table, to_arrow

DATA_TABLES = ("documents", "sections", "responsibilities", "quantities", "terms")
TRIGGERS = ("manual", "schedule", "rules_changed", "reextract")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def _error_row(path: str, sha: Optional[str], stage: str, reason: str, message: str) -> dict:
    return {"source_path": path, "sha256": sha, "stage": stage, "reason": reason, "message": message}


def _display_path(rel: str) -> str:
    # Names with invalid UTF-8 bytes are kept faithfully as surrogate escapes and shown as \xNN.
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Scan:
    sources: list[tuple[Source, Path]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def scan_raw(raw: Path, cache_dir: Path, max_file_mb: float) -> Scan:
    """Every regular file under `raw` with its sha256 and format, plus one error per file that is not one.

    A file whose size and mtime are unchanged since the last scan is not opened again: its hash and
    format come from the manifest in the cache folder.
    """
    raw = Path(raw).resolve()
    manifest_path = Path(cache_dir) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        manifest = {}
    new_manifest: dict = {}
    scan = Scan()
    if not raw.is_dir():
        raise FileNotFoundError(f"raw folder {raw} does not exist")
    seen: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(raw, followlinks=False):
        dirnames.sort()
        # Symlinked directories are not followed; report them like any other non-regular entry.
        entries = sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in entries:
            p = Path(dirpath) / name
            rel = _display_path(str(p.relative_to(raw)))
            if name.startswith(".") or name.startswith("~$"):
                continue  # editor lock files and hidden files are not documents
            try:
                st = os.stat(p, follow_symlinks=True)
            except OSError as e:
                scan.errors.append(_error_row(rel, None, "scan", "not_a_regular_file", f"cannot stat: {e.strerror}"))
                continue
            if p.is_symlink():
                target = p.resolve()
                if raw not in target.parents:
                    scan.errors.append(_error_row(rel, None, "scan", "not_a_regular_file",
                                                  "a symlink pointing outside the raw folder"))
                    continue
            if not stat.S_ISREG(st.st_mode):
                kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, socket or device"
                scan.errors.append(_error_row(rel, None, "scan", "not_a_regular_file", f"{kind}, not a file"))
                continue
            if st.st_size == 0:
                scan.errors.append(_error_row(rel, None, "scan", "empty_file", "the file has no bytes"))
                continue
            if st.st_size > max_file_mb * 1024 * 1024:
                scan.errors.append(_error_row(rel, None, "scan", "too_large",
                                              f"{st.st_size / 1048576:.1f} MB is over the limit of {max_file_mb:g} MB"))
                continue
            key = str(p)
            prev = manifest.get(key)
            if prev and prev["size"] == st.st_size and prev["mtime_ns"] == st.st_mtime_ns:
                sha, fmt = prev["sha256"], prev["format"]
            else:
                sha = sha256_file(p)
                try:
                    fmt = sniff(p)
                except ReaderError as e:
                    fmt = None
                    scan.errors.append(_error_row(rel, sha, "sniff", e.reason, e.message))
                except OSError as e:
                    fmt = None
                    scan.errors.append(_error_row(rel, sha, "sniff", "corrupt", f"cannot read: {e.strerror}"))
            if fmt is None:
                continue  # (an unsupported file found again keeps its error from the manifest below)
            new_manifest[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha, "format": fmt}
            if sha in seen:
                scan.errors.append(_error_row(rel, sha, "scan", "duplicate", f"same bytes as {seen[sha]}"))
                continue
            seen[sha] = rel
            scan.sources.append((Source(path=rel, name=p.name, sha256=sha, size=st.st_size, format=fmt), p))
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(new_manifest, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, manifest_path)
    return scan


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
            errors.append(_error_row(job.source.path, job.source.sha256, value.stage, value.reason, value.message))
            status[value.reason] += 1
            continue
        for name, table_rows in value.tables.items():
            rows.setdefault(name, []).extend(table_rows)
        status["ok"] += 1
    return status


__all__ = ["scan_raw", "plan_run", "merge_tables", "collect", "run_record", "append_run",
           "new_run_id", "Scan", "Plan", "DATA_TABLES", "TABLES"]
