"""The size x seed sweeps of ``sst2.py`` and ``fashion_mnist.py``: their headstart and peer jobs,
run through ``common.run_job``, and the summaries of the rows those jobs give."""

from __future__ import annotations

import importlib
import os
import time
from typing import Callable

try:  # run as `python benchmarks/<script>.py` or imported as `benchmarks.sweep_jobs`
    import common
except ImportError:
    from benchmarks import common


def _count_features(stats: list) -> None:
    """Wrap headstart's feature functions in this process so that each call is logged in ``stats``
    as {kind, items, seconds}: 'cached' (cached_features: items asked for), 'computed' (frozen
    features the cache lacked) and 'uncached' (compute_features called directly by the api or
    the trainer or the model: forward passes of a tuned backbone)."""
    import headstart.features.extract as extract
    import headstart.learn.trainer as trainer
    import headstart.model as model_module

    def logged(fn, kind):
        def wrapper(backbone, items, *args, **kwargs):
            with common.Timer() as timer:
                out = fn(backbone, items, *args, **kwargs)
            stats.append({"kind": kind, "items": len(items), "seconds": timer.seconds})
            return out
        return wrapper

    cached = logged(extract.cached_features, "cached")
    extract.compute_features = logged(extract.compute_features, "computed")  # what cached_features calls
    for module in (trainer, model_module):
        if hasattr(module, "compute_features"):
            module.compute_features = logged(module.compute_features, "uncached")
    trainer.cached_features = model_module.cached_features = cached


def _feature_summary(calls: list) -> dict:
    total = lambda kind, key="items": sum(c[key] for c in calls if c["kind"] == kind)  # noqa: E731
    asked, computed = total("cached"), total("computed")
    return {"frozen_items": asked, "frozen_computed": computed, "frozen_from_cache": asked - computed,
            "cached": "none" if computed >= asked else ("all" if computed == 0 else "partial"),
            "extract_seconds": total("computed", "seconds"), "uncached_items": total("uncached"),
            "calls": calls}


def headstart_job(train_csv: str, test_csv: str, *, backbone: str, mode: str, seed: int, cache_dir: str,
                  val_csv: str | None = None, image_size: int | None = None, finetune: dict | None = None,
                  threads: int = common.THREADS) -> dict:
    """One ``headstart.fit`` (nothing written), meant for :func:`run_job`.

    ``seconds`` is the wall time of the whole fit: reading, feature extraction (or the cache),
    probe, fine-tuning and the test prediction; ``features`` says what the cache served.
    A fine-tuned model's test accuracy is checked after the fit, outside the timing, by predicting
    the test file again (``accuracy``; fit's own figure is ``accuracy_reported``): headstart once
    predicted through the ONNX export of the weights as they were before fine-tuning.
    """
    os.environ.update(HEADSTART_CACHE=str(cache_dir), HEADSTART_QUIET="1", **common.QUIET_ENV)
    import torch
    torch.set_num_threads(threads)
    import headstart
    from headstart.data.prepare import read
    from headstart.backbones import backbone_modality
    from headstart.learn.config import FinetuneConfig

    # What headstart imports lazily is imported here, outside the timing, as the peers do.
    lazy = ["onnxruntime"] + (["sentence_transformers"] if backbone_modality(backbone) == "text"
                              else ["efficientnet_lite_pytorch"])
    for module in lazy:
        importlib.import_module(module)
    calls: list = []
    _count_features(calls)
    config = FinetuneConfig(**finetune) if finetune else None
    cpu = time.process_time()  # all threads: on a shared machine, what the job itself took
    with common.Timer() as timer:
        model = headstart.fit(train_csv, test=test_csv, val=val_csv, backbone=backbone, mode=mode, seed=seed,
                              out=None, image_size=image_size, finetune_config=config)
    cpu = time.process_time() - cpu
    info = model.info["config"]
    counts = info["counts"]
    row = {"method": mode, "accuracy": model.metrics["accuracy"], "accuracy_reported": model.metrics["accuracy"],
           "seconds": timer.seconds, "cpu_seconds": cpu, "load": os.getloadavg(),
           "n_train": counts["train"], "n_val": counts["val"], "n_test": counts["test"],
           "auto_mode": "finetune", "probe_C": info["probe"]["C"],
           "probe_selection": info["probe"]["selection"], "finetune": info.get("finetune"),
           "epochs_run": len(model.info["history"]) - 1, "features": _feature_summary(list(calls)),
           "backbone": backbone, "image_size": getattr(model.backbone, "image_size", None),
           "val_accuracy_by_epoch": [h.get("val_accuracy") for h in model.info["history"]],
           "validation": info.get("validation")}  # probe vs best fine-tuned epoch: what mode auto compares
    if model.finetuned:
        with common.Timer() as check:
            model.backbone._fingerprint = None  # where fingerprints are memoized: the tuned weights' own
            test = read(test_csv)
            proba = model.predict_proba(test)
        row["accuracy"] = float((proba.argmax(1) == test.label_ids(model.classes)).mean())
        row["recheck_seconds"] = check.seconds
    return row


def peer_job(fn: Callable, *args, **kwargs) -> dict:
    """``fn(*args, **kwargs)`` (a peer) with ``job_seconds``: the wall time of the whole call,
    imports and per-epoch test evaluations included (the peer's ``seconds`` leaves them out)."""
    os.environ.update(common.QUIET_ENV)
    with common.Timer() as timer:
        result = fn(*args, **kwargs)
    return {**result, "job_seconds": timer.seconds}


def job_line(row: dict) -> str:
    """A one-line progress report of a finished job row."""
    if row["status"] != "ok":
        return f"size={row['size']} seed={row['seed']} {row['method']}: FAILED"
    cached = row.get("features", {}).get("cached")
    return (f"size={row['size']} seed={row['seed']} {row['method']}: accuracy {row['accuracy']:.4f}, "
            f"{row['seconds']:.1f} s, peak {row['peak_rss_mb']:.0f} MB"
            + (f", features from cache: {cached}" if cached else ""))




def default_mode_rows(rows: list[dict], modality: str) -> list[dict]:
    """What ``mode='auto'`` gives, one row per job of the mode it starts with, named 'auto'.

    Auto fine-tunes, then keeps the probe when the probe leads the fine-tune on validation beyond
    the two scores' noise, or when neither leads beyond it and the probe is the favoured model at this
    many labels a class (``headstart.learn.auto_choice.keeps_finetuned`` and ``favours_finetune`` on the row's
    ``validation`` and ``size``; these sweeps have no pool).
    The kept probe is the one ``mode='probe'`` fits (same strength, refit on train and validation),
    so its accuracy is the probe row's of the same size and seed; its time is the fine-tune's,
    which auto spent before deciding."""
    from headstart.learn.auto_choice import favours_finetune, keeps_finetuned

    out = []
    for row in rows:
        if row.get("status") != "ok" or row.get("auto_mode") != row["method"]:
            continue
        validation = row.get("validation") or {}
        favoured = favours_finetune(modality, row["size"], 1, pool=False)  # size: labels a class
        kept_probe = bool(validation) and not keeps_finetuned(validation["finetuned"], validation["probe"],
                                                              row["n_val"], favoured=favoured)
        probe = next((r for r in rows if r["method"] == "probe" and r.get("status") == "ok"
                      and r["size"] == row["size"] and r["seed"] == row["seed"]), None)
        if not kept_probe:
            out.append({**row, "method": "auto", "chosen": row["method"]})
        elif probe is not None:  # without the probe's job its test accuracy is unknown: no row
            out.append({**row, "method": "auto", "chosen": "probe", "accuracy": probe["accuracy"]})
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """Per (size, method), in first-seen order: mean and std over the ok rows (seeds) of accuracy and
    seconds, mean and max peak RSS, and the seconds of the runs that read nothing from the cache."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["size"], row["method"]), []).append(row)
    summary = []
    for (size, method), group in groups.items():
        ok = [r for r in group if r["status"] == "ok"]
        accuracy, seconds = common.mean_std(r["accuracy"] for r in ok), common.mean_std(r["seconds"] for r in ok)
        cold = [r["seconds"] for r in ok if r.get("features", {}).get("cached") == "none"]
        rss = [r["peak_rss_mb"] for r in ok]
        chosen = sorted({r["chosen"] for r in ok if "chosen" in r})
        summary.append({"size": size, "method": method + (f" (={'/'.join(chosen)})" if chosen else ""),
                        "key": method, "runs": len(ok), "failed": len(group) - len(ok),
                        "accuracy_mean": accuracy[0], "accuracy_std": accuracy[1],
                        "seconds_mean": seconds[0], "seconds_std": seconds[1],
                        "cold_seconds_mean": common.mean_std(cold)[0],
                        "peak_rss_mb_mean": common.mean_std(rss)[0], "peak_rss_mb_max": max(rss) if rss else None,
                        "accuracies": [r["accuracy"] for r in ok], "seeds": [r["seed"] for r in ok]})
    return summary


def summary_value(summary: list[dict], size, method: str, key: str = "accuracy_mean"):
    """``key`` of the summary entry of (size, method), None when absent."""
    for entry in summary:
        if entry["size"] == size and entry["key"] == method:
            return entry[key]
    return None


def print_summary(summary: list[dict], title: str) -> None:
    pm = lambda m, s, f: "-" if m is None else f"{m:{f}} ± {s:{f}}"  # noqa: E731
    common.print_table([{"size": e["size"], "method": e["method"], "runs": e["runs"] if not e["failed"]
                         else f"{e['runs']} ({e['failed']} failed)",
                         "accuracy": pm(e["accuracy_mean"], e["accuracy_std"], ".4f"),
                         "seconds": pm(e["seconds_mean"], e["seconds_std"], ".1f"),
                         "cold s": "-" if e["cold_seconds_mean"] is None else f"{e['cold_seconds_mean']:.1f}",
                         "peak RSS MB": f"{e['peak_rss_mb_mean']:.0f}" if e["runs"] else "-"} for e in summary],
                       ["size", "method", "runs", "accuracy", "seconds", "cold s", "peak RSS MB"], title=title)
