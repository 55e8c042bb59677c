"""Pipeline benchmark: every figure side by side in one run, on corpora built from raw/.

    .venv/bin/python bench/run.py [--quick] [--docs N] [--skip NAME ...] [--profile]

Sections (targets from the performance issue):
  1. ingest  - wall time of the real flow (`run_ingest`, in this process, Prefect already started)
               on PDF page re-combinations and DOCX variants, 1 and 2 workers, against the floor:
               the summed time of the bare parser calls (reader + normalise) on the same files.
               Targets: ingest(2 workers) <= 1.15 x floor/2, and >= 1.8x faster than 1 worker.
     prefect - the fixed cost every new process pays (Python, imports, embedded Prefect API, an
               empty flow run), measured in a fresh process.
  2. reextract - `policy-pipeline reextract` (a new process, Prefect start included) over the text
               corpus after a first ingest of it; target <= 15 s for 10,000 documents. Floor:
               document_rows over the cached texts in one process, / 2. Then two analyst's rule
               edits, each followed by `policy-pipeline ingest` (which re-extracts only the tables
               that depend on the edited file): `接近` dropped from a comparator rule in
               quantities.yaml, and a comment line added to responsibilities.yaml; each with its
               own floor (document_rows of only those tables).
  3. serve   - `policy-pipeline serve --interval 5s` over the up-to-date reextract output: the time of
               each no-op scheduled run (target <= 3 s), as Prefect records it and end to end.
  4. memory  - peak RSS parsing a 300-page PDF in a worker-like process (both backends), and of
               the corpus ingest / reextract process trees; target <= 500 MB each.
  5. backends - pdfplumber vs pypdfium2 pages/s on the sample PDFs (target >= 300 pages/s on the
               fast path) and whether both give identical text on them.
  6. extract - extraction CPU time before/after the speed work (bench/extract_speed.py).

Everything is written under bench/out/ (git-ignored); the table is printed and saved to
bench/out/latest.md. `--quick` uses a small corpus (500 text drafts) and finishes in a few minutes.
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
# Prefect's state for the benchmark's runs stays under bench/out/, apart from the project's .prefect/.
os.environ.setdefault("PREFECT_HOME", str(OUT / ".prefect"))
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import corpus  # noqa: E402

from flows.api import stop_session  # noqa: E402  (no Prefect import: flows/api.py)

PY = sys.executable


# ---------------------------------------------------------------------------------------------
# Process-tree memory


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "uvicorn" in cmd or "prefect.server" in cmd or "prefect server start" in cmd:
        return "prefect_api"
    if "resource_tracker" in cmd:
        return "other"
    if "prefect.engine" in cmd:
        return "flow_run"
    if "spawn_main" in cmd or "multiprocessing" in cmd:
        return "worker"
    return "other"


class TreeMonitor(threading.Thread):
    """Samples the RSS of a process and all its descendants: peak of the sum, peak per role."""

    def __init__(self, pid: int, interval: float = 0.1, max_mb: float = None, timeout: float = None):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.max_kb = max_mb * 1024 if max_mb else None
        self.deadline = time.monotonic() + timeout if timeout else None
        self.killed = None  # why the tree was stopped, if it was
        self.peak_total_kb = 0
        self.peak_kb: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            kids = _children()
            tree, todo = [], [self.pid]
            while todo:
                p = todo.pop()
                tree.append(p)
                todo += kids.get(p, [])
            total = 0
            for p in tree:
                rss = _status_kb(p, "VmRSS")
                hwm = _status_kb(p, "VmHWM")
                total += rss
                role = _role(p, self.pid)
                self.peak_kb[role] = max(self.peak_kb.get(role, 0), hwm)
            self.peak_total_kb = max(self.peak_total_kb, total)
            over_memory = self.max_kb and total > self.max_kb
            over_time = self.deadline and time.monotonic() > self.deadline
            if (over_memory or over_time) and not self.killed:
                # a guard for a shared machine: stop the whole tree (its own session) rather than
                # let one benchmark run exhaust the memory everyone uses
                self.killed = (f"stopped at {total / 1024:.0f} MB (guard {self.max_kb / 1024:.0f} MB)"
                               if over_memory else "stopped by the time guard")
                try:
                    os.killpg(self.pid, 9)
                except OSError:
                    pass
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_monitored(cmd: list[str], max_mb: float = None, timeout: float = None, **kw) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, **kw)
    mon = TreeMonitor(p.pid, max_mb=max_mb, timeout=timeout)
    mon.start()
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    mon.stop()
    if p.returncode and not mon.killed:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{err[-3000:]}")
    return {"wall": wall, "stdout": out, "stderr": err, "peak_total_mb": mon.peak_total_kb / 1024,
            "peak_mb": {k: v / 1024 for k, v in mon.peak_kb.items()}, "killed": mon.killed}


# ---------------------------------------------------------------------------------------------
# Scenarios: one folder per run (its own config copy, so its own text cache and manifest)

def scenario(name: str) -> Path:
    d = OUT / "runs" / name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(ROOT / "config", d / "config")
    jieba = OUT / "jieba_cache"
    if jieba.is_dir():  # jieba's compiled dictionary, as a machine that ran before has it
        shutil.copytree(jieba, d / ".cache" / "jieba")
    return d


def warm_jieba() -> None:
    from pipeline.stages.terms import keyword_extractor

    keyword_extractor(str(ROOT / "config"), str(OUT / "jieba_cache"))


def cli(args: list[str], d: Path) -> list[str]:
    # every folder explicit: the run must never touch the project's own .cache/ or processed/
    return [PY, "-m", "flows.cli", *args, "--config", str(d / "config"), "--out", str(d / "out"),
            "--cache", str(d / ".cache")]


# ---------------------------------------------------------------------------------------------
# Sections


def bench_prefect_start(empty_raw: Path) -> dict:
    """Fixed cost of a new process: Python + imports + embedded Prefect API + an empty flow run."""
    d = scenario("prefect_start")
    r = run_monitored(cli(["ingest", "--raw", str(empty_raw)], d), cwd=d)
    return {"wall": r["wall"], "peak_mb": r["peak_mb"]}


def parse_floor(files: list[Path], backend: str) -> dict:
    """Summed time of the bare parser calls (reader + normalise), one process, no cache."""
    from pipeline.readers import ReaderOptions, sniff
    from pipeline.stages.read import file_to_text

    opts = ReaderOptions(pdf_backend=backend)
    total, cpu, pages = 0.0, 0.0, 0
    for f in files:
        fmt = sniff(f)
        t, c = time.perf_counter(), time.process_time()
        parsed = file_to_text(f, fmt, opts)
        total += time.perf_counter() - t
        cpu += time.process_time() - c
        pages += parsed.n_pages or 0
    return {"seconds": total, "cpu": cpu, "pages": pages, "files": len(files)}


def parse_floor_parallel(files: list[Path], backend: str, n: int = 2) -> dict:
    """The same parser calls split over `n` processes started together (imports done before the
    clock starts): the floor under the same CPU contention as an n-worker run."""
    lists = [files[i::n] for i in range(n)]
    procs = [subprocess.Popen([PY, str(Path(__file__)), "--child-parse", backend, *map(str, part)],
                              stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, cwd=HERE)
             for part in lists]
    for p in procs:  # each prints "ready" once imported, then waits for a line on stdin
        assert p.stdout.readline().strip() == "ready"
    t = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"wall": time.perf_counter() - t, "cpu": sum(o["cpu"] for o in outs)}


def child_parse(backend: str, files: list[str]) -> None:
    from pipeline.readers import ReaderOptions, sniff
    from pipeline.stages.read import file_to_text

    opts = ReaderOptions(pdf_backend=backend)
    print("ready", flush=True)
    sys.stdin.readline()
    c = time.process_time()
    for f in files:
        file_to_text(Path(f), sniff(Path(f)), opts)
    print(json.dumps({"cpu": time.process_time() - c}), flush=True)


class Breakdown:
    """Where an in-process run's time goes, without touching the project's code: each Prefect task
    call is timed outside (task machinery included) and inside (its body); the flow process's own
    stages (decoding a batch, merging it into the staged tables, the change diff, the commit) are
    timed; the workers' CPU per job comes from the pool's `job_stats` log records. Names that no
    longer exist are skipped."""

    STAGES = (("pipeline.runtime.run", "collect"), ("pipeline.store.merge", "Merge.add"), ("pipeline.store.merge", "diff_tables"),
              ("pipeline.runtime.run", "RunOutput.finish"), ("pipeline.store.tables", "StagedWrite.commit"))

    def __init__(self):
        self.outer: dict[str, float] = {}
        self.inner: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stage: dict[str, float] = {}
        self.worker_cpu = 0.0
        self.worker_wall = 0.0
        self.jobs = 0
        self._undo: list = []

    def _add(self, d: dict, k: str, v: float) -> None:
        d[k] = d.get(k, 0.0) + v

    def __enter__(self) -> "Breakdown":
        import functools
        import importlib
        import logging

        from prefect import Task

        import flows.ingest as fi

        for name in dir(fi):
            obj = getattr(fi, name)
            if not isinstance(obj, Task):
                continue
            fn = obj.fn

            @functools.wraps(fn)
            def body(*a, __fn=fn, __n=obj.name, **k):
                t = time.perf_counter()
                try:
                    return __fn(*a, **k)
                finally:
                    self._add(self.inner, __n, time.perf_counter() - t)

            def call(*a, __task=obj, **k):
                t = time.perf_counter()
                try:
                    return __task(*a, **k)
                finally:
                    self._add(self.outer, __task.name, time.perf_counter() - t)
                    self.calls[__task.name] = self.calls.get(__task.name, 0) + 1

            obj.fn = body
            setattr(fi, name, call)
            self._undo.append(lambda o=obj, f=fn: setattr(o, "fn", f))
            self._undo.append(lambda n=name, o=obj: setattr(fi, n, o))
        for mod_name, fn_name in self.STAGES:
            try:
                mod = importlib.import_module(mod_name)
                owner, attr = mod, fn_name
                if "." in fn_name:
                    cls, attr = fn_name.split(".")
                    owner = getattr(mod, cls)
                orig = getattr(owner, attr)
            except (ImportError, AttributeError):
                continue

            @functools.wraps(orig)
            def timed(*a, __f=orig, __n=fn_name, **k):
                t = time.perf_counter()
                try:
                    return __f(*a, **k)
                finally:
                    self._add(self.stage, __n, time.perf_counter() - t)

            setattr(owner, attr, timed)
            self._undo.append(lambda m=owner, n=attr, f=orig: setattr(m, n, f))

        bd = self

        class H(logging.Handler):
            def emit(self, record):
                st = getattr(record, "job_stats", None)
                if st is not None:
                    bd.jobs += 1
                    bd.worker_cpu += st.cpu_seconds or 0.0
                    bd.worker_wall += st.seconds or 0.0

        lg = logging.getLogger("policy_pipeline.workers")
        h = H(level=logging.DEBUG)
        old_level, old_propagate = lg.level, lg.propagate
        lg.addHandler(h)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False  # the DEBUG records are for us, not for the console
        self._undo.append(lambda: (lg.removeHandler(h), lg.setLevel(old_level),
                                   setattr(lg, "propagate", old_propagate)))
        return self

    def __exit__(self, *exc) -> None:
        for undo in reversed(self._undo):
            undo()

    def summary(self) -> dict:
        overhead = {k: self.outer[k] - self.inner.get(k, 0.0) for k in self.outer}
        return {"task_outer": self.outer, "task_body": self.inner, "task_calls": self.calls,
                "prefect_task_overhead": sum(overhead.values()), "task_overhead": overhead,
                "stages": self.stage, "jobs": self.jobs, "worker_cpu": self.worker_cpu,
                "worker_wall": self.worker_wall}


def ingest_in_process(raw: Path, name: str, workers: int, backend: str, profile: bool = False) -> dict:
    from flows.ingest import run_ingest

    d = scenario(name)
    pr = cProfile.Profile() if profile else None
    with Breakdown() as bd:
        t, c = time.perf_counter(), time.process_time()
        if pr:
            pr.enable()
        s = run_ingest(raw_dir=str(raw), out_dir=str(d / "out"), config_dir=str(d / "config"),
                       cache_dir=str(d / ".cache"), workers=workers, pdf_backend=backend)
        if pr:
            pr.disable()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    # workers are not our children (forkserver): their CPU comes from the pool's job_stats
    cpu += bd.worker_cpu
    res = {"wall": wall, "cpu": cpu, "flow_seconds": s.get("seconds"), "status": s.get("status"),
           "errors": dict(s.get("errors", {})), "rows": s.get("rows"), "breakdown": bd.summary()}
    if pr:
        res["profile"] = _profile_text(pr)
    return res


def _profile_text(pr: cProfile.Profile, n: int = 25) -> str:
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(n)
    return buf.getvalue()


# The analyst's edits timed after the full re-extraction: rule file, then (old text, new text)
# replacements (the quantities edit is tests/test_incremental.py's drop_approx_word).
RULE_EDITS = {
    "quantities": ("quantities.yaml", [
        ("pattern: '(?:接近|大约|约为|约|将近|近)\\s*$'", "pattern: '(?:大约|约为|约|将近)\\s*$'"),
        ('examples: ["营业收入接近", "约"]', 'examples: ["营业收入大约", "约"]')]),
    "responsibilities": ("responsibilities.yaml", [("\n", "\n# reviewed by an analyst\n")]),
}


def edit_rule_file(config: Path, table: str) -> None:
    name, replacements = RULE_EDITS[table]
    p = config / name
    text = p.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, f"{old!r} is not in {p}"
        text = text.replace(old, new, 1)
    p.write_text(text, encoding="utf-8")


def reextract_floor(raw: Path, d: Path, tables=None) -> dict:
    """document_rows over the cached texts of `raw` in one process (loading timed apart); only the
    stages of `tables` when given."""
    from pipeline.readers import ReaderOptions, parser_version
    from pipeline.stages.extract import ALL_TABLES, Source, document_rows, load_rules
    from pipeline.store.textcache import load_cached

    rules = load_rules(d / "config")
    version = parser_version("text", ReaderOptions())
    t_load = t_rows = 0.0
    n = 0
    for f in sorted(raw.iterdir()):
        data = f.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        t = time.process_time()
        parsed = load_cached(d / ".cache", sha, version)
        t_load += time.process_time() - t
        if parsed is None:
            continue
        src = Source(f.name, f.name, sha, len(data), "text")
        t = time.process_time()
        document_rows(src, parsed, rules, tables or ALL_TABLES)
        t_rows += time.process_time() - t
        n += 1
    return {"docs": n, "rows_seconds": t_rows, "load_seconds": t_load}


def bench_serve(d: Path, raw: Path, n_runs: int = 3, timeout: float = 600) -> dict:
    """`policy-pipeline serve --interval 5s` over an output folder that is already up to date:
    every scheduled run is a no-op. Times of the first `n_runs` scheduled runs, three ways: the
    flow's own time (`runs.seconds`), Prefect's flow-run time (start → end, as the UI shows it),
    and scheduled time → end (adds the runner's polling and its subprocess start)."""
    import signal

    import httpx
    import pyarrow.parquet as pq

    out = d / "out"
    before = pq.read_table(out / "runs.parquet").num_rows
    env = {**os.environ, "PREFECT_HOME": str(d / "prefect_serve"), "POLICY_PIPELINE_HOME": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    log_path = d / "serve.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([*cli(["serve", "--interval", "5s", "--raw", str(raw), "--workers", "2"], d)],
                                cwd=d, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    mon = TreeMonitor(proc.pid)
    mon.start()
    flow_runs: list = []
    try:
        url = None
        while time.perf_counter() - t0 < timeout:
            time.sleep(1)
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            if url is None:
                for line in log_path.read_text(errors="replace").splitlines():
                    if "Prefect server (UI and API) on " in line:
                        url = line.split(" on ")[1].split()[0] + "/api"
            try:
                done = pq.read_table(out / "runs.parquet").num_rows - before
            except (OSError, ValueError):
                continue
            if url and done >= n_runs:
                r = httpx.post(f"{url}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_ASC", "limit": 50},
                               timeout=10)
                flow_runs = [f for f in r.json() if f["state_type"] == "COMPLETED"]
                if len(flow_runs) >= n_runs:
                    break
    finally:
        stop_session(proc, signal.SIGINT, grace=60)  # SIGINT: serve stops like on Ctrl-C
        mon.stop()

    import datetime as dt

    def ts(x):
        return dt.datetime.fromisoformat(x.replace("Z", "+00:00"))

    runs = pq.read_table(out / "runs.parquet").to_pylist()[before:]
    return {
        "runs": len(runs),
        "flow_seconds": [round(r["seconds"], 2) for r in runs],
        "prefect_seconds": [round((ts(f["end_time"]) - ts(f["start_time"])).total_seconds(), 2) for f in flow_runs],
        "scheduled_to_end": [round((ts(f["end_time"]) - ts(f["expected_start_time"])).total_seconds(), 2)
                             for f in flow_runs],
        "nothing_changed": all(r["n_new"] == r["n_changed"] == r["n_removed"] == 0 for r in runs),
        "peak_mb": {k: v / 1024 for k, v in mon.peak_kb.items()},
    }


def bench_long_pdf(pdf: Path) -> dict:
    out = {}
    for backend in ("pdfplumber", "pypdfium2"):
        d = scenario(f"long_pdf_{backend}")
        r = run_monitored([PY, str(Path(__file__)), "--child-long-pdf", str(pdf), backend, str(d / ".cache")],
                          cwd=HERE)
        res = json.loads(r["stdout"].strip().splitlines()[-1])
        res["peak_tree_mb"] = r["peak_total_mb"]
        out[backend] = res
    return out


def child_long_pdf(pdf: Path, backend: str, cache_dir: str) -> None:
    """Runs in its own process: the file goes through the real worker pool (one worker, the
    configured limits), parse → cache → extract → terms; prints the worker's peak RSS."""
    import inspect

    from pipeline.config import load_settings
    from pipeline.readers import sniff
    from pipeline.runtime.job import Job, process_job
    from pipeline.runtime.workers import WorkerPool, make_work_context
    from pipeline.stages.extract import Source, load_rules

    settings = load_settings(ROOT / "config")
    rules = load_rules(ROOT / "config")
    known = {"rules": rules, "config_dir": str(ROOT / "config"), "rules_version": rules.version,
             "cache_dir": cache_dir, "pdf_backend": backend, "terms_per_section": settings.terms_per_section,
             "preload_keywords": True}
    args = tuple(known[p] for p in inspect.signature(make_work_context).parameters)
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    src = Source(pdf.name, pdf.name, sha, pdf.stat().st_size, sniff(pdf))
    t = time.perf_counter()
    with WorkerPool(1, make_work_context, args, process_job, settings.timeout_seconds,
                    settings.memory_limit_mb) as pool:
        (_job, value, stats), = list(pool.map_with_stats([Job(src, str(pdf))]))
    wall = time.perf_counter() - t
    ok = hasattr(value, "tables")
    print(json.dumps({"seconds": stats.seconds, "wall_with_start": wall, "outcome": stats.outcome,
                      "pages": value.tables["documents"][0]["n_pages"] if ok else None,
                      "peak_mb": stats.peak_rss_mb, "idle_mb": stats.idle_rss_mb, "cpu": stats.cpu_seconds,
                      "rows": {k: len(v) for k, v in value.tables.items()} if ok else repr(value)}))


def bench_backends(reps: int) -> dict:
    from pipeline.readers import ReaderOptions
    from pipeline.stages.read import file_to_text

    pdfs = sorted((ROOT / "raw").glob("*.pdf"))
    times = {"pdfplumber": 0.0, "pypdfium2": 0.0}
    texts: dict[str, dict[str, str]] = {"pdfplumber": {}, "pypdfium2": {}}
    pages = 0
    pdfium_load = 0.0
    for rep in range(reps):
        pdfium_load += pdfium_page_load(pdfs)
        for backend in times:  # interleaved: same conditions for both
            opts = ReaderOptions(pdf_backend=backend)
            for p in pdfs:
                t = time.perf_counter()
                parsed = file_to_text(p, "pdf", opts)
                times[backend] += time.perf_counter() - t
                texts[backend][p.name] = parsed.text
                if backend == "pdfplumber":
                    pages += parsed.n_pages or 0
    same = [n for n in texts["pdfplumber"] if texts["pdfplumber"][n] == texts["pypdfium2"][n]]
    diff = {}
    for n in texts["pdfplumber"]:
        a, b = texts["pdfplumber"][n], texts["pypdfium2"][n]
        if a != b:
            k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            diff[n] = {"at": k, "pdfplumber": a[max(0, k - 15):k + 25], "pypdfium2": b[max(0, k - 15):k + 25]}
    return {"pages": pages, "pages_per_s": {k: pages / v for k, v in times.items()},
            "pdfium_load_pages_per_s": pages / pdfium_load,
            "identical": len(same), "files": len(pdfs), "diff": diff}


def pdfium_page_load(pdfs: list[Path]) -> float:
    """Seconds pdfium itself takes to open the files and load each page and its text page (what
    the pypdfium2 reader costs before it reads a single char): the ceiling of that backend."""
    import pypdfium2 as pdfium

    t = time.perf_counter()
    for p in pdfs:
        pdf = pdfium.PdfDocument(str(p))
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            textpage.count_chars()
            textpage.close()
            page.close()
        pdf.close()
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------------


def breakdown_text(b: dict) -> str:
    body = b["task_body"]
    parts = [f"Prefect task machinery {b['prefect_task_overhead']:.1f} s "
             f"(" + ", ".join(f"{k} {v:.1f}" for k, v in sorted(b["task_overhead"].items(), key=lambda x: -x[1])
                              if v >= 0.05) + ")"]
    parts.append("task bodies: " + ", ".join(f"{k} {v:.1f} s" for k, v in body.items() if v >= 0.05))
    if b["stages"]:
        parts.append("of which " + ", ".join(f"{k} {v:.1f} s" for k, v in b["stages"].items()))
    if b["jobs"]:
        parts.append(f"workers: {b['jobs']} jobs, {b['worker_cpu']:.1f} s CPU, {b['worker_wall']:.1f} s job wall")
    return "; ".join(parts).replace("|", "\\|")


def fmt_mb(x) -> str:
    return "-" if x is None else f"{x:.0f} MB"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-long-pdf":
        child_long_pdf(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-parse":
        child_parse(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small corpora (~2-4 minutes)")
    ap.add_argument("--docs", type=int, default=None, help="text drafts for reextract (default 10000, quick 500)")
    ap.add_argument("--pdfs", type=int, default=None, help="PDFs in the ingest corpus (default 60, quick 12)")
    ap.add_argument("--docx", type=int, default=None, help="DOCX in the ingest corpus (default 30, quick 6)")
    ap.add_argument("--skip", nargs="*", default=[],
                    help="sections to skip: ingest reextract serve memory backends extract")
    ap.add_argument("--profile", action="store_true", help="cProfile the flow process of the ingest and reextract runs")
    ap.add_argument("--max-tree-mb", type=float, default=6000,
                    help="stop a CLI run whose process tree passes this resident size (shared machine)")
    ap.add_argument("--max-run-minutes", type=float, default=30, help="stop a CLI run after this long")
    ap.add_argument("--inprocess-max-docs", type=int, default=2000,
                    help="run the in-process reextract (timing breakdown) only up to this many documents")
    a = ap.parse_args()
    n_docs = a.docs or (500 if a.quick else 10000)
    n_pdf = a.pdfs or (12 if a.quick else 60)
    n_docx = a.docx or (6 if a.quick else 30)
    OUT.mkdir(parents=True, exist_ok=True)
    T0 = time.perf_counter()
    R: dict = {"quick": a.quick, "n_docs": n_docs}

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - T0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    # Corpora
    log("building corpora under bench/out/corpus")
    ingest_raw = OUT / "corpus" / f"ingest_{n_pdf}_{n_docx}"
    corpus.build_pdf_corpus(ingest_raw, n_pdf)
    corpus.build_docx_corpus(ingest_raw, n_docx)
    text_raw = OUT / "corpus" / f"text_{n_docs}"
    if not text_raw.is_dir() or len(list(text_raw.iterdir())) != n_docs:
        full = OUT / "corpus" / "text"
        paths = corpus.build_text_corpus(full, n_docs)
        text_raw.mkdir(parents=True, exist_ok=True)
        for p in paths:
            q = text_raw / p.name
            if not q.exists():
                os.link(p, q)
    long_pdf = corpus.build_long_pdf(OUT / "corpus", 300)
    empty_raw = OUT / "corpus" / "empty"
    empty_raw.mkdir(parents=True, exist_ok=True)
    warm_jieba()

    # Fixed per-process cost
    log("prefect: fresh process, empty run")
    R["prefect_start"] = bench_prefect_start(empty_raw)

    if "ingest" not in a.skip:
        files = sorted(p for p in ingest_raw.iterdir() if p.is_file())
        from flows.ingest import run_ingest  # noqa: F401  (imports Prefect here, before timing)

        log("ingest: starting Prefect in this process (empty run)")
        d = scenario("warmup")
        t = time.perf_counter()
        run_ingest(raw_dir=str(empty_raw), out_dir=str(d / "out"), config_dir=str(d / "config"),
                   cache_dir=str(d / ".cache"), workers=1)
        R["prefect_in_process"] = time.perf_counter() - t
        R["ingest"] = {"files": len(files), "size_mb": sum(f.stat().st_size for f in files) / 1e6}
        backends = ("pdfplumber",) if a.quick else ("pdfplumber", "pypdfium2")
        for backend in backends:
            log(f"ingest [{backend}]: parser floor")
            floor = parse_floor(files, backend)
            floor["parallel"] = parse_floor_parallel(files, backend)
            res = {"floor": floor}
            for w in (1, 2):
                log(f"ingest [{backend}]: run_ingest, {w} worker(s)")
                res[f"w{w}"] = ingest_in_process(ingest_raw, f"ingest_{backend}_w{w}", w, backend,
                                                 profile=a.profile and w == 2)
            R["ingest"][backend] = res

    if "reextract" not in a.skip:
        d = scenario(f"reextract_{n_docs}")
        log(f"reextract: first ingest of {n_docs} text drafts (policy-pipeline ingest, 2 workers)")
        guard = {"max_mb": a.max_tree_mb, "timeout": a.max_run_minutes * 60}
        first = run_monitored(cli(["ingest", "--raw", str(text_raw), "--workers", "2"], d), cwd=d, **guard)
        log("reextract: policy-pipeline reextract")
        again = run_monitored(cli(["reextract", "--raw", str(text_raw), "--workers", "2"], d), cwd=d,
                              **guard) if not first["killed"] else first
        from flows.ingest import run_ingest

        inproc = n_docs <= a.inprocess_max_docs and not first["killed"]
        if inproc:
            log("reextract: run_ingest(reextract=True) in this process")
        pr = cProfile.Profile() if a.profile and inproc else None
        with Breakdown() as bd:
            t = time.perf_counter()
            if pr:
                pr.enable()
            s = run_ingest(raw_dir=str(text_raw), out_dir=str(d / "out"), config_dir=str(d / "config"),
                           cache_dir=str(d / ".cache"), workers=2, reextract=True,
                           trigger="reextract") if inproc else {}
            if pr:
                pr.disable()
            in_proc = time.perf_counter() - t if inproc else None
        keys = ("wall", "peak_total_mb", "peak_mb", "killed")
        edits = {}
        for table in RULE_EDITS if not first["killed"] else ():
            log(f"reextract: edit of {RULE_EDITS[table][0]}, then policy-pipeline ingest")
            edit_rule_file(d / "config", table)
            r = run_monitored(cli(["ingest", "--raw", str(text_raw), "--workers", "2"], d), cwd=d, **guard)
            log(f"reextract: floor of the {table} edit (document_rows of those tables, one process)")
            edits[table] = {**{k: r[k] for k in keys}, "floor": reextract_floor(text_raw, d, (table,)),
                            "summary": [x for x in r.get("stdout", "").splitlines() if x.startswith("re-extracted")]}
        log("reextract: floor (document_rows over the cached texts, one process)")
        floor = reextract_floor(text_raw, d)
        R["reextract"] = {"first": {k: first[k] for k in keys}, "cli": {k: again[k] for k in keys},
                          "edits": edits,
                          "in_process": in_proc, "in_process_status": s.get("status"),
                          "breakdown": bd.summary(),
                          "floor": floor, "rows": s.get("rows")}
        if pr:
            R["reextract"]["profile"] = _profile_text(pr)
        if "serve" not in a.skip and not first["killed"]:
            log("serve: no-op scheduled runs over the up-to-date text corpus")
            R["serve"] = bench_serve(d, text_raw)

    if "memory" not in a.skip:
        log("memory: 300-page PDF, one worker-like process per backend")
        R["long_pdf"] = bench_long_pdf(long_pdf)

    if "backends" not in a.skip:
        log("backends: pdfplumber vs pypdfium2 on the sample PDFs")
        R["backends"] = bench_backends(1 if a.quick else 3)

    if "extract" not in a.skip:
        log("extract: before/after, side by side")
        import extract_speed

        inputs = extract_speed.build_inputs(50 if a.quick else 300)
        R["extract"] = extract_speed.compare(inputs, rounds=1 if a.quick else 2, reps=1 if a.quick else 2)

    R["total_seconds"] = time.perf_counter() - T0
    (OUT / "latest.json").write_text(json.dumps(R, indent=1, default=str), encoding="utf-8")
    md = report(R)
    (OUT / "latest.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    profiles = {f"ingest_{b}_w2": ((R.get("ingest") or {}).get(b) or {}).get("w2", {}).get("profile")
                for b in ("pdfplumber", "pypdfium2")}
    profiles["reextract"] = (R.get("reextract") or {}).get("profile")
    for name, prof in profiles.items():
        if prof:
            (OUT / f"profile_{name}.txt").write_text(prof, encoding="utf-8")
            print(f"flow-process profile of {name}: bench/out/profile_{name}.txt", file=sys.stderr)


def report(R: dict) -> str:
    rows = ["| measure | figure | target | |", "|---|---:|---:|---|"]

    def add(name, fig, target="", ok=None):
        rows.append(f"| {name} | {fig} | {target} | {'' if ok is None else ('ok' if ok else '**miss**')} |")

    ps = R.get("prefect_start")
    if ps:
        add("fixed cost of a new process (Python, imports, embedded Prefect API, empty flow run)",
            f"{ps['wall']:.1f} s")
    if "prefect_in_process" in R:
        add("…of which in this process: first (empty) run_ingest", f"{R['prefect_in_process']:.1f} s")
    ing = R.get("ingest")
    if ing:
        for backend in ("pdfplumber", "pypdfium2"):
            r = ing.get(backend)
            if not r:
                continue
            fl = r["floor"]
            w1, w2 = r["w1"]["wall"], r["w2"]["wall"]
            half = fl["seconds"] / 2
            tag = f"1. ingest {ing['files']} files ({fl['pages']} PDF pages, {ing['size_mb']:.1f} MB), {backend}"
            par = fl["parallel"]
            add(f"{tag}: parser floor, sum of reader+normalise calls in one process / ÷2 "
                f"[/ wall of the same calls in 2 processes]",
                f"{fl['seconds']:.1f} s / {half:.1f} s [/ {par['wall']:.1f} s]")
            add(f"{tag}: run_ingest 1 worker (ratio to floor)", f"{w1:.1f} s ({w1 / fl['seconds']:.2f}×)")
            add(f"{tag}: run_ingest 2 workers (ratio to floor÷2) [ratio to the 2-process floor]",
                f"{w2:.1f} s ({w2 / half:.2f}×) [{w2 / par['wall']:.2f}×]", "≤ 1.15×", w2 / half <= 1.15)
            add(f"{tag}: CPU seconds, floor / run_ingest 1 worker / 2 workers (flow process + workers' jobs)",
                f"{fl['cpu']:.1f} / {r['w1']['cpu']:.1f} / {r['w2']['cpu']:.1f}")
            add(f"{tag}: speed-up 2 workers vs 1", f"{w1 / w2:.2f}×", "≥ 1.8×", w1 / w2 >= 1.8)
            for w in ("w1", "w2"):
                add(f"{tag}: where the {w[1]}-worker run's time goes", breakdown_text(r[w]["breakdown"]))
            errs = {**r["w1"]["errors"], **r["w2"]["errors"]}
            if errs:
                add(f"{tag}: errors", json.dumps(errs))
    rx = R.get("reextract")
    if rx:
        n = R["n_docs"]
        fl = rx["floor"]
        def wall(r):
            return f"{r['wall']:.1f} s" + (f" — {r['killed']}" if r.get("killed") else "")

        add(f"2. first ingest of {n} text drafts, `policy-pipeline ingest` (2 workers, new process)", wall(rx["first"]))
        target = 15 * n / 10000
        add(f"2. re-extract {n} cached drafts, `policy-pipeline reextract` (2 workers, new process: Prefect start included)",
            wall(rx["cli"]), "≤ 15 s" if n >= 10000 else f"(≤ {target:.1f} s pro rata)",
            (rx["cli"]["wall"] <= 15 and not rx["cli"].get("killed")) if n >= 10000 else None)
        if rx["in_process"] is not None:
            add("2. …same, run_ingest(reextract=True) in a process with Prefect already up", f"{rx['in_process']:.1f} s")
            add("2. …where that run's time goes", breakdown_text(rx["breakdown"]))
        add(f"2. floor: document_rows over {fl['docs']} cached texts, one process (÷2)",
            f"{fl['rows_seconds']:.1f} s ({fl['rows_seconds'] / 2:.1f} s); "
            f"{fl['rows_seconds'] / max(fl['docs'], 1) * 1e3:.2f} ms/doc; cache load {fl['load_seconds']:.1f} s")
        for table, e in (rx.get("edits") or {}).items():
            efl = e["floor"]
            add(f"2. edit of {RULE_EDITS[table][0]}, then `policy-pipeline ingest` (re-extracts {table} only; "
                f"new process) [floor: document_rows of {table} only, one process ÷2]",
                f"{wall(e)} [{efl['rows_seconds'] / 2:.1f} s; "
                f"{efl['rows_seconds'] / max(efl['docs'], 1) * 1e3:.2f} ms/doc]",
                "≤ 15 s" if n >= 10000 else f"(≤ {target:.1f} s pro rata)",
                (e["wall"] <= 15 and not e.get("killed")) if n >= 10000 else None)
    sv = R.get("serve")
    if sv:
        med = sorted(sv["prefect_seconds"])[len(sv["prefect_seconds"]) // 2] if sv["prefect_seconds"] else None
        add(f"3. no-op scheduled run inside a running serve process, {R['n_docs']} documents: flow run "
            f"start → end as Prefect records it (each of {len(sv['prefect_seconds'])} runs)",
            " / ".join(f"{x:.1f} s" for x in sv["prefect_seconds"]), "≤ 3 s", med is not None and med <= 3)
        add("3. …the flow's own time (runs.seconds) / scheduled time → end (runner poll + subprocess start)",
            " / ".join(f"{x:.1f}" for x in sv["flow_seconds"]) + " s; "
            + " / ".join(f"{x:.1f}" for x in sv["scheduled_to_end"]) + " s")
        add("3. …peak RSS: serve process / flow-run subprocess / Prefect server",
            f"{fmt_mb(sv['peak_mb'].get('main'))} / {fmt_mb(sv['peak_mb'].get('flow_run'))} / "
            f"{fmt_mb(sv['peak_mb'].get('prefect_api'))}")
    lp = R.get("long_pdf")
    if lp:
        for backend, r in lp.items():
            add(f"4. peak RSS of the worker, 300-page PDF, {backend} ({r['pages']} pages, {r['outcome']}, "
                f"{r['seconds']:.1f} s; worker idle {fmt_mb(r['idle_mb'])})", fmt_mb(r["peak_mb"]), "≤ 500 MB",
                (r["peak_mb"] or 1e9) <= 500)
    if rx:
        runs = [("ingest", rx["first"]), ("reextract", rx["cli"])]
        runs += [(f"{RULE_EDITS[t][0]} edit", e) for t, e in (rx.get("edits") or {}).items()]
        for label, r in runs:
            pk = r["peak_mb"]
            add(f"4. peak RSS, {R['n_docs']}-document {label}: flow process / largest worker / Prefect API "
                f"(sum of tree)",
                f"{fmt_mb(pk.get('main'))} / {fmt_mb(pk.get('worker'))} / {fmt_mb(pk.get('prefect_api'))} "
                f"({fmt_mb(r['peak_total_mb'])})", "≤ 500 MB", pk.get("main", 0) <= 500)
    be = R.get("backends")
    if be:
        for k, v in be["pages_per_s"].items():
            add(f"5. {k} pages/s on the sample PDFs ({be['pages']} pages)", f"{v:.0f}",
                "≥ 300" if k == "pypdfium2" else "", v >= 300 if k == "pypdfium2" else None)
        if "pdfium_load_pages_per_s" in be:
            add("5. …pdfium's own page load (open, page, text page; no char read): the ceiling of pypdfium2",
                f"{be['pdfium_load_pages_per_s']:.0f}")
        add("5. identical text from both backends on the sample PDFs", f"{be['identical']}/{be['files']}",
            f"{be['files']}/{be['files']}", be["identical"] == be["files"])
        for n, d in be["diff"].items():
            add(f"5. …first difference in {n} at char {d['at']}",
                f"`{d['pdfplumber']!r}` vs `{d['pypdfium2']!r}`".replace("|", "\\|"))
    table = "\n".join(rows)
    ex = R.get("extract")
    if ex:
        import extract_speed

        table += "\n\n" + extract_speed.report(ex)
    table += f"\n\n(bench/run.py{' --quick' if R['quick'] else ''}, {R['total_seconds'] / 60:.1f} min, " \
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)"
    return table


if __name__ == "__main__":
    main()
