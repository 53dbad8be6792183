"""Seeds and threads: set once per trial, before anything random happens."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "use_all_cores", "available_cores"]


def seed_everything(seed: int) -> None:
    """Fix python, numpy and torch RNGs (data order, head initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_all_cores() -> int:
    """Give torch every core, or ``$GRAFT_THREADS`` of them: on a machine shared with other busy processes
    fewer threads can be much faster (docs/benchmarks.md#cpu-threads, B33)."""
    n = available_cores()
    wanted = os.environ.get("GRAFT_THREADS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        n = min(int(wanted), n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
