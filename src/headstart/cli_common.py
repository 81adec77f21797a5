"""What both command files share (``headstart`` in :mod:`headstart.cli`, ``headstart label`` in
:mod:`headstart.labeling.cli`): one-line errors, the ``--debug`` switch they obey, and the
options for a backbone's preprocessing, chosen once and kept with the model or the labeling project.

Neither command file is imported here, so either can be imported without the other.
"""

from __future__ import annotations

import functools
from typing import Literal

import typer

from headstart.compute.device import DEVICE_HELP, check_device, resolve_device
from headstart.errors import HeadstartError

_state = {"debug": False}

# Options with a fixed set of values are typed with these, so that --help lists the values and a
# wrong one is refused while the arguments are parsed, before any data or weights load. They are
# written out here because the modules that own them import numpy or torch, which a command line
# that starts in under a second cannot import; tests/test_cli_options.py checks that they agree.
Mode = Literal["auto", "probe", "finetune"]  # headstart.learn.config.MODES
# auto + adapt.methods.METHODS
AdaptMethod = Literal["auto", "none", "coral", "adabn", "prior", "self-train", "coral-self-train"]
Score = Literal["hscore", "logme", "nce", "leep", "probe"]  # headstart.transfer.scores.SCORES
Quantization = Literal["int8"]  # headstart.exported.folder.QUANTIZATIONS, None left out
Strategy = Literal["default", "random", "least-confidence", "margin", "entropy", "kcenter", "badge",
                   "margin-diverse", "class-balanced"]  # "default" + headstart.labeling.strategies.STRATEGIES
DEFAULT_STRATEGY = "margin-diverse"  # headstart.labeling.strategies.DEFAULT_STRATEGY
Role = Literal["annotator", "reviewer", "admin"]  # headstart.labeling.models.ROLES

# headstart fit --zero-shot (headstart.transfer.zero_shot): a model from class names, no labels
ZERO_SHOT = typer.Option(False, "--zero-shot/--no-zero-shot", help="No labels: a model from the class names (or "
                         "--describe) alone, through the sentence encoder; DATA is left out.")
CLASSES = typer.Option(None, help='With --zero-shot: the class names, e.g. "negative,positive".')
DESCRIBE = typer.Option(None, help='Short class descriptions, e.g. "negative=a negative movie review,positive=a '
                        'positive movie review" (a class left out keeps its name): with --zero-shot the model, '
                        'with labeled text the zero-shot prior.')
UNLABELED = typer.Option(None, help="Unlabeled items of the task (file or image folder). With a labeled DATA: "
                         "the head also learns from them (self-training or label spreading) where that beats "
                         "the labels alone on held-out labels. With --zero-shot: texts to calibrate on "
                         "(default: the --test texts, never their labels).")

# The packages of headstart's optional extras, by the name they are imported under: a command that
# needs a missing one says what to install instead of ending in a traceback.
EXTRA_MODULES = {
    "label": ("sqlalchemy", "alembic", "psycopg", "cleanlab", "statsmodels", "krippendorff", "fastapi", "uvicorn",
              "multipart"),
}


def set_debug(debug: bool) -> None:
    """Whether :func:`friendly` lets errors through with their traceback (``--debug``)."""
    _state["debug"] = debug


GLOBAL_FLAGS = ("-q", "--quiet", "--no-quiet", "--debug", "--no-debug")


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with the root command's flags (-q, --debug) moved in front of the subcommand, so that
    ``headstart fit data.csv -q`` means ``headstart -q fit data.csv``. Nothing after ``--`` moves."""
    end = args.index("--") if "--" in args else len(args)
    flags = [arg for arg in args[:end] if arg in GLOBAL_FLAGS]
    return flags + [arg for arg in args[:end] if arg not in GLOBAL_FLAGS] + args[end:]


class HeadstartGroup(typer.core.TyperGroup):
    """The ``headstart`` command group, with two changes to how it reads a command line.

    -q/--quiet and --debug work before or after the subcommand, and an option's value outside its
    choices is one line on stderr with exit code 2, as every other input error.
    """

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = hoist_global_options(args)
        ctx.meta["headstart.args"] = list(args)  # what `fit --processes N` runs again in each process
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except typer.BadParameter as error:  # raised while a subcommand parses: nothing has loaded yet
            command = error.ctx.command_path if error.ctx else "headstart"
            message = error.format_message().replace("Value error, ", "").rstrip(".")
            typer.secho(f"error: {message} (see {command} --help)", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2) from None


def missing_extra(error: ImportError) -> HeadstartError | None:
    """What to tell the user about ``error`` when an optional extra's package is not installed.

    Args:
        error: an ImportError raised while importing or running a command.

    Returns:
        An error naming the package and the extra to install, or None when the import that failed
        is not an extra's package (a bug, to be seen with its traceback).
    """
    missing = (error.name or "").partition(".")[0]
    for extra, modules in EXTRA_MODULES.items():
        if missing in modules:
            return HeadstartError(f"this command needs {missing}, which is not installed",
                                  fix=f"pip install 'headstart[{extra}]'")
    return None


def _fail(error: HeadstartError) -> None:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2) from None


def friendly(command):
    """Turn a HeadstartError, or a missing package of an optional extra, into one line on stderr and
    exit code 2 (unless ``--debug``)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HeadstartError as error:
            if _state["debug"]:
                raise
            _fail(error)
        except ImportError as error:
            problem = missing_extra(error)
            if problem is None or _state["debug"]:
                raise
            _fail(problem)
    return wrapper


IMAGE_SIZE = typer.Option(None, help="Image side in pixels (default: the backbone's).")
MAX_LENGTH = typer.Option(None, help="Maximum tokens per text (default: the backbone's).")
MIRROR = typer.Option(True, "--mirror/--no-mirror",
                      help="Whether an image's left-right mirror shows the same class: training flips images "
                           "and predictions average both views. --no-mirror for digits, text, or anything with "
                           "a left and a right side.")


def _device(value: str) -> str:
    try:
        text = check_device(value, "--device")
        if text.startswith("cuda"):  # only then is torch imported while parsing: to refuse a GPU that is not there
            resolve_device(text, "--device")
        return text
    except HeadstartError as error:  # refused while the arguments are parsed, before anything loads
        raise typer.BadParameter(f"{error.message} ({error.fix})") from None


DEVICE = typer.Option("auto", "--device", callback=_device, metavar="auto|cpu|cuda[:N]",
                      help=f"Where features and fine-tuning run: {DEVICE_HELP}. Mixed precision on a GPU.")
