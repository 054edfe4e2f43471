"""The level driver: a compiled level program run through hand-written step kernels, cut into checkpointed segments.

Always-emit cells (RNN, GRU, LSTM without gate) have a value-independent schedule, so
one level of the compiled program (:mod:`ampsim.batched.program`) is one batch of
:mod:`ampsim.batched.kernels` steps. Gradients are full BPTT, as in the authors' code:
:class:`_LevelUnroll` cuts a long program into segments of whole levels and, in the
backward pass, recomputes each segment from checkpoint stores that hold every row carried
across a cut once (:class:`_Segments`, :func:`segment_plan`, docs/batched.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..cells.cells import AMPCell
from .fused import FusedLoop
from .kernels import StepKernel, kernel_for
from .program import _Program, _sorted_unique


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
            cins.append(_sorted_unique(r))
        store = _sorted_unique(np.concatenate(cins + [np.arange(n_in, dtype=np.int64)]))
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
    out_rows = _sorted_unique(finals) if compact else np.zeros(0, dtype=np.int64)
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
                 m_in: Tensor, keep: bool, loop: Optional[FusedLoop] = None) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """Forward through one segment: local buffers ``[carried | own rows]`` and (``keep``) the saved activations;
    level by level with the eager kernel, or all rows in one call of the compiled ``loop``."""
    c, cm, P = s_in.shape[0], m_in.shape[0], int(ssrc.shape[0])
    states = s_in.new_empty((c + P, s_in.shape[1]))
    states[:c] = s_in
    msgs = m_in.new_empty((cm + P, m_in.shape[1]))
    msgs[:cm] = m_in
    act = s_in.new_empty((P, kernel.act_size)) if keep else None
    if loop is not None:
        loop.forward(states, msgs, ssrc, msrc, act)
        return states, msgs, act
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
                  msgs: Tensor, act: Tensor, g_states: Tensor, g_msgs: Tensor, grads: dict,
                  loop: Optional[FusedLoop] = None) -> None:
    """Backward through one segment (levels in reverse, or rows in reverse in one call of the compiled
    ``loop``); input gradients are scatter-added in place, then the parameter gradients are added."""
    c, cm = states.shape[0] - act.shape[0], msgs.shape[0] - act.shape[0]
    if loop is not None:
        loop.backward(states, msgs, ssrc, msrc, act, g_states, g_msgs)
    else:
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
                      start_msgs: Tensor, device: torch.device, build: bool,
                      loop: Optional[FusedLoop] = None) -> tuple[Tensor, tuple, tuple]:
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
        states, msgs, act = _run_segment(kernel, seg.levels[s], ssrc, msrc, s_in, m_in, keep=build and last,
                                         loop=loop)
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
    """Levels with hand-written steps (eager kernels, or the compiled ``loop``); backward recomputes each
    segment from the checkpoint stores (BPTT)."""

    @staticmethod
    def forward(ctx, kernel, loop, program, seg, device, init_states, start_msgs, *params):  # type: ignore[override]
        out, stores, last = _forward_segments(kernel, program, seg, init_states, start_msgs, device, True, loop)
        ctx.work = (kernel, loop, program, seg, device, stores, last)
        return out

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        kernel, loop, program, seg, device, stores, last = ctx.work
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
                states, msgs, act = _run_segment(kernel, seg.levels[s], ssrc, msrc, s_in, m_in, keep=True, loop=loop)
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
            _back_segment(kernel, seg.levels[s], ssrc, msrc, states, msgs, act, gs, gm, grads, loop)
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
        return (None, None, None, None, None, g_init, g_msgs, *p_grads)


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
