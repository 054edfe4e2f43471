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

__all__ = ["RunSpec", "Executor", "EngineExecutor", "graph_of", "check_runs"]


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


def check_runs(graph: GraphData, runs: Sequence[RunSpec], msg_size: int, name: str = "runs") -> list[tuple[int, ...]]:
    """Every executor's check of its runs on one graph, before anything runs; returns each run's start nodes
    as ``int`` tuples. ``graph`` is a :class:`GraphData`; ``runs`` a sequence of :class:`RunSpec` whose
    ``starts`` are distinct node indices (NumPy integers, arrays and tensors read as their values),
    ``messages`` a ``(k >= len(starts), msg_size)`` tensor, ``seed`` an int, ``noise_seed`` an int or
    ``None``. A bad one is an :class:`~ampsim.engine.errors.ArgumentError` naming the run and the field."""
    from .. import validate as V

    if not isinstance(graph, GraphData):
        raise V.ArgumentError(f"graph must be a GraphData (ampsim.data.graphdata; from_pyg converts a PyG Data), "
                              f"got {V.show(graph)}")
    if isinstance(runs, (str, bytes, dict)) or not isinstance(runs, Sequence) and not hasattr(runs, "__iter__"):
        raise V.ArgumentError(f"{name} must be a list of RunSpec, got {V.show(runs)}")
    n = graph.num_nodes
    starts = []
    for i, run in enumerate(runs):
        where = f"{name}[{i}]"
        if not isinstance(run, RunSpec):
            raise V.ArgumentError(f"{where} must be a RunSpec, got {V.show(run)}")
        starts.append(tuple(V.node_ids(f"{where}.starts", run.starts, n, allow_empty=True)))
        m = run.messages
        if not isinstance(m, Tensor) or m.dim() != 2 or m.shape[0] < len(starts[-1]) or m.shape[1] != msg_size:
            got = tuple(m.shape) if isinstance(m, Tensor) else V.show(m)
            raise V.ArgumentError(f"{where}.messages must be a tensor of shape (k >= {len(starts[-1])}, {msg_size}), "
                                  f"got {got}")
        V.integer(f"{where}.seed", run.seed)
        if run.noise_seed is not None:
            V.integer(f"{where}.noise_seed", run.noise_seed)
    return starts


class EngineExecutor:
    """The per-message reference path: each run is a SimPy simulation of :class:`CellRule`."""

    def __init__(self, tracer_factory=None) -> None:
        self.tracer_factory = tracer_factory
        self.last_results: list = []

    def execute(
        self, cell: Cell, graph: GraphData, runs: Sequence[RunSpec], budget: int,
        delay: Union[str, DelayModel] = "constant", fifo: bool = False, loss: float = 0.0,
    ) -> Tensor:
        from .. import validate as V

        starts = check_runs(graph, runs, cell.msg_size)
        budget = V.positive_int("budget", budget)
        g = graph_of(graph)
        finals = []
        self.last_results = []
        for i, run in enumerate(runs):
            rule = CellRule(cell, run.noise_seed)
            start = {v: Message("start", run.messages[j]) for j, v in enumerate(starts[i])}
            tracer = self.tracer_factory(i) if self.tracer_factory else None
            sim = Simulation(g, rule, delay=delay, fifo=fifo, seed=run.seed, start=start,
                             features=graph.x, allow_isolated=True, tracer=tracer, loss=loss)
            result = sim.run(max_deliveries=budget)
            self.last_results.append(result)
            finals.append(torch.cat(list(result.states), dim=0))
        return torch.stack(finals, dim=0)
