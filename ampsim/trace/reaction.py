"""When does a node react, and when does it ignore a message? (the paper's conclusion, Section 6)

One :class:`Reaction` per message copy that reached a node in a run of a learned AMP model:

* ``change`` = ||h' - h||: how far the delivery moved the node's hidden state h (0 for a drop;
  for cells other than :class:`~ampsim.cells.cells.AMPCell`, e.g. the aggregating cells, the
  change of the whole packed state row);
* ``output_change`` = ||o' - o||, o = the decoded output state (h, or the halting-weighted
  accumulator of ACT/Iter): how far it moved what the node will answer;
* ``emitted``: whether the node sent a message in answer; ``gate``: the learned emission gate
  sigma(W_g [h' | m]) (None without a gate);
* ``halt``: the halting probability of this step (ACT: p, Iter: c; else None); ``mass``: the
  halting state after it (ACT: S, Iter: R); ``dropped``: the node had halted before this
  delivery and the engine dropped it (ACT/Iter ignore everything once halted).

:func:`trace_reactions` runs one run of a model on the engine (the same simulation as
:class:`~ampsim.cells.execute.EngineExecutor`: same delays, same final states) and records them;
:func:`aggregate` sums them up per node, per hop distance from the run's origin, or per time bin,
and :func:`ampsim.viz.reaction.plot_reactions` draws the space-time diagram coloured by reaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import torch

from ..cells.execute import RunSpec, graph_of
from ..cells.rule import CellRule
from ..engine.messages import Message
from ..engine.simulation import Simulation
from .records import DELIVER, DROP, MessageRecord
from .tracers import ListTracer

__all__ = ["Reaction", "ReactionRun", "trace_reactions", "hop_distances", "aggregate", "summarize_groups"]


@dataclass(frozen=True)
class Reaction:
    """How node ``node`` reacted to message ``msg_id`` from ``src`` at time ``t`` (see the module docstring)."""

    msg_id: int
    t: float
    node: int
    src: int
    dropped: bool
    change: float
    output_change: float
    emitted: bool
    gate: Optional[float]
    halt: Optional[float]
    mass: Optional[float]


@dataclass(frozen=True)
class ReactionRun:
    """The reactions of one run, its origin(s), the final states and how the run ended."""

    reactions: tuple
    starts: tuple
    final_states: torch.Tensor
    reason: str
    num_nodes: int


class _RecordingRule(CellRule):
    """:class:`CellRule` that also keeps, per delivery, the values a :class:`Reaction` needs."""

    def __init__(self, cell) -> None:
        super().__init__(cell)
        self.rows: list[tuple] = []

    @torch.no_grad()
    def receive(self, node, state, message: Message):
        new, out = super().receive(node, state, message)
        cell = self.cell
        m = message.payload.reshape(1, -1)
        gate = halt = mass = None
        if not hasattr(cell, "emit_gate"):  # another cell of the protocol: the change of its whole packed state
            self.rows.append((float((new - state).norm()), float((cell.output(new) - cell.output(state)).norm()),
                              out is not None, gate, halt, mass))
            return new, out
        H = cell.hidden
        h, h2 = state[:, :H], new[:, :H]
        if cell.emit_gate is not None:
            gate = float(torch.sigmoid(cell.emit_gate(torch.cat([h2, m], dim=1)))[0, 0])
        if cell.halting is not None:
            halt = float(torch.sigmoid(cell.halting(torch.cat([h, m], dim=1)))[0, 0])
            mass = float(new[0, -1])
        self.rows.append((float((h2 - h).norm()), float((cell.output(new) - cell.output(state)).norm()),
                          out is not None, gate, halt, mass))
        return new, out


def trace_reactions(model: Any, graph: Any, run: Union[int, RunSpec] = 0, budget: Optional[int] = None,
                    delay: str = "constant", seed: int = 0, budget_factor: int = 5) -> ReactionRun:
    """Run run ``run`` of ``model`` (an :class:`~ampsim.cells.models.AMPModel`, or an ``AMPCell`` with a
    :class:`RunSpec`) on ``graph`` (a GraphData) and record every delivery's reaction.

    ``run``: an index into ``model.runs(graph, seed)`` (Table 3: the single origin run; Table 2:
    the run started at node ``run``) or a RunSpec. ``budget`` defaults to ``budget_factor * n``.
    """
    cell = getattr(model, "cell", model)
    if isinstance(run, int):
        runs = model.runs(graph, seed)
        if not 0 <= run < len(runs):
            raise ValueError(f"run must be in 0..{len(runs) - 1}, got {run}")
        run = runs[run]
    budget = budget if budget is not None else budget_factor * graph.num_nodes
    rule = _RecordingRule(cell)
    tracer = ListTracer(states=False)
    start = {v: Message("start", run.messages[j]) for j, v in enumerate(run.starts)}
    sim = Simulation(graph_of(graph), rule, delay=delay, seed=run.seed, start=start, features=graph.x,
                     allow_isolated=True, tracer=tracer)
    with torch.no_grad():
        result = sim.run(max_deliveries=budget)
    rows = iter(rule.rows)
    out = []
    for r in tracer.records:
        if not isinstance(r, MessageRecord):
            continue
        if r.event == DELIVER:
            change, ochange, emitted, gate, halt, mass = next(rows)
            if r.src < 0:
                continue  # the start message is not a neighbour's message
            out.append(Reaction(r.msg_id, r.t_deliver, r.dst, r.src, False, change, ochange, emitted, gate, halt, mass))
        elif r.event == DROP and r.reason == "halted":
            out.append(Reaction(r.msg_id, r.t_deliver, r.dst, r.src, True, 0.0, 0.0, False, None, None, None))
    finals = torch.cat(list(result.states), dim=0).detach()
    return ReactionRun(tuple(out), tuple(run.starts), finals, result.reason, graph.num_nodes)


def hop_distances(graph: Any, sources: Sequence[int]) -> list[Optional[int]]:
    """BFS hop distance of every node from the nearest of ``sources`` (None if unreachable)."""
    g = graph_of(graph)
    dist: list[Optional[int]] = [None] * g.num_nodes
    frontier = list(sources)
    for s in frontier:
        dist[s] = 0
    while frontier:
        nxt = []
        for v in frontier:
            for u in g.neighbors[v]:
                if dist[u] is None:
                    dist[u] = dist[v] + 1
                    nxt.append(u)
        frontier = nxt
    return dist


def aggregate(reactions: Sequence[Reaction], key: Callable[[Reaction], Any]) -> dict:
    """Per group (``key(reaction)``): deliveries, drops, emissions, mean/total state change,
    mean output change, mean gate, mean halting probability and the last halting mass."""
    groups: dict = {}
    for r in reactions:
        groups.setdefault(key(r), []).append(r)
    return {k: summarize_groups(v) for k, v in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0]))}


def summarize_groups(rs: Sequence[Reaction]) -> dict:
    """The statistics of :func:`aggregate` for one group of reactions."""
    live = [r for r in rs if not r.dropped]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    gates = [r.gate for r in live if r.gate is not None]
    halts = [r.halt for r in live if r.halt is not None]
    return {
        "messages": len(rs),
        "processed": len(live),
        "dropped": len(rs) - len(live),
        "emitted": sum(r.emitted for r in live),
        "change_mean": mean([r.change for r in live]),
        "change_total": sum(r.change for r in live),
        "output_change_mean": mean([r.output_change for r in live]),
        "gate_mean": mean(gates) if gates else None,
        "halt_mean": mean(halts) if halts else None,
        "mass_last": next((r.mass for r in reversed(live) if r.mass is not None), None),
    }
