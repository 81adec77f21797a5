"""One ONNX graph of a model, backbone and head together: inputs in, class probabilities out.

Images go in as uint8 pixels (n, H, W, 3), the layout image libraries decode to, already resized
to the backbone's input size; the graph casts, normalizes (inside the backbone's module) and
transposes them. Texts go in as token ids and attention mask (int64), and the graph pools. A model
fine-tuned here on mirror-invariant images averages each image's features with its mirror's in the
graph too, as :meth:`headstart.model.Model.features` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.errors import ModelError, first_line
from headstart.features.extract import example_inputs, export_onnx

OUTPUT = "probabilities"
PARITY_TOLERANCE = 1e-4  # the fp32 graph against PyTorch, on the example inputs


class Classifier(nn.Module):
    """A backbone's feature module, a linear head and a softmax, as one module to export.

    Args:
        features: the backbone's module (inputs as in :attr:`Backbone.input_names`).
        weight: the head's weight (k, d).
        bias: the head's bias (k,).
        image_layout: take images as uint8 (n, H, W, 3) and transpose them (None for text).
        mirror: average each image's features with its left-right mirror's.
    """

    def __init__(self, features: nn.Module, weight: np.ndarray, bias: np.ndarray, *, image_layout: bool,
                 mirror: bool = False):
        super().__init__()
        self.features = features
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)))
            self.head.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))
        self.image_layout = image_layout
        self.mirror = mirror

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (n, k) of the inputs, in the backbone's input order."""
        if not self.image_layout:
            return torch.softmax(self.head(self.features(*inputs)), dim=1)
        pixels = inputs[0].permute(0, 3, 1, 2)
        if self.mirror:  # one pass over the images and their mirrors: two would share weights between nodes,
            # which ONNX Runtime's exact-int8 setting cannot load (headstart.exported.cpu_int8)
            both = self.features(torch.cat([pixels, pixels.flip(-1)]))
            features = both.reshape(2, -1, both.shape[-1]).mean(dim=0)  # no batch size fixed in the graph
        else:
            features = self.features(pixels)
        return torch.softmax(self.head(features), dim=1)


def classifier_of(model) -> Classifier:
    """The :class:`Classifier` of a :class:`headstart.model.Model` (its backbone, head and mirror)."""
    backbone = model.backbone
    return Classifier(backbone.module, model.head.weight, model.head.bias,
                      image_layout=backbone.modality == "image", mirror=model.sees_mirror_images).eval()


def graph_inputs(backbone: Backbone, inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The exported graph's feed for preprocessed ``inputs``: images transposed to (n, H, W, 3)."""
    if backbone.modality == "image":
        return {"pixels": inputs["pixels"].permute(0, 2, 3, 1).contiguous().numpy()}
    return {name: tensor.numpy() for name, tensor in inputs.items()}


def write_graph(model, path: Path) -> Path:
    """Write the model's fp32 graph to ``path`` and check it against PyTorch on example inputs.

    Raises:
        ModelError: the backbone cannot be exported, or its graph gives other probabilities.
    """
    backbone = model.backbone
    classifier = classifier_of(model)
    example = example_inputs(backbone)
    if backbone.modality == "image":  # a gradient so that min-max differs from zero in every channel
        side = backbone.image_size
        ramp = torch.arange(side * side * 3, dtype=torch.int64).remainder(256).to(torch.uint8)
        example = {"pixels": torch.stack([ramp, ramp.flip(0)]).view(2, side, side, 3)}
    where = f"backbone {backbone.name}"
    try:
        export_onnx(backbone, path, module=classifier, output_name=OUTPUT, example=example, fuse=True)
    except Exception as error:  # noqa: BLE001 - any tracing or export failure is the same answer to a user
        raise ModelError(f"cannot be exported to ONNX ({first_line(error)})", where=where,
                         fix="export a model of another backbone, or use the model folder through headstart") from error
    with torch.inference_mode():
        expected = classifier(*example.values()).numpy()
    import onnxruntime as ort

    feed = {name: tensor.numpy() for name, tensor in example.items()}
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    if np.abs(got - expected).max() > PARITY_TOLERANCE:
        raise ModelError(f"its ONNX graph differs from PyTorch by {np.abs(got - expected).max():.2g}",
                         where=where, fix="use the model folder through headstart")
    return path


def quantize_dynamic_int8(source: Path, target: Path, **settings) -> None:
    """Int8 weights, activations quantized on the fly: for text, where matrix products dominate.

    ``settings`` replace the shipped ones (ONNX Runtime's ``quantize_dynamic`` arguments; for
    benchmarks/quantization_variants.py).
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The fused attention and layer-norm kernels are outside ONNX's shape inference: their outputs are float.
    # Per-channel weights: on the SST-2 fine-tune (1,821 test sentences) as fast as per-tensor, and
    # closer to fp32: 89.40% against 88.85% (fp32 89.57%), probabilities moved by at most 0.23 against 0.52.
    shipped = {"weight_type": QuantType.QInt8, "per_channel": True,
               "extra_options": {"DefaultTensorType": TensorProto.FLOAT}}
    quantize_dynamic(str(source), str(target), **{**shipped, **settings})


def quantize_static_int8(source: Path, target: Path, calibration: Iterator[dict[str, np.ndarray]],
                         **settings) -> None:
    """Int8 weights and activations (operator format), activation ranges from ``calibration`` batches: for images.

    The pixels' normalization stays out of the quantization and is folded into the first
    convolutions' input (:mod:`headstart.exported.pixel_input`). ``settings`` replace the shipped
    ones (ONNX Runtime's ``quantize_static`` arguments; for benchmarks/quantization_variants.py).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from headstart.exported.pixel_input import feed_pixels, normalization_nodes

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(calibration, None)

    prepared = target.with_name(target.name + ".prepared")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        # Operator format, uint8 activations, int8 weights per channel, pixels fed to the first convolution.
        # Fashion-MNIST 5,000 fine-tune, 1,000 test images, one thread, batch 32, in one run under load:
        # 2.35x fp32's items/s at 93.2% (fp32 93.2%) and 0.27 of its size. Before: QDQ with int8
        # activations 1.14x at 93.0%; operator format with the normalization quantized too 1.31x at 92.3%
        # (a quantized multiply and add on full-size images took a third of its time). Per-tensor weights
        # flipped a third of the labels. Full-range weights: on x86 CPUs without VNNI ONNX Runtime adds
        # uint8 x int8 products in pairs in 16 bits, which they overflow (off by 0.75 in probability on
        # such a CPU), so headstart runs exports there with ONNX Runtime's exact int8 (cpu_int8.py).
        # 7-bit weights avoided the overflow without it, but cost accuracy: a Fashion-MNIST 5,000
        # fine-tune (93.5% in float) scored 91.4% with 7-bit weights, 93.2% with 8-bit ones.
        shipped = {"quant_format": QuantFormat.QOperator, "per_channel": True, "activation_type": QuantType.QUInt8,
                   "weight_type": QuantType.QInt8, "reduce_range": False}
        quantize_static(str(prepared), str(target), Reader(), **{**shipped, **settings},
                        nodes_to_exclude=_head_nodes(prepared) + normalization_nodes(onnx.load(str(prepared))))
        model = onnx.load(str(target))
        feed_pixels(model)
        onnx.save(model, str(target))
    finally:
        prepared.unlink(missing_ok=True)


def _head_nodes(path: Path) -> list[str]:
    """The softmax and the layer feeding it: kept in float, or probabilities come in steps of 1/256."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    softmax = [node for node in nodes if node.op_type == "Softmax"]
    inputs = {name for node in softmax for name in node.input}
    return [node.name for node in nodes if node in softmax or set(node.output) & inputs]


def calibration_batches(backbone: Backbone, items: Sequence[str], batch_size: int = 16) -> Iterator[dict]:
    """The graph's feed for ``items``, preprocessed as headstart predicts, in batches of one size.

    The size is the largest divisor of ``len(items)`` up to ``batch_size`` (100 items: 10 a batch):
    ONNX Runtime's percentile and entropy calibrators fail on a shorter last batch, and the min-max
    ranges the export uses do not depend on how the items are batched.
    """
    batch_size = max(size for size in range(1, max(1, min(batch_size, len(items))) + 1) if len(items) % size == 0)
    for start in range(0, len(items), batch_size):
        yield graph_inputs(backbone, backbone.preprocess(list(items[start:start + batch_size])))
