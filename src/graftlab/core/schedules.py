"""Learning-rate schedules shared by the training loop and strategies that run their own optimizer."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["warmup_linear"]


def warmup_linear(warmup: int, total: int) -> Callable[[int], float]:
    """LR factor per step (for ``LambdaLR``): linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor
