"""A pool of worker processes with a time and memory limit per job (the Tika "forked parser" model).

Each worker is a spawned process that builds its WorkContext once, loads what every job needs
(parser libraries, the jieba dictionary), tells the pool it is ready, and then runs jobs one at a
time. The limits:

- time: `timeout_seconds` is CPU time (user + system) the job may use, polled from /proc every
  0.2 s, so a busy or overloaded machine never turns a good file into a timeout and a slow file
  is stopped after the same amount of work everywhere. A job that blocks without using CPU is
  stopped after WALL_FACTOR x timeout_seconds of wall-clock time. Either way the worker is killed
  (SIGKILL) and replaced, and the job is reported as `timeout`. The clock starts when the job is
  handed to a ready worker: a replacement worker's start-up is never charged to the next file.
  (Without /proc the limit is wall-clock time.)
- memory: after loading, the worker limits its address space (RLIMIT_AS) to what it uses idle
  plus `memory_limit_mb`, so the limit is what one file may add, whatever the libraries and the
  dictionary cost. A job that hits it gets MemoryError, or a library reports a failed allocation
  in its own words (libxml2: "unknown error"); a failure after the job's address space came
  within 20% of the limit is reported as `memory_limit` either way. A worker that got near its
  limit retires after answering (its heap is fragmented), and a worker that dies outright
  (SIGSEGV/SIGABRT from a failed allocation in C, the kernel's OOM killer) is replaced and its
  job reported as `memory_limit`.

Other jobs never wait on a bad one longer than its own limit, and the pool never hands back
partial rows: a job yields its complete result or one Failure.

Every finished job is logged on the `policy_pipeline.workers` logger (DEBUG; WARNING for a killed
worker) with a `job_stats` attribute (JobStats: wall and CPU seconds, the worker's peak resident
memory during the job, its idle size), which is what `bench/hostile.py` reports.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import resource
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

from pipeline.errors import Failure, failure_from

log = logging.getLogger("policy_pipeline.workers")

# A worker that has not loaded within this many seconds is broken (not slow): the run fails.
START_TIMEOUT_SECONDS = 180.0
# Share of the memory budget after which a failing job is taken to have run out of memory.
NEAR_LIMIT = 0.8
# A job that uses no CPU (blocked) is stopped after this many times timeout_seconds of wall time.
WALL_FACTOR = 3
POLL_SECONDS = 0.2
# A worker holds the next jobs as well as the running one, about this many seconds of work (from
# the mean time of the jobs so far, at most MAX_PREFETCH jobs): it goes on without waiting for the
# pool's process, which is busy merging batches in between. Each job's time limit still starts
# when the job before it answers. Jobs of 50 ms or more (a PDF) are handed out one at a time: the
# round trip is small next to them, and a job queued behind a long one would wait for it.
PREFETCH_SECONDS = 0.1
MAX_PREFETCH = 32


@dataclass(frozen=True)
class JobStats:
    """How one job went: wall seconds from hand-over to answer (or kill), CPU seconds the worker
    spent on it, and the worker's peak resident memory during the job and when idle (MB; None
    when /proc is not available)."""

    seconds: float
    outcome: str  # "ok" or the Failure reason
    peak_rss_mb: Optional[float] = None
    idle_rss_mb: Optional[float] = None
    cpu_seconds: Optional[float] = None


def _status_kbs(fields: tuple[str, ...], pid: Union[int, str] = "self") -> tuple[Optional[int], ...]:
    """The given `/proc/PID/status` fields (kB), read at once; None for each one not available."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            data = fh.read()
    except OSError:
        return (None,) * len(fields)
    out = []
    for f in fields:
        i = data.find(b"\n" + f.encode() + b":")
        try:
            out.append(None if i < 0 else int(data[i + len(f) + 2:data.index(b"\n", i + 1)].split()[0]))
        except (ValueError, IndexError):
            out.append(None)
    return tuple(out)


def _status_kb(field: str, pid: Union[int, str] = "self") -> Optional[int]:
    return _status_kbs((field,), pid)[0]


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU time of process `pid` (Linux /proc), None when unavailable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
        fields = data[data.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def _own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _reset_peak_rss() -> None:
    """Reset VmHWM so it measures the next job only (Linux ≥ 4.0; harmless elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def _mb(kb: Optional[int]) -> Optional[float]:
    return None if kb is None else round(kb / 1024, 1)


def _limit_memory(memory_mb: int) -> tuple[int, int]:
    """Cap the address space at the current size + memory_mb; (budget start, limit) in bytes."""
    base_kb = _status_kb("VmSize")
    base = (base_kb or 0) * 1024
    limit = base + memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return base, limit


def _worker_main(conn: Connection, make_context: Callable, context_args: tuple, run: Callable,
                 memory_mb: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    try:
        ctx = make_context(*context_args)
    except Exception as e:  # a worker that cannot start fails the run, not each file
        conn.send(("fatal", f"{type(e).__name__}: {e}"))
        return
    base, limit = _limit_memory(memory_mb)
    near = base + NEAR_LIMIT * (limit - base)
    idle_rss = _mb(_status_kb("VmRSS"))
    conn.send(("ready", idle_rss))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        _reset_peak_rss()
        cpu0 = _own_cpu()
        out_of_memory = False
        try:
            result = ("ok", run(job, ctx))
        except Exception as e:  # the worker survives; the job is reported, not retried
            out_of_memory = isinstance(e, MemoryError)
            result = ("err", failure_from(e, memory_mb))
        peak_vm_kb, peak_rss_kb = _status_kbs(("VmPeak", "VmHWM"))  # one read: it runs for every job
        peak_vm = (peak_vm_kb or 0) * 1024
        if peak_vm >= near:
            # Close to the limit: a library that failed to allocate may have said so in other words.
            if result[0] == "err" and result[1].reason != "memory_limit":
                result = ("err", Failure("memory_limit",
                                         f"needed more than {memory_mb} MB ({result[1].reason}: {result[1].message})"))
            out_of_memory = True
        stats = (_mb(peak_rss_kb), idle_rss, round(_own_cpu() - cpu0, 3))
        try:
            conn.send((*result, stats, out_of_memory))
        except MemoryError:
            conn.send(("err", Failure("memory_limit", f"result larger than {memory_mb} MB"), stats, True))
        if out_of_memory:
            return  # retire: the pool starts a fresh worker


class WorkerStartError(RuntimeError):
    """A worker process could not build its context (e.g. the rule files changed mid-run)."""


class _Worker:
    def __init__(self, pool: "WorkerPool"):
        parent, child = pool._ctx.Pipe()
        self.proc = pool._ctx.Process(
            target=_worker_main,
            args=(child, pool.make_context, pool.context_args, pool.run, pool.memory_mb),
            daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.ready = False
        self.start_deadline = time.monotonic() + START_TIMEOUT_SECONDS
        self.idle_rss_mb: Optional[float] = None
        self.gone = False  # a job could not be sent: the process has died, its death is reported by _run
        # (place in the jobs given to the pool, job) handed over and not answered yet: the first
        # one runs, the others wait in the worker's pipe (see PREFETCH_SECONDS).
        self.queue: deque = deque()
        self.started = 0.0  # when the running job started (was handed over, or its predecessor answered)
        self.deadline = 0.0  # wall-clock
        self.cpu0: Optional[float] = None  # the worker's CPU time at `started`

    def start_clock(self, timeout: float) -> None:
        """The first job of the queue starts now: its time limit counts from here."""
        self.cpu0 = _cpu_seconds(self.proc.pid)
        self.started = time.monotonic()
        self.deadline = self.started + timeout * (WALL_FACTOR if self.cpu0 is not None else 1)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _job_name(job) -> str:
    source = getattr(job, "source", None)
    return getattr(source, "path", None) or repr(job)


class WorkerPool:
    """`map(jobs)` yields (job, result | Failure) as jobs finish, `map_batches(jobs, size)` batches of
    results in the jobs' order; workers persist across calls."""

    def __init__(self, n: int, make_context: Callable, context_args: tuple, run: Callable,
                 timeout_seconds: float, memory_mb: int, prefetch_seconds: float = PREFETCH_SECONDS):
        self.n = max(1, n)
        self.prefetch_seconds = prefetch_seconds
        self.make_context, self.context_args, self.run = make_context, context_args, run
        self.timeout, self.memory_mb = timeout_seconds, memory_mb
        # Workers are forked from a fork server that has already imported the parsers: a worker
        # starts in milliseconds instead of re-importing them (seconds), and never inherits the
        # threads of the flow process, as a plain fork would.
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._workers: list[_Worker] = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure(self) -> None:
        self._workers = [w for w in self._workers if w.proc.is_alive()]
        while len(self._workers) < self.n:
            self._workers.append(_Worker(self))

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers.remove(w)
        self._workers.append(_Worker(self))

    def map(self, jobs: Iterable) -> Iterator[tuple[object, Union[object, Failure]]]:
        for job, value, _stats in self.map_with_stats(jobs):
            yield job, value

    def map_with_stats(self, jobs: Iterable) -> Iterator[tuple[object, Union[object, Failure], JobStats]]:
        for _, job, value, stats in self._run(jobs):
            yield job, value, stats

    def map_batches(self, jobs: Sequence, size: int,
                    cost: Optional[Callable] = None) -> Iterator[list[tuple[object, Union[object, Failure]]]]:
        """The results of `size` consecutive jobs at a time, batch after batch in the jobs' order.

        Workers are fed continuously: while a batch waits for its last job, they already run the
        next batch's jobs (never more than two batches ahead), so no worker idles at a batch's end
        and at most about three batches of results are held. Within that window, jobs of higher
        `cost(job)` (e.g. file size) are handed out first."""
        n = len(jobs)
        n_batches = -(-n // size)
        done: dict[int, list] = {}
        next_batch = 0
        for i, job, value, _ in self._run(jobs, window=2 * size, cost=cost):
            done.setdefault(i // size, []).append((job, value))
            while next_batch < n_batches and len(done.get(next_batch, ())) == min(size, n - next_batch * size):
                yield done.pop(next_batch)
                next_batch += 1

    def _run(self, jobs: Iterable, window: Optional[int] = None, cost: Optional[Callable] = None):
        """(index, job, result | Failure, stats) as jobs finish. With `window`, a job is handed out
        only while it is fewer than `window` places after the earliest job not yet finished; among
        those, the one of highest `cost(job)` goes first (the longest jobs start early rather than
        finish last, alone, while the other workers idle)."""
        pending = list(enumerate(jobs))
        costs = [cost(job) for _, job in pending] if cost is not None else None
        pending.reverse()  # next job at the end: pop() is O(1)
        self._ensure()
        mean: Optional[float] = None  # seconds per job, a moving average
        while pending or any(w.queue for w in self._workers):
            depth = 1 if mean is None else max(1, min(MAX_PREFETCH, int(self.prefetch_seconds / max(mean, 1e-6))))
            self._hand_out(pending, depth, window, costs, mean)
            now = time.monotonic()
            waiting = [w for w in self._workers if w.queue or not w.ready]
            deadlines = [w.deadline if w.ready else w.start_deadline for w in waiting]
            if any(w.ready and w.cpu0 is not None for w in waiting):
                deadlines.append(now + POLL_SECONDS)
            wait_for = max(0.0, min(deadlines) - time.monotonic())
            ready = wait([w.conn for w in waiting] + [w.proc.sentinel for w in waiting], timeout=wait_for)
            for w in list(waiting):
                if not w.ready:
                    self._starting(w, ready)
                    continue
                if w.conn in ready:
                    try:
                        status, value, (peak, idle, cpu), retire = w.conn.recv()
                    except (EOFError, OSError):
                        value, peak = self._death(w), _mb(_status_kb("VmHWM", w.proc.pid))
                        idle, cpu, retire = w.idle_rss_mb, self._cpu_used(w), True
                elif w.proc.sentinel in ready:
                    value, peak, idle, cpu, retire = self._death(w), None, w.idle_rss_mb, None, True
                else:
                    cpu = self._cpu_used(w)
                    if cpu is not None and cpu >= self.timeout:
                        msg = f"used {cpu:.1f} s of CPU (limit {self.timeout:g} s); the worker was killed"
                    elif time.monotonic() >= w.deadline:
                        msg = (f"no result within {time.monotonic() - w.started:.0f} s "
                               f"(limit {self.timeout:g} s{' of CPU' if w.cpu0 is not None else ''}); "
                               "the worker was killed")
                    else:
                        continue
                    value, peak = Failure("timeout", msg), _mb(_status_kb("VmHWM", w.proc.pid))
                    idle, retire = w.idle_rss_mb, True
                index, job = w.queue.popleft()
                stats = self._stats(w, job, value, peak, idle, cpu)
                mean = stats.seconds if mean is None else 0.8 * mean + 0.2 * stats.seconds
                if retire:  # the worker is gone or going: its other jobs go back to the others
                    pending.extend(w.queue)
                    pending.sort(key=lambda x: -x[0])
                    w.queue.clear()
                    self._replace(w)
                elif w.queue:
                    w.start_clock(self.timeout)
                yield index, job, value, stats

    def _hand_out(self, pending: list, depth: int, window: Optional[int], costs: Optional[list],
                  mean: Optional[float]) -> None:
        """Fill ready workers' queues up to `depth` jobs from `pending`, one job at a time to the
        worker with the fewest jobs (then the most recently started one). A worker whose running
        job has taken much longer than the mean gets no more: they would wait behind it."""
        while pending:
            now = time.monotonic()
            free = [w for w in self._workers if w.ready and not w.gone and len(w.queue) < depth
                    and (not w.queue or mean is None or now - w.started <= 2 * mean + 0.05)]
            if not free:
                return
            w = min(free, key=lambda x: (len(x.queue), now - x.started if x.queue else 0.0))
            pick = len(pending) - 1
            if window is not None:
                earliest = min([i for x in self._workers for i, _ in x.queue] + [pending[-1][0]])
                if pending[-1][0] >= earliest + window:
                    return
                if costs is not None:  # the allowed jobs are the last ones of `pending`
                    best, k, limit = costs[pending[pick][0]], pick - 1, earliest + window
                    while k >= 0 and pending[k][0] < limit:
                        c = costs[pending[k][0]]
                        if c > best:
                            pick, best = k, c
                        k -= 1
            index, job = pending.pop(pick)
            try:
                w.conn.send(job)
            except OSError:  # BrokenPipeError: it died (a job it holds killed it) since the last look
                pending.insert(pick, (index, job))
                w.gone = True
                if not w.queue:  # nothing of it left for _run to wait on and report: replace it now
                    self._replace(w)
                continue
            w.queue.append((index, job))
            if len(w.queue) == 1:
                w.start_clock(self.timeout)

    @staticmethod
    def _cpu_used(w: _Worker) -> Optional[float]:
        if w.cpu0 is None:
            return None
        now = _cpu_seconds(w.proc.pid)
        return None if now is None else round(now - w.cpu0, 3)

    def _starting(self, w: _Worker, ready: list) -> None:
        if w.conn in ready:
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.proc.join(1)
                raise WorkerStartError(f"a worker exited while starting (exit code {w.proc.exitcode})") from None
            if msg[0] == "fatal":
                raise WorkerStartError(msg[1])
            w.ready, w.idle_rss_mb = True, msg[1]
        elif w.proc.sentinel in ready:
            w.proc.join(1)
            raise WorkerStartError(f"a worker exited while starting (exit code {w.proc.exitcode})")
        elif time.monotonic() >= w.start_deadline:
            raise WorkerStartError(f"a worker did not start within {START_TIMEOUT_SECONDS:g} s")

    def _stats(self, w: _Worker, job, value, peak: Optional[float], idle: Optional[float],
               cpu: Optional[float]) -> JobStats:
        outcome = value.reason if isinstance(value, Failure) else "ok"
        stats = JobStats(round(time.monotonic() - w.started, 3), outcome, peak, idle, cpu)
        level = logging.WARNING if outcome in ("timeout", "memory_limit") else logging.DEBUG
        log.log(level, "%s: %s in %.2f s (CPU %s s), peak %s MB (idle %s MB)", _job_name(job), outcome,
                stats.seconds, cpu, peak, idle, extra={"job_stats": stats, "job": job})
        return stats

    def _death(self, w: _Worker) -> Failure:
        w.proc.join(1)
        code = w.proc.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            return Failure("memory_limit",
                           f"the worker died with {name} (limit {self.memory_mb} MB); most often memory exhaustion")
        return Failure("memory_limit", f"the worker exited with code {code} while parsing")

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in self._workers:
            w.proc.join(2)
            w.kill()
        self._workers = []


PRELOAD = ["charset_normalizer", "lxml.etree", "pdfplumber", "pikepdf", "pypdfium2", "jieba",
           "jieba.analyse", "pipeline.runtime.job", "pipeline.rules"]


def make_work_context(config_dir: str, rules_version: str, cache_dir: str, pdf_backend: str,
                      terms_per_section: int, preload_keywords: bool = True):
    """Build a worker's context and load what every job needs, so that the memory limit set after
    this measures one file's needs.

    The worker loads the rule files itself (a few KB of arguments keep worker start-up fast) and
    refuses to start when they are not the ones the run validated (`rules_version`). Without
    `preload_keywords` (a run whose jobs find no keywords), jieba's dictionary is loaded only if a
    job needs it.
    """
    from pathlib import Path

    from pipeline.readers import ReaderOptions
    from pipeline.runtime.job import WorkContext
    from pipeline.stages.extract import load_rules
    from pipeline.stages.terms import keyword_extractor

    rules = load_rules(Path(config_dir))
    if rules.version != rules_version:
        raise RuntimeError(f"the rule files in {config_dir} changed during the run "
                           f"({rules_version} → {rules.version}); run again")
    ctx = WorkContext(rules=rules, options=ReaderOptions(pdf_backend=pdf_backend),
                      cache_dir=Path(cache_dir), config_dir=Path(config_dir),
                      terms_per_section=terms_per_section)
    if terms_per_section > 0 and preload_keywords:
        keyword_extractor(str(ctx.config_dir), str(Path(ctx.cache_dir) / "jieba")).tokenizer.check_initialized()
    return ctx

