"""Early stopping reads its metric's direction from the catalogue, on a key the training loop records."""

import pytest
from loop_fakes import Recorder, token_set

from graftlab.core.config import TrainConfig
from graftlab.core.errors import ConfigError
from graftlab.core.metrics import EARLY_STOPPING_METRICS
from graftlab.training import Trainer
from graftlab.training.callbacks import EarlyStopping, higher_is_better


def test_the_direction_of_an_early_stopping_metric_is_the_catalogues():
    assert [higher_is_better(m) for m in ("accuracy", "macro_f1", "val_macro_f1", "log_loss", "loss", "val_loss")] == [
        True, True, True, False, False, False]
    assert EarlyStopping("log_loss").sign == -1.0 and EarlyStopping("accuracy").sign == 1.0
    with pytest.raises(ConfigError, match="early stopping can use accuracy, macro_f1, log_loss, loss"):
        EarlyStopping("roc_auc")


@pytest.mark.parametrize("metric", EARLY_STOPPING_METRICS)
def test_the_loop_records_every_metric_early_stopping_may_use(metric):
    cfg = TrainConfig(epochs=2, batch_size=8, early_stopping={"metric": metric, "patience": 5})
    model = Recorder()
    result = Trainer(cfg, progress=False).fit(model, model.groups(), token_set(24), token_set(8, seed=1))
    key = EarlyStopping(metric).key
    assert result.history and all(isinstance(record[key], float) for record in result.history)
