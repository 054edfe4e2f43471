"""Frozen records that cross the engine's boundary: what a node sees and what it emits.

A ``Message`` is the paper's m (Section 3): a kind (used for colouring and for
hand-written protocols) and an opaque payload. It carries no receiver, and no
sender unless the rule declares ``"sender"`` in its assumptions. One ``Message``
object is shared by every receiver of a broadcast.

A ``NodeView`` is everything a node knows about itself: its features, and its
degree or id only if the rule declares that it assumes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["Message", "NodeView", "START"]


@dataclass(frozen=True, slots=True)
class Message:
    """One emission, broadcast to every neighbour: ``kind``, ``payload`` and (opt-in) ``sender``."""

    kind: str = "msg"
    payload: Any = None
    sender: Optional[int] = None


@dataclass(frozen=True, slots=True)
class NodeView:
    """What a node knows: ``features``; ``degree`` iff the rule assumes it; ``id`` iff it assumes ids."""

    features: Any = None
    degree: Optional[int] = None
    id: Optional[int] = None


START = Message(kind="start")
"""The paper's special initial message (Section 3), used when no other is given."""
