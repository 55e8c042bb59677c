"""raw/ → the files to ingest: each regular file with its sha256 and sniffed format.

Anything that is not a regular file inside raw/ (a symlink leaving it, a FIFO, a socket, a
device, a directory named like a file), an empty file, or one over `max_file_mb` gets one error
row here and is never opened by a reader. Files with the same bytes are one document: the first
path (in sorted order) keeps it, the others are reported as `duplicate`.

Files are opened with O_NOFOLLOW | O_NONBLOCK and checked to be regular on the open descriptor,
so a file swapped for a FIFO or a symlink after the walk neither blocks the scan nor leads it
out of raw/. A symlink that stays inside raw/ is read through its resolved path.
Hidden files and folders and Office lock files (`.name`, `~$name`) are not documents and are
passed over without a row. A directory named like a document (`通知.pdf/`) gets its row and is still walked.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline.readers import ReaderError, sniff
from pipeline.stages.extract import Source
from pipeline.store.atomic import write_atomic


def error_row(path: str, sha: Optional[str], stage: str, reason: str, message: str) -> dict:
    return {"source_path": path, "sha256": sha, "stage": stage, "reason": reason, "message": message}


def _display_path(rel: str) -> str:
    # Names with invalid UTF-8 bytes are kept faithfully as surrogate escapes and shown as \xNN.
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# Directory names that look like a document someone meant to drop (and so deserve a row).
_FILE_LIKE_DIR = re.compile(r"\.(pdf|docx?|docm|dotx|txt|wps|rtf|html?|xml|xlsx?|pptx?|odt|ofd|zip|"
                            r"png|jpe?g|tiff?|md|csv)$", re.I)


class NotRegular(Exception):
    pass


def sha256_file(path: Path) -> str:
    """sha256 of a regular file, opened without following a final symlink and without blocking."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegular("became a symlink after the folder was listed") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular("not a regular file when opened")
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Scan:
    sources: list[tuple[Source, Path]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def scan_raw(raw: Path, cache_dir: Path, max_file_mb: float) -> Scan:
    """Every regular file under `raw` with its sha256 and format, plus one error per file that is not one.

    A file whose size and mtime are unchanged since the last scan is not opened again: its hash and
    format come from the manifest in the cache folder.
    """
    raw = Path(raw).resolve()
    manifest_path = Path(cache_dir) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        manifest = {}
    new_manifest: dict = {}
    scan = Scan()
    if not raw.is_dir():
        raise FileNotFoundError(f"raw folder {raw} does not exist")
    seen: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(raw, followlinks=False):
        # Hidden folders (.git, .Trash, a crawler's .partial/) hold no documents.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            if _FILE_LIKE_DIR.search(d) and not os.path.islink(os.path.join(dirpath, d)):
                rel = _display_path(str((Path(dirpath) / d).relative_to(raw)))
                scan.errors.append(error_row(rel, None, "scan", "not_a_regular_file",
                                             "a directory named like a file (its contents are scanned on their own)"))
        # Symlinked directories are not followed; report them like any other non-regular entry.
        entries = sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in entries:
            p = Path(dirpath) / name
            rel = _display_path(str(p.relative_to(raw)))
            if name.startswith(".") or name.startswith("~$"):
                continue  # editor lock files and hidden files are not documents
            try:
                st = os.stat(p, follow_symlinks=True)
            except OSError as e:
                scan.errors.append(error_row(rel, None, "scan", "not_a_regular_file", f"cannot stat: {e.strerror}"))
                continue
            read_path = p
            if p.is_symlink():
                target = p.resolve()
                if raw not in target.parents:
                    scan.errors.append(error_row(rel, None, "scan", "not_a_regular_file",
                                                  "a symlink pointing outside the raw folder"))
                    continue
                read_path = target
            if not stat.S_ISREG(st.st_mode):
                kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, socket or device"
                scan.errors.append(error_row(rel, None, "scan", "not_a_regular_file", f"{kind}, not a file"))
                continue
            if st.st_size == 0:
                scan.errors.append(error_row(rel, None, "scan", "empty_file", "the file has no bytes"))
                continue
            if st.st_size > max_file_mb * 1024 * 1024:
                scan.errors.append(error_row(rel, None, "scan", "too_large",
                                              f"{st.st_size / 1048576:.1f} MB is over the limit of {max_file_mb:g} MB"))
                continue
            key = str(p)
            prev = manifest.get(key)
            failure = None
            if prev and prev["size"] == st.st_size and prev["mtime_ns"] == st.st_mtime_ns:
                sha, fmt, failure = prev["sha256"], prev["format"], prev.get("error")
                if failure:  # refused before and unchanged since: same outcome, file not opened
                    scan.errors.append(error_row(rel, sha, "sniff", failure[0], failure[1]))
            else:
                try:
                    sha = sha256_file(read_path)
                except NotRegular as e:
                    scan.errors.append(error_row(rel, None, "scan", "not_a_regular_file", str(e)))
                    continue
                except OSError as e:
                    scan.errors.append(error_row(rel, None, "scan", "corrupt", f"cannot read: {e.strerror}"))
                    continue
                try:
                    fmt = sniff(read_path)
                except ReaderError as e:
                    fmt, failure = None, (e.reason, e.message)
                    scan.errors.append(error_row(rel, sha, "sniff", e.reason, e.message))
                except OSError as e:
                    fmt = None
                    scan.errors.append(error_row(rel, sha, "sniff", "corrupt", f"cannot read: {e.strerror}"))
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha, "format": fmt}
            if fmt is None:
                if failure:
                    new_manifest[key] = {**entry, "error": list(failure)}
                continue
            new_manifest[key] = entry
            if sha in seen:
                scan.errors.append(error_row(rel, sha, "scan", "duplicate", f"same bytes as {seen[sha]}"))
                continue
            seen[sha] = rel
            scan.sources.append((Source(path=rel, name=_display_path(p.name), sha256=sha, size=st.st_size,
                                        format=fmt), read_path))
    # ASCII JSON: a name with invalid UTF-8 bytes is a str with lone surrogates, which only
    # survives as a \\udcXX escape.
    write_atomic(manifest_path, json.dumps(new_manifest))
    return scan
