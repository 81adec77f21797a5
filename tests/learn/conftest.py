"""Fixtures of the learn tests."""

from __future__ import annotations

import pytest

from headstart.learn import trainer


@pytest.fixture
def encoder_copies(monkeypatch):
    """``watch(backbone) -> list``: the list grows by one at each ``deepcopy`` of the whole encoder's
    state dict from then on (each copy costs the model's size in memory)."""
    deepcopy = trainer.copy.deepcopy

    def watch(backbone) -> list:
        keys, seen = backbone.module.state_dict().keys(), []

        def counted_copy(value, *args):
            if isinstance(value, dict) and value.keys() == keys:
                seen.append(value)
            return deepcopy(value, *args)

        monkeypatch.setattr(trainer.copy, "deepcopy", counted_copy)
        return seen

    return watch
