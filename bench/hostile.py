"""Time and peak memory per hostile file, through the real worker pool.

    .venv/bin/python bench/hostile.py [--config DIR] [--workers N] [--keep DIR]

Builds the hostile drop folder of tests/hostile_files.py (good drafts from raw/ next to every kind
of broken file), scans it as the flow does, and runs each file the scan lets through as one job of
`pipeline.runtime.workers.WorkerPool` (`process_job`: read, normalise, extract, keywords). Prints one line
per file: expected and actual outcome, wall seconds from hand-over to answer (or kill), and the
CPU seconds (what `timeout_seconds` limits), and the worker's peak resident memory during the job
against its idle size (VmHWM, reset per job; "+MB" is what the file added).
Files refused by the scan (stage scan/sniff) never reach a worker; their time is the scan's.

Limits default to the test config (timeout 3 s of CPU, memory 300 MB above the idle worker,
max_file_mb 20, 2 workers); `--config` takes them from a config folder's pipeline.yaml instead.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hostile_files import TEST_LIMITS, build_raw  # noqa: E402

from pipeline.config import load_settings  # noqa: E402
from pipeline.runtime.job import Job, process_job  # noqa: E402
from pipeline.runtime.scan import scan_raw  # noqa: E402
from pipeline.runtime.workers import WorkerPool, make_work_context  # noqa: E402
from pipeline.stages.extract import load_rules  # noqa: E402


def _fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=None, help="take the limits from this config folder")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="build the files here and keep them")
    a = ap.parse_args(argv)
    logging.getLogger("policy_pipeline.workers").setLevel(logging.ERROR)  # the table says it all

    if a.config:
        s = load_settings(a.config)
        limits = {"timeout_seconds": s.timeout_seconds, "memory_limit_mb": s.memory_limit_mb,
                  "max_file_mb": s.max_file_mb, "workers": s.n_workers}
        config_dir = a.config
    else:
        limits = dict(TEST_LIMITS)
        config_dir = ROOT / "config"
    if a.workers:
        limits["workers"] = a.workers
    base = a.keep or Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    try:
        raw = base / "raw"
        t0 = time.perf_counter()
        cases = {c.display: c for c in build_raw(raw, base / "outside", ROOT / "raw")}
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        scan = scan_raw(raw, base / "cache", limits["max_file_mb"])
        t_scan = time.perf_counter() - t0
        rules = load_rules(config_dir)
        args = (str(config_dir), rules.version, str(base / "cache"), "pdfplumber", 8)
        rows = []
        for e in scan.errors:
            rows.append((e["source_path"], e["stage"], e["reason"], None, None, None, None))
        t0 = time.perf_counter()
        with WorkerPool(limits["workers"], make_work_context, args, process_job,
                        limits["timeout_seconds"], limits["memory_limit_mb"]) as pool:
            jobs = [Job(src, str(path)) for src, path in scan.sources]
            for job, value, stats in pool.map_with_stats(jobs):
                stage = getattr(value, "stage", "-")
                rows.append((job.source.path, stage, stats.outcome, stats.seconds, stats.cpu_seconds,
                             stats.peak_rss_mb, stats.idle_rss_mb))
        t_pool = time.perf_counter() - t0
    finally:
        if a.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    print(f"limits: timeout {limits['timeout_seconds']:g} s, memory {limits['memory_limit_mb']} MB above the "
          f"idle worker, max_file_mb {limits['max_file_mb']:g}, {limits['workers']} workers")
    print(f"build {t_build:.1f} s, scan {t_scan:.2f} s ({len(scan.errors)} refused), "
          f"pool {t_pool:.1f} s for {len(scan.sources)} files (incl. worker start-up)\n")
    head = (f"{'file':44} {'expected':19} {'outcome':19} {'stage':6} {'wall s':>6} {'CPU s':>6} "
            f"{'peak MB':>8} {'+MB':>6}")
    print(head)
    print("-" * len(head))
    bad = 0
    for path, stage, outcome, secs, cpu, peak, idle in sorted(rows, key=lambda r: (-(r[3] or 0), r[0])):
        case = cases.get(path)
        expected = (case.expect if case else "?") or "-"
        mark = "" if expected == outcome else "  <-- unexpected"
        bad += bool(mark)
        grown = None if peak is None or idle is None else peak - idle
        name = path.replace("\n", "\\n")
        print(f"{name[:44]:44} {expected:19} {outcome:19} {stage:6} {_fmt(secs, '.2f'):>6} {_fmt(cpu, '.2f'):>6} "
              f"{_fmt(peak):>8} {_fmt(grown):>6}{mark}")
    print(f"\n{len(rows)} files, {bad} with an unexpected outcome")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
