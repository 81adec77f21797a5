"""``headstart shift`` on real data: random halves of SST-2 are not flagged, real shifts are.

Integration tests: the packaged MiniLM and EfficientNet-Lite0 weights, ../shared/data, and
Debian's Fashion-MNIST (``apt-get install dataset-fashion-mnist``); each skips where its part is absent.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

import headstart
from headstart.data import read_dataset

FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_rows(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["text", "label"])
        writer.writeheader()
        writer.writerows({"text": row["text"], "label": row["label"]} for row in rows)
    return path


def sample(path: Path, n: int, seed: int) -> list[dict]:
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))[:n]]


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_random_halves_of_sst2_are_not_flagged_in_19_of_20_seeds(shared_data, tmp_path):
    from headstart.backbones import create_backbone
    from headstart.evaluate.shift import shift_test
    from headstart.features.extract import cached_features

    data = read_dataset(write_rows(tmp_path / "sst2.csv", sample(shared_data / "text" / "sst2_train.csv", 300, 1)))
    features = cached_features(create_backbone("minilm-l6"), data.items, data.hashes)
    flagged = []
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(len(features))
        result = shift_test(features[order[:150]], features[order[150:]], seed=seed, progress=False)
        flagged.append(result.shifted)
    assert sum(flagged) <= 1, f"{sum(flagged)} of 20 random halves flagged"


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_sst2_to_cr_movie_to_product_reviews_is_flagged(shared_data, tmp_path):
    source = write_rows(tmp_path / "sst2.csv", sample(shared_data / "text" / "sst2_train.csv", 200, 2))
    target = write_rows(tmp_path / "cr.csv", sample(shared_data / "text" / "cr.csv", 200, 3))
    report = headstart.shift(source, target, backbone="minilm-l6", out=tmp_path / "shift")
    summary = report.summary
    assert summary["shifted"] and summary["auc"] >= 0.75 and summary["p_value"] <= 0.01, summary
    assert set(summary["priors"]) == {"negative", "positive"}
    assert (tmp_path / "shift" / "shift.html").is_file()


def fashion_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Fashion-MNIST test images (n, 28, 28) uint8 and their labels."""
    with gzip.open(FASHION / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), np.uint8, offset=8)
    pick = np.random.default_rng(seed).permutation(len(images))[:n]
    return images[pick], labels[pick]


def write_image_folder(root: Path, images: np.ndarray, labels: np.ndarray, change=None) -> Path:
    from PIL import Image

    for i, (pixels, label) in enumerate(zip(images, labels)):
        image = Image.fromarray(pixels)
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        (change(image) if change else image).save(folder / f"{i}.png")
    return root


@pytest.mark.requires_effnet
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"skipped: Fashion-MNIST is not at {FASHION} "
                                                  "(apt-get install dataset-fashion-mnist)")
def test_inverted_fashion_mnist_is_flagged(tmp_path):
    from PIL import ImageOps

    images, labels = fashion_images(240, seed=4)
    source = write_image_folder(tmp_path / "source", images[:120], labels[:120])
    target = write_image_folder(tmp_path / "target", images[120:], labels[120:], change=ImageOps.invert)
    summary = headstart.shift(source, target, backbone="effnet-lite0", image_size=64).summary
    assert summary["shifted"] and summary["auc"] >= 0.75, summary
