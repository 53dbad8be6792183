"""Where a long run is: "trial i/n", the current step and an overall ETA from measured trial times.

A study counts its trials before running them (:meth:`Progress.plan`) and runs each inside :meth:`Progress.trial`.
In a terminal that is a rich display (the training loop's bar shows below it); written to a file or a pipe (CI,
``nohup``) it is one plain line per trial start and finish with the elapsed time and the ETA, flushed at once.
Disabled, it prints nothing but still measures: the study's time budget reads the same estimates.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["Progress", "Task", "Timing", "fmt_duration", "is_terminal"]


def is_terminal() -> bool:
    """Whether standard output is a terminal, as rich reads it (FORCE_TERMINAL and TTY_INTERACTIVE count)."""
    from rich import get_console

    return get_console().is_terminal


def fmt_duration(seconds: float) -> str:
    """``H:MM:SS``."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class Task:
    """One planned unit of work: a trial, a k-fold fit, a refit.

    Args:
        label: what the display calls it, unique within a run ("contrastive seed 1").
        group: whose measured times estimate it (a strategy's display name).
        rows: the training rows it fits on; its estimate scales with them.
        kind: what it is for ("trial", "extra seed", "learning curve", "ablation", "k-fold", "refit"): a time budget
            leaves some kinds out first.
        key: its identity in the plan when the label is known only when it runs (the refit's strategy); else the label.
    """

    label: str
    group: str
    rows: int = 1
    kind: str = "trial"
    key: str = ""

    @property
    def id(self) -> str:
        return self.key or self.label


class Timing:
    """Handed to the body of :meth:`Progress.trial`: a trial an earlier run finished reports the time it took then."""

    def __init__(self) -> None:
        self.recorded: float | None = None

    def finished_before(self, seconds: float) -> None:
        self.recorded = float(seconds)


class Progress:
    """The trials of a run: how many, which one runs, how long the rest should take.

    Args:
        enabled: print anything at all (measuring goes on either way).
        file: where plain lines go (default: standard output at the time of writing).
        terminal: show the rich display instead of plain lines (default: whether standard output is a terminal).
        console: the rich console of the display (default: rich's global one, which the training loop's bar uses too).
        clock: seconds, monotonic.
    """

    def __init__(self, enabled: bool = True, *, file: IO[str] | None = None, terminal: bool | None = None,
                 console: Any = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.enabled = enabled
        if enabled and terminal is None:
            terminal = console.is_terminal if console is not None else is_terminal()
        self.terminal = bool(enabled and terminal)
        self.pending: list[Task] = []  # planned, not started, in order
        self.done = 0
        self.current: Task | None = None
        self._file, self._console, self._clock = file, console, clock
        self._start = self._current_start = clock()
        self._seconds: dict[str, float] = {}
        self._rows: dict[str, int] = {}
        self._step = ""
        self._display: Any = None
        self._bar: Any = None

    # -- the plan ----------------------------------------------------------------------------------------
    def plan(self, tasks: Iterable[Task]) -> None:
        """Add work to the count (a task already planned is not counted twice)."""
        known = {t.id for t in self.pending}
        self.pending = self.pending + [t for t in tasks if t.id not in known]
        self._update()

    def drop(self, tasks: Iterable[Task]) -> None:
        """Take planned work out of the count (it will not run)."""
        ids = {t.id for t in tasks}
        self.pending = [t for t in self.pending if t.id not in ids]
        self._update()

    def drop_group(self, group: str) -> None:
        """Take every planned task of ``group`` out of the count (a strategy that failed)."""
        self.drop([t for t in self.pending if t.group == group])

    @property
    def total(self) -> int:
        return self.done + (self.current is not None) + len(self.pending)

    # -- estimates ------------------------------------------------------------------------------------------
    def estimate(self, task: Task) -> float | None:
        """Seconds ``task`` should take: its group's measured seconds per row times its rows; a group not measured yet
        at the slowest measured rate (an ETA errs long); None before anything was measured."""
        if task.group in self._rows:
            rate = self._seconds[task.group] / self._rows[task.group]
        else:
            rates = [self._seconds[g] / self._rows[g] for g in self._rows]
            if not rates:
                return None
            rate = max(rates)
        return rate * max(task.rows, 1)

    def elapsed(self) -> float:
        return self._clock() - self._start

    def eta(self) -> float | None:
        """Seconds left for the planned work, the running trial's rest included; None while it cannot be estimated."""
        left = 0.0
        if self.current is not None:
            own = self.estimate(self.current)
            if own is None:
                return None
            left += max(0.0, own - (self._clock() - self._current_start))
        for task in tuple(self.pending):
            seconds = self.estimate(task)
            if seconds is None:
                return None
            left += seconds
        return left

    def _eta_text(self) -> str:
        eta = self.eta()
        if eta is None:
            return "ETA unknown"
        # a group not timed yet is estimated at the slowest measured rate (the refit's strategy is known only then)
        untimed = {t.group for t in (*self.pending, *([self.current] if self.current else ()))
                   if t.group not in self._rows and t.kind != "refit"}
        return f"ETA {fmt_duration(eta)}" + (f" (rough until {len(untimed)} more are timed)" if untimed else "")

    # -- running --------------------------------------------------------------------------------------------
    @contextmanager
    def trial(self, task: Task) -> Iterator[Timing]:
        """Run ``task``'s body as trial i of n: a start line, then a done (or failed) line with its time and the ETA."""
        self.pending = [t for t in self.pending if t.id != task.id]
        self.current, self._current_start = task, self._clock()
        index, timing = self.done + 1, Timing()
        self._trial_line(index, "start", task.label)
        try:
            yield timing
        except Exception:
            seconds = self._clock() - self._current_start
            self.current, self.done = None, self.done + 1
            self._trial_line(index, "failed", f"{task.label} after {seconds:.1f} s")
            raise
        except BaseException:  # Ctrl-C: the command says how to resume
            self.current = None
            raise
        seconds = self._clock() - self._current_start
        recorded = timing.recorded if timing.recorded is not None else seconds
        self._seconds[task.group] = self._seconds.get(task.group, 0.0) + recorded
        self._rows[task.group] = self._rows.get(task.group, 0) + max(task.rows, 1)
        self.current, self.done = None, self.done + 1
        note = " (finished in an earlier run)" if timing.recorded is not None else ""
        self._trial_line(index, "done", f"{task.label} in {recorded:.1f} s{note}")

    def step(self, text: str) -> None:
        """Name the current step (robustness, explanations, packaging): one line, or the display's step field."""
        self._step = text
        if self.terminal:
            self._update()
        elif self.enabled:
            self._write(f"step: {text}; elapsed {fmt_duration(self.elapsed())}")

    def note(self, text: str) -> None:
        """A message for the user while the run goes on (what a time budget left out)."""
        if self.terminal:
            self._ensure_display()
            self._display.console.print(text, highlight=False, markup=False)
        elif self.enabled:
            self._write(text)

    def refresh(self) -> None:
        if self._display is not None:
            self._update()
            self._display.refresh()

    def close(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- output -------------------------------------------------------------------------------------------
    def _trial_line(self, index: int, what: str, text: str) -> None:
        if self.terminal:
            self._update()
        elif self.enabled:
            self._write(f"trial {index}/{self.total} {what:<6} {text}; elapsed {fmt_duration(self.elapsed())}, "
                        f"{self._eta_text()}")

    def _write(self, line: str) -> None:
        out = self._file or sys.stdout
        out.write(line + "\n")
        out.flush()  # a log file shows where the run is now, not when a buffer fills

    def _ensure_display(self) -> None:
        if self._display is not None:
            return
        from rich import get_console
        from rich.progress import BarColumn, ProgressColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as Bars
        from rich.text import Text

        owner = self

        class _Times(ProgressColumn):  # re-read at every refresh: the ETA counts down while a trial runs
            def render(self, task: Any) -> Text:
                return Text(f"{fmt_duration(owner.elapsed())} elapsed, {owner._eta_text()}")

        self._display = Bars(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), _Times(),
                             TextColumn("[dim]{task.fields[step]}"), console=self._console or get_console(),
                             transient=True)
        self._bar = self._display.add_task("", total=None, step="")
        self._display.start()

    def _update(self) -> None:
        if not self.terminal:
            return
        self._ensure_display()
        if self.current is not None:
            description = f"trial {self.done + 1}/{self.total} {self.current.label}"
        else:
            description = f"{self.done}/{self.total} trials done"
        self._display.update(self._bar, description=description, total=max(self.total, 1), completed=self.done,
                             step=self._step)
