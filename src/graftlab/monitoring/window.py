"""Which logged requests a monitoring run looks at: the last duration (``1d``, ``12h``) or the last N."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError

__all__ = ["Window", "parse_window", "select_window"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Window:
    """``kind`` is ``time`` (the last ``seconds``), ``count`` (the last ``count`` requests) or ``all``."""

    spec: str
    kind: str
    seconds: float | None = None
    count: int | None = None

    def describe(self) -> str:
        if self.kind == "time":
            return f"requests of the last {self.spec}"
        if self.kind == "count":
            return f"the last {self.count} requests"
        return "every logged request"


def parse_window(spec: str | int) -> Window:
    """``"1d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"90s"`` (a duration), ``"500"`` (the last 500 requests) or ``"all"``.

    Raises:
        ConfigError: anything else, or a zero/negative size.
    """
    text = str(spec).strip()
    if text.lower() == "all":
        return Window("all", "all")
    if text.isdigit():
        if int(text) < 1:
            raise ConfigError(f"The 'window' parameter must be at least 1 request; got {text!r}.")
        return Window(text, "count", count=int(text))
    m = _DURATION.match(text)
    if m is None:
        raise ConfigError(
            f"The 'window' parameter must be a duration like 1d, 12h, 30m, 2w or 90s, a number of requests like "
            f"500, or 'all'; got {text!r}."
        )
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise ConfigError(f"The 'window' parameter must be a positive duration; got {text!r}.")
    return Window(text, "time", seconds=seconds)


def select_window(frame: Any, window: Window, now: float | None = None) -> Any:
    """The rows of a prediction-log DataFrame (column ``ts``, unix seconds) inside ``window``, oldest first."""
    frame = frame.sort_values("ts", kind="stable")
    if window.kind == "time":
        now = time.time() if now is None else now
        return frame[frame["ts"] >= now - window.seconds]
    if window.kind == "count":
        return frame.tail(window.count)
    return frame
