"""Command-line options that ``headstart fit`` and ``headstart label init`` share: the backbone's
preprocessing, chosen once and kept with the model or the labeling project."""

import typer

IMAGE_SIZE = typer.Option(None, help="Image side in pixels (default: the backbone's).")
MAX_LENGTH = typer.Option(None, help="Maximum tokens per text (default: the backbone's).")
MIRROR = typer.Option(True, "--mirror/--no-mirror",
                      help="Whether an image's left-right mirror shows the same class: training flips images "
                           "and predictions average both views. --no-mirror for digits, text, or anything with "
                           "a left and a right side.")
