"""Layer norms of a fused transformer graph written out in plain ONNX operators, for speed on CPUs.

ONNX Runtime's transformer optimizer fuses each residual add and layer norm into one
``SkipLayerNormalization`` kernel. Its CPU kernel (and the standard ``LayerNormalization`` one) runs
a scalar loop: on one core of an AMD EPYC (onnxruntime 1.32) it took 3.2 ms for a batch of 32
sentences of 60 tokens at MiniLM's width, against 1.0 ms for the same arithmetic as an add, two
``ReduceMean`` and elementwise operators, which run vectorized. In the fused MiniLM graph the
twelve layer norms were a seventh of the fp32 time and a quarter of the int8 one (int8 speeds the
matrix products only); written out, fp32 ran 1.21x and int8 1.27x as fast, side by side in one
run, and int8 went from 1.87x to 2.16x fp32's items/s (benchmarks/README.md, "Exporting").

The rewrite keeps every tensor name the rest of the graph reads, and only touches nodes whose
optional outputs (mean, inverse deviation, the sum before the norm) nobody reads.
"""

from __future__ import annotations

import numpy as np

FUSED = "SkipLayerNormalization"
DEFAULT_EPSILON = 1e-12  # the contrib operator's default
LAST_AXIS = "written_out_layer_norm/last_axis"


def write_out_layer_norms(model) -> int:
    """Replace the ``SkipLayerNormalization`` nodes of ``model`` (an onnx ModelProto) in place.

    Each becomes ``x (+ bias) + skip``, its mean and variance over the last axis by ``ReduceMean``,
    then ``(sum - mean) / sqrt(variance + epsilon) * gamma + beta``: the same function. The graph
    keeps its opset (``ReduceMean`` takes its axes as an attribute up to opset 17, as an input after).

    Returns:
        How many nodes were replaced.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    read.discard("")  # an optional input left out
    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 17)
    axes = [LAST_AXIS] if opset >= 18 else []  # ReduceMean's axes: an input from opset 18, else an attribute
    mean_over_last_axis = {"keepdims": 1} if opset >= 18 else {"axes": [-1], "keepdims": 1}
    nodes, replaced = [], 0
    for node in graph.node:
        if node.op_type != FUSED or any(name in read for name in node.output[1:]):
            nodes.append(node)
            continue
        epsilon = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), DEFAULT_EPSILON)
        prefix = f"{node.name or node.output[0]}/written_out"

        def name(step: str, prefix=prefix) -> str:
            return f"{prefix}/{step}"

        graph.initializer.append(numpy_helper.from_array(np.array(epsilon, dtype=np.float32), name("epsilon")))
        x, skip, gamma, beta = node.input[:4]
        bias = node.input[4] if len(node.input) > 4 else ""
        if bias:  # first, so that a quantizer or fusion can fold it into the product that feeds it
            nodes.append(helper.make_node("Add", [x, bias], [name("biased")], name=name("add_bias")))
            x = name("biased")
        steps = [("Add", [x, skip], "sum", {}),
                 ("ReduceMean", [name("sum"), *axes], "mean", mean_over_last_axis),
                 ("Sub", [name("sum"), name("mean")], "centered", {}),
                 ("Mul", [name("centered"), name("centered")], "squared", {}),
                 ("ReduceMean", [name("squared"), *axes], "variance", mean_over_last_axis),
                 ("Add", [name("variance"), name("epsilon")], "variance_epsilon", {}),
                 ("Sqrt", [name("variance_epsilon")], "deviation", {}),
                 ("Reciprocal", [name("deviation")], "inverse_deviation", {}),
                 ("Mul", [name("centered"), name("inverse_deviation")], "normalized", {}),
                 ("Mul", [name("normalized"), gamma], "scaled", {})]
        for op, inputs, output, attributes in steps:
            nodes.append(helper.make_node(op, inputs, [name(output)], name=name(output), **attributes))
        nodes.append(helper.make_node("Add", [name("scaled"), beta], [node.output[0]], name=name("shifted")))
        replaced += 1
    del graph.node[:]
    graph.node.extend(nodes)
    if opset >= 18 and replaced:
        graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), LAST_AXIS))
    return replaced
