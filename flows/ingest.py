"""The `ingest` flow: every new or changed file under raw/ → tables in processed/.

Tasks wrap `pipeline.runtime.run` stages; documents go through in batches (one task per batch, so
Prefect's per-task cost stays small next to the work), and each batch is processed by the
worker-process pool, which enforces the per-file time and memory limits.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import multiprocessing as mp
import os
import time
from collections import deque
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa

from flows.api import LocalAPI
from flows.prefect_env import configure
from pipeline.config import load_settings, project_dir

configure(project_dir())

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402
from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402

from pipeline.config import Settings  # noqa: E402
from pipeline.readers import PARSER_VERSIONS, ReaderOptions, parser_version  # noqa: E402
from pipeline.rules import RuleSet  # noqa: E402
from pipeline.runtime import run as stages  # noqa: E402
from pipeline.runtime.job import process_encoded  # noqa: E402
from pipeline.runtime.lock import Busy, run_lock  # noqa: E402
from pipeline.runtime.workers import WorkerPool, make_work_context  # noqa: E402
from pipeline.stages.extract import load_rules  # noqa: E402

log = logging.getLogger("policy_pipeline")

# The flow process streams batches through many short-lived Arrow buffers: the system allocator
# gives their memory back, where Arrow's default (mimalloc) keeps it (≈ 40 MB more at peak, growing).
pa.set_memory_pool(pa.system_memory_pool())


def _fixed_mmap_threshold(size: int = 128 << 10) -> None:
    """Serve every allocation of `size` or more with its own mmap, returned whole when freed.

    glibc raises its mmap threshold each time such a block is freed (up to 32 MB), after which
    the Parquet pages and Arrow buffers of each batch are carved out of the heap and fragment it:
    a 10,000-document re-extraction then held ≈ 25–35 MB more at peak, growing with the corpus.
    Setting the threshold fixes it. Nothing happens on a C library without mallopt."""
    import ctypes

    try:  # the C library is among this process's own symbols (find_library would run ldconfig)
        ctypes.CDLL(None).mallopt(-3, size)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


_fixed_mmap_threshold()


MAX_BATCHES = 40  # per run: see _ingest_locked


@task(name="load-rules", cache_policy=NONE)
def load_rules_task(config_dir: Path) -> RuleSet:
    return load_rules(config_dir)


@task(name="scan-raw", cache_policy=NONE)
def scan_task(settings: Settings) -> stages.Scan:
    return stages.scan_raw(settings.raw_dir, settings.cache_dir, settings.max_file_mb)


@task(name="plan", cache_policy=NONE)
def plan_task(scan: stages.Scan, settings: Settings, rules: RuleSet, parsers: dict,
              reextract: bool) -> stages.Plan:
    previous = stages.Previous.read(settings.out_dir)
    return stages.plan_run(scan, previous, rules.version, parsers,
                           ReaderOptions(pdf_backend=settings.pdf_backend), force_reextract=reextract,
                           rule_versions=rules.file_versions)


@task(name="process-batch", cache_policy=NONE)
def process_batch(batches: Iterator, output: stages.RunOutput) -> dict:
    """The next batch from the worker pool's stream of batches (WorkerPool.map_batches), merged
    into the run's output. Only the outcome counts are returned: Prefect keeps every task's return
    value until the flow ends, and rows returned here would pile up for the whole corpus."""
    batch = stages.collect(next(batches))
    output.add(batch)
    return dict(batch.status)


@task(name="process-batch-on-cluster", cache_policy=NONE)
def process_batch_remote(jobs: list, context_args: tuple, n_workers: int, timeout: float,
                         memory_mb: int) -> stages.BatchResult:
    """A batch on a Dask worker: its own worker processes when the Dask worker may start them."""
    if not mp.current_process().daemon:
        with WorkerPool(n_workers, make_work_context, context_args, process_encoded, timeout, memory_mb) as pool:
            return stages.collect(pool.map(jobs))
    # A daemonic Dask worker cannot have children: run the jobs in it, without per-file limits.
    return stages.collect(stages.run_in_process(jobs, context_args))


@task(name="write-tables", cache_policy=NONE)
def finish_task(output: stages.RunOutput, scan_errors: list) -> dict:
    return output.finish(scan_errors)


@flow(name="ingest", log_prints=False, validate_parameters=False)
def ingest(raw_dir: Optional[str] = None, out_dir: Optional[str] = None,
           config_dir: Optional[str] = None, trigger: str = "manual",
           reextract: bool = False, pdf_backend: Optional[str] = None,
           workers: Optional[int] = None, cache_dir: Optional[str] = None,
           wait_if_busy: Optional[bool] = None, on_cluster: bool = False) -> dict:
    t0 = time.perf_counter()
    settings = load_settings(Path(config_dir) if config_dir else None, raw_dir=raw_dir,
                             out_dir=out_dir, cache_dir=cache_dir, pdf_backend=pdf_backend,
                             workers=workers)
    wait = settings.on_busy == "wait" if wait_if_busy is None else wait_if_busy
    try:
        with run_lock(settings.out_dir, wait=wait):
            summary = _ingest_locked(settings, trigger, reextract, on_cluster)
    except Busy as e:
        log.warning("%s", e)
        return {"busy": str(e)}
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def _ingest_locked(settings: Settings, trigger: str, reextract: bool, on_cluster: bool) -> dict:
    """The run itself, while this process holds the output folder's lock."""
    rules = load_rules_task(settings.config_dir)
    options = ReaderOptions(pdf_backend=settings.pdf_backend)
    parsers = {fmt: parser_version(fmt, options) for fmt in ("text", "docx", "pdf")}
    ctx = stages.RunContext(stages.new_run_id(), dt.datetime.now(dt.timezone.utc), trigger,
                            rules.version, parsers, rules.file_versions)
    scan = scan_task(settings)
    plan = plan_task(quote(scan), settings, rules, parsers, reextract)
    if plan.reextract and trigger in ("manual", "schedule") and not reextract:
        ctx.trigger = "rules_changed"
    log.info("%d files: %d new, %d changed, %d unchanged, %d removed; %d to process%s",
             len(scan.sources), plan.counts["new"], plan.counts["changed"], plan.counts["unchanged"],
             plan.counts["removed"], len(plan.jobs),
             f" (rules changed: re-extracting {', '.join(plan.tables)} from cached text)" if plan.reextract else "")

    # Workers load jieba's dictionary (~2 s) only when some job finds keywords.
    keywords = any("terms" in job.tables for job in plan.jobs)
    context_args = (str(settings.config_dir), rules.version, str(settings.cache_dir),
                    settings.pdf_backend, settings.terms_per_section, keywords)
    # batch_size documents per task, or more when a run has many: a run of 10,000 documents in
    # 157 tasks spent ~8 s of CPU in Prefect's task bookkeeping (client and API) on two cores.
    size = max(settings.batch_size, -(-len(plan.jobs) // MAX_BATCHES))
    batches = [plan.jobs[i:i + size] for i in range(0, len(plan.jobs), size)]
    output = stages.RunOutput(settings.out_dir, ctx, plan)
    pool = None
    try:
        done = 0
        if batches and on_cluster:
            futures = deque(process_batch_remote.submit(b, context_args, 1, settings.timeout_seconds,
                                                        settings.memory_limit_mb) for b in batches)
            while futures:
                batch = futures.popleft().result()  # the future goes with its rows, once merged
                output.add(batch)
                done += sum(batch.status.values())
                log.info("processed %d/%d files", done, len(plan.jobs))
        elif batches:
            pool = WorkerPool(min(settings.n_workers, len(plan.jobs)), make_work_context, context_args,
                              process_encoded, settings.timeout_seconds, settings.memory_limit_mb)
            stream = pool.map_batches(plan.jobs, size, cost=lambda job: job.source.size)
            for _ in batches:
                done += sum(process_batch(quote(stream), quote(output)).values())
                log.info("processed %d/%d files", done, len(plan.jobs))
        # quote(): Prefect would otherwise walk every job, row and error looking for futures.
        summary = finish_task(quote(output), quote(list(scan.errors)))
    except BaseException:
        output.abort()
        raise
    finally:
        if pool is not None:
            pool.close()
    summary.update(raw_dir=str(settings.raw_dir))
    return summary


def run_ingest(dask_address: Optional[str] = None, dask_workers: int = 2, **kwargs) -> dict:
    """Run the flow in this process against PREFECT_API_URL, or else Prefect's own temporary API
    (the CLI starts one first: flows/api.py).

    Settings and rule files are validated first, so a bad value stops the run with its own message
    before Prefect starts and before anything is written. With `dask_address` the batches run on
    that Dask cluster (`"local"`: a `distributed.LocalCluster` of `dask_workers` processes started
    for this run); the paths in raw/, the cache and the config must be reachable from its workers.
    """
    settings = load_settings(Path(kwargs["config_dir"]) if kwargs.get("config_dir") else None)
    load_rules(settings.config_dir)
    flow_ = ingest
    updates: dict = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if dask_address:
        flow_ = ingest.with_options(task_runner=dask_task_runner(dask_address, dask_workers))
        kwargs["on_cluster"] = True
        if not os.environ.get("PREFECT_API_URL"):
            # Dask workers report their task runs to the flow's API: start the embedded server
            # now and hand its address down, or each worker would start an API of its own.
            api = LocalAPI().start()
            atexit.register(api.stop)
            os.environ["PREFECT_API_URL"] = updates[PREFECT_API_URL] = api.wait()
    with temporary_settings(updates):
        return flow_(**kwargs)


def dask_task_runner(address: str, n_workers: int):
    from prefect_dask import DaskTaskRunner

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the cluster's INFO chatter is not ours

    if address == "local":
        import dask

        # Non-daemonic Dask workers may start the worker processes that enforce per-file limits.
        dask.config.set({"distributed.worker.daemon": False})
        return DaskTaskRunner(cluster_kwargs={"n_workers": n_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return DaskTaskRunner(address=address)


__all__ = ["ingest", "run_ingest", "PARSER_VERSIONS"]
