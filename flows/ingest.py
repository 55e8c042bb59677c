"""The `ingest` flow: every new or changed file under raw/ → tables in processed/.

Tasks wrap `pipeline.run` stages; documents go through in batches (one task per batch, so
Prefect's per-task cost stays small next to the work), and each batch is processed by the
worker-process pool, which enforces the per-file time and memory limits.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from flows.prefect_env import configure
from pipeline.config import load_settings, project_dir

configure(project_dir())

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402

from pipeline import run as stages  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.parse import parser_version  # noqa: E402
from pipeline.process import process_job  # noqa: E402
from pipeline.readers import PARSER_VERSIONS, ReaderOptions  # noqa: E402
from pipeline.rules import RuleSet, load_rules  # noqa: E402
from pipeline.tables import read_table, write_tables  # noqa: E402
from pipeline.workers import WorkerPool, make_work_context  # noqa: E402

log = logging.getLogger("policy_pipeline")


@task(name="load-rules", cache_policy=NONE)
def load_rules_task(config_dir: Path) -> RuleSet:
    return load_rules(config_dir)


@task(name="scan-raw", cache_policy=NONE)
def scan_task(settings: Settings) -> stages.Scan:
    return stages.scan_raw(settings.raw_dir, settings.cache_dir, settings.max_file_mb)


@task(name="process-batch", cache_policy=NONE)
def process_batch(pool: WorkerPool, jobs: list) -> tuple[dict, list, Counter]:
    rows: dict = {}
    errors: list = []
    status = stages.collect(pool.map(jobs), rows, errors)
    return rows, errors, status


@task(name="write-tables", cache_policy=NONE)
def write_task(out: Path, tables: dict) -> None:
    write_tables(out, tables)


@flow(name="ingest", log_prints=False, validate_parameters=False)
def ingest(raw_dir: Optional[str] = None, out_dir: Optional[str] = None,
           config_dir: Optional[str] = None, trigger: str = "manual",
           reextract: bool = False, pdf_backend: Optional[str] = None,
           workers: Optional[int] = None, cache_dir: Optional[str] = None) -> dict:
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    settings = load_settings(Path(config_dir) if config_dir else None, raw_dir=raw_dir,
                             out_dir=out_dir, cache_dir=cache_dir, pdf_backend=pdf_backend,
                             workers=workers)
    rules = load_rules_task(settings.config_dir)
    run_id = stages.new_run_id()
    options = ReaderOptions(pdf_backend=settings.pdf_backend)

    scan = scan_task(settings)
    previous = read_table(settings.out_dir, "documents")
    plan = stages.plan_run(scan, previous, rules.version, options, force_reextract=reextract)
    if plan.reextract and trigger == "manual" and not reextract:
        trigger = "rules_changed"
    log.info("%d files: %d new, %d changed, %d unchanged, %d removed; %d to process%s",
             len(scan.sources), plan.counts["new"], plan.counts["changed"], plan.counts["unchanged"],
             plan.counts["removed"], len(plan.jobs), " (rules changed: re-extracting)" if plan.reextract else "")

    rows: dict = {}
    errors = list(scan.errors)
    status: Counter = Counter()
    if plan.jobs:
        n = min(settings.n_workers, len(plan.jobs))
        context_args = (rules, str(settings.config_dir), str(settings.cache_dir),
                        settings.pdf_backend, settings.terms_per_section)
        with WorkerPool(n, make_work_context, context_args, process_job,
                        settings.timeout_seconds, settings.memory_limit_mb) as pool:
            size = settings.batch_size
            for i in range(0, len(plan.jobs), size):
                batch = plan.jobs[i:i + size]
                b_rows, b_errors, b_status = process_batch(pool, batch)
                for name, r in b_rows.items():
                    rows.setdefault(name, []).extend(r)
                errors += b_errors
                status += b_status
                log.info("processed %d/%d files", min(i + size, len(plan.jobs)), len(plan.jobs))

    tables = stages.merge_tables(settings.out_dir, plan, rows, run_id, errors)
    parsers = {fmt: parser_version(fmt, options) for fmt in ("text", "docx", "pdf")}
    record = stages.run_record(run_id, started, trigger, "completed", rules.version, parsers,
                               plan.counts, len(errors))
    tables["runs"] = stages.append_run(settings.out_dir, record)
    write_task(settings.out_dir, tables)

    return {
        "run_id": run_id, "trigger": trigger, "rules_version": rules.version,
        "out_dir": str(settings.out_dir), "raw_dir": str(settings.raw_dir),
        "files": dict(plan.counts), "processed": len(plan.jobs), "status": dict(status),
        "errors": Counter(e["reason"] for e in errors),
        "rows": {name: t.num_rows for name, t in tables.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_ingest(**kwargs) -> dict:
    """Run the flow in this process against the embedded Prefect API (or PREFECT_API_URL).

    Settings and rule files are validated first, so a bad value stops the run with its own message
    before Prefect starts and before anything is written.
    """
    settings = load_settings(Path(kwargs["config_dir"]) if kwargs.get("config_dir") else None)
    load_rules(settings.config_dir)
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return ingest(**kwargs)


__all__ = ["ingest", "run_ingest", "PARSER_VERSIONS"]
