"""The settled driver: an order-free cell's final states from the *set* of delivered messages (Section 4.1).

Rule. Let a cell be *order-free* (``cell.order_free``): its per-message update is a sum or a
running softmax, so a node's state after any set of deliveries does not depend on their
order; and let its emission be *counted* (:mod:`ampsim.cells.protocol`): a node emits its
wave-j message once, when its wave j - 1 has heard ``degree + 1`` messages. Then every
message of wave j carries a function of its sender's *complete* wave-(j-1) aggregate, and
the final state of every node is a function of which copies were delivered -- not of when::

    S_v^j = Σ_{delivered copies u → v of wave j} msg_u^j  (+ v's own, once counted)

So the final states are K aggregation passes (one per wave), a GNN layer each, instead of
one batch per level of the schedule. The cell computes them (``cell.settle``); this module
says which copies were delivered:

* **no loss, a budget the run cannot reach**: every copy of every message sent. Which
  messages are sent is then the count rule's fixed point, the same under every delay
  model -- no plan at all. This needs the number of deliveries to be delay-free as well
  (``count_rule.fixed_messages``: the waves' count rule with K <= 2 never merges two waves
  into one message) and below the budget; the cell returns which waves each node sent, and
  the run's deliveries are the starts plus ``Σ_j Σ_{u sent j} degree(u)``;
* otherwise (message loss, a run cut by its budget, merged waves): the planned schedule
  (:func:`ampsim.batched.counted.plan_events`, cached per seed like every plan) lists the
  delivered copies with the tag of each.

Both give the engine's final states up to float rounding (sums in another order), its
deliveries and its end reasons; the equivalence tests compare them under constant and
uniform delays, with loss and with budgets that cut runs.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..cells.protocol import NodeInputs
from ..graphs import Graph
from .planner import PlanCache, _csr, _graph_memo, start_index

__all__ = ["settles", "settle_runs"]


def settles(cell) -> bool:
    """True when ``cell`` runs on the settled driver (``cell.order_free``). Its start messages are ones it
    reads as starts: the executor refuses others first (``message_tags``, :meth:`BatchedExecutor.unroll`)."""
    return bool(getattr(cell, "order_free", False))


def _edges(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Every directed copy ``(sender, receiver)`` of one broadcast per node: ``v -> u`` for u in N(v);
    from the planner's CSR arrays, kept with them once per graph object."""
    memo = _graph_memo(graph)
    if "edges" not in memo:
        indptr, indices, deg = _csr(graph)
        memo["edges"] = (np.repeat(np.arange(graph.num_nodes, dtype=np.int64), deg), indices)
    return memo["edges"]


def settle_runs(cell, gs: Sequence[Graph], hashes: Sequence[str], runs, message_rows: Sequence[np.ndarray],
                x: Tensor, inputs: NodeInputs, messages: Tensor, budget: int, model, fifo: bool, ties: str,
                loss: float, plans: PlanCache) -> Optional[tuple[Tensor, tuple[str, ...], tuple[int, ...]]]:
    """Final states ``(E, S)`` of every (graph, run, node) entry, with each run's end reason and deliveries.

    ``runs[g]``: graph g's ``[(start nodes, seed), ...]``; ``message_rows[g]``: the row of
    ``messages`` of each start slot (engine order); ``x`` and ``inputs``: one row per (graph, node).
    """
    rule = cell.count_rule
    node_base = np.concatenate([[0], np.cumsum([g.num_nodes for g in gs])]).astype(np.int64)
    entry_node, started, start_row, src_l, dst_l = [], [], [], [], []
    sizes, e0 = [], 0
    for g, (graph, gruns, rows) in enumerate(zip(gs, runs, message_rows)):
        n = graph.num_nodes
        src, dst = _edges(graph)
        k = 0
        for starts, _ in gruns:
            entry_node.append(np.arange(n, dtype=np.int64) + node_base[g])
            first = np.full(n, -1, dtype=np.int64)
            nodes, _ = start_index(starts, n)
            first[nodes] = rows[k: k + len(nodes)]
            k += len(nodes)
            start_row.append(first)
            src_l.append(src + e0)
            dst_l.append(dst + e0)
            sizes.append(n)
            e0 += n
    device = x.device
    as_t = lambda a: torch.from_numpy(np.concatenate(a) if a else np.zeros(0, dtype=np.int64)).to(device)  # noqa: E731
    entry_node, start_row = as_t(entry_node), as_t(start_row)
    started = start_row >= 0
    start = messages.new_zeros((len(start_row), messages.shape[1]))
    if bool(started.any()):
        rows = started.nonzero().flatten()
        start = start.index_copy(0, rows, messages.index_select(0, start_row.index_select(0, rows)))
    if len(entry_node) == x.shape[0]:  # one run per graph: the entries are the nodes
        xs, ins = x, inputs
    else:
        xs = x.index_select(0, entry_node)
        ins = NodeInputs(inputs.degree.index_select(0, entry_node), inputs.noise.index_select(0, entry_node))
    edges = (as_t(src_l), as_t(dst_l))
    fixed = not loss and getattr(rule, "fixed_messages", False)
    if fixed:
        states, sent = cell.settle(xs, ins, start, started, edges, None)
        deg = ins.degree.detach().to(torch.float64)
        per_entry = started.to(torch.float64) + (sent.to(torch.float64) * deg.unsqueeze(1)).sum(1)
        counts = [int(round(float(c.sum()))) for c in torch.split(per_entry, sizes)]
        if all(c < budget for c in counts):
            done = cell.finished(states.detach()).split(sizes)
            reasons = tuple("quiescent" if bool(d.all()) else "stalled" for d in done)
            return states, reasons, tuple(counts)
    waves = _planned(rule, gs, hashes, runs, budget, model, fifo, ties, loss, plans, sizes, device)
    if waves is None:
        return None
    delivered, reasons, deliveries = waves
    states, _ = cell.settle(xs, ins, start, started, edges, delivered)
    return states, reasons, deliveries


def _planned(rule, gs, hashes, runs, budget, model, fifo, ties, loss, plans: PlanCache, sizes, device):
    """Per wave, the ``(sender, receiver)`` entries of the delivered copies, from the planned schedules."""
    K = rule.waves
    pairs = [([], []) for _ in range(K)]
    reasons, deliveries = [], []
    e0 = 0
    for graph, gh, gruns in zip(gs, hashes, runs):
        sched = plans.get(graph, gruns, budget, model, fifo, ties, gh, loss, rule)
        if sched.tag is None:
            return None
        n = graph.num_nodes
        base = e0 + sched.run.astype(np.int64) * n
        msg = sched.src >= 0
        for j in range(K):
            m = msg & ((sched.tag >> j) & 1).astype(bool)
            pairs[j][0].append(base[m] + sched.src[m])
            pairs[j][1].append(base[m] + sched.node[m])
        reasons.extend(sched.reasons)
        deliveries.extend(int(c) for c in np.bincount(sched.run, minlength=sched.num_runs))
        e0 += n * sched.num_runs
    cat = lambda a: torch.from_numpy(np.concatenate(a).astype(np.int64)).to(device)  # noqa: E731
    return [(cat(s), cat(d)) for s, d in pairs], tuple(reasons), tuple(deliveries)
