"""Serve the `ingest` flow as a Prefect deployment on a schedule.

Scheduling needs Prefect's scheduler service, which the ephemeral in-process API does not run. So
unless `PREFECT_API_URL` points at an existing Prefect server, `serve` starts a local one itself
(`prefect server start` on 127.0.0.1, state in the project's `.prefect/` folder, UI on the same
address) and stops it when it stops. Each scheduled run is a real flow run of the deployment,
executed by Prefect's runner with `trigger="schedule"`.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import httpx

from flows.prefect_env import configure
from pipeline.config import project_dir

configure(project_dir())
log = logging.getLogger("policy_pipeline")

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_interval(text: str) -> dt.timedelta:
    """`30s`, `10m`, `2h`, `1d` or plain seconds."""
    m = _INTERVAL.match(text)
    if not m:
        raise ValueError(f"interval {text!r}: use a number with s, m, h or d, e.g. 10m")
    n = float(m.group(1))
    seconds = n * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < 1:
        raise ValueError(f"interval {text!r} is shorter than one second")
    return dt.timedelta(seconds=seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_prefect_server(loop_seconds: float, timeout: float = 90.0) -> Iterator[str]:
    """Start `prefect server start` on a free local port; yield its API URL; stop it afterwards."""
    port = _free_port()
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ,
           # How often the scheduler creates runs: no slower than the schedule asks for.
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": str(max(1.0, min(loop_seconds, 60.0))),
           # Its own database: SQLite shared with embedded runs in other processes gives "database is locked".
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'server.db'}"}
    log_path = home / "server.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the local Prefect server exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local Prefect server did not answer on {url} within {timeout:g} s")
            time.sleep(0.5)
        log.info("Prefect server (UI and API) on http://127.0.0.1:%d (log: %s)", port, log_path)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def serve(interval: Optional[dt.timedelta], cron: Optional[str], parameters: dict,
          name: str = "scheduled-ingest") -> None:
    """Serve until interrupted (SIGINT / SIGTERM)."""
    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    loop = interval.total_seconds() if interval else 60.0
    with _api(loop) as url:
        from flows.ingest import ingest  # imported once PREFECT_API_URL is known

        log.info("serving deployment 'ingest/%s' (%s) against %s", name,
                 f"every {interval}" if interval else f"cron {cron!r}", url)
        try:
            # One run at a time; a scheduled run that finds a manual run writing the folder skips
            # (the next one picks the work up) instead of queueing behind it.
            ingest.serve(name=name, interval=interval, cron=cron, limit=1,
                         parameters={**parameters, "trigger": "schedule", "wait_if_busy": False},
                         print_starting_message=False, pause_on_shutdown=False)
        except KeyboardInterrupt:
            pass
    log.info("stopped")


@contextmanager
def _api(loop_seconds: float) -> Iterator[str]:
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    with local_prefect_server(loop_seconds) as url:
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)
