"""Data-parallel fine-tuning through Accelerate: two CPU processes (gloo) against one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO, vocabulary, write_text_csv
from fit_worker import fit_and_save
from headstart.cli import app
from headstart.compute.launch import is_main_process, process_count, without_option
from headstart.compute.processes import AcceleratedEngine

WORKER = Path(__file__).with_name("fit_worker.py")
# Two processes' sums of the same gradients differ from one process's in the last bits, which AdamW's
# normalised steps can carry further on weights whose gradients are near zero: measured 1e-6 at most
# (2026-12-03), allowed a hundred times that.
ONE_PROCESS_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def bert_without_dropout(tmp_path_factory) -> Path:
    """The tests' tiny BERT with dropout off, so that one process and two see the same arithmetic."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("bert-no-dropout")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocabulary())}, do_lower_case=True)
    config = BertConfig(vocab_size=len(vocabulary()), hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_two_processes_train_equal_weights_write_one_folder_and_match_one_process(tmp_path, bert_without_dropout):
    data = write_text_csv(tmp_path / "topics.csv", n_per_class=40)  # 84 training items: 7 batches of 12
    runs = tmp_path / "two"
    runs.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--main_process_port", "0", "--mixed_precision", "no",
                           "--dynamo_backend", "no", str(WORKER), str(data), str(bert_without_dropout), str(runs)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert sorted(path.name for path in runs.iterdir() if path.is_dir()) == ["model-rank0"]  # the main process's
    assert (runs / "model-rank0" / "report.html").is_file()
    ranks = [np.load(runs / f"weights-rank{rank}.npz") for rank in (0, 1)]
    assert ranks[0].files == ranks[1].files
    for name in ranks[0].files:  # gradients averaged: every process took the same steps
        assert np.array_equal(ranks[0][name], ranks[1][name]), name

    one = np.load(fit_and_save(str(data), str(bert_without_dropout), tmp_path / "one"))
    pretrained = {f"backbone.{name}": value.numpy() for name, value in _pretrained_state(bert_without_dropout).items()}
    trained = [name for name in one.files if name in pretrained and not np.array_equal(one[name], pretrained[name])]
    assert len(trained) > 10  # fine-tuning changed the encoder, in one process...
    for name in one.files:  # ...and two processes changed it the same way, but for the order of sums
        assert np.abs(one[name] - ranks[0][name]).max() <= ONE_PROCESS_TOLERANCE, name


def _pretrained_state(folder: Path) -> dict:
    from transformers import BertModel

    return {f"encoder.{name}": value for name, value in BertModel.from_pretrained(folder).state_dict().items()}


def test_each_process_takes_a_strided_share_of_every_batch():
    engine = AcceleratedEngine.__new__(AcceleratedEngine)  # the sharing alone, without a process group
    batches = [np.arange(0, 6), np.arange(6, 11), np.array([11])]
    engine.processes, engine.index = 2, 1
    assert [b.tolist() for b in engine.share(batches)] == [[1, 3, 5], [7, 9]]  # the one-item batch is left out
    engine.index = 0
    assert [b.tolist() for b in engine.share(batches)] == [[0, 2, 4], [6, 8, 10]]


def test_the_launcher_variables_say_which_process_this_is(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert process_count() == 1 and is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert process_count() == 4 and not is_main_process()


def test_fit_processes_runs_accelerate_launch_on_the_same_command(monkeypatch, tmp_path):
    import accelerate.commands.launch as accelerate_launch

    launched = []
    monkeypatch.setattr(accelerate_launch, "launch_command", launched.append)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    data = write_text_csv(tmp_path / "topics.csv", n_per_class=5)
    result = CliRunner().invoke(app, ["fit", str(data), "--processes", "2", "--device", "cpu", "--epochs", "1", "-q"])
    assert result.exit_code == 0, result.output
    args = launched[0]
    assert args.multi_gpu and args.num_processes == 2 and args.module and args.training_script == "headstart"
    assert args.training_script_args == ["-q", "fit", str(data), "--device", "cpu", "--epochs", "1"]
    assert int(args.num_cpu_threads_per_process) >= 1  # a share of the cores, not torchrun's one thread


def test_processes_under_a_launcher_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "x.csv"), "--processes", "2"])
    assert result.exit_code == 2 and "leave --processes out under accelerate launch" in result.output


def test_without_option():
    assert without_option(["fit", "a", "--processes", "2", "--x"], "--processes") == ["fit", "a", "--x"]
    assert without_option(["fit", "--processes=3", "a"], "--processes") == ["fit", "a"]
