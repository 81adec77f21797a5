"""headstart on the CPU and on a GPU, side by side: fine-tuning time and accuracy, extraction items/s.

Each job runs in its own fresh process (``common.run_job``) on one device (``--device`` of headstart):

a. ``finetune sst2``: ``headstart.fit`` with staged fine-tuning of ``minilm-l6`` on the full SST-2
   train split (67,349 sentences; tested on the dev split), 1 epoch by default;
b. ``finetune fashion``: the same with ``effnet-lite0`` on 5,000 Fashion-MNIST training images
   (500 a class, seed 0; tested on 2,000 test images), headstart's default epochs;
c. ``extract``: ``compute_features`` of 2,000 SST-2 sentences (``minilm-l6``) and 1,000
   Fashion-MNIST images (``effnet-lite0``, 224 px) after one warm-up batch: items/s;
d. ``extract ... onnx-cuda``: on a GPU, the same through headstart's ONNX export in an ONNX Runtime
   session with the CUDA provider (float32), where onnxruntime-gpu is installed: whether it beats
   PyTorch under autocast, measured rather than assumed (headstart uses PyTorch there).

On the CPU headstart keeps float32 and ONNX Runtime for frozen passes; on a GPU it fine-tunes and
extracts with PyTorch under autocast (bfloat16 where the GPU has it natively, else float16 with a
loss scaler: headstart.compute.device). The table gives each job's seconds (or items/s) on every
device and the ratio to the CPU's, from the same run; JSON goes to
``benchmarks/results/gpu-<date>.json``.

``--step-check SRC [SRC ...]`` instead times the CPU fine-tuning step of each source tree (main's
``src`` against a branch's, say), alternating the trees for ``--rounds`` rounds in fresh processes
with ``PYTHONPATH=SRC``: ``minilm-l6`` staged on 512 SST-2 sentences, 2 epochs of 32 steps; the
second pass's wall and CPU seconds (validation left out) give ms a step.

    python benchmarks/gpu.py                         # cpu and cuda (where torch sees one), full sizes
    python benchmarks/gpu.py --quick                 # 256 sentences, 200 images, 128 items: minutes on a CPU
    python benchmarks/gpu.py --devices cuda          # one device only (the CPU's SST-2 epoch takes hours)
    python benchmarks/gpu.py --devices cuda --jobs finetune-fashion --keep-models runs/gpu   # then export.py
    python benchmarks/gpu.py --step-check /work/main/src src --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

try:  # run as `python benchmarks/gpu.py` or imported as `benchmarks.gpu`
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

SIZES = {"full": {"sst2_train": None, "sst2_epochs": 1, "fashion_train": 5000, "fashion_test": 2000,
                  "fashion_epochs": None, "image_size": None, "extract_texts": 2000, "extract_images": 1000},
         "quick": {"sst2_train": 256, "sst2_epochs": 1, "fashion_train": 200, "fashion_test": 100,
                   "fashion_epochs": 1, "image_size": 96, "extract_texts": 128, "extract_images": 128}}


def _setup(threads: int) -> None:
    os.environ.update(HEADSTART_QUIET="1", **common.QUIET_ENV)
    import torch
    torch.set_num_threads(threads)


def _synchronize(device: str) -> None:
    import torch
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def finetune_job(train_csv: str, test_csv: str, *, backbone: str, device: str, epochs: int | None,
                 image_size: int | None, cache_dir: str, threads: int, out: str | None = None) -> dict:
    """One staged fine-tune through ``headstart.fit`` on ``device``: seconds, fine-tuning seconds, accuracy.

    ``out``: where the model folder is saved (for ``benchmarks/export.py``), or nowhere.
    """
    _setup(threads)
    import headstart
    from headstart.compute.device import precision_for, resolve_device

    config = headstart.FinetuneConfig(strategy="staged", epochs=epochs)
    started = time.perf_counter()
    model = headstart.fit(train_csv, test=test_csv, backbone=backbone, mode="finetune", baseline=False, seed=0,
                          image_size=image_size, finetune_config=config, cache_dir=cache_dir, device=device,
                          out=out)
    _synchronize(device)
    seconds = time.perf_counter() - started
    epochs_run = [row for row in model.info["history"] if row.get("epoch", 0) > 0 and "seconds" in row]
    counts = model.info["config"]["counts"]
    tuning = sum(row["seconds"] for row in epochs_run)
    return {"seconds": seconds, "finetune_seconds": tuning, "epochs_run": len(epochs_run),
            "train_items_per_s": counts["train"] * len(epochs_run) / tuning if tuning else None,
            "accuracy": model.metrics["accuracy"], "n_train": counts["train"], "n_test": counts["test"],
            "precision": precision_for(resolve_device(device)).name}


def extract_job(items: list[str], *, backbone: str, device: str, image_size: int | None, cache_dir: str,
                threads: int) -> dict:
    """Frozen features of ``items`` on ``device`` (no cache), after one warm-up batch: items/s."""
    _setup(threads)
    from headstart.backbones import create_backbone
    from headstart.compute.device import precision_for, resolve_device, using_device
    from headstart.features.extract import compute_features

    net = create_backbone(backbone, **({"image_size": image_size} if image_size else {}))
    with using_device(device):
        compute_features(net, items[:64], cache_dir=cache_dir)  # the ONNX export or the copy to the GPU
        _synchronize(device)
        started = time.perf_counter()
        features = compute_features(net, items, cache_dir=cache_dir)
        _synchronize(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "items_per_s": len(items) / seconds, "n": len(items),
            "feature_norm_mean": float(np.linalg.norm(features, axis=1).mean()),
            "precision": precision_for(resolve_device(device)).name}


def extract_onnx_cuda_job(items: list[str], *, backbone: str, device: str, image_size: int | None, cache_dir: str,
                          threads: int) -> dict:
    """Frozen features through the ONNX export in ONNX Runtime's CUDA provider: items/s (or why not)."""
    _setup(threads)
    import onnxruntime as ort

    from headstart.backbones import create_backbone
    from headstart.features.extract import batches_in_length_order, onnx_session, prefetched

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"skipped": "onnxruntime has no CUDA provider here (pip install onnxruntime-gpu)"}
    net = create_backbone(backbone, **({"image_size": image_size} if image_size else {}))
    path = onnx_session(net, cache_dir)._model_path  # the export headstart keeps in the cache
    index = int(device.partition(":")[2] or 0)
    session = ort.InferenceSession(path, providers=[("CUDAExecutionProvider", {"device_id": index})])

    def run(subset: list[str]) -> None:
        batches = batches_in_length_order(subset, net.modality, 64)
        for inputs in prefetched(net.preprocess, subset, batches):
            session.run(None, {name: value.numpy() for name, value in inputs.items()})

    run(items[:64])
    started = time.perf_counter()
    run(items)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "items_per_s": len(items) / seconds, "n": len(items), "precision": "fp32 (onnx)"}


def _data(size: dict, work: Path) -> dict:
    """The benchmark's CSVs and item lists, written under ``work`` (Fashion-MNIST PNGs are cached)."""
    texts, labels = benchmark_data.sst2("train")
    n = size["sst2_train"] or len(texts)
    order = np.random.default_rng(0).permutation(len(texts))[:n]
    sst2_train = benchmark_data.write_csv(work / "sst2-train.csv", ["text", "label"],
                                          [(texts[i], labels[i]) for i in order])
    dev_texts, dev_labels = benchmark_data.sst2("dev")
    sst2_test = benchmark_data.write_csv(work / "sst2-test.csv", ["text", "label"], zip(dev_texts, dev_labels))
    images, image_labels = benchmark_data.fashion_mnist("train")
    train_index = common.sample_per_class(image_labels, size["fashion_train"] // 10, seed=0)
    test_images, test_labels = benchmark_data.fashion_mnist("test")
    test_index = common.sample_per_class(test_labels, size["fashion_test"] // 10, seed=0)
    train_paths = benchmark_data.fashion_pngs("train", images, image_labels, train_index)
    test_paths = benchmark_data.fashion_pngs("test", test_images, test_labels, test_index)
    fashion_train = benchmark_data.write_csv(
        work / "fashion-train.csv", ["path", "label"],
        [(p, benchmark_data.fashion_label(image_labels[i])) for p, i in zip(train_paths, train_index)])
    fashion_test = benchmark_data.write_csv(
        work / "fashion-test.csv", ["path", "label"],
        [(p, benchmark_data.fashion_label(test_labels[i])) for p, i in zip(test_paths, test_index)])
    extract_index = common.sample_per_class(test_labels, size["extract_images"] // 10, seed=1)
    return {"sst2": (sst2_train, sst2_test), "fashion": (fashion_train, fashion_test),
            "texts": [texts[i] for i in np.random.default_rng(1).permutation(len(texts))[:size["extract_texts"]]],
            "images": benchmark_data.fashion_pngs("test", test_images, test_labels, extract_index)}


JOB_KEYS = {"finetune sst2": "finetune-sst2", "finetune fashion": "finetune-fashion", "extract text": "extract-text",
            "extract images": "extract-images"}  # a job's name in the table -> its name for --jobs


def _devices(requested: str | None) -> list[str]:
    if requested:
        return [device.strip() for device in requested.split(",") if device.strip()]
    import torch
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def compare_devices(args, save: Callable[[dict], object]) -> dict:
    """Every job on every device; ``save`` gets the rows so far after each job (a run cut short keeps them)."""
    size = {**SIZES["quick" if args.quick else "full"],
            **({"sst2_train": args.sst2_train} if args.sst2_train else {})}
    devices = _devices(args.devices)
    work = Path(tempfile.mkdtemp(prefix="headstart-gpu-bench-"))
    data = _data(size, work)
    jobs = {
        "finetune sst2 (s)": (finetune_job, data["sst2"], {"backbone": "minilm-l6", "epochs": size["sst2_epochs"],
                                                             "image_size": None}),
        "finetune fashion (s)": (finetune_job, data["fashion"], {"backbone": "effnet-lite0",
                                                                   "epochs": size["fashion_epochs"],
                                                                   "image_size": size["image_size"]}),
        "extract text (items/s)": (extract_job, (data["texts"],), {"backbone": "minilm-l6", "image_size": None}),
        "extract images (items/s)": (extract_job, (data["images"],), {"backbone": "effnet-lite0",
                                                                       "image_size": size["image_size"]}),
    }
    for device in (d for d in devices if d.startswith("cuda")):
        jobs[f"extract text onnx-{device} (items/s)"] = (extract_onnx_cuda_job, (data["texts"],),
                                                         {"backbone": "minilm-l6", "image_size": None, "only": device})
        jobs[f"extract images onnx-{device} (items/s)"] = (extract_onnx_cuda_job, (data["images"],),
                                                           {"backbone": "effnet-lite0", "image_size": size["image_size"],
                                                            "only": device})
    wanted = {key.strip() for key in args.jobs.split(",")} if args.jobs else set(JOB_KEYS.values())
    results = {}
    for name, (job, positional, options) in jobs.items():
        key = JOB_KEYS[name.split(" onnx-")[0].split(" (")[0]]
        if key not in wanted:
            continue
        only = options.pop("only", None)
        for device in [only] if only else devices:
            cache = work / f"cache-{device}"  # each device extracts its own (the cache is keyed by weights only)
            if args.keep_models and job is finetune_job:
                options["out"] = str(Path(args.keep_models) / f"{key}-{device}")
            row = common.run_job(job, *positional, device=device, cache_dir=str(cache), threads=args.threads,
                                 **options)
            results.setdefault(name, {})[device] = row
            save({"sizes": size, "devices": devices, "results": results, "partial": True})
            print(f"{name:<26} {device:<7} {row.get('status')}: "
                  + (row["skipped"] if "skipped" in row else f"{row['seconds']:.1f} s" if row.get("status") == "ok"
                     else row.get("error", "")[-300:]), flush=True)
    rows = []
    for name, by_device in results.items():
        key = "items_per_s" if "items/s" in name else "seconds"
        cpu = results.get(name.split(" onnx-")[0] + " (items/s)" if " onnx-" in name else name, {}).get("cpu", {})
        base = cpu.get(key) if cpu.get("status") == "ok" else None  # ONNX on a GPU against the same CPU row
        for device, row in by_device.items():
            ok = row.get("status") == "ok" and "skipped" not in row
            value = row.get(key) if ok else None
            ratio = None if not (ok and base) else (base / value if key == "seconds" else value / base)
            rows.append([name, device, row.get("precision", "-") if ok else "skipped" if "skipped" in row
                         else "failed", value,
                         row.get("accuracy"), ratio])
    common.print_table(rows, ["job", "device", "precision", "value", "accuracy", "speed-up vs cpu"],
                       title="headstart by device (" + ("quick sizes" if args.quick else "full sizes") + ")")
    return {"sizes": size, "devices": devices, "results": results, "table": rows}


# --------------------------------------------------------------------------- the CPU step, before and after

STEP_SCRIPT = """
import json, os, sys, time
os.environ.update(HEADSTART_QUIET="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
import torch
torch.set_num_threads(int(sys.argv[3]))
import headstart
from headstart.learn import finetune

# The training passes alone (validation left out), in wall seconds and in this process's CPU seconds:
# on cores that other sessions share, the CPU seconds move far less than the wall seconds.
passes = []
train_epoch = finetune._Run.train_epoch
def timed(self, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = train_epoch(self, *args, **kwargs)
    passes.append({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu})
    return result
finetune._Run.train_epoch = timed
model = headstart.fit(sys.argv[1], test=sys.argv[1], backbone="minilm-l6", mode="finetune", baseline=False,
                      cache_dir=sys.argv[2],
                      finetune_config=headstart.FinetuneConfig(strategy="staged", epochs=2, batch_size=16))
rows = [r for r in model.info["history"] if r.get("epoch", 0) > 0 and "seconds" in r]
print(json.dumps({"passes": passes, "train_loss": [r["train_loss"] for r in rows]}))
"""


def step_check(args) -> dict:
    """Fine-tuning epoch seconds on the CPU for each source tree, alternating trees round by round."""
    texts, labels = benchmark_data.sst2("train")
    order = np.random.default_rng(0).permutation(len(texts))[:640]  # 512 train, 128 val (80/20)
    work = Path(tempfile.mkdtemp(prefix="headstart-step-check-"))
    data = benchmark_data.write_csv(work / "sst2-640.csv", ["text", "label", "split"],
                                    [(texts[i], labels[i], "train" if k < 512 else "val") for k, i in enumerate(order)])
    runs: dict = {src: [] for src in args.step_check}
    for round_ in range(args.rounds):
        for src in args.step_check:
            env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
            done = subprocess.run([sys.executable, "-c", STEP_SCRIPT, data, str(work / "cache"), str(args.threads)],
                                  capture_output=True, text=True, env=env)
            if done.returncode:
                raise RuntimeError(done.stderr[-3000:])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[src].append(result)
            print(f"round {round_ + 1} {src}: passes {[round(p['wall'], 2) for p in result['passes']]} s wall, "
                  f"{[round(p['cpu'], 2) for p in result['passes']]} s CPU", flush=True)
    rows, first = [], None
    for src, results in runs.items():
        # ms a step: 512 items / 16 a batch = 32 steps a pass; the first pass of each run warms up
        wall = 1000 * np.array([r["passes"][1]["wall"] for r in results]) / 32
        cpu = 1000 * np.array([r["passes"][1]["cpu"] for r in results]) / 32
        first = first if first is not None else (float(wall.min()), float(np.median(cpu)))
        rows.append([src, float(wall.min()), float(np.median(wall)), float(np.median(cpu)), float(wall.min()) / first[0],
                     float(np.median(cpu)) / first[1], results[0]["train_loss"]])
    common.print_table(rows, ["source", "wall ms/step min", "wall median", "CPU ms/step median", "wall min ratio",
                              "CPU ratio", "train loss (1st run)"],
                       title="CPU fine-tuning step, second pass (minilm-l6, staged, batch 16)")
    return {"step_check": {src: results for src, results in runs.items()}, "table": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (runs on a CPU in minutes)")
    parser.add_argument("--devices", help="comma-separated devices (default: cpu, and cuda where torch sees a GPU)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPU threads of each job (default: every core this process may use, so that the "
                             "CPU rows are the CPU's best)")
    parser.add_argument("--jobs", help=f"comma-separated jobs to run (default: all of {', '.join(JOB_KEYS.values())})")
    parser.add_argument("--sst2-train", type=int, help="SST-2 sentences fine-tuned on (default: the size's)")
    parser.add_argument("--keep-models", metavar="DIR", help="save each fine-tuned model folder under DIR")
    parser.add_argument("--step-check", nargs="+", metavar="SRC", help="time the CPU step of these source trees")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --step-check")
    args = parser.parse_args()
    load = os.getloadavg()
    name = "gpu-step-check" if args.step_check else "gpu" + ("-quick" if args.quick else "") + (
        "-" + args.jobs.replace(",", "-") if args.jobs else "") + (f"-{args.devices.replace(',', '-')}"
                                                                    if args.devices else "")

    def save(payload: dict) -> Path:
        return common.write_results(name, {**payload, "threads": args.threads, "load_before": load,
                                           "load_after": os.getloadavg(),
                                           "note": "ratios come from one run, jobs interleaved; load averages "
                                                   "above say what else ran"})

    path = save(step_check(args) if args.step_check else compare_devices(args, save))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
