"""The exported model's performance-to-complexity table: PyTorch eager, ONNX fp32 and ONNX int8 side by side.

For one model folder (``headstart fit --out``), in one run and one process: the model's size, its
accuracy on the test split, items/s at batch 32 (the fastest of a few interleaved rounds) and
latency at batch 1, each engine on one thread; then the int8/fp32 ratios against the issue's targets
(int8 at least 2x the items/s of fp32 ONNX, at most 1/3.5 of its size, accuracy within 1 point). The
test split is the one the fit made, rebuilt from the model's manifest (data, seed, ratios; its
separate test file, where the fit had one), or ``--test FILE``.

All three engines get the same inputs, prepared once as the export prepares them (the saved
tokenizer; pillow's resize for images), so the times are the forward passes alone. PyTorch runs the
same module that was exported (backbone, head and softmax). Sizes: the weights in float32 for
PyTorch, the ``model.onnx`` file for the exports. Not a test: timings depend on the machine and
on what else runs on it.

    .venv/bin/python benchmarks/export.py runs/sst2-full
    .venv/bin/python benchmarks/export.py /tmp/demo --latency-items 20    # a small model, quickly
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ENGINES = ("pytorch eager", "onnx fp32", "onnx int8")


def test_split(model, test_file: str | None):
    """(items, labels) of the model's test split, or of ``test_file``."""
    from headstart.data import assign_splits, read_dataset

    config, manifest = model.info["config"], model.info["manifest"]
    test_file = test_file or manifest.get("test")  # the fit's separate test file, where it had one
    if test_file:
        dataset = read_dataset(test_file)
        return dataset.items, dataset.labels
    dataset = assign_splits(read_dataset(manifest["data"]), ratios=config.get("ratios"), seed=config.get("seed", 0))
    test = dataset.split("test")
    return test.items, test.labels


def engines(model, folder: Path) -> dict:
    """Engine name -> (forward function on numpy feed, size in bytes, exported folder or None)."""
    import onnxruntime as ort
    import torch

    from headstart.exported.graph import classifier_of
    from headstart.exported.runtime import session_options

    torch.set_num_threads(1)
    classifier = classifier_of(model)

    def eager(feed: dict) -> np.ndarray:
        with torch.inference_mode():
            return classifier(*(torch.from_numpy(value) for value in feed.values())).numpy()

    size = sum(t.numel() * t.element_size() for t in classifier.state_dict().values())
    found = {"pytorch eager": (eager, size, None)}
    for name, quantize in (("onnx fp32", None), ("onnx int8", "int8")):
        out = model.export(folder / name.replace(" ", "-"), quantize=quantize)
        options = session_options(threads=1)  # as headstart runs an export
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(out / "model.onnx"), options, providers=["CPUExecutionProvider"])
        found[name] = ((lambda feed, session=session: session.run(None, feed)[0]), (out / "model.onnx").stat().st_size,
                       out)
    return found


def timed_pass(forward, batches: list[dict], singles: list[dict]) -> tuple[np.ndarray, float, list[float]]:
    """(probabilities, seconds over the batches, latencies in ms of the single items) of one pass."""
    started = time.perf_counter()
    proba = np.concatenate([forward(batch) for batch in batches])
    seconds = time.perf_counter() - started
    latencies = []
    for feed in singles:
        started = time.perf_counter()
        forward(feed)
        latencies.append((time.perf_counter() - started) * 1000)
    return proba, seconds, latencies


def measure_interleaved(found: dict, batches: list[dict], singles: list[dict], rounds: int) -> dict:
    """Engine name -> (probabilities, items/s of each round, latencies of every round).

    Each round runs every engine once, in turn: a machine whose speed drifts over minutes (a shared
    host ran every engine at half speed one day) then slows all engines alike instead of the one that
    happened to run during the slow minutes. The fastest round is the least disturbed one.
    """
    for forward, _, _ in found.values():
        forward(batches[0])  # a warm-up: the first run allocates
    items = sum(len(next(iter(batch.values()))) for batch in batches)
    probas, speeds, latencies = {}, {name: [] for name in found}, {name: [] for name in found}
    for _ in range(rounds):
        for name, (forward, _, _) in found.items():
            probas[name], seconds, times = timed_pass(forward, batches, singles)
            speeds[name].append(items / seconds)
            latencies[name].extend(times)
    return {name: (probas[name], speeds[name], latencies[name]) for name in found}


def summary(proba: np.ndarray, speeds: list[float], latencies: list[float], labels: list[str],
            classes: list[str]) -> dict:
    """Accuracy, items/s (fastest round, and every round) and latency percentiles of one engine."""
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    return {"accuracy": float(np.mean([p == t for p, t in zip(predicted, labels)])),
            "items_per_s": max(speeds), "items_per_s_rounds": speeds,
            "latency_ms_p50": statistics.median(latencies), "latency_ms_p90": float(np.percentile(latencies, 90)),
            "proba": proba}


def run(model_dir: str, test_file: str | None, latency_items: int, rounds: int) -> dict:
    """Export, measure the three engines, and compare int8 with fp32."""
    from headstart.exported import ExportedModel
    from headstart.model import Model

    model = Model.load(model_dir)
    items, labels = test_split(model, test_file)
    with tempfile.TemporaryDirectory(prefix="headstart-export-bench-") as folder:
        found = engines(model, Path(folder))
        prepare = ExportedModel(found["onnx fp32"][2], threads=1)  # the tokenizer or pillow resize, once
        batches = [prepare.inputs(items[i:i + 32]) for i in range(0, len(items), 32)]
        singles = [prepare.inputs([item]) for item in items[:latency_items]]
        passes = measure_interleaved(found, batches, singles, rounds)
        rows = [{"engine": name, "size_mb": found[name][1] / 1e6, **summary(*passes[name], labels, model.classes)}
                for name in found]
    reference = rows[0].pop("proba")
    for row in rows[1:]:
        row["max_proba_difference"] = float(np.abs(row.pop("proba") - reference).max())
    fp32, int8 = rows[1], rows[2]
    targets = [common.target("int8 items/s / fp32 items/s", int8["items_per_s"] / fp32["items_per_s"], ">=", 2.0),
               common.target("int8 size / fp32 size", int8["size_mb"] / fp32["size_mb"], "<=", 1 / 3.5),
               common.target("fp32 accuracy - int8 accuracy (points)", 100 * (fp32["accuracy"] - int8["accuracy"]),
                             "<=", 1.0),
               common.target("fp32 max |p - PyTorch p|", fp32["max_proba_difference"], "<=", 1e-4)]
    return {"model": str(model_dir), "backbone": model.backbone.name, "finetuned": model.finetuned,
            "test_items": len(items), "latency_items": len(singles), "rounds": rounds, "threads": 1, "rows": rows,
            "targets": targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a model folder written by `headstart fit --out`")
    parser.add_argument("--test", help="a labeled test file (default: the fit's test split, from the manifest)")
    parser.add_argument("--latency-items", type=int, default=100, help="single items timed for the latency")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (every engine once a round); items/s is the fastest round's")
    parser.add_argument("--name", default="export", help="the results file's name before the date")
    args = parser.parse_args()
    result = run(args.model_dir, args.test, args.latency_items, args.rounds)
    common.print_table(result["rows"], ["engine", "size_mb", "accuracy", "items_per_s", "latency_ms_p50",
                                        "latency_ms_p90", "max_proba_difference"],
                       title=f"{result['backbone']} ({'fine-tuned' if result['finetuned'] else 'probe'}), "
                             f"{result['test_items']} test items, 1 thread, fastest of {result['rounds']} rounds")
    common.print_targets(result["targets"])
    print(f"\nwritten: {common.write_results(args.name, result)}")


if __name__ == "__main__":
    main()
