"""Frozen forward passes where this CPU runs them fastest.

Eager PyTorch is slow on CPUs for these backbones (depthwise convolutions
above all), so frozen features are computed by an ONNX Runtime session of
the same weights, exported once per backbone fingerprint and kept in the
cache folder. Preprocessing of the next batch runs in a thread while the
current batch runs, so reading and decoding hide behind the forward pass.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from headstart.backbones.base import Backbone
from headstart.compute.device import autocast, current_device, placed, to_device
from headstart.features.cache import FeatureCache
from headstart.features.layer_norm_graph import write_out_layer_norms
from headstart.output import atomic_path
from headstart.paths import default_cache_dir, mark_used
from headstart.progress import progress_bar

log = logging.getLogger(__name__)
ENGINES = ("auto", "onnx", "torch")
# Items from which exporting freshly tuned weights to ONNX pays for itself on the CPU; below, eager
# PyTorch is done first. Measured on two cores (benchmarks/README.md, "When the ONNX export pays"):
# minilm-l6's break-even (export seconds over the time saved an item) is 3,850 sentences with the
# current graph (TEXT_GRAPH_FORM 2); it was 1,200-8,100 on other hosts with the older one.
# effnet-lite0 exports in 1 s and extracts 100 images/s against eager's 14 (break-even ~16).
ONNX_PAYS_FROM = {"text": 4000, "image": 20}
# The form of the exported text graph (2: fused attention, layer norms written out). A cached export
# of an older form gives the same features more slowly, so each form has file names of its own and
# the old files age out of the cache (``headstart cache prune``).
TEXT_GRAPH_FORM = 2


def export_onnx(backbone: Backbone, path: str | Path, module: torch.nn.Module | None = None,
                output_name: str = "features", *, example: dict[str, torch.Tensor] | None = None,
                fuse: bool | None = None) -> Path:
    """Write the backbone's feature module (or ``module``, which takes the same inputs) to an ONNX file.

    ``example`` replaces :func:`example_inputs` where ``module`` takes the inputs in another layout
    (a classifier taking images as (n, H, W, 3), say); ``fuse`` asks for the transformer fusion below
    on a text ``module`` too (by default only the whole backbone is fused).

    The file is written under a temporary name and then renamed, so a failed export leaves none.
    Text encoders are traced with plain ("eager") attention, which ONNX Runtime's transformer
    optimizer recognizes and fuses into single attention and layer-norm kernels; the fused graph
    is kept only when its outputs match the unfused one within 1e-5.
    """
    path = Path(path)
    example = example_inputs(backbone) if example is None else example
    dynamic_axes = {**backbone.dynamic_axes, output_name: {0: "batch"}}
    whole = module is None
    module = backbone.module if whole else module
    module.eval()
    encoder = getattr(backbone.module, "encoder", None)
    attention = getattr(getattr(encoder, "config", None), "_attn_implementation", None)
    if attention and hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("eager")
    with atomic_path(path) as temporary:  # a failed export leaves no file for the next run to load
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes about constants are expected here
                torch.onnx.export(module, tuple(example[name] for name in backbone.input_names),
                                  str(temporary), input_names=list(backbone.input_names),
                                  output_names=[output_name], dynamic_axes=dynamic_axes, opset_version=17,
                                  dynamo=False)
        finally:
            if attention and hasattr(encoder, "set_attn_implementation"):
                encoder.set_attn_implementation(attention)
        if (whole if fuse is None else fuse) and backbone.modality == "text":
            _fuse_transformer(temporary, backbone, example)
    return path


def _fuse_transformer(path: Path, backbone: Backbone, example: dict[str, torch.Tensor]) -> None:
    """Replace the ONNX file at ``path`` by ONNX Runtime's fused version when it gives the same outputs.

    Its layer norms are written out again (:mod:`headstart.features.layer_norm_graph`).
    """
    import onnxruntime as ort
    from onnxruntime.transformers.optimizer import optimize_model

    config = backbone.module.encoder.config
    fused_path = path.with_name(path.name + ".fused")
    try:
        fused = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size)
        write_out_layer_norms(fused.model)  # the fused layer-norm kernel is the slow one on CPUs
        fused.save_model_to_file(str(fused_path))
        feed = {name: tensor.numpy() for name, tensor in example.items()}
        plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        optimized = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        if np.abs(plain - optimized).max() <= 1e-5:
            os.replace(fused_path, path)
    except Exception as error:  # noqa: BLE001 - fusion is an optimization; the plain graph still works
        log.info("transformer fusion skipped for %s: %s", backbone.name, error)
    finally:
        fused_path.unlink(missing_ok=True)


def example_inputs(backbone: Backbone) -> dict[str, torch.Tensor]:
    """Preprocessed inputs of two example items: what exports trace and checks compare on."""
    if backbone.modality == "text":
        return backbone.preprocess(["an example sentence to trace the encoder",
                                    "a second, longer one, so that the batch needs padding"])
    return {"pixels": torch.zeros(2, 3, backbone.image_size, backbone.image_size, dtype=torch.uint8)}


def onnx_path(backbone: Backbone, cache_dir: str | Path | None = None) -> Path:
    """Where the ONNX export of the backbone's current weights is cached."""
    form = f"-form{TEXT_GRAPH_FORM}" if backbone.modality == "text" else ""
    return Path(cache_dir or default_cache_dir()) / "onnx" / f"{backbone.fingerprint()[:24]}{form}.onnx"


def onnx_session(backbone: Backbone, cache_dir: str | Path | None = None, *, path: Path | None = None):
    """An ONNX Runtime session of the backbone's feature module, exported once and cached.

    ``path``: :func:`onnx_path`'s answer where the caller has it already (it hashes every weight).
    """
    path = path or onnx_path(backbone, cache_dir)
    if not path.exists():
        export_onnx(backbone, path)
    else:
        mark_used(path)
    return session_of(str(path), torch.get_num_threads())


@functools.lru_cache(maxsize=4)
def session_of(path: str, threads: int, spinning: bool = True):
    """The ONNX Runtime session of an exported file, one per file, thread count and process.

    Sessions are kept because building one is slow next to running a batch (benchmarks/README.md).
    ``spinning=False`` for a session that runs beside other work: its idle threads then sleep
    instead of spinning on cores that work needs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def forward_function(backbone: Backbone, engine: str = "auto", cache_dir: str | Path | None = None, *,
                     items: int | None = None) -> tuple[Callable[[dict], np.ndarray], str]:
    """A function from preprocessed inputs to features (n, d) as numpy, and the engine it uses.

    On a GPU (:func:`headstart.compute.device.using_device`) ``auto`` is PyTorch under autocast,
    run wherever ``backbone.module`` is (:func:`compute_features` places it there). On the CPU it is
    ONNX Runtime, unless the weights have no export yet and the ``items`` to come are too few for
    the export to pay for itself (:data:`ONNX_PAYS_FROM`): a tuned encoder's features of a hundred
    training texts, say.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    device = current_device()
    if engine == "auto" and device.type != "cpu":  # this ONNX Runtime runs on the CPU only
        engine = "torch"
    path = onnx_path(backbone, cache_dir) if engine in ("auto", "onnx") else None
    if engine == "auto" and items is not None and items < ONNX_PAYS_FROM[backbone.modality] and not path.exists():
        engine = "torch"
    if engine in ("auto", "onnx"):
        try:
            session = onnx_session(backbone, cache_dir, path=path)
            return (lambda inputs: session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]), "onnx"
        except Exception as error:  # noqa: BLE001 - any export failure falls back to eager PyTorch
            if engine == "onnx":
                raise
            log.warning("ONNX export of %s failed (%s); using eager PyTorch", backbone.name, error)
    backbone.module.eval()

    def run_torch(inputs: dict) -> np.ndarray:
        with torch.inference_mode():
            if device.type == "cpu":
                return backbone.module(**inputs).numpy()
            where = next(backbone.module.parameters()).device
            with autocast(where):
                return backbone.module(**to_device(inputs, where)).float().cpu().numpy()
    return run_torch, "torch"


def batches_in_length_order(items: Sequence[str], modality: str, batch_size: int) -> list[np.ndarray]:
    """Positions of ``items`` in batches; texts sorted by length so batches need little padding."""
    order = np.argsort([len(item) for item in items], kind="stable") if modality == "text" else np.arange(len(items))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def prefetched(preprocess: Callable[[list[str]], dict], items: Sequence[str],
               batches: list[np.ndarray]) -> Iterator[dict]:
    """``preprocess`` of each batch of ``items``, each prepared in a thread while the previous one runs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in batches:
            future = pool.submit(preprocess, [items[i] for i in batch])
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def compute_features(backbone: Backbone, items: Sequence[str], *, engine: str = "auto", batch_size: int = 64,
                     cache_dir: str | Path | None = None, description: str = "features",
                     view: Callable[[dict], dict] | None = None, tuned: bool = False) -> np.ndarray:
    """Features of ``items`` (no cache), shape (n, feature_dim), float32.

    ``view`` changes the preprocessed inputs first (a mirror image, say). ``tuned``: the weights
    have just been tuned, so few items go through eager PyTorch rather than a fresh ONNX export
    (:func:`forward_function`); cached features always come from one engine.
    """
    forward, _ = forward_function(backbone, engine, cache_dir, items=len(items) if tuned else None)
    out = np.zeros((len(items), backbone.feature_dim), dtype=np.float32)
    batches = batches_in_length_order(items, backbone.modality, batch_size)
    prepare = backbone.preprocess if view is None else (lambda batch: view(backbone.preprocess(batch)))
    with progress_bar(f"{description} ({backbone.name})", len(items)) as advance, \
            placed(backbone.module, current_device()):
        for batch, inputs in zip(batches, prefetched(prepare, items, batches)):
            out[batch] = forward(inputs)
            advance(len(batch))
    return out


def cached_features(backbone: Backbone, items: Sequence[str], hashes: Sequence[str], *, engine: str = "auto",
                    batch_size: int = 64, cache_dir: str | Path | None = None) -> np.ndarray:
    """Features of ``items`` (n, d), computing only those whose hash the cache has not seen."""
    cache = FeatureCache(cache_dir or default_cache_dir(), backbone.fingerprint(), backbone.describe())
    missing = set(cache.missing(list(hashes)))
    if missing:
        first = {}
        for item, item_hash in zip(items, hashes):
            if item_hash in missing and item_hash not in first:
                first[item_hash] = item
        todo = list(first)
        cache.put(todo, compute_features(backbone, [first[h] for h in todo], engine=engine,
                                         batch_size=batch_size, cache_dir=cache_dir))
    return cache.get(list(hashes))
