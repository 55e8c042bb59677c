"""`policy-pipeline serve`: a real Prefect deployment on a schedule picks up new drafts."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
from conftest import ROOT


def wait_for(pred, timeout, step=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except (OSError, ValueError):
            pass  # a table being replaced right now: look again
        time.sleep(step)
    return False


def documents(out):
    return set(pd.read_parquet(out / "documents.parquet").source_path)


def test_schedule_picks_up_a_new_file_and_stops_cleanly(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    shutil.copy(ROOT / "raw" / "003_af7725881e400d8b.txt", raw / "first.txt")
    env = {**os.environ, "POLICY_PIPELINE_HOME": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    # Started as a background job of a script (`cmd &`) is: with SIGINT ignored. serve still stops on it.
    p = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--interval", "5s",
                          "--raw", str(raw), "--out", str(out), "--cache", str(tmp_path / "cache")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert wait_for(lambda: documents(out) == {"first.txt"}, 240), "the first scheduled run did not come"
        shutil.copy(ROOT / "raw" / "001_ad7cf2dc79e53be4.docx", raw / "second.docx")
        t0 = time.monotonic()
        assert wait_for(lambda: "second.docx" in documents(out), 120), "the new file was not picked up"
        picked_up = time.monotonic() - t0
    finally:
        p.send_signal(signal.SIGINT)
        try:
            log, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            log, _ = p.communicate()
            raise AssertionError(f"serve did not stop within 60 s:\n{log[-3000:]}")
    assert p.returncode == 0, log[-3000:]
    assert "stopped" in log
    runs = pd.read_parquet(out / "runs.parquet")
    assert set(runs.trigger) == {"schedule"} and (runs.status == "completed").all()
    assert picked_up < 120
    # The local Prefect server that serve started is gone with it.
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)", log).group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the Prefect server still listens"
