"""What :class:`~ampsim.engine.simulation.Simulation` reads from its arguments besides the graph:
start nodes, node features carried by the graph (networkx attribute ``x``, ``GraphData.x``), and
features as exact JSON for the trace header. Every refusal is an :class:`~ampsim.engine.errors.ArgumentError`
or :class:`~ampsim.engine.errors.FeatureError` naming the argument."""
from __future__ import annotations

from typing import Any, Optional

from .. import validate as V
from .errors import FeatureError

__all__ = ["start_node", "container_features", "features_json"]


def start_node(v: Any, n: int) -> int:
    if not V._is_int(v) or not 0 <= int(v) < n:
        raise V.ArgumentError(f"start node {V.show(v)} is not in the graph: start nodes are indices 0..{n - 1}")
    return int(v)


def container_features(graph: Any) -> tuple[Any, Optional[list]]:
    """Features carried by the graph itself: networkx node attribute ``x`` or ``GraphData.x``.

    Returns ``(features, labels)``; attributes on only some nodes are an error, never dropped.
    """
    if hasattr(graph, "nodes") and hasattr(graph, "is_directed"):
        if not len(graph):
            return None, None
        from ..graphs import _node_order

        order = _node_order(graph)
        have = [v for v in order if graph.nodes[v].get("x") is not None]
        if not have:
            return None, None
        if len(have) != len(order):
            missing = [v for v in order if graph.nodes[v].get("x") is None]
            raise FeatureError(
                f"node attribute 'x' (features) is set on only some nodes: missing on {len(missing)} node(s) "
                f"{missing[:10]}; give every node features or none"
            )
        return [graph.nodes[v]["x"] for v in order], order
    if hasattr(graph, "edge_index") and hasattr(graph, "x") and hasattr(graph, "num_nodes"):  # GraphData
        return graph.x, None
    return None, None


def features_json(rows: list) -> Optional[list]:
    """Per-node features as exact JSON (numbers, lists, strings, tensors), or None when not representable."""
    out = []
    for row in rows:
        if hasattr(row, "detach"):
            row = row.detach().cpu().tolist()
        elif hasattr(row, "tolist"):
            row = row.tolist()
        if not _jsonable(row):
            return None
        out.append(row)
    return out if any(r is not None for r in out) else None


def _jsonable(x: Any) -> bool:
    if x is None or isinstance(x, (bool, int, float, str)):
        return True
    if isinstance(x, (list, tuple)):
        return all(_jsonable(v) for v in x)
    return False
