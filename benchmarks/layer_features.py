"""Would features from inside the image backbone beat its last layer on few labels? Fashion-MNIST, effnet-lite0.

headstart's image features are the backbone's globally pooled last layer (1,280 numbers for
EfficientNet-Lite0). Grayscale clothing at 28 px is far from ImageNet, and the middle of a network
holds more general features than its end (Head2Toe, Evci et al., ICML 2022, select features from
every layer for such tasks). This extracts, once, every block's output averaged over the image
beside the last layer, then fits the labeling loop's probe (``fit_loop_probe``, the pool's scaling)
on random labels for several choices of layers, and the loop's pool training (``loop_head``) on the
last layer and on the best mix, so that a gain that the pool would have given anyway shows.

    .venv/bin/python benchmarks/layer_features.py [--pool 6000] [--test 3000] [--budgets 100,200]

Features are kept in ``benchmarks/.cache/`` (12 minutes on two cores for 9,000 images). Not a test:
run it alone on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from benchmark_data import fashion_mnist  # noqa: E402

CACHE = common.BENCH_DIR / ".cache"
BATCH = 64


def block_features(backbone, images: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Every block's output averaged over height and width, then the backbone's own features, side by
    side (n, sum of widths); and the widths."""
    import torch
    from PIL import Image

    from headstart.progress import progress_bar

    captured: list = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: captured.append(out.mean(dim=(2, 3))))
             for block in backbone.module.net._blocks]
    rows, widths = [], []
    try:
        with progress_bar("block features", len(images)) as advance:
            for start in range(0, len(images), BATCH):
                pixels = torch.stack([backbone.eval_transform(Image.fromarray(a).convert("RGB"))
                                      for a in images[start:start + BATCH]])
                captured.clear()
                with torch.no_grad():
                    last = backbone.module(pixels)
                rows.append(torch.cat([*captured, last], 1).numpy())
                widths = [c.shape[1] for c in captured] + [last.shape[1]]
                advance(len(pixels))
    finally:
        for hook in hooks:
            hook.remove()
    return np.concatenate(rows), widths


def load(pool: int, test: int) -> dict:
    """Pool and test features (a seeded sample of Fashion-MNIST's train and test splits), cached."""
    path = CACHE / f"layer_features-fashion-{pool}-{test}.npz"
    if path.exists():
        return dict(np.load(path))
    from headstart.backbones import create_backbone

    backbone = create_backbone("effnet-lite0")
    x_train, y_train = fashion_mnist("train")
    x_test, y_test = fashion_mnist("test")
    rng = np.random.default_rng(0)
    train_rows, test_rows = rng.permutation(len(y_train))[:pool], rng.permutation(len(y_test))[:test]
    x, widths = block_features(backbone, x_train[train_rows])
    xt, _ = block_features(backbone, x_test[test_rows])
    data = {"x": x, "y": y_train[train_rows], "xt": xt, "yt": y_test[test_rows], "dims": np.array(widths)}
    CACHE.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **data)
    partial.replace(path)  # never a half-written cache
    return data


def layer_choices(widths: list[int]) -> dict[str, list[int]]:
    """Named sets of blocks: the last layer, each stage's last block alone, and mixes of stages."""
    last = len(widths) - 1
    stage_ends = [i for i in range(last) if i == last - 1 or widths[i + 1] != widths[i]]
    choices = {"last layer (headstart today)": [last]}
    choices.update({f"block {b} alone ({widths[b]})": [b] for b in stage_ends})
    choices["every stage's end + last layer"] = [*stage_ends, last]
    choices["second half's stage ends + last layer"] = [b for b in stage_ends if b >= last // 2] + [last]
    return choices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=6000, help="training images to draw labels from (%(default)s)")
    parser.add_argument("--test", type=int, default=3000, help="test images (%(default)s)")
    parser.add_argument("--budgets", default="100,200", help="random labels (%(default)s)")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    from headstart.labeling.loop_probe import fit_loop_probe, pool_scaling
    from headstart.labeling.pool_probe import loop_head

    data = load(args.pool, args.test)
    widths = [int(w) for w in data["dims"]]
    ends = np.cumsum(widths)
    columns = lambda blocks: np.concatenate([np.arange(ends[b] - widths[b], ends[b]) for b in blocks])  # noqa: E731
    choices = layer_choices(widths)
    pool_choices = [next(iter(choices)), "second half's stage ends + last layer"]
    rows = []
    for name, blocks in choices.items():
        cols = columns(blocks)
        x, xt = data["x"][:, cols], data["xt"][:, cols]
        scaling = pool_scaling(x)
        for method in ("probe", "propagation") if name in pool_choices else ("probe",):
            for budget in (int(b) for b in args.budgets.split(",")):
                accuracies, started = [], time.process_time()
                for seed in range(args.seeds):
                    labeled = np.random.default_rng(seed).permutation(len(x))[:budget]
                    y = data["y"][labeled]
                    head = fit_loop_probe(x[labeled], y, 10, scaling, seed=seed) if method == "probe" else \
                        loop_head(x, labeled, y, 10, scaling, method=method, seed=seed)[0]
                    accuracies.append(float((head.proba(xt).argmax(1) == data["yt"]).mean()))
                mean, std = common.mean_std(accuracies)
                rows.append({"layers": name, "width": len(cols), "method": method, "labels": budget,
                             "accuracy_mean": mean, "accuracy_std": std, "accuracies": accuracies,
                             "cpu_seconds_per_fit": (time.process_time() - started) / args.seeds})
    common.print_table(rows, ["layers", "width", "method", "labels", "accuracy_mean", "accuracy_std"],
                       title=f"Fashion-MNIST, effnet-lite0, random labels, {args.seeds} seeds, "
                             f"pool {args.pool}, test {args.test}")
    path = common.write_results("layer_features-fashion", {"machine": common.machine_info(), "config": vars(args),
                                                           "widths": widths, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
