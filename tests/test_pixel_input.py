"""Image int8 graphs read uint8 pixels straight into their first convolution (headstart.exported.pixel_input)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from headstart.exported.pixel_input import feed_pixels, normalization_nodes
from headstart.exported.runtime import session_options


def _normalize_then_convolve(path, scale, shift) -> None:
    """pixels (n, 3, 8, 8) uint8 -> x * scale + shift -> a 3x3 convolution (padding 1) -> ReLU."""
    rng = np.random.default_rng(0)
    constants = [numpy_helper.from_array(np.asarray(scale, np.float32).reshape(3, 1, 1), "scale"),
                 numpy_helper.from_array(np.asarray(shift, np.float32).reshape(3, 1, 1), "shift"),
                 numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "weight"),
                 numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "bias")]
    nodes = [helper.make_node("Cast", ["pixels"], ["float"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Mul", ["float", "scale"], ["scaled"], name="mul"),
             helper.make_node("Add", ["scaled", "shift"], ["normalized"], name="add"),
             helper.make_node("Conv", ["normalized", "weight", "bias"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["conv"], ["out"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.UINT8, [None, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 4, 8, 8])], constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _quantized(tmp_path, scale, shift, pixels):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    _normalize_then_convolve(source, scale, shift)
    batches = iter([{"pixels": pixels[i:i + 8]} for i in range(0, len(pixels), 8)])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(batches, None)

    excluded = normalization_nodes(onnx.load(str(source)))
    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
    return source, onnx.load(str(target)), excluded


def _run(model_or_path, pixels) -> np.ndarray:
    serialized = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    # headstart's session options: full-range weights need the exact-int8 setting on x86 CPUs without VNNI
    return onnxruntime.InferenceSession(serialized, session_options(), providers=["CPUExecutionProvider"]).run(
        None, {"pixels": pixels})[0]


def test_uniform_normalization_is_folded_into_the_first_convolution(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (32, 3, 8, 8)).astype(np.uint8)
    source, model, excluded = _quantized(tmp_path, [1 / 127.5] * 3, [-1.0] * 3, pixels)
    assert excluded == ["cast", "mul", "add"]
    before = _run(model, pixels)
    assert feed_pixels(model) == 1
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert not {"Cast", "Mul", "Add", "QuantizeLinear"} & set(ops) and ops[0] == "QLinearConv"
    assert model.graph.node[0].input[0] == "pixels"
    exact, after = _run(source, pixels), _run(model, pixels)
    step = float(np.abs(exact).max()) / 255  # about one step of the output's quantization
    interior = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    # pixels need no rounding now: inside the border the result is as close to float as before, or closer
    assert np.abs(after - exact)[interior].max() <= np.abs(before - exact)[interior].max() + step
    # the border's padding differs by 0.5/127.5 a pixel: about a step
    assert np.abs(after - exact).max() <= 4 * step


def test_normalization_that_differs_by_channel_is_left_in_float(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (16, 3, 8, 8)).astype(np.uint8)
    scale = np.array([1 / 58.4, 1 / 57.1, 1 / 57.4])  # ImageNet's standard deviations
    _, model, _ = _quantized(tmp_path, scale, -np.array([0.485, 0.456, 0.406]) / np.array([0.229, 0.224, 0.225]),
                             pixels)
    before = model.SerializeToString()
    assert feed_pixels(model) == 0 and model.SerializeToString() == before


LAYOUT_NODES = {"Transpose": helper.make_node("Transpose", ["pixels"], ["moved"], perm=[0, 3, 1, 2], name="move"),
                "Slice": helper.make_node("Slice", ["pixels", "s", "e", "a", "st"], ["moved"], name="move"),
                "Concat": helper.make_node("Concat", ["pixels", "pixels"], ["moved"], axis=0, name="move")}


@pytest.mark.parametrize("op", sorted(LAYOUT_NODES))
def test_layout_nodes_before_the_normalization_are_followed_but_not_excluded(op):
    first = LAYOUT_NODES[op]
    nodes = [first, helper.make_node("Cast", ["moved"], ["float"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Relu", ["float"], ["out"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.UINT8, None)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    assert normalization_nodes(helper.make_model(graph)) == ["cast"]
