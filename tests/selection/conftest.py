import numpy as np
import pytest

from graftlab.data.dataset import LabeledData
from graftlab.testing import make_tiny_bert, synthetic_reviews


@pytest.fixture(scope="session")
def tiny_berts(tmp_path_factory):
    """Two different tiny random BERTs (seed and size differ)."""
    a = make_tiny_bert(tmp_path_factory.mktemp("bert-a"), hidden=32, layers=2, seed=0)
    b = make_tiny_bert(tmp_path_factory.mktemp("bert-b"), hidden=48, layers=3, heads=3, seed=1)
    return str(a), str(b)


def labeled(frame) -> LabeledData:
    names = sorted(frame["score"].unique())
    labels = np.array([names.index(s) for s in frame["score"]], dtype=np.int64)
    return LabeledData(frame["review"].tolist(), labels, names, np.arange(len(frame)))


@pytest.fixture(scope="session")
def splits():
    """(train, val) of synthetic reviews: 120 train rows, 40 val rows."""
    frame = synthetic_reviews(160, seed=0)
    return labeled(frame.iloc[:120].reset_index(drop=True)), labeled(frame.iloc[120:].reset_index(drop=True))


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads make tiny forwards stall (latency tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
