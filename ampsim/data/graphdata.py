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
        from .. import validate as V

        object.__setattr__(self, "level", V.choice("GraphData.level", self.level, ("node", "graph")))
        object.__setattr__(self, "num_nodes", V.positive_int("GraphData.num_nodes", self.num_nodes))
        for name in ("edge_index", "x"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise V.ArgumentError(f"GraphData.{name} must be a tensor, got {V.show(getattr(self, name))}")
        ei = self.edge_index
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise V.ArgumentError(f"GraphData.edge_index must have shape (2, E), got {tuple(ei.shape)}")
        if ei.is_floating_point() or ei.is_complex() or ei.dtype == torch.bool:
            raise V.ArgumentError(f"GraphData.edge_index must hold integer node ids, got dtype {ei.dtype}")
        if self.x.dim() == 0 or self.x.shape[0] != self.num_nodes:
            raise V.ArgumentError(f"GraphData.x has {tuple(self.x.shape)[:1] or 'no'} rows but num_nodes={self.num_nodes}")
        if ei.numel() and not 0 <= int(ei.min()) <= int(ei.max()) < self.num_nodes:
            raise V.ArgumentError(f"GraphData.edge_index holds node ids {int(ei.min())}..{int(ei.max())}, "
                                  f"outside 0..{self.num_nodes - 1}")
        if not torch.isfinite(self.x).all():
            raise V.ArgumentError("GraphData.x contains NaN or infinite features")

    @property
    def num_edges(self) -> int:
        """Number of undirected edges (each stored once per direction)."""
        return int(self.edge_index.shape[1]) // 2
