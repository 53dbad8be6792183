import pytest

from graftlab.testing import make_tiny_bert, make_tiny_cnn, synthetic_images, synthetic_reviews


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_cnn(tmp_path_factory):
    return str(make_tiny_cnn(tmp_path_factory.mktemp("tiny-cnn")))


@pytest.fixture(scope="session")
def shapes():
    return synthetic_images(240, seed=0)


@pytest.fixture(scope="session")
def reviews():
    return synthetic_reviews(240, seed=0)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))
