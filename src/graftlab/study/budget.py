"""A run's trials as the progress display counts them (:class:`~graftlab.core.progress.Task`), and the study-wide
time budget (the config's top-level ``time_budget_s``): optional work runs only when its estimated cost, beside the
work still to come that always runs, fits in the time left.

Always run: the baselines, each strategy's first seed, k-fold selection and the refit. Optional, run in this order and
so left out in the reverse one when time runs short: extra seeds, then learning-curve points, then ablation variants.
Each is decided when its turn comes, from the measured seconds per training row of the same strategy
(:meth:`graftlab.core.progress.Progress.estimate`); ``train.time_budget_s`` is another thing: it stops one fit.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.progress import Progress, Task
from ..core.results import DroppedWork, StudyBudget

__all__ = ["OPTIONAL", "Budget", "ablation_tasks", "curve_tasks", "refit_task", "seed_task"]

#: the kinds of work a budget may leave out, in the order they run (and are kept)
OPTIONAL = ("extra seed", "learning curve", "ablation")


def seed_task(strategy: str, seed: int, rows: int, index: int, baseline: bool) -> Task:
    """A strategy's trial with its ``index``-th seed: an extra seed (optional) after the first, but for a baseline."""
    return Task(f"{strategy} seed {seed}", strategy, rows, "extra seed" if index and not baseline else "trial")


def curve_tasks(strategy: str, size: str, seeds: Sequence[int], rows: int) -> list[Task]:
    """A learning-curve point's trials: ``strategy`` on ``rows`` training rows (size label ``size``), one per seed."""
    return [Task(f"learning curve {size}: {strategy} seed {s}", strategy, rows, "learning curve") for s in seeds]


def ablation_tasks(strategy: str, variant: str, seeds: Sequence[int], rows: int) -> list[Task]:
    """An ablation variant's trials, one per seed, estimated from the strategy it varies."""
    return [Task(f"ablation: {variant} seed {s}", strategy, rows, "ablation") for s in seeds]


def refit_task(rows: int, strategy: str | None = None) -> Task:
    """The refit on train+val; planned before the winner is known (then estimated at the slowest measured rate)."""
    label = f"refit {strategy} on train+val" if strategy else "refit on train+val"
    return Task(label, strategy or "refit", rows, "refit", key="refit")


class Budget:
    """Decides, one piece of optional work at a time, whether it fits; records what it left out.

    Args:
        seconds: the budget; None runs everything.
        progress: the run's plan, clock and measured costs.
    """

    def __init__(self, seconds: float | None, progress: Progress) -> None:
        self.seconds, self.progress = seconds, progress
        self.dropped: list[DroppedWork] = []

    def admit(self, tasks: Sequence[Task], what: str | None = None) -> bool:
        """Whether the optional ``tasks`` (an extra seed, a learning-curve point's seeds, an ablation variant's seeds)
        fit beside the planned work that always runs; those that do not are taken out of the plan and recorded as
        ``what`` (by default the first task's label)."""
        if self.seconds is None or not tasks:
            return True
        cost = self._estimate(tasks)
        kept = self._estimate([t for t in self.progress.pending if t.kind not in OPTIONAL and t not in tasks])
        if cost is None or kept is None:  # nothing measured yet: nothing to judge by
            return True
        left = self.seconds - self.progress.elapsed()
        if cost + kept <= left:
            return True
        what = what or tasks[0].label
        self.progress.drop(tasks)
        self.dropped.append(DroppedWork(kind=tasks[0].kind, what=what, estimate_s=round(cost, 3)))
        self.progress.note(f"time budget: left out {what} (about {cost:.0f} s; {max(left, 0.0):.0f} s of "
                           f"{self.seconds:g} s left, {kept:.0f} s of it kept for the work that always runs)")
        return False

    def record(self, total_s: float) -> StudyBudget | None:
        """What results.json says of the budget (None without one)."""
        if self.seconds is None:
            return None
        head = f"The study-wide time budget (time_budget_s: {self.seconds:g} s): the study took {total_s:.0f} s"
        if not self.dropped:
            reading = f"{head}; nothing was left out."
        else:
            listed = "; ".join(f"{d.what} ({d.kind}, about {d.estimate_s:.0f} s)" for d in self.dropped)
            reading = (f"{head} and left out {len(self.dropped)} piece(s) of optional work to fit: {listed}. Ablation "
                       "variants are left out first, then learning-curve points, then extra seeds; the baselines, each "
                       "strategy's first seed, k-fold selection and the refit always run.")
        if total_s > self.seconds:
            reading += f" It ran {total_s - self.seconds:.0f} s over: the work that always runs did not fit."
        return StudyBudget(seconds=self.seconds, dropped=self.dropped, reading=reading)

    def _estimate(self, tasks: Sequence[Task]) -> float | None:
        seconds = [self.progress.estimate(t) for t in tasks]
        return None if any(s is None for s in seconds) else float(sum(seconds))
