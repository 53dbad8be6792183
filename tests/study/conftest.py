import pytest

from graftlab.testing import make_tiny_bert, synthetic_reviews


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def reviews():
    return synthetic_reviews(240, seed=0)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    # studies log to MLflow under ./.graft by default: keep that inside the test's folder
    monkeypatch.chdir(tmp_path)
