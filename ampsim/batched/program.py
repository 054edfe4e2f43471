"""The compiled level program: the engine's schedule of a batch as index arrays, pruned and deduplicated.

:func:`_compile` merges the planner's per-graph schedules into one level-ordered program.
Memory layout: one state buffer ``(1 + n_init + D, S)`` -- row 0 is zeros (padding),
then one start state per (graph, node) (every run starts from the same encoding),
then one row per delivery, contiguous per level -- and one message buffer
``(K + D, M)`` (K start messages, then each delivery's outgoing message). A delivery's
level is ``1 + max(level(cause), level(prev at the same node))``, so one level is one batch;
each batch reads its inputs with ``index_select`` and writes its slice once.
:func:`_prune` keeps only the deliveries that the read entries depend on, :func:`_dedup`
computes each level's equal deliveries once (exact common subexpressions); both are
cached on the program (:func:`_pruned`, :func:`_deduped`).
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .planner import Schedule


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


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` for a 1-D integer array, by sorting: numpy 2.4's hash-based ``np.unique`` takes
    20-35x longer on the index arrays here (18,000 rows: 2.1 ms against 0.1)."""
    s = np.sort(a, kind="stable")
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


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
    if len(_sorted_unique(init_class)) == len(init_class) and len(_sorted_unique(start_class)) == len(start_class):
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
