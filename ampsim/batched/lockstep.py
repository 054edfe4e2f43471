"""The lock-step driver: runs whose schedule depends on values (ACT/Iter halting, a learned gate).

Every run keeps its own event queue (:class:`~ampsim.batched.planner.EventQueue`, the
engine's order); all runs advance together one *window* at a time
(:meth:`EventQueue.window`: the next copies that no broadcast among them can precede --
one instant, or more with a lookahead over constant or pre-drawn uniform delays). Copies
of a window depend on each other only through their receiver's state, so the i-th copy of
every receiver of every run goes in batch i (halted receivers drop theirs). After the
window, the emission flags decide which broadcasts happen; msg_ids and delays are then
assigned in processing order, as the engine does. Gradients: :class:`_Unroll` keeps each
batch's small autograd graph and, backwards, walks the batches in reverse, scatter-adding
input gradients into gradient buffers (no O(levels x buffer) copies).
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..cells.protocol import Cell
from ..engine.delays import DelayModel
from ..graphs import Graph
from .planner import EventQueue, start_slots


class _LockStepDriver:
    """All runs advance one instant at a time; batch i holds the i-th copy of every receiver.

    Per run: an :class:`EventQueue` (engine order; it loses the copies the engine's ``loss``
    loses), the row of each node's current state, and a processed-delivery count (drops do
    not count; the budget cuts exactly).
    """

    needs_flags = True

    def __init__(self, graphs: Sequence[Graph], runs: Sequence[Sequence[tuple[Sequence[int], int]]],
                 msg_rows: Sequence[np.ndarray], budget: int, model: DelayModel, fifo: bool, ties: str,
                 init_halted: list[bool], device: torch.device, record: bool, loss: float = 0.0) -> None:
        self.device = device
        self.budget = budget
        self.record = record
        n_init = sum(g.num_nodes for g in graphs)
        self.base = 1 + n_init
        self.n_starts = int(sum(len(m) for m in msg_rows))
        self.halted = [False] + list(init_halted)  # per buffer row
        self.emit: list[bool] = []                  # per delivery position
        self.state_src: list[int] = []
        self.msgid: list[int] = []
        self.count = 0
        self.batches = 0
        self.runs = []  # [queue, cur rows dict, init offset, processed, records]
        init_off = 0
        for g, graph, gruns, rows in zip(range(len(graphs)), graphs, runs, msg_rows):
            k = 0
            for starts, seed in gruns:
                q = EventQueue(graph.neighbors, model, seed, fifo, ties, loss)
                for v, _ in start_slots(starts, graph.num_nodes):
                    q.start(v, int(rows[k]))
                    k += 1
                self.runs.append([q, {}, 1 + init_off, 0, [] if record else None])
            init_off += graph.num_nodes
        self.capacity = budget * len(self.runs)
        self.reasons = ["quiescent"] * len(self.runs)
        self.deliveries = [0] * len(self.runs)

    def feedback(self, flags: list[list[bool]]) -> None:
        emit, halted = flags
        self.emit.extend(emit)
        self.halted.extend(halted)

    def __iter__(self) -> Iterator[tuple[int, int, Tensor, Tensor]]:
        active = [r for r, run in enumerate(self.runs) if run[0].pending()]
        while active:
            windows = []
            rounds: list[list] = []  # rounds[i]: (run, position in window, item) of every i-th copy per receiver
            for r in active:
                run = self.runs[r]
                win = run[0].window(self.budget - run[3])
                seen: dict[int, int] = {}
                for j, item in enumerate(win):
                    i = seen.get(item[2], 0)
                    seen[item[2]] = i + 1
                    if i == len(rounds):
                        rounds.append([])
                    rounds[i].append((r, j, item))
                windows.append((r, win, [-1] * len(win)))
            where_of = {r: where for r, _, where in windows}
            for batch in rounds:
                lo = self.count
                ssrc, msrc = [], []
                for r, j, item in batch:
                    run = self.runs[r]
                    cur, v = run[1], item[2]
                    row = cur.get(v, run[2] + v)
                    if self.halted[row]:
                        continue  # a halted node drops the copy (not counted)
                    pos = self.count
                    self.count += 1
                    ssrc.append(row)
                    msrc.append(item[5] if item[3] < 0 else item[3])
                    cur[v] = self.base + pos
                    where_of[r][j] = pos
                    run[3] += 1
                    self.msgid.append(item[1])
                if not ssrc:
                    continue
                self.state_src.extend(ssrc)
                self.batches += 1
                yield (lo, self.count, torch.tensor(ssrc, dtype=torch.long, device=self.device),
                       torch.tensor(msrc, dtype=torch.long, device=self.device))
            still = []
            for r, win, where in windows:
                q, cur, ioff, done, recs = self.runs[r]
                for item, pos in zip(win, where):
                    t, mid, v, cause, src, slot = item
                    if recs is not None:
                        cid = -1 if cause < 0 else self.msgid[cause - self.n_starts]
                        recs.append(("deliver" if pos >= 0 else "drop", v, mid, cid))
                    if pos >= 0 and self.emit[pos]:
                        q.broadcast(t, v, self.n_starts + pos)
                self.deliveries[r] = done
                if done >= self.budget:
                    self.reasons[r] = "message_budget"
                elif q.pending():
                    still.append(r)
            active = still

    def final_rows(self, graphs: Sequence[Graph], runs_per_graph: Sequence[int]) -> Tensor:
        rows = []
        r = 0
        for graph, nr in zip(graphs, runs_per_graph):
            for _ in range(nr):
                cur, ioff = self.runs[r][1], self.runs[r][2]
                rows.extend(cur.get(v, ioff + v) for v in range(graph.num_nodes))
                r += 1
        return torch.tensor(rows, dtype=torch.long, device=self.device)


# --------------------------------------------------------------------------- autograd
def _forward_levels(cell: Cell, driver, init_states: Tensor, start_msgs: Tensor,
                    build: bool) -> tuple[Tensor, list]:
    """Run every batch the driver hands out; return the state buffer (and each batch's graph if ``build``)."""
    n_init, n_starts = init_states.shape[0], start_msgs.shape[0]
    base = 1 + n_init
    cap = driver.capacity
    states = init_states.new_empty((base + cap, cell.state_size))
    states[0].zero_()
    states[1:base] = init_states.detach()
    msgs = start_msgs.new_empty((n_starts + cap, cell.msg_size))
    msgs[:n_starts] = start_msgs.detach()
    saved = []
    for lo, hi, ssrc, msrc in driver:
        h = states.index_select(0, ssrc)
        m = msgs.index_select(0, msrc)
        if build:
            h.requires_grad_(True)
            m.requires_grad_(True)
            with torch.enable_grad():
                new, out, emit = cell.step(h, m)
            saved.append((lo, hi, ssrc, msrc, h, m, new, out))
        else:
            new, out, emit = cell.step(h, m)
        states[base + lo: base + hi] = new.detach()
        msgs[n_starts + lo: n_starts + hi] = out.detach()
        if driver.needs_flags:
            flags = torch.stack([emit.detach() > 0.5, cell.halted(new.detach())])
            driver.feedback(flags.tolist())
    return states[: base + driver.count], saved


class _Unroll(torch.autograd.Function):
    """Forward: all batches; backward: BPTT batch by batch in reverse through the kept graphs."""

    @staticmethod
    def forward(ctx, cell, driver, init_states, start_msgs, *params):  # type: ignore[override]
        states, saved = _forward_levels(cell, driver, init_states, start_msgs, build=True)
        ctx.saved = saved
        ctx.meta = (init_states.shape[0], start_msgs.shape[0], start_msgs.shape[1], driver.count)
        ctx.params = params
        return states

    @staticmethod
    def backward(ctx, g_states):  # type: ignore[override]
        n_init, n_starts, M, count = ctx.meta
        base = 1 + n_init
        g_state = g_states.contiguous().clone()
        g_msg = g_state.new_zeros((n_starts + count, M))
        params = ctx.params
        want = [i for i, p in enumerate(params) if p.requires_grad]
        p_in = [params[i] for i in want]
        p_grads: list[Optional[Tensor]] = [None] * len(params)
        saved = ctx.saved
        ctx.saved = None
        for lo, hi, ssrc, msrc, h, m, new, out in reversed(saved):
            gn = g_state[base + lo: base + hi]
            go = g_msg[n_starts + lo: n_starts + hi]
            grads = torch.autograd.grad((new, out), [h, m] + p_in, (gn, go), allow_unused=True)
            if grads[0] is not None:
                g_state.index_add_(0, ssrc, grads[0])
            if grads[1] is not None:
                g_msg.index_add_(0, msrc, grads[1])
            for i, g in zip(want, grads[2:]):
                if g is not None:
                    p_grads[i] = g if p_grads[i] is None else p_grads[i] + g
        return (None, None, g_state[1:base], g_msg[:n_starts], *p_grads)
