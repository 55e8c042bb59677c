"""The same flow on a Dask cluster (prefect-dask) gives the same tables as a single-process run."""
from __future__ import annotations

import shutil

import dask
from conftest import ROOT, assert_same_tables, table_contents
from distributed import LocalCluster

from flows.ingest import run_ingest


def test_local_cluster_with_two_workers_matches_a_single_process_run(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for ext in ("txt", "docx", "pdf"):
        for p in sorted((ROOT / "raw").glob(f"*.{ext}"))[:2]:
            shutil.copy(p, raw)
    (raw / "broken.docx").write_bytes(b"PK\x03\x04 broken")
    single = run_ingest(raw_dir=str(raw), out_dir=str(tmp_path / "single"),
                        cache_dir=str(tmp_path / "cache1"), workers=1)
    # Non-daemonic workers may start the per-file worker processes, as `--dask-address local` does.
    with dask.config.set({"distributed.worker.daemon": False}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        on_dask = run_ingest(raw_dir=str(raw), out_dir=str(tmp_path / "dask"), cache_dir=str(tmp_path / "cache2"),
                             dask_address=cluster.scheduler_address)
    assert on_dask["rows"] == single["rows"] and on_dask["errors"] == single["errors"] == {"unsupported_format": 1}
    assert_same_tables(table_contents(tmp_path / "single"), table_contents(tmp_path / "dask"))
