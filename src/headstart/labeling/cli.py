"""``headstart label ...``: the labeling commands, a thin layer over :mod:`headstart.labeling`.

Every command takes ``--db`` (a SQLite file, default ``labels.db``, or a ``postgresql://`` URL;
also ``$HEADSTART_LABEL_DB``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Optional

import typer

from headstart.cli_common import DEFAULT_STRATEGY, DEVICE, IMAGE_SIZE, MAX_LENGTH, MIRROR, Role, Strategy, friendly
from headstart.compute.device import use_device_in_process

label_app = typer.Typer(no_args_is_help=True, help="Model-assisted labeling: a store, pre-labels, active "
                                                    "learning, label quality and retraining.")
DB = typer.Option(None, "--db", envvar="HEADSTART_LABEL_DB",
                  help="SQLite file or postgresql:// URL (default labels.db).")


# `label retrain --watch` and `label serve` put fine-tuned models in the same place: either may run a job.
FINETUNE_OUT = typer.Option(Path("runs/labeling"), "--out", help="Where fine-tuned model folders go.")


def _db(db: Optional[str]) -> str:
    from headstart.labeling import DEFAULT_DB

    return db or DEFAULT_DB


def _open(db: Optional[str]):
    from headstart.labeling import open_project

    return open_project(_db(db))


def _echo_json(value) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@label_app.command()
@friendly
def init(pool: Path = typer.Argument(..., help="CSV/TSV/JSONL file or image folder of the items to label."),
         labels: Optional[str] = typer.Option(None, help="The label set, comma-separated (default: the pool's "
                                                         "labels)."),
         db: Optional[str] = DB,
         backbone: Optional[str] = typer.Option(None, help="Backbone for features (default minilm-l6 / "
                                                           "effnet-lite0)."),
         multi_share: float = typer.Option(0.0, help="Share of items that go to several annotators."),
         annotators_per_item: int = typer.Option(2, help="Annotators of those items."),
         retrain_every: int = typer.Option(50, help="Most new labels between two probe retrains; early ones come sooner, each time the labels grow by a quarter (0: never)."),
         finetune_every: int = typer.Option(100, help="Queue a fine-tune of the backbone each time this many more labels arrived, from this many on; `headstart label serve` runs it, or a `headstart label retrain --watch` worker (0: only by hand)."),
         id_column: str = typer.Option("id"), text_column: str = typer.Option("text"),
         path_column: str = typer.Option("path"), label_column: str = typer.Option("label"),
         image_size: Optional[int] = IMAGE_SIZE, max_length: Optional[int] = MAX_LENGTH, mirror: bool = MIRROR,
         seed: int = typer.Option(0),
         shift_check: bool = typer.Option(True, "--shift-check/--no-shift-check",
                                          help="Compare the pool's labeled items with the unlabeled ones (needs "
                                               "20 of each) and warn when they differ."),
         zero_shot: bool = typer.Option(False, "--zero-shot/--no-zero-shot",
                                        help="Text: until labels arrive, a model from the label names (or "
                                             "--describe) pre-labels the pool and picks the first batch."),
         describe: Optional[str] = typer.Option(None, help='With --zero-shot: "label=short description,...".'),
         judging_share: float = typer.Option(0.0, help="Share of the labels (0..0.5) drawn at random and kept "
                                                       "for judging the models: their accuracy estimates are "
                                                       "then unbiased (e.g. 0.05)."),
         device: str = DEVICE) -> None:
    """Create a labeling project from a pool and a label set."""
    use_device_in_process(device)
    from headstart.labeling import init_project
    from headstart.labeling.shift_check import check_pool_shift, shift_warning

    project = init_project(pool, labels=labels, db=_db(db), backbone=backbone, multi_share=multi_share,
                           annotators_per_item=annotators_per_item, retrain_every=retrain_every,
                           finetune_every=finetune_every, seed=seed,
                           columns={"id_column": id_column, "text_column": text_column, "path_column": path_column,
                                    "label_column": label_column},
                           image_size=image_size, max_length=max_length, mirror=mirror, zero_shot=zero_shot,
                           describe=describe, judging_share=judging_share)
    status = project.status()
    typer.echo(f"project in {_db(db)}: {status['items']} items, labels {', '.join(status['classes'])}, "
               f"{status['labeled_items']} labeled")
    warning = shift_warning(check_pool_shift(project, seed=seed)) if shift_check else None
    if warning:
        typer.echo(warning, err=True)


@label_app.command("next")
@friendly
def next_(n: int = typer.Option(10, "-n", "--n", help="How many items."),
          strategy: Strategy = typer.Option("default", help=f"How to choose them (default: {DEFAULT_STRATEGY})."),
          annotator: Optional[str] = typer.Option(None, help="Who will label them (skips what they labeled)."),
          as_json: bool = typer.Option(False, "--json/--no-json", help="One JSON object a line."),
          db: Optional[str] = DB, seed: int = typer.Option(0)) -> None:
    """Print the next items to label, most useful first."""
    for entry in _open(db).next(n, strategy=strategy, annotator=annotator, seed=seed):
        if as_json:
            typer.echo(json.dumps(entry, ensure_ascii=False))
        else:
            guess = f"{entry['prediction']} {entry['confidence']:.2f}" if entry["prediction"] else "-"
            content = entry["content"].replace("\n", " ")
            typer.echo(f"{entry['id']}\t{guess}\t{content[:100]}")


@label_app.command()
@friendly
def add(item: str = typer.Argument(..., help="Item id."), label: str = typer.Argument(..., help="Its label."),
        annotator: str = typer.Option(os.environ.get("USER") or "default", help="Who labels."),
        replace: bool = typer.Option(False, "--replace/--no-replace", help="Correct an existing label."),
        retrain: bool = typer.Option(True, help="Start a background retrain when enough labels arrived."),
        db: Optional[str] = DB) -> None:
    """Store one label (committed before this returns)."""
    from headstart.labeling.retrain import retrain_if_due

    project = _open(db)
    record = project.add(item, label, annotator=annotator, replace=replace)
    typer.echo(f"{record.item}\t{record.label}\t{record.annotator}\t{record.created_at.isoformat()}")
    if retrain:
        retrain_if_due(project)  # a detached process: the person never waits for it


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


@label_app.command()
@friendly
def retrain(if_due: bool = typer.Option(False, "--if-due/--no-if-due", help="Only when enough new labels arrived."),
            finetune: bool = typer.Option(False, "--finetune/--no-finetune", help="Queue a fine-tune job instead."),
            worker: bool = typer.Option(False, "--worker/--no-worker", help="Run the queued jobs (fine-tunes) now."),
            watch: bool = typer.Option(False, "--watch/--no-watch",
                                       help="Keep running: retrain when due, run queued jobs "
                                            "(Ctrl-C stops)."),
            epochs: Optional[int] = typer.Option(None, help="Epochs of a queued fine-tune (default: chosen)."),
            out: Path = FINETUNE_OUT, db: Optional[str] = DB, device: str = DEVICE) -> None:
    """Retrain the probe now (seconds), queue a fine-tune, or run queued jobs."""
    use_device_in_process(device)
    from headstart.labeling.retrain import due, queue_finetune, retrain_probe, run_jobs

    project = _open(db)
    if finetune:
        version = queue_finetune(project, **({"epochs": epochs} if epochs else {}))
        typer.echo(f"fine-tune queued as model version {version}; `headstart label serve` or "
                   "`headstart label retrain --worker` trains it")
        return
    if worker:
        typer.echo(f"{run_jobs(project, out)} job(s) ran")
        return
    if watch:
        from headstart.labeling.retrain import BackgroundRetrainer

        retrainer = BackgroundRetrainer(project, out_root=out, poll_seconds=5.0).start()
        typer.echo("watching for new labels and queued jobs (Ctrl-C stops)")
        signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: a job cut short is queued again
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            retrainer.stop()
        return
    with project.retrain_lock(blocking=not if_due) as held:
        if not held:
            return  # a retrain is running; it will see these labels next time
        if if_due and not due(project):
            return
        version = retrain_probe(project)
    metrics = project.latest_model("probe").metrics
    accuracy = metrics.get("accuracy")
    typer.echo(f"model version {version}: {metrics['n_labels']} labels, "
               f"estimated accuracy {accuracy:.4f} ({metrics['accuracy_estimate']})" if accuracy is not None else
               f"model version {version}: {metrics['n_labels']} labels")
    if metrics.get("pre_labels"):
        typer.echo(f"pre-labels {metrics['pre_labels']}")
    waiting = [v for v in project.model_versions("finetune") if v.status == "queued"]
    if waiting:
        typer.echo(f"fine-tune v{waiting[-1].id} queued at {waiting[-1].n_labels} labels: "
                   "`headstart label serve` or `headstart label retrain --worker` (or --watch) trains it")


@label_app.command()
@friendly
def prelabel(target_precision: Optional[float] = typer.Option(None, help="Choose an auto-accept threshold "
                                                                         "reaching this precision, e.g. 0.98."),
             accept: bool = typer.Option(False, "--accept/--no-accept",
                                         help="Store the accepted predictions as labels."),
             db: Optional[str] = DB, device: str = DEVICE) -> None:
    """Pre-label the pool with the newest model; optionally auto-accept at a target precision."""
    use_device_in_process(device)
    from headstart.labeling.prelabel import prelabel as run

    report = run(_open(db), target_precision=target_precision, accept=accept)
    resumed = f" ({report['resumed']} of them by an earlier, interrupted run)" if report["resumed"] else ""
    typer.echo(f"{report['predicted']} items pre-labeled by model version {report['model_version']}{resumed}")
    if "threshold" in report:
        chosen = report["threshold"]
        if chosen["threshold"] is None:
            typer.echo(report["note"])
        else:
            typer.echo(f"threshold {chosen['threshold']:.4f}: precision {chosen['precision']:.4f} on "
                       f"{chosen['support']} of {chosen['held_out']} held-out labels; {report['eligible']} items "
                       f"eligible, {report['accepted']} accepted")


@label_app.command()
@friendly
def status(as_json: bool = typer.Option(False, "--json/--no-json",
                                        help="Print the status as JSON."), db: Optional[str] = DB) -> None:
    """Items, labels by source, annotators, model versions and open reviews."""
    report = _open(db).status()
    if as_json:
        _echo_json(report)
        return
    labels = ", ".join(f"{k} {v}" for k, v in report["labels"].items()) or "none"
    typer.echo(f"{report['labeled_items']} of {report['items']} items labeled (labels: {labels}); "
               f"classes {', '.join(report['classes'])}")
    for version in report["model_versions"]:
        accuracy = "" if version["accuracy"] is None else f" accuracy {version['accuracy']:.4f}"
        typer.echo(f"model v{version['id']} {version['kind']} {version['status']}: {version['n_labels']} "
                   f"labels{accuracy}")
    typer.echo(f"open reviews: {report['open_reviews']}")


@label_app.command()
@friendly
def issues(folds: int = typer.Option(5, help="Folds of the out-of-fold predictions."),
           list_only: bool = typer.Option(False, "--list/--no-list", help="Only print the open review queue."),
           resolve: Optional[int] = typer.Option(None, help="Mark this review entry resolved."),
           db: Optional[str] = DB) -> None:
    """Find labels that look wrong (confident learning) and queue them for review; list the queue.
    Nothing is flagged while the out-of-fold model is not clearly better than chance: it says why."""
    from headstart.labeling.issues import scan_issues

    project = _open(db)
    if resolve is not None:
        project.resolve_review(resolve)
        typer.echo(f"review {resolve} resolved")
        return
    if not list_only:
        scanned = scan_issues(project, folds=folds)
        if scanned.held_back:
            typer.echo(scanned.check.message())
        else:
            typer.echo(f"{len(scanned.found)} likely label issue(s) queued for review")
    for entry in project.review_queue():
        typer.echo(f"{entry['review_id']}\t{entry['id']}\t{entry['reason']}\tsuggested "
                   f"{entry['suggested_label']}\t{entry['detail']}")


@label_app.command()
@friendly
def shift(as_json: bool = typer.Option(False, "--json/--no-json", help="Print the summary as JSON (without the map)."),
          seed: int = typer.Option(0), db: Optional[str] = DB) -> None:
    """Check again whether the unlabeled pool differs from the labeled items (shown on the Shift page)."""
    from headstart.labeling.shift_check import check_pool_shift, shift_message, shift_warning

    summary = check_pool_shift(_open(db), seed=seed)
    if as_json:
        _echo_json({key: value for key, value in summary.items() if key != "map"})
        return
    typer.echo(shift_message(summary))
    warning = shift_warning(summary)
    if warning:
        typer.echo(warning, err=True)


@label_app.command()
@friendly
def agreement(as_json: bool = typer.Option(False, "--json/--no-json",
                                           help="Print the report as JSON."), db: Optional[str] = DB) -> None:
    """Agreement between annotators (Cohen, Fleiss, Krippendorff), consensus and annotator quality."""
    from headstart.labeling.agreement import agreement_report

    report = agreement_report(_open(db))
    if as_json:
        _echo_json(report)
        return
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    typer.echo(f"{report['items']} items labeled by several annotators; Fleiss' kappa {fmt(report['fleiss_kappa'])}"
               f" ({report['fleiss_items']} items), Krippendorff's alpha {fmt(report['krippendorff_alpha'])}")
    for pair in report["pairs"]:
        typer.echo(f"  {' / '.join(pair['annotators'])}: Cohen's kappa {fmt(pair['cohen_kappa'])} on "
                   f"{pair['items']} items")
    for name, quality in report["annotator_quality"].items():
        typer.echo(f"  {name}: quality {quality:.3f} ({report['consensus_method']})")
    typer.echo(f"{report['disagreements']} disagreement(s) queued for review")


@label_app.command("export")
@friendly
def export(out: Path = typer.Argument(..., help=".csv or .jsonl (labels), or .json (Label Studio tasks)."),
           every_label: bool = typer.Option(False, "--every-label/--no-every-label",
                                            help="A row per label, not per item."),
           model_labels: bool = typer.Option(True, "--model/--no-model",
                                             help="Include labels the model auto-accepted (--no-model leaves them "
                                                  "out)."),
           db: Optional[str] = DB) -> None:
    """Export labels with annotator, time and source (trains with `headstart fit` as it is)."""
    from headstart.labeling.exchange import export_label_studio, export_labels, label_studio_config

    project = _open(db)
    if out.suffix.lower() == ".json":
        export_label_studio(project, out)
        config = out.with_suffix(".xml")
        config.write_text(label_studio_config(project), encoding="utf-8")
        typer.echo(f"Label Studio tasks written to {out} (labeling config: {config})")
        return
    export_labels(project, out, every_label=every_label, include_model=model_labels)
    typer.echo(f"labels written to {out}")


@label_app.command("import")
@friendly
def import_(source: Path = typer.Argument(..., help="Label Studio .json export, or .csv/.jsonl with id and "
                                                    "label columns."),
            replace: bool = typer.Option(False, "--replace/--no-replace",
                                         help="Let imported labels correct existing ones."),
            db: Optional[str] = DB) -> None:
    """Import labels (all or none, in one transaction)."""
    from headstart.labeling.exchange import import_labels

    typer.echo(f"{import_labels(_open(db), source, replace=replace)} label(s) imported from {source}")


@label_app.command()
@friendly
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine only)."),
          port: int = typer.Option(8000, help="Port."),
          strategy: Strategy = typer.Option("default", help="Order of the items (as in `headstart label next`)."),
          retrain: bool = typer.Option(True, help="Retrain the probe in the background as labels arrive."),
          serve_jobs: bool = typer.Option(True, "--run-jobs/--no-run-jobs", help=(
              "Run queued fine-tunes in the server, one at a time, into --out (with --retrain). --no-run-jobs: "
              "a separate `headstart label retrain --watch` worker runs them.")),
          out: Path = FINETUNE_OUT,
          behind_proxy: bool = typer.Option(False, "--behind-proxy/--no-behind-proxy", help=(
              "Behind a TLS proxy on this machine: trust its X-Forwarded-Proto/-For headers, so sign-in cookies "
              "are Secure (a proxy elsewhere: list its address in FORWARDED_ALLOW_IPS).")),
          db: Optional[str] = DB, device: str = DEVICE) -> None:
    """Serve the labeling web page and its JSON API (sign in with a token from `label user add`)."""
    use_device_in_process(device)
    import uvicorn

    from headstart.labeling.web import create_app

    project = _open(db)
    app = create_app(project, strategy=strategy, retrain=retrain, finetune_out=out if serve_jobs else None)
    # the first batch needs every item's features: compute them now, not in someone's first request
    typer.echo(f"features of {project.size} items (computed once, then read from the cache) ...")
    project.features()
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"listening on {host}: tokens travel in plain HTTP; put a TLS proxy in front for a shared server")
    typer.echo(f"labeling page on http://{host}:{port}/ (API documentation: /docs); Ctrl-C stops")
    # SIGTERM or Ctrl-C: requests in flight get 5 s to finish, then the server stops anyway
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=behind_proxy,
                timeout_graceful_shutdown=5)


user_app = typer.Typer(no_args_is_help=True, help="People who sign in to the labeling page.")
label_app.add_typer(user_app, name="user")


@user_app.command("add")
@friendly
def user_add(name: str = typer.Argument(..., help="User name (letters, digits, . _ @ -)."),
             role: Role = typer.Option("annotator", help="What they may do (each role may do what the ones "
                                                         "before it may)."),
             db: Optional[str] = DB) -> None:
    """Add a user and print their sign-in token (shown this once; only its hash is stored)."""
    token = _open(db).add_user(name, role)
    typer.echo(f"user {name} ({role}) added; token (shown once, keep it safe):")
    typer.echo(token)


@user_app.command("token")
@friendly
def user_token(name: str = typer.Argument(..., help="User name."), db: Optional[str] = DB) -> None:
    """Give a user a new token and print it; the old token and the user's signed-in browsers stop working."""
    typer.echo(_open(db).new_token(name))


@user_app.command("list")
@friendly
def user_list(db: Optional[str] = DB) -> None:
    """The users and their roles."""
    for person in _open(db).users():
        typer.echo(f"{person.name}\t{person.role}")
