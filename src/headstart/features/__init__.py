"""Frozen-backbone features: fast extraction and the on-disk cache."""

from headstart.features.cache import FeatureCache
from headstart.features.extract import cached_features, compute_features, export_onnx, forward_function

__all__ = ["FeatureCache", "cached_features", "compute_features", "export_onnx",
           "forward_function"]
