"""How much faster int8 matrix products can be than fp32 on this CPU: the ceiling of an int8 export.

An exported int8 graph is at most as much faster than its fp32 graph as ONNX Runtime's int8 matrix
product is faster than its fp32 one; layer norms, GELUs and softmax stay in float. This times the
two products alone, one thread, on the shapes of the shipped models' layers (MiniLM-L6's
projections at batch 32 of 40 tokens; a 1x1 convolution of EfficientNet-Lite0 at batch 32 written
as a product), as the int8 text graph runs them (``DynamicQuantizeMatMul``: uint8 activations
quantized on the fly, int8 weights per column) beside a plain fp32 ``MatMul``. It also says which
int8 instructions the CPU has: without VNNI (AVX512-VNNI or AVX-VNNI) x86 CPUs multiply uint8 by
int8 in two steps, and the ceiling is lower. Not a test: run it alone on the machine.

    .venv/bin/python benchmarks/int8_gemm.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# (name, rows, inner, columns): rows = items x tokens (text) or items x pixels (image)
SHAPES = [("minilm attention projection", 32 * 40, 384, 384),
          ("minilm feed-forward in", 32 * 40, 384, 1536),
          ("minilm feed-forward out", 32 * 40, 1536, 384),
          ("effnet-lite0 1x1 conv, 14x14", 32 * 14 * 14, 480, 80)]


def graph(rows: int, inner: int, columns: int, int8: bool):
    """A one-node graph: x (rows, inner) times constant weights (inner, columns)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, inner])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, columns])
    weights = rng.standard_normal((inner, columns)).astype(np.float32)
    if not int8:
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        initializers = [numpy_helper.from_array(weights, "w")]
    else:
        scale = np.abs(weights).max(axis=0) / 127
        initializers = [numpy_helper.from_array(np.round(weights / scale).astype(np.int8), "w"),
                        numpy_helper.from_array(scale.astype(np.float32), "scale"),
                        numpy_helper.from_array(np.zeros(columns, np.int8), "zero")]
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "scale", "zero"], ["y"], domain="com.microsoft")
    model = helper.make_model(helper.make_graph([node], "product", [x], [y], initializers),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


def products_per_second(model: bytes, x: np.ndarray, seconds: float) -> float:
    """Runs of the graph per second on one thread, over about ``seconds`` after a warm-up."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    session.run(None, {"x": x})
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, {"x": x})
        runs += 1
    return runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per product and precision")
    parser.add_argument("--name", default="int8-gemm", help="the results file's name before the date")
    args = parser.parse_args()
    rows = []
    for name, m, k, n in SHAPES:
        x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
        fp32 = products_per_second(graph(m, k, n, int8=False), x, args.seconds)
        int8 = products_per_second(graph(m, k, n, int8=True), x, args.seconds)
        rows.append({"product": name, "shape": f"{m}x{k} @ {k}x{n}", "fp32 GFLOP/s": 2 * m * k * n * fp32 / 1e9,
                     "int8 GOP/s": 2 * m * k * n * int8 / 1e9, "int8 / fp32": int8 / fp32})
    from headstart.exported.cpu_int8 import int8_flags

    flags = int8_flags() or []
    common.print_table(rows, list(rows[0]), title=f"one thread; CPU int8 flags: {', '.join(flags) or 'none found'}")
    print(f"\nwritten: {common.write_results(args.name, {'cpu_flags': flags, 'rows': rows})}")


if __name__ == "__main__":
    main()
