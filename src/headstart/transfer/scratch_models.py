"""The from-scratch candidates: cheap models that learn from the task's own labels only.

- Text: TF-IDF of word 1-2 grams and character 2-5 grams that keep case and spelling (which a
  word-piece encoder may discard) with logistic regression. Word n-grams alone did not earn a
  place: on SST-2, TREC and CR (100 and 400 labels, two seeds) they were never more than 0.3 point
  better on test, and up to 1.6 points worse, while validation picked them now and then. The
  analyzers are headstart's own (:mod:`headstart.exported.text_tfidf_graph`: word tokens with case
  kept, character n-grams over the whole text between start/end marks), which ONNX reproduces
  exactly; against scikit-learn's lowercased words and ``char_wb`` n-grams, test accuracy moved by
  -0.3 to +2.0 points (SST-2 at 100 and 400 labels: 61.1/60.4/67.9/64.8% before, 61.2/60.3/68.5/64.5%
  after; TREC at 400: 73.8/71.8% before, 75.8/72.0% after; seeds 0 and 1).
- Images: logistic regression on the raw pixels at the images' own size (up to 32 px a side; gray
  images as one channel), for tiny images (up to 32 px) a one-hidden-layer MLP on those pixels, and a
  small CNN (three conv blocks, about 100k parameters).

Every candidate is fitted on the training split and scored on the validation split (its
``val_proba``, which :mod:`headstart.transfer.baseline` compares), and what it ships is refitted on
train+validation where that is cheap (the linear models, with the strength the training split chose);
the networks are kept at their best validation epoch, as a staged fine-tune is. Image candidates are
:class:`PixelNet` modules that take uint8 pixels (n, H, W, 3) as the exported graphs of backbones do,
so that one module trains, predicts and exports.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from headstart.progress import progress_bar

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
TEXT_C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
SMALL_DATA = 1000  # below this many train+validation items, C is chosen by cross-validation on train
TINY_SIDE = 32  # images up to this side get the MLP; pixel models never read more than this side
MIN_EPOCHS = 5  # a network that cannot train this many epochs within the budget is skipped
ABSENT_CLASS_BIAS = -30.0  # a class with no training item: never predicted


class SkipCandidate(Exception):
    """A candidate that would not finish within the time left; its message says why."""


@dataclass
class Task:
    """What each candidate learns from.

    Attributes:
        train_items: training texts or image paths.
        train_y: their class ids.
        val_items: validation texts or image paths (may be empty).
        val_y: their class ids.
        n_classes: the model's output size.
        seed: seeds every draw.
        mirror: whether an image's mirror shows the same class (networks may flip training images).
        deadline: ``time.perf_counter()`` by which a candidate must be done (None: no limit).
    """

    train_items: list
    train_y: np.ndarray
    val_items: list
    val_y: np.ndarray
    n_classes: int
    seed: int = 0
    mirror: bool = True
    deadline: float | None = None
    _pixels: dict = field(default_factory=dict, repr=False)

    def pixels(self, split: str, size: int):
        """Uint8 pixels (n, size, size, 3) of ``split`` (``train`` or ``val``), loaded once a size."""
        key = (split, size)
        if key not in self._pixels:
            self._pixels[key] = load_pixels(self.train_items if split == "train" else self.val_items, size)
        return self._pixels[key]

    def seconds_left(self) -> float:
        """Seconds until the deadline (infinite without one)."""
        return math.inf if self.deadline is None else self.deadline - time.perf_counter()


@dataclass
class Fitted:
    """A fitted candidate.

    Attributes:
        name: its short name (``pixel-lr``, ``mlp``, ``cnn``, ``tfidf-words``, ``tfidf-words-chars``).
        method: what it is, in words.
        val_proba: the model fitted on the training split only, on the validation items (m, k); None
            when there are none.
        predictor: the model to ship: ``predict_proba(items)``, ``state()`` and ``from_state``.
        info: its settings (strength, size, epochs...).
    """

    name: str
    method: str
    val_proba: np.ndarray | None
    predictor: "ImagePredictor | TextPredictor"
    info: dict



# -- images -----------------------------------------------------------------------------------------

def load_pixels(paths, size: int):
    """Uint8 pixels (n, size, size, 3) of image files, each stretched whole to size x size."""
    import torch
    from PIL import Image

    from headstart.data.images import load_image

    arrays = [np.asarray(load_image(p).resize((size, size), Image.BILINEAR), dtype=np.uint8) for p in paths]
    if not arrays:
        return torch.zeros((0, size, size, 3), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))


def image_geometry(paths, sample: int = 50) -> tuple[int, bool]:
    """(median short side, whether every sampled image is gray) of the first ``sample`` images."""
    from headstart.data.images import load_image

    sides, gray = [], True
    for path in list(paths)[:sample]:
        pixels = np.asarray(load_image(path), dtype=np.int16)
        sides.append(min(pixels.shape[:2]))
        gray = gray and bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
    return int(np.median(sides)), gray


def small_cnn(n_classes: int, width: int = 32, channels: int = 3):
    """Three conv-BN-ReLU blocks (width, 2 width, 4 width), global average pooling, a linear layer."""
    from torch import nn

    def block(a, b, pool=True):
        return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)] + \
               ([nn.MaxPool2d(2)] if pool else [])
    return nn.Sequential(*block(channels, width), *block(width, 2 * width), *block(2 * width, 4 * width, pool=False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, n_classes))


def pixel_net(kind: str, size: int, gray: bool, n_classes: int, hidden: int = 256, width: int = 32):
    """A :class:`PixelNet` of ``kind`` ``linear``, ``mlp`` or ``cnn`` over size x size images."""
    import torch
    from torch import nn

    channels = 1 if gray else 3
    inputs = channels * size * size
    bodies = {"linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(inputs, n_classes)),
              "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(0.2),
                                           nn.Linear(hidden, n_classes)),
              "cnn": lambda: small_cnn(n_classes, width, channels)}

    class PixelNet(nn.Module):
        """Uint8 pixels (n, H, W, 3) in, logits out: cast, gray where trained on gray, normalized, the body."""

        def __init__(self):
            super().__init__()
            self.body = bodies[kind]()
            self.settings = {"kind": kind, "size": size, "gray": gray, "n_classes": n_classes, "hidden": hidden,
                             "width": width}
            # ITU-R 601 luma, as PIL's convert("L"): gray pixels (R = G = B) come out unchanged.
            self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)

        def normalized(self, pixels):
            """Float (n, C, H, W) in [-1, 1] of uint8 pixels (n, H, W, 3)."""
            x = pixels.permute(0, 3, 1, 2).float() / 255.0
            if gray:
                x = (x * self.luma).sum(1, keepdim=True)
            return (x - 0.5) / 0.5

        def forward(self, pixels):
            """Logits (n, k) of uint8 pixels (n, H, W, 3)."""
            return self.body(self.normalized(pixels))

    return PixelNet()


def net_proba(net, pixels) -> np.ndarray:
    """Softmax of ``net`` on uint8 pixels (n, H, W, 3), in batches of 256, as float64 (n, k)."""
    import torch

    net.eval()
    with torch.no_grad():
        parts = [torch.softmax(net(pixels[i:i + 256]), 1) for i in range(0, len(pixels), 256)]
    return torch.cat(parts).double().numpy() if parts else np.zeros((0, net.settings["n_classes"]))


class ImagePredictor:
    """A fitted :class:`PixelNet`: predicts image files, and is saved as its settings and weights."""

    modality = "image"

    def __init__(self, net):
        self.net = net.eval()

    def predict_proba(self, paths) -> np.ndarray:
        """Class probabilities (n, k) of image files."""
        return net_proba(self.net, load_pixels(list(paths), self.net.settings["size"]))

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(settings, tensors) to save."""
        return dict(self.net.settings), {k: v.detach().numpy().copy() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_state(cls, settings: dict, tensors: dict[str, np.ndarray]) -> "ImagePredictor":
        """The predictor :meth:`state` described."""
        import torch

        net = pixel_net(**settings)
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in tensors.items()})
        return cls(net)


def _full_weights(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (k, d), bias (k,)) of a fitted LogisticRegression over every class, absent ones included."""
    coef, intercept, present = model.coef_, model.intercept_, model.classes_
    weight = np.zeros((n_classes, coef.shape[1]), dtype=np.float32)
    bias = np.full(n_classes, ABSENT_CLASS_BIAS, dtype=np.float32)
    if len(present) == 2 and len(coef) == 1:  # binary: softmax([0, z]) is sklearn's sigmoid(z)
        weight[present[1]], bias[present[1]], bias[present[0]] = coef[0], intercept[0], 0.0
    else:
        weight[present], bias[present] = coef, intercept
    return weight, bias


def _choose_and_fit(featurize: Callable, train, train_y, val, val_y, n_classes: int, grid, seed: int):
    """Logistic regression on ``featurize``'s features: C chosen, fitted on train, refitted on train+val.

    ``featurize(items) -> transform`` fits what the features need (a vocabulary) on ``items``.
    C is chosen by cross-validation on the training split for small data (as the probe's is), on
    the validation split otherwise, so the validation figures stay held out.

    Returns:
        (transform, model) refitted on train+validation, the train-only model's validation
        probabilities (None without validation items), and C.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    def fit(items, y, c):
        transform = featurize(items)
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
        return transform, model.fit(transform(items), y)

    def accuracy(fitted, items, y) -> float:
        transform, model = fitted
        return float((model.predict(transform(items)) == y).mean())

    counts = np.bincount(train_y)[np.unique(train_y)]
    if (len(train_y) + len(val_y) < SMALL_DATA or not len(val_y)) and counts.min() >= 2:
        folds = list(StratifiedKFold(min(3, int(counts.min())), shuffle=True, random_state=seed)
                     .split(np.zeros(len(train_y)), train_y))
        scores = [np.mean([accuracy(fit(train[a], train_y[a], c), train[b], train_y[b]) for a, b in folds])
                  for c in grid]
    elif len(val_y):
        scores = [accuracy(fit(train, train_y, c), val, val_y) for c in grid]
    else:
        scores = [1.0 if c == 1.0 else 0.0 for c in grid]
    c = grid[int(np.argmax(scores))]
    val_proba = None
    if len(val_y):
        transform, model = fit(train, train_y, c)
        weight, bias = _full_weights(model, n_classes)
        val_proba = _softmax(np.asarray(transform(val) @ weight.T) + bias)
    both = np.concatenate([train, val]) if len(val_y) else train
    return fit(both, np.concatenate([train_y, val_y]), c), val_proba, c


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def pixel_lr(task: Task) -> Fitted:
    """Logistic regression on the raw pixels, at the images' own size (at most 32 px a side)."""
    import torch

    native, gray = image_geometry(task.train_items)
    size = int(min(native, TINY_SIDE))
    net = pixel_net("linear", size, gray, task.n_classes)
    with torch.no_grad():
        train_x = net.normalized(task.pixels("train", size)).flatten(1).numpy()
        val_x = net.normalized(task.pixels("val", size)).flatten(1).numpy()
    (_, model), val_proba, c = _choose_and_fit(lambda items: lambda x: x, train_x, task.train_y, val_x, task.val_y,
                                               task.n_classes, C_GRID, task.seed)
    weight, bias = _full_weights(model, task.n_classes)
    linear = net.body[1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))
    channels = "gray" if gray else "RGB"
    return Fitted("pixel-lr", f"logistic regression on raw pixels ({size}x{size} {channels})", val_proba,
                  ImagePredictor(net), {"image_size": size, "gray": gray, "C": c})


def _train_net(net, task: Task, size: int, *, label: str, min_steps: int, max_epochs: int,
               batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 1e-3, patience: int = 6) -> dict:
    """Train ``net`` on the training pixels with AdamW, early-stopped on validation; best weights kept.

    The second step is timed: when not even :data:`MIN_EPOCHS` epochs would end before the task's
    deadline, the candidate is skipped (:class:`SkipCandidate`) before more time goes into it;
    otherwise it trains until early stopping or the deadline, whichever comes first, and keeps the
    best weights on validation so far (early stopping usually ends well before the last epoch, so
    planning for every epoch skipped networks that would have fitted).
    """
    import torch

    torch.manual_seed(task.seed)
    generator = torch.Generator().manual_seed(task.seed)
    x, y = task.pixels("train", size), torch.from_numpy(np.asarray(task.train_y, dtype=np.int64))
    val_x = task.pixels("val", size) if len(task.val_items) else None
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    counts = np.bincount(task.train_y, minlength=task.n_classes).astype(np.float64)
    weights = torch.tensor(np.where(counts > 0, len(task.train_y) / (task.n_classes * np.maximum(counts, 1)), 0.0),
                           dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    steps_per_epoch = max(1, math.ceil(len(y) / batch_size))
    epochs = int(np.clip(math.ceil(min_steps / steps_per_epoch), MIN_EPOCHS, max_epochs))
    best, best_state, waited, ran, cut_short, steps = -1.0, None, 0, 0, False, 0
    with progress_bar(f"scratch baseline ({label})", epochs) as advance:
        for _ in range(epochs):
            net.train()
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), batch_size):
                batch = order[start:start + batch_size]
                inputs = x[batch]
                if task.mirror:
                    flip = torch.rand(len(batch), generator=generator) < 0.5
                    inputs = torch.where(flip[:, None, None, None], inputs.flip(2), inputs)
                step_started = time.perf_counter()
                optimizer.zero_grad()
                loss_fn(net(inputs), y[batch]).backward()
                optimizer.step()
                steps += 1
                if steps == 2:
                    # The second step, past the first one's warm-up, times the rest; validation passes
                    # about as long as an epoch's forward passes add half.
                    needed = (time.perf_counter() - step_started) * (MIN_EPOCHS * steps_per_epoch - steps) * 1.5
                    if needed > task.seconds_left():
                        raise SkipCandidate(f"even its first {MIN_EPOCHS} epochs would need about {needed:.0f} s "
                                            f"more, {max(task.seconds_left(), 0):.0f} s were left")
            ran += 1
            advance(1)
            if val_x is not None:
                score = float((net_proba(net, val_x).argmax(1) == task.val_y).mean())
                if score > best:
                    best, waited = score, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
                    if waited >= patience:
                        break
            if steps >= 2 and ran < epochs and task.seconds_left() <= 0:  # once the step above was timed
                cut_short = True
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return {"image_size": size, "epochs": ran, "params": sum(p.numel() for p in net.parameters()),
            **({"cut_short": "stopped at the time budget"} if cut_short else {})}


def mlp(task: Task) -> Fitted:
    """A one-hidden-layer MLP (256 units) on the raw pixels of tiny images (at most 32 px a side)."""
    native, gray = image_geometry(task.train_items)
    if native > TINY_SIDE:
        raise SkipCandidate(f"the MLP is for images of at most {TINY_SIDE} px a side, these have {native}")
    net = pixel_net("mlp", native, gray, task.n_classes)
    info = _train_net(net, task, native, label="MLP", min_steps=500, max_epochs=200, lr=1e-3, weight_decay=1e-2,
                      patience=15)
    val_proba = net_proba(net, task.pixels("val", native)) if len(task.val_items) else None
    return Fitted("mlp", f"MLP on raw pixels ({native}x{native} {'gray' if gray else 'RGB'})", val_proba,
                  ImagePredictor(net), {**info, "gray": gray})


def cnn(task: Task, *, size: int | None = None, min_steps: int = 300) -> Fitted:
    """The small CNN (:func:`small_cnn`) trained from random weights, at the images' side between 16 and 64 px."""
    native, gray = image_geometry(task.train_items)
    size = size or int(np.clip(native, 16, 64))
    net = pixel_net("cnn", size, gray, task.n_classes)
    info = _train_net(net, task, size, label="CNN", min_steps=min_steps, max_epochs=40)
    val_proba = net_proba(net, task.pixels("val", size)) if len(task.val_items) else None
    return Fitted("cnn", "small CNN trained from scratch", val_proba, ImagePredictor(net), {**info, "gray": gray})


# -- text -------------------------------------------------------------------------------------------

# Analyzers whose tokens the exported graph reproduces exactly (headstart.exported.text_tfidf_graph):
# word 1-2 grams with case kept, and character 2-5 grams over the text between start/end marks.
WORDS = {"analyzer": "words", "ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1}
CHARS = {"analyzer": "chars", "ngram_range": (2, 5), "sublinear_tf": True, "min_df": 2, "max_features": 200_000}
SAVED = ("analyzer", "ngram_range", "sublinear_tf", "lowercase")


def tfidf_vectorizer(params: dict, vocabulary=None):
    """A scikit-learn TfidfVectorizer for ``params``; ``words`` and ``chars`` name headstart's analyzers."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from headstart.exported.text_tfidf_graph import ANALYZERS

    params = dict(params)
    if params["analyzer"] in ANALYZERS:  # older models saved scikit-learn's own analyzers, which still load
        params["analyzer"] = ANALYZERS[params["analyzer"]][0](*params.pop("ngram_range"))
    return TfidfVectorizer(**params, vocabulary=vocabulary)


class TextPredictor:
    """TF-IDF vectorizers and a linear layer over their stacked features; saved as vocabularies and arrays.

    Args:
        vectorizers: fitted TfidfVectorizers, in feature order.
        weight: the linear layer (k, d).
        bias: its bias (k,).
        params: each vectorizer's settings as saved (``analyzer`` by name, ``ngram_range``...).
    """

    modality = "text"

    def __init__(self, vectorizers: list, weight: np.ndarray, bias: np.ndarray, params: list[dict]):
        self.vectorizers, self.weight, self.bias, self.params = vectorizers, weight, bias, params

    def features(self, texts):
        """Sparse TF-IDF features (n, d) of ``texts``."""
        from scipy.sparse import hstack

        texts = list(texts)
        return hstack([v.transform(texts) for v in self.vectorizers]).tocsr()

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities (n, k) of texts."""
        return _softmax(np.asarray(self.features(texts) @ self.weight.T) + self.bias)

    def vocabularies(self) -> list[list[str]]:
        """Each vectorizer's n-grams in column order."""
        return [sorted(v.vocabulary_, key=v.vocabulary_.get) for v in self.vectorizers]

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(settings with the vocabularies, tensors: the idf weights and the linear layer) to save."""
        settings = {"vectorizers": [
            {"params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}, "vocabulary": vocabulary}
            for params, vocabulary in zip(self.params, self.vocabularies())]}
        tensors = {f"idf_{i}": np.asarray(v.idf_, dtype=np.float64) for i, v in enumerate(self.vectorizers)}
        return settings, {**tensors, "weight": self.weight, "bias": self.bias}

    def graph_blocks(self) -> list[dict] | None:
        """What :func:`headstart.exported.text_tfidf_graph.build_graph` needs; None for analyzers it lacks."""
        if any(p["analyzer"] not in ("words", "chars") for p in self.params):
            return None
        return [{"kind": p["analyzer"], "ngram_range": tuple(p["ngram_range"]), "vocabulary": vocabulary,
                 "idf": v.idf_, "sublinear_tf": p.get("sublinear_tf", False)}
                for p, v, vocabulary in zip(self.params, self.vectorizers, self.vocabularies())]

    @classmethod
    def from_state(cls, settings: dict, tensors: dict[str, np.ndarray]) -> "TextPredictor":
        """The predictor :meth:`state` described (no pickle: vocabularies and arrays only)."""
        vectorizers, params = [], []
        for i, saved in enumerate(settings["vectorizers"]):
            params.append({k: tuple(v) if isinstance(v, list) else v for k, v in saved["params"].items()})
            vectorizer = tfidf_vectorizer(params[-1], saved["vocabulary"])
            vectorizer.idf_ = np.asarray(tensors[f"idf_{i}"], dtype=np.float64)
            vectorizers.append(vectorizer)
        return cls(vectorizers, np.asarray(tensors["weight"], dtype=np.float32),
                   np.asarray(tensors["bias"], dtype=np.float32), params)


def _tfidf(task: Task, parts: list[dict], name: str, method: str) -> Fitted:
    def featurize(texts):  # the features of a TextPredictor whose vocabularies are fitted on ``texts``
        vectorizers = [tfidf_vectorizer(part).fit(list(texts)) for part in parts]
        saved = [{k: v for k, v in part.items() if k in SAVED} for part in parts]
        return TextPredictor(vectorizers, np.zeros((0, 0), np.float32), np.zeros(0, np.float32), saved).features

    train, val = np.array(task.train_items, dtype=object), np.array(task.val_items, dtype=object)
    (transform, model), val_proba, c = _choose_and_fit(featurize, train, task.train_y, val, task.val_y,
                                                       task.n_classes, TEXT_C_GRID, task.seed)
    predictor = transform.__self__
    predictor.weight, predictor.bias = _full_weights(model, task.n_classes)
    return Fitted(name, method, val_proba, predictor, {"C": c})


def tfidf_words_chars(task: Task) -> Fitted:
    """TF-IDF of word 1-2 grams and character 2-5 grams (case kept) with logistic regression."""
    return _tfidf(task, [WORDS, CHARS], "tfidf-words-chars", "TF-IDF + logistic regression")
