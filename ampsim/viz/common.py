"""What every space-time view (matplotlib :mod:`~ampsim.viz.spacetime`, plotly :mod:`~ampsim.viz.interactive`)
shares: the trace it accepts, its lanes and its title.

Rule: a view draws only a trace that loads for replay -- :func:`prepare` runs
:func:`ampsim.trace.io.validate_trace`, so a trace whose records contradict its header
(another graph, a tampered delay, a missing record) is refused by every view alike.
"""
from __future__ import annotations

from typing import Optional, Sequence

from ..trace.causality import TraceLike, as_trace, num_nodes
from ..trace.io import Trace, validate_trace
from ..trace.records import DELIVER, DROP, SEND, MessageRecord

__all__ = ["prepare", "lanes", "title"]


def prepare(trace: TraceLike) -> Trace:
    """``trace`` (a Trace, ListTracer, records or a trace file) as a validated :class:`Trace`."""
    trace = as_trace(trace)
    validate_trace(trace)
    return trace


def lanes(trace: Trace, nodes: Optional[Sequence[int]]) -> list[int]:
    """The nodes drawn, top to bottom: ``nodes`` (distinct, each in the trace) or all of them, 0 at the top."""
    n = num_nodes(trace)
    chosen = list(range(n)) if nodes is None else [int(v) for v in nodes]
    if not chosen:
        raise ValueError("nothing to draw: the trace has no nodes (or nodes=[] was given)")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"nodes must not repeat a node: {list(nodes)}")
    bad = [v for v in chosen if not 0 <= v < n]
    if bad:
        raise ValueError(f"nodes {bad} are not in the trace (nodes 0..{n - 1})")
    return chosen


def title(header: dict, ends: Sequence) -> Optional[str]:
    """``<rule> on <graph> (n=..), <delay> delays[, FIFO], seed s: <end reason> at t=..``; None without a header."""
    if not header:
        return None
    graph = header.get("graph", {})
    text = (f"{header.get('rule', {}).get('name', '?')} on {graph.get('name') or 'graph'} (n={graph.get('n', '?')}), "
            f"{header.get('delay', {}).get('name', '?')} delays{', FIFO' if header.get('fifo') else ''}, "
            f"seed {header.get('seed')}")
    if ends:
        text += f": {ends[-1].reason} at t={ends[-1].time:.4g}"
    return text


def marks(trace: Trace, lanes_at: dict) -> tuple[list, list, list, list]:
    """The message records a diagram draws, among the lanes ``lanes_at`` (node -> lane): start deliveries
    (``src < 0``), deliveries, drops, and the sends still in flight at the end (both ends on a lane)."""
    messages = [r for r in trace.records if isinstance(r, MessageRecord)]
    delivered = [r for r in messages if r.event == DELIVER and r.src >= 0 and r.src in lanes_at and r.dst in lanes_at]
    initial = [r for r in messages if r.event == DELIVER and r.src < 0 and r.dst in lanes_at]
    drops = [r for r in messages if r.event == DROP and r.src >= 0 and r.src in lanes_at and r.dst in lanes_at]
    sends = {r.msg_id: r for r in messages if r.event == SEND}
    pending = trace.ends[-1].in_flight if trace.ends else ()
    flying = [sends[m] for m in pending if m in sends and sends[m].src in lanes_at and sends[m].dst in lanes_at]
    return initial, delivered, drops, flying
