"""Which layers transfer, and how deep to fine-tune.

The answer comes from probe accuracy of each layer group's features on the validation split.

The output of each layer group (bottom to top, :meth:`Backbone.layer_groups`) is pooled (the
mean over tokens, mask-weighted, or over the spatial grid) and a logistic-regression probe
trained on the training split is scored on the validation split. Lower layers carry general
features, upper ones source-specific ones (Yosinski et al., "How transferable are features in
deep neural networks?", NeurIPS 2014): when the best group is below the top, the groups above
it lost something this task needs and are the ones to re-train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from headstart.data.dataset import Dataset
from headstart.output import figure_png, new_figure
from headstart.progress import progress_bar
from headstart.transfer import page
from headstart.transfer.rank import stratified_subset

TOLERANCE = 0.01  # accuracies within this of each other count as a tie


def _last_module(group: torch.nn.Module) -> torch.nn.Module:
    """The module whose output is the group's output: the last child of a ModuleList, else the group."""
    while isinstance(group, (torch.nn.ModuleList, torch.nn.Sequential)) and len(group):
        group = group[-1]
    return group


def _pool(output, mask: torch.Tensor | None) -> torch.Tensor:
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 4:   # (n, C, H, W)
        return output.mean(dim=(2, 3))
    if output.dim() == 3:   # (n, tokens, d)
        if mask is not None and mask.shape[:2] == output.shape[:2]:
            weights = mask.unsqueeze(-1).to(output.dtype)
            return (output * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return output.mean(dim=1)
    return output.reshape(len(output), -1)


def layer_features(backbone, items: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray | None]:
    """Pooled output features of every layer group, bottom to top.

    Computed with eager PyTorch, without the cache.

    Returns:
        A list of (n, d_g) arrays, one a group (None for a group whose output was never seen).
    """
    groups = backbone.layer_groups()
    outputs: dict[int, object] = {}
    hooks = [_last_module(group).register_forward_hook(lambda _m, _i, out, g=g: outputs.__setitem__(g, out))
             for g, group in enumerate(groups)]
    collected: list[list[np.ndarray]] = [[] for _ in groups]
    backbone.module.eval()
    try:
        with progress_bar(f"layer features ({backbone.name})", len(items)) as advance, torch.inference_mode():
            for start in range(0, len(items), batch_size):
                inputs = backbone.preprocess(list(items[start:start + batch_size]))
                outputs.clear()
                backbone.module(**inputs)
                for g in range(len(groups)):
                    if g in outputs:
                        collected[g].append(_pool(outputs[g], inputs.get("attention_mask")).float().numpy())
                advance(len(inputs[backbone.input_names[0]]))
    finally:
        for hook in hooks:
            hook.remove()
    return [np.concatenate(parts) if len(parts) else None for parts in collected]


def val_probe_accuracy(train_x, train_y, val_x, val_y, *, seed: int = 0, c_grid=(0.01, 0.1, 1.0)) -> float:
    """Validation accuracy of a standardized logistic-regression probe fitted on the training split.

    It is the best over ``c_grid``: equally optimistic for every layer.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    a, b = scaler.transform(train_x), scaler.transform(val_x)
    return max(float((LogisticRegression(C=c, max_iter=500, random_state=seed).fit(a, train_y).predict(b)
                      == val_y).mean()) for c in c_grid)


def recommend_unfreeze(accuracies: Sequence[float | None], tolerance: float = TOLERANCE) -> int:
    """How many top groups to fine-tune, from the probe accuracy of each group (bottom to top).

    The best group is the highest one within ``tolerance`` of the best accuracy. When it is the top
    group, the pretrained stack suits the task and only the top group is tuned (1); otherwise the
    groups above the best one are re-trained (``n - 1 - best``), its own features and those below
    it kept frozen.
    """
    values = np.array([-np.inf if a is None else a for a in accuracies])
    best = int(np.flatnonzero(values >= values.max() - tolerance).max())
    return max(1, len(values) - 1 - best)


@dataclass
class LayerReport:
    """Probe accuracy per layer group on the validation split, and the fine-tuning depth it suggests."""

    backbone: str
    accuracies: list[float | None]
    dims: list[int | None]
    unfreeze: int
    n_train: int
    n_val: int
    stem: ClassVar[str] = "layers"

    @property
    def freeze(self) -> int:
        """Bottom layer groups kept frozen."""
        return len(self.accuracies) - self.unfreeze

    def table(self) -> str:
        """One line a layer group, bottom first: its probe accuracy and feature size."""
        return "\n".join(f"group {group}: " + ("not reached" if accuracy is None else f"{accuracy:.4f}  ({dim}-d)")
                         for group, (accuracy, dim) in enumerate(zip(self.accuracies, self.dims)))

    def sentence(self) -> str:
        """One sentence: the group that probes best and how many top groups to fine-tune."""
        best = int(np.nanargmax([np.nan if a is None else a for a in self.accuracies]))
        return (f"Layer group {best} of {len(self.accuracies)} (0 = bottom) probes best on the validation split "
                f"({self.accuracies[best]:.1%}); recommended: fine-tune the top {self.unfreeze} group(s), keep the "
                f"bottom {self.freeze} frozen.")

    def to_dict(self) -> dict:
        """Everything ``layers.json`` holds: accuracies, feature sizes, the recommendation and the sentence."""
        return {"backbone": self.backbone, "accuracies": self.accuracies, "dims": self.dims,
                "unfreeze": self.unfreeze, "freeze": self.freeze, "n_train": self.n_train, "n_val": self.n_val,
                "sentence": self.sentence()}

    def plot(self) -> bytes:
        """PNG: probe accuracy per layer group, the groups to fine-tune coloured and the cut marked."""
        fig = new_figure(7.0, 4.0)
        ax = fig.add_subplot()
        x = np.arange(len(self.accuracies))
        values = np.array([np.nan if a is None else a for a in self.accuracies])
        colors = ["#9aa5b1" if g < self.freeze else "#1f77b4" for g in x]
        ax.bar(x, np.nan_to_num(values), color=colors)
        ax.axvline(self.freeze - 0.5, color="#d62728", linestyle="--", linewidth=1.2)
        ax.text(self.freeze - 0.45, 0.02, " fine-tune from here", color="#d62728", fontsize=9,
                transform=ax.get_xaxis_transform())
        ax.set(xticks=x, xlabel="layer group (0 = bottom)", ylabel="validation probe accuracy", ylim=(0, 1.02),
               title=f"Probe accuracy per layer group, {self.backbone[-40:]}")
        ax.grid(True, axis="y", alpha=0.3)
        return figure_png(fig)

    def save(self, folder: str | Path) -> Path:
        """Write ``layers.json``, ``layers.png`` and ``layers.html`` into ``folder``."""
        picture = self.plot()
        rows = [[g, d, a, "frozen" if g < self.freeze else "fine-tuned"]
                for g, (a, d) in enumerate(zip(self.accuracies, self.dims))]
        return page.write_result(folder, self.stem, payload=self.to_dict(), picture=picture,
                                 title=f"headstart: which layers transfer, {self.backbone}",
                                 sentences=[self.sentence()],
                                 sections=[{"title": "Probe accuracy per layer group", "png": picture,
                                            "columns": ["group", "dim", "val accuracy", "recommended"],
                                            "rows": rows}])


def layer_transfer(backbone, train: Dataset, val: Dataset, classes: Sequence[str], *, seed: int = 0,
                   max_items: int | None = 1000) -> LayerReport:
    """Probe each layer group of ``backbone`` on (a stratified subset of) ``train``, score on ``val``."""
    if len(val) == 0:
        from headstart.errors import DataError

        raise DataError("layer-wise probes need a validation split", where=train.source,
                        fix="give --val FILE or a validation share in --split")
    y = train.label_ids(list(classes))
    keep = stratified_subset(y, max_items, seed) if max_items else np.arange(len(y))
    val_y = val.label_ids(list(classes))
    train_feats = layer_features(backbone, [train.items[i] for i in keep])
    val_feats = layer_features(backbone, val.items)
    accuracies, dims = [], []
    for a, b in zip(train_feats, val_feats):
        if a is None or b is None:
            accuracies.append(None)
            dims.append(None)
            continue
        accuracies.append(val_probe_accuracy(a, y[keep], b, val_y, seed=seed))
        dims.append(int(a.shape[1]))
    return LayerReport(backbone.name, accuracies, dims, recommend_unfreeze(accuracies), len(keep), len(val))
