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
from typing import Callable, Optional, Sequence

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
    ``local_state`` / ``local_msg`` (when ``compact``): every delivery's source rows in its segment's
    local buffers, packed in delivery order (computed once per plan, not per forward and recomputation).
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
    local_state: Optional[Tensor] = None
    local_msg: Optional[Tensor] = None

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
            return rows, (t(rows),), ((0, 0, t(rows[:0])),), rows, None
        ends = np.append(P[1:], D)
        cins = []
        local = np.empty(D, dtype=narrow)
        for s in range(C):
            seg_readers = readers[P[s]:ends[s]]
            r = seg_readers[seg_readers < n_in + P[s]]
            if final is not None and s == C - 1:
                r = np.concatenate([r, final[final < n_in + P[s]]])
            cins.append(_sorted_unique(r))
            local[P[s]:ends[s]] = _local(seg_readers, cins[-1], n_in + P[s])
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
        return store, takes, puts, cins[-1], torch.from_numpy(local).to(device)

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=narrow)).to(device)  # noqa: E731
    store_s, take_s, put_s, cin_last, local_s = carry(base, ssrc, finals if compact else None)
    store_m, take_m, put_m, _, local_m = carry(K, msrc, None)
    out_rows = _sorted_unique(finals) if compact else np.zeros(0, dtype=np.int64)
    cout_last = t(_local(out_rows, cin_last, base + starts[-1]))
    return _Segments(tuple(int(p) for p in starts), tuple(levels), store_s, store_m, take_s, take_m, put_s, put_m,
                     cout_last, out_rows, compact, local_s, local_m)


def _segment_index(program: "_Program", seg: _Segments, s: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The local (state, message) source rows of segment s's deliveries."""
    if not seg.compact:
        ssrc, msrc = program.on(device)[:2]
        return ssrc, msrc
    lo = seg.starts[s]
    hi = seg.starts[s + 1] if s + 1 < seg.count else program.num_deliveries
    return seg.local_state[lo:hi], seg.local_msg[lo:hi]


class _Work:
    """One run's work space: the local buffers of its largest segment, allocated once, reused by every segment.

    A freshly allocated large tensor costs a page fault per 4 KB page when it is first written
    (with a 1 MB mmap threshold every large tensor is fresh), so buffers made per segment and
    pass cost more than the compiled loop's arithmetic on them; one set per run pays that once.
    :meth:`views` gives segment s's ``states`` (c + P, S), ``msgs`` (cm + P, M) and ``act``
    (P, A); :meth:`grads` its gradient buffers of the same shapes, zeroed in place. Once a
    segment's state gradients are taken, their buffer holds the parameter gradients' input rows.
    """

    def __init__(self, program: "_Program", seg: _Segments, S: int, M: int, A: int, like: Tensor,
                 keep: bool) -> None:
        D = program.num_deliveries
        if seg.compact:
            ends = seg.starts[1:] + (D,)
            self.sizes = [(int(seg.take_state[s].shape[0]), int(seg.take_msg[s].shape[0]), e - a)
                          for s, (a, e) in enumerate(zip(seg.starts, ends))]
        else:
            self.sizes = [(1 + program.n_init, program.n_starts, D)]
        self.states = like.new_empty((max(c + p for c, _, p in self.sizes), S))
        self.msgs = like.new_empty((max(cm + p for _, cm, p in self.sizes), M))
        self.act = like.new_empty((max(p for _, _, p in self.sizes), A)) if keep else None
        self._grads: Optional[tuple[Tensor, Tensor]] = None

    def views(self, s: int) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        c, cm, P = self.sizes[s]
        return self.states[:c + P], self.msgs[:cm + P], None if self.act is None else self.act[:P]

    def grads(self, s: int) -> tuple[Tensor, Tensor]:
        if self._grads is None:
            self._grads = (torch.empty_like(self.states), torch.empty_like(self.msgs))
        c, cm, P = self.sizes[s]
        return self._grads[0][:c + P].zero_(), self._grads[1][:cm + P].zero_()

    def load(self, s: int, stores: Optional[tuple[Tensor, Tensor]], seg: _Segments, s_in: Optional[Tensor] = None,
             m_in: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """Segment s's buffers with its carried-in rows filled in (from the stores, or ``s_in`` / ``m_in``)."""
        states, msgs, act = self.views(s)
        c, cm, _ = self.sizes[s]
        if stores is not None:
            torch.index_select(stores[0], 0, seg.take_state[s], out=states[:c])
            torch.index_select(stores[1], 0, seg.take_msg[s], out=msgs[:cm])
        else:
            states[:c] = s_in
            msgs[:cm] = m_in
        return states, msgs, act


def _run_segment(kernel: StepKernel, levels: tuple[int, ...], ssrc: Tensor, msrc: Tensor, states: Tensor,
                 msgs: Tensor, act: Optional[Tensor], loop: Optional[FusedLoop] = None) -> None:
    """Forward through one segment in place: ``states`` / ``msgs`` hold the carried-in rows, then one row per
    delivery (filled here), ``act`` the saved activations (``None``: none kept); level by level with the
    eager kernel, or all rows in one call of the compiled ``loop``."""
    P = int(ssrc.shape[0])
    c, cm = states.shape[0] - P, msgs.shape[0] - P
    if loop is not None:
        loop.forward(states, msgs, ssrc, msrc, act)
        return
    parts = zip(ssrc.split(levels), msrc.split(levels), states[c:].split(levels), msgs[cm:].split(levels),
                act.split(levels) if act is not None else [None] * len(levels))
    for ss, ms, new, out, a in parts:
        kernel.forward(states.index_select(0, ss), msgs.index_select(0, ms), new, out, a)


def _i64(index: Tensor) -> Tensor:
    """``index`` as int64 for ``index_add_``: the plans store int32 rows, and ``index_add_`` with int32
    indices takes a path about 5x slower on CPU (torch 2.13: 15,000 rows of 16 floats, 1.0 ms against 0.22)."""
    return index if index.dtype == torch.long else index.long()


#: Rows per parameter-gradient product in the backward pass.
PARAM_CHUNK = 1 << 15


def _back_segment(kernel: StepKernel, levels: tuple[int, ...], ssrc: Tensor, msrc: Tensor, states: Tensor,
                  msgs: Tensor, act: Tensor, g_states: Tensor, g_msgs: Tensor, grads: dict,
                  loop: Optional[FusedLoop] = None, take: Optional[Callable[[], None]] = None) -> None:
    """Backward through one segment (levels in reverse, or rows in reverse in one call of the compiled
    ``loop``); input gradients are scatter-added in place, then the parameter gradients are added.

    ``take``: called once the input gradients are complete; after it ``g_states`` is not read again,
    so its buffer holds the parameter gradients' gathered input rows (no buffer of their own: a
    segment's work space is the peak of a run). Without it the rows are gathered into fresh tensors."""
    P = act.shape[0]
    c, cm = states.shape[0] - P, msgs.shape[0] - P
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
    S, M = states.shape[1], msgs.shape[1]
    chunk = PARAM_CHUNK
    if take is not None:
        take()
        flat = g_states.view(-1)
        chunk = max(1, min(chunk, flat.numel() // (S + M)))
    for lo in range(0, P, chunk):  # parameter gradients: large products, bounded temporaries
        hi = min(lo + chunk, P)
        if take is None:
            h, m = states.index_select(0, ssrc[lo:hi]), msgs.index_select(0, msrc[lo:hi])
        else:
            k = hi - lo
            h = torch.index_select(states, 0, ssrc[lo:hi], out=flat[:k * S].view(k, S))
            m = torch.index_select(msgs, 0, msrc[lo:hi], out=flat[k * S:k * (S + M)].view(k, M))
        kernel.param_grads(h, m, states[c + lo: c + hi], act[lo:hi], g_msgs[cm + lo: cm + hi], grads)


def _forward_segments(kernel: StepKernel, program: "_Program", seg: _Segments, init_states: Tensor,
                      start_msgs: Tensor, device: torch.device, build: bool,
                      loop: Optional[FusedLoop] = None) -> tuple[Tensor, tuple, tuple, _Work]:
    """All segments forward in one reused work space; fills the checkpoint stores (each carried row once)
    and keeps the last segment's work (with ``build``, its activations too)."""
    s_in = torch.cat([init_states.new_zeros((1, init_states.shape[1])), init_states.detach()])
    m_in = start_msgs.detach()
    work = _Work(program, seg, s_in.shape[1], m_in.shape[1], kernel.act_size, s_in, build)
    stores = None
    if seg.compact:
        stores = (s_in.new_empty((len(seg.store_state), s_in.shape[1])),
                  m_in.new_empty((len(seg.store_msg), m_in.shape[1])))
        stores[0][:s_in.shape[0]] = s_in   # segment 0 carries in every start state and start message
        stores[1][:m_in.shape[0]] = m_in
    for s in range(seg.count):
        last = s == seg.count - 1
        states, msgs, act = work.load(s, stores, seg, s_in, m_in)
        ssrc, msrc = _segment_index(program, seg, s, device)
        _run_segment(kernel, seg.levels[s], ssrc, msrc, states, msgs, act if last else None, loop)
        if not last:
            for store, (a, b, local), buf in ((stores[0], seg.put_state[s], states), (stores[1], seg.put_msg[s], msgs)):
                if b > a:
                    torch.index_select(buf, 0, local, out=store[a:b])
    if seg.compact:
        out = torch.cat([states.new_zeros((1, states.shape[1])), states.index_select(0, seg.cout_last)])
    else:
        out = states
    return out, stores, (states, msgs, act, ssrc, msrc), work


class _LevelUnroll(torch.autograd.Function):
    """Levels with hand-written steps (eager kernels, or the compiled ``loop``); backward recomputes each
    segment from the checkpoint stores (BPTT). Every segment works in the one :class:`_Work` of the run;
    state and message gradients are accumulated in place (in its gradient buffers and the gradient stores)."""

    @staticmethod
    def forward(ctx, kernel, loop, program, seg, device, init_states, start_msgs, *params):  # type: ignore[override]
        out, stores, last, work = _forward_segments(kernel, program, seg, init_states, start_msgs, device, True,
                                                    loop)
        ctx.work = (kernel, loop, program, seg, device, stores, last, work)
        return out

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        kernel, loop, program, seg, device, stores, last, work = ctx.work
        ctx.work = None
        grads: dict = {}
        C = seg.count
        if seg.compact:
            # gradients of the stored rows: every segment that reads a carried row adds its part
            g_store = (torch.zeros_like(stores[0]), torch.zeros_like(stores[1]))
        for s in reversed(range(C)):
            if s == C - 1:
                states, msgs, act, ssrc, msrc = last
                last = None
            else:
                ssrc, msrc = _segment_index(program, seg, s, device)
                states, msgs, act = work.load(s, stores, seg)
                _run_segment(kernel, seg.levels[s], ssrc, msrc, states, msgs, act, loop)
            gs, gm = work.grads(s)
            if not seg.compact:
                gs.copy_(g_out)
            elif s == C - 1:
                gs.index_add_(0, _i64(seg.cout_last), g_out[1:])
            else:   # rows made here and read later: their gradients are complete (later segments are done)
                for g, g_st, (a, b, local) in ((gs, g_store[0], seg.put_state[s]), (gm, g_store[1], seg.put_msg[s])):
                    if b > a:
                        g.index_add_(0, _i64(local), g_st[a:b])
            c, cm = states.shape[0] - act.shape[0], msgs.shape[0] - act.shape[0]
            if seg.compact:
                def take(s=s, gs=gs, gm=gm, c=c, cm=cm):   # the carried-in rows' gradients go to the stores
                    g_store[0].index_add_(0, _i64(seg.take_state[s]), gs[:c])
                    g_store[1].index_add_(0, _i64(seg.take_msg[s]), gm[:cm])
            else:   # one segment: its gradient buffers are the result
                take = None
            _back_segment(kernel, seg.levels[s], ssrc, msrc, states, msgs, act, gs, gm, grads, loop, take)
        if seg.compact:
            g_init, g_msgs = g_store[0][1:1 + program.n_init], g_store[1][:program.n_starts]
        else:
            g_init, g_msgs = gs[1:1 + program.n_init], gm[:program.n_starts]
        p_grads = [grads.get(id(p)) if p.requires_grad else None for p in kernel.params]
        return (None, None, None, None, None, g_init, g_msgs, *p_grads)


#: Above this many bytes of per-delivery work space a level program is cut into segments (eager loop).
SEGMENT_BYTES = 256 << 20

#: The compiled loop: above this many bytes of work space a program is cut, into segments whose saved
#: activations take about ``FUSED_ACT_BYTES`` each.
FUSED_SEGMENT_BYTES = 32 << 20
FUSED_ACT_BYTES = 4 << 20


def segment_plan(program: _Program, cell: AMPCell, dtype: torch.dtype, fused: bool = False) -> tuple[int, ...]:
    """Auto segment sizes: one segment when its work space fits, else segments of R rows.

    Work space per delivery of a segment: state and message rows, saved activations and
    the rows' gradients, ``W = (2 S + 2 M + A) x itemsize``. The checkpoint stores keep
    each carried row once however many cuts it crosses, and a segment carries in only the
    rows it reads, so a cut costs little (its int32 index arrays, a few bytes per row
    read across it).

    Eager loop: one segment while ``D W <= SEGMENT_BYTES`` (256 MB), else a work space of
    ``SEGMENT_BYTES / 16`` per segment (16 MB: R = 18,724 rows for AMP-GRU h32 m16 in float32);
    the recomputation of a segment costs as much as its first forward pass, so it is avoided
    where memory allows. Compiled loop: its forward pass is cheap, so memory decides: one
    segment only while ``D W <= FUSED_SEGMENT_BYTES`` (32 MB), else segments whose activations
    take ``FUSED_ACT_BYTES`` (4 MB: R = 8,192 rows for that cell, A = 4 H), so the peak stays near
    the stores' few hundred bytes per delivery (PubMed's 197k deliveries: 224-283 B instead of
    1.2 kB), and one segment's work stays in the last-level cache between its recomputation and
    its backward pass.
    """
    kernel = kernel_for(cell)
    S, M, A = cell.state_size, cell.msg_size, kernel.act_size if kernel is not None else 0
    item = torch.empty(0, dtype=dtype).element_size()
    W = (2 * S + 2 * M + A) * item
    D = program.num_deliveries
    if fused:
        if D * W <= FUSED_SEGMENT_BYTES:
            return (D,)
        return (max(1 << 12, FUSED_ACT_BYTES // max(A * item, 1)),)
    if D * W <= SEGMENT_BYTES:
        return (D,)
    return (max(1 << 12, SEGMENT_BYTES // 16 // W),)
