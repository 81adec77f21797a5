"""The fused layer norms written out in plain operators: the same function, in the graphs headstart exports."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from headstart.features.layer_norm_graph import FUSED, write_out_layer_norms  # noqa: E402

WIDTH = 16


def fused_graph(opset: int, *, read_mean: bool = False):
    """Two chained SkipLayerNormalization nodes (the first with a bias); optionally one's mean is an output."""
    rng = np.random.default_rng(0)
    weights = {name: rng.normal(size=WIDTH).astype(np.float32) for name in ("g1", "b1", "bias1", "g2", "b2")}
    first_outputs = ["normed1", "mean1"] if read_mean else ["normed1"]
    nodes = [helper.make_node(FUSED, ["x", "skip", "g1", "b1", "bias1"], first_outputs, domain="com.microsoft",
                              epsilon=1e-5, name="first"),
             helper.make_node(FUSED, ["normed1", "x", "g2", "b2"], ["y"], domain="com.microsoft", name="second")]
    shape = ["batch", "tokens", WIDTH]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)]
    if read_mean:
        outputs.append(helper.make_tensor_value_info("mean1", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "layer_norms", [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
                                                     for name in ("x", "skip")], outputs,
                              [numpy_helper.from_array(value, name) for name, value in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)])


def run(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


@pytest.mark.parametrize("opset", [17, 18])
def test_written_out_layer_norms_compute_what_the_fused_kernel_computes(opset):
    rng = np.random.default_rng(1)
    feed = {"x": (3 * rng.normal(size=(2, 5, WIDTH)) + 1).astype(np.float32),
            "skip": rng.normal(size=(2, 5, WIDTH)).astype(np.float32)}
    model = fused_graph(opset)
    expected = run(model, feed)[0]
    assert write_out_layer_norms(model) == 2
    ops = Counter(node.op_type for node in model.graph.node)
    assert FUSED not in ops and ops["ReduceMean"] == 4
    got = run(model, feed)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.abs(got.mean(axis=-1)).max() > 0.01  # gamma and beta applied: not a bare standardization


def test_a_node_whose_optional_output_is_read_is_left_fused():
    model = fused_graph(17, read_mean=True)
    assert write_out_layer_norms(model) == 1
    assert [node.name for node in model.graph.node if node.op_type == FUSED] == ["first"]


def test_a_text_backbones_onnx_export_has_its_layer_norms_written_out(tiny_bert_backbone, tmp_path):
    from headstart.features.extract import example_inputs, export_onnx

    path = export_onnx(tiny_bert_backbone, tmp_path / "tiny.onnx")
    ops = Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    assert ops["Attention"] == 4, "the transformer fusion did not apply to the tiny BERT"
    assert FUSED not in ops and ops["ReduceMean"] >= 2 * 8  # two norms a layer, two means a norm
    example = example_inputs(tiny_bert_backbone)
    import torch

    with torch.inference_mode():
        eager = tiny_bert_backbone.module(*example.values()).numpy()
    got = run(onnx.load(str(path)), {name: tensor.numpy() for name, tensor in example.items()})[0]
    np.testing.assert_allclose(got, eager, atol=1e-5, rtol=0)


def test_a_text_export_cached_in_an_older_graph_form_is_not_loaded(tiny_bert_backbone, tmp_path):
    from headstart.features.extract import onnx_path, onnx_session

    older = tmp_path / "onnx" / f"{tiny_bert_backbone.fingerprint()[:24]}.onnx"
    older.parent.mkdir(parents=True)
    older.write_bytes(b"an export of an older form")  # would fail to load, were it read
    path = onnx_path(tiny_bert_backbone, tmp_path)
    assert path != older
    onnx_session(tiny_bert_backbone, tmp_path)
    assert FUSED not in {node.op_type for node in onnx.load(str(path)).graph.node}
