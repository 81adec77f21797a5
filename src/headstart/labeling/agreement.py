"""Agreement between annotators, consensus labels with annotator quality, disagreements to review.

- Cohen's kappa for each pair of annotators on the items both labeled (scikit-learn);
- Fleiss' kappa over the items with the most common number of labels (statsmodels; it needs
  the same number of raters on every item);
- Krippendorff's alpha, nominal, over every multi-labeled item (the ``krippendorff`` package;
  missing ratings allowed);
- consensus labels and per-annotator quality from cleanlab's multi-annotator module (CROWDLAB),
  with the newest probe's probabilities; a majority vote before there is a model.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np

from headstart.errors import LabelingError


def rating_matrix(project) -> tuple[list[str], list[str], np.ndarray]:
    """(item ids, annotators, ratings) of items labeled by two or more annotators; ratings is
    (items, annotators) of class ids, NaN where an annotator gave none. Model labels are left out."""
    lookup = {name: i for i, name in enumerate(project.classes)}
    by_item: dict[str, dict[str, int]] = {}
    for record in project.current_labels(("person", "import")):
        by_item.setdefault(record.item, {})[record.annotator] = lookup[record.label]
    items = [item for item, given in by_item.items() if len(given) >= 2]
    annotators = sorted({a for item in items for a in by_item[item]})
    column = {a: j for j, a in enumerate(annotators)}
    ratings = np.full((len(items), len(annotators)), np.nan)
    for i, item in enumerate(items):
        for annotator, label in by_item[item].items():
            ratings[i, column[annotator]] = label
    return items, annotators, ratings


def cohen_pairs(annotators: list[str], ratings: np.ndarray) -> list[dict]:
    from sklearn.metrics import cohen_kappa_score

    pairs = []
    for a, b in combinations(range(len(annotators)), 2):
        both = ~np.isnan(ratings[:, a]) & ~np.isnan(ratings[:, b])
        if both.sum() < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one label used throughout: kappa is undefined (NaN)
            kappa = cohen_kappa_score(ratings[both, a].astype(int), ratings[both, b].astype(int))
        pairs.append({"annotators": [annotators[a], annotators[b]], "items": int(both.sum()),
                      "agreement": float((ratings[both, a] == ratings[both, b]).mean()),
                      "cohen_kappa": None if np.isnan(kappa) else float(kappa)})
    return pairs


def fleiss(ratings: np.ndarray, n_classes: int) -> tuple[float | None, int]:
    """Fleiss' kappa on the items with the most common number of ratings, and how many items that is."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    n_rated = (~np.isnan(ratings)).sum(axis=1)
    if len(n_rated) < 2:
        return None, 0
    common = np.bincount(n_rated).argmax()
    rows = ratings[n_rated == common]
    table = np.stack([(rows == c).sum(axis=1) for c in range(n_classes)], axis=1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = fleiss_kappa(table, method="fleiss")
    return (None if not np.isfinite(value) else float(value)), int(len(rows))


def krippendorff_alpha(ratings: np.ndarray) -> float | None:
    import krippendorff

    if ratings.shape[0] < 2 or len(np.unique(ratings[~np.isnan(ratings)])) < 2:
        return None  # alpha is undefined when one value is used throughout
    return float(krippendorff.alpha(reliability_data=ratings.T, level_of_measurement="nominal"))


def consensus(ratings: np.ndarray, annotators: list[str], proba: np.ndarray | None) -> tuple[np.ndarray, dict, str]:
    """Consensus class ids (items,), annotator quality {name: score} and the method used."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator, get_majority_vote_label

    frame = pd.DataFrame(ratings, columns=annotators)
    if proba is not None and len(frame) >= 2:
        present = np.unique(ratings[~np.isnan(ratings)]).astype(int)
        if len(present) >= 2:  # cleanlab needs every column of pred_probs used by some label
            remap = {c: i for i, c in enumerate(present)}
            sub = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-12, None)
            frame_sub = frame.apply(lambda col: col.map(lambda v: np.nan if np.isnan(v) else remap[int(v)]))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = get_label_quality_multiannotator(frame_sub, sub, verbose=False)
                labels = present[result["label_quality"]["consensus_label"].to_numpy().astype(int)]
                stats = result["annotator_stats"]["annotator_quality"]
                return labels, {str(k): float(v) for k, v in stats.items()}, "cleanlab CROWDLAB"
            except (ValueError, AssertionError):  # e.g. an annotator with a single label: fall back
                pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = np.asarray(get_majority_vote_label(frame, verbose=False)).astype(int)
    quality = {a: float(np.nanmean(np.where(np.isnan(ratings[:, j]), np.nan, ratings[:, j] == labels)))
               for j, a in enumerate(annotators)}
    return labels, quality, "majority vote (agreement with it as quality)"


def agreement_report(project, *, queue: bool = True) -> dict:
    """Agreement figures, consensus and annotator quality; disagreements go to the review queue."""
    items, annotators, ratings = rating_matrix(project)
    if not items:
        raise LabelingError("no item has labels from two annotators yet", where=project.where,
                            fix="init with --multi-share 0.1 and let two annotators label (`label next --annotator`)")
    classes = project.classes
    proba, _ = project.current_proba()
    if proba is not None:
        position = project.position()
        proba = proba[[position[item] for item in items]]
    fleiss_value, fleiss_items = fleiss(ratings, len(classes))
    labels, quality, method = consensus(ratings, annotators, proba)
    disagree = [i for i in range(len(items)) if len(np.unique(ratings[i][~np.isnan(ratings[i])])) > 1]
    if queue and disagree:
        entries = []
        for i in disagree:
            given = ", ".join(f"{annotators[j]}: {classes[int(ratings[i, j])]}"
                              for j in range(len(annotators)) if not np.isnan(ratings[i, j]))
            entries.append((items[i], "disagreement", given, classes[int(labels[i])]))
        project.add_review(entries)
    return {"items": len(items), "annotators": annotators, "pairs": cohen_pairs(annotators, ratings),
            "fleiss_kappa": fleiss_value, "fleiss_items": fleiss_items,
            "krippendorff_alpha": krippendorff_alpha(ratings), "consensus_method": method,
            "annotator_quality": quality, "disagreements": len(disagree),
            "consensus": {items[i]: classes[int(labels[i])] for i in range(len(items))}}
