"""``headstart extract``: a pool's features into the cache, in one process or shared out by rank.

One process::

    headstart extract pool.csv --backbone minilm-l6

Shared by hand (or by a batch scheduler), on one machine or several that see the same cache folder,
then merged once::

    headstart extract pool.csv --backbone minilm-l6 --shard 0/2   # and 1/2, anywhere
    headstart extract --merge

Shared by Hugging Face Accelerate, which merges by itself when every process is done::

    accelerate launch --num_processes 2 -m headstart.cli extract pool.csv --backbone minilm-l6
"""

from __future__ import annotations

import os
from pathlib import Path

from headstart.errors import HeadstartError
from headstart.features.ranks import Rank, current_rank
from headstart.paths import default_cache_dir
from headstart.progress import say


def extract_pool(pool: Path | None, *, backbone: str | None = None, shard: str | None = None, merge: bool = False,
                 cache_dir: Path | None = None, chunk: int | None = None, batch_size: int = 64, threads: int | None = None,
                 engine: str = "auto", text_column: str = "text", path_column: str = "path",
                 image_size: int | None = None, max_length: int | None = None) -> list[str]:
    """This process's share of ``pool``'s features into the cache, merged when asked; the lines to print.

    An ``accelerate launch`` merges by itself once every process is done.

    Args:
        pool: a CSV/TSV/JSONL file or an image folder; labels not needed. None with ``merge``: only merge.
        backbone: a registry name (default: the modality's default backbone).
        shard: ``r/w``, this process's rank and the number of processes; None: one process, or
            the ranks of an ``accelerate launch``.
        merge: index every shard written into the cache, after extracting (one process only).
        cache_dir: the cache folder (default: $HEADSTART_CACHE, or ~/.cache/headstart); shared
            storage when the ranks run on several machines.
        chunk: items a shard file (what a killed process loses at most; default 2,048).
        batch_size: items a forward pass.
        threads: intra-op threads of this process (default: the machine's cores shared by the
            processes on it).
        engine: ``auto``, ``onnx`` or ``torch``.
        text_column: the pool's column of texts.
        path_column: the pool's column of image paths.
        image_size: the backbone's image side, as for ``headstart fit``.
        max_length: the backbone's tokens a text, as for ``headstart fit``.

    Raises:
        HeadstartError: bad ``--shard``, ``--chunk``, ``--threads``; no pool and no ``--merge``; a
            merge inside a sharded run; unreadable pool; unknown backbone.
    """
    _check_numbers(chunk=chunk, batch_size=batch_size, threads=threads)
    rank = current_rank(shard)
    # Imported after the options are checked: extraction imports torch, which a wrong option need not wait for.
    from headstart.features.sharded import CHUNK, extract_share, merge_shards

    if merge and rank.source == "--shard" and rank.world > 1:
        raise HeadstartError("--merge with --shard: each shard's process would index the others' shards while "
                             "they are written", where="--merge",
                             fix="run `headstart extract --merge` once, after every shard has finished")
    cache_dir = Path(cache_dir or default_cache_dir())
    if pool is None:
        if not merge:
            raise HeadstartError("no pool to extract", where="headstart extract",
                                 fix="give a CSV/JSONL file or image folder, or --merge to index the shards written")
        return [merged.line() for merged in merge_shards(cache_dir)] or [f"no cached features in {cache_dir}"]
    net, dataset = _load(pool, backbone, text_column, path_column, image_size, max_length)
    _set_threads(threads, rank)
    report = extract_share(net, dataset.items, dataset.hashes, rank, cache_dir=cache_dir, engine=engine,
                           batch_size=batch_size, chunk=chunk or CHUNK)
    lines = [report.line()]
    if merge or rank.source == "accelerate":
        rank.wait_for_everyone()  # every process's shards are written
        if rank.is_main:
            lines += [merged.line() for merged in merge_shards(cache_dir, net.fingerprint())]
    elif rank.world > 1:
        say(f"when every shard has finished: headstart extract --merge --cache-dir {cache_dir}")
    return lines


def _check_numbers(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            option = "--" + name.replace("_", "-")
            raise HeadstartError(f"{value} is not a positive number", where=option, fix=f"give {option} 1 or more")


def _load(pool: Path, backbone: str | None, text_column: str, path_column: str, image_size: int | None,
          max_length: int | None):
    """The backbone and the pool (any labels ignored)."""
    from headstart.backbones import backbone_name_for, backbone_options, create_backbone
    from headstart.data.sources import read_dataset

    dataset = read_dataset(pool, text_column=text_column, path_column=path_column, require_labels=False)
    name = backbone_name_for(dataset.modality, backbone)
    return create_backbone(name, **backbone_options(image_size, max_length)), dataset


def _set_threads(threads: int | None, rank: Rank) -> None:
    """This process's intra-op threads: the ones asked for, else the cores shared by the processes on this machine.

    ``accelerate launch`` sets ``OMP_NUM_THREADS`` to its share of the cores; that is kept.
    """
    import torch

    if threads is None:
        if rank.source == "accelerate" and os.environ.get("OMP_NUM_THREADS"):
            return
        threads = max(1, (os.cpu_count() or 1) // rank.local_world)
    torch.set_num_threads(threads)
