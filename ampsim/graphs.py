"""Graphs in: networkx graphs, PyG-style ``edge_index``, or CLI specs; one stable numbering out.

AMP runs on simple undirected graphs (Section 3). :func:`as_graph` accepts

* a ``networkx.Graph``: nodes are relabelled 0..n-1 in **sorted order of their
  labels** when the labels are mutually comparable, otherwise in ``G.nodes``
  insertion order; ``Graph.labels`` keeps the original label of each index;
* an ``edge_index`` (2 x E, list/array/tensor) plus ``num_nodes``: a bare array says nothing
  about direction, so it is read as a list of undirected edges (one direction per edge enough;
  a pair listed again, in either direction, is the same edge);
* a :class:`Graph` (returned as is);
* a PyTorch Geometric ``Data`` or ``Batch`` (see :mod:`ampsim.pyg`, which registers its reader with
  :func:`register_reader`): read with PyG's meaning, so a directed ``Data`` or one with repeated edges
  is refused as a DiGraph or MultiGraph is.

Directed graphs, multigraphs, self-loops and empty graphs are rejected with a
:class:`~ampsim.engine.errors.GraphError`. Neighbours are stored sorted, so every
broadcast visits receivers in ascending index order.

:func:`parse_graph_spec` reads the CLI's specs: ``path:N``, ``cycle:N``,
``star:K`` (K leaves, centre 0), ``complete:N``, ``grid:RxC``, ``petersen``,
``random-regular:D:N:SEED``, ``gnp:N:P:SEED`` (largest component), ``tree:N:SEED``,
``csl:N:S``, ``rook:N``, ``shrikhande``, ``figure4:P:K`` (:mod:`ampsim.graph_families`),
or a path to an edge-list file (``u v`` per line, ``#`` comments).
"""
from __future__ import annotations

import functools
import hashlib
import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import networkx as nx

from . import validate as V
from .engine.errors import EdgeListError, GraphError, SizeLimitError

__all__ = [
    "Graph",
    "as_graph",
    "parse_graph_spec",
    "GRAPH_SPECS",
    "DEFAULT_MAX_EDGES",
    "SizeEstimate",
    "estimate_spec",
    "check_size",
    "register_reader",
]


@dataclass(frozen=True, eq=False)
class Graph:
    """A simple undirected graph on nodes 0..n-1 with sorted neighbour tuples."""

    num_nodes: int
    neighbors: tuple[tuple[int, ...], ...]
    labels: tuple[Any, ...]
    name: str = ""

    @property
    def edges(self) -> list[tuple[int, int]]:
        """Undirected edges (u, v) with u < v, sorted."""
        return [(u, v) for u in range(self.num_nodes) for v in self.neighbors[u] if u < v]

    @property
    def num_edges(self) -> int:
        return sum(len(nb) for nb in self.neighbors) // 2

    @functools.cached_property
    def degrees(self) -> tuple[int, ...]:
        """Each node's degree (computed once: the graph is immutable)."""
        return tuple(len(nb) for nb in self.neighbors)

    def isolated(self) -> list[int]:
        """Nodes with no neighbour."""
        return [v for v, nb in enumerate(self.neighbors) if not nb]

    def hash(self) -> str:
        """SHA-256 of ``n`` and the sorted edge list: equal for equal relabelled graphs."""
        h = hashlib.sha256(str(self.num_nodes).encode())
        for u, v in self.edges:
            h.update(f";{u},{v}".encode())
        return h.hexdigest()[:16]

    def to_networkx(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(self.num_nodes))
        g.add_edges_from(self.edges)
        return g

    def to_dict(self) -> dict:
        return {"n": self.num_nodes, "edges": [list(e) for e in self.edges], "name": self.name}

    @classmethod
    def from_dict(cls, d: dict, max_edges: Optional[int] = None) -> "Graph":
        """The inverse of :meth:`to_dict`; a malformed dict is a :class:`GraphError`.

        Its ``n`` (a trace header's, say) is checked against ``max_edges`` (default
        :data:`DEFAULT_MAX_EDGES`) before anything is allocated: :class:`SizeLimitError`."""
        if not isinstance(d, dict) or "n" not in d or "edges" not in d:
            raise GraphError(f"a graph dict needs 'n' and 'edges', got {V.show(d)}")
        n = d["n"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise GraphError(f"graph 'n' must be an integer >= 1, got {V.show(n)}")
        edges = d["edges"]
        if not isinstance(edges, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(type(x) is int for x in e) for e in edges
        ):
            raise GraphError("graph 'edges' must be a list of [u, v] integer pairs")
        name = d.get("name", "")
        check_size("the graph dict", SizeEstimate(n, len(edges)), DEFAULT_MAX_EDGES if max_edges is None else max_edges)
        return _from_edges(n, [tuple(e) for e in edges], None, name if isinstance(name, str) else str(name))

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        return f"Graph({name}n={self.num_nodes}, m={self.num_edges})"


def _from_edges(n: int, edges: Iterable[Sequence[int]], labels: Optional[Sequence[Any]], name: str) -> Graph:
    if n <= 0:
        raise GraphError("the graph is empty: AMP needs at least one node")
    nbrs: list[set[int]] = [set() for _ in range(n)]
    for e in edges:
        u, v = int(e[0]), int(e[1])
        if not (0 <= u < n and 0 <= v < n):
            raise GraphError(f"edge ({u}, {v}) refers to a node outside 0..{n - 1}")
        if u == v:
            raise GraphError(f"self-loop at node {u}: AMP graphs are simple (a node does not message itself)")
        nbrs[u].add(v)
        nbrs[v].add(u)
    return Graph(n, tuple(tuple(sorted(s)) for s in nbrs), tuple(labels) if labels is not None else tuple(range(n)), name)


_READERS: list[tuple[Callable[[Any], bool], Callable[[Any, str], "Graph"]]] = []
"""``(accepts, read)`` pairs that :func:`as_graph` tries, in order, before its own input types."""


def register_reader(accepts: Callable[[Any], bool], read: Callable[[Any, str], "Graph"]) -> None:
    """Teach :func:`as_graph` one more input type: ``read(obj, name)`` for every ``obj`` that ``accepts``.

    An adapter registers its reader when it is imported (:mod:`ampsim.pyg` for PyG ``Data`` and
    ``Batch``, imported by the package), so that this module, below the adapters, imports none of them."""
    _READERS.append((accepts, read))


def _node_order(g: nx.Graph) -> list[Any]:
    nodes = list(g.nodes)
    try:
        return sorted(nodes)
    except TypeError:
        return nodes


def as_graph(graph: Any, num_nodes: Optional[int] = None, name: str = "", max_edges: Optional[int] = None) -> Graph:
    """A :class:`Graph` from a networkx graph, an ``edge_index`` (+ ``num_nodes``), or a Graph.

    A ``num_nodes`` (of an ``edge_index``, a ``GraphData`` or a PyG ``Data``) over ``max_edges``
    (default :data:`DEFAULT_MAX_EDGES`) is a :class:`SizeLimitError`, before anything is allocated."""
    if isinstance(graph, Graph):
        return graph
    max_edges = V.optional_positive_int("max_edges", max_edges)
    num_nodes = V.optional_positive_int("num_nodes", num_nodes)
    if not isinstance(name, str):
        raise V.ArgumentError(f"name must be a str, got {V.show(name)}")
    for accepts, read in _READERS:  # adapters' input types: a PyG Data / Batch (ampsim.pyg)
        if accepts(graph):
            return read(graph, name)
    if isinstance(graph, nx.Graph):
        if graph.is_directed():
            raise GraphError("directed graphs are not supported: AMP channels are undirected (use G.to_undirected())")
        if graph.is_multigraph():
            raise GraphError("multigraphs are not supported: AMP graphs have at most one edge per pair (use nx.Graph(G))")
        loops = list(nx.selfloop_edges(graph))
        if loops:
            raise GraphError(f"self-loop at node {loops[0][0]!r}: AMP graphs are simple (a node does not message itself)")
        order = _node_order(graph)
        if num_nodes is not None and num_nodes != len(order):
            raise GraphError(f"num_nodes={num_nodes!r} contradicts the networkx graph's {len(order)} nodes")
        index = {v: i for i, v in enumerate(order)}
        edges = [(index[u], index[v]) for u, v in graph.edges]
        return _from_edges(len(order), edges, order, name or str(graph.name or ""))
    if hasattr(graph, "edge_index") and hasattr(graph, "num_nodes") and not isinstance(graph, (list, tuple)):  # GraphData
        if num_nodes is not None and num_nodes != graph.num_nodes:
            raise GraphError(f"num_nodes={num_nodes} contradicts the GraphData's num_nodes={graph.num_nodes}")
        num_nodes, graph = int(graph.num_nodes), graph.edge_index
    return _from_edge_index(graph, num_nodes, name, max_edges)


def _from_edge_index(edge_index: Any, num_nodes: Optional[int], name: str, max_edges: Optional[int] = None) -> Graph:
    """An ``edge_index`` (2 x E; list, array or tensor of integer node ids) as a :class:`Graph`; ``num_nodes``
    over ``max_edges`` (default :data:`DEFAULT_MAX_EDGES`) is refused before anything is allocated."""
    if max_edges is None:
        max_edges = DEFAULT_MAX_EDGES
    if isinstance(edge_index, (str, bytes, dict)) or edge_index is None:
        raise GraphError(f"cannot read a graph from {V.show(edge_index)}: pass a networkx.Graph or an edge_index (2 x E)")
    dtype = getattr(edge_index, "dtype", None)
    if dtype is not None and str(dtype).split(".")[-1].startswith(("float", "bfloat", "half", "double", "bool", "complex")):
        raise GraphError(f"edge_index must hold integer node ids, got dtype {dtype}")
    if hasattr(edge_index, "tolist"):
        edge_index = edge_index.tolist()
    try:
        rows = [list(r) for r in edge_index]
    except TypeError:
        raise GraphError(
            f"cannot read a graph from {type(edge_index).__name__}: pass a networkx.Graph or an edge_index (2 x E)"
        ) from None
    if len(rows) != 2 or len(rows[0]) != len(rows[1]):
        shape = f"{len(rows)} rows" + (f" of lengths {[len(r) for r in rows]}" if len(rows) <= 4 else "")
        raise GraphError(f"edge_index must have shape (2, E), got {shape}")
    _check_ids(rows)
    if num_nodes is None:
        if not rows[0]:
            raise GraphError("the graph is empty: pass num_nodes with an empty edge_index")
        num_nodes = 1 + max(max(rows[0]), max(rows[1]))
    num_nodes = V.positive_int("num_nodes", num_nodes)
    check_size(f"an edge_index with num_nodes={num_nodes:,}", SizeEstimate(num_nodes, len(rows[0])), max_edges)
    return _from_edges(num_nodes, zip(rows[0], rows[1]), None, name)


def _check_ids(rows: Sequence[Sequence[Any]]) -> None:
    for r, row in enumerate(rows):
        for c, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, numbers.Integral):
                raise GraphError(f"edge_index must hold integer node ids, got {V.show(x)} at [{r}, {c}]")
            if x < 0:
                raise GraphError(f"edge_index holds a negative node id {x} at [{r}, {c}]")


def check_edge_index_ids(edge_index: Any) -> None:
    """An ``edge_index`` tensor or array holds integer node ids >= 0 (:class:`GraphError` naming the entry)."""
    dtype = getattr(edge_index, "dtype", None)
    if dtype is not None and str(dtype).split(".")[-1].startswith(("float", "bfloat", "half", "double", "bool", "complex")):
        raise GraphError(f"edge_index must hold integer node ids, got dtype {dtype}")
    _check_ids(edge_index.tolist() if hasattr(edge_index, "tolist") else edge_index)


def _ints(parts: list[str], spec: str, count: int) -> list[int]:
    if len(parts) != count:
        raise GraphError(f"graph spec {spec!r} needs {count} number(s) after the name")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise GraphError(f"graph spec {spec!r}: expected integers, got {':'.join(parts)!r}") from None
    if any(v < 0 for v in values):
        raise GraphError(f"graph spec {spec!r}: numbers must be >= 0")
    return values


def _positive(n: int, spec: str, what: str = "N") -> int:
    if n < 1:
        raise GraphError(f"graph spec {spec!r}: {what} must be >= 1")
    return n


def _spec_path(p: list[str], s: str) -> nx.Graph:
    return nx.path_graph(_positive(_ints(p, s, 1)[0], s))


def _spec_cycle(p: list[str], s: str) -> nx.Graph:
    n = _ints(p, s, 1)[0]
    if n < 3:
        raise GraphError(f"graph spec {s!r}: a cycle needs at least 3 nodes")
    return nx.cycle_graph(n)


def _spec_star(p: list[str], s: str) -> nx.Graph:
    return nx.star_graph(_positive(_ints(p, s, 1)[0], s, "K"))


def _spec_complete(p: list[str], s: str) -> nx.Graph:
    return nx.complete_graph(_positive(_ints(p, s, 1)[0], s))


def _spec_grid(p: list[str], s: str) -> nx.Graph:
    if len(p) != 1 or "x" not in p[0]:
        raise GraphError(f"graph spec {s!r}: use grid:RxC, e.g. grid:3x4")
    r, c = _ints(p[0].split("x"), s, 2)
    g = nx.grid_2d_graph(_positive(r, s, "R"), _positive(c, s, "C"))
    return nx.convert_node_labels_to_integers(g, ordering="sorted")


def _spec_petersen(p: list[str], s: str) -> nx.Graph:
    _ints(p, s, 0)
    return nx.petersen_graph()


def _spec_random_regular(p: list[str], s: str) -> nx.Graph:
    d, n, seed = _ints(p, s, 3)
    if d >= n or (d * n) % 2:
        raise GraphError(f"graph spec {s!r}: a {d}-regular graph on {n} nodes needs d < n and d*n even")
    return nx.random_regular_graph(d, n, seed=seed)


def _spec_gnp(p: list[str], s: str) -> nx.Graph:
    if len(p) != 3:
        raise GraphError(f"graph spec {s!r}: use gnp:N:P:SEED, e.g. gnp:30:0.1:7")
    n, seed = _ints([p[0], p[2]], s, 2)
    try:
        prob = float(p[1])
    except ValueError:
        raise GraphError(f"graph spec {s!r}: P must be a number in [0, 1]") from None
    if not 0.0 <= prob <= 1.0:
        raise GraphError(f"graph spec {s!r}: P must be in [0, 1]")
    g = nx.gnp_random_graph(_positive(n, s), prob, seed=seed)
    largest = max(nx.connected_components(g), key=lambda c: (len(c), -min(c)))
    return nx.convert_node_labels_to_integers(g.subgraph(largest).copy(), ordering="sorted")


def _spec_tree(p: list[str], s: str) -> nx.Graph:
    n, seed = _ints(p, s, 2)
    import random

    rng = random.Random(seed)
    g = nx.Graph()
    g.add_node(0)
    for v in range(1, _positive(n, s)):
        g.add_edge(v, rng.randrange(v))
    return g


GRAPH_SPECS = {
    "path": _spec_path,
    "cycle": _spec_cycle,
    "star": _spec_star,
    "complete": _spec_complete,
    "grid": _spec_grid,
    "petersen": _spec_petersen,
    "random-regular": _spec_random_regular,
    "gnp": _spec_gnp,
    "tree": _spec_tree,
}
from .graph_families import FAMILY_SPECS  # noqa: E402 -- csl:N:S, rook:N, shrikhande, figure4:P:K (theory)

GRAPH_SPECS.update(FAMILY_SPECS)


DEFAULT_MAX_EDGES = 1_500_000
"""The most undirected edges a graph spec or edge-list file may build without ``max_edges=`` (``--max-edges``).

A graph of m edges holds about 0.5 KB per edge while built (networkx, then ampsim's
tuples) and a flood keeps up to 2m message copies in flight (:class:`SizeEstimate`):
1.5 million edges is about 2 GB by that estimate, the most a command uses without
saying so first; above it the refusal gives the estimate and the flag that lifts the limit."""

BYTES_PER_EDGE = 500
BYTES_PER_COPY = 300


@dataclass(frozen=True)
class SizeEstimate:
    """What a graph spec would build: ``nodes``, ``edges``, the ``in_flight`` copies of one flood, ``bytes``."""

    nodes: int
    edges: int

    @property
    def in_flight(self) -> int:
        """Copies one broadcast per node can hold in flight at once: one per directed edge (2m)."""
        return 2 * self.edges

    @property
    def bytes(self) -> int:
        return self.edges * BYTES_PER_EDGE + self.in_flight * BYTES_PER_COPY + self.nodes * 200


_fmt_bytes = V.fmt_bytes


def estimate_spec(spec: str) -> Optional[SizeEstimate]:
    """Nodes and edges a spec would build, from its numbers alone (``None`` for files and unknown names).

    Exact for every family except ``gnp`` (its expectation, before the largest component is taken).
    """
    name, _, rest = spec.partition(":")
    p = rest.split(":") if rest else []
    try:
        if name in ("path", "cycle", "complete", "star", "tree") and p:
            n = int(p[0])
            if name == "star":
                return SizeEstimate(n + 1, n)
            if name == "complete":
                return SizeEstimate(n, n * (n - 1) // 2)
            if name == "cycle":
                return SizeEstimate(n, n)
            return SizeEstimate(n, max(n - 1, 0))
        if name == "grid" and len(p) == 1 and "x" in p[0]:
            r, c = (int(x) for x in p[0].split("x", 1))
            return SizeEstimate(r * c, r * (c - 1) + c * (r - 1))
        if name == "random-regular" and len(p) == 3:
            d, n = int(p[0]), int(p[1])
            return SizeEstimate(n, d * n // 2)
        if name == "csl" and len(p) == 2:
            n = int(p[0])
            return SizeEstimate(n, 2 * n)
        if name == "rook" and len(p) == 1:
            n = int(p[0])
            return SizeEstimate(n * n, n * n * (n - 1))
        if name == "gnp" and len(p) == 3:
            n, prob = int(p[0]), float(p[1])
            if 0.0 <= prob <= 1.0:
                return SizeEstimate(n, int(prob * n * (n - 1) / 2))
            return SizeEstimate(n, 0)
    except ValueError:
        return None  # the builder says what is wrong with the numbers
    return None


def check_size(what: str, est: SizeEstimate, max_edges: int) -> None:
    """Refuse (:class:`SizeLimitError`) a graph over ``max_edges``, with the estimate and the way to override."""
    if est.edges > max_edges or est.nodes > max_edges:
        what_limit = "edges" if est.edges > max_edges else "nodes (nor edges)"
        raise SizeLimitError(
            f"{what} would have {est.nodes:,} nodes and {est.edges:,} edges (a flood holds up to "
            f"{est.in_flight:,} message copies in flight; about {_fmt_bytes(est.bytes)}); the limit is "
            f"{max_edges:,} {what_limit}: raise it with max_edges= (CLI: --max-edges) if you have the memory"
        )


def _short(line: str, limit: int = 60) -> str:
    text = repr(line)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _read_edge_list(path: str, max_edges: int = DEFAULT_MAX_EDGES) -> Graph:
    """An edge-list file: ``u v`` per line (space or comma), ``u`` alone for a lone node, ``#`` comments.

    Any other line (a third column, a non-integer id) is an :class:`EdgeListError`
    naming the file and the line; so are unreadable bytes and a missing file.
    """
    edges: list[tuple[int, int]] = []
    nodes: set[int] = set()
    if os.path.isdir(path):
        raise EdgeListError(f"{path}: is a directory, not an edge-list file")
    if V.not_a_file(path):
        raise EdgeListError(f"{path}: is {V.not_a_file(path)}, not an edge-list file")
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise EdgeListError(f"edge-list file not found: {path}") from None
    except OSError as exc:
        raise EdgeListError(f"{path}: cannot read the edge-list file ({exc.strerror or exc})") from None
    lineno = 0
    try:
        with f:
            for lineno, raw in enumerate(f, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.replace(",", " ").split()
                if not parts or len(parts) > 2:
                    raise EdgeListError(
                        f"{path}:{lineno}: expected 'u v' (two integer node ids), got {len(parts)} columns: {_short(line)}"
                    )
                try:
                    ids = [int(x) for x in parts]
                except ValueError:
                    raise EdgeListError(f"{path}:{lineno}: expected 'u v' with integer node ids, got {_short(line)}") from None
                if len(ids) == 1:
                    nodes.add(ids[0])
                    continue
                u, v = ids
                if u == v:
                    raise EdgeListError(f"{path}:{lineno}: self-loop at node {u}: AMP graphs are simple")
                edges.append((u, v))
                if len(edges) > 2 * max_edges:
                    raise SizeLimitError(
                        f"{path}: more than {2 * max_edges:,} edge lines; the limit is {max_edges:,} edges: "
                        "raise it with max_edges= (CLI: --max-edges) if you have the memory"
                    )
    except UnicodeDecodeError:
        with open(path, "rb") as raw:
            data = raw.read()
        try:
            data.decode("utf-8")
            start = 0
        except UnicodeDecodeError as exc:  # the position in the whole file, not in a decoder's chunk
            start = exc.start
        line = data.count(b"\n", 0, start) + 1
        raise EdgeListError(
            f"{path}: not a text edge-list file (undecodable byte at position {start} of line {line})"
        ) from None
    except OSError as exc:
        raise EdgeListError(f"{path}: cannot read the edge-list file ({exc.strerror or exc})") from None
    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    if g.number_of_nodes() == 0:
        raise EdgeListError(f"{path}: the edge list is empty (no edges, no nodes)")
    check_size(f"edge-list file {path}", SizeEstimate(g.number_of_nodes(), g.number_of_edges()), max_edges)
    return as_graph(g, name=os.path.basename(path))


def parse_graph_spec(spec: str, max_edges: int = DEFAULT_MAX_EDGES) -> Graph:
    """A :class:`Graph` from a CLI spec (see the module docstring) or an edge-list file path.

    The spec's size is estimated from its numbers before anything is built: a graph
    over ``max_edges`` edges is refused at once with :class:`SizeLimitError`.
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise V.ArgumentError(f"graph spec must be a string (e.g. 'cycle:8') or a path, got {V.show(spec)}")
    spec = os.fspath(spec)
    max_edges = V.positive_int("max_edges", max_edges)
    name, _, rest = spec.partition(":")
    builder = GRAPH_SPECS.get(name)
    if builder is None:
        if os.path.exists(spec) or os.sep in spec or spec.endswith((".txt", ".edges", ".edgelist", ".csv", ".tsv")):
            return _read_edge_list(spec, max_edges)
        raise GraphError(
            f"unknown graph spec {spec!r}: use one of {', '.join(GRAPH_SPECS)} (e.g. cycle:8) or an edge-list file "
            "(none exists at that path)"
        )
    est = estimate_spec(spec)
    if est is not None:
        check_size(f"graph spec {spec!r}", est, max_edges)
    parts = rest.split(":") if rest else []
    return as_graph(builder(parts, spec), name=spec)
