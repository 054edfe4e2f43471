"""PyTorch Geometric in and out: ``Data`` / ``Batch`` as simulation input, ``from_pyg`` / ``to_pyg``.

AMP runs on simple undirected graphs (Section 3). A PyG ``Data`` gives one, read with
PyG's own meaning of its ``edge_index`` and refused exactly where networkx input is:

* **directed**: PyG calls a ``Data`` undirected when every edge ``(u, v)`` of ``edge_index``
  also appears as ``(v, u)`` (``data.is_undirected()``). A ``Data`` that is not is refused with
  a :class:`~ampsim.engine.errors.GraphError`, as a ``networkx.DiGraph`` is; the explicit way to
  accept it is the user's: ``torch_geometric.utils.to_undirected(edge_index)`` (``G.to_undirected()``
  for networkx). A bare ``edge_index`` (a list, array or tensor, not a ``Data``) carries no such
  claim: :func:`ampsim.graphs.as_graph` reads it as a list of undirected edges, one direction enough;
* **duplicate edges**: a pair ``(u, v)`` listed twice is a multigraph, refused as a
  ``networkx.MultiGraph`` is (``torch_geometric.utils.coalesce`` removes repeats); self-loops too;
* **attributes**: ``x`` becomes the node features (its rows must match ``num_nodes``); ``y`` is
  read by :func:`from_pyg` only; every other attribute (``edge_attr``, ``edge_weight``, ``pos``,
  ...) is ignored, as networkx edge and node attributes other than ``x`` are: AMP's channels
  carry no weights.

So ``Simulation(data, rule, ...)`` works as it is; a ``Batch``
is the disjoint union of its graphs (one simulation over all; start one node per
graph with ``start=first_nodes(batch)``), and :func:`simulations` gives one
:class:`~ampsim.engine.simulation.Simulation` per graph. For the batched executor,
``from_pyg(batch)`` is the list of :class:`~ampsim.data.graphdata.GraphData` that
``BatchedExecutor.execute_many`` takes.

``to_pyg`` goes the other way for a :class:`~ampsim.graphs.Graph`, a ``GraphData``,
a data set of them (``ampsim.data.tu.load_tu``) or a list. Nothing here imports
``torch_geometric`` until it is needed; it is the optional extra ``ampsim[pyg]``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from .graphs import register_reader

__all__ = ["is_pyg", "is_batch", "graph_from_pyg", "features_from_pyg", "from_pyg", "to_pyg", "simulations",
           "first_nodes"]


def _torch_geometric():
    try:
        import torch_geometric  # noqa: F401
        from torch_geometric.data import Batch, Data
    except ModuleNotFoundError:
        raise ModuleNotFoundError("this needs PyTorch Geometric: pip install 'ampsim[pyg]'") from None
    return Data, Batch


def is_pyg(obj: Any) -> bool:
    """Whether ``obj`` is a PyG ``Data`` or ``Batch`` (checked by type name: no import of PyG)."""
    return any(c.__module__.startswith("torch_geometric.") and c.__name__ in ("Data", "Batch", "HeteroData")
               for c in type(obj).__mro__)


def is_batch(obj: Any) -> bool:
    """Whether ``obj`` is a PyG ``Batch`` (several graphs)."""
    return is_pyg(obj) and hasattr(obj, "to_data_list") and getattr(obj, "ptr", None) is not None


def _from_torch_geometric(obj: Any) -> bool:
    """Whether any class of ``obj`` comes from ``torch_geometric`` (the input :func:`graph_from_pyg` reads)."""
    return any(c.__module__.startswith("torch_geometric.") for c in type(obj).__mro__)


def graph_from_pyg(data: Any, name: str = ""):
    """The :class:`~ampsim.graphs.Graph` of a PyG ``Data`` (or the disjoint union of a ``Batch``)."""
    from .engine.errors import GraphError
    from .graphs import as_graph

    if type(data).__name__ == "HeteroData":
        raise GraphError("HeteroData is not supported: AMP runs on one simple undirected graph (use data.to_homogeneous())")
    edge_index = getattr(data, "edge_index", None)
    n = data.num_nodes
    if n is None:
        raise GraphError("the PyG Data has no num_nodes (and no x to count nodes from)")
    if edge_index is None:
        if n <= 0:
            raise GraphError("the graph is empty: AMP needs at least one node")
        return as_graph([[], []], num_nodes=int(n), name=name)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise GraphError(f"the PyG Data's edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    _undirected_simple(edge_index, int(n))
    return as_graph(edge_index, num_nodes=int(n), name=name)


def _undirected_simple(edge_index: Any, n: int) -> None:
    """Refuse, in this order, ids that are not nodes, self-loops, a repeated pair (a multigraph) and a pair
    without its reverse (a directed graph), as for networkx."""
    from .engine.errors import GraphError
    from .graphs import check_edge_index_ids

    check_edge_index_ids(edge_index)  # integer ids >= 0 first: the messages below name pairs of node ids
    pairs = list(zip(*edge_index.tolist()))
    for u, v in pairs:
        if u >= n or v >= n:
            raise GraphError(f"edge ({u}, {v}) refers to a node outside 0..{n - 1}")
        if u == v:
            raise GraphError(f"self-loop at node {u}: AMP graphs are simple (a node does not message itself)")
    seen: set = set()
    for p in pairs:
        if p in seen:
            raise GraphError(f"the PyG Data's edge_index lists edge {p} twice: AMP graphs have at most one edge per pair, "
                             "as a networkx MultiGraph is refused (remove repeats: torch_geometric.utils.coalesce)")
        seen.add(p)
    one_way = next(((u, v) for u, v in pairs if (v, u) not in seen), None)
    if one_way is not None:
        u, v = one_way
        raise GraphError(f"the PyG Data is directed: edge ({u}, {v}) has no reverse ({v}, {u}); AMP channels are "
                         "undirected and a directed graph is refused, as a networkx DiGraph is (make it undirected: "
                         "torch_geometric.utils.to_undirected(edge_index))")


def features_from_pyg(data: Any) -> Any:
    """The node features ``data.x`` (or ``None``)."""
    return getattr(data, "x", None)


def first_nodes(batch: Any) -> list[int]:
    """The first node of each graph of a ``Batch`` (``batch.ptr[:-1]``): a start set, one per graph."""
    return [int(v) for v in batch.ptr[:-1].tolist()]


def simulations(batch: Any, rule: Any, **kwargs: Any) -> list:
    """One :class:`Simulation` per graph of a ``Batch`` (or a list of ``Data``), with the same arguments."""
    from .engine.simulation import Simulation

    graphs = batch.to_data_list() if is_batch(batch) else list(batch)
    return [Simulation(g, rule, **kwargs) for g in graphs]


def _graphdata(data: Any, level: Optional[str]):
    import torch

    from .data.graphdata import GraphData

    graph = graph_from_pyg(data)
    n = graph.num_nodes
    src = [u for u in range(n) for v in graph.neighbors[u]]
    dst = [v for u in range(n) for v in graph.neighbors[u]]
    edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    x = getattr(data, "x", None)
    x = torch.ones(n, 1) if x is None else x.float()
    if x.dim() == 1:
        x = x.unsqueeze(1)
    y = getattr(data, "y", None)
    if level is None:
        level = "node" if y is not None and y.dim() >= 1 and y.shape[0] == n and n > 1 else "graph"
    y = torch.zeros(1, dtype=torch.long) if y is None else y.reshape(-1).long() if level == "graph" else y.long()
    return GraphData(edge_index, x, y, n, level=level)


def from_pyg(data: Any, level: Optional[str] = None):
    """PyG → ampsim: a ``Data`` gives a :class:`GraphData`, a ``Batch`` (or a list/dataset) a list of them.

    Edges are symmetrised and sorted (the engine's numbering), ``x`` is kept (a column of ones
    when absent), ``y`` too; ``level`` is ``"graph"`` or ``"node"`` (default: node-level when ``y``
    has one entry per node).
    """
    if is_batch(data):
        return [_graphdata(d, level) for d in data.to_data_list()]
    if is_pyg(data):
        return _graphdata(data, level)
    return [_graphdata(d, level) for d in data]


def to_pyg(obj: Any) -> Union[Any, list]:
    """ampsim → PyG ``Data``: a :class:`Graph`, a :class:`GraphData`, or a sequence of them (a list of ``Data``).

    ``Data(edge_index, num_nodes, x, y)``; edges in both directions, sorted; for a graph-level
    ``GraphData`` ``y`` has one entry (as PyG's ``TUDataset``).
    """
    import torch

    from .data.graphdata import GraphData
    from .graphs import Graph

    Data, _ = _torch_geometric()
    if isinstance(obj, Graph):
        src = [u for u in range(obj.num_nodes) for v in obj.neighbors[u]]
        dst = [v for u in range(obj.num_nodes) for v in obj.neighbors[u]]
        return Data(edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1), num_nodes=obj.num_nodes)
    if isinstance(obj, GraphData):
        return Data(edge_index=obj.edge_index.clone(), x=obj.x.clone(), y=obj.y.clone(), num_nodes=obj.num_nodes)
    if isinstance(obj, (str, bytes)) or not hasattr(obj, "__iter__"):
        raise TypeError(f"to_pyg takes a Graph, a GraphData or a sequence of them; got {type(obj).__name__}")
    return [to_pyg(g) for g in obj]


def tu_parity(ours: Sequence[Any], theirs: Sequence[Any]) -> dict:
    """Compare two data sets graph by graph as unordered multisets of (n, edge set, label class size).

    Returns counts that a test can assert on: graphs, nodes, undirected edges, label histogram.
    """
    def summary(ds):
        nodes = edges = 0
        labels: dict[int, int] = {}
        for g in ds:
            nodes += int(g.num_nodes)
            edges += int(g.edge_index.shape[1]) // 2
            y = int(g.y.reshape(-1)[0])
            labels[y] = labels.get(y, 0) + 1
        return {"graphs": len(ds), "nodes": nodes, "edges": edges, "labels": sorted(labels.values())}

    return {"ours": summary(ours), "theirs": summary(theirs)}


register_reader(_from_torch_geometric, graph_from_pyg)  # as_graph (and so Simulation) reads a PyG Data / Batch
