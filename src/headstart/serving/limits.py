"""What one request to the prediction server may hold.

The body's size is enforced before anything reads it (:class:`headstart.body_limit.LimitBody`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds of one ``POST /predict`` request.

    Args:
        max_body_bytes: the request body (JSON or every upload together).
        max_items: texts or images in one request.
        max_text_chars: characters of one text (the model reads only its first few hundred tokens).
    """

    max_body_bytes: int = 10 * 1024 * 1024
    max_items: int = 64
    max_text_chars: int = 20_000
