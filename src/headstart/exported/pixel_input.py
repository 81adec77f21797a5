"""Uint8 pixels straight into the first int8 convolution of a quantized image graph.

An image graph normalizes its uint8 pixels in float (cast, ``x * s + b``) and the int8 graph then
quantizes the result again for its first convolution. On the Fashion-MNIST fine-tune that chain,
on full-size images, took a fifth of the int8 graph's time. When the normalization is the same for
every channel, the normalized value is ``s * (x - c)`` with ``c = -b / s``, so the pixels already are
its quantized form: scale ``s``, zero point ``c``. The zero point has to be an integer; the rest of
``c`` goes into the convolution's int32 bias (``(c - zp) * sum(w)``, exact away from the image's
border, where padding differs by ``s * |c - zp|``, 0.004 for ``x / 127.5 - 1``). The float chain and
its re-quantization are then dropped. Graphs whose normalization differs by channel are left alone.
"""

from __future__ import annotations

import numpy as np


def _constant(graph, name: str, cache: dict) -> np.ndarray | None:
    if name not in cache:
        from onnx import numpy_helper

        cache.update({init.name: numpy_helper.to_array(init) for init in graph.initializer})
    return cache.get(name)


def _normalization(graph, quantize, producers: dict, values: dict):
    """(pixels tensor, s, c) where ``quantize`` reads ``Cast(pixels) * s + b`` with one s and b; else None."""
    add = producers.get(quantize.input[0])
    mul = add is not None and add.op_type == "Add" and producers.get(add.input[0])
    cast = mul and mul.op_type == "Mul" and producers.get(mul.input[0])
    if not cast or cast.op_type != "Cast":
        return None
    scale, shift = _constant(graph, mul.input[1], values), _constant(graph, add.input[1], values)
    if scale is None or shift is None or np.ptp(scale) > 0 or np.ptp(shift) > 0 or float(scale.ravel()[0]) <= 0:
        return None
    s, b = float(scale.ravel()[0]), float(shift.ravel()[0])
    return cast.input[0], s, -b / s


NORMALIZING = ("Cast", "Mul", "Add", "Sub", "Div")
LAYOUT = ("Transpose", "Slice", "Concat")  # channels first; a mirrored graph's images and mirrors in one batch


def normalization_nodes(model) -> list[str]:
    """The cast and normalization nodes between the graph's uint8 inputs and its first convolutions.

    They are kept out of the quantization: quantized, they cost more than the convolutions they feed.
    """
    inputs = {value.name for value in model.graph.input}
    reached, names = set(inputs), []
    for node in model.graph.node:  # in topological order
        if node.input and node.input[0] in reached and node.op_type in NORMALIZING + LAYOUT:
            reached.update(node.output)
            names += [node.name] if node.op_type in NORMALIZING else []
    return names


def feed_pixels(model) -> int:
    """Rewire ``model`` in place so that each first convolution reads the uint8 pixels.

    Args:
        model: an ONNX ModelProto quantized in operator format, its normalization left in float.

    Returns:
        How many convolutions now read the pixels (0: the graph is unchanged).
    """
    from onnx import numpy_helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    values: dict = {}
    rewired, dead = 0, []
    for quantize in [node for node in graph.node if node.op_type == "QuantizeLinear"]:
        found = _normalization(graph, quantize, producers, values)
        readers = consumers.get(quantize.output[0], [])
        if found is None or not readers or any(r.op_type != "QLinearConv" or r.input[0] != quantize.output[0]
                                               for r in readers):
            continue
        pixels, s, c = found
        zero_point = int(np.clip(round(c), 0, 255))
        for conv in readers:
            weights = _constant(graph, conv.input[3], values).astype(np.int64)
            weight_zero = _constant(graph, conv.input[5], values).astype(np.int64).reshape(-1, 1, 1, 1)
            old_scale = float(_constant(graph, conv.input[1], values).ravel()[0])
            bias = _constant(graph, conv.input[8], values).astype(np.float64) * old_scale / s
            bias -= (c - zero_point) * (weights - weight_zero).sum(axis=(1, 2, 3))
            names = [f"{conv.name}_pixel_{part}" for part in ("scale", "zero_point", "bias")]
            graph.initializer.extend([numpy_helper.from_array(np.array(s, dtype=np.float32), names[0]),
                                      numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), names[1]),
                                      numpy_helper.from_array(np.round(bias).astype(np.int32), names[2])])
            conv.input[0], conv.input[1], conv.input[2], conv.input[8] = pixels, names[0], names[1], names[2]
            rewired += 1
        dead.append(quantize)
    _drop_unused(graph, dead)
    return rewired


def _drop_unused(graph, candidates: list) -> None:
    """Remove ``candidates``, then every node and initializer that nothing reads any more."""
    for node in candidates:
        graph.node.remove(node)
    outputs = {out.name for out in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        unused = [node for node in graph.node if not set(node.output) & read]
        if not unused:
            break
        for node in unused:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input} | outputs
    for init in [init for init in graph.initializer if init.name not in read]:
        graph.initializer.remove(init)
