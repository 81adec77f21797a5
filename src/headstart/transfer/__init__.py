"""Choosing and checking transfer: which backbone, whether transfer helps, how deep to tune.

Transferability scores, backbone ranking, the scratch baseline and its verdict, layer-wise
transferability and learning curves.
"""

from headstart.transfer.scores import hscore, leep, logme, nce, nce_from_features, probe_accuracy

__all__ = ["hscore", "leep", "logme", "nce", "nce_from_features", "probe_accuracy"]
