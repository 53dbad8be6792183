"""Inputs of an image model: base64-encoded image files (PNG, JPEG, ...) in JSON, decoded once per request.

A request sends an image as the base64 text of its file, optionally as a data URL
(``data:image/png;base64,...``). The service decodes it with Pillow into the same uint8 array a study
reads from disk, so the model sees what it was evaluated on. The prediction log stores the image (when
inputs are logged) as a data URL, which ``graft monitor`` and ``graft retrain`` decode again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ImageInput", "ImagePayload", "decode_image", "decode_images", "decode_logged_image",
           "is_image_url", "logged_image", "parse_image"]

_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)
_MIME = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff", "WEBP": "webp", "PPM": "x-portable-pixmap"}


@dataclass(frozen=True)
class ImageInput:
    """One decoded image: its pixels, the file as a data URL (what the log stores) and its sha256."""

    pixels: np.ndarray = field(repr=False)
    data_url: str = field(repr=False)
    sha256: str


@dataclass(frozen=True)
class ImagePayload:
    """A request's image as validated on the event loop: the file's bytes, not yet decoded."""

    raw: bytes = field(repr=False)
    b64: str = field(repr=False)


def parse_image(value: Any) -> ImagePayload:
    """Check that ``value`` is the base64 text of a non-empty file (a data URL prefix is allowed); cheap, no decoding.

    Raises:
        ValueError: not a string, not base64, or empty; the message says what to send instead.
    """
    if not isinstance(value, str):
        raise ValueError(f"an image must be a string holding the base64 of an image file, not {type(value).__name__}")
    b64 = "".join(_DATA_URL.sub("", value.strip(), count=1).split())
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an image must be the base64 text of an image file (PNG, JPEG, ...), optionally as a data URL "
                         "'data:image/png;base64,...'; this value is not valid base64") from None
    if not raw:
        raise ValueError("the image is empty: send the base64 text of an image file (PNG, JPEG, ...)")
    return ImagePayload(raw, b64)


def decode_image(payload: ImagePayload, max_pixels: int) -> ImageInput:
    """An :class:`ImageInput` from a validated :class:`ImagePayload` (blocking: Pillow decodes the pixels).

    Raises:
        ValueError: not an image file Pillow can read, or over ``max_pixels``; the message says which and
            what to send instead.
    """
    from ..data.images import decode_image_file

    try:
        pixels, fmt = decode_image_file(io.BytesIO(payload.raw), max_pixels=max_pixels)
    except ValueError as e:
        raise ValueError(f"{e} (limit max_image_pixels={max_pixels}); send a smaller image") from None
    except ImportError:
        raise ValueError("this server cannot decode images: Pillow is not installed (pip install pillow)") from None
    except Exception as e:  # noqa: BLE001  (Pillow raises many kinds for a broken file)
        raise ValueError(f"the base64 value is not an image file Pillow can read ({type(e).__name__}); "
                         "send PNG, JPEG, BMP, GIF, TIFF or WebP") from None
    mime = _MIME.get(fmt.upper(), fmt.lower())
    return ImageInput(pixels, f"data:image/{mime};base64,{payload.b64}", hashlib.sha256(payload.raw).hexdigest())


def decode_images(values: list[Any], max_pixels: int, field_name: str) -> list[Any]:
    """Decode every :class:`ImagePayload` of a request (texts pass through); blocking, for a worker thread.

    Raises:
        ValueError: the first image that cannot be decoded, its message starting with where it is
            (``image: ...`` or ``images.3: ...``).
    """
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, ImagePayload):
            out.append(v)
            continue
        try:
            out.append(decode_image(v, max_pixels))
        except ValueError as e:
            where = field_name if len(values) == 1 and field_name == "image" else f"{field_name}.{i}"
            raise ValueError(f"{where}: {e}") from None
    return out


def is_image_url(value: Any) -> bool:
    """Whether a logged input is an image stored as a data URL."""
    return isinstance(value, str) and bool(_DATA_URL.match(value))


def decode_logged_image(value: str) -> np.ndarray:
    """The pixels of an image the log stored as a data URL (no size limit: it was checked when served)."""
    from ..data.images import decode_image_file

    return decode_image_file(io.BytesIO(base64.b64decode(_DATA_URL.sub("", value, count=1))))[0]


def logged_image(value: Any) -> np.ndarray | None:
    """The pixels of a logged input when it is a readable image; None for a text or a damaged entry."""
    if not is_image_url(value):
        return None
    try:
        return decode_logged_image(value)
    except Exception:  # noqa: BLE001  (a damaged entry is counted and left out by the caller, never fatal)
        return None
