"""One run's data tables, streamed: the previous rows of kept documents and this run's new rows,
merged in doc_id order into staged Parquet files, a batch at a time.

Every data table is kept sorted by `doc_id` (a document's rows together, in document order), and
a run processes its documents in doc_id order, batch after batch. So the merge is a single pass
over two sorted streams: for each batch of new rows, the previous table is read up to the batch's
last doc_id; of those old rows, the ones of kept documents are merged with the new rows and
written, the ones of re-extracted documents are compared with their new rows (the `changes`
table), and the ones of removed documents are dropped. Memory holds a batch and a slice of each
previous table, never a whole table, whatever the size of the corpus.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.store.changes import ChangeLog, diff_tables
from pipeline.store.tables import SCHEMAS, StagedWrite, read_table, sorted_by, to_arrow

DATA_TABLES = ("documents", "sections", "responsibilities", "quantities", "terms")
READ_ROWS = 4096  # rows per slice read from a previous table
FLUSH_BYTES = 2 << 20  # staged rows are written as a row group once they reach this size


def sort_by_doc(table: pa.Table) -> pa.Table:
    """Rows ordered by doc_id; a stable sort, so each document keeps its own row order."""
    if table.num_rows < 2:
        return table
    return table.take(pc.sort_indices(table, sort_keys=[("doc_id", "ascending")]))


class _PreviousRows:
    """A previous table, read slice by slice in doc_id order."""

    def __init__(self, out: Path, name: str):
        self.schema = SCHEMAS[name]
        path = Path(out) / f"{name}.parquet"
        self._buf: Optional[pa.Table] = None
        if not path.exists():
            self._slices = iter(())
            return
        if sorted_by(out, name) != "doc_id":
            # Not written by a merge (an earlier version of the pipeline): sorted once, in memory.
            self._slices = iter([sort_by_doc(read_table(out, name))])
        else:
            # Read as a stream, one thread: with pre-buffering and threads the five readers of a
            # run held ≈ 50 MB more (measured over 10,000 documents), for no time the run would see.
            reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 16)
            self._slices = (pa.Table.from_batches([b]).cast(self.schema)
                            for b in reader.iter_batches(batch_size=READ_ROWS, use_threads=False))

    def rest(self) -> Iterator[pa.Table]:
        """The remaining rows, slice by slice."""
        if self._buf is not None and self._buf.num_rows:
            yield self._buf
        self._buf = None
        yield from self._slices

    def until(self, last_id: Optional[str]) -> pa.Table:
        """The next rows, up to and including those of `last_id` (all that remain for None)."""
        parts = []
        while True:
            while self._buf is None or not self._buf.num_rows:
                self._buf = next(self._slices, None)
                if self._buf is None:
                    break
            if self._buf is None:
                break
            ids = self._buf["doc_id"]
            if last_id is None or ids[-1].as_py() <= last_id:
                parts.append(self._buf)
                self._buf = None
                continue
            k = pc.sum(pc.less_equal(ids, last_id)).as_py() or 0
            parts.append(self._buf.slice(0, k))
            self._buf = self._buf.slice(k)
            break
        return pa.concat_tables(parts) if parts else self.schema.empty_table()


def _between(ids: list[str], lo: Optional[str], hi: Optional[str]) -> pa.Array:
    """The members of sorted `ids` in (lo, hi] (None: unbounded)."""
    i = 0 if lo is None else bisect.bisect_right(ids, lo)
    j = len(ids) if hi is None else bisect.bisect_right(ids, hi)
    return pa.array(ids[i:j], pa.string())


def _set_column(table: pa.Table, column: str, value: str) -> pa.Table:
    """`table` with every value of string `column` set to `value`."""
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array([value] * table.num_rows, pa.string()))


class Merge:
    """The data tables of one run, written into `stage` as batches arrive (see module docstring).

    `keep`: documents whose previous rows are carried over; `reprocessed`: documents whose previous
    rows are replaced by new ones and compared with them, except in the tables where `carried`
    lists them (a rule edit that leaves those tables as they were); any other document in the
    previous tables is dropped. `renamed` gives kept documents their new source path;
    `change_fields` are set on every change row (the rule versions compared). With `rules_version`,
    carried-over rows get that rules_version: the current rules give exactly those rows.

    `untouched` tables are left as they are, file and all (not read, not written): the caller's
    promise that this run would write the same rows (see `RunOutput`), unless a job fails.

    A document whose job failed (`add(failed=...)`) has no rows left in any table, as in a fresh
    run: not even those a rule edit carries over."""

    def __init__(self, out: Path, stage: StagedWrite, run_id: str, keep: set[str],
                 reprocessed: set[str], renamed: dict[str, str], change_fields: Optional[dict] = None,
                 carried: Optional[dict[str, set[str]]] = None, rules_version: Optional[str] = None,
                 untouched: frozenset[str] = frozenset()):
        self.stage, self.run_id, self.renamed = stage, run_id, renamed
        self.change_fields = {"run_id": run_id, **(change_fields or {})}
        self.rules_version = rules_version
        self.out = Path(out)
        self.tables = tuple(name for name in DATA_TABLES if name not in untouched)
        self.untouched = tuple(name for name in DATA_TABLES if name in untouched)
        self.failed: set[str] = set()
        carried = carried or {}
        self.keep = {name: sorted(keep | carried.get(name, set())) for name in self.tables}
        self.reprocessed = {name: sorted(reprocessed - carried.get(name, set())) for name in self.tables}
        self.previous = {name: _PreviousRows(out, name) for name in self.tables}
        self.pending: dict[str, list[pa.Table]] = {name: [] for name in DATA_TABLES}
        self.pending_bytes = dict.fromkeys(DATA_TABLES, 0)
        self.changes = ChangeLog()
        self.change_rows = 0
        self.last_id: Optional[str] = None
        self.done = False

    def add(self, tables: dict[str, pa.Table], last_id: Optional[str],
            failed: frozenset[str] = frozenset()) -> list[dict]:
        """New rows of the documents after the previous batch up to `last_id` (None: the end),
        and the documents among them whose jobs failed; returns this batch's change rows."""
        if self.last_id is not None and last_id is not None and last_id <= self.last_id:
            raise ValueError(f"batches out of order: {last_id} after {self.last_id}")
        self.failed |= failed
        replaced, new, replaced_ids = {}, {}, set()
        for name in self.tables:
            keep = _between([d for d in self.keep[name] if d not in failed] if failed else self.keep[name],
                            self.last_id, last_id)
            ids = _between(self.reprocessed[name], self.last_id, last_id)
            replaced_ids.update(ids.to_pylist())
            old = self.previous[name].until(last_id)
            old = old.replace_schema_metadata(None)
            kept = old.filter(pc.is_in(old["doc_id"], value_set=keep)) if old.num_rows else old
            if name == "documents" and self.renamed and kept.num_rows:
                kept = self._rename(kept)
            if self.rules_version is not None and kept.num_rows and "rules_version" in kept.column_names:
                kept = _set_column(kept, "rules_version", self.rules_version)
            new[name] = sort_by_doc(self._with_run_id(name, tables.get(name)))
            replaced[name] = (old.filter(pc.is_in(old["doc_id"], value_set=ids))
                              if old.num_rows and len(ids) else old.slice(0, 0))
            # Both sides are sorted: a merge is only needed when both have rows.
            if kept.num_rows and new[name].num_rows:
                self._write(name, sort_by_doc(pa.concat_tables([kept, new[name]])))
            else:
                self._write(name, kept if kept.num_rows else new[name])
        change_rows = diff_tables(replaced, new, replaced_ids) if replaced_ids else []
        if change_rows:
            for c in change_rows:
                c.update(self.change_fields)
            self.stage.append("changes", to_arrow("changes", change_rows))
            self.changes.add(change_rows)
            self.change_rows += len(change_rows)
        self.last_id = last_id if last_id is not None else self.last_id
        return change_rows

    def finish(self) -> None:
        """Carry over the rest of the previous rows and flush everything staged."""
        self.add({}, None)
        # An untouched table still holds the rows of documents whose jobs failed: copied without them.
        rewritten = self.untouched if self.failed else ()
        drop = pa.array(sorted(self.failed), pa.string())
        for name in rewritten:
            for part in _PreviousRows(self.out, name).rest():
                self._write(name, part.replace_schema_metadata(None).filter(
                    pc.invert(pc.is_in(part["doc_id"], value_set=drop))))
        for name in self.tables + rewritten:
            self._flush(name)
            if name not in self.stage.staged():
                self.stage.append(name, SCHEMAS[name].empty_table(), sorted_by="doc_id")
        self.done = True

    def _with_run_id(self, name: str, table: Optional[pa.Table]) -> pa.Table:
        if table is None:
            return SCHEMAS[name].empty_table()
        return _set_column(table.replace_schema_metadata(None), "run_id", self.run_id)

    def _rename(self, docs: pa.Table) -> pa.Table:
        paths = [self.renamed.get(d, p) for d, p in zip(docs["doc_id"].to_pylist(), docs["source_path"].to_pylist())]
        for col, values in (("source_path", paths), ("source_name", [Path(p).name for p in paths])):
            i = docs.schema.get_field_index(col)
            docs = docs.set_column(i, docs.schema.field(i), pa.array(values, pa.string()))
        return docs

    def _write(self, name: str, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.pending[name].append(table)
        self.pending_bytes[name] += table.nbytes
        if self.pending_bytes[name] >= FLUSH_BYTES:
            self._flush(name)

    def _flush(self, name: str) -> None:
        if self.pending[name]:
            self.stage.append(name, pa.concat_tables(self.pending[name]).combine_chunks(), sorted_by="doc_id")
            self.pending[name], self.pending_bytes[name] = [], 0
