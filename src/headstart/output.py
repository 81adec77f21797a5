"""Files written whole or not at all, and the figures that go into headstart's reports.

Every file headstart writes for a user is written to a temporary file in the same folder and then
renamed over the target (``os.replace``, atomic on one file system): bad input or a crash leaves
the previous file, or none, never half of a new one, and no temporary file behind.

Figures use matplotlib's Agg canvas without pyplot, so no global backend or figure state is
touched; matplotlib is imported only when a figure is drawn, which keeps the command line quick.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "atomic_open", "atomic_path", "figure_png", "new_figure", "png_base64", "write_bytes", "write_csv",
           "write_json", "write_text"]

DPI = 100
FILE_MODE = 0o644  # mkstemp creates 0600; reports, predictions and exports are meant to be shared


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, renamed to ``path`` when the block succeeds.

    It is removed when the block raises.

    Args:
        path: the file to create or replace; its folder is created when missing.

    Returns:
        A context manager yielding the temporary path (an empty file already exists there).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, newline: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` for writing, through :func:`atomic_path`.

    The file appears, complete and flushed to disk, only when the block ends without an error.

    Args:
        path: the file to create or replace.
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.
        newline: as for :func:`open` (``""`` for the csv module).

    Returns:
        A context manager yielding the open file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as temporary, open(temporary, mode, encoding=encoding, newline=newline) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename, so a power cut cannot leave an empty file


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Returns:
        ``path`` as a Path.
    """
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    Returns:
        ``path`` as a Path.
    """
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def json_value(value):
    """A JSON-writable form of what ``json`` cannot write itself (its ``default=`` hook).

    Args:
        value: a numpy scalar or array, a path, a dtype, or anything ``float()`` takes (a 0-d tensor).

    Returns:
        A number, a list, or a string.

    Raises:
        TypeError: for anything else, as ``json`` expects of its hook.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path) or type(value).__name__ == "dtype":  # numpy's and torch's dtypes
        return str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"cannot write {type(value).__name__} to JSON") from None


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON (numpy values as plain numbers) to ``path`` atomically.

    The text is built before anything is written, so an object that cannot be written raises
    ``TypeError`` and leaves ``path`` as it was.

    Returns:
        ``path`` as a Path.
    """
    return write_text(path, json.dumps(obj, indent=2, default=json_value) + "\n")


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write a CSV file (``header``, then ``rows``) to ``path`` atomically.

    Returns:
        ``path`` as a Path.
    """
    with atomic_open(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure of ``width`` x ``height`` inches on its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, cropped to its contents, on white."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def png_base64(png: bytes | None) -> str | None:
    """PNG bytes as base64 text for a ``data:image/png;base64,`` URL (None stays None)."""
    return None if png is None else base64.b64encode(png).decode("ascii")
