"""Executors: run a cell over a set of AMP runs on one graph and return every node's final state.

A *run* (Sections 3, 5.1-5.3) is one simulation: the paper's initial message goes
to the run's start node(s), and the run stops quiescent or at the message budget
(processed deliveries: 5n for Table 2, 10n for Table 3, 15 or 25 for Table 4).
Table 2 and Table 4 start one run per node; Table 3 one run per graph.

``EngineExecutor`` is the reference: one :class:`~ampsim.engine.simulation.Simulation`
per run, message by message. The batched executor (``ampsim.batched``) must give the
same states (to 1e-5) and gradients for the same :class:`RunSpec` list and seeds.

``loss`` is the engine's message loss (:class:`~ampsim.engine.simulation.Simulation`): each copy
sent by a broadcast is lost with probability ``loss``, drawn from the run's ``loss`` stream in
msg_id order; a lost copy keeps its msg_id and its delay draw. Every executor loses the same copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, Union

import torch
from torch import Tensor

from ..data.graphdata import GraphData
from ..engine.delays import DelayModel
from ..engine.messages import Message
from ..engine.simulation import Simulation
from ..graphs import Graph, as_graph
from .protocol import Cell
from .rule import CellRule

__all__ = ["RunSpec", "Executor", "EngineExecutor", "graph_of"]


@dataclass(frozen=True)
class RunSpec:
    """One run: ``starts`` (node indices) each receive the matching row of ``messages`` (k, M); ``seed`` its
    delays (and lost copies); ``noise_seed`` the cell's random numbers (dropout; ``None``: none)."""

    starts: tuple[int, ...]
    messages: Tensor
    seed: int = 0
    noise_seed: Optional[int] = None


class Executor(Protocol):
    """``execute(cell, graph, runs, budget, delay, fifo, loss) -> (len(runs), n, state_size)`` final packed states."""

    def execute(
        self, cell: Cell, graph: GraphData, runs: Sequence[RunSpec], budget: int,
        delay: Union[str, DelayModel] = "constant", fifo: bool = False, loss: float = 0.0,
    ) -> Tensor: ...


def graph_of(data: GraphData) -> Graph:
    """The engine's :class:`Graph` of a :class:`GraphData` (cached on ``meta`` while ``edge_index`` is the
    same tensor at the same version: an in-place edit builds it again)."""
    ei = data.edge_index
    stamp = (ei.data_ptr(), tuple(ei.shape), ei._version, data.num_nodes)
    memo = data.meta.get("_graph")
    if memo is None or memo[0] != stamp:
        memo = data.meta["_graph"] = (stamp, as_graph(ei, num_nodes=data.num_nodes))
    return memo[1]


class EngineExecutor:
    """The per-message reference path: each run is a SimPy simulation of :class:`CellRule`."""

    def __init__(self, tracer_factory=None) -> None:
        self.tracer_factory = tracer_factory
        self.last_results: list = []

    def execute(
        self, cell: Cell, graph: GraphData, runs: Sequence[RunSpec], budget: int,
        delay: Union[str, DelayModel] = "constant", fifo: bool = False, loss: float = 0.0,
    ) -> Tensor:
        g = graph_of(graph)
        finals = []
        self.last_results = []
        for i, run in enumerate(runs):
            rule = CellRule(cell, run.noise_seed)
            start = {v: Message("start", run.messages[j]) for j, v in enumerate(run.starts)}
            tracer = self.tracer_factory(i) if self.tracer_factory else None
            sim = Simulation(g, rule, delay=delay, fifo=fifo, seed=run.seed, start=start,
                             features=graph.x, allow_isolated=True, tracer=tracer, loss=loss)
            result = sim.run(max_deliveries=budget)
            self.last_results.append(result)
            finals.append(torch.cat(list(result.states), dim=0))
        return torch.stack(finals, dim=0)
