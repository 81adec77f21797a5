"""A fine-tuned backbone saved in its own library's layout, inside the model folder.

The weights a registry cannot rebuild (fine-tuned, or a random initialization) go to
``<model>/backbone/`` in the layout their library reads, so the backbone is of use without headstart:

* text: a sentence-transformers folder (``config.json``, ``model.safetensors`` and the tokenizer at
  its root, the pooling and normalization beside them), which ``transformers.AutoModel.from_pretrained``
  and ``sentence_transformers.SentenceTransformer`` both load. The model folder then names its
  backbone ``st:./backbone`` and is built from that folder: the weights are stored once.
* timm: timm's own ``model.safetensors`` and ``config.json`` (``architecture``, ``num_classes=0``,
  ``pretrained_cfg``), for ``timm.create_model("local-dir:<model>/backbone", pretrained=True)`` or
  ``timm.create_model(architecture, pretrained=True, num_classes=0,
  pretrained_cfg_overlay=dict(file="<model>/backbone/model.safetensors"))``.
* EfficientNet-Lite: the ``efficientnet_lite_pytorch`` network's state dict in ``model.safetensors``
  (its ImageNet classifier left out) with a ``config.json`` naming the architecture and preprocessing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from headstart.backbones.base import Backbone
from headstart.backbones.image import EFFICIENTNET_LITE
from headstart.backbones.portable import BUNDLED
from headstart.errors import ModelError, first_line

WEIGHTS = "model.safetensors"
_LEGACY_WEIGHTS = "backbone.safetensors"  # folders saved before this layout: the module's state dict
_COPY_AGAIN = "copy the whole model folder again, or fit the model again"


def save_weights(backbone: Backbone, model_folder: Path) -> str:
    """Write ``backbone``'s weights to ``model_folder / "backbone"`` in its library's layout.

    Returns:
        The backbone name the model folder stores: ``st:./backbone`` for text (built from the
        folder), the registry name for images (built from the registry, then given the weights).
    """
    folder = model_folder / BUNDLED
    if backbone.modality == "text":
        _save_sentence_transformer(backbone, folder, model_folder / f".{BUNDLED}-encoder")
        return f"st:./{BUNDLED}"
    folder.mkdir()
    net = backbone.module.net
    if backbone.name.startswith("timm:"):
        from timm.models import save_for_hf

        save_for_hf(net, str(folder), safe_serialization=True)
        return backbone.name
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / WEIGHTS))
    config = {"architecture": EFFICIENTNET_LITE[backbone.name][0], "library": "efficientnet_lite_pytorch",
              "num_classes": 0,
              "num_features": backbone.feature_dim,
              "pretrained_cfg": {"input_size": [3, backbone.image_size, backbone.image_size],
                                 "mean": list(backbone.mean), "std": list(backbone.std)}}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return backbone.name


def _save_sentence_transformer(backbone: Backbone, folder: Path, scratch: Path) -> None:
    """The encoder, tokenizer, pooling and normalization of a text backbone as a sentence-transformers folder.

    sentence-transformers builds its modules from a saved folder, so the encoder goes through
    ``scratch`` (removed after) on its way to ``folder``.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from headstart.backbones.text import transformers_quiet

    pooled = backbone.module
    try:
        with transformers_quiet():
            pooled.encoder.save_pretrained(scratch)
            backbone.tokenizer.save_pretrained(scratch)
            modules = [Transformer(str(scratch), max_seq_length=backbone.max_length),
                       Pooling(backbone.feature_dim, pooled.pooling)]
            if pooled.normalize:
                modules.append(Normalize())
            # No model card of its own: the model folder describes the model.
            SentenceTransformer(modules=modules, device="cpu").save(str(folder), create_model_card=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def weights_missing(model_folder: Path) -> Path | None:
    """The weights file a fine-tuned model folder lacks, or None when it has its backbone's weights."""
    if (model_folder / _LEGACY_WEIGHTS).is_file():
        return None
    weights = model_folder / BUNDLED / WEIGHTS
    return None if weights.is_file() else weights


def load_weights(backbone: Backbone, model_folder: Path) -> None:
    """Give ``backbone`` the weights :func:`save_weights` wrote (a text backbone was built with them).

    Raises:
        ModelError: the weights are truncated or another backbone's.
    """
    legacy = model_folder / _LEGACY_WEIGHTS
    if legacy.is_file():
        path, module = legacy, backbone.module
    elif backbone.modality == "image":
        path, module = model_folder / BUNDLED / WEIGHTS, backbone.module.net
    else:
        return
    try:
        module.load_state_dict(load_file(str(path)))
    except (SafetensorError, OSError, RuntimeError) as error:  # truncated, or another backbone's
        raise ModelError(f"cannot load the fine-tuned weights ({first_line(error)})", where=str(path),
                         fix=_COPY_AGAIN) from error
