"""The Prefect API a run talks to, started by the project itself when PREFECT_API_URL is not set.

Two kinds, both a subprocess on a free local port, with their state in the project's `.prefect/`:

- `embedded`: the API and the services Prefect's own temporary server runs (the app of
  `prefect.server.api.server.create_app(ephemeral=True)`, served by uvicorn), no UI, no scheduler.
  The CLI starts it *before* importing the flow module, so that the server's start (about 6 s of
  imports and migrations) overlaps the flow process's own imports instead of following them; and
  the flow process never imports Prefect's server code (about 4 s) only to start it.
- `server`: `prefect server start` (UI, scheduler and every service) for `serve`, with its own
  database file: SQLite shared with embedded runs in other processes gives "database is locked".

Nothing here imports Prefect at module level: that is the point of starting the API first.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

log = logging.getLogger("policy_pipeline")

PROJECT = Path(__file__).resolve().parent.parent


def create_embedded_app():
    """uvicorn's app factory for the `embedded` kind (Prefect's temporary server, in ours)."""
    from prefect.server.api.server import create_app

    return create_app(ephemeral=True, final=True)


# Runs `python -m MODULE ARGS...` so that the module's process gets SIGTERM when the process that
# started it dies, however it dies (kill -9, a timeout): no API server outlives its run. Linux
# (prctl PR_SET_PDEATHSIG), set after exec in the new process; elsewhere the module just runs.
# Strictly, the signal comes when the *thread* that started it ends: every caller here (the CLI,
# `serve`, `run_ingest` for Dask) starts its API from the thread that runs the whole job.
_WITH_PARENT = """
import ctypes, os, runpy, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
except (OSError, AttributeError):
    pass
if os.getppid() != int(os.environ.pop("POLICY_PIPELINE_PARENT_PID")):
    sys.exit(0)  # the parent died before the guard was set
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def _tied_to_this_process(module: str, args: list[str], env: dict) -> list[str]:
    env["POLICY_PIPELINE_PARENT_PID"] = str(os.getpid())
    return [sys.executable, "-c", _WITH_PARENT, module, *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_session(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """Stop a process started with `start_new_session=True` and everything it started: `sig` to
    its process group, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class LocalAPI:
    """A Prefect API subprocess: `start()` returns at once, `wait()` until it answers, `stop()`."""

    def __init__(self, kind: str = "embedded", scheduler_loop_seconds: float = 60.0):
        if kind not in ("embedded", "server"):
            raise ValueError(f"unknown Prefect API kind {kind!r}")
        self.kind = kind
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.home = Path(os.environ["PREFECT_HOME"])
        self.log_path = self.home / ("server.log" if kind == "server" else "embedded-api.log")
        self._loop = scheduler_loop_seconds
        self.proc: Optional[subprocess.Popen] = None

    def _command(self) -> tuple[list[str], dict]:
        env = dict(os.environ)
        if self.kind == "embedded":
            cmd = _tied_to_this_process("uvicorn", [
                "--app-dir", str(PROJECT), "--factory", "flows.api:create_embedded_app",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"], env)
            env["PREFECT_UI_ENABLED"] = "false"
        else:
            cmd = _tied_to_this_process("prefect", ["server", "start", "--host", "127.0.0.1",
                                                    "--port", str(self.port)], env)
            # How often the scheduler creates runs: no slower than the schedule asks for.
            env["PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS"] = str(max(1.0, min(self._loop, 60.0)))
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{self.home / 'server.db'}"
        env.pop("PREFECT_API_URL", None)  # the server itself is no client of another API
        return cmd, env

    def start(self) -> "LocalAPI":
        self.home.mkdir(parents=True, exist_ok=True)
        cmd, env = self._command()
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def wait(self, timeout: float = 90.0) -> str:
        """Block until the API answers; its URL. A clear error (with the server's log) otherwise."""
        import httpx

        deadline = time.monotonic() + timeout
        # One client for every poll: `httpx.get` builds a client, and with it an SSL context from
        # the CA bundle, each time (28 ms of CPU; ~150 polls while the API starts, on the cores
        # the API's own start needs). The URL is plain HTTP on 127.0.0.1: no TLS, no proxy.
        with httpx.Client(timeout=2, verify=False, trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the local Prefect API ({self.kind}) exited with "
                                       f"{self.proc.returncode}:\n{tail}")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return self.url
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the local Prefect API ({self.kind}) did not answer on {self.url} "
                                       f"within {timeout:g} s (log: {self.log_path})")
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_session(proc)


@contextmanager
def prefect_api(kind: str = "embedded", scheduler_loop_seconds: float = 60.0,
                wait: bool = True) -> Iterator[Optional[LocalAPI]]:
    """PREFECT_API_URL for the duration: the existing one if set (yields None), else a local API
    of `kind` started here and stopped afterwards. With `wait=False` the caller calls `.wait()`
    itself, after doing other work while the API starts."""
    if os.environ.get("PREFECT_API_URL"):
        yield None
        return
    api = LocalAPI(kind, scheduler_loop_seconds).start()
    os.environ["PREFECT_API_URL"] = api.url
    try:
        if wait:
            api.wait()
        yield api
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        api.stop()
