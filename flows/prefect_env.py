"""Prefect's environment for this project, set before Prefect is imported.

- Prefect's state (the embedded API's SQLite database, logs) lives in the git-ignored `.prefect/`
  folder of the project, not in the user's home folder.
- No telemetry: analytics off (its network calls fail here and print tracebacks).
- Prefect's own INFO chatter stays off the screen; the pipeline prints its own progress and summary.
  Warnings and errors from Prefect still show.
Every value is a default: a variable already set in the environment wins (e.g. PREFECT_API_URL to
use a running Prefect server instead of the embedded one).
"""
from __future__ import annotations

import os
from pathlib import Path


def configure(project_dir: Path) -> None:
    defaults = {
        "PREFECT_HOME": str(Path(project_dir) / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        # One flow process talks to the embedded API: give SQLite time instead of "database is locked".
        "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
        "PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT": "30",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
