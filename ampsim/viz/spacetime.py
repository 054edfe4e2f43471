"""The space-time diagram of a run: one lane per node against simulation time (Section 3, Figures 1-2).

Each delivered copy is one arrow from ``(t_send, lane(src))`` to ``(t_deliver, lane(dst))``,
coloured by its kind (or by ``color_by(record)``). Around the arrows:

* initial messages (``src == -1``) are a triangle entering the receiver's lane at ``t_deliver``;
* a copy lost at send time ends half-way to its receiver, at an ``x``; a copy dropped
  by a halted receiver reaches the lane and ends at an ``x`` there; drop lines are dotted;
* copies still in flight when the trace ends (the last end record's ``in_flight``) are
  dashed lines to their scheduled arrival;
* a vertical line marks where the trace ends (its last ``run()`` call; ``step()`` is a
  one-delivery ``run()``), labelled in the legend with the reason.

All arrows are drawn by one ``quiver`` call, all drop markers by one ``scatter`` and the
line families by one ``LineCollection`` each, so a few thousand messages draw quickly.
Artists carry gids (``lanes``, ``messages``, ``initial``, ``drops``, ``drop_lines``,
``in_flight``, ``ends``) for tests and for styling afterwards.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from ..trace.causality import TraceLike
from ..trace.records import MessageRecord
from .common import lanes as view_lanes, marks, prepare, title as view_title

__all__ = ["plot_spacetime", "category_colors"]

DROP_COLOR = "#d62728"
END_COLOR = "#555555"


def category_colors(categories: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per category, in the given order (tab10, then tab20, then evenly spaced turbo)."""
    k = len(categories)
    if k <= 10:
        cmap = plt.get_cmap("tab10")
        colors = [cmap(i) for i in range(k)]
    elif k <= 20:
        cmap = plt.get_cmap("tab20")
        colors = [cmap(i) for i in range(k)]
    else:
        cmap = plt.get_cmap("turbo")
        colors = [cmap(x) for x in np.linspace(0.05, 0.95, k)]
    return dict(zip(categories, colors))


def _color_key(color_by: Union[str, Callable[[MessageRecord], str]]) -> Callable[[MessageRecord], str]:
    if callable(color_by):
        return lambda r: str(color_by(r))
    if color_by == "kind":
        return lambda r: r.kind
    raise ValueError(f"color_by must be 'kind' or a function record -> str; got {color_by!r}")


def plot_spacetime(
    trace: TraceLike,
    ax: Optional[Axes] = None,
    color_by: Union[str, Callable[[MessageRecord], str]] = "kind",
    nodes: Optional[Sequence[int]] = None,
    show_drops: bool = True,
    show_in_flight: bool = True,
    title: Optional[str] = None,
) -> Axes:
    """Draw the space-time diagram of ``trace`` (a Trace, a ListTracer or a list of records).

    ``nodes`` picks the lanes and their order, top to bottom (default: all, 0 at the top);
    messages are drawn only when both ends are among them. Returns the Axes (never shows).
    """
    trace = prepare(trace)  # a trace whose records contradict its header is refused, as for replay
    key = _color_key(color_by)
    lanes = view_lanes(trace, nodes)
    y = {v: i for i, v in enumerate(lanes)}
    if ax is None:
        height = float(np.clip(0.3 * len(lanes) + 1.6, 2.8, 14.0))
        _, ax = plt.subplots(figsize=(11.0, height))

    initial, delivered, drops, flying = marks(trace, y)

    categories: list[str] = []
    seen = set()
    for r in delivered + drops + flying:
        c = key(r)
        if c not in seen:
            seen.add(c)
            categories.append(c)
    categories.sort()
    colors = category_colors(categories)

    times = [0.0] + [r.t_deliver for r in trace.records if isinstance(r, MessageRecord)] + [e.time for e in trace.ends]
    t_max = max(times)
    span = t_max if t_max > 0 else 1.0
    ax.hlines(np.arange(len(lanes)), 0.0, t_max, colors="#cccccc", linewidth=0.8, zorder=1).set_gid("lanes")

    x0 = np.array([r.t_send for r in delivered], dtype=float)
    y0 = np.array([y[r.src] for r in delivered], dtype=float)
    x1 = np.array([r.t_deliver for r in delivered], dtype=float)
    y1 = np.array([y[r.dst] for r in delivered], dtype=float)
    arrow_colors = [colors[key(r)] for r in delivered] or "k"
    q = ax.quiver(
        x0, y0, x1 - x0, y1 - y0, color=arrow_colors, angles="xy", scale_units="xy", scale=1.0,
        width=0.0018, headwidth=5.0, headlength=7.0, headaxislength=6.0, minlength=0.0, zorder=3,
    )
    q.set_gid("messages")

    handles = [Line2D([], [], color=colors[c], marker=">", markersize=6, linewidth=1.5, label=c) for c in categories]
    if initial:
        s = ax.scatter([r.t_deliver for r in initial], [y[r.dst] for r in initial], marker=">", s=60,
                       facecolor="white", edgecolor="black", linewidth=1.2, zorder=4)
        s.set_gid("initial")
        handles.append(Line2D([], [], linestyle="none", marker=">", markerfacecolor="white",
                              markeredgecolor="black", markersize=7, label="initial message"))
    if show_drops and drops:
        segments, points = [], []
        for r in drops:
            ys, yd = y[r.src], y[r.dst]
            if r.reason == "lost":
                end = (0.5 * (r.t_send + r.t_deliver), 0.5 * (ys + yd))
            else:
                end = (r.t_deliver, yd)
            segments.append([(r.t_send, ys), end])
            points.append(end)
        lc = LineCollection(segments, colors=[colors[key(r)] for r in drops], linestyles="dotted",
                            linewidths=1.2, zorder=2)
        lc.set_gid("drop_lines")
        ax.add_collection(lc)
        pts = np.array(points, dtype=float)
        ax.scatter(pts[:, 0], pts[:, 1], marker="x", s=36, color=DROP_COLOR, linewidths=1.5, zorder=4).set_gid("drops")
        handles.append(Line2D([], [], linestyle=":", color="#777777", marker="x", markeredgecolor=DROP_COLOR,
                              label="dropped"))
    if show_in_flight and flying:
        lc = LineCollection([[(r.t_send, y[r.src]), (r.t_deliver, y[r.dst])] for r in flying],
                            colors=[colors[key(r)] for r in flying], linestyles="dashed", linewidths=1.0, zorder=2)
        lc.set_gid("in_flight")
        ax.add_collection(lc)
        handles.append(Line2D([], [], linestyle="--", color="#777777", label="in flight at end"))
    if trace.ends:
        ends = ax.vlines([trace.ends[-1].time], -0.5, len(lanes) - 0.5, colors=END_COLOR,
                         linestyles="dotted", linewidth=1.0, zorder=1)
        ends.set_gid("ends")
        handles.append(Line2D([], [], linestyle=":", color=END_COLOR, label=f"end: {trace.ends[-1].reason}"))

    pad = 0.02 * span
    ax.set_xlim(-pad, t_max + pad)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    step = max(1, int(np.ceil(len(lanes) / 60)))
    ax.set_yticks(np.arange(0, len(lanes), step))
    ax.set_yticklabels([str(lanes[i]) for i in range(0, len(lanes), step)],
                       fontsize=9 if len(lanes) <= 30 else 7)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("node")
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9,
                  title="kind" if color_by == "kind" else None)
    title = title if title is not None else view_title(trace.header, trace.ends)
    if title:
        ax.set_title(title, fontsize=10)
    return ax
