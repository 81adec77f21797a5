"""``headstart cache ...``: what the cache folder holds, and removing it (a part of the ``headstart`` command)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from headstart.cli_common import friendly
from headstart.errors import HeadstartError

cache_app = typer.Typer(no_args_is_help=True, help="What the cache folder holds (features, ONNX exports, "
                                                    "unpacked weights), and removing it.")
CACHE_DIR = typer.Option(None, "--cache-dir", help="The cache folder (default: $HEADSTART_CACHE, or "
                                                   "~/.cache/headstart).")


def _cache_root(cache_dir: Optional[Path]) -> Path:
    from headstart.paths import default_cache_dir

    return cache_dir or default_cache_dir()


@cache_app.command("list")
@friendly
def cache_list(cache_dir: Optional[Path] = CACHE_DIR) -> None:
    """List the cache's entries, least recently used first, with their size, age and the total."""
    import time

    from headstart.features.cache_entries import cache_entries, human_age, human_size

    root, now = _cache_root(cache_dir), time.time()
    entries = cache_entries(root)
    for entry in entries:
        typer.echo(f"{entry.kind:<8}  {human_size(entry.size):>9}  {human_age(entry.age_days(now)):>11}  "
                   f"{entry.label}  {entry.path.relative_to(root)}")
    typer.echo(f"total: {len(entries)} entries, {human_size(sum(e.size for e in entries))} in {root}")


@cache_app.command("prune")
@friendly
def cache_prune(older_than: Optional[float] = typer.Option(None, "--older-than", metavar="DAYS",
                                                           help="Remove entries not used for more days than this."),
                max_size: Optional[str] = typer.Option(None, "--max-size", metavar="SIZE",
                                                       help="Then remove the least recently used entries until "
                                                            "the cache fits, e.g. 2GB, 500MB."),
                cache_dir: Optional[Path] = CACHE_DIR) -> None:
    """Remove old entries, or the least recently used beyond a size; what is needed again is recomputed."""
    from headstart.features.cache_entries import cache_entries, human_size, parse_size, remove_entries, to_prune

    if older_than is None and max_size is None:
        raise HeadstartError("nothing to prune by", where="headstart cache prune",
                             fix="give --older-than DAYS, --max-size SIZE, or both")
    if older_than is not None and older_than < 0:
        raise HeadstartError(f"{older_than:g} days is before now", where="--older-than", fix="give 0 or more days")
    root = _cache_root(cache_dir)
    entries = cache_entries(root)
    budget = None if max_size is None else parse_size(max_size)
    removed = to_prune(entries, older_than_days=older_than, max_size=budget)
    freed = remove_entries(removed)
    left = sum(e.size for e in entries) - freed
    typer.echo(f"removed {len(removed)} of {len(entries)} entries, {human_size(freed)}; "
               f"{human_size(left)} left in {root}")


@cache_app.command("clear")
@friendly
def cache_clear(yes: bool = typer.Option(False, "--yes/--no-yes",
                                         help="Remove every entry (needed: nothing is asked)."),
                cache_dir: Optional[Path] = CACHE_DIR) -> None:
    """Remove every entry of the cache; features and exports are computed again when next needed."""
    from headstart.features.cache_entries import cache_entries, human_size, remove_entries

    root = _cache_root(cache_dir)
    entries = cache_entries(root)
    total = human_size(sum(e.size for e in entries))
    if not yes:
        raise HeadstartError(f"this removes all {len(entries)} entries ({total})", where=str(root),
                             fix="add --yes to remove them")
    typer.echo(f"removed {len(entries)} entries, {human_size(remove_entries(entries))} from {root}")
