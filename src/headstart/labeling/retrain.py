"""Retraining as labels arrive: a probe in seconds, a fine-tune as a queued job; labeling never waits.

- :func:`retrain_probe` fits the loop's probe (:func:`fit_loop_probe`: a fixed prior, pool-scaled
  features) on the settled labels' cached features, stores it as a new model version with its
  out-of-fold accuracy and refreshes the pool's pre-labels.
- :func:`due` says whether ``retrain_every`` new labels have arrived since the newest probe.
- :class:`BackgroundRetrainer` runs in a thread beside whatever takes labels: ``notify()`` after a
  label only sets an event; the thread retrains when due and runs queued fine-tune jobs. The store
  is WAL-mode SQLite or PostgreSQL, so its reads never block label writes.
- :func:`queue_finetune` adds a fine-tune job; :func:`run_jobs` (``headstart label retrain --worker``)
  runs queued jobs: the labels are exported and trained with ``headstart.fit(mode="finetune")``
  into a model folder whose path is kept with the version, and the pool's pre-labels are
  refreshed from it. (``next`` keeps ranking with the newest probe: its probabilities come from
  cached features in milliseconds.)
"""

from __future__ import annotations

import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_tensors, save as save_tensors
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from headstart.errors import LabelingError
from headstart.learn.probe import SMALL_DATA, LinearHead, _fit, fit_probe
from headstart.progress import say


def head_bytes(head: LinearHead) -> bytes:
    return save_tensors({"weight": np.ascontiguousarray(head.weight), "bias": np.ascontiguousarray(head.bias)})


def load_head(data: bytes) -> LinearHead:
    tensors = load_tensors(data)
    return LinearHead(tensors["weight"], tensors["bias"])


# The labeling loop's probe: a fixed Gaussian prior on the weights (C) over features standardized
# with the whole pool's statistics, no class re-weighting. Why not cross-validation, as `headstart
# fit` does: active learning chooses the labels, so they crowd the class boundary, and a C chosen
# by cross-validation on them is too weak a prior (on SST-2, minilm-l6, 2 seeds: margin sampling
# needed 530 labels to reach 95% of the full-pool probe with C so chosen, even with the
# one-standard-error rule, and 290 with a fixed C=0.01). A fixed prior does not
# depend on how the labels were chosen. The pool's statistics (every item's features are cached)
# replace the labeled items': ten labels give no usable per-feature scale, and labels chosen near
# the boundary a biased one. "Balanced" class weights are left out because the labeled classes'
# proportions are the strategy's doing, not the pool's (on SST-2 they cost margin sampling 140
# labels). benchmarks/active_learning.py measures all of this.
LOOP_C = 0.01


def pool_scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of every feature over the pool; the scale has a floor (a near-constant feature
    would otherwise get a huge weight once the scaling is folded into the head)."""
    mean, scale = features.mean(axis=0), features.std(axis=0)
    return mean, np.maximum(scale, 1e-2 * np.median(scale) + 1e-12)


def fit_loop_probe(x: np.ndarray, y: np.ndarray, n_classes: int, scaling: tuple[np.ndarray, np.ndarray], *,
                   c: float = LOOP_C, seed: int = 0) -> LinearHead:
    """The labeling loop's probe (see LOOP_C) on labeled features ``x`` (n, d) and class ids ``y``;
    ``scaling`` is :func:`pool_scaling` of the whole pool. The scaling is folded into the head."""
    mean, scale = scaling
    classes = np.unique(y)
    if len(classes) < 2:
        raise LabelingError(f"the probe needs labels of at least two classes; there are {len(y)} labels of "
                            f"{len(classes)} class(es)", where="labels", fix="label items of another class")
    # newton-cg: few Hessian-vector iterations on wide features (lbfgs was many times slower here).
    model = LogisticRegression(C=c, solver="newton-cg", max_iter=1000, random_state=seed)
    model.fit((x - mean) / scale, y)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: logits [0, z] give the same softmax as scikit-learn's one row
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    weight = coef / scale  # w·(x - mu)/sigma + b = (w/sigma)·x + (b - w·mu/sigma)
    full_weight = np.zeros((n_classes, x.shape[1]))
    full_bias = np.full(n_classes, -1e4)  # a class without labels is never predicted
    full_weight[model.classes_], full_bias[model.classes_] = weight, intercept - weight @ mean
    return LinearHead(full_weight.astype(np.float32), full_bias.astype(np.float32))


def fit_labeled_probe(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> tuple[LinearHead, dict]:
    """headstart's probe with C chosen by cross-validation below SMALL_DATA items, by a stratified 20%
    hold-out above; a class with a single label gets a fixed C=1 (nothing to validate). For labels not
    chosen by active learning: label issues, and the benchmark's probe on the whole labeled pool."""
    counts = np.bincount(y, minlength=n_classes)[np.unique(y)]
    if counts.min() < 2:
        return _fit(x, y, n_classes, 1.0, seed), {"C": 1.0, "selection": "fixed (a class has one label)",
                                                  "val_accuracy": None, "val_loss": None}
    if len(y) < SMALL_DATA:
        return fit_probe(x, y, x[:0], y[:0], n_classes, seed=seed)
    train, val = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    return fit_probe(x[train], y[train], x[val], y[val], n_classes, seed=seed)


def softmax_proba(head: LinearHead, features: np.ndarray) -> np.ndarray:
    logits = head.logits(features)
    logits = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def retrain_probe(project, *, seed: int = 0, refresh: bool = True) -> int:
    """Fit the loop's probe on the settled labels, store it as a model version with its out-of-fold
    accuracy on those labels (which errs low: chosen labels are harder than the pool's average item);
    returns the version id."""
    from headstart.labeling.issues import out_of_fold_proba

    positions, y = project.resolved()
    if len(np.unique(y)) < 2:
        raise LabelingError(f"the probe needs labels of at least two classes; there are {len(y)} labels of "
                            f"{len(np.unique(y))} class(es)", where=project.store.where,
                            fix="label more items (`headstart label next` picks diverse ones)")
    features = project.features()
    scaling = pool_scaling(features)
    head = fit_loop_probe(features[positions], y, len(project.classes), scaling, seed=seed)
    held_out = out_of_fold_proba(features[positions], y, len(project.classes), seed=seed, c=LOOP_C, scaling=scaling)
    metrics = {"accuracy": float((held_out.argmax(axis=1) == y).mean()), "accuracy_estimate": "5-fold out-of-fold",
               "C": LOOP_C, "n_labels": int(len(y)),
               "label_counts": np.bincount(y, minlength=len(project.classes)).tolist()}
    version = project.store.add_model_version("probe", status="done", n_labels=int(len(y)), metrics=metrics,
                                              weights=head_bytes(head))
    if refresh:
        refresh_predictions(project, head, version)
    return version


def refresh_predictions(project, head: LinearHead, version: int) -> None:
    """Pre-label the whole pool with ``head``: predicted label, confidence and probabilities."""
    proba = softmax_proba(head, project.features())
    winners = proba.argmax(axis=1)
    project.store.replace_predictions(version, [row[0] for row in project.table()],
                                      [project.classes[i] for i in winners], proba.max(axis=1), proba)


def due(project) -> bool:
    """Whether ``retrain_every`` labels (person and import) arrived since the newest probe."""
    every = int(project.settings.get("retrain_every", 50))
    latest = project.store.latest_model("probe")
    have = project.store.count_labels()
    return have - (latest.n_labels if latest else 0) >= every if every > 0 else False


def queue_finetune(project, **config) -> int:
    """Queue a fine-tune of the project's backbone on the settled labels; returns the version id.
    ``config``: :class:`headstart.FinetuneConfig` fields (epochs, lr, strategy, ...)."""
    import headstart

    headstart.FinetuneConfig(**config)  # a wrong field fails now, not in the worker
    return project.store.add_model_version("finetune", status="queued", metrics={"config": config})


def run_finetune(project, version, out_root: str | Path) -> None:
    """Run one fine-tune job: export the labels, ``headstart.fit(mode="finetune")``, record the result.
    The from-scratch baseline is skipped: this model is for pre-labels, not a report."""
    import headstart
    from headstart.labeling.exchange import export_labels

    store = project.store
    try:
        with tempfile.TemporaryDirectory(prefix="headstart-finetune-") as tmp:
            data = export_labels(project, Path(tmp) / "labels.csv", include_model=False)
            folder = Path(out_root) / f"model-v{version.id}"
            config = headstart.FinetuneConfig(**(version.metrics or {}).get("config", {}))
            model = headstart.fit(data, backbone=store.project.backbone, mode="finetune", out=folder,
                                  finetune_config=config, baseline=False, **project.backbone_options)
        metrics = {k: v for k, v in model.metrics.items() if isinstance(v, (int, float))}
        table = project.table()
        proba = model.predict_proba([row[2] for row in table])  # pre-labels from the fine-tuned model
        store.replace_predictions(version.id, [row[0] for row in table],
                                  [model.classes[i] for i in proba.argmax(axis=1)], proba.max(axis=1), proba)
        store.update_model_version(version.id, status="done", path=str(folder), n_labels=store.count_labels(),
                                   metrics={**(version.metrics or {}), **metrics})
    except Exception as error:  # noqa: BLE001 - a failed job is recorded, the worker goes on
        store.update_model_version(version.id, status="failed", error=f"{error}\n{traceback.format_exc()}")


def run_jobs(project, out_root: str | Path, *, kind: str | None = None) -> int:
    """Run queued jobs until none is left; returns how many ran."""
    ran = 0
    while (job := project.store.claim_job(kind)) is not None:
        say(f"running {job.kind} job v{job.id}")
        if job.kind == "finetune":
            run_finetune(project, job, out_root)
        else:
            project.store.update_model_version(job.id, status="failed", error=f"unknown job kind {job.kind}")
        ran += 1
    return ran


class BackgroundRetrainer:
    """A thread that retrains the probe when :func:`due` and runs queued jobs; ``notify()`` is instant.

        retrainer = BackgroundRetrainer(project).start()
        project.add(item, label); retrainer.notify()
        ...
        retrainer.stop()
    """

    def __init__(self, project, *, out_root: str | Path | None = None, poll_seconds: float = 5.0, seed: int = 0):
        self.project = project
        self.out_root = Path(out_root) if out_root else None
        self.poll_seconds = poll_seconds
        self.seed = seed
        self.versions: list[int] = []
        self.errors: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headstart-retrainer", daemon=True)

    def start(self) -> "BackgroundRetrainer":
        self._thread.start()
        return self

    def notify(self) -> None:
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the thread has looked at the store since the last notify (for tests and scripts)."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                if due(self.project):
                    self.versions.append(retrain_probe(self.project, seed=self.seed))
                if self.out_root is not None:
                    run_jobs(self.project, self.out_root)
            except LabelingError as error:  # e.g. one class only so far: try again after more labels
                self.errors.append(str(error))
            except Exception:  # noqa: BLE001 - the thread must not die silently
                self.errors.append(traceback.format_exc())
            self._idle.set()
