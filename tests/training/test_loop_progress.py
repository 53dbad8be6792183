"""The training loop's bar shows in a terminal only: written to a file or a pipe the loop prints nothing per step
(the study's own lines say where a run is)."""

from loop_fakes import Recorder, token_set

from graftlab.core.config import TrainConfig
from graftlab.training import Trainer
from graftlab.training.callbacks import ProgressBar


class Spy(ProgressBar):
    started = 0

    def on_train_start(self, trainer):
        Spy.started += 1

    def on_step_end(self, trainer, loss):
        pass


def fit(progress: bool) -> None:
    model = Recorder()
    Trainer(TrainConfig(epochs=2, batch_size=8), progress=progress).fit(model, model.groups(), token_set(24), token_set(8, seed=1))


def test_the_bar_prints_nothing_when_stdout_is_not_a_terminal(capsys):
    fit(progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_the_bar_runs_in_a_terminal(monkeypatch):
    import graftlab.training.loop as loop

    monkeypatch.setattr(loop, "is_terminal", lambda: True)
    monkeypatch.setattr(loop, "ProgressBar", Spy)
    fit(progress=True)
    assert Spy.started == 1
    fit(progress=False)
    assert Spy.started == 1
