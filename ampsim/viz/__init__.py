"""Pictures of a trace (matplotlib only): space-time diagram, graph state at a time, animation.

Every function takes a :class:`~ampsim.trace.io.Trace`, a ``ListTracer`` or a list of
records, returns a matplotlib object (Axes or FuncAnimation) and never calls ``plt.show()``.
"""
from .graphstate import GraphState, animate, delivery_states, graph_state, plot_graph_state
from .spacetime import category_colors, plot_spacetime

__all__ = [
    "GraphState",
    "animate",
    "category_colors",
    "delivery_states",
    "graph_state",
    "plot_graph_state",
    "plot_spacetime",
]
