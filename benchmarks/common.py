"""Plumbing shared by the benchmarks: isolation, timing, tables, result files, jobs and summaries.

Scripts in this folder are run as ``python benchmarks/<script>.py`` (so ``import common`` works);
``from benchmarks.common import ...`` works too from the repository root. Data sets and
backbones are in ``benchmark_data.py``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import multiprocessing as mp
import operator
import os
import platform
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
THREADS = 2  # torch / ONNX Runtime threads of every benchmark job: the torch peers fix 2 themselves


# --------------------------------------------------------------------------- isolation

def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGTERM this process when its parent dies.

    A parent killed by SIGTERM or SIGKILL runs no cleanup, and the job would run on for hours.
    The signal comes when the parent's *thread* that started the child ends: call from the main one.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, ctypes.c_ulong(signal.SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl: no signal will come
        os._exit(1)


def _child_main(conn, fn, args, kwargs, parent_pid):
    """Runs in the spawned child: call fn, send back (ok, result-or-traceback, peak RSS in MB)."""
    _die_with_parent(parent_pid)
    try:
        result = fn(*args, **kwargs)
        ok = True
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        result = traceback.format_exc()
        ok = False
    peak_mb = peak_rss_mb()
    try:
        conn.send((ok, result, peak_mb))
    except Exception:  # the result would not pickle
        conn.send((False, "result could not be sent back:\n" + traceback.format_exc(), peak_mb))
    finally:
        conn.close()


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    On Linux it is VmHWM from /proc/self/status: ``getrusage(RUSAGE_SELF).ru_maxrss`` there carries
    over the parent's peak through fork+exec (the kernel folds the pre-exec high-water mark into
    it), so a 'spawn' child would report at least its parent's peak. Elsewhere: ru_maxrss.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def run_isolated(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    """Run top-level ``fn(*args, **kwargs)`` in a fresh 'spawn' subprocess.

    Returns ``(result, peak_rss_mb)``, the child's own peak resident memory measured inside it
    (see :func:`peak_rss_mb`).
    A failure in the child is raised here as ``RuntimeError`` carrying the child's traceback text.
    """
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child_conn, fn, args, kwargs, os.getpid()))
    proc.start()
    child_conn.close()
    try:
        ok, payload, peak_mb = parent_conn.recv()  # read before join: big results fill the pipe
    except EOFError:
        proc.join()
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} died in its subprocess without a result "
                           f"(exit code {proc.exitcode}; a negative code is a signal, -9 often means out of memory)")
    except BaseException:  # Ctrl-C or a SIGTERM handler's SystemExit: the job must not outlive the run
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        raise
    finally:
        parent_conn.close()
    proc.join()
    if not ok:
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} failed in its subprocess:\n{payload}")
    return payload, peak_mb


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (time.perf_counter wall time)."""

    def __init__(self):
        self.start = None
        self.seconds = None

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start

    @property
    def elapsed(self) -> float:
        """Seconds so far (inside the block) or in total (after it)."""
        return self.seconds if self.seconds is not None else time.perf_counter() - self.start


# --------------------------------------------------------------------------- reporting

def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_table(rows: Sequence, columns: Sequence[str], title: str | None = None) -> None:
    """Print a plain fixed-width table. ``rows`` are dicts (looked up by column) or sequences."""
    cells = []
    for row in rows:
        if isinstance(row, dict):
            cells.append([_fmt(row.get(c)) for c in columns])
        else:
            cells.append([_fmt(v) for v in row])
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join("-" * w for w in widths)
    if title:
        print(f"\n{title}")
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)))
    print(line)
    for r in cells:
        # numbers right-aligned, text left-aligned
        print("  ".join(v.rjust(w) if _looks_numeric(v) else v.ljust(w) for v, w in zip(r, widths)))
    sys.stdout.flush()


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def machine_info() -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        import psutil
        info["memory_gb"] = round(psutil.virtual_memory().total / 1024 ** 3, 1)
    except ImportError:
        pass
    for module in ("torch", "transformers", "sentence_transformers", "sklearn", "setfit", "numpy"):
        try:
            info[f"{module}_version"] = importlib.import_module(module).__version__
        except Exception:  # noqa: BLE001 - absent or broken: just not reported
            info[f"{module}_version"] = None
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        pass
    return info


def write_results(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>-<YYYY-MM-DD>.json`` with the machine info added; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{_dt.date.today().isoformat()}.json"
    document = {
        "name": name,
        "written": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value):
    from headstart.output import json_value

    try:
        return json_value(value)
    except TypeError:  # a results file keeps whatever a job returned, as text
        return str(value)


# --------------------------------------------------------------------------- sampling

def sample_per_class(labels: Sequence, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` items per class, drawn without replacement with ``seed``, in shuffled order."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in sorted(set(labels.tolist())):
        pool = np.flatnonzero(labels == cls)
        if len(pool) < k:
            raise ValueError(f"class {cls!r} has only {len(pool)} items, {k} were asked for")
        chosen.append(rng.choice(pool, size=k, replace=False))
    indices = np.concatenate(chosen)
    rng.shuffle(indices)
    return indices


# --------------------------------------------------------------------------- jobs

# Offline, and no progress bars or load reports from transformers, datasets and SetFit in the log.
QUIET_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
             "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}


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
            with Timer() as timer:
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
                  threads: int = THREADS) -> dict:
    """One ``headstart.fit`` (nothing written), meant for :func:`run_job`.

    ``seconds`` is the wall time of the whole fit: reading, feature extraction (or the cache),
    probe, fine-tuning and the test prediction; ``features`` says what the cache served.
    A fine-tuned model's test accuracy is checked after the fit, outside the timing, by predicting
    the test file again (``accuracy``; fit's own figure is ``accuracy_reported``): headstart once
    predicted through the ONNX export of the weights as they were before fine-tuning.
    """
    os.environ.update(HEADSTART_CACHE=str(cache_dir), HEADSTART_QUIET="1", **QUIET_ENV)
    import torch
    torch.set_num_threads(threads)
    import headstart
    from headstart.api import read
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
    with Timer() as timer:
        model = headstart.fit(train_csv, test=test_csv, val=val_csv, backbone=backbone, mode=mode, seed=seed,
                              out=None, image_size=image_size, finetune_config=config)
    cpu = time.process_time() - cpu
    info = model.info["config"]
    counts = info["counts"]
    row = {"method": mode, "accuracy": model.metrics["accuracy"], "accuracy_reported": model.metrics["accuracy"],
           "seconds": timer.seconds, "cpu_seconds": cpu, "load": os.getloadavg(), "n_train": counts["train"], "n_val": counts["val"], "n_test": counts["test"],
           "auto_mode": "finetune", "probe_C": info["probe"]["C"],
           "probe_selection": info["probe"]["selection"], "finetune": info.get("finetune"),
           "epochs_run": len(model.info["history"]) - 1, "features": _feature_summary(list(calls)),
           "backbone": backbone, "image_size": getattr(model.backbone, "image_size", None),
           "val_accuracy_by_epoch": [h.get("val_accuracy") for h in model.info["history"]],
           "validation": info.get("validation")}  # probe vs best fine-tuned epoch: what mode auto compares
    if model.finetuned:
        with Timer() as check:
            model.backbone._fingerprint = None  # where fingerprints are memoized: the tuned weights' own
            test = read(test_csv)
            proba = model.predict_proba(test)
        row["accuracy"] = float((proba.argmax(1) == test.label_ids(model.classes)).mean())
        row["recheck_seconds"] = check.seconds
    return row


def peer_job(fn: Callable, *args, **kwargs) -> dict:
    """``fn(*args, **kwargs)`` (a peer) with ``job_seconds``: the wall time of the whole call,
    imports and per-epoch test evaluations included (the peer's ``seconds`` leaves them out)."""
    os.environ.update(QUIET_ENV)
    with Timer() as timer:
        result = fn(*args, **kwargs)
    return {**result, "job_seconds": timer.seconds}


def run_job(fn: Callable, *args, **kwargs) -> dict:
    """``fn`` in a fresh process: its dict result with ``status`` 'ok' and ``peak_rss_mb``,
    or ``status`` 'failed' and the child's traceback in ``error`` (printed to stderr too)."""
    try:
        result, peak_mb = run_isolated(fn, *args, **kwargs)
    except RuntimeError as error:
        print(str(error)[-3000:], file=sys.stderr)
        return {"status": "failed", "error": str(error)[-6000:]}
    return {**result, "status": "ok", "peak_rss_mb": peak_mb}


def job_line(row: dict) -> str:
    """A one-line progress report of a finished job row."""
    if row["status"] != "ok":
        return f"size={row['size']} seed={row['seed']} {row['method']}: FAILED"
    cached = row.get("features", {}).get("cached")
    return (f"size={row['size']} seed={row['seed']} {row['method']}: accuracy {row['accuracy']:.4f}, "
            f"{row['seconds']:.1f} s, peak {row['peak_rss_mb']:.0f} MB"
            + (f", features from cache: {cached}" if cached else ""))


# --------------------------------------------------------------------------- summaries and targets

def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value); (None, None) for none."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def default_mode_rows(rows: list[dict]) -> list[dict]:
    """What ``mode='auto'`` gives, one row per job of the mode it starts with, named 'auto'.

    Auto fine-tunes, then keeps the probe when the probe leads the fine-tune on validation beyond
    the two scores' noise (``headstart.learn.trainer.keeps_finetuned`` on the row's ``validation``).
    The kept probe is the one ``mode='probe'`` fits (same strength, refit on train and validation),
    so its accuracy is the probe row's of the same size and seed; its time is the fine-tune's,
    which auto spent before deciding."""
    from headstart.learn.trainer import keeps_finetuned

    out = []
    for row in rows:
        if row.get("status") != "ok" or row.get("auto_mode") != row["method"]:
            continue
        validation = row.get("validation") or {}
        kept_probe = bool(validation) and not keeps_finetuned(validation["finetuned"], validation["probe"],
                                                              row["n_val"])
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
        accuracy, seconds = mean_std(r["accuracy"] for r in ok), mean_std(r["seconds"] for r in ok)
        cold = [r["seconds"] for r in ok if r.get("features", {}).get("cached") == "none"]
        rss = [r["peak_rss_mb"] for r in ok]
        chosen = sorted({r["chosen"] for r in ok if "chosen" in r})
        summary.append({"size": size, "method": method + (f" (={'/'.join(chosen)})" if chosen else ""),
                        "key": method, "runs": len(ok), "failed": len(group) - len(ok),
                        "accuracy_mean": accuracy[0], "accuracy_std": accuracy[1],
                        "seconds_mean": seconds[0], "seconds_std": seconds[1],
                        "cold_seconds_mean": mean_std(cold)[0],
                        "peak_rss_mb_mean": mean_std(rss)[0], "peak_rss_mb_max": max(rss) if rss else None,
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
    print_table([{"size": e["size"], "method": e["method"], "runs": e["runs"] if not e["failed"]
                  else f"{e['runs']} ({e['failed']} failed)",
                  "accuracy": pm(e["accuracy_mean"], e["accuracy_std"], ".4f"),
                  "seconds": pm(e["seconds_mean"], e["seconds_std"], ".1f"),
                  "cold s": "-" if e["cold_seconds_mean"] is None else f"{e['cold_seconds_mean']:.1f}",
                  "peak RSS MB": f"{e['peak_rss_mb_mean']:.0f}" if e["runs"] else "-"} for e in summary],
                ["size", "method", "runs", "accuracy", "seconds", "cold s", "peak RSS MB"], title=title)


_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def target(description: str, value, op: str, reference) -> dict:
    """A target check: ``met`` is whether ``value op reference``, None when either was not measured."""
    met = None if value is None or reference is None else bool(_OPS[op](value, reference))
    return {"target": description, "value": value, "op": op, "reference": reference, "met": met}


def print_targets(targets: list[dict], title: str = "Targets") -> None:
    number = lambda v: v if v is None or isinstance(v, str) else f"{v:.4g}"  # noqa: E731
    print_table([{**t, "value": number(t["value"]), "reference": number(t["reference"]),
                  "met": {True: "yes", False: "NO", None: "not measured"}[t["met"]]} for t in targets],
                ["target", "value", "op", "reference", "met"], title=title)
