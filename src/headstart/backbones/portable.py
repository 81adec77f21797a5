"""How a model folder names its backbone, so that the folder loads on another machine too.

Registry names (``minilm-l6``, ``effnet-lite0``, ``timm:<name>``) and hub ids load anywhere and are
kept as they are. A backbone read from a local folder (``hf:<folder>``, ``st:<folder>``) would name a
path that exists only here; it is copied into the model folder instead and named relative to it
(``hf:./backbone``), and loading resolves that against the model folder, wherever the folder has
been copied and whatever the working directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from headstart.errors import ModelError

BUNDLED = "backbone"  # the copy's folder inside the model folder
_RELATIVE = "./"
_FOLDER_PREFIXES = ("hf:", "st:")


def local_folder(name: str) -> Path | None:
    """The local folder an ``hf:``/``st:`` backbone name points to, or None (a registry name, a hub id)."""
    prefix, _, ref = name.partition(":")
    if f"{prefix}:" not in _FOLDER_PREFIXES or not ref:
        return None
    return Path(ref) if Path(ref).is_dir() else None


def bundle(name: str, model_folder: Path) -> str:
    """The name a model folder stores for the backbone ``name``, copying a local folder into it.

    Args:
        name: the backbone's registry name.
        model_folder: the folder being written; a local backbone folder is copied to
            ``model_folder / BUNDLED``, leaving out hidden files (``.git``, download caches).

    Returns:
        ``name`` itself, or ``<prefix>:./backbone`` for a copied folder.
    """
    source = local_folder(name)
    if source is None:
        return name
    shutil.copytree(source, model_folder / BUNDLED, ignore=shutil.ignore_patterns(".*"))
    return f"{name.partition(':')[0]}:{_RELATIVE}{BUNDLED}"


def resolve(name: str, model_folder: Path) -> str:
    """The name to build the backbone from: a name relative to the model folder made a path to it.

    Raises:
        ModelError: the model folder's copy of the backbone is missing.
    """
    prefix, _, ref = name.partition(":")
    if f"{prefix}:" not in _FOLDER_PREFIXES or not ref.startswith(_RELATIVE):
        return name
    folder = model_folder / ref[len(_RELATIVE):]
    if not folder.is_dir():
        raise ModelError("the model's copy of its backbone is missing", where=str(folder),
                         fix="copy the whole model folder")
    return f"{prefix}:{folder.absolute()}"
