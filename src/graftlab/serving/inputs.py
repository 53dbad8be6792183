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

__all__ = ["DATA_URL_PREFIX", "ImageInput", "decode_image", "decode_logged_image", "is_image_url", "logged_image"]

DATA_URL_PREFIX = "data:image/"
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)
_MIME = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff", "WEBP": "webp", "PPM": "x-portable-pixmap"}


@dataclass(frozen=True)
class ImageInput:
    """One decoded image: its pixels, the file as a data URL (what the log stores) and its sha256."""

    pixels: np.ndarray = field(repr=False)
    data_url: str = field(repr=False)
    sha256: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.pixels.shape)


def decode_image(value: Any, max_pixels: int) -> ImageInput:
    """An :class:`ImageInput` from the base64 text of an image file (a data URL prefix is allowed).

    Raises:
        ValueError: not base64, not an image file Pillow can read, or over ``max_pixels``; the message
            says which and what to send instead.
    """
    from ..data.images import decode_image_file

    if not isinstance(value, str):
        raise ValueError(f"an image must be a string holding the base64 of an image file, not {type(value).__name__}")
    payload = _DATA_URL.sub("", value.strip(), count=1)
    try:
        raw = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an image must be the base64 text of an image file (PNG, JPEG, ...), optionally as a data URL "
                         "'data:image/png;base64,...'; this value is not valid base64") from None
    if not raw:
        raise ValueError("the image is empty: send the base64 text of an image file (PNG, JPEG, ...)")
    try:
        pixels, fmt = decode_image_file(io.BytesIO(raw), max_pixels=max_pixels)
    except ValueError as e:
        raise ValueError(f"{e} (limit max_image_pixels={max_pixels}); send a smaller image") from None
    except ImportError:
        raise ValueError("this server cannot decode images: Pillow is not installed (pip install pillow)") from None
    except Exception as e:  # noqa: BLE001  (Pillow raises many kinds for a broken file)
        raise ValueError(f"the base64 value is not an image file Pillow can read ({type(e).__name__}); "
                         "send PNG, JPEG, BMP, GIF, TIFF or WebP") from None
    mime = _MIME.get(fmt.upper(), fmt.lower())
    return ImageInput(pixels, f"data:image/{mime};base64,{''.join(payload.split())}", hashlib.sha256(raw).hexdigest())


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
