"""``python -m headstart``: the ``headstart`` command (what ``accelerate launch -m headstart`` runs)."""

from headstart.cli import app

app(prog_name="headstart")
