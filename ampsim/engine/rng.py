"""One seed -> independent named random streams (STYLE.md semantics 4).

``stream(seed, "delays")`` is a ``random.Random`` seeded from SHA-256 of
``"<seed>/<name>"``: streams are independent of each other, reproducible across
platforms and Python versions, and nothing here touches the global RNGs of
``random``, NumPy or torch.
"""
from __future__ import annotations

import hashlib
import random

__all__ = ["derive_seed", "stream"]


def derive_seed(seed: int, name: str) -> int:
    """A 64-bit seed for the stream ``name`` of the simulation seeded with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def stream(seed: int, name: str) -> random.Random:
    """A fresh ``random.Random`` for the named stream of ``seed``."""
    return random.Random(derive_seed(seed, name))
