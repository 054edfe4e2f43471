"""The graph at one moment: node states and the copies in flight (Section 3), and an animation.

The moment is a prefix of the trace's records (they are in event order). At time
``t`` the prefix holds every record whose event happened at or before ``t`` (a send
at ``t_send``, a delivery at ``t_deliver``, a loss at ``t_send``, a halted drop at
``t_deliver``, a state at ``t``). In that prefix

* a node's state is its last :class:`StateRecord` (traces store state *summaries*, strings);
* a copy is in flight iff it was sent and is neither delivered nor dropped yet; it is
  drawn on its edge at fraction ``(t - t_send) / (t_deliver - t_send)`` from the sender.

So a copy delivered exactly at ``t`` is no longer in flight, and one sent exactly at
``t`` sits on its sender (fraction 0). :func:`animate` shows one frame per delivery:
frame ``k`` is the prefix up to and including delivery ``k``, what it sent and what it
changed, at the time of that delivery.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ..graphs import Graph, as_graph
from ..trace.causality import TraceLike, as_trace, num_nodes
from ..trace.io import validate_trace
from ..trace.io import Trace
from ..trace.records import DELIVER, DROP, SEND, MessageRecord, StateRecord
from .spacetime import category_colors

__all__ = ["GraphState", "graph_state", "delivery_states", "plot_graph_state", "animate"]

FRESH_COLOR = "#f0f0f0"
STATE_COLOR = "#9ecae1"
ACTIVE_EDGE = "#d62728"


@dataclass(frozen=True)
class GraphState:
    """What the trace says at time ``t``: ``states[v]`` (summary or None), copies in flight with their fraction."""

    t: float
    index: int
    """How many of the trace's records the prefix holds."""
    states: tuple[Optional[str], ...]
    in_flight: tuple[tuple[MessageRecord, float], ...]
    active: int
    """The node that processed the last delivery in the prefix (-1 if none)."""


def _event_time(r: Any) -> float:
    if isinstance(r, StateRecord):
        return r.t
    if r.event == SEND or (r.event == DROP and r.reason == "lost"):
        return r.t_send
    return r.t_deliver


class _Replay:
    """Applies records one by one: node states, copies pending, the last delivering node."""

    def __init__(self, n: int) -> None:
        self.states: list[Optional[str]] = [None] * n
        self.pending: dict[int, MessageRecord] = {}
        self.active = -1

    def apply(self, r: Any) -> None:
        if isinstance(r, StateRecord):
            self.states[r.node] = r.state
        elif r.event == SEND:
            if r.src >= 0:
                self.pending[r.msg_id] = r
        else:
            self.pending.pop(r.msg_id, None)
            if r.event == DELIVER:
                self.active = r.dst

    def snapshot(self, t: float, index: int) -> GraphState:
        flying = []
        for r in self.pending.values():
            span = r.t_deliver - r.t_send
            frac = 0.0 if span <= 0 else min(1.0, max(0.0, (t - r.t_send) / span))
            flying.append((r, frac))
        return GraphState(t, index, tuple(self.states), tuple(flying), self.active)


def _is_delivery(r: Any) -> bool:
    return isinstance(r, MessageRecord) and r.event == DELIVER


def graph_state(trace: TraceLike, t: float) -> GraphState:
    """The :class:`GraphState` of ``trace`` at time ``t`` (see the module doc); ``t`` past the end is the end."""
    trace = as_trace(trace)
    validate_trace(trace)  # a trace whose records contradict its header is refused, as for replay
    if not np.isfinite(t):
        raise ValueError(f"t must be a finite time, got {t!r}")
    if trace.ends and t > trace.ends[-1].time:
        t = trace.ends[-1].time  # nothing is known after the trace ends
    replay = _Replay(num_nodes(trace))
    cut = 0
    for r in trace.records:
        if _event_time(r) > t:
            break
        replay.apply(r)
        cut += 1
    return replay.snapshot(float(t), cut)


def delivery_states(trace: TraceLike) -> list[GraphState]:
    """One :class:`GraphState` per delivery: right after it, with what it sent, at its time (one pass)."""
    trace = as_trace(trace)
    validate_trace(trace)  # a trace whose records contradict its header is refused, as for replay
    records = trace.records
    replay = _Replay(num_nodes(trace))
    out: list[GraphState] = []
    i = 0
    while i < len(records):
        r = records[i]
        replay.apply(r)
        i += 1
        if _is_delivery(r):
            t = r.t_deliver
            while i < len(records) and not _is_delivery(records[i]) and _event_time(records[i]) <= t:
                replay.apply(records[i])
                i += 1
            out.append(replay.snapshot(t, i))
    return out


def _graph_of(trace: Trace, graph: Any) -> Graph:
    if graph is not None:
        return as_graph(graph)
    spec = trace.header.get("graph") if trace.header else None
    if not spec:
        raise ValueError("this trace has no header with its graph; pass graph=... (a networkx graph or ampsim Graph)")
    return Graph.from_dict(spec)


class _Drawing:
    """The static graph drawn once; node labels, node colours and in-flight dots updated per moment."""

    def __init__(self, trace: Trace, ax: Axes, graph: Graph, layout: Optional[Mapping], state_fmt: Callable[[str], str]):
        self.trace, self.ax, self.graph, self.state_fmt = trace, ax, graph, state_fmt
        n = graph.num_nodes
        g = graph.to_networkx()
        if layout is None:
            pos = nx.spring_layout(g, seed=0) if n > 1 else {0: np.zeros(2)}
        else:
            missing = [v for v in range(n) if v not in layout]
            if missing:
                raise ValueError(f"layout has no position for node(s) {missing[:10]}")
            pos = layout
        self.xy = np.array([np.asarray(pos[v], dtype=float)[:2] for v in range(n)]).reshape(n, 2)
        kinds = sorted({r.kind for r in trace.records if isinstance(r, MessageRecord) and r.src >= 0})
        self.colors = category_colors(kinds)
        size = 700.0 if n <= 20 else max(60.0, 14000.0 / n)
        self.fontsize = 9 if n <= 20 else 7 if n <= 50 else 5

        edges = nx.draw_networkx_edges(g, pos={v: self.xy[v] for v in range(n)}, ax=ax, edge_color="#bbbbbb", width=1.2)
        if edges is not None and hasattr(edges, "set_gid"):
            edges.set_gid("edges")
        self.nodes = ax.scatter(self.xy[:, 0], self.xy[:, 1], s=size, c=[FRESH_COLOR] * n, edgecolors="#333333",
                                linewidths=1.0, zorder=3)
        self.nodes.set_gid("nodes")
        self.labels = [ax.text(x, yy, str(v), ha="center", va="center", fontsize=self.fontsize, zorder=5)
                       for v, (x, yy) in enumerate(self.xy)]
        self.dots = ax.scatter(np.zeros(0), np.zeros(0), s=40, zorder=4, edgecolors="black", linewidths=0.5)
        self.dots.set_gid("in_flight")
        handles = [Line2D([], [], linestyle="none", marker="o", markerfacecolor=self.colors[k], markeredgecolor="black",
                          markersize=7, label=k) for k in kinds]
        if handles:
            ax.legend(handles=handles, title="in flight", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                      fontsize=9)
        ax.set_aspect("equal")
        ax.margins(0.12)
        ax.set_axis_off()

    def update(self, state: GraphState, title: Optional[str] = None) -> None:
        n = self.graph.num_nodes
        faces, edges = [], []
        for v in range(n):
            s = state.states[v] if v < len(state.states) else None
            text = str(v) if s in (None, "") else f"{v}\n{self.state_fmt(s)}"
            self.labels[v].set_text(text)
            faces.append(FRESH_COLOR if s in (None, "") else STATE_COLOR)
            edges.append(ACTIVE_EDGE if v == state.active else "#333333")
        self.nodes.set_facecolor(faces)
        self.nodes.set_edgecolor(edges)
        self.nodes.set_linewidth([2.5 if v == state.active else 1.0 for v in range(n)])
        if state.in_flight:
            pts = np.array([self.xy[r.src] + f * (self.xy[r.dst] - self.xy[r.src]) for r, f in state.in_flight])
            self.dots.set_offsets(pts)
            self.dots.set_facecolor([self.colors[r.kind] for r, _ in state.in_flight])
        else:
            self.dots.set_offsets(np.zeros((0, 2)))
        prefix = f"{title}, " if title else ""
        self.ax.set_title(f"{prefix}t = {state.t:.4g}: {len(state.in_flight)} in flight", fontsize=10)


def _setup(trace: TraceLike, ax: Optional[Axes], graph: Any) -> tuple[Trace, Axes, Graph]:
    trace = as_trace(trace)
    validate_trace(trace)  # a trace whose records contradict its header is refused, as for replay
    g = _graph_of(trace, graph)
    if num_nodes(trace) > g.num_nodes:
        raise ValueError(f"the trace names {num_nodes(trace)} nodes but the graph has {g.num_nodes}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 6.0))
    return trace, ax, g


def plot_graph_state(
    trace: TraceLike,
    t: float,
    ax: Optional[Axes] = None,
    layout: Optional[Mapping[int, Sequence[float]]] = None,
    state_fmt: Callable[[str], str] = str,
    graph: Any = None,
) -> Axes:
    """Draw the graph at time ``t``: each node labelled with ``state_fmt(state)``, copies in flight as dots.

    ``layout`` maps node -> (x, y); default ``networkx.spring_layout(seed=0)`` (deterministic).
    ``graph`` is needed only for traces without a header (a plain list of records).
    Nodes with a (non-empty) state are filled; the node of the last delivery is outlined red.
    """
    trace, ax, g = _setup(trace, ax, graph)
    drawing = _Drawing(trace, ax, g, layout, state_fmt)
    drawing.update(graph_state(trace, t))
    return ax


def animate(
    trace: TraceLike,
    ax: Optional[Axes] = None,
    layout: Optional[Mapping[int, Sequence[float]]] = None,
    state_fmt: Callable[[str], str] = str,
    graph: Any = None,
    interval: int = 500,
    max_frames: Optional[int] = None,
) -> FuncAnimation:
    """A ``FuncAnimation`` with one frame per delivery (the first ``max_frames`` if given).

    Frame ``k`` shows the graph right after delivery ``k`` at its time: the states it
    changed and the copies it sent. Show it in a notebook with
    ``IPython.display.HTML(anim.to_jshtml())`` or save it with ``anim.save(...)``.
    """
    trace, ax, g = _setup(trace, ax, graph)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames!r}")
    frames = delivery_states(trace)[:max_frames]
    if not frames:
        raise ValueError("the trace has no deliveries to animate")
    drawing = _Drawing(trace, ax, g, layout, state_fmt)

    def draw(k: int):
        drawing.update(frames[k], title=f"delivery {k + 1}/{len(frames)}")
        return [drawing.nodes, drawing.dots, *drawing.labels]

    draw(0)
    return FuncAnimation(ax.figure, draw, frames=len(frames), interval=interval, blit=False, repeat=False,
                         cache_frame_data=False)
