"""The one protocol every node behaviour implements: hand-written rules and learned cells alike.

AMP (Section 3): a node acts only at start-up or when one message is delivered to
it. It then updates its state and emits at most one message, broadcast to all
neighbours. A ``NodeRule`` is exactly that::

    start(node)                    -> (state, Message | None)   # every node, at t = 0
    receive(node, state, message)  -> (state, Message | None)   # one delivery

``node`` is a :class:`NodeView` (features; degree and id only if assumed).
Optional hooks, looked up once per simulation (never per message):

* ``halted(state) -> bool``: a halted node drops what it receives (AMP-ACT/Iter);
  the drop is traced with reason ``"halted"`` and does not count toward the budget.
* ``finished(state) -> bool``: when the run goes quiet, nodes not finished are
  named as stuck and the run ends ``"stalled"`` instead of ``"quiescent"``.
* ``summarize(payload) -> str`` and ``summarize_state(state) -> str`` for traces.

``assumes`` declares what the rule relies on; the simulation refuses to run a rule
whose assumptions it does not meet (STYLE.md semantics 7):

==================  ======================================================
``random_delays``   the delay model is random (Lemma 4.2 needs it)
``fifo``            channels are FIFO (``fifo=True`` or constant delays)
``overtaking``      channels are *not* FIFO: a later copy on an edge may arrive first (``fifo=False``)
``degree``          ``node.degree`` is given (Table 1 assumes it)
``sender``          ``message.sender`` is filled in
``ids``             ``node.id`` is given (nodes are not anonymous)
==================  ======================================================
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

from .messages import Message, NodeView

__all__ = ["NodeRule", "ASSUMPTIONS", "rule_spec"]

ASSUMPTIONS = frozenset({"random_delays", "fifo", "overtaking", "degree", "sender", "ids"})


@runtime_checkable
class NodeRule(Protocol):
    """A node's behaviour in AMP: ``start`` once, ``receive`` per delivered message."""

    name: str
    assumes: frozenset

    def start(self, node: NodeView) -> tuple[Any, Optional[Message]]: ...

    def receive(self, node: NodeView, state: Any, message: Message) -> tuple[Any, Optional[Message]]: ...


def rule_spec(rule: NodeRule) -> dict:
    """``{"name": ..., "params": {...}}`` for trace headers; rules may define ``params()``."""
    params = rule.params() if hasattr(rule, "params") else {}
    return {"name": getattr(rule, "name", type(rule).__name__), "params": params}
