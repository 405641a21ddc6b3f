"""Progress of a run: a tqdm bar on a terminal, plain lines in a log.

A bar redraws itself with carriage returns; in a log file or CI output that is thousands of
lines of noise. So the bar is drawn only when the stream is a terminal; otherwise each
finished step (and each status change, such as "training") is one plain line.

Example::

    with Progress(total=12, desc="benchmark") as p:
        p.status("moons/mlp/run000: training")
        p.step("moons/mlp/generic/run000", seconds=0.4)
"""

from __future__ import annotations

import sys
from typing import IO

from cfx._streams import interactive

__all__ = ["Progress", "interactive"]


class Progress:
    """Counts finished steps of ``total``; see the module docstring.

    Args:
      total: steps of a complete run; ``initial`` of them are already done (resume).
      desc: the prefix of every line (the experiment's name).
      enabled: False: silent.
      stream: where to write (default: ``sys.stderr`` at construction).
    """

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        desc: str = "",
        unit: str = "step",
        enabled: bool = True,
        stream: IO | None = None,
    ):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.count, self.desc = int(total), int(initial), desc
        self.enabled = bool(enabled)
        self.tty = self.enabled and interactive(self.stream)
        self._bar = None
        if self.tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, leave=True)

    def _line(self, text: str) -> None:
        print(f"{self.desc}: {text}" if self.desc else text, file=self.stream, flush=True)

    def status(self, text: str, *, log: bool = True) -> None:
        """What is happening now: the bar's postfix on a terminal; otherwise a line, if ``log``."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)
        elif self.enabled and log:
            self._line(text)

    def step(self, label: str, seconds: float | None = None) -> None:
        """One step finished."""
        self.count += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self.enabled:
            took = "" if seconds is None else f" ({seconds:.2f} s)"
            self._line(f"[{self.count}/{self.total}] {label} done{took}")

    def close(self) -> None:
        """Close the progress bar, if one is shown."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
