"""Where output goes (the bottom layer: imports nothing of cfx)."""

from __future__ import annotations

import sys
from typing import IO


def interactive(stream: IO | None = None) -> bool:
    """Whether ``stream`` (default: the current ``sys.stderr``) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False
