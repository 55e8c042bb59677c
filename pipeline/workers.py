"""A pool of worker processes with a time and memory limit per job (the Tika "forked parser" model).

Each worker is a spawned process that builds its WorkContext once and then runs jobs one at a
time. A job that runs past `timeout_seconds` gets its worker killed and replaced, and the job is
reported as `timeout`; a worker is started with an address-space limit (RLIMIT_AS), so a job that
needs more memory gets MemoryError (reported as `memory_limit`), and a worker that dies outright is
replaced and its job reported with the signal. Other jobs never wait on a bad one longer than its
own limit, and the pool never hands back partial rows.
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator, Union

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str
    stage: str = "parse"


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(conn: Connection, make_context: Callable, context_args: tuple, run: Callable,
                 memory_mb: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    try:
        ctx = make_context(*context_args)
    except Exception as e:  # a worker that cannot start fails the run, not each file
        conn.send(("fatal", f"{type(e).__name__}: {e}"))
        return
    _limit_memory(memory_mb)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            result = ("ok", run(job, ctx))
        except PipelineError as e:
            result = ("err", Failure(e.reason, e.message, e.stage))
        except MemoryError:
            result = ("err", Failure("memory_limit", f"needed more than {memory_mb} MB"))
        except Exception as e:  # the worker survives; the job is reported, not retried
            result = ("err", Failure("extraction_failed", f"{type(e).__name__}: {e}", "extract"))
        try:
            conn.send(result)
        except MemoryError:
            conn.send(("err", Failure("memory_limit", f"result larger than {memory_mb} MB")))


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
        self.job = None
        self.deadline = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class WorkerPool:
    """`map(jobs)` yields (job, result | Failure) as jobs finish; workers persist across calls."""

    def __init__(self, n: int, make_context: Callable, context_args: tuple, run: Callable,
                 timeout_seconds: float, memory_mb: int):
        self.n = max(1, n)
        self.make_context, self.context_args, self.run = make_context, context_args, run
        self.timeout, self.memory_mb = timeout_seconds, memory_mb
        self._ctx = mp.get_context("spawn")
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
        pending = deque(jobs)
        self._ensure()
        while pending or any(w.job is not None for w in self._workers):
            for w in self._workers:
                if w.job is None and pending:
                    w.job = pending.popleft()
                    w.conn.send(w.job)
                    w.deadline = time.monotonic() + self.timeout
            busy = [w for w in self._workers if w.job is not None]
            wait_for = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=wait_for)
            for w in list(busy):
                job = w.job
                if w.conn in ready:
                    try:
                        status, value = w.conn.recv()
                    except (EOFError, OSError):
                        status, value = "err", self._death(w)
                        self._replace(w)
                    else:
                        if status == "fatal":
                            raise WorkerStartError(value)
                        w.job = None
                    yield job, value
                elif w.proc.sentinel in ready:
                    value = self._death(w)
                    self._replace(w)
                    yield job, value
                elif time.monotonic() >= w.deadline:
                    self._replace(w)
                    yield job, Failure("timeout", f"no result within {self.timeout:g} s; the worker was killed")

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


def make_work_context(rules, config_dir: str, cache_dir: str, pdf_backend: str, terms_per_section: int):
    """Build a worker's context from the rules the run validated (never re-read mid-run)."""
    from pathlib import Path

    from pipeline.process import WorkContext
    from pipeline.readers import ReaderOptions

    return WorkContext(rules=rules, options=ReaderOptions(pdf_backend=pdf_backend),
                       cache_dir=Path(cache_dir), config_dir=Path(config_dir),
                       terms_per_section=terms_per_section)
