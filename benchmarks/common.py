"""Plumbing shared by the benchmarks: isolation, timing, tables, result files and targets.

Scripts in this folder are run as ``python benchmarks/<script>.py`` (so ``import common`` works);
``from benchmarks.common import ...`` works too from the repository root. Data sets and
backbones are in ``benchmark_data.py``, the sweeps' fit jobs in ``sweep_jobs.py``.
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
    from headstart.exported.cpu_int8 import cpuinfo_field, int8_flags

    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        # Hosts differ from run to run: the model and its vector units say which figures compare.
        "cpu_model": cpuinfo_field("model name"),
        "cpu_vector_flags": int8_flags(),
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


# The file each results name of this process goes to, kept as a run rewrites it (a file a job, say).
_WRITING: dict[Path, Path] = {}


def results_path(name: str, *, continue_today: bool = False) -> Path:
    """``benchmarks/results/<name>-<YYYY-MM-DD>.json``, or, when another run wrote that file today,
    ``<name>-<YYYY-MM-DD>T<HHMMSS>.json`` beside it (it sorts after it): a rerun never overwrites
    committed figures. ``continue_today``: today's newest file of ``name`` instead, for a run that
    merged its rows into it (``label_budget.py --resume``, where runs of several methods share one).
    The same path for the rest of this process, past midnight too."""
    key = RESULTS_DIR / name
    if key not in _WRITING:
        today = _dt.date.today().isoformat()
        path = RESULTS_DIR / f"{name}-{today}.json"
        existing = sorted(RESULTS_DIR.glob(f"{name}-{today}*.json"))
        if continue_today and existing:
            path = existing[-1]
        elif path.exists():
            path = path.with_name(f"{name}-{_dt.datetime.now():%Y-%m-%dT%H%M%S}.json")
        _WRITING[key] = path
    return _WRITING[key]


def write_results(name: str, payload: dict, *, continue_today: bool = False) -> Path:
    """Write :func:`results_path`'s file with the machine info added; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = results_path(name, continue_today=continue_today)
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


def run_job(fn: Callable, *args, **kwargs) -> dict:
    """``fn`` in a fresh process: its dict result with ``status`` 'ok' and ``peak_rss_mb``,
    or ``status`` 'failed' and the child's traceback in ``error`` (printed to stderr too)."""
    try:
        result, peak_mb = run_isolated(fn, *args, **kwargs)
    except RuntimeError as error:
        print(str(error)[-3000:], file=sys.stderr)
        return {"status": "failed", "error": str(error)[-6000:]}
    return {**result, "status": "ok", "peak_rss_mb": peak_mb}


# --------------------------------------------------------------------------- statistics and targets

def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value); (None, None) for none."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


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
