"""Reading datasets, checking them and splitting them into train/val/test."""

from headstart.data.dataset import IMAGE, TEXT, Dataset
from headstart.data.images import load_image
from headstart.data.sources import read_dataset
from headstart.data.splits import assign_splits

__all__ = ["Dataset", "read_dataset", "assign_splits", "load_image", "TEXT", "IMAGE"]
