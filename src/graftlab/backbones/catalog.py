"""The backbone catalog: every registered backbone's card, license and latency on this machine.

Latency is the backbone alone (tokenise + encoder + pooling, no head) in ms per example at batch
size 1 and 32, on a fixed ~64-token English input, measured the first time it is asked for and
cached in ``$GRAFT_CACHE_DIR/latency.json`` (default ``.graft/cache``), keyed by the weights sha256,
this machine's CPU and the number of torch threads. Licenses are SPDX identifiers; a local folder
without a license on its card gets the one its README.md front matter declares, if any.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.errors import AssetMissingError, GraftError
from ..core.results import BackboneInfo, Record
from .base import BACKBONES, Backbone
from .embedding_cache import cache_dir

__all__ = [
    "LICENSES",
    "CatalogEntry",
    "Latency",
    "backbone_latency",
    "catalog",
    "describe",
    "describe_backbone",
    "install_hint",
    "latency_cache_path",
    "latency_key",
    "license_info",
    "machine_id",
    "measure_latency",
    "normalize_license",
]

#: lower-case license id -> (SPDX identifier, commercial use allowed). ``None``: it depends on terms
#: a tool cannot check (read the license). Copyleft licenses allow commercial use with obligations.
LICENSES: dict[str, tuple[str, bool | None]] = {
    "apache-2.0": ("Apache-2.0", True),
    "mit": ("MIT", True),
    "bsd-2-clause": ("BSD-2-Clause", True),
    "bsd-3-clause": ("BSD-3-Clause", True),
    "isc": ("ISC", True),
    "unlicense": ("Unlicense", True),
    "cc0-1.0": ("CC0-1.0", True),
    "cc-by-4.0": ("CC-BY-4.0", True),
    "cc-by-sa-4.0": ("CC-BY-SA-4.0", True),
    "cc-by-3.0": ("CC-BY-3.0", True),
    "mpl-2.0": ("MPL-2.0", True),
    "lgpl-3.0": ("LGPL-3.0", True),
    "gpl-2.0": ("GPL-2.0", True),
    "gpl-3.0": ("GPL-3.0", True),
    "agpl-3.0": ("AGPL-3.0", True),
    "cc-by-nc-4.0": ("CC-BY-NC-4.0", False),
    "cc-by-nc-sa-4.0": ("CC-BY-NC-SA-4.0", False),
    "cc-by-nc-nd-4.0": ("CC-BY-NC-ND-4.0", False),
    "cc-by-nc-3.0": ("CC-BY-NC-3.0", False),
    "openrail": ("OpenRAIL", None),
    "llama2": ("LLAMA2", None),
    "other": ("other", None),
    "unknown": ("unknown", None),
}

# A ~64-token review-like text: latency depends on length, so every backbone is timed on the same input.
_SAMPLE = (
    "I bought this coffee after reading the reviews and it did not disappoint. The beans arrived fresh, "
    "the roast is dark without tasting burnt, and the flavour stays smooth even when it cools. The price "
    "is fair for the quality, shipping was quick, and I will order it again."
)


def normalize_license(value: str | None) -> tuple[str, bool | None]:
    """(SPDX id, commercial use) for a license string such as ``apache-2.0``; unknown ids keep their text."""
    if not value or not str(value).strip():
        return "unknown", None
    key = str(value).strip().lower().replace(" ", "-")
    return LICENSES.get(key, (str(value).strip(), None))


def _readme_license(folder: Path) -> str | None:
    """The ``license:`` of a model card's YAML front matter (README.md), if it has one."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---", text, flags=re.DOTALL)
    if not match:
        return None
    lic = re.search(r"^license:\s*['\"]?([^'\"\n#]+?)['\"]?\s*$", match.group(1), flags=re.MULTILINE)
    return lic.group(1) if lic else None


def license_info(backbone: Backbone) -> dict[str, Any]:
    """The backbone's license as SPDX, whether commercial use is allowed, and where that was read."""
    card = backbone.card
    if card.license and card.license.lower() != "unknown":
        spdx, commercial = normalize_license(card.license)
        commercial = card.commercial_use if card.commercial_use is not None else commercial
        return {"license": spdx, "commercial_use": commercial, "license_source": "backbone card"}
    found = _readme_license(Path(card.path)) if card.path else None
    if found:
        spdx, commercial = normalize_license(found)
        return {"license": spdx, "commercial_use": commercial, "license_source": "README.md front matter"}
    return {"license": "unknown", "commercial_use": None, "license_source": "none found"}


# -- latency ------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def machine_id() -> str:
    """This machine as latency depends on it: OS/architecture, CPU model and core count."""
    return f"{platform.system()}-{platform.machine()}|{_cpu_model()}|cores={os.cpu_count()}"


def latency_cache_path() -> Path:
    return cache_dir() / "latency.json"


def latency_key(backbone: Backbone, threads: int | None = None) -> str:
    """Cache key: weights sha256 + this machine + torch threads (``threads`` or the current setting)."""
    import torch

    weights = backbone.card.weights_sha256 or f"name:{backbone.card.name}"
    return f"{weights}|{machine_id()}|threads={threads or torch.get_num_threads()}"


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sample_inputs(backbone: Backbone, n: int) -> list | None:
    if backbone.modality == "image":  # fixed random RGB photos at the backbone's own input size
        import numpy as np

        size = int(getattr(backbone, "image_size", 224))
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    if backbone.modality != "text":
        return None  # no standard input for this modality yet
    words = _SAMPLE.split()
    return [" ".join(words[i % 7:] + words[: i % 7]) for i in range(n)]  # same length, different order


def measure_latency(backbone: Backbone, repeats: int = 10, threads: int | None = None) -> dict[str, Any] | None:
    """Time the backbone (preprocessing included) at batch 1 and 32 after a warm-up; ms per example.

    Medians over repeated calls, so a busy machine's occasional stall does not decide the number.
    ``threads`` sets torch's thread count for the measurement (default: the current setting).
    """
    import numpy as np
    import torch

    inputs = _sample_inputs(backbone, 64)
    if inputs is None:
        return None
    encoder = backbone.load_encoder(pretrained=True).eval()

    def run(batch: list) -> float:
        t0 = time.perf_counter()
        data = backbone.encode(batch)
        backbone.pooled(encoder, data.collate(range(len(batch))))
        return time.perf_counter() - t0

    with torch.inference_mode(), _torch_threads(threads):
        run(inputs[:1]), run(inputs[:32])  # warm-up of both shapes: lazy initialisation, allocator
        b1 = float(np.median([run([x]) for x in inputs[:repeats]])) * 1000
        b32 = float(np.median([run(inputs[s : s + 32]) for s in (0, 32, 16)])) / 32 * 1000
        n_threads = torch.get_num_threads()
    tokens = int(backbone.lengths(inputs[:1])[0]) if backbone.modality == "text" else None
    return {"latency_ms_b1": round(b1, 3), "latency_ms_b32": round(b32, 3), "input_tokens": tokens,
            "input": f"{tokens}-token input" if tokens is not None else f"{inputs[0].shape[0]}x{inputs[0].shape[1]} px image",
            "torch_threads": n_threads, "machine": machine_id(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a missing or corrupt cache only costs a new measurement


def backbone_latency(backbone: Backbone, *, measure: bool = True, refresh: bool = False,
                     threads: int | None = None) -> dict[str, Any] | None:
    """Cached latency of ``backbone`` on this machine; measured now when missing and ``measure``."""
    path, key = latency_cache_path(), latency_key(backbone, threads)
    if not refresh:
        cached = _read_cache(path).get(key)
        if cached is not None:
            return cached
    if not measure:
        return None
    result = measure_latency(backbone, threads=threads)
    if result is None:
        return None
    data = _read_cache(path)  # re-read: another process may have added entries meanwhile
    data[key] = {**result, "backbone": backbone.card.name}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache folder only costs speed
    return data[key]


# -- the catalog --------------------------------------------------------------------------------------
def install_hint(err: Exception) -> str:
    """The ``pip install ...`` command an AssetMissingError names, or its whole message."""
    match = re.search(r"pip install .*$", str(err))
    return match.group(0).rstrip(". ") if match else str(err)


class Latency(Record):
    """A latency measurement as :func:`measure_latency` makes it and the cache keeps it."""

    latency_ms_b1: float | None = None
    latency_ms_b32: float | None = None
    input_tokens: int | None = None
    input: str | None = None
    torch_threads: int | None = None
    machine: str | None = None
    measured_at: str | None = None


class CatalogEntry(BackboneInfo):
    """A catalog row (:func:`describe_backbone`, :func:`catalog`) as fields: the card, where its license came from
    and the latency on this machine. A backbone that is not installed has only ``name``, ``installed`` and
    ``status``."""

    installed: bool = True
    status: str = ""
    license_source: str | None = None
    latency_ms_b1: float | None = None
    latency_ms_b32: float | None = None
    latency: Latency | None = None

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> CatalogEntry:
        return cls.model_validate(row)


def describe_backbone(backbone: Backbone, *, latency: bool = True, refresh: bool = False,
                      threads: int | None = None) -> dict[str, Any]:
    """Everything the catalog shows about one backbone (card, license, latency).

    Args:
        latency: measure latency when this machine has no cached measurement (else show the cached one or none).
        refresh: measure again even when cached.
        threads: torch threads for the measurement (default: the current setting).
    """
    card = backbone.card.to_dict()
    row: dict[str, Any] = {"installed": True, "status": "installed", **card, **license_info(backbone)}
    lat = backbone_latency(backbone, measure=latency, refresh=refresh and latency, threads=threads)
    row["latency_ms_b1"] = lat.get("latency_ms_b1") if lat else None
    row["latency_ms_b32"] = lat.get("latency_ms_b32") if lat else None
    row["latency"] = lat
    return row


def describe(name_or_path: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`describe_backbone` for a registered name or a local HF folder (errors propagate)."""
    from . import get_backbone

    return describe_backbone(get_backbone(name_or_path), **kwargs)


def catalog(**kwargs: Any) -> list[dict[str, Any]]:
    """One row per registered backbone (keyword arguments as :func:`describe_backbone`); a backbone
    whose package is missing says how to install it instead."""
    rows = []
    for name in BACKBONES.names():
        try:
            rows.append(describe(name, **kwargs))
        except AssetMissingError as err:
            rows.append({"name": name, "installed": False, "status": f"not installed ({install_hint(err)})",
                         "install": install_hint(err), "error": str(err)})
        except GraftError as err:  # e.g. a damaged package: show it, keep listing the others
            rows.append({"name": name, "installed": False, "status": f"unusable: {err}", "error": str(err)})
    return rows
