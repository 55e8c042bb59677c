"""One source file → all its rows, or one error: the unit of work a worker process runs.

    sniff → (text cache | reader → normalise → cache) → document_rows → terms (cached by text)
          → Arrow IPC bytes (process_encoded: what a worker hands back)

Everything here is plain Python: the Prefect flow and the worker pool only decide where and when
this runs. A file either yields its complete rows or raises PipelineError; nothing in between.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

import pyarrow as pa

from pipeline.errors import PipelineError
from pipeline.readers import ReaderError, ReaderOptions, parser_version
from pipeline.rules import RuleSet
from pipeline.stages.extract import ALL_TABLES, DocRows, Source, document_rows, section_texts
from pipeline.stages.read import file_to_text
from pipeline.store.atomic import write_atomic
from pipeline.store.tables import SCHEMAS, encode_rows
from pipeline.store.textcache import load_cached, store_cached


@dataclass(frozen=True)
class WorkContext:
    """What a worker needs besides the file: built once per worker process."""

    rules: RuleSet
    options: ReaderOptions
    cache_dir: Path
    config_dir: Path
    terms_per_section: int

    @cached_property
    def terms_version(self) -> str:
        """Keywords change with the jieba dictionaries and top-k, never with the extraction rules."""
        h = hashlib.sha1(str(self.terms_per_section).encode())
        for name in ("userdict.txt", "stopwords.txt"):
            p = Path(self.config_dir) / name
            h.update(p.read_bytes() if p.exists() else b"")
        return h.hexdigest()[:12]


@dataclass(frozen=True)
class Job:
    source: Source
    abs_path: Optional[str]  # None: re-extract from the text cache only
    tables: tuple[str, ...] = ALL_TABLES  # the tables to extract (a rule edit needs only some)


def get_parsed(job: Job, ctx: WorkContext):
    src = job.source
    version = parser_version(src.format, ctx.options)
    parsed = load_cached(ctx.cache_dir, src.sha256, version)
    if parsed is not None:
        return parsed
    if job.abs_path is None:
        raise PipelineError("corrupt", "cached text is missing and no file was given", stage="cache")
    try:
        parsed = file_to_text(Path(job.abs_path), src.format, ctx.options)
    except ReaderError as e:
        raise PipelineError(e.reason, e.message, stage="parse") from None
    except MemoryError:
        raise
    except Exception as e:
        # A parser library tripping over a malformed file (pdfminer's KeyError on a broken
        # object, RecursionError on absurd nesting): the file is unreadable, not the pipeline broken.
        raise PipelineError("corrupt", f"the {src.format} reader failed: {type(e).__name__}: {e}",
                            stage="parse") from None
    store_cached(ctx.cache_dir, src.sha256, parsed)
    return parsed


def _terms_cache(ctx: WorkContext, sha256: str) -> Path:
    return Path(ctx.cache_dir) / "terms" / sha256[:2] / f"{sha256}.{ctx.terms_version}.json"


def terms_table(src: Source, rows: DocRows, ctx: WorkContext) -> pa.Table:
    """Keywords per section, reusing earlier results for any section whose text is unchanged.

    Built column by column: a document has a few hundred keyword rows, and converting them as
    dicts would cost more than finding them in the cache."""
    path = _terms_cache(ctx, src.sha256)
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        cache = {}
    # jieba's analyse module loads its IDF table (~100 MB) on import: only the processes that
    # find keywords (the workers) import it, never the flow process.
    from pipeline.stages.terms import keyword_extractor, text_to_terms

    section_ids, ranks, words, weights, fresh = [], [], [], [], {}
    extractor = None
    for section_id, text in section_texts(rows):
        key = hashlib.sha1(text.encode("utf-8")).hexdigest()
        terms = cache.get(key)
        if terms is None:
            extractor = extractor or keyword_extractor(str(ctx.config_dir), str(Path(ctx.cache_dir) / "jieba"))
            terms = text_to_terms(text, extractor, ctx.terms_per_section)
        fresh[key] = terms
        section_ids += [section_id] * len(terms)
        ranks += range(1, len(terms) + 1)
        words += [w for w, _ in terms]
        weights += [s for _, s in terms]
    if fresh.keys() != cache.keys():
        write_atomic(path, json.dumps(fresh, ensure_ascii=False))
    schema = SCHEMAS["terms"]
    return pa.Table.from_arrays([pa.array([src.doc_id] * len(words), pa.string()),
                                 pa.array(section_ids, pa.string()), pa.array(ranks, pa.int16()),
                                 pa.array(words, pa.string()), pa.array(weights, pa.float64()),
                                 pa.nulls(len(words), pa.string())], schema=schema)


def _extract(job: Job, ctx: WorkContext) -> dict[str, "list[dict] | pa.Table"]:
    """The rows of the job's tables: dicts, and the terms as a table."""
    parsed = get_parsed(job, ctx)
    try:
        rows = document_rows(job.source, parsed, ctx.rules, job.tables)
        terms = terms_table(job.source, rows, ctx) if "terms" in job.tables else None
    except MemoryError:
        raise
    except Exception as e:  # a bug in a stage must not take the batch down; it is reported as one
        raise PipelineError("extraction_failed", f"{type(e).__name__}: {e}", stage="extract") from e
    out: dict = {name: rows.tables[name] for name in job.tables if name in rows.tables}
    if terms is not None:
        out["terms"] = terms
    return out


def process_job(job: Job, ctx: WorkContext) -> DocRows:
    """The file's rows in the job's tables, as dicts."""
    return DocRows({name: rows.to_pylist() if isinstance(rows, pa.Table) else rows
                    for name, rows in _extract(job, ctx).items()})


def process_encoded(job: Job, ctx: WorkContext) -> dict[str, bytes]:
    """The file's rows as Arrow IPC bytes per table: what a worker sends back."""
    return encode_rows(_extract(job, ctx))
