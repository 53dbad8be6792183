import pytest

from graftlab.testing import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def registry(monkeypatch):
    """An isolated backbone registry (and instance cache): tests register only what they need."""
    from graftlab import backbones
    from graftlab.backbones.base import BACKBONES

    monkeypatch.setattr(BACKBONES, "_items", {})
    monkeypatch.setattr(backbones, "_INSTANCES", {})
    return BACKBONES


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads make tiny forwards stall (latency tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
