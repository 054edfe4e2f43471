"""BatchedExecutor: the engine's AMP runs (Section 3) at tensor speed, same deliveries, same states.

Every processed delivery applies the cell to one (state, message) row. The engine
does this one row at a time; here the rows of many deliveries go through
:meth:`AMPCell.step` together. Two drivers decide which rows form one batch:

* **levels** (always-emit cells: RNN, GRU, LSTM without gate). The schedule does not
  depend on values, so :mod:`ampsim.batched.planner` computes it once per
  (graph, runs, delays, budget) -- cached by a hash of those -- and a delivery's
  level is ``1 + max(level(cause), level(prev at the same node))``. One level of
  all runs of all graphs of a minibatch is one batch.
* **lock-step** (ACT/Iter halting, the learned gate: the schedule depends on values).
  Every run keeps its own event queue (:class:`~ampsim.batched.planner.EventQueue`,
  the engine's order); all runs advance together one *window* at a time
  (:meth:`EventQueue.window`: the next copies that no broadcast among them can
  precede -- one instant, or more with a lookahead over constant or pre-drawn uniform
  delays). Copies of a window depend on each other only through their receiver's
  state, so the i-th copy of every receiver of every run goes in batch i (halted
  receivers drop theirs). After the window, the emission flags decide which
  broadcasts happen; msg_ids and delays are then assigned in processing order, as
  the engine does.

Memory layout: one state buffer ``(1 + n_init + D, S)`` -- row 0 is zeros (padding),
then one start state per (graph, node) (every run starts from the same encoding),
then one row per delivery, contiguous per batch -- and one message buffer
``(K + D, M)`` (K start messages, then each delivery's outgoing message). Each
batch reads its inputs with ``index_select`` and writes its slice once. Gradients
(full BPTT, as the authors' code): levels run hand-written step kernels
(:mod:`ampsim.batched.kernels`) in :class:`_LevelUnroll`; a long program is cut into
segments whose work is recomputed in the backward pass from checkpoint stores that
hold every row carried across a cut once (see :class:`_Segments`, :func:`segment_plan`, docs/batched.md).
Lock-step batches use :class:`_Unroll`, an autograd function that keeps each batch's
small graph and, backwards, walks the batches in reverse, scatter-adding input
gradients into gradient buffers (no O(levels x buffer) copies).
"""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .. import validate as V
from ..cells.cells import AMPCell
from ..cells.execute import RunSpec, graph_of
from ..data.graphdata import GraphData
from ..engine.delays import DelayModel, get_delay
from ..graphs import Graph
from .kernels import StepKernel, kernel_for
from .planner import (TIES, EventQueue, PlanCache, Schedule, delay_key, engine_ties, neighbour_hash,
                      seeded, start_slots)

__all__ = ["BatchedExecutor", "Unrolled", "MODES", "needs_lockstep", "retain_freed_memory"]

MODES = ("auto", "levels", "lockstep")


def retain_freed_memory(limit: int = 1 << 30) -> bool:
    """Linux/glibc only: serve allocations up to ``limit`` bytes from the heap and keep freed memory.

    Every training step allocates and frees the same large buffers (state buffer,
    gradient buffers: 100+ MB on PROTEINS). glibc hands blocks over 32 MB back to the
    kernel on ``free``, so each step pays page faults on fresh memory again; this
    alone cost about 40% of a PROTEINS step (measured in docs/batched.md). Call it once
    at the start of a training *process* (it changes ``mallopt`` for the whole process;
    the library never calls it on import). Returns False where it does not apply.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    limit = max(0, min(int(limit), (1 << 31) - 1))
    return bool(mallopt(-3, limit)) and bool(mallopt(-1, (1 << 31) - 1))  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


def needs_lockstep(cell: AMPCell) -> bool:
    """True when the schedule depends on values: halting cells (ACT, Iter) or a learned gate."""
    return cell.kind in ("act", "iter") or bool(cell.gate)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class Unrolled:
    """The states of a batch of runs: buffer rows plus the indices to read them.

    ``states`` (rows, S): row 0 zeros, rows ``1..n_init`` the start states (one per node, or
    one per distinct start state with ``dedup``), then one row per computed delivery. ``final_rows`` (E,) gives, for every (graph, run, node) in
    that order, the row of its final state; ``back`` (rows,) the row of each row's
    previous state (0 past the start state). ``entry_offsets[g]`` is the first entry of
    graph g; ``shapes[g] = (runs, n)``. ``reasons`` / ``deliveries`` per run (graphs
    concatenated). ``records`` (when asked for) per run: ``(event, dst, msg_id, cause_id)``.
    ``final_rows`` is -1 for an entry whose final state ``unroll(keep=...)`` did not compute
    (:meth:`final`, :meth:`final_of` and :meth:`history` refuse to read it).
    ``compact``: the run was checkpointed and ``states`` holds a zero row and the final
    states only (``back`` is all zeros; :meth:`history` with k > 1 refuses).
    ``program``: the compiled level program whose fixed rows ``final_rows`` and ``back`` are
    (``None`` for lock-step and checkpointed runs); readouts keep what they derive from those
    rows with it (:meth:`sum_by`).
    """

    states: Tensor
    final_rows: Tensor
    back: Tensor
    entry_offsets: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]
    reasons: tuple[str, ...]
    deliveries: tuple[int, ...]
    batches: int
    records: Optional[list] = None
    compact: bool = False
    program: Optional["_Program"] = field(default=None, repr=False)

    def final(self) -> Tensor:
        """(E, S): the final packed state of every (graph, run, node)."""
        return self.states.index_select(0, self._rows(self.final_rows, None))

    def final_of(self, entries: Tensor) -> Tensor:
        """(len(entries), S): the final packed states of these entries (see :meth:`entry`)."""
        return self.states.index_select(0, self._rows(self.final_rows.index_select(0, entries), entries))

    def _rows(self, rows: Tensor, entries: Optional[Tensor]) -> Tensor:
        """``rows``, after checking that none is an entry left out by ``unroll(keep=...)`` (row -1)."""
        bad = rows < 0
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            e = i if entries is None else int(entries[i])
            raise ValueError(f"the final state of entry {e} was not computed: this run was unrolled with "
                             f"keep=..., which computes only the deliveries that the kept entries depend on")
        return rows

    def per_graph(self) -> list[Tensor]:
        """Final states as one ``(runs, n, S)`` tensor per graph (the :class:`Executor` layout)."""
        flat = self.final()
        S = flat.shape[1]
        return [flat[a:b].reshape(r, n, S) for (a, b), (r, n) in
                zip(zip(self.entry_offsets[:-1], self.entry_offsets[1:]), self.shapes)]

    def entry(self, graph: int, run: int, node: int) -> int:
        """Index into ``final_rows`` of (graph, run, node)."""
        r, n = self.shapes[graph]
        if not (0 <= run < r and 0 <= node < n):
            raise IndexError(f"(run {run}, node {node}) out of range for graph {graph} with {r} runs, {n} nodes")
        return self.entry_offsets[graph] + run * n + node

    def history(self, entries: Tensor, k: int) -> Tensor:
        """(len(entries), k, S): the last k states of each entry, oldest first, zero-padded on the left.

        The start state (encoding) counts as a state, as in the authors' skip readout
        (reference notes 1.4: the last 4 states of a start node, left-padded with zeros).
        """
        idx = self._history_rows(entries, k)
        return self.states.index_select(0, idx.reshape(-1)).reshape(idx.shape[0], k, -1)

    def _history_rows(self, entries: Tensor, k: int) -> Tensor:
        """(len(entries), k): the rows of the last k states of each entry, oldest first (see :meth:`history`)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if self.compact and k > 1:
            raise ValueError("history(k > 1) needs every state row; this run was checkpointed "
                             "(BatchedExecutor(segment_rows=0) keeps them all)")
        rows = [self._rows(self.final_rows.index_select(0, entries), entries)]
        for _ in range(k - 1):
            rows.append(self.back.index_select(0, rows[-1]))
        return torch.stack(rows[::-1], dim=1)

    def sum_by(self, entries: Tensor, group: Tensor, groups: int, k: Optional[int] = None) -> Tensor:
        """``out[g] = sum of final_of(entries)[i] over i with group[i] == g``: ``(groups, S)``; with ``k``,
        the same over :meth:`history` ``(entries, k)``: ``(groups, k, S)``.

        The sum readout of a batch (a graph's node states, Section 5.3), equal to
        ``zeros(groups, S).index_add_(0, group, final_of(entries))`` up to float summation
        order, computed as one sparse count matrix times ``states``: entries of a group that
        read the same row (with ``dedup``, most do) add it once, times their number, and the
        backward pass is the transposed product. A cell's ``output`` selects columns of a
        state, so ``output(sum_by(...)) == sum of output(...)``.
        """
        V.positive_int("groups", groups)
        idx = self._history_rows(entries, 1 if k is None else V.positive_int("k", k))  # (E, k)
        group = torch.as_tensor(group, device=idx.device)
        if group.is_floating_point() or group.is_complex() or group.dtype == torch.bool:
            raise ValueError(f"group must hold integer group numbers, got dtype {group.dtype}")
        if group.shape != (idx.shape[0],):
            raise ValueError(f"group has shape {tuple(group.shape)}, expected ({idx.shape[0]},): one per entry")
        group = group.long()
        if idx.shape[0] and not bool(((group >= 0) & (group < groups)).all()):
            raise ValueError(f"group values must lie in 0..{groups - 1}")
        kk, R = idx.shape[1], self.states.shape[0]

        def build() -> tuple[Tensor, Tensor]:
            out_rows = (group.unsqueeze(1) * kk + torch.arange(kk, device=idx.device)).reshape(-1)  # g * k + j
            keys, counts = torch.unique(out_rows * R + idx.reshape(-1), return_counts=True)  # sorted: coalesced
            coo = torch.sparse_coo_tensor(torch.stack([keys // R, keys % R]), counts.to(self.states.dtype),
                                          (groups * kk, R), is_coalesced=True, check_invariants=False)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR times dense is what we use
                warnings.simplefilter("ignore", UserWarning)
                return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()

        if self.program is None:
            matrix, transposed = build()
        else:  # a training loop reads the same entries every epoch: one matrix per program and readout
            matrix, transposed = _cached_on(self.program, "sum_by", [
                idx.cpu().numpy(), group.cpu().numpy(), f"{groups} {R} {self.states.dtype} {idx.device}"], build)
        out = _CountSum.apply(self.states, matrix, transposed)
        return out if k is None else out.reshape(groups, kk, -1)


class _CountSum(torch.autograd.Function):
    """``matrix @ states`` for a sparse CSR ``matrix`` whose transpose is given (also CSR): the backward
    pass is ``transposed @ grad``, one row-parallel product like the forward (torch's own sparse
    backward transposes and converts the matrix on every call, 2-8x slower here)."""

    @staticmethod
    def forward(ctx, states: Tensor, matrix: Tensor, transposed: Tensor) -> Tensor:  # noqa: D102
        ctx.transposed = transposed
        return matrix @ states

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return ctx.transposed @ grad.contiguous(), None, None


# --------------------------------------------------------------------------- static programs
@dataclass(frozen=True, eq=False)
class _Program:
    """A compiled level schedule for a batch of graphs (CPU tensors; moved per device on demand).

    ``missing``: the entries (indices into ``final_rows``) whose final state a pruned
    program does not compute (:func:`_prune`; their ``final_rows`` point at row 0).
    ``init_nodes``: the node (row of the features) that each start-state row encodes, when
    :func:`_dedup` kept one row per distinct start state; ``None``: one row per node.
    """

    n_init: int
    n_starts: int
    bounds: tuple[tuple[int, int], ...]
    state_src: Tensor
    msg_src: Tensor
    final_rows: Tensor
    reasons: tuple[str, ...]
    deliveries: tuple[int, ...]
    schedules: tuple[Schedule, ...]
    msg_index: Tensor
    n_messages: int
    missing: Optional[Tensor] = None
    init_nodes: Optional[Tensor] = None
    _device: dict = field(default_factory=dict)

    @property
    def num_deliveries(self) -> int:
        return int(self.state_src.shape[0])

    def on(self, device: torch.device) -> tuple[Tensor, ...]:
        """(state_src, msg_src, final_rows, msg_index) on ``device`` (copied once per device)."""
        key = str(device)
        if key not in self._device:
            self._device[key] = tuple(t.to(device) for t in (self.state_src, self.msg_src, self.final_rows,
                                                             self.msg_index))
        return self._device[key]

    def marked_finals(self, device: torch.device) -> Tensor:
        """``final_rows`` on ``device`` with -1 for the ``missing`` entries (built once per device)."""
        key = ("marked", str(device))
        if key not in self._device:
            self._device[key] = self.on(device)[2].index_fill(0, self.missing.to(device), -1)
        return self._device[key]

    def back(self, device: torch.device) -> Tensor:
        """(1 + n_init + D,) the row of each row's previous state (0 past the start state); built on demand."""
        key = ("back", str(device))
        if key not in self._device:
            self._device[key] = torch.cat([torch.zeros(1 + self.n_init, dtype=torch.long),
                                           self.state_src.long()]).to(device)
        return self._device[key]


def _compile(schedules: Sequence[Schedule], msg_rows: Sequence[np.ndarray], n_messages: int,
             keep_schedules: bool = True) -> _Program:
    """Merge per-graph schedules into one level-ordered program (see the module docstring's layout).

    ``msg_rows[g]`` maps graph g's start slots to rows of the caller's ``messages``; the
    start-message buffer holds those rows in slot order (graph after graph).
    """
    n_nodes = np.array([s.num_nodes for s in schedules], dtype=np.int64)
    n_del = np.array([s.num_deliveries for s in schedules], dtype=np.int64)
    init_off = np.concatenate([[0], np.cumsum(n_nodes)])
    del_off = np.concatenate([[0], np.cumsum(n_del)])
    n_init, D = int(init_off[-1]), int(del_off[-1])
    msg_index = np.concatenate(msg_rows) if msg_rows else np.zeros(0, dtype=np.int64)
    slot_off = np.concatenate([[0], np.cumsum([len(m) for m in msg_rows])]).astype(np.int64)
    n_starts = int(len(msg_index))
    narrow = np.int32 if 1 + n_init + n_starts + D < 2 ** 31 - 1 else np.int64
    if D:
        # level order (stable: processing order within a level), then each delivery's source rows,
        # graph by graph into preallocated arrays (few D-sized temporaries: one large run is ~1e7 rows)
        level = schedules[0].level if len(schedules) == 1 else np.concatenate([s.level for s in schedules])
        order = np.argsort(level, kind="stable")
        counts = np.bincount(level)
        del level
        pos = np.empty(D, dtype=np.int64)
        pos[order] = np.arange(D, dtype=np.int64)
        base = 1 + n_init
        state_src = np.empty(D, dtype=np.int64)
        msg_src = np.empty(D, dtype=np.int64)
        for g, s in enumerate(schedules):
            lo, hi = int(del_off[g]), int(del_off[g + 1])
            for out, ref, first, other in ((state_src, s.prev, base, 1 + init_off[g] + s.node),
                                           (msg_src, s.cause, n_starts, slot_off[g] + s.slot)):
                has = ref >= 0
                idx = ref.astype(np.int64)
                idx[~has] = 0
                idx += lo
                part = out[lo:hi]
                np.take(pos, idx, out=part)
                del idx
                part += first
                part[~has] = other[~has]
        state_src = state_src[order].astype(narrow)
        msg_src = msg_src[order].astype(narrow)
        del order
        edges = np.concatenate([[0], np.cumsum(counts)])
        bounds = tuple((int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a)
    else:
        pos = np.zeros(0, dtype=np.int64)
        state_src = msg_src = np.zeros(0, dtype=narrow)
        bounds = ()
    finals = []
    for g, s in enumerate(schedules):
        f = s.final
        init_rows = 1 + init_off[g] + np.arange(s.num_nodes, dtype=np.int64)
        rows = np.where(f >= 0, 1 + n_init + pos[np.where(f >= 0, f + del_off[g], 0)] if D else 0, init_rows[None, :])
        finals.append(rows.reshape(-1))
    final_rows = np.concatenate(finals) if finals else np.zeros(0, dtype=np.int64)
    reasons = tuple(r for s in schedules for r in s.reasons)
    per_run = tuple(int(c) for s in schedules for c in np.bincount(s.run, minlength=s.num_runs)) if D else \
        tuple(0 for s in schedules for _ in range(s.num_runs))
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
    return _Program(n_init, n_starts, bounds, torch.from_numpy(state_src), torch.from_numpy(msg_src), t(final_rows),
                    reasons, per_run,
                    tuple(schedules) if keep_schedules else (), t(msg_index), int(n_messages))


def _live(program: _Program, keep: np.ndarray) -> np.ndarray:
    """(D,) bool: the deliveries in the causal past of the final states of the ``keep`` entries.

    A delivery's state is read by the next delivery at its node (``state_src``) and its
    outgoing message by the deliveries it causes (``msg_src``), both at lower levels, so
    one sweep over the levels in reverse order closes the set.
    """
    base, K = 1 + program.n_init, program.n_starts
    ssrc, msrc = program.state_src.numpy(), program.msg_src.numpy()
    live = np.zeros(program.num_deliveries, dtype=bool)
    rows = program.final_rows.numpy()[keep]
    live[rows[rows >= base] - base] = True
    for a, b in reversed(program.bounds):
        idx = np.flatnonzero(live[a:b]) + a
        p, c = ssrc[idx], msrc[idx]
        live[p[p >= base] - base] = True
        live[c[c >= K] - K] = True
    return live


def _prune(program: _Program, keep: np.ndarray) -> _Program:
    """The program restricted to the deliveries that the final states of ``keep`` depend on.

    The schedule is the same (budget, reasons and per-run delivery counts count every
    delivery); only the rows nobody reads are not computed. Each kept row has the same
    inputs as in the full program, so its values -- and the gradients, to which a row that
    reaches no kept state adds exactly zero -- are the same. Entries whose final state is
    dropped are listed in ``missing``; their ``final_rows`` point at row 0.
    """
    live = _live(program, keep)
    return _remap(program, live, np.where(live, np.cumsum(live) - 1, -1))


def _dedup(program: _Program, init_class: np.ndarray, start_class: np.ndarray) -> _Program:
    """The program with each level's equal deliveries computed once (exact common subexpressions).

    A delivery's new state and outgoing message are a function of its two inputs only, the
    receiver's state row and the message row, so two deliveries of a level whose inputs are
    equal have equal outputs: value numbering, leaves first. ``init_class`` numbers the
    start states (rows ``1..n_init``), ``start_class`` the start messages (slots), equal
    numbers for equal rows; a delivery's number is that of its pair (state number,
    message number) within its level. The first delivery of each number is kept and every
    reader of the others reads it instead, so the backward pass adds their gradients into
    it: the parameter gradient ``J^T (g_1 + g_2) = J^T g_1 + J^T g_2`` is the same, up to
    float summation order (the Table 4 readout: 0.2-3% of the rows, docs/batched.md).
    Leaves whose own gradient is wanted (start messages that require grad) must be given
    distinct numbers.
    """
    if len(np.unique(init_class)) == len(init_class) and len(np.unique(start_class)) == len(start_class):
        # distinct leaves: by induction over the levels every row's number is its own (a message row
        # reaches each receiver once, and a node's state rows are in different levels), so there is
        # nothing to merge -- one large run with continuous features (docs/batched.md) pays no more
        return _merge_messages(program, start_class)
    base, K, D = 1 + program.n_init, program.n_starts, program.num_deliveries
    ssrc, msrc = program.state_src.numpy(), program.msg_src.numpy()
    state_cls = np.empty(base + D, dtype=np.int64)
    state_cls[0] = 0
    state_cls[1:base] = 1 + init_class
    msg_cls = np.empty(K + D, dtype=np.int64)
    msg_cls[:K] = start_class
    nxt = 2 + max(int(init_class.max(initial=-1)), int(start_class.max(initial=-1)))  # above every leaf number
    rep = np.zeros(D, dtype=bool)
    first_of = np.empty(D, dtype=np.int64)     # the kept delivery that computes each delivery's values
    for a, b in program.bounds:
        sc, mc = state_cls[ssrc[a:b]], msg_cls[msrc[a:b]]
        if nxt < 1 << 31:   # both numbers < nxt: one int64 per pair
            _, first, inverse = np.unique(sc * nxt + mc, return_index=True, return_inverse=True)
        else:
            _, first, inverse = np.unique(np.stack([sc, mc], 1), axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        state_cls[base + a:base + b] = msg_cls[K + a:K + b] = nxt + inverse
        nxt += len(first)
        rep[a + first] = True
        first_of[a:b] = a + first[inverse]
    if not rep.all():
        program = _remap(program, rep, (np.cumsum(rep) - 1)[first_of])
    return _merge_messages(_merge_starts(program, init_class), start_class)


def _merge_messages(program: _Program, start_class: np.ndarray) -> _Program:
    """The program with one start-message slot per number of ``start_class`` that a delivery reads
    (its first slot; slots nobody reads are dropped), and the delivery messages moved up to follow;
    ``msg_index`` keeps the caller's row of each slot left."""
    K = program.n_starts
    msrc = program.msg_src.numpy()
    read = np.zeros(K, dtype=bool)
    read[msrc[msrc < K]] = True
    cls = np.where(read, start_class, -1)
    _, first = np.unique(cls, return_index=True)
    first = np.sort(first[cls[first] >= 0])             # the first read slot of each number, in slot order
    if len(first) == K:
        return program
    slot_of = np.zeros(K, dtype=np.int64)                # a read slot -> the kept slot of its number
    nums = cls[first]
    order = np.argsort(nums, kind="stable")
    slot_of[read] = order[np.searchsorted(nums[order], cls[read])]
    msrc = msrc.astype(np.int64)
    start = msrc < K
    msrc[start] = slot_of[msrc[start]]
    msrc[~start] -= K - len(first)
    return dataclasses.replace(program, n_starts=len(first), msg_src=torch.from_numpy(msrc).to(program.msg_src.dtype),
                               msg_index=program.msg_index[torch.from_numpy(first)], _device={})


def _merge_starts(program: _Program, init_class: np.ndarray) -> _Program:
    """The program with one start-state row per number of ``init_class`` (the row of its first
    node), every reader of the others reading it, and the delivery rows moved up to follow;
    ``init_nodes`` lists the node each start row encodes (the executor encodes only those)."""
    n = program.n_init
    _, first, inverse = np.unique(init_class, return_index=True, return_inverse=True)
    if len(first) == n:
        return program
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first))
    row_of = np.arange(1 + n + program.num_deliveries, dtype=np.int64)  # old row -> new row
    row_of[1:1 + n] = 1 + rank[inverse.reshape(-1)]
    row_of[1 + n:] -= n - len(first)
    ssrc = torch.from_numpy(row_of[program.state_src.numpy()]).to(program.state_src.dtype)
    finals = torch.from_numpy(row_of[program.final_rows.numpy()])
    return dataclasses.replace(program, n_init=len(first), state_src=ssrc, final_rows=finals,
                               init_nodes=torch.from_numpy(first[order].astype(np.int64)), _device={})


def _remap(program: _Program, kept: np.ndarray, new: np.ndarray) -> _Program:
    """The program that computes only the ``kept`` deliveries; a read of delivery d reads row
    ``new[d]`` of the kept ones (its own, or one with equal values); ``final_rows`` of
    entries whose row is not kept and not redirected (``new < 0``) become ``missing``."""
    base, K = 1 + program.n_init, program.n_starts
    ssrc = program.state_src.numpy()[kept].astype(np.int64)
    msrc = program.msg_src.numpy()[kept].astype(np.int64)
    own = ssrc >= base
    ssrc[own] = base + new[ssrc[own] - base]
    own = msrc >= K
    msrc[own] = K + new[msrc[own] - K]
    counts = [int(kept[a:b].sum()) for a, b in program.bounds]
    edges = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    bounds = tuple((int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a)
    finals = program.final_rows.numpy().copy()
    delivered = finals >= base
    moved = np.zeros(finals.shape, dtype=bool)
    target = np.full(finals.shape, -1, dtype=np.int64)
    target[delivered] = new[finals[delivered] - base]
    moved[delivered] = target[delivered] >= 0
    finals[moved] = base + target[moved]
    missing = np.flatnonzero(delivered & ~moved)
    if program.missing is not None:
        missing = np.union1d(missing, program.missing.numpy())
    finals[missing] = 0
    narrow = program.state_src.dtype
    return dataclasses.replace(program, bounds=bounds, state_src=torch.from_numpy(ssrc).to(narrow),
                               msg_src=torch.from_numpy(msrc).to(narrow), final_rows=torch.from_numpy(finals),
                               missing=torch.from_numpy(missing) if len(missing) else None, _device={})


# --------------------------------------------------------------------------- lock-step driver
class _LockStepDriver:
    """All runs advance one instant at a time; batch i holds the i-th copy of every receiver.

    Per run: an :class:`EventQueue` (engine order), the row of each node's current
    state, and a processed-delivery count (drops do not count; the budget cuts exactly).
    """

    needs_flags = True

    def __init__(self, graphs: Sequence[Graph], runs: Sequence[Sequence[tuple[Sequence[int], int]]],
                 msg_rows: Sequence[np.ndarray], budget: int, model: DelayModel, fifo: bool, ties: str,
                 init_halted: list[bool], device: torch.device, record: bool) -> None:
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
                q = EventQueue(graph.neighbors, model, seed, fifo, ties)
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
def _forward_levels(cell: AMPCell, driver, init_states: Tensor, start_msgs: Tensor,
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


# --------------------------------------------------------------------------- levels: segments, checkpoints
@dataclass(frozen=True, eq=False)
class _Segments:
    """A level program cut into segments of whole levels, with what crosses each cut (once per plan).

    Segment s covers delivery positions ``starts[s]..starts[s+1]`` (level order). Its
    local state buffer is ``[carried-in state rows | its own deliveries]`` and likewise
    for messages; :meth:`cin_state` / :meth:`cin_msg` give the global rows carried in (sorted;
    segment 0: every start state and start message). A row is carried into s when it was
    made before the cut and is read at or after it (or is a final state).

    Checkpoints are one *store* per buffer: every row carried across at least one cut is
    kept once, however many cuts it crosses (the start states of nodes that a segment does
    not touch are not copied again per segment). ``store_state`` / ``store_msg`` are those
    global rows (sorted); ``take_*[s]`` the store positions of segment s's carried-in rows;
    ``put_*[s] = (a, b, local)``: the store positions ``a..b`` are segment s's own rows
    ``local`` (rows made in s and carried further). Index arrays are int32 where the rows
    fit, so a cut costs about 4 bytes per carried row. ``cout_last`` are the last segment's
    local rows of the final states (when ``compact``). ``levels[s]`` are the level sizes.
    """

    starts: tuple[int, ...]
    levels: tuple[tuple[int, ...], ...]
    store_state: np.ndarray
    store_msg: np.ndarray
    take_state: tuple[Tensor, ...]
    take_msg: tuple[Tensor, ...]
    put_state: tuple[tuple[int, int, Tensor], ...]
    put_msg: tuple[tuple[int, int, Tensor], ...]
    cout_last: Tensor
    out_rows: np.ndarray
    compact: bool

    @property
    def count(self) -> int:
        return len(self.levels)

    def cin_state(self, s: int) -> np.ndarray:
        return self.store_state[self.take_state[s].cpu().numpy()]

    def cin_msg(self, s: int) -> np.ndarray:
        return self.store_msg[self.take_msg[s].cpu().numpy()]


def _local(ids: np.ndarray, carried: np.ndarray, first_own: int) -> np.ndarray:
    """Global rows -> rows of a segment's local buffer (``first_own``: the global row of its first delivery)."""
    own = ids >= first_own
    out = np.empty(ids.shape, dtype=np.int64)
    out[own] = len(carried) + ids[own] - first_own
    out[~own] = np.searchsorted(carried, ids[~own])
    return out


def _cut(program: "_Program", rows: Sequence[int], device: torch.device) -> _Segments:
    """Cut ``program`` into segments of about ``rows[s]`` deliveries (whole levels; the last target repeats)."""
    D = program.num_deliveries
    base, K = 1 + program.n_init, program.n_starts
    sizes = [b - a for a, b in program.bounds]
    starts, levels, cur, acc = [0], [], [], 0
    for k in sizes:
        if acc and acc + k > rows[min(len(levels), len(rows) - 1)]:
            levels.append(tuple(cur))
            starts.append(starts[-1] + acc)
            cur, acc = [], 0
        cur.append(k)
        acc += k
    levels.append(tuple(cur))
    C = len(levels)
    ssrc, msrc = program.state_src.numpy(), program.msg_src.numpy()
    finals = program.final_rows.numpy()
    compact = C > 1
    P = np.asarray(starts, dtype=np.int64)

    narrow = np.int32 if base + K + D < 2 ** 31 - 1 else np.int64

    def carry(n_in: int, readers: np.ndarray, final: Optional[np.ndarray]) -> tuple:
        """(store rows, take per segment, put per segment, segment C-1's carried rows) of one buffer.

        Segment s carries in the rows made before it that it reads (the last segment also
        the final states made before it); rows merely passing through stay in the store.
        The store holds every carried row once, and every row made before the first cut
        (start states / start messages). The index arrays of all segments are packed in one
        array each (few large allocations: no heap left full of small holes)."""
        if not compact:
            rows = np.arange(n_in, dtype=np.int64)
            return rows, (t(rows),), ((0, 0, t(rows[:0])),), rows
        ends = np.append(P[1:], D)
        cins = []
        for s in range(C):
            r = readers[P[s]:ends[s]]
            r = r[r < n_in + P[s]]
            if final is not None and s == C - 1:
                r = np.concatenate([r, final[final < n_in + P[s]]])
            cins.append(np.unique(r))
        store = np.unique(np.concatenate(cins + [np.arange(n_in, dtype=np.int64)]))
        counts = np.array([len(c) for c in cins], dtype=np.int64)
        offs = np.concatenate([[0], np.cumsum(counts)])
        take = np.empty(int(offs[-1]), dtype=narrow)
        for s in range(C):
            take[offs[s]:offs[s + 1]] = np.searchsorted(store, cins[s])
        made = np.maximum(np.searchsorted(P, store - n_in, side="right") - 1, 0)
        put = (counts[made] + store - n_in - P[made]).astype(narrow)   # rows < n_in: never used
        take_t, put_t = torch.from_numpy(take).to(device), torch.from_numpy(put).to(device)
        ab = np.stack([np.searchsorted(store, P + n_in), np.searchsorted(store, ends + n_in)], axis=1)
        puts = tuple((int(a), int(b), put_t[a:b]) for a, b in ab.tolist())
        takes = tuple(take_t[offs[s]:offs[s + 1]] for s in range(C))
        return store, takes, puts, cins[-1]

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=narrow)).to(device)  # noqa: E731
    store_s, take_s, put_s, cin_last = carry(base, ssrc, finals if compact else None)
    store_m, take_m, put_m, _ = carry(K, msrc, None)
    out_rows = np.unique(finals) if compact else np.zeros(0, dtype=np.int64)
    cout_last = t(_local(out_rows, cin_last, base + starts[-1]))
    return _Segments(tuple(int(p) for p in starts), tuple(levels), store_s, store_m, take_s, take_m, put_s, put_m,
                     cout_last, out_rows, compact)


def _segment_index(program: "_Program", seg: _Segments, s: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The local (state, message) source rows of segment s's deliveries."""
    lo = seg.starts[s]
    hi = seg.starts[s + 1] if s + 1 < seg.count else program.num_deliveries
    if not seg.compact:
        ssrc, msrc = program.on(device)[:2]
        return ssrc, msrc
    base, K = 1 + program.n_init, program.n_starts
    ss = _local(program.state_src.numpy()[lo:hi], seg.cin_state(s), base + lo)
    ms = _local(program.msg_src.numpy()[lo:hi], seg.cin_msg(s), K + lo)
    return torch.from_numpy(ss).to(device), torch.from_numpy(ms).to(device)


def _run_segment(kernel: StepKernel, levels: tuple[int, ...], ssrc: Tensor, msrc: Tensor, s_in: Tensor,
                 m_in: Tensor, keep: bool) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """Forward through one segment: local buffers ``[carried | own rows]`` and (``keep``) the saved activations."""
    c, cm, P = s_in.shape[0], m_in.shape[0], int(ssrc.shape[0])
    states = s_in.new_empty((c + P, s_in.shape[1]))
    states[:c] = s_in
    msgs = m_in.new_empty((cm + P, m_in.shape[1]))
    msgs[:cm] = m_in
    act = s_in.new_empty((P, kernel.act_size)) if keep else None
    parts = zip(ssrc.split(levels), msrc.split(levels), states[c:].split(levels), msgs[cm:].split(levels),
                act.split(levels) if act is not None else [None] * len(levels))
    for ss, ms, new, out, a in parts:
        kernel.forward(states.index_select(0, ss), msgs.index_select(0, ms), new, out, a)
    return states, msgs, act


def _i64(index: Tensor) -> Tensor:
    """``index`` as int64 for ``index_add_``: the plans store int32 rows, and ``index_add_`` with int32
    indices takes a path about 5x slower on CPU (torch 2.13: 15,000 rows of 16 floats, 1.0 ms against 0.22)."""
    return index if index.dtype == torch.long else index.long()


#: Rows per parameter-gradient product in the backward pass.
PARAM_CHUNK = 1 << 15


def _back_segment(kernel: StepKernel, levels: tuple[int, ...], ssrc: Tensor, msrc: Tensor, states: Tensor,
                  msgs: Tensor, act: Tensor, g_states: Tensor, g_msgs: Tensor, grads: dict) -> None:
    """Backward through one segment (levels in reverse); input gradients are scatter-added in place."""
    c, cm = states.shape[0] - act.shape[0], msgs.shape[0] - act.shape[0]
    ssrc, msrc = _i64(ssrc), _i64(msrc)
    parts = list(zip(ssrc.split(levels), msrc.split(levels), states[c:].split(levels), act.split(levels),
                     g_states[c:].split(levels), g_msgs[cm:].split(levels)))
    for ss, ms, new, a, gn, go in reversed(parts):
        g_h, g_m = kernel.backward(states.index_select(0, ss), msgs.index_select(0, ms), new, a, gn, go)
        g_states.index_add_(0, ss, g_h)
        g_msgs.index_add_(0, ms, g_m)
    for lo in range(0, act.shape[0], PARAM_CHUNK):  # parameter gradients: large products, bounded temporaries
        hi = min(lo + PARAM_CHUNK, act.shape[0])
        kernel.param_grads(states.index_select(0, ssrc[lo:hi]), msgs.index_select(0, msrc[lo:hi]),
                           states[c + lo: c + hi], act[lo:hi], g_msgs[cm + lo: cm + hi], grads)


def _forward_segments(kernel: StepKernel, program: "_Program", seg: _Segments, init_states: Tensor,
                      start_msgs: Tensor, device: torch.device, build: bool) -> tuple[Tensor, tuple, tuple]:
    """All segments forward; fills the checkpoint stores (each carried row once) and keeps the last one's work."""
    s_in = torch.cat([init_states.new_zeros((1, init_states.shape[1])), init_states.detach()])
    m_in = start_msgs.detach()
    stores = None
    if seg.compact:
        stores = (s_in.new_empty((len(seg.store_state), s_in.shape[1])),
                  m_in.new_empty((len(seg.store_msg), m_in.shape[1])))
        stores[0][:s_in.shape[0]] = s_in   # segment 0 carries in every start state and start message
        stores[1][:m_in.shape[0]] = m_in
    for s in range(seg.count):
        last = s == seg.count - 1
        if seg.compact:
            s_in, m_in = (stores[0].index_select(0, seg.take_state[s]), stores[1].index_select(0, seg.take_msg[s]))
        ssrc, msrc = _segment_index(program, seg, s, device)
        states, msgs, act = _run_segment(kernel, seg.levels[s], ssrc, msrc, s_in, m_in, keep=build and last)
        if not last:
            for store, (a, b, local), buf in ((stores[0], seg.put_state[s], states), (stores[1], seg.put_msg[s], msgs)):
                if b > a:
                    torch.index_select(buf, 0, local, out=store[a:b])
    if seg.compact:
        out = torch.cat([states.new_zeros((1, states.shape[1])), states.index_select(0, seg.cout_last)])
    else:
        out = states
    return out, stores, (states, msgs, act, ssrc, msrc)


class _LevelUnroll(torch.autograd.Function):
    """Levels with hand-written steps; backward recomputes each segment from the checkpoint stores (BPTT)."""

    @staticmethod
    def forward(ctx, kernel, program, seg, device, init_states, start_msgs, *params):  # type: ignore[override]
        out, stores, last = _forward_segments(kernel, program, seg, init_states, start_msgs, device, True)
        ctx.work = (kernel, program, seg, device, stores, last)
        return out

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        kernel, program, seg, device, stores, last = ctx.work
        ctx.work = None
        grads: dict = {}
        C = seg.count
        if seg.compact:
            # gradients of the stored rows: every segment that reads a carried row adds its part
            g_store = (stores[0].new_zeros(stores[0].shape), stores[1].new_zeros(stores[1].shape))
        for s in reversed(range(C)):
            if s == C - 1:
                states, msgs, act, ssrc, msrc = last
                last = None
            else:
                ssrc, msrc = _segment_index(program, seg, s, device)
                s_in = stores[0].index_select(0, seg.take_state[s])
                m_in = stores[1].index_select(0, seg.take_msg[s])
                states, msgs, act = _run_segment(kernel, seg.levels[s], ssrc, msrc, s_in, m_in, keep=True)
                del s_in, m_in
            if not seg.compact:
                gs = g_out.contiguous().clone()
                gm = msgs.new_zeros(msgs.shape)
            else:
                gs = states.new_zeros(states.shape)
                gm = msgs.new_zeros(msgs.shape)
                if s == C - 1:
                    gs.index_add_(0, _i64(seg.cout_last), g_out[1:])
                else:   # rows made here and read later: their gradients are complete (later segments are done)
                    for g, g_st, (a, b, local) in ((gs, g_store[0], seg.put_state[s]),
                                                   (gm, g_store[1], seg.put_msg[s])):
                        if b > a:
                            g.index_add_(0, _i64(local), g_st[a:b])
            _back_segment(kernel, seg.levels[s], ssrc, msrc, states, msgs, act, gs, gm, grads)
            if seg.compact:
                c, cm = states.shape[0] - act.shape[0], msgs.shape[0] - act.shape[0]
                g_store[0].index_add_(0, _i64(seg.take_state[s]), gs[:c])
                g_store[1].index_add_(0, _i64(seg.take_msg[s]), gm[:cm])
            del states, msgs, act
            if s:
                del gs, gm
        base, K = 1 + program.n_init, program.n_starts
        if seg.compact:
            g_init, g_msgs = g_store[0][1:base], g_store[1][:K]
        else:
            g_init, g_msgs = gs[1:base], gm[:K]
        p_grads = [grads.get(id(p)) if p.requires_grad else None for p in kernel.params]
        return (None, None, None, None, g_init, g_msgs, *p_grads)


# --------------------------------------------------------------------------- the executor
def _entries(name: str, value: Union[Tensor, Sequence[int]], count: int) -> np.ndarray:
    """``value`` as an int64 array of entry indices in ``0..count-1`` (or one clear error)."""
    a = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(list(value))
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D sequence of integer entries, got {V.show(value)}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= count):
        raise ValueError(f"{name}: entries must be in 0..{count - 1} (one per graph, run and node), "
                         f"got {int(a.min())}..{int(a.max())}")
    return a


def _flat_keep(graphs: Sequence[Union[GraphData, Graph]], runs_per_graph: Sequence[Sequence[RunSpec]],
               keep: Sequence[Union[Tensor, Sequence[int]]]) -> tuple[Tensor, list[int]]:
    """Per-graph entries ``run * n + node`` -> one CPU tensor of :meth:`BatchedExecutor.unroll` entries, and the
    count per graph (one clear error for a bad list)."""
    if len(keep) != len(graphs):
        raise ValueError(f"{len(graphs)} graphs but {len(keep)} keep lists")
    entries, off = [], 0
    for g, (graph, runs, k) in enumerate(zip(graphs, runs_per_graph, keep)):
        count = len(runs) * _graph(graph).num_nodes
        _entries(f"keep[{g}]", k, count)
        entries.append(torch.as_tensor(k, dtype=torch.long).cpu().reshape(-1) + off)
        off += count
    flat = torch.cat(entries) if entries else torch.zeros(0, dtype=torch.long)
    return flat, [len(e) for e in entries]


def _cached_on(program: _Program, kind: str, arrays: Sequence[Union[np.ndarray, str]], build) -> Any:
    """``build()``, kept with ``program`` under ``(kind, digest of arrays)`` (the last few of a kind: a
    training loop passes the same arrays every epoch)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.encode() if isinstance(a, str) else a.tobytes())
        h.update(b"|")
    key = (kind, h.hexdigest())
    if key not in program._device:
        old = [k for k in program._device if isinstance(k, tuple) and k[0] == kind]
        for k in old[: max(0, len(old) - 3)]:
            del program._device[k]
        program._device[key] = build()
    return program._device[key]


def _pruned(program: _Program, keep: np.ndarray) -> _Program:
    """:func:`_prune` of ``program``, kept with it (one per ``keep`` array, by its bytes)."""
    return _cached_on(program, "keep", [keep], lambda: _prune(program, keep))


def _deduped(program: _Program, init_class: np.ndarray, start_class: np.ndarray) -> _Program:
    """:func:`_dedup` of ``program``, kept with it (one per pair of leaf numberings, by their bytes)."""
    return _cached_on(program, "dedup", [init_class, start_class], lambda: _dedup(program, init_class, start_class))


def _row_classes(rows: Tensor) -> np.ndarray:
    """Each row's index among the distinct rows of a 2-D tensor: byte-equal rows get the same index."""
    a = np.ascontiguousarray(rows.detach().cpu().contiguous().view(torch.uint8).numpy())
    v = a.view(np.dtype((np.void, max(1, a.shape[1])))).reshape(-1) if a.shape[1] else np.zeros(len(a), "V1")
    return np.unique(v, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _start_classes(messages: Tensor, msg_index: Tensor) -> np.ndarray:
    """Numbers of the start-message slots (rows ``msg_index`` of ``messages``): equal for equal rows,
    one each when the messages need their own gradients. All rows equal (``ones(M)`` in Tables 2
    and 4) is checked first: free for one broadcast row (stride 0), else one tensor op."""
    n = len(msg_index)
    if messages.requires_grad:
        return np.arange(n, dtype=np.int64)
    if messages.shape[0] == 0 or messages.stride(0) == 0 or bool((messages == messages[:1]).all()):
        return np.zeros(n, dtype=np.int64)  # stride 0: one row broadcast (``row.expand(n, -1)``)
    return _row_classes(messages)[msg_index.numpy()]


def _init_classes(x: Tensor) -> np.ndarray:
    """Equal numbers for start states that are equal because their feature rows are (the cell's
    ``init_state`` is a function of each row); every row its own number when ``x`` needs gradients."""
    if x.requires_grad or x.shape[0] == 0:
        return np.arange(x.shape[0], dtype=np.int64)
    return _row_classes(x)


def _graph(g: Union[GraphData, Graph]) -> Graph:
    return g if isinstance(g, Graph) else graph_of(g)


def _graph_hash(data: Union[GraphData, Graph]) -> str:
    """SHA-256 of a graph's size and neighbour lists, memoised on ``GraphData.meta`` with the engine
    graph it hashes (:func:`graph_of` builds a new one when the edges change)."""
    if isinstance(data, Graph):
        return neighbour_hash(data)
    g = graph_of(data)
    memo = data.meta.get("_batched_hash")
    if memo is None or memo[0] is not g:
        memo = data.meta["_batched_hash"] = (g, neighbour_hash(g))
    return memo[1]


class BatchedExecutor:
    """The batched executor: ``execute`` (one graph, the :class:`Executor` protocol), ``execute_many``
    (a minibatch), ``unroll`` (the low-level call that returns :class:`Unrolled`).

    ``mode``: ``"auto"`` (levels for always-emit cells, lock-step otherwise), ``"levels"``
    or ``"lockstep"``. ``ties``: the same-instant order, ``None`` = the installed engine's.
    Plans are cached (``plan_cache``: per graph; compiled batches: ``program_cache`` entries).
    ``dedup``: the levels driver computes each level's deliveries with equal inputs once
    (equal start states from equal feature rows, equal start messages; :func:`_dedup`);
    ``False`` computes every row (the same values and gradients, slower).
    """

    def __init__(self, mode: str = "auto", ties: Optional[str] = None, plan_cache: Optional[PlanCache] = None,
                 program_cache: int = 8, record: bool = False, segment_rows: Optional[int] = None,
                 dedup: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if ties is not None and ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
        self.mode = mode
        self.ties = ties
        self.plans = plan_cache if plan_cache is not None else PlanCache()
        self.program_cache = program_cache
        self._programs: OrderedDict[tuple, _Program] = OrderedDict()
        self.record = record
        if segment_rows is not None and (isinstance(segment_rows, bool) or not isinstance(segment_rows, int)
                                         or segment_rows < 0):
            raise ValueError(f"segment_rows must be None (auto), 0 (never cut) or a positive int, got {segment_rows!r}")
        self.segment_rows = segment_rows
        self.dedup = V.boolean("dedup", dedup)
        self._classes: OrderedDict[tuple, tuple] = OrderedDict()
        self.last: Optional[Unrolled] = None

    # ------------------------------------------------------------- protocol
    def execute(self, cell: AMPCell, graph: GraphData, runs: Sequence[RunSpec], budget: int,
                delay: Union[str, DelayModel] = "constant", fifo: bool = False) -> Tensor:
        """``(len(runs), n, state_size)`` final packed states, equal to :class:`EngineExecutor`'s."""
        return self.execute_many(cell, [graph], [runs], budget, delay, fifo)[0]

    def execute_many(self, cell: AMPCell, graphs: Sequence[GraphData], runs_per_graph: Sequence[Sequence[RunSpec]],
                     budget: int, delay: Union[str, DelayModel] = "constant", fifo: bool = False,
                     keep: Optional[Sequence[Union[Tensor, Sequence[int]]]] = None) -> list[Tensor]:
        """One ``(runs_g, n_g, S)`` tensor per graph; all runs of all graphs go through the cell together.

        ``keep[g]``: the entries ``run * n_g + node`` of graph g that the caller reads. Then only
        the deliveries they depend on are computed (:meth:`unroll`) and graph g's tensor is
        ``(len(keep[g]), S)``: those entries' final states, in the order given.
        """
        if len(graphs) != len(runs_per_graph):
            raise ValueError(f"{len(graphs)} graphs but {len(runs_per_graph)} run lists")
        starts, seeds, messages = [], [], []
        for runs in runs_per_graph:
            starts.append([tuple(int(v) for v in r.starts) for r in runs])
            seeds.append([V.integer("RunSpec.seed", r.seed) for r in runs])
            for r in runs:
                m = r.messages
                if m.dim() != 2 or m.shape[0] < len(r.starts) or m.shape[1] != cell.msg_size:
                    raise ValueError(f"RunSpec.messages must be (k >= {len(r.starts)}, {cell.msg_size}), "
                                     f"got {tuple(m.shape)}")
                messages.append(m)
        ref = next(cell.parameters())
        msgs = torch.cat(messages).to(ref.device) if messages else ref.new_zeros((0, cell.msg_size))
        widths = [[m.shape[0] for m in (r.messages for r in runs)] for runs in runs_per_graph]
        if keep is None:
            return self.unroll(cell, graphs, starts, seeds, msgs, budget, delay, fifo, message_rows=widths).per_graph()
        flat, sizes = _flat_keep(graphs, runs_per_graph, keep)
        out = self.unroll(cell, graphs, starts, seeds, msgs, budget, delay, fifo, message_rows=widths, keep=flat)
        return list(out.final_of(flat.to(out.final_rows.device)).split(sizes))

    def level_sizes(self, graphs: Sequence[Union[GraphData, Graph]], runs_per_graph: Sequence[Sequence[RunSpec]],
                    budget: int, delay: Union[str, DelayModel] = "constant", fifo: bool = False,
                    keep: Optional[Sequence[Union[Tensor, Sequence[int]]]] = None) -> tuple[int, ...]:
        """Rows per level of the level program that :meth:`execute_many` would run for these runs
        (with ``keep``, per graph as there: the rows it computes for those entries; with ``dedup``
        and ``GraphData`` graphs, each level's distinct rows; empty levels left out).

        The program depends on the graphs, start nodes, budget and delays only, not on a cell
        (always-emit cells); it comes from (and stays in) the program cache, so asking costs
        one planning pass at most. :func:`ampsim.train.synthetic.stack_groups` weighs it:
        a stacked level is K times larger, and from about 512 rows per model on, K stacked
        models cost a CPU more than K single ones (docs/learned_amp.md).
        """
        V.positive_int("budget", budget)
        if len(graphs) != len(runs_per_graph):
            raise ValueError(f"{len(graphs)} graphs but {len(runs_per_graph)} run lists")
        gs = [_graph(g) for g in graphs]
        starts = [[tuple(int(v) for v in r.starts) for r in rr] for rr in runs_per_graph]
        seeds = [[V.integer("RunSpec.seed", r.seed) for r in rr] for rr in runs_per_graph]
        widths = [[r.messages.shape[0] for r in rr] for rr in runs_per_graph]
        program = self._program(graphs, gs, starts, seeds, widths, budget, get_delay(delay), bool(fifo),
                                self.ties or engine_ties())
        if keep is not None:
            program = _pruned(program, _flat_keep(graphs, runs_per_graph, keep)[0].numpy())
        if all(isinstance(g, GraphData) for g in graphs):
            program = self._dedup_for(program, graphs, None, torch.cat([g.x for g in graphs]),
                                      torch.cat([r.messages for rr in runs_per_graph for r in rr]))
        return tuple(b - a for a, b in program.bounds)

    # ------------------------------------------------------------- core
    def unroll(self, cell: AMPCell, graphs: Sequence[Union[GraphData, Graph]],
               starts: Sequence[Sequence[Sequence[int]]], seeds: Sequence[Sequence[int]], messages: Tensor,
               budget: int, delay: Union[str, DelayModel] = "constant", fifo: bool = False,
               message_rows: Optional[Sequence[Sequence[int]]] = None,
               features: Optional[Sequence[Tensor]] = None, history: bool = False,
               keep: Optional[Union[Tensor, Sequence[int]]] = None) -> Unrolled:
        """Run ``starts[g][r]`` (start nodes of run r of graph g, delay seed ``seeds[g][r]``) on every graph.

        ``messages`` holds the start messages row after row: run r's j-th start node
        receives the row ``offset(r) + j``, where ``offset`` advances by ``message_rows[g][r]``
        rows per run (default: the number of start nodes). Features are ``graph.x``
        (or ``features[g]``). Returns an :class:`Unrolled`; gradients flow to the cell's
        parameters and to ``messages``. ``history``: keep every state row, so that
        :meth:`Unrolled.history` can go back more than one state (the skip readout of
        Table 4); the automatic segment plan otherwise checkpoints a large run and keeps
        only its final states.

        ``keep``: the entries (indices into the ``(graph, run, node)`` order of
        :attr:`Unrolled.final_rows`) whose states the caller reads. The levels driver then
        computes only the deliveries in their causal past (same schedule, same values,
        same gradients; the Table 4 readout reads 18-39% of the rows, docs/batched.md);
        reading the final state of an entry that was left out raises. The lock-step
        driver computes every row whatever ``keep`` says.
        """
        V.positive_int("budget", budget)  # argument checks: ampsim.validate (issue 12)
        V.boolean("fifo", fifo)
        V.boolean("history", history)
        if history and self.segment_rows:
            raise ValueError(f"history=True keeps every state row, but this executor cuts runs into segments of "
                             f"{self.segment_rows} rows: use BatchedExecutor(segment_rows=None or 0)")
        V.finite_values("start messages", messages)
        if features is not None:
            for g, f in enumerate(features):
                V.finite_values(f"features[{g}]", f)
        if not (len(graphs) == len(starts) == len(seeds)):
            raise ValueError(f"{len(graphs)} graphs, {len(starts)} start lists, {len(seeds)} seed lists")
        gs = [_graph(g) for g in graphs]
        if keep is not None:
            keep = _entries("keep", keep, sum(len(st) * g.num_nodes for g, st in zip(gs, starts)))
        model = get_delay(delay)
        ties = self.ties or engine_ties()
        params = list(cell.parameters())
        ref = params[0]
        device, dtype = ref.device, ref.dtype
        for g, (st, sd) in enumerate(zip(starts, seeds)):
            if len(st) != len(sd):
                raise ValueError(f"graph {g}: {len(st)} runs but {len(sd)} seeds")
        num_runs = [len(st) for st in starts]
        mode = self.mode
        if mode == "auto":
            mode = "lockstep" if needs_lockstep(cell) else "levels"
        if mode == "levels" and needs_lockstep(cell):
            raise ValueError(f"mode 'levels' needs an always-emit cell; {cell.kind!r} (gate={cell.gate}) "
                             "has a value-dependent schedule: use mode 'lockstep' or 'auto'")
        if mode == "levels" and kernel_for(cell) is None:
            mode = "lockstep"  # no hand-written kernel for this cell: the generic (autograd) driver, same schedule
        own_features = features
        if features is None:
            if not all(isinstance(g, GraphData) for g in graphs):
                raise ValueError("pass features= when graphs are not GraphData")
            features = [g.x for g in graphs]
        x = torch.cat([f.to(device=device, dtype=dtype) for f in features]) if features else ref.new_zeros((0, cell.in_features))
        if x.shape[0] != sum(g.num_nodes for g in gs):
            raise ValueError("features do not have one row per node")
        program = None
        if mode == "levels":
            program = self._program(graphs, gs, starts, seeds, message_rows, budget, model, fifo, ties)
            if keep is not None:
                program = _pruned(program, keep)
            n_msgs = program.n_messages
        else:
            runs = _runs(starts, seeds)
            msg_rows, n_msgs = _message_rows(gs, runs, message_rows)
            idx = torch.from_numpy(np.concatenate(msg_rows) if msg_rows else np.zeros(0, dtype=np.int64)).to(device)
        if messages.dim() != 2 or messages.shape[0] != n_msgs or messages.shape[1] != cell.msg_size:
            raise ValueError(f"messages must be ({n_msgs}, {cell.msg_size}), got {tuple(messages.shape)}")
        if program is not None:
            program = self._dedup_for(program, graphs, own_features, x, messages)
            idx = program.on(device)[3]  # the caller's row of each start-message slot
        init_nodes = None if program is None else program.init_nodes
        init_states = cell.init_state(x if init_nodes is None else x.index_select(0, init_nodes.to(device)))
        start_msgs = messages.to(device=device, dtype=dtype).index_select(0, idx)
        build = torch.is_grad_enabled() and (init_states.requires_grad or start_msgs.requires_grad
                                             or any(p.requires_grad for p in params))
        records = None
        compact = False
        if program is not None:
            kernel = kernel_for(cell)
            seg = self._segments(program, cell, dtype, device, whole=history)
            if build:
                states = _LevelUnroll.apply(kernel, program, seg, device, init_states, start_msgs, *kernel.params)
            else:
                states = _forward_segments(kernel, program, seg, init_states, start_msgs, device, False)[0]
            missing = program.missing is not None and len(program.missing) > 0
            if seg.compact:
                compact = True
                final_rows = 1 + torch.from_numpy(np.searchsorted(seg.out_rows, program.final_rows.numpy())).to(device)
                if missing:
                    final_rows.index_fill_(0, program.missing.to(device), -1)
                back = torch.zeros(states.shape[0], dtype=torch.long, device=device)
            else:
                final_rows = program.marked_finals(device) if missing else program.on(device)[2]
                back = program.back(device)
            reasons, deliveries, batches = program.reasons, program.deliveries, len(program.bounds)
            if self.record:
                records = [[("deliver", d.dst, d.msg_id, d.cause_id) for d in s.deliveries(r)]
                           for s in program.schedules for r in range(s.num_runs)]
        else:
            offs = np.concatenate([[0], np.cumsum([len(r) for r in msg_rows])]).astype(np.int64)
            starts_global = [np.arange(len(r), dtype=np.int64) + o for r, o in zip(msg_rows, offs[:-1])]
            init_halted = cell.halted(init_states.detach()).tolist()
            driver = _LockStepDriver(gs, runs, starts_global, budget, model, bool(fifo), ties, init_halted,
                                     device, self.record)
        if program is None:
            if build:
                states = _Unroll.apply(cell, driver, init_states, start_msgs, *params)
            else:
                states, _ = _forward_levels(cell, driver, init_states, start_msgs, build=False)
            final_rows = driver.final_rows(gs, [len(r) for r in runs])
            back = torch.tensor([0] * (1 + len(init_halted)) + driver.state_src, dtype=torch.long, device=device)
            reasons, deliveries, batches = tuple(driver.reasons), tuple(driver.deliveries), driver.batches
            if self.record:
                records = [run[4] for run in driver.runs]
        entry = np.concatenate([[0], np.cumsum([r * g.num_nodes for r, g in zip(num_runs, gs)])])
        result = Unrolled(states, final_rows, back, tuple(int(e) for e in entry),
                          tuple((r, g.num_nodes) for r, g in zip(num_runs, gs)), reasons, deliveries,
                          batches, records, compact, None if compact else program)
        self.last = result
        return result

    def _dedup_for(self, program: _Program, graphs, features, x: Tensor, messages: Tensor) -> _Program:
        """:func:`_deduped` of ``program`` for these leaves (``program`` itself with ``dedup=False``).

        The start-state numbers of a batch of ``GraphData`` (``features`` not given) are remembered
        for the last few batches (a training loop passes the same graphs every epoch), keyed by
        each graph's feature tensor by identity and version; the entry holds those tensors, so an
        identity cannot be reused while it is kept."""
        if not self.dedup or not program.num_deliveries:
            return program
        if features is not None or x.requires_grad or not all(isinstance(g, GraphData) for g in graphs):
            init_class = _init_classes(x)
        else:
            key = (x.dtype, tuple((id(g.x), g.x._version) for g in graphs))
            hit = self._classes.get(key)
            if hit is None:
                hit = self._classes[key] = ([g.x for g in graphs], _init_classes(x))
                while len(self._classes) > max(4, self.program_cache):
                    self._classes.popitem(last=False)
            else:
                self._classes.move_to_end(key)
            init_class = hit[1]
        return _deduped(program, init_class, _start_classes(messages, program.msg_index))

    def _segments(self, program: _Program, cell: AMPCell, dtype: torch.dtype, device: torch.device,
                  whole: bool = False) -> _Segments:
        """The program's segments for this cell (cached on the program per device and segment size);
        ``whole``: one segment, every state row kept."""
        D = program.num_deliveries
        if whole:
            rows = (D,)
        elif self.segment_rows is None:
            rows = segment_plan(program, cell, dtype)
        else:
            rows = (D if self.segment_rows <= 0 else self.segment_rows,)
        key = ("segments", str(device), rows)
        if key not in program._device:
            program._device[key] = _cut(program, rows, device)
        return program._device[key]

    def _program(self, graphs, gs: Sequence[Graph], starts, seeds, message_rows, budget: int, model: DelayModel,
                 fifo: bool, ties: str) -> _Program:
        """The compiled level program of this batch, from the cache when the same batch comes again.

        The cache key is the batch itself as nested tuples (graph hashes, start nodes, the
        seeds where the delay model reads them): an exact dict key, compared element by
        element on a hit, and built at C speed (a Table 4 PROTEINS step starts ~37k runs).
        """
        dk = delay_key(model)
        hashes = [_graph_hash(g) for g in graphs]
        key = None
        if dk is not None and self.program_cache:
            key = (budget, dk, bool(fifo), ties, tuple(hashes), _nested(starts),
                   _nested(seeds, 1) if seeded(model) else None,
                   None if message_rows is None else _nested(message_rows, 1))
            try:
                program = self._programs.get(key)
            except TypeError:  # an unhashable start node (e.g. a list): no caching for this batch
                key, program = None, None
            if program is not None:
                self._programs.move_to_end(key)
                return program
        runs = _runs(starts, seeds)
        msg_rows, n_msgs = _message_rows(gs, runs, message_rows)
        schedules = [self.plans.get(g, gruns, budget, model, fifo, ties, gh) for g, gh, gruns in zip(gs, hashes, runs)]
        program = _compile(schedules, msg_rows, n_msgs, keep_schedules=self.record)
        if key is not None:
            self._programs[key] = program
            while len(self._programs) > self.program_cache:
                self._programs.popitem(last=False)
        return program


def _runs(starts, seeds) -> list[list[tuple[tuple, int]]]:
    """Per graph, the runs ``[(start nodes, seed), ...]`` (the planner's form)."""
    return [list(zip((tuple(s) for s in st), sd)) for st, sd in zip(starts, seeds)]


def _nested(value, depth: int = 2) -> tuple:
    """``value`` (lists of lists of ...) as nested tuples, ``depth`` levels below the outer one."""
    if depth == 1:
        return tuple(map(tuple, value))
    return tuple(_nested(v, depth - 1) for v in value)


#: Above this many bytes of per-delivery work space a level program is cut into segments.
SEGMENT_BYTES = 256 << 20


def segment_plan(program: _Program, cell: AMPCell, dtype: torch.dtype) -> tuple[int, ...]:
    """Auto segment sizes: one segment when its work space fits ``SEGMENT_BYTES``, else segments of R rows.

    Work space per delivery of a segment: state and message rows, saved activations and
    the rows' gradients, ``W = (2 S + 2 M + A) x itemsize``. The checkpoint stores keep
    each carried row once however many cuts it crosses, and a segment carries in only the
    rows it reads, so a cut costs little (its int32 index arrays, a few bytes per row
    read across it): the work space of one segment, ``R W``, is held to
    ``SEGMENT_BYTES / 16`` (16 MB: R = 18,724 rows for AMP-GRU h32 m16 in float32).
    """
    kernel = kernel_for(cell)
    S, M, A = cell.state_size, cell.msg_size, kernel.act_size if kernel is not None else 0
    item = torch.empty(0, dtype=dtype).element_size()
    W = (2 * S + 2 * M + A) * item
    D = program.num_deliveries
    if D * W <= SEGMENT_BYTES:
        return (D,)
    return (max(1 << 12, SEGMENT_BYTES // 16 // W),)


def _message_rows(gs: Sequence[Graph], runs, message_rows) -> tuple[list[np.ndarray], int]:
    """Per graph, the row of ``messages`` that each start slot (engine order) receives; and the row count."""
    out = []
    offset = 0
    for g, (graph, gruns) in enumerate(zip(gs, runs)):
        rows = []
        for r, (st, _) in enumerate(gruns):
            width = len(st) if message_rows is None else int(message_rows[g][r])
            if width < len(st):
                raise ValueError(f"graph {g} run {r}: {len(st)} start nodes but {width} message rows")
            rows.extend(offset + j for _, j in start_slots(st, graph.num_nodes))
            offset += width
        out.append(np.asarray(rows, dtype=np.int64))
    return out, offset
