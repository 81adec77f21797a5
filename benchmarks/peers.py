"""Peer methods the benchmarks compare headstart with: what a user would write without headstart.

Every peer takes train data, test data and a seed, and returns a dict:

- ``accuracy``: on the test set (the final model);
- ``train_seconds``: wall time from loading the pretrained weights to the trained model,
  not counting the per-epoch test evaluations;
- ``predict_seconds``: wall time to predict the test set once;
- ``seconds``: ``train_seconds + predict_seconds``;
- the torch peers add ``load_seconds`` (loading the pretrained weights, part of ``train_seconds``);
- the training loops add ``epochs: [{epoch, accuracy, seconds, eval_seconds}]``: test accuracy
  after each epoch (the image loop: after the last only, unless ``every_epoch``), ``seconds``
  being the training time spent up to the end of that epoch.

Each peer is a top-level function so that ``common.run_isolated`` can run it in a fresh process.
Labels may be strings or ints; classes are the sorted distinct training labels.
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
from collections import Counter

import numpy as np

try:  # run as `python benchmarks/<script>.py` or imported as `benchmarks.peers`
    from benchmark_data import effnet_lite0, minilm_folder
    from common import Timer
except ImportError:
    from benchmarks.benchmark_data import effnet_lite0, minilm_folder
    from benchmarks.common import Timer


def seed_everything(seed: int) -> None:
    """Seed random, numpy and (if a torch peer has imported it) torch.

    torch is not imported here: importing it costs the scikit-learn peers ~450 MB of memory.
    """
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def encode_labels(train_labels, test_labels):
    """(classes, train ids, test ids); a test label never seen in training gets -1 (always wrong)."""
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}
    y_train = np.array([index[c] for c in train_labels], dtype=np.int64)
    y_test = np.array([index.get(c, -1) for c in test_labels], dtype=np.int64)
    return classes, y_train, y_test


def _result(method, accuracy, train_seconds, predict_seconds, n_train, n_test, **extra) -> dict:
    return {"method": method, "accuracy": float(accuracy), "seconds": train_seconds + predict_seconds,
            "train_seconds": train_seconds, "predict_seconds": predict_seconds,
            "n_train": n_train, "n_test": n_test, **extra}


# ============================================================================ text

def tfidf_logreg(train_texts, train_labels, test_texts, test_labels, seed=0,
                 Cs=(0.01, 0.1, 1.0, 10.0, 100.0)):
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression, C chosen by stratified k-fold CV."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    seed_everything(seed)
    with Timer() as train_timer:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        x_train = vectorizer.fit_transform(train_texts)
        folds = min(5, min(Counter(train_labels).values()))
        if folds >= 2:
            model = LogisticRegressionCV(
                Cs=list(Cs), l1_ratios=(0.0,), scoring="accuracy", max_iter=2000,
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed), use_legacy_attributes=False)
            model.fit(x_train, train_labels)
            chosen_c = float(model.C_)
        else:  # a class with a single example: no CV possible, sklearn's default C
            model = LogisticRegression(C=1.0, max_iter=2000).fit(x_train, train_labels)
            chosen_c = 1.0
    with Timer() as predict_timer:
        predictions = model.predict(vectorizer.transform(test_texts))
    accuracy = np.mean(np.asarray(predictions) == np.asarray(test_labels))
    return _result("tfidf_logreg", accuracy, train_timer.seconds, predict_timer.seconds,
                   len(train_texts), len(test_texts), C=chosen_c, cv_folds=folds)


def setfit_peer(train_texts, train_labels, test_texts, test_labels, seed=0,
                batch_size=16, num_epochs=1, num_iterations=None, max_steps=-1):
    """SetFit on all-MiniLM-L6-v2 with its default recipe (contrastive body tuning, then a
    logistic-regression head). ``num_iterations=None`` is SetFit's default pair sampling
    ('oversampling'); ``num_iterations``/``max_steps`` are only for cutting smoke runs short."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    torch.set_num_threads(2)
    seed_everything(seed)
    classes, y_train, y_test = encode_labels(train_labels, test_labels)
    train_dataset = Dataset.from_dict({"text": list(train_texts), "label": y_train.tolist()})

    with tempfile.TemporaryDirectory() as scratch, Timer() as train_timer:
        with Timer() as load_timer:
            model = SetFitModel.from_pretrained(minilm_folder(), device="cpu")
        args = TrainingArguments(
            output_dir=scratch, batch_size=batch_size, num_epochs=num_epochs,
            num_iterations=num_iterations, max_steps=max_steps, seed=seed,
            report_to="none", save_strategy="no", show_progress_bar=False)
        trainer = Trainer(model=model, args=args, train_dataset=train_dataset)
        trainer.train()
    with Timer() as predict_timer:
        predictions = model.predict(list(test_texts), use_labels=False)
    predictions = np.asarray(predictions.cpu() if hasattr(predictions, "cpu") else predictions)
    accuracy = np.mean(predictions.astype(np.int64) == y_test)
    return _result("setfit", accuracy, train_timer.seconds, predict_timer.seconds,
                   len(train_texts), len(test_texts), load_seconds=load_timer.seconds,
                   batch_size=batch_size, num_epochs=num_epochs,
                   num_iterations=num_iterations, sampling_strategy=args.sampling_strategy)


def _text_accuracy(model, tokenizer, texts, y, max_length, batch_size=64) -> float:
    import torch
    model.eval()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            predictions.append(model(**batch).logits.argmax(dim=-1))
    return float((torch.cat(predictions).numpy() == y).mean())


def plain_text_finetune(train_texts, train_labels, test_texts, test_labels, seed=0,
                        epochs=3, batch_size=16, lr=2e-5, weight_decay=0.01, max_length=128,
                        max_steps=None):
    """Tutorial-style full fine-tuning of MiniLM with a sequence-classification head.

    All layers trainable from the start, AdamW + OneCycleLR, shuffled batches padded to the
    longest item. ``max_steps`` (total optimizer steps) only cuts smoke runs short.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(2)
    seed_everything(seed)
    classes, y_train, y_test = encode_labels(train_labels, test_labels)
    train_texts, test_texts = list(train_texts), list(test_texts)
    steps_per_epoch = math.ceil(len(train_texts) / batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)

    history, step = [], 0
    with Timer() as timer:
        folder = minilm_folder()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(classes))
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
        generator = torch.Generator().manual_seed(seed)
    train_seconds = load_seconds = timer.seconds

    for epoch in range(1, epochs + 1):
        with Timer() as timer:
            model.train()
            order = torch.randperm(len(train_texts), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                if step >= total_steps:
                    break
                idx = order[start:start + batch_size]
                batch = tokenizer([train_texts[i] for i in idx], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt")
                loss = model(**batch, labels=torch.from_numpy(y_train[idx])).loss
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
        train_seconds += timer.seconds
        with Timer() as eval_timer:
            accuracy = _text_accuracy(model, tokenizer, test_texts, y_test, max_length)
        history.append({"epoch": epoch, "accuracy": accuracy, "seconds": train_seconds,
                        "eval_seconds": eval_timer.seconds})
        if step >= total_steps:
            break

    return _result("plain_text_finetune", history[-1]["accuracy"], train_seconds,
                   history[-1]["eval_seconds"], len(train_texts), len(test_texts),
                   load_seconds=load_seconds, epochs=history,
                   steps=step, lr=lr, batch_size=batch_size, max_length=max_length)


# ============================================================================ images

def pixel_logreg(train_images, train_labels, test_images, test_labels, seed=0,
                 Cs=(0.001, 0.01, 0.1, 1.0, 10.0), max_iter=5000):
    """Logistic regression on raw pixels in [0, 1] (standardized); C chosen on a held-out 20%."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seed_everything(seed)
    x_train = np.asarray(train_images, dtype=np.float32).reshape(len(train_images), -1) / 255.0
    x_test = np.asarray(test_images, dtype=np.float32).reshape(len(test_images), -1) / 255.0
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)

    def make_model(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))

    with Timer() as train_timer:
        counts = Counter(y_train.tolist())
        n_holdout = math.ceil(0.2 * len(y_train))
        stratify = y_train if min(counts.values()) >= 2 and n_holdout >= len(counts) else None
        x_fit, x_val, y_fit, y_val = train_test_split(x_train, y_train, test_size=0.2,
                                                      random_state=seed, stratify=stratify)
        scores = {c: make_model(c).fit(x_fit, y_fit).score(x_val, y_val) for c in Cs}
        best_c = max(Cs, key=lambda c: (scores[c], -c))  # ties: the stronger regularization
        model = make_model(best_c).fit(x_train, y_train)
    with Timer() as predict_timer:
        predictions = model.predict(x_test)
    logreg = model[-1]
    return _result("pixel_logreg", np.mean(predictions == y_test), train_timer.seconds,
                   predict_timer.seconds, len(y_train), len(y_test), C=float(best_c),
                   holdout_scores={str(c): float(s) for c, s in scores.items()},
                   converged=bool(np.all(logreg.n_iter_ < max_iter)))


def images_to_tensor(images, image_size, flip_generator=None):
    """uint8 (n, h, w) grayscale -> float (n, 3, image_size, image_size) normalized (x - 0.5) / 0.5;
    with a generator, each image is flipped left-right with probability 0.5."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    if flip_generator is not None:
        flip = torch.rand(len(x), generator=flip_generator) < 0.5
        x[flip] = x[flip].flip(-1)
    x = x.expand(-1, 3, -1, -1)
    return (x - 0.5) / 0.5


def _image_accuracy(model, images, y, image_size, batch_size=256) -> float:
    import torch
    model.eval()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images_to_tensor(images[start:start + batch_size], image_size)
            predictions.append(model(x).argmax(dim=-1))
    return float((torch.cat(predictions).numpy() == y).mean())


def plain_image_finetune(train_images, train_labels, test_images, test_labels, seed=0,
                         epochs=4, batch_size=64, lr=1e-3, image_size=112, max_steps=None, every_epoch=False):
    """Tutorial-style full fine-tuning of EfficientNet-Lite0 (ImageNet) with a new linear classifier.

    Grayscale upscaled to ``image_size`` and replicated to 3 channels, random horizontal flips,
    AdamW + OneCycleLR, all layers trainable. ``max_steps`` only cuts smoke runs short.
    ``every_epoch`` tests after each epoch (a learning curve; each test pass over 10,000 images
    costs minutes here and is outside the timing), otherwise only after the last.
    """
    import torch
    from torch import nn

    torch.set_num_threads(2)
    seed_everything(seed)
    classes, y_train, y_test = encode_labels(np.asarray(train_labels).tolist(),
                                             np.asarray(test_labels).tolist())
    train_images, test_images = np.asarray(train_images), np.asarray(test_images)
    steps_per_epoch = math.ceil(len(train_images) / batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)

    history, step = [], 0
    with Timer() as timer:
        model = effnet_lite0(image_size=image_size)  # 'SAME' padding computed for the size fed
        model._fc = nn.Linear(model._fc.in_features, len(classes))
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(seed)
    train_seconds = load_seconds = timer.seconds

    for epoch in range(1, epochs + 1):
        with Timer() as timer:
            model.train()
            order = torch.randperm(len(train_images), generator=generator).numpy()
            for start in range(0, len(order), batch_size):
                if step >= total_steps:
                    break
                idx = order[start:start + batch_size]
                x = images_to_tensor(train_images[idx], image_size, flip_generator=generator)
                loss = loss_fn(model(x), torch.from_numpy(y_train[idx]))
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
        train_seconds += timer.seconds
        last = epoch == epochs or step >= total_steps
        if not (every_epoch or last):
            continue
        with Timer() as eval_timer:
            accuracy = _image_accuracy(model, test_images, y_test, image_size)
        history.append({"epoch": epoch, "accuracy": accuracy, "seconds": train_seconds,
                        "eval_seconds": eval_timer.seconds})
        if last:
            break

    return _result("plain_image_finetune", history[-1]["accuracy"], train_seconds,
                   history[-1]["eval_seconds"], len(train_images), len(test_images),
                   load_seconds=load_seconds, epochs=history,
                   steps=step, lr=lr, batch_size=batch_size, image_size=image_size)
