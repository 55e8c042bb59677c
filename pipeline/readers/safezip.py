"""Zip containers (DOCX) opened like Apache POI's `ZipSecureFile`: sizes checked before inflating.

A zip's central directory states each member's compressed and uncompressed size. Python's
`zipfile` never returns more than the stated uncompressed size (it truncates, then fails the
CRC), but `ZipFile.read()` inflates in a single call bounded only by 2 GiB, so a member that
lies about its size still allocates gigabytes. Here every member is inflated in bounded
chunks, after its stated sizes passed the limits below; a member inflating to more than it
stated therefore costs at most one chunk.

Limits (a legitimate policy DOCX is a few MB; `word/document.xml` of a 500-page one ~30 MB):
- at most `MAX_MEMBERS` members in a directory of at most `MAX_DIRECTORY_BYTES`, checked from
  the end record before `zipfile` parses the directory into Python objects;
- a member read for its text inflates to at most `MAX_PART_BYTES`, and the parts read
  together to at most `MAX_TOTAL_BYTES`;
- no member read for its text inflates more than `MAX_RATIO` times its compressed size once
  past `RATIO_GRACE_BYTES` (POI's minimum inflate ratio of 0.01): real XML deflates 5-20x,
  a bomb 1000x;
- only stored and deflated members (Word writes nothing else; bzip2/LZMA inflate without a
  bound in `zipfile`), no zip-level encryption.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Iterator, Optional

MAX_MEMBERS = 10_000
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 400
MAX_PART_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 100
RATIO_GRACE_BYTES = 1024 * 1024
CHUNK = 1024 * 1024

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


class ZipLimit(Exception):
    """The container is over a limit: refused unread (`too_large`)."""


class ZipRefused(Exception):
    """The container is readable zip but not one we inflate; `reason` says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def directory_size(path: Path) -> Optional[tuple[int, int]]:
    """(members, central-directory bytes) from the end-of-central-directory record, read without
    parsing the directory (a 100 MB directory would be ~1.5 million ZipInfo objects); None
    when the file has no such record (truncated, or not a zip)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_len = min(size, 65535 + 22)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            return None
        entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
        if entries != 0xFFFF and cd_size != 0xFFFFFFFF:
            return entries, cd_size
        loc = at - 20
        if loc < 0 or tail[loc:loc + 4] != _ZIP64_LOCATOR:
            return entries, cd_size
        offset = struct.unpack("<Q", tail[loc + 8:loc + 16])[0]
        if offset + 56 > size:
            return None
        fh.seek(offset)
        rec = fh.read(56)
        if rec[:4] != _ZIP64_EOCD:
            return None
        return struct.unpack("<QQ", rec[32:48])


def check_directory(path: Path) -> None:
    """ZipLimit when the central directory is too large to parse."""
    found = directory_size(path)
    if found is None:
        return
    entries, cd_size = found
    if entries > MAX_MEMBERS or cd_size > MAX_DIRECTORY_BYTES:
        raise ZipLimit(f"the zip announces {entries} members in a {cd_size}-byte directory "
                       f"(limit {MAX_MEMBERS} members, {MAX_DIRECTORY_BYTES // 1024} KB)")


class SafeZip:
    """A zip whose members are read in bounded chunks after their stated sizes are checked."""

    def __init__(self, path: Path):
        check_directory(path)
        self.zf = zipfile.ZipFile(path)
        self.total = 0
        self._infos = {i.filename: i for i in self.zf.infolist()}

    def __enter__(self) -> "SafeZip":
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def names(self) -> set[str]:
        return set(self._infos)

    def info(self, name: str) -> Optional[zipfile.ZipInfo]:
        return self._infos.get(name)

    def _check(self, info: zipfile.ZipInfo) -> None:
        if info.flag_bits & 0x1:
            raise ZipRefused("encrypted", f"{info.filename} is encrypted (a password-protected zip)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ZipRefused("corrupt", f"{info.filename} uses zip compression method {info.compress_type}, "
                                        "which Word never writes")
        size, packed = info.file_size, info.compress_size
        if size > MAX_PART_BYTES:
            raise ZipLimit(f"{info.filename} inflates to {size / 2**20:.0f} MB "
                           f"(limit {MAX_PART_BYTES / 2**20:.0f} MB per part)")
        if size > RATIO_GRACE_BYTES and size > MAX_RATIO * max(packed, 1):
            raise ZipLimit(f"{info.filename} inflates {size / max(packed, 1):.0f}x "
                           f"({packed} → {size} bytes; limit {MAX_RATIO}x): a decompression bomb")
        if self.total + size > MAX_TOTAL_BYTES:
            raise ZipLimit(f"the parts read inflate to more than {MAX_TOTAL_BYTES / 2**20:.0f} MB together")

    def chunks(self, name: str) -> Iterator[bytes]:
        """The member's bytes in chunks of at most CHUNK; never more than its stated size."""
        info = self._infos[name]
        self._check(info)
        self.total += info.file_size
        with self.zf.open(info) as fh:
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    return
                yield chunk
