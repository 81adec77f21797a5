"""Which int8 quantization to ship: the settings ONNX Runtime offers, side by side on one model.

For one model folder and a labeled test file: the fp32 export, then each variant of int8 through
the export's own code with ONNX Runtime's settings varied (dynamic for a text model; static,
calibrated on the export's own calibration sample, for an image model), each with its accuracy,
items/s at batch 32 on one thread (the best of two passes), file size, largest probability change
against fp32 and the share of labels that stay the same.
The settings `headstart export --quantize int8` uses were chosen from this table
(src/headstart/exported/graph.py says why). Not a test: run it alone on the machine.

    .venv/bin/python benchmarks/quantization_variants.py runs/sst2-full ../shared/data/text/sst2_test.csv
    .venv/bin/python benchmarks/quantization_variants.py runs/fmnist-5000 fmnist_test.csv --name quantization-fmnist
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def text_variants() -> dict:
    """Dynamic quantization settings: weight type, per-channel scales, reduced range."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType

    float_default = {"DefaultTensorType": TensorProto.FLOAT}  # the fused kernels' outputs are float
    return {
        "s8 weights, per tensor": dict(weight_type=QuantType.QInt8, extra_options=float_default),
        "s8 weights, per channel (shipped)": dict(weight_type=QuantType.QInt8, per_channel=True, extra_options=float_default),
        "u8 weights, per tensor": dict(weight_type=QuantType.QUInt8, extra_options=float_default),
        "s8 weights, per tensor, reduced range": dict(weight_type=QuantType.QInt8, reduce_range=True,
                                                      extra_options=float_default),
    }


def image_variants() -> dict:
    """Static quantization settings: format (QDQ or operators), activation/weight types, calibration."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    shipped = dict(quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                   per_channel=True)
    return {
        "shipped, percentile calibration": dict(shipped, calibrate_method=CalibrationMethod.Percentile),
        "shipped, entropy calibration": dict(shipped, calibrate_method=CalibrationMethod.Entropy),
        "QDQ, s8 activations, s8 weights per channel": dict(
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True),
        "QDQ, u8 activations, s8 weights per channel": dict(
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True),
        "operators, u8 activations, s8 weights per channel (shipped)": dict(
            quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            per_channel=True),
        "operators, u8 activations, s8 weights per channel, 7-bit": dict(
            quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            per_channel=True, reduce_range=True),
        "operators, u8 activations, s8 weights per tensor": dict(
            quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            per_channel=False),
        "QDQ, u8 activations, u8 weights per channel": dict(
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8, per_channel=True),
    }


def quantize(model, fp32: Path, target: Path, settings: dict) -> None:
    """One variant of ``fp32`` into ``target``, through the export's own quantization with ``settings``
    in place of the shipped ones: dynamic for text; static for images, calibrated on the export's own
    sample, the pixels' normalization folded into the first convolutions as the export does."""
    from headstart.exported.folder import calibration_items
    from headstart.exported.graph import calibration_batches, quantize_dynamic_int8, quantize_static_int8

    if model.backbone.modality == "text":
        quantize_dynamic_int8(fp32, target, **settings)
    else:
        quantize_static_int8(fp32, target, calibration_batches(model.backbone, calibration_items(model)), **settings)


def measure(path: Path, feeds: list[dict], labels: list[str], classes: list[str]) -> tuple[np.ndarray, dict]:
    """Probabilities, and accuracy, items/s (best of two passes, one thread) and size of one graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, feeds[0])  # a warm-up: the first run allocates
    seconds = []
    for _ in range(2):
        began = time.perf_counter()
        proba = np.concatenate([session.run(None, feed)[0] for feed in feeds])
        seconds.append(time.perf_counter() - began)
    accuracy = float(np.mean([classes[i] == label for i, label in zip(proba.argmax(axis=1), labels)]))
    return proba, {"accuracy": accuracy, "items_per_s": len(labels) / min(seconds), "size_mb": path.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a model folder written by `headstart fit --out`")
    parser.add_argument("test", help="a labeled test file")
    parser.add_argument("--name", default="quantization-variants", help="the results file's name before the date")
    args = parser.parse_args()

    import headstart
    from headstart.data import read_dataset
    from headstart.exported import ExportedModel

    model = headstart.load(args.model_dir)
    test = read_dataset(args.test)
    work = Path(tempfile.mkdtemp(prefix="headstart-quantization-"))
    try:
        fp32 = model.export(work / "fp32")
        feeds = [ExportedModel(fp32).inputs(test.items[i:i + 32]) for i in range(0, len(test.items), 32)]
        reference, row = measure(fp32 / "model.onnx", feeds, test.labels, model.classes)
        rows = [{"variant": "fp32", **row}]
        variants = text_variants() if model.backbone.modality == "text" else image_variants()
        for name, options in variants.items():
            target = work / f"variant-{len(rows)}.onnx"
            try:
                quantize(model, fp32 / "model.onnx", target, options)
            except Exception as error:  # noqa: BLE001 - a setting ONNX Runtime refuses is a row, not the end
                rows.append({"variant": name, "error": str(error).splitlines()[0][:120]})
                continue
            proba, row = measure(target, feeds, test.labels, model.classes)
            rows.append({"variant": name, **row, "speedup": row["items_per_s"] / rows[0]["items_per_s"],
                         "max_proba_change": float(np.abs(proba - reference).max()),
                         "same_label": float(np.mean(proba.argmax(axis=1) == reference.argmax(axis=1)))})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    common.print_table(rows, ["variant", "accuracy", "items_per_s", "speedup", "size_mb", "max_proba_change",
                              "same_label", "error"],
                       title=f"{args.model_dir}, {len(test.items)} test items, 1 thread")
    path = common.write_results(args.name, {"model": args.model_dir, "test": args.test, "test_items": len(test.items),
                                            "rows": rows})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
