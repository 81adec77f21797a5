"""The zero-shot head's mechanics: prototypes, calibration folded into a linear head, bad class lists."""

from __future__ import annotations

import numpy as np
import pytest

from headstart.errors import DataError
from headstart.learn.zero_shot import (class_prototypes, parse_classes, parse_descriptions, prototype_head,
                                       refine_prototypes, unit, zero_shot_head)


def fake_embed(texts):
    """Texts -> unit vectors that depend on the words: 'bad' and 'good' point two ways, the rest adds noise."""
    rows = []
    for text in texts:
        vector = np.zeros(8)
        vector[0] += text.count("bad")
        vector[1] += text.count("good")
        vector[2:] = np.frombuffer(text.encode().ljust(6, b" ")[:6], dtype=np.uint8) / 255.0
        rows.append(vector)
    return unit(np.array(rows))


def test_prototypes_average_the_templates_per_class_into_unit_rows():
    templates = ("{}", "this is {}.")
    prototypes = class_prototypes(fake_embed, ["bad", "good"], templates)
    assert prototypes.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1.0, atol=1e-12)
    expected = unit(fake_embed(["bad", "this is bad."]).mean(axis=0, keepdims=True))[0]
    np.testing.assert_allclose(prototypes[0], expected, atol=1e-12)
    assert prototypes[0, 0] > prototypes[0, 1] and prototypes[1, 1] > prototypes[1, 0]


def test_head_rows_are_the_prototypes_and_the_folded_head_equals_the_standardized_scores():
    rng = np.random.default_rng(0)
    prototypes = unit(rng.normal(size=(3, 16)))
    pool = unit(rng.normal(size=(50, 16)))
    head, mean, std = prototype_head(prototypes, pool, calibration="standardize", temperature=2.0)
    assert head.weight.shape == (3, 16) and head.bias.shape == (3,)
    similarity = pool @ prototypes.T
    np.testing.assert_allclose(mean, similarity.mean(axis=0))
    np.testing.assert_allclose(head.logits(pool), 2.0 * (similarity - mean) / std, atol=1e-4)
    # the rows point where the prototypes point
    np.testing.assert_allclose(unit(head.weight.astype(np.float64)), prototypes, atol=1e-5)


def test_calibration_stops_one_class_from_winning_everything():
    """Every item is nearer prototype 0 in raw cosine; within the pool, half lean towards class 1."""
    rng = np.random.default_rng(1)
    prototypes = unit(np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0]]))
    # cos to 0 beats cos to 1 while the second coordinate is below 0.5: both halves stay below it
    leaning = np.r_[np.full(100, 0.1), np.full(100, 0.4)]  # the second half leans to class 1
    items = unit(np.c_[np.full(200, 1.0), leaning + rng.normal(0, 0.02, 200), rng.normal(0, 0.02, 200)])
    truth = np.r_[np.zeros(100), np.ones(100)].astype(int)
    raw, _, _ = prototype_head(prototypes, items, calibration="none")
    calibrated, _, _ = prototype_head(prototypes, items, calibration="standardize")
    assert (raw.proba(items).argmax(axis=1) == 0).mean() == 1.0  # raw cosine: all class 0
    assert (calibrated.proba(items).argmax(axis=1) == truth).mean() > 0.95


def test_without_pool_items_the_head_is_left_uncalibrated():
    made = zero_shot_head(fake_embed, ["bad", "good"], None, None)
    assert made.calibration == "none" and made.calibrated_on == 0
    assert made.head.proba(fake_embed(["bad bad bad"])).argmax() == 0
    record = made.record()
    assert record["descriptions"] == {"bad": "bad", "good": "good"} and record["similarity_mean"] == []


def test_descriptions_replace_names_in_the_prompts():
    made = zero_shot_head(fake_embed, ["neg", "pos"], {"neg": "bad", "pos": "good"}, fake_embed(["bad", "good"] * 5))
    assert made.descriptions == {"neg": "bad", "pos": "good"}
    assert list(made.head.proba(fake_embed(["so bad", "so good"])).argmax(axis=1)) == [0, 1]


@pytest.mark.parametrize("classes, message", [
    (None, "zero-shot needs the class names"),
    ("positive", "two or more classes"),
    ("a, b, a", "class 'a' is given twice"),
    (" , ", "two or more classes"),
])
def test_bad_class_lists_are_one_clear_error(classes, message):
    with pytest.raises(DataError, match=message) as caught:
        parse_classes(classes)
    assert "\n" not in str(caught.value) and "--classes" in str(caught.value)


@pytest.mark.parametrize("describe, message", [
    ("neutral=a neutral review", "'neutral' is described but is not one of the classes"),
    ("negative", "cannot read 'negative'"),
    ("negative=", "the description of 'negative' is empty"),
    ("negative=x,negative=y", "class 'negative' is described twice"),
])
def test_bad_descriptions_are_one_clear_error(describe, message):
    with pytest.raises(DataError, match=message) as caught:
        parse_descriptions(describe, ["negative", "positive"])
    assert "\n" not in str(caught.value) and "--describe" in str(caught.value)


def test_a_class_left_undescribed_keeps_its_name():
    assert parse_descriptions("negative=a bad review", ["negative", "positive"]) == {
        "negative": "a bad review", "positive": "positive"}
    assert parse_descriptions({"positive": "a good review"}, ["negative", "positive"])["positive"] == "a good review"


def test_refinement_moves_the_prototypes_towards_the_pools_clusters():
    """Two clusters of items; text prototypes that sit off them, tilted towards each other: refinement
    pulls each towards its cluster, and the items split as the clusters do."""
    rng = np.random.default_rng(2)
    centres = unit(np.array([[1.0, 0.0, 0.2, 0.0], [0.0, 1.0, 0.2, 0.0]]))
    truth = np.repeat([0, 1], 60)
    items = unit(centres[truth] + rng.normal(0, 0.15, (120, 4)))
    prototypes = unit(np.array([[0.7, 0.5, 0.0, 0.5], [0.5, 0.7, 0.0, 0.5]]))
    np.testing.assert_array_equal(refine_prototypes(prototypes, items, steps=0), prototypes)
    moved = refine_prototypes(prototypes, items, steps=2)
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-12)
    assert (np.sum(moved * centres, axis=1) > np.sum(prototypes * centres, axis=1)).all()
    head, _, _ = prototype_head(moved, items)
    assert (head.proba(items).argmax(axis=1) == truth).mean() > 0.9
    made = zero_shot_head(lambda texts: prototypes, ["a", "b"], None, items, templates=("{}",))
    assert made.refine_steps == 2 and made.record()["refine_steps"] == 2
    assert zero_shot_head(lambda texts: prototypes, ["a", "b"], None, items, templates=("{}",),
                          calibration="center").refine_steps == 0  # refinement reads standardized scores
