"""Pictures of a trace (matplotlib): space-time diagram, graph state at a time, animation.

Every function takes a :class:`~ampsim.trace.io.Trace`, a ``ListTracer`` or a list of
records, returns a matplotlib object (Axes or FuncAnimation) and never calls ``plt.show()``.
The interactive diagram (plotly) is :func:`plot_interactive` / :func:`write_html`,
loaded on first use from :mod:`ampsim.viz.interactive`.
"""
from .graphstate import GraphState, animate, delivery_states, graph_state, plot_graph_state
from .spacetime import category_colors, plot_spacetime



def __getattr__(name: str):
    if name in ("plot_interactive", "write_html"):
        from . import interactive

        return getattr(interactive, name)
    raise AttributeError(f"module 'ampsim.viz' has no attribute {name!r}")


__all__ = [
    "GraphState",
    "animate",
    "category_colors",
    "delivery_states",
    "graph_state",
    "plot_graph_state",
    "plot_interactive",
    "plot_spacetime",
    "write_html",
]
