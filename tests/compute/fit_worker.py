"""One process of a data-parallel fit, as `accelerate launch fit_worker.py DATA BERT RUNS` starts it.

It fits with fine-tuning on the CPU, asks for the model folder RUNS/model-rank<RANK> (only the main
process may write one) and saves this process's final weights to RUNS/weights-rank<RANK>.npz.
Run without a launcher it is the one-process run the data-parallel one is compared with.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

import headstart

# Dropout off and no class weights: then the gradient averaged over two processes' halves of each
# batch is the whole batch's, and the runs differ only in the order of floating-point sums.
CONFIG = headstart.FinetuneConfig(strategy="staged", epochs=2, batch_size=12, dropout=0.0, class_weighted=False)


def fit_and_save(data: str, bert: str, runs: Path) -> Path:
    rank = os.environ.get("RANK", "0")
    model = headstart.fit(data, backbone=f"hf:{bert}", mode="finetune", out=runs / f"model-rank{rank}", baseline=False,
                          engine="torch", device="cpu", finetune_config=CONFIG)
    weights = {f"backbone.{name}": value.numpy() for name, value in model.backbone.module.state_dict().items()}
    path = runs / f"weights-rank{rank}.npz"
    np.savez(path, head_weight=model.head.weight, head_bias=model.head.bias, **weights)
    return path


if __name__ == "__main__":
    fit_and_save(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
