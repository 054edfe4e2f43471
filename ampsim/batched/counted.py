"""Planning runs with message loss or a counted emission rule, delivery by delivery (Section 3).

The level planner (:mod:`ampsim.batched.planner`) assumes that every delivery emits and no copy
is lost. Two things keep a schedule independent of learned values and still break that:

* message loss (the engine's ``loss``, :mod:`ampsim.batched.events`): which copies are lost
  depends on the run's seed only;
* a *counted* emission rule (:class:`~ampsim.cells.protocol.CountRule`, e.g. the aggregating
  cells' :class:`~ampsim.cells.aggregate.WaveCount`): whether a delivery emits depends on what
  the node has counted (messages per tag, its degree), never on a learned value.

:func:`plan_events` replays the engine's event queue with both: each delivery's message tag
is the tag its cause emitted (0 for a start message), the rule says whether the node emits and
with which tag, and lost copies are never delivered. The result has the same columns as the
level planner's (``cause``, ``prev``, ``level``), so it compiles to the same level programs
and is cached the same way (the plan key holds the loss rate and the rule's key). A run that
goes quiet with nodes whose rule is not finished ends ``"stalled"``, as in the engine.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..engine.delays import DelayModel
from ..graphs import Graph
from .events import EventQueue

__all__ = ["plan_events"]


def plan_events(graph: Graph, model: DelayModel, seed: int, fifo: bool, ties: str, pairs, slot_base: int,
                budget: int, loss: float = 0.0, rule: Optional[Any] = None) -> tuple[dict, int, int, str]:
    """One run through the event queue with ``loss`` and the count ``rule`` (``None``: always emit).

    Returns ``(columns, deliveries, copies sent, reason)``; columns as the level planner's, plus with
    a ``rule`` the column ``tag``: the tag of each delivered message (0 for a start message).
    """
    queue = EventQueue(graph.neighbors, model, seed, fifo, ties, loss)
    for j, (v, _) in enumerate(pairs):
        queue.start(v, slot_base + j)
    node, mids, causes, prevs, slots, srcs, times, levels, got = ([] for _ in range(9))
    last: dict[int, int] = {}
    counters: dict[int, Any] = {}
    tags: list[int] = []
    nbrs = graph.neighbors
    done = 0
    pop, broadcast = queue.pop, queue.broadcast
    while done < budget:
        item = pop()
        if item is None:
            break
        t, mid, v, cause, src, slot = item
        p = last.get(v, -1)
        lc = levels[cause] if cause >= 0 else -1
        lp = levels[p] if p >= 0 else -1
        node.append(v)
        mids.append(mid)
        causes.append(cause)
        prevs.append(p)
        slots.append(slot)
        srcs.append(src)
        times.append(t)
        levels.append(1 + (lc if lc > lp else lp))
        last[v] = done
        done += 1
        if rule is None:
            broadcast(t, v, done - 1)
            continue
        state = counters.get(v)
        if state is None:
            state = counters[v] = rule.start(len(nbrs[v]))
        tag = tags[cause] if cause >= 0 else 0
        got.append(tag)
        _, out = rule.deliver(state, tag)
        tags.append(out)
        if out:
            broadcast(t, v, done - 1)
    i64 = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    cols = {"node": i64(node), "msg_id": i64(mids), "cause": i64(causes), "prev": i64(prevs), "slot": i64(slots),
            "src": i64(srcs), "time": np.asarray(times, dtype=np.float64), "level": i64(levels)}
    if rule is not None:
        cols["tag"] = i64(got)
    if done >= budget:
        reason = "message_budget"
    elif rule is not None and any(not rule.finished(counters[v]) if v in counters else
                                  not rule.finished(rule.start(len(nbrs[v]))) for v in range(graph.num_nodes)):
        reason = "stalled"
    else:
        reason = "quiescent"
    return cols, done, queue.sent, reason
