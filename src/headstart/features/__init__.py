"""Frozen-backbone features: fast extraction and the on-disk cache."""

from headstart.lazy import lazy_attributes

# The names load on first use (PEP 562): reading cached features (headstart.features.cache) then
# needs no torch, which extraction imports; `headstart label next` reads them in under a second.
_LAZY = {
    "FeatureCache": "headstart.features.cache", "cached_features": "headstart.features.extract",
    "compute_features": "headstart.features.extract", "export_onnx": "headstart.features.extract",
    "forward_function": "headstart.features.extract",
}
__all__ = ["FeatureCache", "cached_features", "compute_features", "export_onnx",
           "forward_function"]
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
