"""headstart: transfer learning on small labeled datasets, for text and images."""

from importlib import import_module

from headstart.errors import BackboneError, DataError, HeadstartError, ModelError

__version__ = "0.1.0"

# The public names that need torch and transformers load on first use (PEP 562): a command that
# never trains, such as the labeling web server or `headstart --help`, starts in a fraction of
# the time and memory.
_LAZY = {
    "curve": "headstart.api", "fit": "headstart.api", "layers": "headstart.api", "load": "headstart.api",
    "predict": "headstart.api", "prepare": "headstart.api", "rank": "headstart.api",
    "FinetuneConfig": "headstart.learn.config", "Model": "headstart.model",
}
__all__ = ["BackboneError", "DataError", "HeadstartError", "ModelError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'headstart' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
