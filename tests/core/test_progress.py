"""The progress of a long run: "trial i/n", an ETA from measured trial times, plain lines when not in a terminal."""

import io
import re

import pytest

from graftlab.core.progress import Progress, Task


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain(clock: Clock, enabled: bool = True) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()
    return Progress(enabled, file=out, terminal=False, clock=clock), out


def test_each_trial_prints_a_start_and_a_done_line_with_elapsed_time_and_eta():
    clock = Clock()
    progress, out = plain(clock)
    a0, a1, b0 = Task("a seed 0", "a", rows=10), Task("a seed 1", "a", rows=10), Task("b seed 0", "b", rows=20)
    progress.plan([a0, a1, b0])
    for task, seconds in ((a0, 10.0), (a1, 12.0), (b0, 30.0)):
        with progress.trial(task):
            clock.now += seconds
    progress.close()
    lines = out.getvalue().splitlines()
    assert [re.match(r"trial (\d+/\d+) (start|done)", line).groups() for line in lines] == [
        ("1/3", "start"), ("1/3", "done"), ("2/3", "start"), ("2/3", "done"), ("3/3", "start"), ("3/3", "done")]
    assert "a seed 0" in lines[0] and "ETA unknown" in lines[0]  # nothing measured yet
    # a measured 1 s per row: a seed 1 (10 rows) ~10 s, b not measured yet: the slowest measured rate, 20 rows ~20 s
    assert "in 10.0 s" in lines[1] and "elapsed 0:00:10" in lines[1] and "ETA 0:00:30" in lines[1]
    assert "ETA 0:00:22" in lines[3]  # b: 20 rows at a's measured 1.1 s per row (22 s over 20 rows)
    assert lines[-1].endswith("ETA 0:00:00")


def test_the_eta_of_a_group_comes_from_its_own_measured_trials():
    clock = Clock()
    progress, _ = plain(clock)
    fast, slow = Task("fast", "fast", rows=10), Task("slow", "slow", rows=10)
    progress.plan([fast, slow, Task("fast again", "fast", rows=10), Task("slow again", "slow", rows=5)])
    for task, seconds in ((fast, 1.0), (slow, 20.0)):
        with progress.trial(task):
            clock.now += seconds
    assert progress.estimate(Task("x", "fast", rows=10)) == pytest.approx(1.0)
    assert progress.estimate(Task("x", "slow", rows=5)) == pytest.approx(10.0)
    assert progress.eta() == pytest.approx(11.0)
    assert progress.estimate(Task("x", "unmeasured", rows=10)) == pytest.approx(20.0)  # an ETA errs long


def test_dropped_tasks_leave_the_count_and_a_failed_trial_says_so():
    clock = Clock()
    progress, out = plain(clock)
    tasks = [Task(f"t{i}", "g", rows=1) for i in range(4)]
    progress.plan(tasks)
    progress.drop(tasks[2:])
    with pytest.raises(RuntimeError), progress.trial(tasks[0]):
        raise RuntimeError("boom")
    with progress.trial(tasks[1]):
        pass
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trial 1/2 start") and lines[1].startswith("trial 1/2 failed")
    assert lines[-1].startswith("trial 2/2 done")


def test_a_resumed_trial_counts_its_recorded_time_not_the_time_it_took_to_load():
    clock = Clock()
    progress, out = plain(clock)
    task = Task("a seed 0", "a", rows=10)
    with progress.trial(task) as timing:
        timing.finished_before(40.0)
    assert progress.estimate(Task("a seed 1", "a", rows=10)) == pytest.approx(40.0)
    assert "finished in an earlier run" in out.getvalue()


def test_steps_and_notes_print_one_line_each_and_nothing_when_disabled():
    clock = Clock()
    progress, out = plain(clock)
    progress.step("robustness of the winner")
    progress.note("time budget: left out x")
    assert out.getvalue().splitlines() == ["step: robustness of the winner; elapsed 0:00:00", "time budget: left out x"]
    quiet, nothing = plain(clock, enabled=False)
    quiet.plan([Task("a", "a")])
    with quiet.trial(Task("a", "a")):
        clock.now += 2.0
    quiet.step("x")
    assert nothing.getvalue() == "" and quiet.estimate(Task("b", "a")) == pytest.approx(2.0)


def test_in_a_terminal_a_rich_display_shows_the_trial_count_step_and_eta():
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    clock = Clock()
    progress = Progress(True, console=console, clock=clock)
    progress.plan([Task("a seed 0", "a", rows=10), Task("a seed 1", "a", rows=10)])
    with progress.trial(Task("a seed 0", "a", rows=10)):
        clock.now += 5.0
    with progress.trial(Task("a seed 1", "a", rows=10)):
        progress.step("training")
        progress.refresh()
        clock.now += 5.0
    progress.close()
    text = out.getvalue()
    assert "trial 2/2" in text and "a seed 1" in text and "ETA 0:00:05" in text and "training" in text
    assert not re.search(r"trial \d+/\d+ (start|done)", text)  # no plain lines in a terminal
