"""Soundness check of the extractors' pre-filters (pipeline.stages.normalise), with more drafts and
mutations than the test suite runs: the checks live in tests/test_prefilter.py.

    .venv/bin/python bench/check_prefilter.py [--fuzz N] [--docs N]

Exit status 1 on any counter-example. Worth running after editing config/*.yaml.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if __name__ == "__main__":
    runpy.run_path(str(ROOT / "tests" / "test_prefilter.py"), run_name="__main__")
