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
* ``name`` (default: the class name) and ``assumes`` (default: nothing assumed).

:func:`check_rule` is the one check of this contract at the public boundary (``Simulation``,
``replay``): a missing ``start``/``receive``, a hook that is not callable, or an ``assumes``
that is not a collection of names is a :class:`~ampsim.engine.errors.RuleError` naming the
rule's class and the member; :func:`check_output` checks what ``start``/``receive`` return.

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

from .errors import RuleError
from .messages import Message, NodeView

__all__ = ["NodeRule", "ASSUMPTIONS", "rule_spec", "rule_name", "check_rule", "check_output"]

ASSUMPTIONS = frozenset({"random_delays", "fifo", "overtaking", "degree", "sender", "ids"})


@runtime_checkable
class NodeRule(Protocol):
    """A node's behaviour in AMP: ``start`` once, ``receive`` per delivered message."""

    name: str
    assumes: frozenset

    def start(self, node: NodeView) -> tuple[Any, Optional[Message]]: ...

    def receive(self, node: NodeView, state: Any, message: Message) -> tuple[Any, Optional[Message]]: ...


def rule_name(rule: Any) -> str:
    """The rule's ``name``, or its class name when it has none."""
    name = getattr(rule, "name", None)
    return name if isinstance(name, str) else type(rule).__name__


def rule_spec(rule: NodeRule) -> dict:
    """``{"name": ..., "params": {...}}`` for trace headers; rules may define ``params()``."""
    params = rule.params() if hasattr(rule, "params") else {}
    if not isinstance(params, dict):
        raise RuleError(f"{type(rule).__name__}.params() must return a dict, got {type(params).__name__}")
    return {"name": rule_name(rule), "params": params}


_HOOKS = ("halted", "finished", "summarize", "summarize_state", "params")


def check_rule(rule: Any, what: str = "rule") -> frozenset:
    """Check ``rule`` against the :class:`NodeRule` contract; return its assumptions (a frozenset of names).

    ``start`` and ``receive`` are required; the optional hooks, when present, must be callable.
    """
    from ..validate import show

    cls = type(rule).__name__
    if rule is None or isinstance(rule, type) or not (hasattr(rule, "start") or hasattr(rule, "receive")):
        raise RuleError(f"{what} must implement NodeRule (start, receive; optionally name, assumes), got {show(rule)}")
    for member in ("start", "receive"):
        if not callable(getattr(rule, member, None)):
            missing = "has no" if not hasattr(rule, member) else "has a non-callable"
            raise RuleError(f"{what} {cls} {missing} method {member!r}: a NodeRule needs start(node) and "
                            "receive(node, state, message)")
    for member in _HOOKS:
        hook = getattr(rule, member, None)
        if hook is not None and not callable(hook):
            raise RuleError(f"{what} {cls}.{member} must be a method (or absent), got {type(hook).__name__}")
    assumes = getattr(rule, "assumes", frozenset())
    if isinstance(assumes, (str, bytes)) or not hasattr(assumes, "__iter__") or not all(isinstance(a, str) for a in assumes):
        raise RuleError(f"{what} {cls}.assumes must be a set of names (e.g. frozenset({{'fifo'}})), got {assumes!r:.60}")
    return frozenset(assumes)


def check_output(rule: Any, method: str, result: Any) -> tuple:
    """``result`` of ``rule.start`` / ``rule.receive`` if it is a pair ``(state, Message or None)`` (a tuple, or a
    list of two: ``receive``'s result is unpacked as it is, so ``start``'s is read the same way); else :class:`RuleError`."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = f"a {type(result).__name__} of {len(result)}" if isinstance(result, (tuple, list)) else type(result).__name__
        raise RuleError(f"{type(rule).__name__}.{method} must return a pair (state, Message or None), got {got}")
    out = result[1]
    if out is not None and not isinstance(out, Message):
        raise RuleError(f"{type(rule).__name__}.{method} must return (state, Message or None); its message is a "
                        f"{type(out).__name__}: {out!r:.60} (wrap it: Message(kind, payload))")
    return result
