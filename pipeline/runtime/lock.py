"""One run at a time per output folder: an advisory lock on `<out>/.lock`.

The lock is held by the process (fcntl.flock), so it is released by the kernel when a run is killed,
even with `kill -9`: a crashed run never leaves the folder locked. A second run either waits for the
first (`on_busy: wait`, the default) or stops at once with a message naming the holder.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Busy(RuntimeError):
    """Another run holds the output folder."""


@contextmanager
def run_lock(out: Path, wait: bool = True, timeout: float = 3600.0) -> Iterator[None]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
                if not wait or time.monotonic() > deadline:
                    raise Busy(f"{out} is being written by {holder}; try again when it has finished") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
