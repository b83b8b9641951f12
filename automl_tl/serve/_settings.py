"""The server's settings (``automl-tl serve``'s options), importable without FastAPI."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServeSettings"]


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """``batch_window_ms``: how long the first request of a batch waits for others;
    ``max_batch``: the most inputs in one forward pass; ``max_items``: the most inputs in one
    request; ``max_body_mb``: the largest request body."""

    batch_window_ms: float = 5.0
    max_batch: int = 64
    max_items: int = 256
    max_body_mb: float = 32.0
