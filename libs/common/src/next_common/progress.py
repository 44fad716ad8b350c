"""Progress for a person at a terminal and for a log collector: a tqdm bar, or plain lines.

Off a terminal (Kubernetes Job logs, CI, ``2> file``) a carriage-return bar turns into one
endless line or thousands of partial ones, so there each bar becomes a line when it starts,
a line at most every ``interval_s`` while it moves, and a line with the count and time when it
closes. Everything goes to stderr, so stdout keeps only results (``--json``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

INTERVAL_S = 30.0


def is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def note(message: str, stream: IO[str] | None = None) -> None:
    """One line of news (a stage started or finished): above the bars on a terminal, timestamped elsewhere."""
    out = stream or sys.stderr
    if is_terminal(out):
        from tqdm import tqdm

        tqdm.write(message, file=out)
    else:
        out.write("%s %s\n" % (_stamp(), message))
        out.flush()


class Progress:
    """A counter shown as a tqdm bar on a terminal and as periodic plain lines elsewhere; off when not ``enabled``."""

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        unit: str = "it",
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval_s: float = INTERVAL_S,
        leave: bool = False,
        on_update: Callable[[int, int | None], None] | None = None,
    ) -> None:
        """``on_update(n, total)`` hears every change of the count or total, shown or not (metrics)."""
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self.enabled = enabled
        self._on_update = on_update
        if on_update is not None:
            on_update(0, total)
        self._stream = stream or sys.stderr
        self._interval_s = interval_s
        self._postfix: dict[str, Any] = {}
        self._started = self._last_line = time.monotonic()
        self._closed = False
        self._bar: Any = None
        self._units = unit if unit.endswith("s") else unit + "s"
        if not enabled:
            return
        if is_terminal(self._stream):
            from tqdm import tqdm  # imported here: servers and log-only runs never need it

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=leave, file=self._stream)
        else:
            self._line("started" + (", %d %s" % (total, self._units) if total is not None else ""))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_total(self, total: int) -> None:
        """The total once known (a training job learns its step count after it starts)."""
        if total == self.total:
            return
        self.total = total
        if self._on_update is not None:
            self._on_update(self.n, total)
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._on_update is not None:
            self._on_update(self.n, self.total)
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last_line >= self._interval_s:
            self._line(self._counts())

    def advance_to(self, n: int) -> None:
        """Move to an absolute count (training reports its step, not increments); never backwards."""
        if n > self.n:
            self.update(n - self.n)

    def set_postfix(self, **fields: Any) -> None:
        self._postfix = fields
        if self._bar is not None:
            self._bar.set_postfix(fields, refresh=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._line("done in %.1fs, %s" % (time.monotonic() - self._started, self._counts(rate=False)))

    def _counts(self, rate: bool = True) -> str:
        if self.total is None:
            text = "%d %s" % (self.n, self._units)
        else:
            text = "%d/%d %s (%d%%)" % (self.n, self.total, self._units, 100 * self.n // max(self.total, 1))
        elapsed = time.monotonic() - self._started
        if rate and elapsed > 0:
            text += ", %.1fs, %.2f %s/s" % (elapsed, self.n / elapsed, self.unit)
        if self._postfix:
            text += ", " + ", ".join("%s=%s" % kv for kv in self._postfix.items())
        return text

    def _line(self, text: str) -> None:
        self._last_line = time.monotonic()
        self._stream.write("%s %s: %s\n" % (_stamp(), self.desc, text))
        self._stream.flush()
