"""Token ids of a fixed set of texts, computed once and batched by index.

Contrastive tuning draws the same few texts into batch after batch; tokenizing each once and
padding each batch to its own longest text gives the encoder exactly what
:meth:`headstart.backbones.text.TextBackbone.preprocess` would, without tokenizing again.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from headstart.data.dataset import MAX_TEXT_CHARS


class TokenCache:
    """The token ids of ``items`` under ``backbone``'s tokenizer and maximum length.

    Args:
        backbone: a text backbone (its ``tokenizer`` and ``max_length`` are read).
        items: the texts; :meth:`batch` takes positions in this list.
    """

    def __init__(self, backbone, items: Sequence[str]):
        tokenizer = backbone.tokenizer
        # Cut as preprocess cuts: the tokenizer reads a whole text before truncating.
        encoded = tokenizer([item[:MAX_TEXT_CHARS] for item in items], truncation=True,
                            max_length=backbone.max_length)
        self.ids = [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.left = getattr(tokenizer, "padding_side", "right") == "left"

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def longest(self) -> int:
        """Tokens of the longest text, specials included."""
        return max((len(ids) for ids in self.ids), default=0)

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` of the texts at ``indices``, padded to the longest of them."""
        rows = [self.ids[i] for i in indices]
        length = max(len(row) for row in rows)
        input_ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for j, row in enumerate(rows):
            span = slice(length - len(row), length) if self.left else slice(0, len(row))
            input_ids[j, span], mask[j, span] = row, 1
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
