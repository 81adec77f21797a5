"""Evaluation: metrics on a labelled split and a self-contained HTML report."""

from headstart.evaluate.metrics import classification_metrics, expected_calibration_error
from headstart.evaluate.report import write_report

__all__ = ["classification_metrics", "expected_calibration_error", "write_report"]
