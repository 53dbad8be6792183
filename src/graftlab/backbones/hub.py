"""``hf:org/name``: a text backbone named by its Hugging Face Hub id, read from the local Hugging Face cache only.

The cache is the one huggingface_hub downloads into (``models--org--name/snapshots/<commit>/``, ``refs/main``), found
as huggingface_hub finds it: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``. Nothing is
downloaded: a model that is not cached is an error that says how to put it there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import AssetMissingError, ConfigError
from .base import REFERENCE_SCHEMES
from .catalog import _readme_license, normalize_license
from .hf_text import HFTextBackbone, _offline

__all__ = ["SCHEME", "hub_backbone", "hub_cache_dir", "cached_snapshot"]

SCHEME = "hf"
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (huggingface_hub reads it once, when imported)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache"))
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


def _not_cached(repo_id: str, cache: Path, why: str) -> AssetMissingError:
    return AssetMissingError(
        f"The backbone '{SCHEME}:{repo_id}' is not in the local Hugging Face cache ({cache}: {why}); graftlab never "
        f"downloads at run time. On a machine with network access run `hf download {repo_id}` (huggingface_hub's "
        "command; it fills the same cache), then copy the cache here or point HF_HUB_CACHE (or HF_HOME) at it; or "
        "give the path of a folder saved with save_pretrained() in 'backbones' instead."
    )


def cached_snapshot(repo_id: str) -> Path:
    """The folder of ``repo_id``'s cached snapshot of ``main``.

    Raises:
        ConfigError: ``repo_id`` is not a Hub id.
        AssetMissingError: it is not cached, or its snapshot holds no model (no config.json or no weights).
    """
    _offline()  # before huggingface_hub is imported: it reads the flag then
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"'{SCHEME}:{repo_id}' does not hold a Hugging Face Hub id ({err}). Write it as "
                          f"'{SCHEME}:org/name', e.g. '{SCHEME}:sentence-transformers/all-MiniLM-L6-v2'.") from None
    cache = hub_cache_dir()
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError:
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        why = "no snapshot of its 'main' revision" if repo.is_dir() else f"no folder {repo.name}"
        raise _not_cached(repo_id, cache, why) from None
    if not (folder / "config.json").is_file():
        raise _not_cached(repo_id, cache, f"its snapshot {folder} has no config.json, so the model itself was not "
                                          "downloaded")
    if not any((folder / name).is_file() for name in _WEIGHTS):
        raise _not_cached(repo_id, cache, f"its snapshot {folder} has no weights ({' or '.join(_WEIGHTS[::2])})")
    return folder


def _license(folder: Path) -> str | None:
    """The license the model card's front matter declares, else a ``license`` key of config.json, else None."""
    found = _readme_license(folder)
    if found:
        return found
    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("license")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.strip() else None


@REFERENCE_SCHEMES.register(SCHEME)
def hub_backbone(repo_id: str) -> HFTextBackbone:
    """The cached Hub model ``repo_id`` as a text backbone named ``hf:<repo_id>``; its card records the snapshot's
    commit as the version and the license its README declares (``unknown`` when it declares none)."""
    folder = cached_snapshot(repo_id)
    spdx, commercial = normalize_license(_license(folder))
    return HFTextBackbone(folder.resolve(), name=f"{SCHEME}:{repo_id}", source_package=f"{SCHEME}:{repo_id}",
                          package_version=folder.name, license=spdx, commercial_use=commercial)
