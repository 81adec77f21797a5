"""Training: the linear head, the probe, contrastive few-shot tuning, staged fine-tuning and the trainer over them."""
