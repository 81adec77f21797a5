"""The adaptation methods on numbers and tiny networks: CORAL, AdaBN, the prior correction, self-training, auto."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from headstart.adapt.adabn import align_batch_norm, batch_norm_layers, has_batch_norm
from headstart.adapt import choose as choose_module
from headstart.adapt.choose import DomainViews, choose
from headstart.adapt.methods import FEATURE_METHODS
from headstart.adapt.coral import coral_align
from headstart.adapt.label_shift import prior_corrected
from headstart.adapt.self_training import confident_items, self_trained
from headstart.backbones import create_backbone
from headstart.learn.head import fit_head


def _gaussian(rng, n, mean, covariance):
    return rng.multivariate_normal(mean, covariance, size=n)


def test_coral_gives_the_source_the_targets_mean_and_covariance():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    source = _gaussian(rng, 4000, np.zeros(d), a @ a.T + 0.1 * np.eye(d)) * 5.0
    target = _gaussian(rng, 3000, np.arange(d, dtype=float), b @ b.T + 0.1 * np.eye(d))
    aligned = coral_align(source, target, regularization=1e-9)
    np.testing.assert_allclose(np.cov(aligned, rowvar=False), np.cov(target, rowvar=False), atol=1e-3)
    np.testing.assert_allclose(aligned.mean(axis=0), target.mean(axis=0), atol=1e-3)
    # the paper's identity regularization pulls the covariance towards it, but keeps most of the alignment
    regularized = np.cov(coral_align(source, target), rowvar=False)
    assert np.abs(regularized - np.cov(target, rowvar=False)).max() < np.abs(
        np.cov(source, rowvar=False) - np.cov(target, rowvar=False)).max() / 2


def _scaled_pair(rng, n=600, d=4):
    """A source whose class shows on feature 0, and a target of the same classes rescaled and moved per feature."""
    y, y_target = rng.integers(0, 2, n), rng.integers(0, 2, n)
    source = rng.normal(size=(n, d)) + np.outer(2 * y - 1, [1.5, 0, 0, 0])
    target = (rng.normal(size=(n, d)) + np.outer(2 * y_target - 1, [1.5, 0, 0, 0])) * [3.0, 0.5, 2.0, 1.0] + 2.5
    return source, y, target, y_target


def test_coral_repairs_a_probe_on_a_rescaled_and_moved_target():
    source, y, target, y_target = _scaled_pair(np.random.default_rng(1))
    fit = partial(fit_head, n_classes=2, c=1.0)
    plain = (fit(source, y).proba(target).argmax(1) == y_target).mean()
    aligned = (fit(coral_align(source, target), y).proba(target).argmax(1) == y_target).mean()
    assert aligned > plain + 0.05 and aligned > 0.9


def _tiny_resnet():
    return create_backbone("timm:resnet18", pretrained=False, image_size=32)


def _first_layer_outputs(backbone, items):
    """The first batch-norm layer's outputs (N, C, H, W) on ``items``: its input depends on no statistics."""
    first, seen = batch_norm_layers(backbone.module)[0], []
    hook = first.register_forward_hook(lambda module, inputs, output: seen.append(output.detach().clone()))
    with torch.no_grad():
        backbone.module.eval()
        backbone.module(**backbone.preprocess(items))
    hook.remove()
    return seen[0]


def test_adabn_puts_the_target_where_the_source_was_and_changes_only_statistics(image_folder):
    backbone = _tiny_resnet()
    assert has_batch_norm(backbone)
    source = [str(p) for p in sorted((image_folder / "red").glob("*.png"))]  # 12 items: one batch each
    target = [str(p) for p in sorted((image_folder / "dark").glob("*.png"))]
    source_out = _first_layer_outputs(backbone, source)
    assert not torch.allclose(_first_layer_outputs(backbone, target).mean(dim=(0, 2, 3)),
                              source_out.mean(dim=(0, 2, 3)), atol=1e-2)
    before = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    layers = align_batch_norm(backbone, source, target)
    assert layers == len(batch_norm_layers(backbone.module)) > 5
    target_out = _first_layer_outputs(backbone, target)  # under the aligned statistics: the source's moments
    np.testing.assert_allclose(target_out.mean(dim=(0, 2, 3)).numpy(), source_out.mean(dim=(0, 2, 3)).numpy(),
                               atol=1e-3)
    np.testing.assert_allclose(target_out.std(dim=(0, 2, 3)).numpy(), source_out.std(dim=(0, 2, 3)).numpy(),
                               rtol=1e-2, atol=1e-3)
    after = backbone.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("running_mean", "running_var")) for k in changed)
    assert all(torch.equal(p, before[k]) for k, p in backbone.module.named_parameters())
    assert not backbone.module.training


def test_adabn_of_a_target_like_the_source_leaves_the_statistics_as_they_were(image_folder):
    backbone = _tiny_resnet()
    items = [str(p) for p in sorted((image_folder / "blue").glob("*.png"))]
    before = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    align_batch_norm(backbone, items, items)
    after = backbone.module.state_dict()
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-3, atol=1e-4)


def test_the_prior_correction_recovers_a_known_prior_shift():
    rng = np.random.default_rng(2)
    means = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])

    def sample(counts):
        x = np.vstack([rng.normal(means[k], 1.0, size=(c, 2)) for k, c in enumerate(counts)])
        return x, np.repeat(np.arange(3), counts)

    source_x, source_y = sample([400, 400, 400])
    head = fit_head(source_x, source_y, 3, c=1.0)
    target_x, target_y = sample([1400, 400, 200])  # priors 0.7, 0.2, 0.1
    corrected, priors = prior_corrected(head, target_x)
    np.testing.assert_allclose(priors, [0.7, 0.2, 0.1], atol=0.05)
    accuracy = lambda h: (h.proba(target_x).argmax(1) == target_y).mean()  # noqa: E731
    assert accuracy(corrected) > accuracy(head) + 0.03
    np.testing.assert_array_equal(corrected.weight, head.weight)  # a shift of the bias, nothing else


def test_confident_items_takes_a_share_of_each_predicted_class():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    positions, labels = confident_items(proba, 0.5)
    assert positions.tolist() == [0, 2, 3] and labels.tolist() == [0, 0, 1]


def test_self_training_follows_a_shifted_target():
    rng = np.random.default_rng(3)
    n = 400
    y, y_target = rng.integers(0, 2, n), rng.integers(0, 2, n)
    source = rng.normal(size=(n, 2)) + np.outer(2 * y - 1, [2.0, 0])
    target = rng.normal(size=(n, 2)) + np.outer(2 * y_target - 1, [2.0, 0]) + [1.2, 0]  # moved towards class 1
    fit = partial(fit_head, n_classes=2, c=1.0)
    accuracy = lambda h: (h.proba(target).argmax(1) == y_target).mean()  # noqa: E731
    assert accuracy(self_trained(fit, source, y, target)) > accuracy(fit(source, y)) + 0.03


def test_auto_falls_back_to_none_when_the_target_looks_like_the_source():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 5))
    y = (x[:, 0] + 0.3 * rng.normal(size=600) > 0).astype(int)
    views = DomainViews(x[:300], y[:300], x[300:400], y[300:400], x[400:])
    choice = choose(partial(fit_head, n_classes=2, c=1.0), views)
    assert choice.method == "none"
    assert "AUC" in choice.reason and choice.domain_auc < 0.6


def _label_shifted(seed: int):
    """A source of two balanced classes, and a target with nine in ten items of class 1, moved along a nuisance feature."""
    rng = np.random.default_rng(seed)
    n, d = 500, 4
    y, y_target = rng.integers(0, 2, n), (rng.random(n) < 0.9).astype(int)
    source = rng.normal(size=(n, d)) + np.outer(2 * y - 1, [1.5, 0, 0, 0])
    target = rng.normal(size=(n, d)) + np.outer(2 * y_target - 1, [1.5, 0, 0, 0])
    target[:, 3] += 2.0  # the domain classifier sees the shift on a feature no class depends on
    return source, y, target, y_target


def test_auto_keeps_none_where_the_targets_class_mix_would_mislead_coral():
    source, y, target, y_target = _label_shifted(0)
    fit = partial(fit_head, n_classes=2, c=1.0)
    adapted = FEATURE_METHODS["coral-self-train"](fit, source, y, target)
    accuracy = lambda h: (h.proba(target).argmax(1) == y_target).mean()  # noqa: E731
    assert accuracy(adapted) < accuracy(fit(source, y)) - 0.1  # the mean alignment moves the boundary the wrong way
    choice = choose(fit, DomainViews(source[:400], y[:400], source[400:], y[400:], target))
    assert choice.domain_auc > 0.8
    assert choice.method == "none" and "neighbours" in choice.reason, choice.reason
    assert choice.scores["coral-self-train"]["kappa_gain"] < 0


def test_auto_keeps_none_when_reverse_validation_objects(monkeypatch):
    rng = np.random.default_rng(5)
    n, d = 500, 4
    y, y_target = rng.integers(0, 2, n), rng.integers(0, 2, n)
    source = rng.normal(size=(n, d)) + np.outer(2 * y - 1, [3.0, 0, 0, 0])
    target = rng.normal(size=(n, d)) + np.outer(2 * y_target - 1, [3.0, 0, 0, 0]) + [2.5, 0, 0, 0]
    views = DomainViews(source[:400], y[:400], source[400:], y[400:], target)
    right = np.ones(100, dtype=bool)
    wrong = right.copy()
    wrong[:30] = False  # the adaptation's reverse model misses 30 of the 100 items no adaptation's gets right
    monkeypatch.setattr(choose_module, "reverse_correct", lambda method, *a: right if method == "none" else wrong)
    choice = choose(partial(fit_head, n_classes=2, c=1.0), views)
    assert choice.method == "none" and "vetoed" in choice.reason, choice.reason
    assert choice.scores["none"]["reverse_accuracy"] == 1.0
    assert choice.scores["coral-self-train"]["reverse_accuracy"] == 0.7


def test_auto_picks_an_adaptation_where_one_clearly_helps():
    rng = np.random.default_rng(6)
    n, d = 500, 4
    y, y_target = rng.integers(0, 2, n), rng.integers(0, 2, n)
    source = rng.normal(size=(n, d)) + np.outer(2 * y - 1, [3.0, 0, 0, 0])
    target = rng.normal(size=(n, d)) + np.outer(2 * y_target - 1, [3.0, 0, 0, 0]) + [2.5, 0, 0, 0]
    views = DomainViews(source[:400], y[:400], source[400:], y[400:], target)
    fit = partial(fit_head, n_classes=2, c=1.0)
    choice = choose(fit, views)
    assert choice.method == "coral-self-train", choice.reason
    accuracy = lambda h: (h.proba(target).argmax(1) == y_target).mean()  # noqa: E731
    adapted = FEATURE_METHODS["coral-self-train"](fit, source, y, target)
    assert accuracy(adapted) > 0.95 and accuracy(adapted) > accuracy(fit(source, y)) + 0.05
