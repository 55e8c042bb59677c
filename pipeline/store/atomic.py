"""The one way a file is replaced: written beside its target, then renamed over it.

A reader of `path` sees the old file or the new one, never a torn one, and a process killed while
writing leaves at most a `*.tmp` file beside it. For the text and keyword caches and the scan's
manifest, which can always be rebuilt, that is enough: no fsync. The output tables need more (a
set of files replaced as one unit, durably) and go through `store.tables.StagedWrite`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace `path` with `text`, creating its folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
