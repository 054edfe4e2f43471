"""GraphData: one graph as plain tensors, the unit every data set and task yields.

Pure data, no behaviour (jraph's ``GraphsTuple`` habit): ``edge_index`` lists every
undirected edge once per direction, ``x`` holds node features, ``y`` the labels
(node-level: shape ``(n,)`` or ``(n, heads)``; graph-level: shape ``(1,)``).
``starts`` marks the node(s) that receive the paper's initial message (Section 3);
``None`` means "one run per node" (Table 2 and Table 4 protocols).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

__all__ = ["GraphData"]


@dataclass(frozen=True)
class GraphData:
    """One graph: ``edge_index`` (2, 2|E|) long, ``x`` (n, d) float, ``y`` long labels.

    ``level`` is ``"node"`` or ``"graph"``. ``starts`` is a long tensor of origin
    node indices or ``None``. ``meta`` carries task-specific extras (for example
    BFS ``distances`` for the shortest-path parity task, Figure 5a).
    """

    edge_index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    num_nodes: int
    level: str = "node"
    starts: Optional[torch.Tensor] = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level not in ("node", "graph"):
            raise ValueError(f"GraphData.level must be 'node' or 'graph', got {self.level!r}")
        if self.edge_index.dim() != 2 or self.edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(self.edge_index.shape)}")
        if self.x.shape[0] != self.num_nodes:
            raise ValueError(f"x has {self.x.shape[0]} rows but num_nodes={self.num_nodes}")
        if self.edge_index.numel() and int(self.edge_index.max()) >= self.num_nodes:
            raise ValueError("edge_index refers to a node >= num_nodes")
        if not torch.isfinite(self.x).all():
            raise ValueError("x contains NaN or infinite features")

    @property
    def num_edges(self) -> int:
        """Number of undirected edges (each stored once per direction)."""
        return int(self.edge_index.shape[1]) // 2
