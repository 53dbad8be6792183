"""`graft study` says where a run is: one plain line per trial start and finish, with elapsed time and ETA, when its
output goes to a file (CI, nohup), and a rich display with the trial count, the step and the ETA in a terminal."""

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from graftlab.testing import synthetic_reviews

LINE = re.compile(r"^trial (\d+)/(\d+) (start|done|failed)\s+(.*)$")


def write_study(tmp_path: Path, tiny_bert: str, strategies: list, **eval_) -> Path:
    synthetic_reviews(45, seed=0).to_csv(tmp_path / "reviews.csv", index=False)  # ~20 and ~10 training rows per class: k-fold
    cfg = {
        "name": "tiny",
        "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review", "label": "score"},
        "backbones": [tiny_bert],
        "strategies": strategies,
        "train": {"epochs": 1, "lr": 3e-3, "batch_size": 16, "max_length": 32},
        "eval": {"seeds": 2, "bootstrap": 100, "explain": "off", "latency": False, **eval_},
        "tracking": {"enabled": False},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def graft(*args: str) -> list[str]:
    return [sys.executable, "-m", "graftlab.cli", *args]


def test_with_output_to_a_file_every_trial_prints_a_start_and_a_done_line_with_an_eta(tiny_bert, tmp_path):
    path = write_study(tmp_path, tiny_bert, ["majority", {"contrastive": {"pairs_per_example": 2, "label": "contrastive"}},
                                       "linear_probe"])
    log = tmp_path / "study.log"
    with log.open("w") as out:
        proc = subprocess.run(graft("study", str(path)), stdout=out, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                              env={**os.environ, "GRAFT_CACHE_DIR": str(tmp_path / "cache")}, timeout=600)
    text = log.read_text()
    assert proc.returncode == 0, proc.stderr[-3000:] + text[-3000:]
    lines = [m.groups() for m in map(LINE.match, text.splitlines()) if m]
    done = [(int(i), int(n), what) for i, n, kind, what in lines if kind == "done"]
    started = [(int(i), int(n), what) for i, n, kind, what in lines if kind == "start"]
    # counted before running: 4 trials (contrastive runs 2 seeds; majority and the probe are deterministic),
    # 3 candidates x 6 k-fold fits, 1 refit on train+val
    total = 4 + 18 + 1
    assert [(i, n) for i, n, _ in done] == [(i, total) for i in range(1, total + 1)]
    assert [(i, n) for i, n, _ in started] == [(i, n) for i, n, _ in done]
    assert all(re.search(r"; elapsed \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d( \(rough until \d+ more are timed\))?$", what) for _, _, what in done)
    assert all("ETA" in what for _, _, what in started)
    names = [what for _, _, what in done]
    assert any(w.startswith("contrastive seed 1 ") for w in names)
    assert sum(w.startswith("k-fold contrastive ") for w in names) == 6
    assert any(w.startswith("refit ") for w in names)
    # the lines come while the study runs, before the results; the steps after the trials are named too
    assert text.index("trial 1/") < text.index("Test metrics")
    assert re.search(r"^step: robustness", text, re.M) and re.search(r"^step: packaging", text, re.M)
    assert "loss" not in "".join(line for line in text.splitlines() if "━" in line)  # no training bar in a file


def test_in_a_terminal_the_study_shows_a_rich_progress_display(tiny_bert, tmp_path):
    path = write_study(tmp_path, tiny_bert, ["majority", {"finetune": {"trainable_layers": 1}}], seeds=1, robustness=False)
    primary, replica = pty.openpty()
    proc = subprocess.Popen(graft("study", str(path)), stdin=subprocess.DEVNULL, stdout=replica, stderr=replica,
                            cwd=tmp_path, env={**os.environ, "GRAFT_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "150",
                                               "TERM": "xterm-256color"})
    os.close(replica)
    chunks, deadline = [], time.time() + 600
    try:
        while time.time() < deadline:
            try:
                data = os.read(primary, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, text[-3000:]
    assert "\x1b[" in text  # a live display: cursor moves and colours
    assert re.search(r"trial \d+/\d+", text) and "ETA" in text and "━" in text
    assert not re.search(r"^trial \d+/\d+ (start|done)", text, re.M)  # the plain lines are for files
