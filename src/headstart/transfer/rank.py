"""Rank candidate backbones before fine-tuning any.

Transferability scores come from cached features of the training split, beside what each backbone
costs (parameters, feature size, ms per item). A candidate that is not installed, or fails to load or
to score, is skipped and listed with the reason; the ranking goes on with the others.

Example:
    ranking = rank_backbones(train, ["minilm-l6", "st:all-mpnet-base-v2"])
    print(ranking.table()); ranking.save("runs/rank")    # ranking.json, ranking.png, ranking.html
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
from matplotlib.ticker import ScalarFormatter
from rich.markup import escape

from headstart.backbones import Backbone, backbone_entry, backbone_modality, create_backbone, list_backbones
from headstart.compute.device import current_device, placed
from headstart.data.dataset import Dataset
from headstart.errors import BackboneError, DataError, HeadstartError, first_line
from headstart.features.extract import cached_features, forward_function
from headstart.output import figure_png, new_figure
from headstart.progress import say
from headstart.transfer import page
from headstart.transfer.rank_guide import accuracy_range_text, guide, predicted_accuracy, prediction_note
from headstart.transfer.scores import SCORES, hscore, leep, logme, nce, nce_from_features, probe_accuracy

# H-score: it ordered candidates by their fine-tuned accuracy best of the scores in the ranking
# benchmark (benchmarks/README.md).
DEFAULT_SCORE = "hscore"
TIMING_ITEMS = 16


def source_probabilities(backbone, features: np.ndarray) -> np.ndarray | None:
    """Source-class (ImageNet) probabilities from a backbone's kept classifier, or None without one."""
    classifier = getattr(backbone, "source_classifier", None)
    if classifier is None:
        return None
    import torch

    with torch.no_grad():
        logits = classifier.eval()(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))).double()
        return torch.softmax(logits, dim=1).numpy()


def score_features(features: np.ndarray, labels: np.ndarray, *, source_proba: np.ndarray | None = None,
                   seed: int = 0) -> dict[str, float | None]:
    """Every score of :data:`SCORES` for one backbone's features.

    LEEP is None without ``source_proba``; NCE uses the source classes where there are some and
    k-means clusters otherwise.
    """
    scores: dict[str, float | None] = {"logme": logme(features, labels), "hscore": hscore(features, labels)}
    if source_proba is not None:
        scores["nce"] = nce(source_proba.argmax(axis=1), labels)
        scores["leep"] = leep(source_proba, labels)
    else:
        scores["nce"] = nce_from_features(features, labels, seed=seed)
        scores["leep"] = None
    scores["probe"] = probe_accuracy(features, labels, seed=seed)
    return scores


def ms_per_item(backbone, items: Sequence[str], *, engine: str = "auto", cache_dir=None,
                n: int = TIMING_ITEMS) -> float:
    """Measured milliseconds per item of preprocessing plus a frozen forward pass on this machine.

    The median of three timed batches of ``n`` items, after one untimed warm-up.
    """
    sample = list(items[:n])
    forward, _ = forward_function(backbone, engine, cache_dir)
    with placed(backbone.module, current_device()):  # measured on the device that will run it
        forward(backbone.preprocess(sample))
        times = []
        for _ in range(3):
            started = time.perf_counter()
            forward(backbone.preprocess(sample))
            times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times)) / len(sample)


def pareto_front(cost: Sequence[float], value: Sequence[float]) -> list[bool]:
    """Whether each point is on the Pareto front of low cost and high value.

    A point is on it when no other point costs as little or less and is worth as much or more,
    with one of the two strictly.
    """
    cost, value = np.asarray(cost, float), np.asarray(value, float)
    return [not bool(np.any((cost <= c) & (value >= v) & ((cost < c) | (value > v))))
            for c, v in zip(cost, value)]


def stratified_subset(labels: np.ndarray, max_items: int, seed: int) -> np.ndarray:
    """At most ``max_items`` positions, each class in its share (at least 2 a class), sorted."""
    if len(labels) <= max_items:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        take = max(2, int(round(max_items * len(pool) / len(labels))))
        keep.append(rng.choice(pool, size=min(take, len(pool)), replace=False))
    return np.sort(np.concatenate(keep))


@dataclass
class Ranking:
    """Candidates with their scores and cost, best first by ``score``.

    ``rows``: dicts with ``backbone``, ``params``, ``feature_dim``, ``ms_per_item``, one key a
    score of :data:`SCORES`, ``predicted_accuracy`` (the fine-tuned accuracy range the probe score
    predicts, :mod:`~headstart.transfer.rank_guide`), ``pareto`` and ``seconds`` (features and
    scoring). ``skipped``: ``{"backbone", "reason"}`` for candidates that are not installed
    (``install`` then holds the pip command that adds them) or failed to load or to score.
    """

    rows: list[dict]
    score: str = DEFAULT_SCORE
    n_items: int = 0
    skipped: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stem: ClassVar[str] = "ranking"

    @property
    def best(self) -> str:
        """The best candidate's name by the ranking's score."""
        return self.rows[0]["backbone"]

    def to_dict(self) -> dict:
        """Everything ``ranking.json`` holds: the score, the rows and the skipped candidates."""
        return {"score": self.score, "score_description": SCORES[self.score], "n_items": self.n_items,
                "seconds": self.seconds, "rows": self.rows, "skipped": self.skipped, "notes": self.notes()}

    def sentence(self) -> str:
        """The best candidate by the score, and the accuracy-cost Pareto front."""
        count = f"{len(self.rows)} candidate" + ("s" if len(self.rows) != 1 else "")
        if self.skipped:
            count += f", {len(self.skipped)} skipped"
        text = f"Best by {self.score}: {self.best} ({count}, {self.n_items} training items, {self.seconds:.0f} s)."
        front = [r["backbone"] for r in self.rows if r["pareto"]]
        return text + f" Accuracy-cost Pareto front: {', '.join(front)}."

    def notes(self) -> list[str]:
        """Lines to print under the sentence: each skipped candidate and why, then what the numbers mean."""
        lines = [f"Skipped {s['backbone']}: {s['reason']}" for s in self.skipped]
        return lines + [guide(self.score), prediction_note(self.n_items)]

    def _table(self) -> tuple[list[str], list[list]]:
        columns = ["rank", "backbone", *SCORES, "predicted accuracy", "params (M)", "dim", "ms/item", "Pareto"]
        rows = [[i + 1, r["backbone"], *[r[s] for s in SCORES], accuracy_range_text(r["probe"]), r["params"] / 1e6,
                 r["feature_dim"], r["ms_per_item"], "yes" if r["pareto"] else ""] for i, r in enumerate(self.rows)]
        return columns, rows

    def table(self) -> str:
        """The ranking as a plain-text table, best first."""
        return page.table_text(*self._table())

    def plot(self) -> bytes:
        """PNG: cross-validated probe accuracy (expected accuracy) against ms per item, front marked."""
        fig = new_figure(7.5, 4.8)
        ax = fig.add_subplot()
        cost = np.array([r["ms_per_item"] for r in self.rows])
        accuracy = np.array([r["probe"] for r in self.rows])
        on = np.array([r["pareto"] for r in self.rows])
        size = 30 + 170 * np.sqrt(np.array([r["params"] for r in self.rows]) / max(r["params"] for r in self.rows))
        ax.scatter(cost[~on], accuracy[~on], s=size[~on], color="#9aa5b1", label="dominated", zorder=2)
        ax.scatter(cost[on], accuracy[on], s=size[on], color="#d62728", label="Pareto front", zorder=3)
        order = np.argsort(cost[on])
        ax.step(cost[on][order], accuracy[on][order], where="post", color="#d62728", linewidth=1.2, zorder=1)
        for r in self.rows:
            ax.annotate(r["backbone"][-28:], (r["ms_per_item"], r["probe"]), xytext=(6, 4),
                        textcoords="offset points", fontsize=8)
        if cost.max() / max(cost.min(), 1e-9) > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set(xlabel="ms per item (preprocessing + frozen forward pass, this machine)",
               ylabel="cross-validated probe accuracy", title="Expected accuracy against cost (size: parameters)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
        return figure_png(fig)

    def save(self, folder: str | Path) -> Path:
        """Write ``ranking.json``, ``ranking.png`` and ``ranking.html`` into ``folder``."""
        picture = self.plot()
        columns, rows = self._table()
        notes = self.notes() + [f"{s}: {SCORES[s]}." for s in SCORES]
        return page.write_result(folder, self.stem, payload=self.to_dict(), picture=picture,
                                 title="headstart: backbone ranking", sentences=[self.sentence()],
                                 sections=[{"title": f"Ranked by {self.score}", "columns": columns, "rows": rows,
                                            "text": notes},
                                           {"title": "Expected accuracy against cost", "png": picture}])


def candidate_names(modality: str, names: Sequence | None) -> tuple[list, bool]:
    """The candidates (registry names or Backbone objects) and whether the user chose them.

    A name of the other modality, or one the registry does not know, is an error at once.
    """
    if names:
        for name in names:
            kind = name.modality if isinstance(name, Backbone) else backbone_modality(name)
            if kind != modality:
                label = name.name if isinstance(name, Backbone) else name
                raise HeadstartError(f"backbone '{label}' is for {kind}, the data are {modality}",
                                     where="--backbones", fix=f"list {modality} backbones only")
        return list(dict.fromkeys(names)), True
    return [entry.name for entry in list_backbones(modality)], False


def rank_backbones(train: Dataset, backbones: Sequence | None = None, *, score: str = DEFAULT_SCORE,
                   max_items: int | None = 2000, seed: int = 0, engine: str = "auto", cache_dir=None,
                   backbone_options: dict | None = None) -> Ranking:
    """Score every candidate on the labeled ``train`` items and rank them by ``score``.

    Args:
        train: labeled items (the training split).
        backbones: registry names (or built :class:`Backbone` objects, such as a random-init
            reference); default: every registered backbone of the data's modality.
        score: the score to rank by, one of :data:`SCORES`.
        max_items: score a stratified subset of at most this many items (None: all).
        seed: seeds the subset and the scores' folds and clusters.
        engine: where the frozen forward passes run: ``auto``, ``onnx`` or ``torch``.
        cache_dir: the feature cache's folder (None: the default one).
        backbone_options: ``create_backbone`` options (``image_size``, ``max_length``).
    """
    if score not in SCORES:
        raise HeadstartError(f"unknown score '{score}'", where="--score", fix=f"use one of {', '.join(SCORES)}")
    if train.labels is None or len(set(train.labels)) < 2:
        raise HeadstartError("ranking needs labeled training items of at least two classes", where=train.source)
    started = time.perf_counter()
    names, chosen = candidate_names(train.modality, backbones)
    classes = train.classes
    labels = train.label_ids(classes)
    keep = stratified_subset(labels, max_items, seed) if max_items else np.arange(len(labels))
    items, hashes, labels = [train.items[i] for i in keep], [train.hashes[i] for i in keep], labels[keep]
    rows, skipped = [], []
    for number, name in enumerate(names, start=1):
        label = name.name if isinstance(name, Backbone) else name
        say(f"[{number}/{len(names)}] {label}")
        net = name if isinstance(name, Backbone) else _load_candidate(name, backbone_options or {}, skipped)
        if net is None:
            continue
        begun = time.perf_counter()
        try:
            features = cached_features(net, items, hashes, engine=engine, cache_dir=cache_dir)
            scores = score_features(features, labels, source_proba=source_probabilities(net, features), seed=seed)
            cost = ms_per_item(net, items, engine=engine, cache_dir=cache_dir)
        except DataError:
            raise  # the data's fault, the same for every candidate
        except Exception as error:  # noqa: BLE001 - one candidate's failure must not end the ranking
            _skip(skipped, label, f"failed while scoring: {type(error).__name__}: {first_line(error)}")
            continue
        rows.append({"backbone": net.name, **scores, "predicted_accuracy": list(predicted_accuracy(scores["probe"])),
                     "params": net.num_params, "feature_dim": net.feature_dim, "ms_per_item": cost,
                     "seconds": time.perf_counter() - begun})
    if not rows:
        reasons = "; ".join(f"{s['backbone']}: {s['reason']}" for s in skipped)
        raise BackboneError(f"no {train.modality} backbone could be ranked ({reasons})", where="--backbones",
                            fix="see each candidate's reason" if chosen else
                            "install a backbone's package, or name backbones with --backbones")
    for row, on in zip(rows, pareto_front([r["ms_per_item"] for r in rows], [r["probe"] for r in rows])):
        row["pareto"] = on
    rows.sort(key=lambda r: -np.inf if r[score] is None else r[score], reverse=True)
    return Ranking(rows, score=score, n_items=len(items), skipped=skipped, seconds=time.perf_counter() - started)


def _load_candidate(name: str, options: dict, skipped: list[dict]) -> Backbone | None:
    """The backbone called ``name``, or None with the reason added to ``skipped``.

    A registered backbone whose packages are missing is "not installed", with the pip command that
    adds it; any other failure to load is reported with its error.
    """
    entry = backbone_entry(name)
    try:
        return create_backbone(name, **options)
    except Exception as error:  # noqa: BLE001 - one candidate's failure must not end the ranking
        missing = entry.missing_packages() if entry else []
        if missing:
            needs = missing[0] if len(missing) == 1 else f"{missing[0]} and {len(missing) - 1} more packages"
            _skip(skipped, name, f"not installed (needs {needs}; {entry.install_command()} adds it)",
                  install=entry.install_command(), missing=missing)
        else:
            said = str(error) if isinstance(error, HeadstartError) else f"{type(error).__name__}: {first_line(error)}"
            _skip(skipped, name, f"failed to load: {said}")
        return None


def _skip(skipped: list[dict], name: str, reason: str, **details) -> None:
    skipped.append({"backbone": name, "reason": reason, **details})
    say(f"  skipped {name}: {escape(reason)}")  # escaped: say() reads rich markup, where [models] is a style
