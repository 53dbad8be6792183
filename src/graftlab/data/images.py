"""Image data: a folder per class, a table with an image column (paths or arrays), and IDX files.

Images are decoded once, when the data are loaded, into ``uint8`` arrays: ``(height, width)`` for
grayscale, ``(height, width, 3)`` for colour (RGBA and palette images become RGB). Resizing and
normalisation belong to the backbone (its card says the input size, mean and std), so the arrays
keep their own size here. Decoding up front means a missing or broken file stops the study before
any compute, with a message naming the file, and it lets the data checks and the fingerprint see
pixel content rather than file names.

Two derived columns are added to every image table and can be named in ``data.slices``:
``brightness`` (mean pixel value in [0, 1]) and ``brightness_quartile`` (``Q1 (darkest)`` ...
``Q4 (brightest)`` within that table).
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.config import DataConfig, SourceConfig
from ..core.errors import AssetMissingError, DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "DERIVED_COLUMNS",
    "read_idx",
    "load_idx",
    "load_image_folder",
    "decode_images",
    "decode_image_file",
    "encode_png",
    "image_digest",
    "as_image_array",
    "brightness",
    "brightness_quartiles",
    "with_image_columns",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DERIVED_COLUMNS = ("brightness", "brightness_quartile")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
               0x0E: np.dtype(">f8")}
_MAX_REPORTED = 5


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def read_idx(path: str | Path, key: str = "data.source.path") -> np.ndarray:
    """An IDX file (the MNIST format; ``.gz`` is decompressed) as an array of its stored shape.

    Raises:
        DataError: the file is missing or is not an IDX file.
    """
    path = Path(path)
    if not path.is_file():
        hint = ""
        if "fashion-mnist" in str(path):
            hint = " Fashion-MNIST comes from Debian: `apt-get install dataset-fashion-mnist` (or `make fashion-mnist`)."
        raise DataError(f"The '{key}' IDX file {path} does not exist. Fix the path in the config.{hint}")
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"Cannot read the '{key}' IDX file {path} ({e}). Fix or re-download the file.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] < 1:
        raise DataError(
            f"The '{key}' file {path} is not an IDX file (it does not start with the IDX magic number). "
            "Point it at an MNIST-style *-idx1-ubyte / *-idx3-ubyte file (gzipped or not)."
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim :]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(body) != expected:
        raise DataError(
            f"The '{key}' IDX file {path} is truncated or corrupt: its header says shape {dims} "
            f"({expected} bytes) but it holds {len(body)} bytes. Re-download the file."
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def load_idx(source: SourceConfig, key: str = "data.source") -> pd.DataFrame:
    """Rows of an IDX image file and its IDX label file: columns ``image`` (uint8 arrays) and ``label``."""
    images = read_idx(source.path or "", f"{key}.path")
    labels = read_idx(source.labels or "", f"{key}.labels")
    if images.ndim not in (3, 4) or labels.ndim != 1:
        raise DataError(
            f"'{key}.path' must be an IDX image file (n, height, width[, channels]) and '{key}.labels' an IDX label "
            f"file (n,); got shapes {images.shape} and {labels.shape}. Did you swap them?"
        )
    if len(images) != len(labels):
        raise DataError(
            f"The IDX image file has {len(images)} images but the label file has {len(labels)} labels; "
            f"'{key}.path' and '{key}.labels' must come from the same set (e.g. both train or both t10k)."
        )
    values = labels.astype(np.int64)
    if source.class_names is not None:
        if values.max() >= len(source.class_names) or values.min() < 0:
            raise DataError(
                f"'{key}.class_names' lists {len(source.class_names)} names but the labels go from {values.min()} "
                f"to {values.max()}; give one name per label value 0..{values.max()}."
            )
        names = np.asarray(source.class_names, dtype=object)[values]
    else:
        names = values.astype(str)
    if images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    return pd.DataFrame({"image": list(images), "label": names})


def load_image_folder(source: SourceConfig, key: str = "data.source") -> pd.DataFrame:
    """Rows of a folder with one sub-folder of images per class: columns ``image`` (paths), ``label``, ``path``."""
    root = Path(source.path or "")
    if not root.is_dir():
        where = "is a file, not a folder" if root.is_file() else "does not exist"
        raise DataError(
            f"The '{key}.path' image folder {root} {where}. It must hold one sub-folder of images per class "
            "(e.g. photos/cat/1.jpg, photos/dog/2.png)."
        )
    rows = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(class_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                rows.append({"image": str(f), "label": class_dir.name, "path": str(f.relative_to(root))})
    if not rows:
        raise DataError(
            f"The '{key}.path' folder {root} holds no images in class sub-folders. Put each class's images "
            f"({', '.join(IMAGE_EXTENSIONS[:4])}, ...) in a sub-folder named after the class."
        )
    return pd.DataFrame(rows)


def as_image_array(x: Any) -> np.ndarray:
    """A uint8 (h, w) or (h, w, 3) array from an array-like image (any of (h, w), (h, w, 1|3|4))."""
    arr = np.asarray(x)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or min(arr.shape[:2]) < 1:
        raise ValueError(f"shape {arr.shape} is not an image (height, width) or (height, width, 1/3/4 channels)")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0  # floats in [0, 1]
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def decode_image_file(source: Any, max_pixels: int | None = None) -> tuple[np.ndarray, str]:
    """(uint8 array, format name such as "PNG") of one image file: a path or a binary file object.

    Grayscale modes become (h, w), everything else (h, w, 3). ``max_pixels`` refuses larger images
    before their pixels are decoded (a decompression bomb costs nothing). Raises what Pillow raises
    for an unreadable file, ValueError for one over ``max_pixels``, ImportError without Pillow.
    """
    from PIL import Image

    with Image.open(source) as img:
        width, height = img.size
        if max_pixels is not None and width * height > max_pixels:
            raise ValueError(f"the image is {width} x {height} pixels; the limit is {max_pixels} pixels in all")
        fmt = str(img.format or "image")
        img.load()
        if img.mode in ("L", "1", "I;16", "I", "F"):
            return as_image_array(np.array(img.convert("L"))), fmt  # np.array: a writable copy
        return as_image_array(np.array(img.convert("RGB"))), fmt


def image_digest(image: np.ndarray) -> str:
    """sha256 of an image's pixels and shape: the same picture has the same digest whatever file held it."""
    arr = np.ascontiguousarray(image)
    return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    """The PNG file (lossless) of a uint8 image array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(as_image_array(image)).save(buf, format="PNG")
    return buf.getvalue()


def decode_images(values: Sequence[Any], *, base_dir: str | Path | None = None, column: str = "image",
                  name: str = "the data") -> list[np.ndarray]:
    """Decode a column of images into uint8 arrays: file paths (relative to ``base_dir``), the bytes of image
    files (as parquet stores them; also ``{"bytes": ..., "path": ...}`` as Hugging Face datasets write them), or arrays.

    Raises:
        DataError: files are missing or unreadable, or values are not images; every problem is
            counted and the first few are named, with what to fix.
        AssetMissingError: paths need Pillow and it is not installed.
    """
    base = Path(base_dir) if base_dir else None
    out: list[np.ndarray] = []
    missing: list[str] = []
    broken: list[str] = []
    for i, v in enumerate(values):
        if isinstance(v, dict) and ("bytes" in v or "path" in v):  # a Hugging Face datasets Image value
            v = v.get("bytes") or v.get("path")
        if isinstance(v, bytes | bytearray | memoryview | str | Path):
            if isinstance(v, str | Path):
                source = Path(v).expanduser()
                if not source.is_absolute() and base is not None:
                    source = base / source
                if not source.is_file():
                    missing.append(f"row {i}: {source}")
                    out.append(np.zeros((1, 1), np.uint8))
                    continue
                what = str(source)
            else:
                source, what = io.BytesIO(bytes(v)), f"{len(v)} bytes that are not an image file"
            try:
                out.append(decode_image_file(source)[0])
            except ImportError:
                raise AssetMissingError("Reading image files needs Pillow: run `pip install pillow`.") from None
            except Exception as e:  # noqa: BLE001  (PIL raises many kinds; each is reported as a bad file)
                broken.append(f"row {i}: {what} ({type(e).__name__}: {str(e).strip()[:80]})")
                out.append(np.zeros((1, 1), np.uint8))
        elif v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
            missing.append(f"row {i}: no value")
            out.append(np.zeros((1, 1), np.uint8))
        else:
            try:
                out.append(as_image_array(v))
            except (ValueError, TypeError) as e:
                broken.append(f"row {i}: {e}")
                out.append(np.zeros((1, 1), np.uint8))
    problems = []
    if missing:
        where = f" (relative paths are read from {base})" if base is not None else ""
        problems.append(f"{len(missing)} images of the '{column}' column of {name} are missing{where}: "
                        + "; ".join(missing[:_MAX_REPORTED]) + ("; ..." if len(missing) > _MAX_REPORTED else "")
                        + ". Fix the paths or remove those rows.")
    if broken:
        problems.append(f"{len(broken)} images of the '{column}' column of {name} cannot be read as images: "
                        + "; ".join(broken[:_MAX_REPORTED]) + ("; ..." if len(broken) > _MAX_REPORTED else "")
                        + ". Replace or remove those files (readable formats: PNG, JPEG, BMP, GIF, TIFF, WebP).")
    if problems:
        raise DataError("\n".join(problems))
    return out


def brightness(images: Sequence[np.ndarray]) -> np.ndarray:
    """Mean pixel value of each image in [0, 1], (n,)."""
    return np.array([float(img.mean()) / 255.0 for img in images], dtype=np.float64)


def brightness_quartiles(values: np.ndarray) -> np.ndarray:
    """Quartile labels ``Q1 (darkest)`` .. ``Q4 (brightest)`` of brightness values, (n,) object array."""
    names = ["Q1 (darkest)", "Q2", "Q3", "Q4 (brightest)"]
    if len(values) == 0:
        return np.array([], dtype=object)
    edges = np.quantile(values, [0.25, 0.5, 0.75])
    return np.asarray(names, dtype=object)[np.searchsorted(edges, values, side="left")]


def with_image_columns(df: pd.DataFrame, cfg: DataConfig, name: str) -> pd.DataFrame:
    """``df`` with its image column decoded to arrays and the derived brightness columns added.

    Raises:
        DataError: the image column is missing, or an image cannot be read (see :func:`decode_images`).
    """
    col = cfg.image or "image"
    if col not in df.columns:
        available = list(df.columns)
        hint = difflib.get_close_matches(col, available, n=1, cutoff=0.5)
        raise DataError(
            f"The 'data.image' column {col!r} is not in {name}. Available columns: {', '.join(available)}"
            + (f"; did you mean {hint[0]!r}?" if hint else ". Set data.image to the column holding image paths.")
        )
    images = decode_images(df[col].tolist(), base_dir=df.attrs.get("base_dir"), column=col, name=name)
    out = df.copy()
    out[col] = pd.Series(images, index=out.index, dtype=object)
    if "brightness" not in out.columns:
        out["brightness"] = brightness(images)
    if "brightness_quartile" not in out.columns:
        out["brightness_quartile"] = brightness_quartiles(out["brightness"].to_numpy(dtype=float))
    return out
