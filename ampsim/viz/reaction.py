"""Space-time diagram coloured by reaction: where and when nodes of a learned AMP model react or ignore.

:func:`plot_reactions` draws one lane per node (ordered by ``lane_key``, e.g. the hop distance
from the origin) against simulation time; every message that reached a node is a dot at
(arrival time, receiver's lane) coloured by how much the node reacted (``value(reaction)``,
default the state change ||h' - h||, log colour scale), a grey ``x`` where a halted node dropped
it, and a hollow ring where the node processed it without emitting. The data comes from
:func:`ampsim.trace.reaction.trace_reactions`.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize

from ..trace.reaction import Reaction

__all__ = ["plot_reactions"]


def plot_reactions(
    reactions: Sequence[Reaction],
    num_nodes: int,
    lane_key: Optional[Sequence[float]] = None,
    value: Callable[[Reaction], float] = lambda r: r.change,
    label: str = "state change ||h' - h||",
    log: bool = True,
    ax: Optional[Axes] = None,
    title: str = "",
) -> Axes:
    """Draw ``reactions`` (see the module docstring) and return the Axes.

    ``lane_key[v]`` orders the lanes (ties by node index); lanes are labelled ``v (key)``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, max(2.5, 0.22 * num_nodes + 1)))
    keys = list(lane_key) if lane_key is not None else list(range(num_nodes))
    order = sorted(range(num_nodes), key=lambda v: (keys[v] is None, keys[v] if keys[v] is not None else 0, v))
    lane = {v: i for i, v in enumerate(order)}
    live = [r for r in reactions if not r.dropped]
    drops = [r for r in reactions if r.dropped]
    vals = np.array([value(r) for r in live], dtype=float)
    if log:
        positive = vals[vals > 0]
        lo = positive.min() if positive.size else 1e-3
        norm = LogNorm(vmin=lo, vmax=max(vals.max() if vals.size else 1.0, lo * 10))
        vals = np.clip(vals, lo, None)
    else:
        norm = Normalize(vmin=vals.min() if vals.size else 0, vmax=vals.max() if vals.size else 1)
    sc = ax.scatter([r.t for r in live], [lane[r.node] for r in live], c=vals, cmap="viridis", norm=norm, s=22,
                    gid="reactions", zorder=3)
    silent = [r for r in live if not r.emitted]
    if silent:
        ax.scatter([r.t for r in silent], [lane[r.node] for r in silent], facecolors="none", edgecolors="k", s=60,
                   linewidths=0.8, gid="silent", zorder=4, label="processed, nothing emitted")
    if drops:
        ax.scatter([r.t for r in drops], [lane[r.node] for r in drops], marker="x", color="0.55", s=18, gid="drops",
                   zorder=2, label="dropped (node halted)")
    ax.set_yticks(range(num_nodes))
    ax.set_yticklabels([f"{v}" + (f" ({keys[v]})" if lane_key is not None else "") for v in order], fontsize=7)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("node (hop distance)" if lane_key is not None else "node")
    plt.colorbar(sc, ax=ax, label=label)
    if silent or drops:
        ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    return ax
