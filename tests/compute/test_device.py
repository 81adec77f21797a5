"""Device resolution, the precision policy, and the CPU path left as it was."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.compute.device import (BF16, FP16, FP32, autocast, check_device, current_device, precision_for,
                                      resolve_device, using_device)
from headstart.compute.processes import LocalEngine
from headstart.errors import HeadstartError

runner = CliRunner()


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(n, bf16=True)``: torch sees ``n`` CUDA devices (0: none), natively bf16 or not."""
    def set_gpus(n: int, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    return set_gpus


@pytest.mark.parametrize("spec, expected", [("auto", "auto"), ("CPU", "cpu"), ("cuda", "cuda"), (" cuda:1 ", "cuda:1")])
def test_device_spellings_are_read(spec, expected):
    assert check_device(spec) == expected


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cuda:-1", "mps", ""])
def test_unknown_devices_are_one_clear_error(spec):
    with pytest.raises(HeadstartError, match=r"--device: unknown device .*use auto"):
        check_device(spec, "--device")


def test_auto_is_the_cpu_without_a_gpu_and_cuda_is_refused(gpus):
    gpus(0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(HeadstartError, match=r"device: cuda(:0)? was asked for, but torch sees .*use --device cpu"):
            resolve_device(spec)


def test_auto_is_the_gpu_where_there_is_one(gpus, monkeypatch):
    gpus(2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "1")  # a launcher's second process takes the second GPU
    assert resolve_device("cuda") == torch.device("cuda", 1)
    with pytest.raises(HeadstartError, match="cuda:2 was asked for, but torch sees 2 GPUs"):
        resolve_device("cuda:2")


def test_precision_policy(gpus):
    gpus(1, bf16=True)
    assert precision_for(torch.device("cpu")) is FP32 and FP32.dtype is None and not FP32.scaled
    assert precision_for(torch.device("cuda", 0)) is BF16 and BF16.dtype is torch.bfloat16 and not BF16.scaled
    gpus(1, bf16=False)  # a T4 or V100: float16 with a loss scaler
    assert precision_for(torch.device("cuda", 0)) is FP16 and FP16.dtype is torch.float16 and FP16.scaled
    assert [p.accelerate_name for p in (FP32, BF16, FP16)] == ["no", "bf16", "fp16"]


def test_the_cpu_gets_no_autocast_and_no_scaler():
    cpu = torch.device("cpu")
    assert isinstance(autocast(cpu), contextlib.nullcontext)
    engine = LocalEngine(cpu)
    assert engine.scaler is None and engine.precision is FP32 and isinstance(engine.autocast(), contextlib.nullcontext)


def test_a_scaled_step_unscales_before_clipping_and_steps():
    """The float16 path's order (scale, unscale, clip, step), run with the CPU's scaler."""
    torch.manual_seed(0)
    layer = nn.Linear(3, 1)
    before = layer.weight.detach().clone()
    engine = LocalEngine(torch.device("cpu"))
    engine.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    engine.backward(layer(torch.ones(2, 3)).sum())
    assert float(layer.weight.grad.abs().max()) == pytest.approx(2 * 1024.0)  # scaled
    engine.step(optimizer, layer.parameters(), max_norm=1.0)
    assert float(torch.linalg.vector_norm(layer.weight.grad)) <= 1.0 + 1e-6  # unscaled, then clipped
    assert not torch.equal(layer.weight, before)


def test_the_device_context_nests_and_defaults_to_the_cpu():
    assert current_device() == torch.device("cpu")
    with using_device("cpu") as device:
        assert device == current_device() == torch.device("cpu")
        with using_device(None) as inner:
            assert inner == device
    assert current_device() == torch.device("cpu")


def test_fit_on_a_missing_gpu_fails_before_reading_anything(gpus, tmp_path):
    gpus(0)
    with pytest.raises(HeadstartError, match="cuda was asked for"):
        headstart.fit(tmp_path / "not-there.csv", device="cuda")
    with pytest.raises(HeadstartError, match="unknown device"):
        headstart.load(tmp_path, device="tpu")


@pytest.mark.parametrize("args, message", [
    (["--device", "gpu"], "unknown device 'gpu'"),
    (["--device", "cuda"], "cuda was asked for, but torch sees"),
    (["--processes", "0"], "--processes"),
])
def test_bad_compute_options_are_one_line_and_exit_2(gpus, text_csv, args, message):
    gpus(0)
    result = runner.invoke(app, ["fit", str(text_csv()), *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")


def test_predict_rank_curve_and_extract_take_a_device(gpus, text_csv, tmp_path):
    gpus(0)
    for command in (["predict", str(tmp_path), str(text_csv())], ["rank", str(text_csv())], ["curve", str(text_csv())],
                    ["extract", str(text_csv()), "--cache-dir", str(tmp_path / "cache")]):
        result = runner.invoke(app, [*command, "--device", "cuda:1"])
        assert result.exit_code == 2 and "cuda:1 was asked for" in result.output, (command, result.output)


def test_a_cpu_fine_tune_gives_the_same_numbers_with_and_without_the_device(gpus, tiny_bert_name, text_csv):
    """`device="cpu"` is the code path headstart always ran (``auto`` without a GPU): bit for bit the
    same weights and features."""
    gpus(0)
    data = text_csv(n_per_class=12, seed=3)
    config = headstart.FinetuneConfig(strategy="staged", epochs=2)
    runs = [headstart.fit(data, backbone=tiny_bert_name, mode="finetune", baseline=False, finetune_config=config,
                          **options) for options in ({}, {"device": "cpu"})]
    first, second = (model.backbone.module.state_dict() for model in runs)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert np.array_equal(runs[0].head.weight, runs[1].head.weight)
    texts = ["goal match team", "pasta bread soup"]
    assert np.array_equal(runs[0].features(texts), runs[1].features(texts, device="cpu"))


def test_label_commands_take_a_device_their_retraining_processes_inherit(gpus, text_csv, tmp_path, monkeypatch):
    from headstart.compute.device import DEVICE_VARIABLE, use_device_in_process

    gpus(0)
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    result = runner.invoke(app, ["label", "init", str(text_csv()), "--db", str(tmp_path / "l.db"), "--device", "cuda"])
    assert result.exit_code == 2 and "cuda was asked for" in result.output and not (tmp_path / "l.db").exists()
    assert use_device_in_process("auto") == "auto" and current_device() == torch.device("cpu")
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda:3")  # what a retraining process would inherit
    with pytest.raises(HeadstartError, match="HEADSTART_DEVICE: cuda:3 was asked for"):
        current_device()
