"""The architecture the README's "How it works" describes, checked on the source.

- Import directions between the layers of `pipeline/` (every import counts, the ones inside
  functions too): a layer imports only the layers below it, and `pipeline/` never imports Prefect
  or `flows/`.
- No import cycle between modules, counting only module-level imports (the ones that run when a
  module is imported).
- Packaging: everything `pipeline/` and `flows/` import at run time is a runtime dependency in
  pyproject.toml (not a test extra), so `pip install .` reads every format; and each reader's
  cache key holds the versions of exactly the libraries its modules import.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from conftest import ROOT

from pipeline.readers import READER_LIBRARIES

# Layer of each module, by the longest matching prefix, and the layers each may import.
LAYERS = {
    "pipeline.model": "core",
    "pipeline.errors": "core",
    "pipeline.config": "core",
    "pipeline.rules": "core",
    "pipeline.prefilter": "core",
    "pipeline.readers": "readers",
    "pipeline.stages": "stages",
    "pipeline.store": "store",
    "pipeline.runtime": "runtime",
    "pipeline.evaluation": "evaluation",
    "flows": "flows",
}
MAY_IMPORT = {
    "core": {"core"},
    "readers": {"core", "readers"},
    "stages": {"core", "readers", "stages"},
    "store": {"core", "store"},
    "runtime": {"core", "readers", "stages", "store", "runtime"},
    "evaluation": {"core", "readers", "stages", "store", "runtime", "evaluation"},
    "flows": {"core", "readers", "stages", "store", "runtime", "evaluation", "flows"},
}
# The modules whose imports make up each reader's libraries (pdfminer runs under pdfplumber).
READER_MODULES = {
    "text": ["pipeline/readers/text.py"],
    "docx": ["pipeline/readers/docx.py", "pipeline/readers/safezip.py"],
    "pdfplumber": ["pipeline/readers/pdf/safety.py", "pipeline/readers/pdf/plumber.py"],
    "pypdfium2": ["pipeline/readers/pdf/safety.py", "pipeline/readers/pdf/pdfium.py"],
}


def _modules() -> dict[str, Path]:
    out = {}
    for base in ("pipeline", "flows"):
        for path in sorted((ROOT / base).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _layer(module: str):
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return LAYERS.get(best)


MODULES = _modules()


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("pipeline.")])
def test_pipeline_imports_only_the_layers_below(module):
    layer = _layer(module)
    assert layer is not None, f"{module} is in no layer: add it to LAYERS and to README 'How it works'"
    bad = sorted(name for name in _imports(MODULES[module])
                 if (_layer(name) not in MAY_IMPORT[layer] and _layer(name) is not None)
                 or name.split(".")[0] in ("prefect", "prefect_dask", "flows"))
    assert not bad, f"{module} ({layer}) imports {bad}"


def test_no_import_cycle():
    graph = {m: {n for n in _imports(p, top_level_only=True) if n in MODULES and n != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def _third_party(paths) -> set[str]:
    """Top-level names of the non-stdlib, non-project packages the files import."""
    tops = {name.split(".")[0] for p in paths for name in _imports(p)}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in ("pipeline", "flows", "__future__")}


def _dist(top: str) -> str:
    dists = packages_distributions().get(top)
    assert dists, f"no installed distribution provides {top!r}"
    return dists[0].lower().replace("_", "-")


def _requirement_name(req: str) -> str:
    for sep in "=<>[;! ":
        req = req.split(sep)[0]
    return req.lower().replace("_", "-")


def test_runtime_imports_are_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    # What the runtime dependencies bring along (pdfminer.six with pdfplumber, ...) is installed
    # by `pip install .` too, but imported directly it should be declared: it is part of the API.
    used = {_dist(t) for t in _third_party(MODULES.values())}
    assert used - runtime == set(), "imported at run time but not a runtime dependency"


@pytest.mark.parametrize("reader", sorted(READER_MODULES))
def test_each_cache_key_holds_exactly_the_readers_libraries(reader):
    used = {_dist(t) for t in _third_party(ROOT / p for p in READER_MODULES[reader])}
    assert used == {d.lower() for d in READER_LIBRARIES[reader]}
