"""`policy-pipeline`: the console command.

    policy-pipeline ingest [--raw DIR] [--out DIR] [--config DIR] [--pdf-backend NAME] [--workers N]
                           [--dask-address tcp://HOST:PORT | --dask-address local]
    policy-pipeline reextract [--raw DIR] [--out DIR] [--config DIR]
    policy-pipeline serve [--interval 10m | --cron "0 * * * *"] [--raw DIR] [--out DIR] [--config DIR]
    policy-pipeline check-rules [--config DIR]
    policy-pipeline score [seeds|genre|real ...] [-v] [--config DIR] [--cache DIR] [--pdf-backend NAME]

Exit status: 0 when the run completed (files that failed are in errors.parquet), 2 when the
configuration or a rule file is invalid (nothing was written), 3 when another run holds the output
folder and --no-wait was given, 1 on any other failure.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional

from pipeline.config import ConfigError
from pipeline.rules import RuleFileError


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", "%H:%M:%S"))
    lg = logging.getLogger("policy_pipeline")
    lg.handlers[:] = [handler]
    lg.setLevel(logging.DEBUG if verbose else logging.INFO)
    lg.propagate = False


def format_summary(s: dict) -> str:
    files = s["files"]
    rv = s["rules_version"]
    if s.get("previous_rules_version") and s["previous_rules_version"] != rv:
        rv = f"{s['previous_rules_version']} → {rv}"
    n_failed = sum(s["errors"].values())
    lines = [
        f"run {s['run_id']}  ({s['trigger']}, rules {rv})",
        f"raw:  {s['raw_dir']}",
        f"out:  {s['out_dir']}",
        "files: " + ", ".join(f"{files.get(k, 0)} {k}" for k in ("new", "changed", "unchanged", "removed")),
        f"processed: {s['processed']}  ok: {s['status'].get('ok', 0)}  failed: {n_failed}",
    ]
    if s.get("tables_extracted") and s.get("previous_rules_version") and s["previous_rules_version"] != s["rules_version"]:
        carried = s.get("tables_carried")
        lines.append("re-extracted: " + ", ".join(s["tables_extracted"])
                     + (f" (carried over: {', '.join(carried)})" if carried else ""))
    if s["errors"]:
        lines.append("errors by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items())))
    if s.get("nothing_changed"):
        lines.append("nothing changed: the tables were left as they were (the run is recorded in runs)")
    lines.append("rows: " + ", ".join(f"{k} {v}" for k, v in s["rows"].items()))
    if s.get("changes"):
        lines.append(s["changes"])
    lines.append(f"time: {s['seconds']:.1f} s")
    return "\n".join(lines)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", type=Path, default=None, help="folder of drafts (default: raw_dir in config)")
    p.add_argument("--out", type=Path, default=None, help="folder for the tables (default: out_dir in config)")
    p.add_argument("--config", type=Path, default=None, help="config folder (default: ./config)")
    p.add_argument("--cache", type=Path, default=None, help="text cache folder (default: cache_dir in config)")
    p.add_argument("--pdf-backend", choices=["pdfplumber", "pypdfium2"], default=None)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("-v", "--verbose", action="store_true")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dask-address", default=None, metavar="ADDR",
                   help="run the batches on a Dask cluster: tcp://HOST:PORT, or 'local' to start a "
                        "LocalCluster of --workers processes (paths must be reachable from its workers)")
    p.add_argument("--no-wait", action="store_true",
                   help="exit at once (status 3) when another run is writing the output folder")


def _serve(a: argparse.Namespace) -> int:
    from flows.serve import parse_interval, serve
    from pipeline.config import load_settings
    from pipeline.stages.extract import load_rules

    s = load_settings(a.config, raw_dir=str(a.raw) if a.raw else None,
                      out_dir=str(a.out) if a.out else None, cache_dir=str(a.cache) if a.cache else None)
    load_rules(s.config_dir)  # a bad rule file stops here, not in every scheduled run
    try:
        interval = None if a.cron else parse_interval(a.interval or "10m")
    except ValueError as e:
        print(f"policy-pipeline: {e}", file=sys.stderr)
        return 2
    params = {"raw_dir": str(s.raw_dir), "out_dir": str(s.out_dir), "cache_dir": str(s.cache_dir),
              "config_dir": str(s.config_dir), "pdf_backend": a.pdf_backend, "workers": a.workers}
    serve(interval, a.cron, {k: v for k, v in params.items() if v is not None}, name=a.name)
    return 0


def _run(a: argparse.Namespace) -> dict:
    """`ingest` / `reextract`: the local Prefect API starts first (flows/api.py: it is the longest
    part of a new process's start), then, while it starts, settings and rules are validated (a bad
    value stops the run and the API before anything is written) and the flow module is imported."""
    from flows.api import prefect_api
    from flows.prefect_env import configure
    from pipeline.config import load_settings, project_dir
    from pipeline.stages.extract import load_rules

    configure(project_dir())
    with prefect_api(wait=False) as api:
        load_rules(load_settings(a.config).config_dir)
        from flows.ingest import run_ingest

        if api:
            api.wait()
        return run_ingest(
            raw_dir=str(a.raw) if a.raw else None, out_dir=str(a.out) if a.out else None,
            config_dir=str(a.config) if a.config else None, pdf_backend=a.pdf_backend,
            cache_dir=str(a.cache) if a.cache else None,
            workers=a.workers, reextract=a.command == "reextract",
            wait_if_busy=False if a.no_wait else None,
            dask_address=a.dask_address, dask_workers=a.workers or 2,
            trigger="reextract" if a.command == "reextract" else "manual")


def _score(a: argparse.Namespace) -> int:
    """`score`: each evaluation set extracted in-process into a temporary folder and scored against
    its gold (pipeline/evaluation/sets.py); parsed text goes to the text cache, as in a run."""
    import tempfile

    from pipeline.config import load_settings, project_dir
    from pipeline.evaluation.sets import eval_sets, evaluate, format_report
    from pipeline.readers import ReaderOptions
    from pipeline.stages.extract import load_rules

    logging.getLogger("pdfminer").setLevel(logging.ERROR)  # font warnings of the real PDFs
    s = load_settings(a.config, cache_dir=str(a.cache) if a.cache else None,
                      pdf_backend=a.pdf_backend)
    rules = load_rules(s.config_dir)
    sets = eval_sets(project_dir())
    unknown = [name for name in a.sets if name not in sets]
    if unknown:
        print(f"policy-pipeline: no set {', '.join(unknown)} (the sets: {', '.join(sets)})", file=sys.stderr)
        return 2
    for name in a.sets or list(sets):
        es = sets[name]
        if not es.gold_dir.is_dir() or not es.input_dir.is_dir():
            print(f"policy-pipeline: set {name!r} not found ({es.input_dir}, {es.gold_dir}): "
                  "run from the project folder or set POLICY_PIPELINE_HOME", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix=f"score-{name}-") as tmp:
            reports = evaluate(es, rules, Path(tmp), verbose=a.verbose,
                               options=ReaderOptions(pdf_backend=s.pdf_backend), cache_dir=s.cache_dir)
        print(format_report(es, reports, a.verbose), flush=True)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="policy-pipeline", description="Chinese policy drafts → Parquet tables.")
    sub = ap.add_subparsers(dest="command", required=True)
    p_ing = sub.add_parser("ingest", help="ingest new and changed files from raw/ into processed/")
    _add_common(p_ing)
    _add_run_options(p_ing)
    p_re = sub.add_parser("reextract", help="re-extract every document from cached text (after a rule edit)")
    _add_common(p_re)
    _add_run_options(p_re)
    p_srv = sub.add_parser("serve", help="run ingest on a schedule as a Prefect deployment")
    when = p_srv.add_mutually_exclusive_group()
    when.add_argument("--interval", default=None, help="e.g. 30s, 10m, 1h (default 10m)")
    when.add_argument("--cron", default=None, help='cron expression, e.g. "0 * * * *"')
    p_srv.add_argument("--name", default="scheduled-ingest", help="deployment name")
    _add_common(p_srv)
    p_chk = sub.add_parser("check-rules", help="validate the rule files and their examples")
    p_chk.add_argument("--config", type=Path, default=None)
    p_sc = sub.add_parser("score", help="score the seeds, genre drafts and real documents against their gold")
    p_sc.add_argument("sets", nargs="*", metavar="SET", help="seeds, genre, real (default: all three)")
    p_sc.add_argument("-v", "--verbose", action="store_true", help="list each document's misses and extras")
    p_sc.add_argument("--config", type=Path, default=None)
    p_sc.add_argument("--cache", type=Path, default=None, help="text cache folder (default: cache_dir in config)")
    p_sc.add_argument("--pdf-backend", choices=["pdfplumber", "pypdfium2"], default=None)
    a = ap.parse_args(argv)
    _setup_logging(getattr(a, "verbose", False))

    try:
        if a.command == "check-rules":
            from pipeline.config import load_settings
            from pipeline.stages.extract import load_rules

            s = load_settings(a.config)
            rs = load_rules(s.config_dir)
            n = sum(len(f.all_rules()) for f in rs.files.values())
            print(f"{n} rules in {len(rs.files)} files are valid (rules_version {rs.version})")
            return 0
        if a.command == "serve":
            return _serve(a)
        if a.command == "score":
            return _score(a)
        summary = _run(a)
    except (ConfigError, RuleFileError) as e:
        print(f"policy-pipeline: {e}\nnothing was written.", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"policy-pipeline: {e}", file=sys.stderr)
        return 2
    if "busy" in summary:
        print(f"policy-pipeline: {summary['busy']}", file=sys.stderr)
        return 3
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
