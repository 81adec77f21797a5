"""headstart.sklearn.HeadstartClassifier: a scikit-learn estimator over texts, in pipelines and cross-validation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks

from headstart.errors import DataError
from headstart.learn.config import FinetuneConfig
from headstart.sklearn import HeadstartClassifier, InputError


@pytest.fixture(scope="module")
def texts_and_labels(learnable_csv):
    with open(learnable_csv, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


@pytest.fixture(scope="module")
def fitted(texts_and_labels, tiny_bert_name):
    texts, labels = texts_and_labels
    return HeadstartClassifier(backbone=tiny_bert_name, mode="probe", engine="torch").fit(texts, labels)


def test_fit_predict_and_predict_proba_on_texts(fitted, texts_and_labels):
    texts, labels = texts_and_labels
    assert list(fitted.classes_) == ["food", "sports", "tech"]
    proba = fitted.predict_proba(texts)
    assert proba.shape == (len(texts), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    predicted = fitted.predict(texts)
    assert list(predicted) == list(fitted.classes_[proba.argmax(axis=1)])
    assert list(predicted) == fitted.model_.predict(texts, engine="torch")
    assert fitted.score(texts, labels) == pytest.approx(np.mean(predicted == np.array(labels)))
    assert fitted.score(texts, labels) > 0.6  # three classes: chance is a third
    assert not hasattr(fitted, "n_features_in_")  # texts have no feature columns


def test_classes_are_in_numpy_order_and_predictions_of_their_type(texts_and_labels, tiny_bert_name):
    """Integer labels sort 1 < 2 < 10, their names '1' < '10' < '2': the columns are mapped, not assumed."""
    texts, labels = texts_and_labels
    codes = {"food": 10, "sports": 2, "tech": 1}
    y = np.array([codes[label] for label in labels])
    clf = HeadstartClassifier(backbone=tiny_bert_name, mode="probe", engine="torch").fit(texts, y)
    assert list(clf.classes_) == [1, 2, 10] and clf.model_.classes == ["1", "10", "2"]
    proba, inner = clf.predict_proba(texts[:12]), clf.model_.predict_proba(texts[:12], engine="torch")
    np.testing.assert_array_equal(proba, inner[:, [0, 2, 1]])
    predicted = clf.predict(texts[:12])
    assert predicted.dtype == y.dtype
    assert [str(p) for p in predicted] == clf.model_.predict(texts[:12], engine="torch")


def test_pandas_series_and_numpy_arrays_are_taken(fitted, texts_and_labels, tiny_bert_name):
    import pandas as pd

    texts, labels = texts_and_labels
    series = pd.Series(texts, index=range(1000, 1000 + len(texts)))
    np.testing.assert_allclose(fitted.predict_proba(series), fitted.predict_proba(texts), atol=1e-6)
    np.testing.assert_allclose(fitted.predict_proba(np.array(texts)[:, None]), fitted.predict_proba(texts), atol=1e-6)
    refitted = HeadstartClassifier(backbone=tiny_bert_name, mode="probe", engine="torch")
    refitted.fit(series, pd.Series(labels, index=series.index))
    np.testing.assert_allclose(refitted.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)


def test_in_a_pipeline_with_cross_validation(texts_and_labels, tiny_bert_name):
    texts, labels = texts_and_labels
    pipeline = Pipeline([("lower", FunctionTransformer(lambda batch: [text.lower() for text in batch])),
                         ("classify", HeadstartClassifier(backbone=tiny_bert_name, mode="probe", engine="torch"))])
    scores = cross_val_score(pipeline, texts, labels, cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1)) and scores.mean() > 0.5


def test_get_params_set_params_and_clone(tiny_bert_name):
    config = FinetuneConfig(epochs=1)
    clf = HeadstartClassifier(backbone=tiny_bert_name, mode="finetune", seed=3, finetune_config=config)
    params = clf.get_params()
    assert params["backbone"] == tiny_bert_name and params["seed"] == 3 and params["finetune_config"] is config
    assert clf.set_params(mode="probe", max_length=16) is clf and clf.mode == "probe" and clf.max_length == 16
    copy = clone(clf)
    assert copy is not clf and copy.get_params()["finetune_config"] == config
    assert {k: v for k, v in copy.get_params().items() if k != "finetune_config"} == \
        {k: v for k, v in clf.get_params().items() if k != "finetune_config"}


@pytest.mark.parametrize("check", [
    estimator_checks.check_estimator_cloneable, estimator_checks.check_estimator_repr,
    estimator_checks.check_no_attributes_set_in_init, estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params, estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_estimators_unfitted, estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_mixin_order, estimator_checks.check_valid_tag_types,
], ids=lambda check: check.__name__)
def test_the_sklearn_checks_that_apply_to_text(check):
    check("HeadstartClassifier", HeadstartClassifier())


def test_check_estimator_skips_it_for_its_string_input():
    """The fit-based checks feed random numbers; the tags send them away rather than fail on them."""
    with pytest.warns(estimator_checks.SkipTestWarning, match="requires input"):
        estimator_checks.check_estimator(HeadstartClassifier())


def test_fit_returns_self_keeps_its_parameters_and_sets_only_trailing_underscore_attributes(texts_and_labels,
                                                                                              tiny_bert_name):
    """What check_estimators_fit_returns_self, check_estimators_overwrite_params and
    check_dont_overwrite_parameters assert, on texts."""
    texts, labels = texts_and_labels
    config = FinetuneConfig(epochs=1)
    clf = HeadstartClassifier(backbone=tiny_bert_name, mode="probe", engine="torch", finetune_config=config)
    before = dict(vars(clf))
    assert clf.fit(texts, labels) is clf
    assert clf.finetune_config is config and clf.finetune_config == FinetuneConfig(epochs=1)
    assert {k: v for k, v in vars(clf).items() if k in before} == before
    added = set(vars(clf)) - set(before)
    assert added and all(name.endswith("_") or name.startswith("_") for name in added)


def test_a_finetune_fits_and_predicts(texts_and_labels, tiny_bert_name):
    texts, labels = texts_and_labels
    clf = HeadstartClassifier(backbone=tiny_bert_name, mode="finetune", engine="torch",
                              finetune_config=FinetuneConfig(epochs=1, strategy="staged"))
    clf.fit(texts, labels)
    assert clf.model_.finetuned and set(clf.predict(texts[:6])) <= set(clf.classes_)


def test_predicting_before_fit_is_not_fitted_error():
    with pytest.raises(NotFittedError):
        HeadstartClassifier().predict(["a text"])


@pytest.mark.parametrize("X, y, where, message", [
    (["a text", "b text"] * 5, ["x"] * 10, "y", "only one class"),
    ([["a", "b"]] * 10, ["x", "y"] * 5, "X", "one-dimensional"),
    (["a text"] * 4 + ["  "] + ["b text"] * 5, ["x", "y"] * 5, "X[4]", "empty"),
    (["a text"] * 9 + [3.5], ["x", "y"] * 5, "X[9]", "not a text"),
    (["a text"] * 10, ["x", "y"] * 4, "y", "10 samples"),
    ("one text", ["x"], "X", "one string"),
], ids=["one class", "2-d", "empty text", "number", "lengths", "one string"])
def test_bad_input_is_a_value_error_naming_the_sample(X, y, where, message, tiny_bert_name):
    with pytest.raises(ValueError, match=message) as caught:
        HeadstartClassifier(backbone=tiny_bert_name, mode="probe").fit(X, y)
    assert isinstance(caught.value, DataError) and isinstance(caught.value, InputError)
    assert str(caught.value).startswith(f"{where}: ")


def test_continuous_targets_are_refused(tiny_bert_name):
    with pytest.raises(ValueError, match="continuous"):
        HeadstartClassifier(backbone=tiny_bert_name).fit(["a text", "b text", "c text"], [0.1, 0.5, 0.25])


def test_a_text_backbone_given_image_paths_or_an_image_backbone_given_texts(texts_and_labels):
    from headstart.errors import HeadstartError

    texts, labels = texts_and_labels
    with pytest.raises(HeadstartError, match="no image file"):
        HeadstartClassifier(backbone="timm:resnet18").fit(texts, labels)


@pytest.mark.requires_effnet
def test_image_paths_are_images_with_the_default_image_backbone(image_folder):
    paths = sorted(image_folder.rglob("*.png"))
    labels = [path.parent.name for path in paths]
    clf = HeadstartClassifier(mode="probe", image_size=64, engine="torch").fit(paths, labels)
    assert clf.model_.backbone.name == "effnet-lite0" and list(clf.classes_) == ["blue", "dark", "red"]
    assert clf.score([str(path) for path in paths], labels) > 0.9  # the colour gives the class
    assert clf.predict_proba(paths[:4]).shape == (4, 3)


def test_the_zero_shot_prior_is_a_parameter_like_the_others(texts_and_labels, tiny_bert_name):
    texts, labels = texts_and_labels
    blends = {}
    for prior in (True, False):
        clf = HeadstartClassifier(backbone=tiny_bert_name, mode="probe", zero_shot_prior=prior).fit(texts, labels)
        blends[prior] = clf.model_.info["config"]["probe"].get("zero_shot_prior")
    assert blends[True] is not None and 0.0 <= blends[True]["probe_weight"] <= 1.0 and blends[False] is None
    assert clone(HeadstartClassifier(describe="a=first")).get_params()["describe"] == "a=first"
