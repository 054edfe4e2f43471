"""Echo: every node answers every message with a broadcast, forever (the always-emit schedule).

=================  =====================  ===========================
state              on message m           emission
=================  =====================  ===========================
k (messages seen)  k + 1                  ``Message("echo", k + 1)``
=================  =====================  ===========================

Echo never goes quiet, so only a stop condition ends its run (``max_deliveries``,
the default budget, or ``until``): the run's reason is ``"budget"`` or ``"until"``.
It is the schedule of every always-emit cell of Section 3 (the paper's AMP nodes
broadcast after each message), which is what :mod:`ampsim.batched.planner` plans.
"""
from __future__ import annotations

from typing import Optional

from ..engine.messages import Message, NodeView

__all__ = ["Echo"]


class Echo:
    """Count the messages received; broadcast the count after each one."""

    name = "echo"
    assumes = frozenset()

    def start(self, node: NodeView) -> tuple[int, Optional[Message]]:
        return 0, None

    def receive(self, node: NodeView, state: int, message: Message) -> tuple[int, Optional[Message]]:
        return state + 1, Message("echo", state + 1)

    def params(self) -> dict:
        return {}
