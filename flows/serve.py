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
from typing import Optional

from flows.api import prefect_api
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


def serve(interval: Optional[dt.timedelta], cron: Optional[str], parameters: dict,
          name: str = "scheduled-ingest") -> None:
    """Serve until interrupted (SIGINT / SIGTERM)."""
    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    # A process started as a script's background job (`cmd &`) begins with SIGINT ignored, and
    # Python keeps it so: such a serve would never stop on Ctrl-C or `kill -INT`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    loop = interval.total_seconds() if interval else 60.0
    with prefect_api("server", loop) as api:
        url = os.environ["PREFECT_API_URL"]
        if api:
            log.info("Prefect server (UI and API) on http://127.0.0.1:%d (log: %s)", api.port, api.log_path)
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
