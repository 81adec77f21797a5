"""Frozen-backbone features: fast extraction and the on-disk cache."""

from headstart.features.cache import FeatureCache, default_cache_dir
from headstart.features.extract import cached_features, compute_features, export_onnx, forward_function

__all__ = ["FeatureCache", "cached_features", "compute_features", "default_cache_dir", "export_onnx",
           "forward_function"]
