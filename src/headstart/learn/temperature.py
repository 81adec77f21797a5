"""Temperature scaling of a fitted head, so that its confidences can be read as probabilities.

The temperature is fitted on the validation split's probabilities of the chosen model before its refit
on train+validation (:attr:`headstart.learn.trainer.TrainResult.val_proba`: held out, so honest) and
applied to the final head. Dividing the head's weight and bias by T divides its logits by T, so every
path that runs the head (predict, the server, the ONNX export) gives the scaled probabilities.
"""

from __future__ import annotations

import numpy as np

from headstart.evaluate.calibration import temperature_choice
from headstart.learn.head import LinearHead
from headstart.learn.trainer import TrainResult
from headstart.progress import say


def scaled_head(head: LinearHead, temperature: float) -> LinearHead:
    """``head`` with its logits divided by ``temperature``."""
    return LinearHead((head.weight / temperature).astype(head.weight.dtype),
                      (head.bias / temperature).astype(head.bias.dtype))


def calibrate(result: TrainResult, val_y: np.ndarray) -> dict:
    """Fit a temperature on ``result``'s validation probabilities; apply it to ``result.head`` where it helps.

    Records what was done in ``result.config["calibration"]`` (see
    :func:`headstart.evaluate.calibration.temperature_choice`) and returns it.
    """
    choice = temperature_choice(val_y, result.val_proba)
    if choice["applied"]:
        result.head = scaled_head(result.head, choice["temperature"])
        say(f"Temperature scaling (T = {choice['temperature']:.2f}) lowers the validation ECE from "
            f"{choice['val_ece_before']:.3f} to {choice['val_ece_after']:.3f}")
    result.config["calibration"] = choice
    return choice
