"""Flooding: each node forwards the first message it receives, once (the BFS wave of Section 5.2).

=================  ===================  ==========================
state              on message m         emission
=================  ===================  ==========================
``None`` (fresh)   hops carried by m    ``Message("flood", hops + 1)``
hops (seen)        unchanged            none
=================  ===================  ==========================

The payload counts hops from the start node, so under constant delays a node's
first payload is its BFS distance. Every node is ``finished`` once it has heard
the flood, so a run that goes quiet with unreached nodes ends ``stalled``.
"""
from __future__ import annotations

from typing import Any, Optional

from ..engine.messages import Message, NodeView

__all__ = ["Flooding", "HaltingFlooding"]


class Flooding:
    """Forward the first message, drop the rest; the state is the hop count heard first (or None)."""

    name = "flooding"
    assumes = frozenset()

    def start(self, node: NodeView) -> tuple[Any, Optional[Message]]:
        return None, None

    def receive(self, node: NodeView, state: Any, message: Message) -> tuple[Any, Optional[Message]]:
        if state is not None:
            return state, None
        hops = message.payload if isinstance(message.payload, int) else 0
        return hops, Message("flood", hops + 1)

    def finished(self, state: Any) -> bool:
        return state is not None

    def params(self) -> dict:
        return {}


class HaltingFlooding(Flooding):
    """Flooding whose nodes halt once they have heard the flood: later copies are dropped.

    A halted node drops what it receives (traced as a drop with reason ``"halted"``,
    not counted toward the budget), as AMP-ACT and AMP-Iter nodes do (Section 5.2).
    """

    name = "flooding-halt"

    def halted(self, state: Any) -> bool:
        return state is not None
