"""The from-scratch baseline every fit is checked against, and the negative-transfer verdict.

- Text: TF-IDF (word 1-2 grams, and character 2-5 grams that keep case) with logistic
  regression, its strength chosen on held-out data the way the probe's is.
- Images: a small CNN (three conv blocks, about 100k parameters) trained from random
  initialization on the same train split, early-stopped on the validation split.

The difference in test accuracy (transfer minus scratch) gets a paired bootstrap confidence
interval over the test items; when its lower end is not above zero, the verdict says plainly
"transfer does not help here".
"""

from __future__ import annotations

import math
import time

import numpy as np

from headstart.data.dataset import Dataset
from headstart.progress import progress_bar

LEVEL = 0.95
TEXT_METHOD = "TF-IDF + logistic regression"
IMAGE_METHOD = "small CNN trained from scratch"


# -- text -----------------------------------------------------------------------------------------

def _tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    # Character n-grams keep case and spelling, which a word-piece encoder may discard.
    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False, sublinear_tf=True,
                                  min_df=2, max_features=200_000)),
    ])


def text_scratch(train_texts, train_y: np.ndarray, val_texts, val_y: np.ndarray, n_classes: int, *,
                 seed: int = 0):
    """Fit TF-IDF + logistic regression; return ``predict_proba(texts) -> (n, n_classes)`` and info.

    C is chosen from a grid on the validation split (by 3-fold cross-validation on
    train+validation when there are fewer than 1,000 items), then refit on train+validation.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    texts = list(train_texts) + list(val_texts)
    labels = np.concatenate([train_y, val_y])
    grid = (0.3, 1.0, 3.0, 10.0, 30.0)

    def fit(x_texts, y, c):
        vectorizer = _tfidf().fit(x_texts)
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
        return vectorizer, model.fit(vectorizer.transform(x_texts), y)

    def accuracy(fitted, x_texts, y):
        vectorizer, model = fitted
        return float((model.predict(vectorizer.transform(x_texts)) == y).mean())

    smallest = np.bincount(labels)[np.unique(labels)].min()
    if len(labels) < 1000 and smallest >= 2:
        folds = list(StratifiedKFold(min(3, smallest), shuffle=True, random_state=seed).split(texts, labels))
        scores = [np.mean([accuracy(fit([texts[i] for i in a], labels[a], c), [texts[i] for i in b], labels[b])
                           for a, b in folds]) for c in grid]
    else:
        scores = [accuracy(fit(list(train_texts), train_y, c), list(val_texts), val_y) for c in grid]
    c = grid[int(np.argmax(scores))]
    vectorizer, model = fit(texts, labels, c)

    def predict_proba(items) -> np.ndarray:
        proba = np.zeros((len(items), n_classes))
        proba[:, model.classes_] = model.predict_proba(vectorizer.transform(list(items)))
        return proba
    return predict_proba, {"method": TEXT_METHOD, "C": c}


# -- images ---------------------------------------------------------------------------------------

def _pixels(paths, size: int):
    import torch
    from PIL import Image

    from headstart.data.images import load_image

    # Kept as uint8 (a quarter of float32's memory) and normalized a batch at a time by _normalize.
    arrays = [np.asarray(load_image(p).resize((size, size), Image.BILINEAR), dtype=np.uint8) for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _normalize(pixels):
    return (pixels.float() / 255.0 - 0.5) / 0.5


def small_cnn(n_classes: int, width: int = 32):
    """Three conv-BN-ReLU blocks (width, 2 width, 4 width), global average pooling, a linear layer."""
    from torch import nn

    def block(a, b, pool=True):
        return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)] + \
               ([nn.MaxPool2d(2)] if pool else [])
    return nn.Sequential(*block(3, width), *block(width, 2 * width), *block(2 * width, 4 * width, pool=False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, n_classes))


def image_scratch(train_paths, train_y: np.ndarray, val_paths, val_y: np.ndarray, n_classes: int, *,
                  seed: int = 0, size: int | None = None, min_steps: int = 300, patience: int = 6,
                  batch_size: int = 32, mirror: bool = True):
    """Train :func:`small_cnn` from random weights; return ``predict_proba(paths)`` and info.

    Images are resized to ``size`` (default: the first image's short side, between 16 and 64 px).
    The budget mirrors the fine-tune's: enough epochs for ``min_steps`` steps (5 to 40), Adam,
    random horizontal flips (where ``mirror``), early stopping on validation accuracy, best weights restored.
    """
    import torch
    from PIL import Image

    if size is None:
        with Image.open(train_paths[0]) as first:
            size = int(np.clip(min(first.size), 16, 64))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = _pixels(train_paths, size), torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    val_x = _pixels(val_paths, size) if len(val_paths) else None
    model = small_cnn(n_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    counts = np.bincount(train_y, minlength=n_classes).astype(np.float64)
    weights = torch.tensor(np.where(counts > 0, len(train_y) / (n_classes * np.maximum(counts, 1)), 0.0),
                           dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    steps_per_epoch = max(1, math.ceil(len(y) / batch_size))
    epochs = int(np.clip(math.ceil(min_steps / steps_per_epoch), 5, 40))
    best, best_state, waited, ran = -1.0, None, 0, 0
    with progress_bar("scratch baseline (CNN)", epochs) as advance:
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), batch_size):
                batch = order[start:start + batch_size]
                inputs = _normalize(x[batch])
                flip = (torch.rand(len(batch), generator=generator) < 0.5) & mirror
                inputs = torch.where(flip[:, None, None, None], inputs.flip(3), inputs)
                optimizer.zero_grad()
                loss_fn(model(inputs), y[batch]).backward()
                optimizer.step()
            ran += 1
            advance(1)
            if val_x is None:
                continue
            score = float((_predict(model, val_x).argmax(1) == val_y).mean())
            if score > best:
                best, waited = score, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)

    def predict_proba(paths) -> np.ndarray:
        return _predict(model, _pixels(list(paths), size))
    info = {"method": IMAGE_METHOD, "image_size": size, "epochs": ran, "val_accuracy": best if best >= 0 else None,
            "params": sum(p.numel() for p in model.parameters())}
    return predict_proba, info


def _predict(model, x) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([torch.softmax(model(_normalize(x[i:i + 256])), 1) for i in range(0, len(x), 256)]).numpy()


def fit_scratch(train: Dataset, val: Dataset, classes, *, seed: int = 0, mirror: bool = True):
    """The scratch baseline of the data's modality fitted on ``train`` (and ``val``).

    Args:
        train: the labeled training split.
        val: the labeled validation split.
        classes: label names, in the model's output order.
        seed: seeds the baseline's training.
        mirror: whether images may be flipped in training.

    Returns:
        The fitted baseline model of :func:`text_scratch` or :func:`image_scratch`.
    """
    data = (train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes))
    if train.modality == "text":
        return text_scratch(*data, seed=seed)
    return image_scratch(*data, seed=seed, mirror=mirror)


# -- the comparison -------------------------------------------------------------------------------

def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, *, n_boot: int = 2000, level: float = LEVEL,
                     seed: int = 0) -> dict:
    """Accuracy difference a - b on the same items and its percentile bootstrap interval.

    The items are resampled with replacement ``n_boot`` times, the same resample for both
    models (they were tested on the same items, so their errors are paired).
    """
    a, b = np.asarray(correct_a, dtype=np.float64), np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two 1-D arrays of the same non-zero length, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = (a[index] - b[index]).mean(axis=1)
    tail = (1 - level) / 2
    return {"difference": float(a.mean() - b.mean()), "ci_low": float(np.quantile(diffs, tail)),
            "ci_high": float(np.quantile(diffs, 1 - tail)), "level": level, "n": int(len(a))}


def verdict(comparison: dict, method: str) -> tuple[bool, str]:
    """Whether transfer clearly helps (the interval's lower end above 0) and the sentence saying so."""
    diff, low, high = (100 * comparison[k] for k in ("difference", "ci_low", "ci_high"))
    interval = f"{comparison['level']:.0%} CI {low:+.1f} to {high:+.1f} points on {comparison['n']} test items"
    side = "more" if diff >= 0 else "less"
    gap = (f"the pretrained model is {abs(diff):.1f} points {side} accurate than the from-scratch baseline, "
           f"{method} ({interval})")
    if low > 0:
        return True, f"Verdict: transfer helps: {gap}."
    if high < 0:
        return False, f"Verdict: transfer does not help here: {gap}; the model from scratch is clearly better."
    return False, f"Verdict: transfer does not help here: {gap}, which is not clearly better."


def compare_with_scratch(train: Dataset, val: Dataset, test: Dataset, classes, transfer_proba: np.ndarray, *,
                         seed: int = 0, mirror: bool = True) -> dict:
    """Fit the scratch baseline, test it, and compare it with the transfer model's test probabilities.

    Returns a JSON-ready dict: ``method``, ``accuracy`` (scratch), ``transfer_accuracy``,
    ``difference``, ``ci_low``, ``ci_high``, ``level``, ``n``, ``helps``, ``verdict``,
    ``seconds`` and the baseline's settings under ``info``.
    """
    started = time.perf_counter()
    predict_proba, info = fit_scratch(train, val, classes, seed=seed, mirror=mirror)
    truth = test.label_ids(classes)
    scratch_correct = predict_proba(test.items).argmax(1) == truth
    transfer_correct = np.asarray(transfer_proba).argmax(1) == truth
    comparison = paired_bootstrap(transfer_correct, scratch_correct, seed=seed)
    helps, sentence = verdict(comparison, info["method"])
    return {"method": info["method"], "accuracy": float(scratch_correct.mean()),
            "transfer_accuracy": float(transfer_correct.mean()), **comparison, "helps": helps, "verdict": sentence,
            "seconds": time.perf_counter() - started, "info": info}
