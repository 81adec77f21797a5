"""Pretrained backbones behind one interface, from one registry."""

from headstart.backbones.base import Backbone
from headstart.backbones.registry import (
    DEFAULT_BACKBONE,
    backbone_entry,
    backbone_modality,
    backbone_name_for,
    backbone_options,
    create_backbone,
    list_backbones,
    register_backbone,
)

__all__ = ["Backbone", "DEFAULT_BACKBONE", "backbone_entry", "backbone_modality", "backbone_name_for",
           "backbone_options", "create_backbone", "list_backbones", "register_backbone"]
