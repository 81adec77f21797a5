"""The ``headstart`` command: a thin layer over :mod:`headstart.api` and :mod:`headstart.studies`.

Errors a user can fix print one line and exit with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from headstart.cli_cache import CACHE_DIR, cache_app
from headstart.cli_common import (CLASSES, DESCRIBE, DEVICE, IMAGE_SIZE, MAX_LENGTH, MIRROR, UNLABELED, ZERO_SHOT,
                                  AdaptMethod, HeadstartGroup, Mode, Quantization, Score, friendly, missing_extra,
                                  set_debug)
from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.transfer.page import TransferResult


app = typer.Typer(cls=HeadstartGroup, add_completion=False, no_args_is_help=True,
                  help="Transfer learning on small labeled datasets, for text and images.")


@app.callback()
def main(debug: bool = typer.Option(False, "--debug/--no-debug", help="Show tracebacks."),
         quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q",
                                    help="No progress bars or status lines (before or after the command).")) -> None:
    set_debug(debug)
    if quiet:
        os.environ["HEADSTART_QUIET"] = "1"


def _ratios(text: str | None) -> tuple[float, float, float] | None:
    if text is None:  # headstart's default (see headstart.data.splits.assign_splits)
        return None
    try:
        parts = tuple(float(p) for p in text.split("/"))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise HeadstartError(f"cannot read '{text}'", where="--split", fix="write train/val/test, e.g. 70/20/10")
    total = sum(parts)
    return tuple(p / total for p in parts) if total > 0 else parts


# The columns of a data file: the same options, with the same help, on every command that reads one.
TEXT_COLUMN = typer.Option("text", help="Column (JSONL field) holding the text.")
LABEL_COLUMN = typer.Option("label", help="Column holding the label.")
SPLIT_COLUMN = typer.Option("split", help="Column holding train/val/test, where present.")
SPLIT_SHARES = typer.Option(None, "--split", help="train/val/test shares when the data has no split column, e.g. "
                            "80/10/10 (default 70/20/10; with --test, validation gets 2/9 of the data up to "
                            "250 items, and at least 5%).")
PATH_COLUMN = typer.Option("path", help="Column holding image paths (image CSVs).")


def _columns(text_column: str, label_column: str, split_column: str, path_column: str) -> dict:
    return {"text_column": text_column, "label_column": label_column, "split_column": split_column,
            "path_column": path_column}


@app.command()
@friendly
def fit(ctx: typer.Context,
        data: Optional[Path] = typer.Argument(None, help="CSV/TSV/JSONL file (text or image paths) or a folder "
                                                         "of class subfolders."),
        test: Optional[Path] = typer.Option(None, help="A separate labeled test file."),
        val: Optional[Path] = typer.Option(None, help="A separate labeled validation file."),
        backbone: Optional[str] = typer.Option(None, help="Registry name (see `headstart backbones`); default: "
                                                          "minilm-l6 for text, effnet-lite0 for images."),
        mode: Mode = typer.Option("auto", help="probe: a linear head on frozen features; finetune: tune the "
                                               "backbone too; auto: fine-tune when validation says it helps."),
        out: Optional[Path] = typer.Option(None, help="Model folder to write (default runs/<data name>)."),
        seed: int = typer.Option(0, help="Seed of the split and of training."),
        split: Optional[str] = SPLIT_SHARES,
        text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
        path_column: str = PATH_COLUMN,
        epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs (default: from the data size)."),
        lr: Optional[float] = typer.Option(None, help="Fine-tuning learning rate of the top group and head."),
        batch_size: Optional[int] = typer.Option(None, help="Fine-tuning batch size (default: 16 for text, "
                                                                  "32 for images)."),
        image_size: Optional[int] = IMAGE_SIZE, max_length: Optional[int] = MAX_LENGTH, mirror: bool = MIRROR,
        baseline: bool = typer.Option(True, "--baseline/--no-baseline",
                                      help="Also train a model from scratch and say whether transfer helps."),
        auto_unfreeze: bool = typer.Option(False, "--auto-unfreeze/--no-auto-unfreeze",
                                           help="Fine-tune as many top layer groups as layer-wise probes "
                                                "recommend (see `headstart layers`)."),
        target: Optional[Path] = typer.Option(None, help="Unlabeled data the model will meet: adapt the model to it."),
        adapt: AdaptMethod = typer.Option("auto", help="With --target: how to adapt (auto: chosen on the data)."),
        device: str = DEVICE,
        processes: int = typer.Option(1, min=1, help="Fine-tune data-parallel in this many processes, started "
                                                     "as `accelerate launch -m headstart fit ...` starts them."),
        zero_shot: bool = ZERO_SHOT, classes: Optional[str] = CLASSES, describe: Optional[str] = DESCRIBE,
        unlabeled: Optional[Path] = UNLABELED,
        zero_shot_prior: bool = typer.Option(True, "--zero-shot-prior/--no-zero-shot-prior",
                                             help="Text with fewer than 1,000 labels: blend the probe with a "
                                                  "zero-shot head of the class names where that lowers its "
                                                  "out-of-fold log-loss."),
        ) -> None:
    """Train a model by transfer learning, evaluate it on the test split, save it with a report."""
    if zero_shot or classes or (describe and data is None):
        return _zero_shot(zero_shot, data, classes, describe, test, unlabeled, backbone, out, max_length, device,
                          _columns(text_column, label_column, split_column, path_column))
    if data is None:
        raise HeadstartError("no training data", where="DATA", fix="give a labeled file, or --zero-shot --classes")
    from headstart.compute.launch import check_processes, is_main_process, launch, process_count, without_option
    from headstart.compute.processes import finish_processes

    if check_processes(processes, process_count()) > 1:
        raise typer.Exit(code=launch(processes, without_option(ctx.meta["headstart.args"], "--processes")))
    if not is_main_process():  # of several processes, the main one alone speaks and writes
        os.environ["HEADSTART_QUIET"] = "1"
    from headstart import api
    from headstart.learn.finetune import FinetuneConfig
    from headstart.progress import quiet

    out = out or Path("runs") / data.stem
    model = api.fit(data, test=test, val=val, backbone=backbone, mode=mode, out=out, seed=seed,
                    ratios=_ratios(split), image_size=image_size, max_length=max_length,
                    finetune_config=FinetuneConfig(epochs=epochs, lr=lr, batch_size=batch_size),
                    columns=_columns(text_column, label_column, split_column, path_column), baseline=baseline,
                    auto_unfreeze=auto_unfreeze, mirror=mirror, target=target, adapt=adapt, device=device,
                    unlabeled=unlabeled, zero_shot_prior=zero_shot_prior, describe=describe)
    finish_processes()
    if not is_main_process():
        return
    metrics = model.metrics
    typer.echo(f"test accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
               f"ECE {metrics['ece']:.4f}  ({metrics['n']} items, {metrics['seconds']:.0f} s)")
    scratch = metrics.get("baseline") or {}
    if scratch and quiet():  # otherwise fit has just said it, on stderr
        typer.echo(scratch.get("verdict") or scratch.get("skipped"))
    if metrics.get("adaptation"):
        typer.echo(f"adaptation: {metrics['adaptation']['reason']}")
    if metrics.get("unlabeled"):
        typer.echo(f"unlabeled pool: {metrics['unlabeled'].get('sentence', 'not used')}")
    typer.echo(f"model: {out}   report: {out / 'report.html'}")


def _zero_shot(zero_shot, data, classes, describe, test, unlabeled, backbone, out, max_length, device, columns) -> None:
    if not zero_shot:
        raise HeadstartError("--classes and --describe belong to --zero-shot", where="--classes", fix="add --zero-shot")
    if data is not None:
        raise HeadstartError("--zero-shot uses no training data", where=str(data), fix="leave DATA out, or --zero-shot")
    from headstart import api

    out = out or Path("runs") / "zero-shot"
    model = api.zero_shot(classes, test=test, unlabeled=unlabeled, describe=describe, backbone=backbone, out=out,
                          max_length=max_length, columns=columns, device=device)
    metrics = model.metrics
    if metrics:
        typer.echo(f"zero-shot test accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
                   f"ECE {metrics['ece']:.4f}  ({metrics['n']} items)")
    typer.echo(f"model: {out}" + (f"   report: {out / 'report.html'}" if metrics else "   (no --test: no report)"))


@app.command()
@friendly
def predict(model_dir: Path = typer.Argument(..., help="A model folder written by `headstart fit`."),
            data: Path = typer.Argument(..., help="CSV/TSV/JSONL file or image folder; labels not needed."),
            out: Optional[Path] = typer.Option(None, help="CSV to write (default: stdout)."),
            id_column: Optional[str] = typer.Option(None, help="Column naming each row (filled in, unique); "
                                                               "it goes first."),
            text_column: str = TEXT_COLUMN, path_column: str = PATH_COLUMN, device: str = DEVICE) -> None:
    """Predict labels and class probabilities; write them as CSV beside the input's own columns."""
    from headstart import api

    header, rows = api.predict_table(model_dir, data, id_column=id_column, text_column=text_column,
                                     path_column=path_column, device=device)
    if out is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    from headstart.output import write_csv

    write_csv(out, header, rows)
    typer.echo(f"{len(rows)} predictions written to {out}", err=True)


@app.command()
@friendly
def export(model_dir: Path = typer.Argument(..., help="A model folder written by `headstart fit`."),
           quantize: Optional[Quantization] = typer.Option(
               None, help="int8: ONNX Runtime quantization (dynamic for text, static with a sample of the training "
                          "data for images)."),
           out: Optional[Path] = typer.Option(None, help="Folder to write (default <model>-onnx, or <model>-int8).")
           ) -> None:
    """Write one ONNX graph with labels, tokenizer and model card, to predict without headstart."""
    from headstart import api

    out = out or model_dir.with_name(f"{model_dir.name}-{quantize or 'onnx'}")
    api.export(model_dir, out, quantize=quantize)
    size = (out / "model.onnx").stat().st_size / 1e6
    typer.echo(f"exported: {out}  (model.onnx {size:.1f} MB; predict with examples/predict_onnx.py or "
               f"headstart predict {out} DATA)")


@app.command()
@friendly
def report(model_dir: Path = typer.Argument(..., help="A model folder written by `headstart fit`."),
           open_browser: bool = typer.Option(False, "--open/--no-open", help="Open the HTML report in a browser.")
           ) -> None:
    """Print a model's test metrics and where its HTML report is."""
    from headstart.errors import ModelError

    metrics_path = model_dir / "metrics.json"
    if not metrics_path.is_file():
        raise ModelError("no metrics.json here", where=str(model_dir), fix="give a folder written by `headstart fit`")
    metrics = json.loads(metrics_path.read_text())
    typer.echo(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  ECE {metrics['ece']:.4f}  "
               f"n {metrics['n']}")
    width = max(len(name) for name in metrics["per_class"])
    typer.echo(f"{'class':<{width}}  precision  recall  f1      support")
    for name, row in metrics["per_class"].items():
        typer.echo(f"{name:<{width}}  {row['precision']:.4f}     {row['recall']:.4f}  {row['f1']:.4f}  "
                   f"{row['support']}")
    typer.echo(f"report: {model_dir / 'report.html'}")
    if open_browser:
        webbrowser.open((model_dir / "report.html").resolve().as_uri())


def _names(text: Optional[str]) -> Optional[list[str]]:
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None


def _sizes(text: Optional[str]) -> Optional[list]:
    if not text:
        return None
    try:
        return [part.strip() if part.strip() == "all" else int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HeadstartError(f"cannot read '{text}'", where="--sizes",
                             fix="give labels a class separated by commas, e.g. 4,8,16,all") from None


# `rank`, `curve` and `layers` read a labeled data file as `fit` does, and each writes
# <stem>.json/.png/.html into a folder and prints a table, a sentence and where those files are.
TRANSFER_DATA = typer.Argument(..., help="Labeled CSV/TSV/JSONL file or image folder, as for `fit`.")
ONE_BACKBONE = typer.Option(None, help="Registry name (default: minilm-l6 for text, effnet-lite0 for images).")
SPLIT_SEED = typer.Option(0, help="Seed of the split.")


def _out_option(stem: str, suffix: str):
    return typer.Option(None, help=f"Folder for {stem}.json/.png/.html (default runs/<data name>-{suffix}).")


def print_result(result: TransferResult, out: Path) -> None:
    """Print a transfer result: its table, the sentence that answers its question, where its files are."""
    from headstart.transfer.page import result_files

    files = result_files(out, result.stem)
    typer.echo(result.table())
    typer.echo(result.sentence())
    typer.echo(f"{result.stem}: {files['data']}   plot: {files['plot']}   report: {files['report']}")


def _run_transfer(call: Callable, data: Path, out: Optional[Path], suffix: str, *, seed: int, split: Optional[str],
                  columns: dict, **options) -> None:
    """Run ``call`` (studies.rank, studies.curve or studies.layers) into ``out`` (default runs/<data name>-<suffix>)
    and print what it found."""
    out = out or Path("runs") / f"{data.stem}-{suffix}"
    result = call(data, out=out, seed=seed, ratios=_ratios(split), columns=columns, **options)
    print_result(result, out)


@app.command()
@friendly
def rank(data: Path = TRANSFER_DATA,
         backbones: Optional[str] = typer.Option(None, help="Comma-separated registry names (default: every "
                                                            "registered backbone of the data's modality; those "
                                                            "not installed are listed as skipped)."),
         score: Optional[Score] = typer.Option(None, help="Rank by this score (default hscore)."),
         max_items: int = typer.Option(2000, help="Score a stratified subset of at most this many train items."),
         out: Optional[Path] = _out_option("ranking", "rank"),
         seed: int = typer.Option(0, help="Seed of the split and the subset."),
         split: Optional[str] = SPLIT_SHARES,
         text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
         path_column: str = PATH_COLUMN, device: str = DEVICE) -> None:
    """Rank candidate backbones by transferability scores and cost, without fine-tuning.

    Prints the table, the best candidate, each skipped candidate with its reason (not installed: the
    pip command that adds it; or the error it failed with), how to read the scores and the predicted
    accuracy range.
    """
    from headstart import studies
    from headstart.transfer.page import result_files

    out = out or Path("runs") / f"{data.stem}-rank"
    ranking = studies.rank(data, out=out, seed=seed, ratios=_ratios(split),
                           columns=_columns(text_column, label_column, split_column, path_column),
                           backbones=_names(backbones), score=score, max_items=max_items, device=device)
    files = result_files(out, ranking.stem)
    for line in (ranking.table(), ranking.sentence(), *ranking.notes()):
        typer.echo(line)
    typer.echo(f"{ranking.stem}: {files['data']}   plot: {files['plot']}   report: {files['report']}")


@app.command()
@friendly
def curve(data: Path = TRANSFER_DATA,
          backbone: Optional[str] = ONE_BACKBONE,
          sizes: Optional[str] = typer.Option(None, help="Labels a class, e.g. 4,8,16,32,all (default: powers "
                                                         "of two from 4, then all)."),
          seeds: int = typer.Option(3, help="Draws of each size."),
          test: Optional[Path] = typer.Option(None, help="A separate labeled test file."),
          out: Optional[Path] = _out_option("curve", "curve"),
          seed: int = SPLIT_SEED,
          split: Optional[str] = SPLIT_SHARES,
          text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
          path_column: str = PATH_COLUMN, device: str = DEVICE) -> None:
    """Learning curves with and without transfer, and how many labels transfer saved."""
    from headstart import studies

    _run_transfer(studies.curve, data, out, "curve", seed=seed, split=split,
                  columns=_columns(text_column, label_column, split_column, path_column),
                  backbone=backbone, sizes=_sizes(sizes), seeds=seeds, test=test, device=device)


@app.command()
@friendly
def layers(data: Path = TRANSFER_DATA,
           backbone: Optional[str] = ONE_BACKBONE,
           val: Optional[Path] = typer.Option(None, help="A separate labeled validation file."),
           out: Optional[Path] = _out_option("layers", "layers"),
           seed: int = SPLIT_SEED,
           split: Optional[str] = SPLIT_SHARES,
           text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
           path_column: str = PATH_COLUMN) -> None:
    """Probe accuracy of each layer group on the validation split, and how deep to fine-tune."""
    from headstart import studies

    _run_transfer(studies.layers, data, out, "layers", seed=seed, split=split,
                  columns=_columns(text_column, label_column, split_column, path_column),
                  backbone=backbone, val=val)


@app.command()
@friendly
def shift(source: Path = TRANSFER_DATA,
          target: Path = typer.Argument(..., help="The data to compare with it, of the same kind; labels optional."),
          backbone: Optional[str] = ONE_BACKBONE,
          as_json: bool = typer.Option(False, "--json/--no-json",
                                       help="Print the summary as JSON (the map is in shift.json)."),
          out: Optional[Path] = typer.Option(None, help="Folder for shift.json/.png/.html (default "
                                                        "runs/<source>-vs-<target>-shift)."),
          max_items: int = typer.Option(500, help="Items a side at most (a balanced subsample is tested)."),
          permutations: int = typer.Option(99, help="Permutations of the p-value at most."),
          seed: int = typer.Option(0, help="Seed of the subsamples, folds and permutations."),
          text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, path_column: str = PATH_COLUMN) -> None:
    """Is the target different from the source, and how: domain classifier, class priors, a map."""
    from headstart import studies

    out = out or Path("runs") / f"{source.stem}-vs-{target.stem}-shift"
    report = studies.shift(source, target, backbone=backbone, out=out, seed=seed, max_items=max_items,
                           permutations=permutations, columns={"text_column": text_column, "label_column": label_column,
                                                               "path_column": path_column})
    if as_json:
        shown = {key: value for key, value in report.summary.items() if key != "map"}
        typer.echo(json.dumps({**shown, "report": str(out / "shift.html")}, indent=2))
    else:
        print_result(report, out)


@app.command()
@friendly
def explore(pool: Path = typer.Argument(..., help="CSV/TSV/JSONL file or image folder; with labels, also the "
                                                  "classes to merge or split."),
            backbone: Optional[str] = ONE_BACKBONE,
            clusters: Optional[int] = typer.Option(None, help="Number of clusters (default: chosen by silhouette)."),
            as_json: bool = typer.Option(False, "--json/--no-json", help="Print the summary as JSON (the map is in "
                                                                         "explore.json)."),
            out: Optional[Path] = typer.Option(None, help="Folder for explore.json/.png/.html (default "
                                                          "runs/<pool>-explore)."),
            max_items: int = typer.Option(5000, help="Items mapped at most (a random subsample of a larger pool)."),
            seed: int = typer.Option(0, help="Seed of the subsample and k-means."),
            text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, path_column: str = PATH_COLUMN) -> None:
    """A map of a pool: clusters of frozen features with their typical items; classes to merge or split."""
    from headstart.transfer.explore import explore as explore_pool

    out = out or Path("runs") / f"{pool.stem}-explore"
    columns = {"text_column": text_column, "label_column": label_column, "path_column": path_column}
    report = explore_pool(pool, backbone=backbone, out=out, clusters=clusters, seed=seed, max_items=max_items,
                          columns=columns)
    if as_json:
        shown = {key: value for key, value in report.summary.items() if key != "map"}
        typer.echo(json.dumps({**shown, "report": str(out / "explore.html")}, indent=2))
    else:
        print_result(report, out)


@app.command()
def backbones() -> None:
    """List the registered backbones."""
    from headstart.backbones import list_backbones

    for entry in list_backbones():
        typer.echo(f"{entry.name:<14} {entry.modality:<6} {entry.description}")
    typer.echo("also: st:<id or folder>, hf:<id or folder> (text), timm:<name> (images)")


app.add_typer(cache_app, name="cache")


@app.command()
@friendly
def extract(pool: Optional[Path] = typer.Argument(None, help="CSV/TSV/JSONL file or image folder; labels not "
                                                             "needed. Leave out with --merge to only merge."),
            backbone: Optional[str] = ONE_BACKBONE,
            shard: Optional[str] = typer.Option(None, metavar="R/W", help="Extract share R of W (0/2 and 1/2 for "
                                                "two processes); `accelerate launch` sets it itself."),
            merge: bool = typer.Option(False, "--merge/--no-merge", help="Index the shards every process wrote."),
            chunk: int = typer.Option(2048, help="Items a shard file: what a killed process loses at most."),
            threads: Optional[int] = typer.Option(None, help="Threads of this process (default: this machine's "
                                                             "cores; give each --shard process on one machine "
                                                             "its part)."),
            cache_dir: Optional[Path] = CACHE_DIR, text_column: str = TEXT_COLUMN, path_column: str = PATH_COLUMN,
            image_size: Optional[int] = IMAGE_SIZE, max_length: Optional[int] = MAX_LENGTH,
            device: str = DEVICE) -> None:
    """Compute a pool's features into the cache, shared out over processes or machines; resumes when rerun."""
    from headstart.compute.device import use_device_in_process
    from headstart.features.pool_extraction import extract_pool

    use_device_in_process(device)  # under a launcher, a bare cuda or auto is each process's own GPU (LOCAL_RANK)

    for line in extract_pool(pool, backbone=backbone, shard=shard, merge=merge, cache_dir=cache_dir, chunk=chunk,
                             threads=threads, text_column=text_column, path_column=path_column,
                             image_size=image_size, max_length=max_length):
        typer.echo(line)


@app.command()
@friendly
def serve(model_dir: Path = typer.Argument(..., help="A model folder written by `headstart fit`, or an exported "
                                                     "folder."),
          host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine only)."),
          port: int = typer.Option(8080, help="Port."),
          batching: bool = typer.Option(True, "--batching/--no-batching",
                                        help="Answer requests that arrive together with one model call."),
          max_batch: int = typer.Option(64, help="The most items in one model call."),
          max_wait_ms: float = typer.Option(5.0, help="Milliseconds a batch waits for more requests."),
          max_items: int = typer.Option(64, help="The most texts or images in one request.")) -> None:
    """Serve predictions over HTTP: POST /predict, GET /health, /ready, /metrics, and /docs."""
    try:
        from headstart.serving.limits import Limits
        from headstart.serving.server import serve as run_server
    except ImportError as error:  # the serve extra's packages
        raise HeadstartError(f"`headstart serve` needs {error.name}, which is not installed",
                             fix="pip install 'headstart[serve]'") from None
    from headstart import api

    if max_batch < 1 or max_items < 1 or max_wait_ms < 0:
        raise HeadstartError("--max-batch and --max-items must be 1 or more, --max-wait-ms 0 or more",
                             where="headstart serve", fix="give positive limits")
    typer.echo(f"loading {model_dir}; predictions on http://{host}:{port}/predict (documentation: /docs, "
               "ready when GET /ready answers 200); Ctrl-C stops", err=True)
    run_server(lambda: api.load(model_dir), host=host, port=port, batching=batching, max_batch_items=max_batch,
               max_wait=max_wait_ms / 1000, limits=Limits(max_items=max_items))


def _add_label_commands() -> None:
    """``headstart label ...`` (headstart/labeling/cli.py); when importing it needs a package of the
    ``label`` extra that is not installed, a ``label`` command that says what to install, so that
    every other command still works."""
    try:
        from headstart.labeling.cli import label_app
    except ImportError as error:
        problem = missing_extra(error)
        if problem is None:
            raise  # not an extra's package: a bug to see
        _add_missing_label_command(problem)
    else:
        app.add_typer(label_app, name="label")


def _add_missing_label_command(problem: HeadstartError) -> None:
    from rich.markup import escape  # help text is rich markup, where [label] would be a style

    # It takes any arguments, --help included, so that every `headstart label ...` gets the same answer.
    settings = {"allow_extra_args": True, "ignore_unknown_options": True}

    @app.command("label", context_settings=settings, add_help_option=False,
                 help=escape(f"Model-assisted labeling (not installed: {problem.fix})."))
    @friendly
    def label(ctx: typer.Context) -> None:
        raise problem


_add_label_commands()


if __name__ == "__main__":
    app()
