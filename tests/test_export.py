"""headstart export: one ONNX graph of backbone and head, its parity with PyTorch, int8, and bad exports."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
from typer.testing import CliRunner

import headstart
from headstart.backbones import create_backbone
from headstart.cli import app
from headstart.data import load_image, read_dataset
from headstart.errors import ModelError
from headstart.exported import ExportedModel
from headstart.exported import graph as graph_module
from headstart.exported.graph import graph_inputs
from headstart.exported import cpu_int8
from headstart.exported import runtime as runtime_module
from headstart.exported.runtime import resized_for_model
from headstart.learn.head import LinearHead
from headstart.model import Model

PARITY = 1e-4  # the bound: exported probabilities against headstart's, on every item
CLASSES = ["blue", "dark", "red"]


def _image_model(image_folder, *, size: int = 40, finetuned: bool = True) -> Model:
    """A random-init resnet18 with a head that separates the colours a little, trained on ``image_folder``."""
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=size)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.5, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    return Model(backbone, head, CLASSES, backbone_options={"image_size": size}, finetuned=finetuned,
                 info={"manifest": {"data": str(image_folder), "data_hash": "abc"},
                       "config": {"seed": 0, "counts": {"train": 25, "val": 7, "test": 4}},
                       "metrics": {"accuracy": 0.5, "n": 4}})


def _graph_probabilities(folder, backbone, items) -> np.ndarray:
    """The exported graph's output on headstart's own preprocessing of ``items`` (no resize differences)."""
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, graph_inputs(backbone, backbone.preprocess(items)))[0]


def test_an_export_batches_texts_of_similar_length_and_answers_in_input_order(probe_run, tmp_path):
    model, folder = probe_run
    exported = headstart.load(headstart.export(folder, tmp_path / "exported"))
    texts = [" ".join(["word"] * (n % 17 + 1)) + f" number {n}" for n in range(40)]
    widths, run = [], exported.session.run

    def recorded(names, feed):
        widths.append(feed["input_ids"].shape[1])
        return run(names, feed)

    exported.session = type("Recorded", (), {"run": staticmethod(recorded)})()
    proba = exported.predict_proba(texts, batch_size=8)
    assert widths == sorted(widths) and len(widths) == 5  # the shortest texts first, each batch padded less
    np.testing.assert_allclose(proba, model.predict_proba(texts), atol=PARITY)


@pytest.mark.parametrize("run", ["probe_run", "finetune_run"])
def test_fp32_text_export_gives_headstarts_probabilities(run, request, learnable_csv, tmp_path):
    model, folder = request.getfixturevalue(run)
    items = read_dataset(learnable_csv).items
    out = headstart.export(folder, tmp_path / "exported")
    exported = headstart.load(out)
    assert isinstance(exported, ExportedModel) and exported.classes == model.classes
    np.testing.assert_allclose(exported.predict_proba(items), model.predict_proba(items), atol=PARITY)
    assert exported.predict(items[0]) == model.predict(items[0])
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "labels.json", "model.onnx", "tokenizer.json"]
    labels = json.loads((out / "labels.json").read_text())
    assert labels["input"] == "text" and labels["classes"] == model.classes and labels["quantized"] is None


def test_fp32_image_export_averages_mirrors_in_the_graph_as_headstart_does(image_folder, tmp_path):
    model = _image_model(image_folder)
    assert model.sees_mirror_images
    items = [str(p) for p in sorted(image_folder.rglob("*.png"))]
    out = model.export(tmp_path / "exported")
    expected = model.predict_proba(items, engine="torch")
    assert np.abs(expected - 1 / 3).max() > 1e-3, "the test head must not give uniform probabilities"
    np.testing.assert_allclose(_graph_probabilities(out, model.backbone, items), expected, atol=PARITY)
    labels = json.loads((out / "labels.json").read_text())
    assert labels["image_size"] == 40 and labels["layout"] == "NHWC uint8 RGB"
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name:") and "## Limitations" in card and "`abc`" in card


@pytest.mark.parametrize("size", [40, 24])  # 32-pixel files stretched whole; cropped from 27 pixels
def test_pillow_resize_frames_images_as_headstart_does(image_folder, size):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=size)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::6]]
    ours = np.stack([resized_for_model(load_image(p), size) for p in paths]).astype(int)
    theirs = graph_inputs(backbone, backbone.preprocess(paths))["pixels"].astype(int)
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 2


def test_int8_exports_give_probabilities(finetune_run, image_folder, learnable_csv, tmp_path):
    _, folder = finetune_run
    texts = read_dataset(learnable_csv).items[:10]
    text = headstart.load(headstart.export(folder, tmp_path / "text-int8", quantize="int8"))
    image_model = _image_model(image_folder)
    image = headstart.load(image_model.export(tmp_path / "image-int8", quantize="int8"))
    images = [str(p) for p in sorted(image_folder.rglob("*.png"))[:10]]
    for exported, items in ((text, texts), (image, images)):
        proba = exported.predict_proba(items)
        assert proba.shape == (10, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
        assert json.loads((exported.folder / "labels.json").read_text())["quantized"] == "int8"
    assert not list(tmp_path.glob(".*")), "no staging folder is left"


def test_where_the_cpu_needs_exact_int8_a_mirrored_image_export_loads_with_it_and_stays_near_float(
        image_folder, tmp_path, monkeypatch):
    # The graph once ran images and their mirrors through two copies of the backbone sharing weights,
    # which ONNX Runtime's exact-int8 setting refuses to load ("Attempt to replace the existing tensor").
    model = _image_model(image_folder)
    images = [str(p) for p in sorted(image_folder.rglob("*.png"))[:10]]
    float_proba = headstart.load(model.export(tmp_path / "fp32")).predict_proba(images)
    monkeypatch.setattr(runtime_module, "needs_exact_int8", lambda: True)
    exported = headstart.load(model.export(tmp_path / "int8", quantize="int8"))
    assert exported.session.get_session_options().get_session_config_entry("session.x64quantprecision") == "1"
    assert np.abs(exported.predict_proba(images) - float_proba).max() < 0.05


@pytest.mark.parametrize(("machine", "flags", "needed"), [
    ("x86_64", ["avx2", "avx512f"], True), ("x86_64", ["avx2", "avx_vnni"], False),
    ("x86_64", ["avx2", "avx512f", "avx512_vnni"], False), ("AMD64", None, True), ("aarch64", None, False)])
def test_exact_int8_is_asked_for_on_x86_cpus_without_vnni_or_whose_flags_cannot_be_read(machine, flags, needed,
                                                                                         monkeypatch):
    monkeypatch.setattr(cpu_int8.platform, "machine", lambda: machine)
    monkeypatch.setattr(cpu_int8, "int8_flags", lambda: flags)
    assert cpu_int8.needs_exact_int8() is needed


def test_cpuinfo_fields_are_the_first_cpu_s_by_name_and_an_absent_one_is_none(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu avx2 sse avx512f avx512_vnni\n\n"
                       "processor\t: 1\nmodel name\t: Another CPU\n")
    monkeypatch.setattr(cpu_int8, "CPUINFO", cpuinfo)
    cpu_int8.cpuinfo_field.cache_clear()
    try:
        assert cpu_int8.cpuinfo_field("model name") == "Some CPU @ 2.0GHz"
        assert cpu_int8.int8_flags() == ["avx2", "avx512f", "avx512_vnni"]
        assert cpu_int8.cpuinfo_field("microcode") is None
        monkeypatch.setattr(cpu_int8, "CPUINFO", tmp_path / "absent")
        cpu_int8.cpuinfo_field.cache_clear()
        assert cpu_int8.int8_flags() is None
    finally:
        cpu_int8.cpuinfo_field.cache_clear()


def test_int8_of_images_without_their_training_data_says_so_and_leaves_nothing(image_folder, tmp_path):
    model = _image_model(image_folder)
    model.info["manifest"]["data"] = str(tmp_path / "moved")
    with pytest.raises(ModelError, match="calibration sample of the training data"):
        model.export(tmp_path / "exports" / "out", quantize="int8")
    assert not (tmp_path / "exports").exists()


def test_a_backbone_that_cannot_export_is_a_model_error_and_leaves_nothing(probe_run, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::mystery")

    monkeypatch.setattr(graph_module, "export_onnx", broken)
    with pytest.raises(ModelError, match="cannot be exported to ONNX .*aten::mystery"):
        probe_run[0].export(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["not a model", "an export", "quantize"])
def test_bad_exports_are_one_line_exit_2_and_leave_nothing(case, probe_run, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    args = ["export", str(source), "--out", str(tmp_path / "out")]
    if case == "an export":
        probe_run[0].export(source)
    elif case == "quantize":
        args = ["export", str(probe_run[1]), "--out", str(tmp_path / "out"), "--quantize", "int4"]
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(tmp_path.iterdir()) == before


def test_the_cli_exports_and_predicts_from_the_export(probe_run, learnable_csv, tmp_path):
    _, folder = probe_run
    out = tmp_path / "exported"
    result = CliRunner().invoke(app, ["export", str(folder), "--out", str(out)])
    assert result.exit_code == 0 and "model.onnx" in result.output, result.output
    runs = {}
    for name, model_dir in (("torch", folder), ("onnx", out)):
        target = tmp_path / f"{name}.csv"
        assert CliRunner().invoke(app, ["predict", str(model_dir), str(learnable_csv), "--out", str(target)]
                                  ).exit_code == 0
        runs[name] = target.read_text().splitlines()
    header = runs["torch"][0].split(",")
    probabilities = [i for i, name in enumerate(header) if name.startswith("p_")]
    for torch_row, onnx_row in zip(runs["torch"][1:], runs["onnx"][1:], strict=True):
        a, b = torch_row.split(","), onnx_row.split(",")
        assert a[header.index("prediction")] == b[header.index("prediction")]
        assert max(abs(float(a[i]) - float(b[i])) for i in probabilities) <= 2e-4  # printed to 4 decimals


def test_calibration_batches_are_all_of_one_size(monkeypatch):
    """ONNX Runtime's percentile and entropy calibrators fail on a shorter last batch."""
    from headstart.exported import graph

    monkeypatch.setattr(graph, "graph_inputs", lambda _backbone, inputs: inputs)
    backbone = type("Identity", (), {"preprocess": staticmethod(lambda items: items)})()
    for n, sizes in ((100, [10] * 10), (16, [16]), (7, [7]), (34, [2] * 17), (0, [])):
        batches = list(graph.calibration_batches(backbone, list(range(n))))
        assert [len(b) for b in batches] == sizes and sum(batches, []) == list(range(n))
