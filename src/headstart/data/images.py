"""Image files: which names count as images, and loading one as RGB with a clear error when it is bad."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from headstart.errors import DataError

# Lower-case suffixes; compare with ``path.suffix.lower()``.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# What PIL raises for unreadable, truncated or absurdly large images.
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError)

_REPLACE = "remove or replace the file"


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` has an image extension (case-insensitive); the file itself is not opened."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path) -> Image.Image:
    """Load the image at ``path`` fully, as an RGB ``PIL.Image.Image`` of its own size.

    Transparent pixels are composited over white, so a logo on a transparent background
    does not turn black. Multi-frame files (GIF, TIFF) give their first frame.

    Raises:
        DataError: the file is missing, not an image, corrupt or truncated
            (``where`` is the path, ``fix`` says what to do).
    """
    path = Path(path)
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError as error:  # a name too long for the file system, say
        raise DataError(f"cannot look up the image file ({error.strerror or error})", where=str(path)[:300],
                        fix="check the path, or remove the item that points to it") from error
    if not is_file:
        what = "is a folder, not an image file" if is_dir else "image file not found"
        raise DataError(what, where=str(path), fix="check the path, or remove the item that points to it")
    try:
        # verify() checks the structure without decoding; it leaves the image unusable,
        # so open again and load() to decode every pixel, which is what catches truncation.
        with Image.open(path) as probe:
            probe.verify()
        with Image.open(path) as image:
            image.load()
            return _to_rgb(image)
    except _PIL_ERRORS as error:
        detail = str(error) or type(error).__name__
        raise DataError(f"cannot read image ({detail})", where=str(path), fix=_REPLACE) from error


def _to_rgb(image: Image.Image) -> Image.Image:
    """An RGB copy of ``image``; alpha is flattened onto white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
