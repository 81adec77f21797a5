"""Labels to accuracy: test accuracy after 20, 50, 100, 200, 300 and 500 labels, and the CPU it cost.

A simulated annotator answers with the true label. Methods (``--methods``), each at every budget:

- ``headstart``: headstart's default labeling loop, as a labeling project runs it
  (:mod:`headstart.labeling.batches`): for text a zero-shot start from the class descriptions (the
  first batch class-balanced by its predictions, later ones chosen with it until the first retrain,
  and every retrain blended with it, :mod:`headstart.labeling.zero_shot_prior`),
  for images a cold start (k-means centres, then k-center) until the first probe; batches of
  ``--batch`` (``label next``'s 10), the default strategy, the loop's probe refitted every
  ``--retrain-every`` labels (the project's 50). The model at a budget is ``--final``: ``probe``
  (the project's retrain on the labels, zero-shot blend included) or ``fit`` (``headstart.fit`` on the labels with the pool as
  ``unlabeled``, in ``--fit-mode``).
- ``random``: random labels, headstart's probe on them (``fit_labeled_probe``: C by cross-validation).
- ``setfit``: random labels (the same as ``random``'s), SetFit on the same MiniLM folder (text only).
- ``small-text``: small-text's best query strategy on these data (``SMALL_TEXT_BEST``, from
  ``active_learning.py``'s runs), started from 10 random labels, batches of 10, the loop's probe
  refitted every batch; then headstart's probe on the labels, as ``random``.
- ``pool-fit``: the labels ``headstart`` chose, ``headstart.fit`` on them with the pool as ``unlabeled``
  (self-training or label spreading where it beats the labels alone) in ``--fit-mode``.
- ``no-pool``: the labels ``headstart`` chose, ``headstart.fit`` on them alone in ``--fit-mode``.

SST-2 (pool: the train split, test: the test split, ``minilm-l6``) and Fashion-MNIST (pool: 10,000
training images, test: the 10,000 test images, ``effnet-lite0``), features from headstart's cache
(``active_learning.py``'s loaders). CPU seconds are ``time.process_time()`` (every thread of the
process): for a loop, what choosing and refitting cost up to the budget, plus the final model; for
SetFit, its whole job in its own process. The JSON is rewritten after every job (``partial`` until
done); ``--resume`` keeps a file's finished rows and runs only what is missing.

    python benchmarks/label_budget.py --quick --datasets synthetic     # smoke run, seconds
    python benchmarks/label_budget.py --methods headstart,random,small-text,no-pool --seeds 5
    python benchmarks/label_budget.py --methods setfit --budgets 20,50,100 --seeds 3 --resume
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

try:
    import common
    import simulated_loop
    from active_learning import LOADERS, small_text_query
    from label_budget_report import (BUDGETS, LABELS, METHODS, every_target, plot, print_summary, stretch, summarize,
                                     with_served)
except ImportError:
    from benchmarks import common, simulated_loop
    from benchmarks.active_learning import LOADERS, small_text_query
    from benchmarks.label_budget_report import (BUDGETS, LABELS, METHODS, every_target, plot,
                                                print_summary, stretch, summarize, with_served)

# active_learning.py's runs: fewest labels to 95% of the full-pool probe among small-text's strategies
# (SST-2, 10 seeds: entropy 298; Fashion-MNIST, 3 seeds: breaking ties 370).
SMALL_TEXT_BEST = {"sst2": "st-entropy", "fashion": "st-breaking-ties", "synthetic": "st-breaking-ties"}
SMALL_TEXT_START = 10


# --------------------------------------------------------------------------- the labels each method gets

class Data:
    """A data set's features, class ids and items (``active_learning.PoolItems``, None for synthetic)."""

    def __init__(self, name: str, pool: int | None, test: int | None):
        self.name = name
        self.x, self.y, self.x_test, self.y_test, self.backbone, self.items = LOADERS[name](pool, test, items=True)
        self.k = int(max(self.y.max(), self.y_test.max()) + 1)
        from headstart.labeling.loop_probe import pool_scaling

        self.scaling = pool_scaling(self.x)


def zero_shot_start(data: Data):
    """The zero-shot start's head (over the pool's features), its test accuracy and its CPU seconds; text
    only, else (None, None, 0). Calibrated on the whole pool, as a project calibrates on its pool."""
    if data.items is None or data.items.modality != "text":
        return None, None, 0.0
    from headstart.backbones import create_backbone
    from headstart.features.extract import compute_features
    from headstart.learn.zero_shot import parse_descriptions, zero_shot_head

    try:
        from zero_shot import DESCRIPTIONS
    except ImportError:
        from benchmarks.zero_shot import DESCRIPTIONS
    started = time.process_time()
    backbone = create_backbone(data.backbone)
    made = zero_shot_head(lambda texts: compute_features(backbone, texts, description="class descriptions"),
                          data.items.classes, parse_descriptions(DESCRIPTIONS.get(data.name), data.items.classes),
                          data.x)
    seconds = time.process_time() - started
    accuracy = float((made.head.proba(data.x_test).argmax(1) == data.y_test).mean())
    return made.head, accuracy, seconds


def pool_training_available() -> bool:
    """Whether this checkout's labeling loop trains on the pool (``headstart.labeling.pool_probe``, issue 21
    item 2); until it does, ``headstart``'s loop and final model use the labels alone."""
    import importlib.util

    return importlib.util.find_spec("headstart.labeling.pool_probe") is not None


def loop_retrain(data: Data, positions, seed: int, zero_shot=None):
    """The labeling project's retrain (``retrain.retrain_probe``) on the labels at ``positions``: the loop's
    probe (trained on the pool too where the checkout does, :func:`pool_training_available`), blended with
    the zero-shot start where there is one (``zero_shot_prior``: the probe's share chosen by out-of-fold
    log-loss on the labels). Returns a LinearHead."""
    from headstart.labeling.pool_probe import loop_head
    from headstart.learn.prior import blended_with

    head, held_out, _ = loop_head(data.x, np.asarray(positions), data.y[positions], data.k, data.scaling,
                                  method="auto" if pool_training_available() else "none", seed=seed)
    return head if zero_shot is None else blended_with(zero_shot, head, data.x[positions], held_out,
                                                       data.y[positions])[0]


def headstart_loop(data: Data, seed: int, zero_shot, args) -> simulated_loop.LoopRun:
    """headstart's labeling loop (see the module notes) up to the largest budget; ``zero_shot``: the
    zero-shot start's head, or None."""
    from headstart.labeling.strategies import DEFAULT_STRATEGY, class_balanced, select

    x, y = data.x, data.y

    def fit(labeled, model):  # the project's retrain: fails (keeps the model) while one class is labeled
        if len(np.unique(y[labeled])) < 2:
            return model
        return loop_retrain(data, np.flatnonzero(labeled), seed, zero_shot).proba(x), False

    def choose(model, labeled, n, round_):
        proba, zero_shot = model if model is not None else (None, False)
        candidates = np.flatnonzero(~labeled)
        if proba is not None and zero_shot and len(np.unique(y[labeled])) < 2:
            return class_balanced(proba, candidates, n, np.bincount(y[labeled], minlength=data.k))
        return select(DEFAULT_STRATEGY, n, proba=proba, features=x, labeled=labeled,
                      labels=np.where(labeled, y, -1), candidates=candidates, seed=seed * 1000 + round_)

    model = None if zero_shot is None else (zero_shot.proba(x), True)
    return simulated_loop.simulate(len(y), [], choose, fit, batch=args.batch, max_labels=max(args.budgets),
                                   retrain_every=args.retrain_every, model=model)


def small_text_loop(data: Data, seed: int, args) -> simulated_loop.LoopRun:
    """small-text's best strategy from ``SMALL_TEXT_START`` random labels, the loop's probe every batch."""
    from headstart.labeling.loop_probe import fit_loop_probe

    strategy = SMALL_TEXT_BEST[data.name]
    first = np.random.default_rng(seed).choice(len(data.y), SMALL_TEXT_START, replace=False)

    def fit(labeled, _model):
        return fit_loop_probe(data.x[labeled], data.y[labeled], data.k, data.scaling, seed=seed).proba(data.x)

    def choose(proba, labeled, n, _round):
        return small_text_query(strategy, proba, data.x, labeled, data.y, n)

    return simulated_loop.simulate(len(data.y), first, choose, fit, batch=args.batch, max_labels=max(args.budgets))


def random_order(data: Data, seed: int, size: int) -> np.ndarray:
    """Random labels: the same for ``random`` and ``setfit`` of a seed."""
    return np.random.default_rng(seed).permutation(len(data.y))[:size]


# --------------------------------------------------------------------------- the model at a budget

def _one_class(data: Data, positions) -> float | None:
    """Test accuracy of predicting the only labeled class, when only one is labeled (else None)."""
    labels = np.unique(data.y[positions])
    return float(np.mean(data.y_test == labels[0])) if len(labels) < 2 else None


def probe_accuracy(data: Data, positions, seed: int, kind: str = "labeled", zero_shot=None) -> float:
    """Test accuracy of headstart's probe on the labels (``labeled``: C by cross-validation, as
    ``fit_labeled_probe``; ``loop``: the labeling project's retrain, :func:`loop_retrain`)."""
    from headstart.labeling.loop_probe import fit_labeled_probe

    single = _one_class(data, positions)
    if single is not None:
        return single
    head = loop_retrain(data, positions, seed, zero_shot) if kind == "loop" \
        else fit_labeled_probe(data.x[positions], data.y[positions], data.k, seed=seed)[0]
    return float((head.proba(data.x_test).argmax(1) == data.y_test).mean())


def fit_accuracy(data: Data, positions, seed: int, mode: str, pool: bool, fallbacks: list | None = None,
                 chosen: dict | None = None) -> float:
    """Test accuracy of ``headstart.fit`` on the labels in ``mode`` (with the pool as ``unlabeled`` when
    ``pool``); the test is predicted by the returned model, classes it never saw count as wrong. Where fit
    refuses labels too few to hold a validation item out of every class, headstart's probe on all of them
    (as ``random``'s), and the refusal goes in ``fallbacks``. ``chosen`` receives what the fit kept: its
    mode, how it used the pool, the fine-tuning strategy and the pseudo-labels it tuned on."""
    fallbacks = [] if fallbacks is None else fallbacks
    import headstart
    from headstart.data import Dataset

    items = data.items
    if items is None:
        raise SystemExit("headstart.fit needs items: the synthetic data set has only features")
    single = _one_class(data, positions)
    if single is not None:
        return single
    train = Dataset(items.modality, [items.pool[i] for i in positions], [items.pool_hashes[i] for i in positions],
                    labels=[items.classes[c] for c in data.y[positions]], source=f"{data.name} labels")
    extra = {}
    if pool:
        import inspect

        if "unlabeled" not in inspect.signature(headstart.fit).parameters:
            raise SystemExit("--final fit needs headstart.fit(..., unlabeled=POOL) (self-training on the pool, "
                             "issue 21 item 2): not in this checkout; use --final probe")
        extra["unlabeled"] = Dataset(items.modality, items.pool, items.pool_hashes, source=f"{data.name} pool")
    from headstart.errors import DataError

    test = Dataset(items.modality, items.test, items.test_hashes, labels=[items.classes[c] for c in data.y_test],
                   source=f"{data.name} test")
    try:
        model = headstart.fit(train, test=test, backbone=data.backbone, mode=mode, seed=seed, baseline=False, **extra)
    except DataError as error:  # a class with one label: fit cannot hold one out; the probe on every label
        if "too few items to split" not in str(error):
            raise
        fallbacks.append(str(error))
        return probe_accuracy(data, positions, seed)
    config = model.info.get("config", {})
    if chosen is not None:
        chosen.update(kept_mode=config.get("mode"), pool_method=config.get("unlabeled", {}).get("method"),
                      strategy=config.get("finetune", {}).get("strategy"), validation=config.get("validation"),
                      pseudo_labels=config.get("pseudo_labels", {}).get("items"),
                      pseudo_labels_kept=config.get("pseudo_labels", {}).get("kept"))
    predicted = np.asarray(model.classes)[model.predict_proba(test).argmax(1)]
    return float(np.mean(predicted == np.asarray(items.classes)[data.y_test]))


def setfit_job(train_texts, train_labels, test_texts, test_labels, seed) -> dict:
    """SetFit (``peers.setfit_peer``) with this process's CPU seconds, for ``common.run_job``."""
    started = time.process_time()
    try:
        from peers import setfit_peer
    except ImportError:
        from benchmarks.peers import setfit_peer
    os.environ.update(common.QUIET_ENV)
    result = setfit_peer(train_texts, train_labels, test_texts, test_labels, seed=seed)
    return {**result, "cpu_seconds": time.process_time() - started}


# --------------------------------------------------------------------------- jobs

def _timed(fn, *args, **kwargs) -> tuple[object, float, float]:
    """``fn(...)``, its CPU seconds (``process_time``) and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def loop_rows(method: str, data: Data, seed: int, budgets, args, state: dict) -> list[dict]:
    """The rows of a loop method (``headstart``, ``small-text``): one loop, the model at each budget."""
    if method == "headstart":
        run, loop_cpu, loop_wall = _timed(headstart_loop, data, seed, state["zero_shot"], args)
        state["orders"][str(seed)] = run.order.tolist()  # no-pool's labels, kept in the JSON
        start_cpu = state["start_cpu"]
    else:
        run, loop_cpu, loop_wall = _timed(small_text_loop, data, seed, args)
        start_cpu = 0.0
    rows = []
    for budget in budgets:
        positions = run.order[:budget]
        if method == "headstart" and args.final == "fit":
            accuracy, cpu, wall = _timed(fit_accuracy, data, positions, seed, args.fit_mode, True)
        else:
            accuracy, cpu, wall = _timed(probe_accuracy, data, positions, seed,
                                         "loop" if method == "headstart" else "labeled", state["zero_shot"])
        rows.append({"loop_cpu_seconds": start_cpu + (run.cpu_at(budget) or loop_cpu), "final_cpu_seconds": cpu,
                     "accuracy": accuracy, "final_wall_seconds": wall, "loop_wall_seconds": loop_wall,
                     "classes_labeled": int(len(np.unique(data.y[positions]))), "choose_seconds": run.choose_seconds})
    return rows


def budget_row(method: str, data: Data, seed: int, budget: int, args, state: dict) -> dict:
    """One row of a method that fits once per budget (``random``, ``setfit``, ``no-pool``)."""
    if method in ("no-pool", "pool-fit"):
        order = state["orders"].get(str(seed))
        if order is None:
            raise LookupError(f"{method} needs headstart's labels of this seed: run headstart first")
        positions = np.asarray(order[:budget])
        fallbacks: list = []
        chosen: dict = {}
        accuracy, cpu, wall = _timed(fit_accuracy, data, positions, seed, args.fit_mode, method == "pool-fit",
                                     fallbacks, chosen)
        return {"accuracy": accuracy, "final_cpu_seconds": cpu, "final_wall_seconds": wall, "fit_mode": args.fit_mode,
                **chosen,
                **({"fallback": "headstart's probe on every label: " + fallbacks[0][:200]} if fallbacks else {})}
    positions = random_order(data, seed, budget)
    if method == "random":
        accuracy, cpu, wall = _timed(probe_accuracy, data, positions, seed)
        return {"accuracy": accuracy, "final_cpu_seconds": cpu, "final_wall_seconds": wall}
    items = data.items
    if items is None or items.modality != "text":
        raise LookupError("N/A: SetFit is a text method")
    job = common.run_job(setfit_job, [items.pool[i] for i in positions], [items.classes[c] for c in data.y[positions]],
                         items.test, [items.classes[c] for c in data.y_test], seed)
    if job["status"] != "ok":
        raise RuntimeError(job["error"][-500:])
    return {"accuracy": job["accuracy"], "final_cpu_seconds": job["cpu_seconds"],
            "final_wall_seconds": job["job_seconds"] if "job_seconds" in job else job["seconds"],
            "peak_rss_mb": job["peak_rss_mb"]}


def run_dataset(name: str, args, document: dict) -> dict:
    """Every (method, seed, budget) of ``name`` not in ``document`` yet, saved after each job."""
    data = Data(name, args.pool, args.test)
    zero_shot, accuracy, cpu = zero_shot_start(data)
    document.update(zero_shot_accuracy=accuracy, zero_shot_cpu_seconds=cpu, pool=len(data.y), test=len(data.y_test),
                    backbone=data.backbone, small_text_strategy=SMALL_TEXT_BEST[name],
                    loop_pool_training=pool_training_available())
    state = {"zero_shot": zero_shot, "start_cpu": cpu, "orders": document.setdefault("orders", {})}
    rows = document["rows"] = [r for r in document.get("rows", []) if r["status"] == "ok"]  # failures: tried again
    done = {(r["method"], r["seed"], r["budget"]) for r in rows}
    for method in args.methods:
        if method == "setfit" and (data.items is None or data.items.modality != "text"):
            document.setdefault("not_applicable", {})["setfit"] = "SetFit is a text method"
            continue
        for seed in range(args.seeds):
            todo = [b for b in args.budgets if (method, seed, b) not in done]
            if not todo:
                continue
            if method in ("headstart", "small-text"):
                made = loop_rows(method, data, seed, todo, args, state)
                new = [{"method": method, "seed": seed, "budget": b, "status": "ok", **row} for b, row in zip(todo, made)]
            else:
                new = []
                for budget in todo:  # each row saved as it comes: a SetFit row takes minutes
                    try:
                        row = {"status": "ok", **budget_row(method, data, seed, budget, args, state)}
                    except (LookupError, RuntimeError) as error:
                        row = {"status": f"failed: {error}"}
                    row["cpu_seconds"] = row.get("final_cpu_seconds")
                    new.append({"method": method, "seed": seed, "budget": budget, **row})
                    if row["status"] == "ok" and budget != todo[-1]:
                        save(name, args, {**document, "rows": rows + new}, partial=True)
            for row in new:
                row["cpu_seconds"] = row.get("loop_cpu_seconds", 0.0) + row.get("final_cpu_seconds", 0.0) \
                    if row["status"] == "ok" else None
                print(f"  {name} {method} seed {seed} {row['budget']} labels: " + (
                    f"{row['accuracy']:.4f}, {row['cpu_seconds']:.1f} CPU s" if row["status"] == "ok" else row["status"]),
                      flush=True)
            rows += new
            done |= {(r["method"], r["seed"], r["budget"]) for r in new if r["status"] == "ok"}
            save(name, args, document, partial=True)
    return document


def result_name(name: str, quick: bool) -> str:
    return ("label_budget-quick-" if quick else "label_budget-") + name


def _merge_on_disk(name: str, args, document: dict) -> None:
    """With --resume, the rows (and loop orders) another process wrote to the same file since this one read
    it are kept: two runs of different methods on one data set can share the file."""
    on_disk = load_previous(name, args.quick)
    key = lambda r: (r["method"], r["seed"], r["budget"])  # noqa: E731
    mine = {key(r) for r in document.get("rows", [])}
    # extended in place: run_dataset keeps appending to this very list; rows this run replaces are not
    document.setdefault("rows", []).extend(r for r in on_disk.get("rows", []) if r["status"] == "ok"
                                           and key(r) not in mine and not is_rerun(r, args))
    for seed, order in on_disk.get("orders", {}).items():
        document.setdefault("orders", {}).setdefault(seed, order)


def is_rerun(row: dict, args) -> bool:
    """Whether ``row`` is one that ``--rerun`` replaces: a method it names, at a budget of ``--budgets``,
    of a seed this run runs (``--rerun pool-fit --budgets 300,500 --seeds 2`` keeps pool-fit's rows
    at the other budgets, and seed 2's). Such rows are dropped, not merged back."""
    methods = {m.strip() for m in args.rerun.split(",") if m.strip()}
    return row["method"] in methods and row["budget"] in args.budgets and row["seed"] < args.seeds


def save(name: str, args, document: dict, partial: bool = False):
    if args.resume:
        _merge_on_disk(name, args, document)
    summary = with_served(summarize(document.get("rows", [])))
    path = common.write_results(result_name(name, args.quick), {
        **document, "quick": args.quick, "partial": partial, "config": {k: v for k, v in vars(args).items()},
        "load": os.getloadavg(), "summary": summary,
        "targets": every_target(name, summary),
        "stretch": stretch(name, summary),
        "notes": "CPU seconds are time.process_time() of the process (every thread); the cores were shared "
                 "with other sessions (load above), so wall seconds mean little. SetFit runs in its own process."},
        continue_today=args.resume or args.report)  # the same rows: today's file is rewritten, not copied
    if summary:
        plot(name, summary, path.with_suffix(".png"))
    return path


KEPT = ("rows", "orders", "not_applicable", "runs_note", "zero_shot_accuracy", "zero_shot_cpu_seconds", "pool", "test",
        "backbone", "small_text_strategy", "loop_pool_training")


def with_note(previous: str | list | None, note: str) -> list[str]:
    """Every run's ``--note``, oldest first: a file resumed over several stops keeps why each run was cut."""
    notes = [previous] if isinstance(previous, str) else list(previous or [])
    return notes if note in notes else notes + [note]


def load_previous(name: str, quick: bool) -> dict:
    """The latest results file of ``name``, for --resume and --report (an empty document when none)."""
    files = sorted(common.RESULTS_DIR.glob(f"{result_name(name, quick)}-2*.json"))
    if not files:
        return {}
    document = json.loads(files[-1].read_text())
    return {k: document[k] for k in KEPT if k in document}


def starting_document(name: str, args) -> dict:
    """What a run of ``name`` starts from, with this run's ``--note`` added: the latest file whole for
    --report, less the --rerun rows for --resume, else nothing."""
    document = load_previous(name, args.quick) if args.resume or args.report else {}
    if not args.report:
        document["rows"] = [r for r in document.get("rows", []) if not is_rerun(r, args)]
    if args.note:
        document["runs_note"] = with_note(document.get("runs_note"), args.note)
    return document


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="sst2,fashion", help="from sst2, fashion, synthetic (%(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS), help="from " + ", ".join(METHODS))
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)), help="labels (%(default)s)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10, help="items a round (label next's default, %(default)s)")
    parser.add_argument("--retrain-every", type=int, default=50, help="headstart's loop refits after this many labels")
    parser.add_argument("--final", choices=("probe", "fit"), default="probe",
                        help="headstart's model at a budget: the loop's probe, or headstart.fit with the pool")
    parser.add_argument("--fit-mode", default="probe", help="headstart.fit's mode for --final fit and no-pool")
    parser.add_argument("--pool", type=int, default=None, help="subsample the pool")
    parser.add_argument("--test", type=int, default=None, help="subsample the test split")
    parser.add_argument("--resume", action="store_true", help="keep the finished rows of the latest file")
    parser.add_argument("--rerun", default="",
                        help="with --resume: methods whose rows at --budgets (of the seeds run) are dropped and run again")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: the latest files' table, targets and plot again, marked complete")
    parser.add_argument("--note", default=None, help="a line added to the JSON's runs_note (why seeds or budgets were cut)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, budgets 20,50,100, small pool")
    args = parser.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.budgets = sorted(int(b) for b in args.budgets.split(",") if b.strip())
    bad = [d for d in args.datasets if d not in LOADERS] + [m for m in args.methods if m not in METHODS]
    if bad:
        parser.error(f"unknown data set or method: {', '.join(bad)}")
    if args.quick:
        args.seeds, args.budgets = 1, [b for b in args.budgets if b <= 100]
        args.pool, args.test = args.pool or 2000, args.test or 500
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HEADSTART_QUIET", "1")  # headstart.fit's own lines, a hundred times over
    for name in args.datasets:
        document = starting_document(name, args)
        if not args.report:
            document = run_dataset(name, args, document)
        path = save(name, args, document, partial=False)
        summary = with_served(summarize(document["rows"]))
        print_summary(name, summary, args.quick)
        if document.get("zero_shot_accuracy") is not None:
            print(f"zero-shot start alone (0 labels): {document['zero_shot_accuracy']:.4f}")
        common.print_targets(every_target(name, summary),
                             title=f"{name}: targets")
        goal = stretch(name, summary)
        if goal and goal["best"] is not None:
            print(f"stretch: {goal['goal']:.0%} with <= {goal['labels_at_most']} labels: best {goal['best']:.4f} at "
                  f"{goal['at_labels']} by {LABELS[goal['method']]} ({goal['points_short']:.1f} points short), {goal['two_core_minutes']:.2f} "
                  f"two-core CPU minutes")
        print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
