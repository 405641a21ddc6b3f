"""The code base passes `ruff check` (pyflakes and pycodestyle errors; configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_passes():
    pytest.importorskip("ruff", reason="ruff is not installed (pip install -e '.[test]')")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "cfx", "tests", "experiments", "benchmarks", "examples"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
