"""Inputs named on the command line: image files (or folders of them) for ``graft predict`` and ``graft explain``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import DataError

__all__ = ["read_image_args"]

_FORMATS = "PNG, JPEG, BMP, GIF, TIFF or WebP"


def read_image_args(paths: list[str], option: str = "--image") -> tuple[list[str], list[Any]]:
    """Decode the image files named by ``option`` (a folder stands for every image file under it, sorted).

    Returns:
        (the file paths, their uint8 arrays (h, w) or (h, w, 3)), in order.

    Raises:
        DataError: a path is missing, a folder holds no image, or a file is not an image.
    """
    from ..data.images import IMAGE_EXTENSIONS, decode_image_file

    files: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"The {option} folder {p} holds no image files ({', '.join(IMAGE_EXTENSIONS[:4])}, ...).")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"The {option} file {p} does not exist. Pass the path of an image file ({_FORMATS}) or of "
                            "a folder of them.")
    arrays = []
    for f in files:
        try:
            arrays.append(decode_image_file(f)[0])
        except Exception as err:  # noqa: BLE001  (Pillow raises many kinds for a file that is not an image)
            raise DataError(f"The {option} file {f} cannot be read as an image ({type(err).__name__}: "
                            f"{str(err).strip()[:120]}). Pass a {_FORMATS} file.") from None
    return [str(f) for f in files], arrays
