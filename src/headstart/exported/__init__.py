"""Models out of headstart: one ONNX graph, its labels, tokenizer and model card, and loading it back."""

from headstart.exported.folder import check_quantization, export_model
from headstart.exported.runtime import ExportedModel, is_exported

__all__ = ["ExportedModel", "check_quantization", "export_model", "is_exported"]
