"""The ``headstart`` command: a thin layer over :mod:`headstart.api`.

Errors a user can fix print one line and exit with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
import tempfile
import webbrowser
from pathlib import Path
from typing import Optional

import typer

from headstart.cli_options import IMAGE_SIZE, MAX_LENGTH, MIRROR
from headstart.errors import HeadstartError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Transfer learning on small labeled datasets, for text and images.")
_state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars.")) -> None:
    _state["debug"] = debug
    if quiet:
        os.environ["HEADSTART_QUIET"] = "1"


def friendly(command):
    """Turn a HeadstartError into one line on stderr and exit code 2."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HeadstartError as error:
            if _state["debug"]:
                raise
            typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2) from None
    return wrapper


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
def fit(data: Path = typer.Argument(..., help="CSV/TSV/JSONL file (text or image paths) or a folder of class "
                                              "subfolders."),
        test: Optional[Path] = typer.Option(None, help="A separate labeled test file."),
        val: Optional[Path] = typer.Option(None, help="A separate labeled validation file."),
        backbone: Optional[str] = typer.Option(None, help="Registry name (see `headstart backbones`); default: "
                                                          "minilm-l6 for text, effnet-lite0 for images."),
        mode: str = typer.Option("auto", help="probe | finetune | auto."),
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
        auto_unfreeze: bool = typer.Option(False, "--auto-unfreeze",
                                           help="Fine-tune as many top layer groups as layer-wise probes "
                                                "recommend (see `headstart layers`)."),
        ) -> None:
    """Train a model by transfer learning, evaluate it on the test split, save it with a report."""
    from headstart import api
    from headstart.learn.finetune import FinetuneConfig
    from headstart.progress import quiet

    out = out or Path("runs") / data.stem
    model = api.fit(data, test=test, val=val, backbone=backbone, mode=mode, out=out, seed=seed,
                    ratios=_ratios(split), image_size=image_size, max_length=max_length,
                    finetune_config=FinetuneConfig(epochs=epochs, lr=lr, batch_size=batch_size),
                    columns=_columns(text_column, label_column, split_column, path_column), baseline=baseline,
                    auto_unfreeze=auto_unfreeze, mirror=mirror)
    metrics = model.metrics
    typer.echo(f"test accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
               f"ECE {metrics['ece']:.4f}  ({metrics['n']} items, {metrics['seconds']:.0f} s)")
    scratch = metrics.get("baseline") or {}
    if scratch and quiet():  # otherwise fit has just said it, on stderr
        typer.echo(scratch.get("verdict") or scratch.get("skipped"))
    typer.echo(f"model: {out}   report: {out / 'report.html'}")


@app.command()
@friendly
def predict(model_dir: Path = typer.Argument(..., help="A model folder written by `headstart fit`."),
            data: Path = typer.Argument(..., help="CSV/TSV/JSONL file or image folder; labels not needed."),
            out: Optional[Path] = typer.Option(None, help="CSV to write (default: stdout)."),
            text_column: str = TEXT_COLUMN, path_column: str = PATH_COLUMN) -> None:
    """Predict labels and class probabilities; write them as CSV."""
    from headstart import api

    model = api.load(model_dir)
    dataset, proba = api.predict(model, data, text_column=text_column, path_column=path_column)
    header = ["item", "prediction", "confidence", *[f"p_{name}" for name in model.classes]]
    rows = [[origin, model.classes[p.argmax()], f"{p.max():.6f}", *[f"{v:.6f}" for v in p]]
            for origin, p in zip(dataset.origins, proba)]
    if out is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=out.parent, delete=False,
                                     prefix=f".{out.name}.", suffix=".tmp") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(handle.name, out)
    typer.echo(f"{len(rows)} predictions written to {out}", err=True)


@app.command()
@friendly
def report(model_dir: Path = typer.Argument(..., help="A model folder written by `headstart fit`."),
           open_browser: bool = typer.Option(False, "--open", help="Open the HTML report in a browser.")) -> None:
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


@app.command()
@friendly
def rank(data: Path = typer.Argument(..., help="Labeled CSV/TSV/JSONL file or image folder, as for `fit`."),
         backbones: Optional[str] = typer.Option(None, help="Comma-separated registry names (default: every "
                                                            "registered backbone of the data's modality)."),
         score: Optional[str] = typer.Option(None, help="Rank by: hscore (default) | logme | nce | leep | probe."),
         max_items: int = typer.Option(2000, help="Score a stratified subset of at most this many train items."),
         out: Optional[Path] = typer.Option(None, help="Folder for ranking.json/.png/.html (default "
                                                       "runs/<data name>-rank)."),
         seed: int = typer.Option(0, help="Seed of the split and the subset."),
         split: Optional[str] = SPLIT_SHARES,
         text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
         path_column: str = PATH_COLUMN) -> None:
    """Rank candidate backbones by transferability scores and cost, without fine-tuning."""
    from headstart import api

    out = out or Path("runs") / f"{data.stem}-rank"
    ranking = api.rank(data, _names(backbones), score=score, max_items=max_items, out=out, seed=seed,
                       ratios=_ratios(split), columns=_columns(text_column, label_column, split_column, path_column))
    typer.echo(ranking.table())
    typer.echo(ranking.summary())
    typer.echo(f"ranking: {out / 'ranking.json'}   plot: {out / 'ranking.png'}   report: {out / 'ranking.html'}")


def _sizes(text: Optional[str]) -> Optional[list]:
    if not text:
        return None
    try:
        return [part.strip() if part.strip() == "all" else int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HeadstartError(f"cannot read '{text}'", where="--sizes",
                             fix="give labels a class separated by commas, e.g. 4,8,16,all") from None


@app.command()
@friendly
def curve(data: Path = typer.Argument(..., help="Labeled CSV/TSV/JSONL file or image folder, as for `fit`."),
          backbone: Optional[str] = typer.Option(None, help="Registry name (default: minilm-l6 for text, "
                                                            "effnet-lite0 for images)."),
          sizes: Optional[str] = typer.Option(None, help="Labels a class, e.g. 4,8,16,32,all (default: powers "
                                                         "of two from 4, then all)."),
          seeds: int = typer.Option(3, help="Draws of each size."),
          test: Optional[Path] = typer.Option(None, help="A separate labeled test file."),
          out: Optional[Path] = typer.Option(None, help="Folder for curve.json/.png/.html (default "
                                                        "runs/<data name>-curve)."),
          seed: int = typer.Option(0, help="Seed of the split."),
          split: Optional[str] = SPLIT_SHARES,
          text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
          path_column: str = PATH_COLUMN) -> None:
    """Learning curves with and without transfer, and how many labels transfer saved."""
    from headstart import api

    out = out or Path("runs") / f"{data.stem}-curve"
    result = api.curve(data, backbone=backbone, sizes=_sizes(sizes), seeds=seeds, test=test, out=out, seed=seed,
                       ratios=_ratios(split), columns=_columns(text_column, label_column, split_column, path_column))
    typer.echo(result.table())
    typer.echo(result.sentence())
    typer.echo(f"curve: {out / 'curve.json'}   plot: {out / 'curve.png'}   report: {out / 'curve.html'}")


@app.command()
@friendly
def layers(data: Path = typer.Argument(..., help="Labeled CSV/TSV/JSONL file or image folder, as for `fit`."),
           backbone: Optional[str] = typer.Option(None, help="Registry name (default: minilm-l6 for text, "
                                                             "effnet-lite0 for images)."),
           val: Optional[Path] = typer.Option(None, help="A separate labeled validation file."),
           out: Optional[Path] = typer.Option(None, help="Folder for layers.json/.png/.html (default "
                                                         "runs/<data name>-layers)."),
           seed: int = typer.Option(0, help="Seed of the split."),
           split: Optional[str] = SPLIT_SHARES,
           text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN, split_column: str = SPLIT_COLUMN,
           path_column: str = PATH_COLUMN) -> None:
    """Probe accuracy of each layer group on the validation split, and how deep to fine-tune."""
    from headstart import api

    out = out or Path("runs") / f"{data.stem}-layers"
    report = api.layers(data, backbone=backbone, val=val, out=out, seed=seed, ratios=_ratios(split),
                        columns=_columns(text_column, label_column, split_column, path_column))
    for group, (accuracy, dim) in enumerate(zip(report.accuracies, report.dims)):
        typer.echo(f"group {group}: " + ("not reached" if accuracy is None else f"{accuracy:.4f}  ({dim}-d)"))
    typer.echo(report.sentence())
    typer.echo(f"layers: {out / 'layers.json'}   plot: {out / 'layers.png'}   report: {out / 'layers.html'}")


@app.command()
def backbones() -> None:
    """List the registered backbones."""
    from headstart.backbones import list_backbones

    for entry in list_backbones():
        typer.echo(f"{entry.name:<14} {entry.modality:<6} {entry.description}")
    typer.echo("also: st:<id or folder>, hf:<id or folder> (text), timm:<name> (images)")


# `headstart label ...`: model-assisted labeling (headstart/labeling/cli.py).
from headstart.labeling.cli import label_app  # noqa: E402
app.add_typer(label_app, name="label")


if __name__ == "__main__":
    app()
