"""The command line's options: choices listed in --help and refused before anything loads, every
boolean flag with its --no- form, -q before or after the subcommand, and a start that loads no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

from headstart import cli_common
from headstart.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def every_command(command, path: tuple[str, ...] = ()):
    """(path, command) of every command and group under ``command``, itself included."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from every_command(sub, (*path, name))


def literal_choices(annotation) -> tuple:
    """The values of a ``Literal`` annotation, also inside ``Optional``; () for any other."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if get_origin(annotation) is Union:
        return next((get_args(a) for a in get_args(annotation) if get_origin(a) is Literal), ())
    return ()


def test_every_boolean_flag_has_its_no_form_and_every_fixed_choice_is_listed_in_help(monkeypatch):
    monkeypatch.setattr("typer.rich_utils.MAX_WIDTH", 400)  # one option a line: choices are not wrapped
    root = typer.main.get_command(app)
    without_no, unlisted, choices_seen = [], [], 0
    for path, command in every_command(root):
        help_text = None
        for param in command.params:
            if not isinstance(param, TyperOption) or param.name == "help":
                continue
            if param.is_flag and param.is_bool_flag and not param.secondary_opts:
                without_no.append(f"headstart {' '.join(path)} {param.opts[0]}")
            choices = literal_choices(param.type_descriptor.annotation)
            if choices:
                choices_seen += 1
                if help_text is None:
                    result = runner.invoke(app, [*path, "--help"])
                    assert result.exit_code == 0, result.output
                    help_text = result.output
                listed = "|".join(str(choice) for choice in choices)
                if listed not in help_text:
                    unlisted.append(f"headstart {' '.join(path)} {param.opts[0]}: {listed}")
    assert not without_no, f"boolean flags without a --no- form: {without_no}"
    assert not unlisted, f"options whose choices --help does not list: {unlisted}"
    assert choices_seen >= 7  # --mode, --adapt, --score, --quantize, two --strategy, --role


@pytest.mark.parametrize("literal, module, name, extra", [
    (cli_common.Mode, "headstart.learn.config", "MODES", ()),
    (cli_common.AdaptMethod, "headstart.adapt.methods", "METHODS", ("auto",)),
    (cli_common.Score, "headstart.transfer.scores", "SCORES", ()),
    (cli_common.Strategy, "headstart.labeling.strategies", "STRATEGIES", ("default",)),
    (cli_common.Role, "headstart.labeling.models", "ROLES", ()),
    (cli_common.Quantization, "headstart.exported.folder", "QUANTIZATIONS", ()),
])
def test_the_command_line_choices_are_those_the_code_takes(literal, module, name, extra):
    import importlib

    owned = {value for value in getattr(importlib.import_module(module), name) if value is not None}
    assert set(get_args(literal)) == owned | set(extra)


def test_the_default_strategy_named_in_help_is_the_code_s():
    from headstart.labeling.strategies import DEFAULT_STRATEGY

    assert cli_common.DEFAULT_STRATEGY == DEFAULT_STRATEGY


def test_an_unknown_mode_is_refused_in_one_line_before_any_weights_load(monkeypatch, text_csv, tmp_path):
    def no_weights(*args, **kwargs):
        raise AssertionError("a backbone was loaded for a command line that was wrong")

    monkeypatch.setattr("headstart.backbones.registry.create_backbone", no_weights)
    monkeypatch.setattr("headstart.backbones.create_backbone", no_weights)
    result = runner.invoke(app, ["fit", str(text_csv()), "--mode", "fast", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--mode" in lines[0]
    assert "'fast' is not one of 'auto', 'probe', 'finetune'" in lines[0]
    assert not (tmp_path / "out").exists()


def _modules_after(*args: str, cwd: Path) -> set[str]:
    """The top-level modules loaded by running ``headstart args`` in a fresh interpreter."""
    script = ("import sys\nfrom headstart.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "import json\nprint(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})))")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["label", "--help"], ["fit", "data.csv", "--mode", "fast"],
                                  ["report", "missing-folder"]], ids=" ".join)
def test_help_errors_and_report_load_neither_torch_nor_scikit_learn(args, tmp_path):
    """What made `headstart --help` take 7-8 s: importing torch (and the rest) to print help."""
    loaded = _modules_after(*args, cwd=tmp_path)
    assert "headstart" in loaded
    assert not loaded & {"torch", "sklearn", "transformers", "sqlalchemy", "scipy"}, sorted(loaded)


def test_quiet_works_before_or_after_the_subcommand(monkeypatch, tmp_path):
    for args in (["-q", "report", str(tmp_path)], ["report", str(tmp_path), "-q"],
                 ["label", "status", "--quiet", "--db", str(tmp_path / "none.db")]):
        monkeypatch.delenv("HEADSTART_QUIET", raising=False)
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output  # neither folder holds anything: one-line errors
        assert os.environ.get("HEADSTART_QUIET") == "1", args
    monkeypatch.delenv("HEADSTART_QUIET", raising=False)
    runner.invoke(app, ["report", str(tmp_path)])
    assert not os.environ.get("HEADSTART_QUIET")


def test_only_the_root_flags_move_and_nothing_after_a_double_dash():
    hoist = cli_common.hoist_global_options
    assert hoist(["fit", "a.csv", "-q", "--debug"]) == ["-q", "--debug", "fit", "a.csv"]
    assert hoist(["label", "next", "-n", "3", "--quiet"]) == ["--quiet", "label", "next", "-n", "3"]
    assert hoist(["predict", "m", "--", "-q"]) == ["predict", "m", "--", "-q"]
