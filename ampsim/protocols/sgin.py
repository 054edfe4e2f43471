"""sGIN, the synchronous GNN that Theorem 4.1 (Section 4.1) simulates: the oracle of the synchronizer.

    h_v^(0) = x_v,    h_v^(k) = ReLU(W_k · AGG_{u in N(v)} h_u^(k-1) + b_k),    k = 1..L

Every layer maps dimension d to d (the paper's "without loss of generality"). The
aggregation is one of the variants the paper names after Theorem 4.1:

=========  ===========================================  ==========================
``sum``    sum_u h_u                                    sGIN as defined (GIN [56])
``mean``   (1 / d_v) sum_u h_u                          "divide by D"
``gcn``    sum_u h_u / sqrt(d_u d_v)                    GCN [26], no self-loops
=========  ===========================================  ==========================

Only neighbours are aggregated (no self term), as in the paper's sGIN. Values are
tuples of Python floats, so the oracle is exact and deterministic: neighbours are
summed in ascending index order, the linear layer sums over inputs in index order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..engine.rng import stream
from ..graphs import Graph, as_graph

__all__ = ["SGIN", "AGGREGATIONS", "Vector", "run_sgin", "as_vector", "zeros"]

AGGREGATIONS = ("sum", "mean", "gcn")

Vector = tuple  # a tuple of Python floats


def zeros(d: int) -> Vector:
    """The zero vector of dimension ``d``."""
    return (0.0,) * d


def as_vector(value: Any, dim: int) -> Vector:
    """A node's features as a tuple of ``dim`` floats (lists, tuples, numbers, arrays, tensors).

    ``None`` gives the all-ones vector: featureless graphs get constant features, as GIN does
    for unlabelled graphs.
    """
    if value is None:
        return (1.0,) * dim
    if hasattr(value, "detach"):
        value = value.detach().reshape(-1).tolist()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    vec = tuple(float(v) for v in value)
    if len(vec) != dim:
        raise ValueError(f"node features have dimension {len(vec)}, but the sGIN model has dimension {dim}")
    if not all(math.isfinite(v) for v in vec):
        raise ValueError(f"node features must be finite, got {vec}")
    return vec


def _matrix(rows: Any, what: str) -> tuple:
    mat = tuple(tuple(float(x) for x in row) for row in rows)
    if not mat or any(len(r) != len(mat) for r in mat):
        raise ValueError(f"{what} must be a square d x d matrix (every sGIN layer maps d to d)")
    if not all(math.isfinite(x) for r in mat for x in r):
        raise ValueError(f"{what} has non-finite entries")
    return mat


@dataclass(frozen=True)
class SGIN:
    """An L-layer sGIN: ``weights[k]`` (d x d) and ``biases[k]`` (d) of layer k+1, and the aggregation."""

    weights: tuple
    biases: tuple
    aggregation: str = "sum"

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        weights = tuple(_matrix(w, f"weights[{k}]") for k, w in enumerate(self.weights))
        biases = tuple(tuple(float(x) for x in b) for b in self.biases)
        if not weights:
            raise ValueError("an sGIN needs at least one layer (L >= 1)")
        if len(biases) != len(weights):
            raise ValueError(f"{len(weights)} weight matrices but {len(biases)} bias vectors")
        d = len(weights[0])
        for k, (w, b) in enumerate(zip(weights, biases)):
            if len(w) != d or len(b) != d:
                raise ValueError(f"layer {k + 1} does not map dimension {d} to {d}")
            if not all(math.isfinite(x) for x in b):
                raise ValueError(f"biases[{k}] has non-finite entries")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)

    @property
    def layers(self) -> int:
        """L, the number of layers."""
        return len(self.weights)

    @property
    def dim(self) -> int:
        """d, the state dimension of every layer."""
        return len(self.biases[0])

    @classmethod
    def random(cls, dim: int = 2, layers: int = 2, seed: int = 0, aggregation: str = "sum") -> "SGIN":
        """Weights ~ U(-1, 1) / sqrt(d), biases ~ U(-0.5, 0.5), from the stream ``sgin/<L>/<d>`` of ``seed``."""
        if dim < 1 or layers < 1:
            raise ValueError(f"dim and layers must be >= 1, got dim={dim}, layers={layers}")
        rng = stream(seed, f"sgin/{layers}/{dim}")
        scale = 1.0 / math.sqrt(dim)
        weights = tuple(
            tuple(tuple(scale * rng.uniform(-1.0, 1.0) for _ in range(dim)) for _ in range(dim)) for _ in range(layers)
        )
        biases = tuple(tuple(rng.uniform(-0.5, 0.5) for _ in range(dim)) for _ in range(layers))
        return cls(weights, biases, aggregation)

    def layer(self, k: int, x: Sequence[float]) -> Vector:
        """ReLU(W_k x + b_k) for the 0-based layer index ``k`` (inputs summed in index order)."""
        out = []
        for row, bias in zip(self.weights[k], self.biases[k]):
            z = 0.0
            for wij, xj in zip(row, x):
                z += wij * xj
            z += bias
            out.append(z if z > 0.0 else 0.0)
        return tuple(out)

    def to_dict(self) -> dict:
        return {
            "weights": [[list(r) for r in w] for w in self.weights],
            "biases": [list(b) for b in self.biases],
            "aggregation": self.aggregation,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SGIN":
        return cls(d["weights"], d["biases"], d.get("aggregation", "sum"))


def run_sgin(graph: Any, features: Any, model: SGIN) -> tuple:
    """All layers of sGIN on ``graph``: ``h[k][v]`` for k = 0..L (``h[0]`` are the features).

    ``features``: one row per node (``None``: all-ones rows, see :func:`as_vector`).
    """
    g: Graph = as_graph(graph)
    n, d = g.num_nodes, model.dim
    rows = [None] * n if features is None else list(features)
    if len(rows) != n:
        raise ValueError(f"features have {len(rows)} rows for {n} nodes")
    h = [as_vector(r, d) for r in rows]
    deg = g.degrees
    out = [tuple(h)]
    for k in range(model.layers):
        nxt = []
        for v in range(n):
            agg = [0.0] * d
            for u in g.neighbors[v]:
                hu = h[u]
                if model.aggregation == "gcn":
                    c = 1.0 / math.sqrt(deg[u] * deg[v])
                    for i in range(d):
                        agg[i] += c * hu[i]
                else:
                    for i in range(d):
                        agg[i] += hu[i]
            if model.aggregation == "mean" and deg[v]:
                agg = [x / deg[v] for x in agg]
            nxt.append(model.layer(k, agg))
        h = nxt
        out.append(tuple(h))
    return tuple(out)
