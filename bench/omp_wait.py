"""OpenMP wait policy: torch's worker threads spinning (the default) or sleeping (``OMP_WAIT_POLICY=PASSIVE``)
while they wait for work, on an idle machine and on one where another process computes at the same time.

Each measurement is a fresh process (the policy is read once, when torch loads its OpenMP runtime) using every
core: MiniLM-L6 training steps (full fine-tuning, batch 16 x 64 tokens, forward + backward + AdamW) and frozen
forward passes (32 texts), the median of ``--steps`` timings after a warm-up. "busy" runs a competing process
for the whole measurement: torch matrix products on every core with the default policy, as another training
job would. The conditions take turns, ``--rounds`` times, so slow drift in the machine's load falls on all.

    python bench/omp_wait.py [--steps 12] [--rounds 2] [--policies OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000]

Prints the median step times per condition and the ratios default / each setting (above 1: the setting is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKLOAD = r"""
import json, sys, time
import numpy as np, torch
from graftlab.backbones import get_backbone
from graftlab.strategies.neural import EncoderClassifier
from graftlab.training import use_all_cores

use_all_cores()
steps = int(sys.argv[1])
bb = get_backbone("minilm-l6")
model = EncoderClassifier(bb, bb.load_encoder(), 2)
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
rng = np.random.default_rng(0)
words = "the coffee was fresh and the tea arrived late but tasted fine overall good value would buy again".split()
texts = [" ".join(rng.choice(words, size=60)) for _ in range(16)]
data = bb.encode(texts, np.zeros(16, dtype=int), max_length=64)
batch, labels = data.collate(list(range(16))), torch.zeros(16, dtype=torch.long)

def median_ms(fn):
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))

def train_step():
    model.train()
    torch.nn.functional.cross_entropy(model(batch), labels).backward()
    opt.step(); opt.zero_grad(set_to_none=True)

def forward():
    model.eval()
    with torch.no_grad():
        big = bb.encode(texts * 2, np.zeros(32, dtype=int), max_length=64)
        model(big.collate(list(range(32))))

print(json.dumps({"train_ms": median_ms(train_step), "forward_ms": median_ms(forward), "threads": torch.get_num_threads()}))
"""

COMPETITOR = r"""
import torch
a = torch.randn(768, 768)
while True:
    a = torch.tanh(a @ a / 768)
"""


_POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def run(policy: str, busy: bool, steps: int) -> dict:
    """One measurement in a fresh process; ``policy``: "default" or "VAR=VALUE" (OMP_WAIT_POLICY, GOMP_SPINCOUNT)."""
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARS}
    if policy != "default":
        var, _, value = policy.partition("=")
        env[var] = value
    rival = None
    if busy:
        rival_env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARS}
        rival = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=rival_env)
        time.sleep(2)  # the rival computing before the workload starts
    try:
        out = subprocess.run([sys.executable, "-c", WORKLOAD, str(steps)], env=env, capture_output=True, text=True,
                             check=True, timeout=900)
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--policies", nargs="+", default=["OMP_WAIT_POLICY=PASSIVE"],
                    help="settings to compare with the default, each VAR=VALUE (e.g. GOMP_SPINCOUNT=10000)")
    args = ap.parse_args()
    policies = ["default", *args.policies]
    conditions = [(busy, policy) for busy in (False, True) for policy in policies]
    results: dict[tuple[bool, str], list[dict]] = {c: [] for c in conditions}
    print(f"cores {len(os.sched_getaffinity(0))}; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    for r in range(args.rounds):
        for busy, policy in conditions if r % 2 == 0 else conditions[::-1]:
            res = run(policy, busy, args.steps)
            results[(busy, policy)].append(res)
            print(f"  round {r + 1}: {'busy' if busy else 'idle'} {policy:24s} train step {res['train_ms']:6.0f} ms, "
                  f"forward {res['forward_ms']:6.0f} ms ({res['threads']} threads)", flush=True)
    med = {c: {k: statistics.median(x[k] for x in v) for k in ("train_ms", "forward_ms")} for c, v in results.items()}
    for busy in (False, True):
        d = med[(busy, "default")]
        for policy in args.policies:
            p = med[(busy, policy)]
            print(f"{'busy' if busy else 'idle'} {policy}: train step default {d['train_ms']:.0f} ms / {p['train_ms']:.0f} ms "
                  f"= {d['train_ms'] / p['train_ms']:.2f}; forward default {d['forward_ms']:.0f} ms / {p['forward_ms']:.0f} ms "
                  f"= {d['forward_ms'] / p['forward_ms']:.2f}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
