"""The text cache: a file's normalised text, by the file's sha256 and its reader's version.

A rule change never re-parses a PDF or DOCX, and a reader change (a new `PARSER_VERSIONS` entry)
re-parses every file it touches. Entries are replaced atomically: a killed worker never leaves
half an entry.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from pipeline.model import ParsedText
from pipeline.store.atomic import write_atomic


def _cache_path(cache_dir: Path, sha256: str, version: str) -> Path:
    return Path(cache_dir) / "text" / sha256[:2] / f"{sha256}.{version}.json"


def load_cached(cache_dir: Path, sha256: str, version: str) -> Optional[ParsedText]:
    p = _cache_path(cache_dir, sha256, version)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return ParsedText(**d)


def store_cached(cache_dir: Path, sha256: str, parsed: ParsedText) -> None:
    write_atomic(_cache_path(cache_dir, sha256, parsed.parser_version), json.dumps(parsed.__dict__, ensure_ascii=False))
