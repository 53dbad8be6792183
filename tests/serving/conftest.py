"""Packaged tiny models for the serving tests, and a helper that runs the real server as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from graftlab.testing import make_tiny_bert, synthetic_reviews

TEXTS = synthetic_reviews(60, seed=1).review.tolist()


@pytest.fixture(scope="session")
def texts() -> list[str]:
    """Review-like inputs the tiny models were not trained on."""
    return list(TEXTS)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory) -> dict[str, Path]:
    """{'champion': a linear probe on the tiny BERT, 'flipped': the same model with its head negated
    (it predicts the other class nearly always: a challenger that disagrees)}."""
    import torch

    from graftlab.backbones import get_backbone
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.packaging import export_model, load_model
    from graftlab.strategies import FitContext, make_strategy

    root = tmp_path_factory.mktemp("serving-models")
    old_cache = os.environ.get("GRAFT_CACHE_DIR")
    os.environ["GRAFT_CACHE_DIR"] = str(root / "cache")
    try:
        bert = make_tiny_bert(root / "tiny-bert")
        df = synthetic_reviews(120, seed=0)
        names = sorted(df.score.unique())
        y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
        data = LabeledData(df.review.tolist(), y, names, np.arange(len(df)))
        ctx = FitContext(train=TrainConfig(epochs=1, max_length=32), seed=0, backbone=get_backbone(str(bert)), trainer=None)
        fitted = make_strategy("linear_probe").fit(data.subset(range(90)), data.subset(range(90, 120)), ctx)
        reference = {"texts": TEXTS[:40]}
        champion = export_model(fitted.predictor, root / "champion", {"name": "tiny-reviews", "temperature": 1.0},
                                reference=reference)
        flipped = load_model(champion).predictor
        with torch.no_grad():
            flipped.model.head.weight.neg_()
            flipped.model.head.bias.neg_()
        flipped_dir = export_model(flipped, root / "flipped", {"name": "tiny-flipped", "temperature": 1.0},
                                   reference=reference)
    finally:
        if old_cache is None:
            os.environ.pop("GRAFT_CACHE_DIR", None)
        else:
            os.environ["GRAFT_CACHE_DIR"] = old_cache
    return {"champion": champion, "flipped": flipped_dir}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(args: list[str], env: dict[str, str] | None = None, timeout: float = 180.0) -> Iterator[tuple[subprocess.Popen, str]]:
    """``graft serve ARGS --port <free>`` as a subprocess; yields (process, base URL) once /ready answers 200.
    The process is always stopped (SIGTERM, then SIGKILL) when the block ends."""
    port = free_port()
    cmd = [sys.executable, "-m", "graftlab.cli", "serve", *args, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in finally) a file, not a pipe: never blocks
    proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                output.seek(0)
                raise AssertionError(f"the server exited with {proc.returncode}:\n{output.read()[-5000:]}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not become ready in time")
            time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        output.close()


@pytest.fixture
def make_client(packaged, tmp_path):
    """make_client(**serve_config) -> a started TestClient (models loaded, log open); all closed at teardown."""
    from fastapi.testclient import TestClient

    from graftlab.serving import ServeConfig, create_app

    opened = []

    def make(**overrides):
        data = {"model": str(packaged["champion"]), "log_db": str(tmp_path / f"log{len(opened)}.db"), **overrides}
        client = TestClient(create_app(ServeConfig.from_dict(data)), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    try:
        yield make
    finally:
        for client in opened:
            client.__exit__(None, None, None)


STATUS_TOKEN = "status-token"


@pytest.fixture
def admin_status(monkeypatch):
    """admin_status(client) -> GET /admin/status as a dict (the rollout state and paths /health does not give);
    sets the admin token for the test."""
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", STATUS_TOKEN)

    def get(client):
        r = client.get("/admin/status", headers={"Authorization": f"Bearer {STATUS_TOKEN}"})
        assert r.status_code == 200, r.text
        return r.json()

    return get


@pytest.fixture
def serve_process():
    """``with serve_process([...args]) as (proc, url):`` runs ``graft serve`` for the block (see running_server)."""
    return running_server
