"""On a real GPU: fitting, extracting and predicting there, and a GPU-trained model on the CPU.

These run only where torch sees a CUDA device (the rest of the suite fakes one); CI has none, so
they skip there and are run on a GPU machine (benchmarks/README, "Devices and processes").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import headstart
from headstart.backbones import create_backbone
from headstart.compute.device import precision_for, resolve_device, using_device
from headstart.features.extract import compute_features

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: torch sees none here")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_auto_is_the_gpu_and_it_computes_in_reduced_precision():
    device = resolve_device("auto")
    assert device.type == "cuda"
    assert precision_for(device).dtype in (torch.bfloat16, torch.float16)


def test_features_on_the_gpu_match_the_cpus_within_reduced_precision(tiny_bert_name, tmp_path):
    backbone = create_backbone(tiny_bert_name)
    texts = [f"item {i} about {'sports' if i % 2 else 'cooking'}" for i in range(40)]
    on_cpu = compute_features(backbone, texts, engine="torch", cache_dir=tmp_path / "cpu")
    with using_device("cuda"):
        on_gpu = compute_features(backbone, texts, engine="torch", cache_dir=tmp_path / "gpu")
    assert on_gpu.dtype == np.float32 and on_gpu.shape == on_cpu.shape
    assert _cosines(on_cpu, on_gpu).min() > 0.99
    assert not np.array_equal(on_cpu, on_gpu)  # reduced precision did run there


def test_a_model_fine_tuned_on_the_gpu_predicts_on_the_cpu_as_on_the_gpu(tmp_path, write_csv, tiny_bert_name):
    train = write_csv(tmp_path / "train.csv", n_per_class=16, seed=3)
    model = headstart.fit(train, backbone=tiny_bert_name, mode="finetune", baseline=False, device="cuda",
                          out=tmp_path / "run", finetune_config=headstart.FinetuneConfig(strategy="staged", epochs=2))
    assert model.finetuned and model.device == "cuda"
    texts = [f"item {i} about {'sports' if i % 2 else 'cooking'}" for i in range(30)]
    on_gpu = model.predict_proba(texts)
    on_cpu = headstart.load(tmp_path / "run", device="cpu").predict_proba(texts)
    assert np.abs(on_gpu - on_cpu).max() < 0.05  # bfloat16 against float32 of the same weights
    assert (on_gpu.argmax(1) == on_cpu.argmax(1)).mean() >= 0.9
