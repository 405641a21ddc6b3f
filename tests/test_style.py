"""The code base passes `ruff check` (pyflakes and pycodestyle errors) and is in `ruff format`'s
style (both configured in pyproject.toml); modules stay under 500 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("cfx", "tests", "experiments", "benchmarks", "examples")

#: Modules still past the limit after the tree was reformatted (ruff's one-argument-per-line style
#: grew them by 10-40 %); each is being split into private modules. The list only shrinks.
OVER_LIMIT: set[str] = set()  # all split (2026-12-08)
MAX_LINES = 500


def _ruff(*args):
    pytest.importorskip("ruff", reason="ruff is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *TREES], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_check_passes():
    out = _ruff("check", "--output-format", "concise")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_format_check_passes():
    out = _ruff("format", "--check")
    assert out.returncode == 0, "run `python -m ruff format <file>` on:\n" + out.stdout[-4000:] + out.stderr[-2000:]


def test_modules_stay_under_the_line_limit():
    lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "cfx").rglob("*.py")}
    too_long = {f: n for f, n in lengths.items() if n > MAX_LINES and f not in OVER_LIMIT}
    assert not too_long, f"split these modules (at most {MAX_LINES} lines): {too_long}"
    shrunk = sorted(f for f in OVER_LIMIT if lengths.get(f, 0) <= MAX_LINES)
    assert not shrunk, f"these modules are now under the limit: remove them from OVER_LIMIT: {shrunk}"
