"""Planner: the engine's schedule of an always-emit run, computed without tensors (Section 3).

When every processed delivery makes its node broadcast (AMP-RNN/GRU/LSTM without a
gate, as the authors' code), *which* deliveries happen and in which order does not
depend on any value: it is fixed by the graph, the start nodes, the delays and the
budget. The planner replays the engine's event queue and records, per delivery,
``(run, dst, msg_id, cause, prev)`` in processing order (constant delays: one *wave* of
copies per instant, with numpy, :func:`_plan_waves`; uniform delays: one heap with a
calendar of later buckets, :func:`_plan_uniform`; any other model, message loss or a counted
emission rule: :func:`ampsim.batched.counted.plan_events` on :class:`EventQueue`):

* deliveries are processed in increasing ``(arrival time, msg_id)`` order; ``msg_id``
  numbers copies in send order (one copy per receiving edge, neighbours ascending);
  the start messages come first, one per start node in ascending node order (the
  engine sorts its ``start`` dict), delivered at t = 0 with delay 0. (How copies of
  one instant are ordered is probed from the installed engine: :func:`engine_ties`);
* a copy's delay is drawn at send time, in ``msg_id`` order, from the delay model
  bound to ``stream(seed, "delays")`` (for ``"uniform"``: ``1 - random()``); with
  ``fifo`` the arrival is ``max(t + d, last arrival on that edge)`` (made strictly
  not earlier by ``nextafter``, as the engine does); arrival = ``t + d`` in floats;
* the run stops after ``budget`` processed deliveries or when nothing is in flight.

``cause`` is the index (within the run's schedule) of the delivery whose broadcast
sent the copy (-1 for a start message), ``prev`` the previous delivery at the same
node (-1: the node's start state). The level of a delivery is

    level = 1 + max(level(cause), level(prev))      (a missing one counts as -1)

so every delivery of a level depends only on lower levels, and a level never holds
two deliveries at the same (run, node): the cells of one level run as one batch.
``tests/batched/test_planner.py`` checks the schedule against engine traces.
"""
from __future__ import annotations

import hashlib
import heapq
from array import array
import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain
from typing import Optional, Sequence, Union

import numpy as np

from ..engine.delays import Constant, DelayModel, Exponential, Pareto, Uniform, get_delay
from ..engine.errors import DelayError
from ..engine.rng import stream
from ..graphs import Graph
from .counted import plan_events
from .events import TIES, EventQueue, engine_ties, fifo_delay

__all__ = [
    "Schedule",
    "PlannedDelivery",
    "plan",
    "plan_key",
    "runs_key",
    "seeded",
    "PlanCache",
    "start_slots",
    "start_index",
    "delay_key",
    "EventQueue",
    "engine_ties",
    "neighbour_hash",
    "TIES",
]

INF = math.inf


@dataclass(frozen=True)
class PlannedDelivery:
    """One processed delivery of a planned run (the engine's ``deliver`` record, without payloads)."""

    run: int
    dst: int
    msg_id: int
    cause_id: int
    src: int
    t: float
    level: int


@dataclass(frozen=True, eq=False)
class Schedule:
    """The planned deliveries of ``num_runs`` runs on one graph, runs concatenated in run order.

    Arrays (numpy, length D = total deliveries; int32, msg_id int64, time float64): ``run``, ``node`` (dst), ``msg_id``,
    ``cause`` / ``prev`` (index into these arrays, -1 for none), ``slot`` (for a start
    delivery: its index into the graph's start slots, see :func:`start_slots`; else -1),
    ``src`` (-1 for a start), ``time`` and ``level``. ``final`` (runs, n) is the index of
    the last delivery at each node (-1: never reached); ``reasons`` says how each run
    ended (``"message_budget"`` or ``"quiescent"``); ``sent`` counts copies sent per run.
    """

    num_nodes: int
    num_runs: int
    run: np.ndarray
    node: np.ndarray
    msg_id: np.ndarray
    cause: np.ndarray
    prev: np.ndarray
    slot: np.ndarray
    src: np.ndarray
    time: np.ndarray
    level: np.ndarray
    final: np.ndarray
    reasons: tuple[str, ...]
    sent: tuple[int, ...]
    tag: Optional[np.ndarray] = None

    @property
    def num_deliveries(self) -> int:
        return int(self.run.shape[0])

    @property
    def num_levels(self) -> int:
        return int(self.level.max()) + 1 if self.num_deliveries else 0

    def deliveries(self, run: int) -> list[PlannedDelivery]:
        """The deliveries of ``run`` in processing order (``cause_id`` is the cause's msg_id, -1 for a start)."""
        idx = np.nonzero(self.run == run)[0]
        out = []
        for i in idx.tolist():
            c = int(self.cause[i])
            out.append(PlannedDelivery(run, int(self.node[i]), int(self.msg_id[i]),
                                       int(self.msg_id[c]) if c >= 0 else -1, int(self.src[i]),
                                       float(self.time[i]), int(self.level[i])))
        return out


def start_slots(starts: Sequence[int], num_nodes: int) -> list[tuple[int, int]]:
    """``(node, j)`` pairs of a run's start messages in engine order: ascending node, last ``j`` wins.

    The engine receives ``{v: messages[j]}`` (a dict, so a repeated node keeps its last
    message) and sorts it by node; ``j`` indexes the run's ``messages`` rows.
    """
    if isinstance(starts, (tuple, list)) and starts and all(type(v) is int for v in starts) \
            and all(a < b for a, b in zip(starts, starts[1:])):  # ascending, no repeat: the common case
        if starts[0] < 0 or starts[-1] >= num_nodes:
            bad = starts[0] if starts[0] < 0 else starts[-1]
            raise ValueError(f"start node {bad} is not in the graph (nodes 0..{num_nodes - 1})")
        return list(zip(starts, range(len(starts))))
    chosen: dict[int, int] = {}
    for j, v in enumerate(starts):
        v = int(v)
        if not 0 <= v < num_nodes:
            raise ValueError(f"start node {v} is not in the graph (nodes 0..{num_nodes - 1})")
        chosen[v] = j
    return sorted(chosen.items())


def start_index(starts: Sequence[int], num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`start_slots` as two int64 arrays ``(nodes, j)``, vectorised for the common case.

    Ascending integer starts without repeats (every node started, one run per forward pass) are
    checked and returned without a Python loop; anything else goes through :func:`start_slots`.
    """
    a = np.asarray(starts) if not isinstance(starts, range) else np.arange(starts.start, starts.stop, starts.step)
    if a.ndim == 1 and a.dtype.kind in "iu" and len(a) and bool(np.all(a[1:] > a[:-1])):
        if a[0] < 0 or a[-1] >= num_nodes:
            bad = int(a[0]) if a[0] < 0 else int(a[-1])
            raise ValueError(f"start node {bad} is not in the graph (nodes 0..{num_nodes - 1})")
        return a.astype(np.int64, copy=False), np.arange(len(a), dtype=np.int64)
    pairs = start_slots(starts, num_nodes)
    return (np.fromiter((v for v, _ in pairs), dtype=np.int64, count=len(pairs)),
            np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs)))


def delay_key(delay: Union[str, float, DelayModel]) -> Optional[str]:
    """A cache key for a delay model, or ``None`` when its description does not pin it down."""
    model = get_delay(delay)
    if isinstance(model, (Constant, Uniform, Exponential, Pareto)):  # described by their parameters alone
        return repr(sorted(model.describe().items()))
    return None


def plan_key(graph: Graph, runs: Sequence[tuple[Sequence[int], int]], budget: int,
             delay: Union[str, float, DelayModel], fifo: bool, ties: str = "mailbox",
             graph_hash: Optional[str] = None, loss: float = 0.0, rule=None) -> Optional[str]:
    """SHA-256 of everything a schedule depends on (``None`` for uncacheable delay models).

    ``graph_hash`` may be passed when the caller already knows it (:func:`neighbour_hash`);
    ``loss`` and a count ``rule`` (its ``key``) are part of it when given.
    """
    dk = delay_key(delay)
    if dk is None:
        return None
    extra = "" if not loss and rule is None else f"{float(loss)!r}|{getattr(rule, 'key', None)}|"
    h = hashlib.sha256(f"{budget}|{dk}|{bool(fifo)}|{ties}|{graph_hash or neighbour_hash(graph)}|{extra}".encode())
    runs = [(tuple(int(v) for v in s), int(seed)) for s, seed in runs]
    h.update(runs_key(runs, seeded(delay, loss)).encode())
    return h.hexdigest()


def seeded(delay: Union[str, float, DelayModel], loss: float = 0.0) -> bool:
    """Whether a schedule under ``delay`` depends on the run's seed (every model but ``constant``, and any with loss)."""
    return get_delay(delay).name != "constant" or bool(loss)


def runs_key(runs: Sequence[tuple[tuple[int, ...], int]], with_seeds: bool) -> str:
    """The part of a cache key that the runs ``[(starts, seed), ...]`` contribute: the start nodes, and
    the seeds only ``with_seeds`` (see :func:`seeded`).

    Under constant delays a schedule does not depend on the seed, so a training loop that
    draws new seeds every epoch (as :mod:`ampsim.train.loop` does) still hits the cache.
    """
    return repr(list(runs) if with_seeds else [s for s, _ in runs])


def neighbour_hash(graph: Graph) -> str:
    """SHA-256 of a graph's size and sorted neighbour lists (what a schedule depends on), from its CSR arrays;
    memoised per graph object (a :class:`Graph` is immutable), as the arrays are."""
    memo = _graph_memo(graph)
    if "hash" not in memo:
        indptr, indices, _ = _csr(graph)
        h = hashlib.sha256(f"{graph.num_nodes};".encode())
        h.update(indptr.tobytes())
        h.update(indices.tobytes())
        memo["hash"] = h.hexdigest()
    return memo["hash"]


#: per graph object: its CSR arrays and neighbour hash (a large graph's cost ~0.3 s per call in Python)
_GRAPH_MEMO: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()


def _graph_memo(graph: Graph) -> dict:
    memo = _GRAPH_MEMO.get(graph)
    if memo is None:
        memo = _GRAPH_MEMO[graph] = {}
    return memo


def plan(graph: Graph, runs: Sequence[tuple[Sequence[int], int]], budget: int,
         delay: Union[str, float, DelayModel] = "constant", fifo: bool = False,
         ties: Optional[str] = None, loss: float = 0.0, rule=None) -> Schedule:
    """The engine's processing order of always-emit runs ``[(starts, seed), ...]`` on ``graph``.

    Equal to ``Simulation(graph, rule, delay, fifo, seed, start={v: ...}).run(max_deliveries=budget)``
    for any rule that always emits, delivery for delivery (tested against engine traces).
    ``ties`` orders copies that arrive at the same instant (see :func:`engine_ties`);
    ``None`` uses the installed engine's rule. With message ``loss`` or a count ``rule``
    (:class:`~ampsim.cells.protocol.CountRule`: the node emits when its counts say so) every run
    is replayed by :func:`ampsim.batched.counted.plan_events`.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be an int >= 1, got {budget!r}")
    ties = engine_ties() if ties is None else ties
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    model = get_delay(delay)
    n = graph.num_nodes
    parts = []
    final = np.full((len(runs), n), -1, dtype=np.int64)
    reasons, sent = [], []
    slot_base = 0
    csr = None
    offset = 0
    for r, (starts, seed) in enumerate(runs):
        pairs = start_slots(starts, n)
        reason = None
        if isinstance(model, Constant) and budget >= WAVES_MIN_BUDGET and not loss and rule is None:
            if csr is None:
                csr = _csr(graph)
            cols, done, copies = _plan_waves(csr, model, pairs, slot_base, budget, ties)
        elif isinstance(model, Uniform) and ties == "msg_id" and not fifo and not loss and rule is None:
            native = _native() if budget < 2 ** 31 - 1 else None
            if native is not None:
                if csr is None:
                    csr = _csr(graph)
                cols, done, copies = _plan_uniform_native(native, csr, model, seed, pairs, slot_base, budget)
            else:
                cols, done, copies = _plan_uniform(graph, model, seed, pairs, slot_base, budget)
        else:
            cols, done, copies, reason = plan_events(graph, model, seed, bool(fifo), ties, pairs, slot_base, budget,
                                                     float(loss), rule)
        if offset + len(cols["node"]) >= 2 ** 31 - 1:
            cols["cause"], cols["prev"] = cols["cause"].astype(np.int64), cols["prev"].astype(np.int64)
        node, cause, prev = cols["node"], cols["cause"], cols["prev"]
        cause[cause >= 0] += offset
        prev[prev >= 0] += offset
        # the last delivery at each node: last occurrence in processing order
        if "final" in cols:
            last = cols.pop("final")
            final[r] = np.where(last >= 0, last + offset, -1)
        else:
            rev = node[::-1]
            uniq, first_rev = np.unique(rev, return_index=True)
            final[r, uniq] = offset + len(node) - 1 - first_rev
        cols["run"] = np.full(len(node), r, dtype=np.int32)
        parts.append(cols)
        offset += len(node)
        slot_base += len(pairs)
        reasons.append(reason or ("message_budget" if done == budget else "quiescent"))
        sent.append(copies)
    keys = ("run", "node", "msg_id", "cause", "prev", "slot", "src", "time", "level")
    wide = offset >= 2 ** 31 - 1
    dtypes = {k: np.float64 if k == "time" else np.int64 if (k == "msg_id" or wide) else np.int32 for k in keys}
    arr = {k: (parts[0][k] if len(parts) == 1 else np.concatenate([c[k] for c in parts]) if parts else np.zeros(0))
           .astype(dtypes[k], copy=False) for k in keys}
    tag = None
    if parts and all("tag" in c for c in parts):
        tag = np.concatenate([c["tag"] for c in parts]).astype(np.int64, copy=False)
    return Schedule(n, len(runs), arr["run"], arr["node"], arr["msg_id"], arr["cause"], arr["prev"],
                    arr["slot"], arr["src"], arr["time"], arr["level"], final, tuple(reasons), tuple(sent), tag)


#: Constant-delay runs with at least this budget are planned wave by wave with numpy (else one by one).
WAVES_MIN_BUDGET = 256


def _csr(graph: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, degree) of the graph's sorted neighbour lists; built once per graph object
    (read-only arrays)."""
    memo = _graph_memo(graph)
    if "csr" not in memo:
        deg = np.fromiter(map(len, graph.neighbors), dtype=np.int64, count=graph.num_nodes)
        indptr = np.zeros(graph.num_nodes + 1, dtype=np.int64)
        np.cumsum(deg, out=indptr[1:])
        indices = np.fromiter(chain.from_iterable(graph.neighbors), dtype=np.int64, count=int(indptr[-1]))
        for a in (deg, indptr, indices):
            a.setflags(write=False)
        memo["csr"] = (indptr, indices, deg)
    return memo["csr"]


def _plan_waves(csr, model: Constant, pairs, slot_base: int, budget: int, ties: str) -> tuple[dict, int, int]:
    """One constant-delay run, one *wave* (instant) at a time with array operations.

    Every copy sent at instant t_k arrives at t_k + c, so instant k + 1 holds exactly the
    copies sent during instant k, in send order (msg_id), or grouped by receiver for the
    ``"mailbox"`` rule. Within an instant, the deliveries at one node form a chain:
    with a_i the level of the i-th one's cause and L the node's level before the instant,
    ``level_j = j + 1 + max(L, max_{i <= j} (a_i - i))`` (a segmented running maximum).
    """
    value = float(model.value)
    if not 0.0 < value < INF:
        raise DelayError(f"constant delay must be finite and > 0, got {value!r}")
    indptr, indices, deg = csr
    n = len(deg)
    last_idx = np.full(n, -1, dtype=np.int64)
    last_lvl = np.full(n, -1, dtype=np.int64)
    i32 = np.int32
    cols = {k: np.empty(budget, dtype=np.int64 if k == "msg_id" else np.float64 if k == "time" else i32)
            for k in ("node", "msg_id", "cause", "prev", "slot", "src", "time", "level")}
    k = len(pairs)
    w_node = np.array([v for v, _ in pairs], dtype=np.int64)
    w_mid = np.arange(k, dtype=np.int64)
    w_cause = np.full(k, -1, dtype=np.int64)
    w_src = np.full(k, -1, dtype=np.int64)
    w_slot = slot_base + np.arange(k, dtype=np.int64)
    next_id, sent, done, t = k, k, 0, 0.0
    levels = cols["level"]
    while len(w_node) and done < budget:
        if ties == "mailbox" and len(w_node) > 1:
            _, first, inv = np.unique(w_node, return_index=True, return_inverse=True)
            order = np.argsort(first[inv], kind="stable")
            w_node, w_mid, w_cause, w_src, w_slot = (x[order] for x in (w_node, w_mid, w_cause, w_src, w_slot))
        take = min(len(w_node), budget - done)
        w_node, w_mid, w_cause, w_src, w_slot = (x[:take] for x in (w_node, w_mid, w_cause, w_src, w_slot))
        idx = done + np.arange(take, dtype=np.int64)
        a = np.where(w_cause >= 0, levels[np.maximum(w_cause, 0)], -1).astype(np.int64)
        # chains per receiver, in processing order
        order = np.argsort(w_node, kind="stable")
        g_node = w_node[order]
        head = np.ones(take, dtype=bool)
        head[1:] = g_node[1:] != g_node[:-1]
        gid = np.cumsum(head) - 1
        starts = np.nonzero(head)[0]
        rank = np.arange(take, dtype=np.int64) - starts[gid]
        b = a[order] - rank + take + 1               # >= 1
        big = int(b.max()) + 1
        run_max = np.maximum.accumulate(b + gid * big) - gid * big - take - 1
        lvl_sorted = rank + 1 + np.maximum(last_lvl[g_node], run_max)
        prev_sorted = np.where(head, last_idx[g_node], np.concatenate([[-1], idx[order][:-1]]))
        sl = slice(done, done + take)
        levels[sl][order] = lvl_sorted
        cols["prev"][sl][order] = prev_sorted
        tails = np.append(starts[1:], take) - 1
        last_idx[g_node[tails]] = idx[order][tails]
        last_lvl[g_node[tails]] = lvl_sorted[tails]
        for key, val in (("node", w_node), ("msg_id", w_mid), ("cause", w_cause), ("slot", w_slot), ("src", w_src)):
            cols[key][sl] = val
        cols["time"][sl] = t
        done += take
        # broadcasts: every processed delivery sends one copy per neighbour, neighbours ascending
        d = deg[w_node]
        total = int(d.sum())
        sent += total
        if done >= budget:
            break   # the copies are sent (counted) but none of them is processed
        # with msg_id ties the next wave is processed in send order: only its first copies can count
        keep = total
        if ties == "msg_id" and total > budget - done:
            cut = int(np.searchsorted(np.cumsum(d), budget - done))   # deliveries whose copies are needed
            d = d[: cut + 1]
            keep = budget - done
        starts_d = np.cumsum(d) - d
        rep = np.repeat(np.arange(len(d), dtype=np.int64), d)[:keep]
        within = np.arange(keep, dtype=np.int64) - starts_d[rep]
        src = w_node
        w_node = indices[indptr[w_node[rep]] + within]
        del within
        w_mid = next_id + np.arange(keep, dtype=np.int64)
        next_id += total
        w_cause = idx[rep]
        w_src = src[rep]
        del rep
        w_slot = np.full(keep, -1, dtype=np.int64)
        t = t + value
    return {key: v[:done] for key, v in cols.items()}, done, sent


def _plan_uniform(graph: Graph, model: Uniform, seed: int, pairs, slot_base: int,
                  budget: int) -> tuple[dict, int, int]:
    """One uniform-delay run (``msg_id`` ties, no FIFO): one heap, delays drawn in msg_id order in blocks.

    The same order as :class:`EventQueue` (copies of one instant leave the heap in msg_id
    order, and a broadcast cannot join its own instant since delays are > 0), with the
    per-copy work cut to one draw and one push.
    """
    sample = model.bind(stream(seed, "delays"))
    nbrs = graph.neighbors
    k = len(pairs)
    heap = [(0.0, j) for j in range(k)]              # (arrival, msg_id); the rest by msg_id below
    # per copy and per delivery: typed arrays (8 bytes an entry, no int/float objects)
    c_dst = array("q", [v for v, _ in pairs])
    c_cause = array("q", [-1] * k)
    pop, push = heapq.heappop, heapq.heappush
    next_id = k
    node, mids, prevs, levels = array("q"), array("q"), array("q"), array("q")
    times = array("d")
    last = array("q", [-1]) * graph.num_nodes
    draws: list[float] = []
    head = 0
    done = 0
    # a calendar: the heap holds the copies of the current time bucket, later ones wait in their bucket
    # (bucket = floor(arrival / width), monotone in the arrival, so the pop order is unchanged);
    # a later bucket keeps (arrival, msg_id) in two typed arrays, 16 bytes a copy in flight
    inv = 512.0 / float(model.high)   # buckets per longest delay (32 -> 512: 4.3 -> 3.1 CPU s per 1e6)
    cur = 0
    buckets: dict[int, tuple] = {}
    while done < budget:
        if not heap:
            if not buckets:
                break
            cur = min(buckets)
            heap = list(zip(*buckets.pop(cur)))
            heapq.heapify(heap)
        t, mid = pop(heap)
        v = c_dst[mid]
        cause = c_cause[mid]
        p = last[v]
        lc = levels[cause] if cause >= 0 else -1
        lp = levels[p] if p >= 0 else -1
        node.append(v)
        mids.append(mid)
        prevs.append(p)
        times.append(t)
        levels.append(1 + (lc if lc > lp else lp))
        last[v] = done
        nb = nbrs[v]
        w = len(nb)
        if head + w > len(draws):
            draws = draws[head:] + [sample(-1, -1, -1) for _ in range(4096 + w)]
            head = 0
        for d in draws[head: head + w]:
            ta = t + d
            if not ta > t:
                raise DelayError(f"message {next_id} would arrive at its send time {t!r} (delay {d!r} "
                                 "is below the clock's resolution); the planner cannot order it")
            b = int(ta * inv)
            if b <= cur:
                push(heap, (ta, next_id))
            else:
                bk = buckets.get(b)
                if bk is None:
                    bk = buckets[b] = (array("d"), array("q"))
                bk[0].append(ta)
                bk[1].append(next_id)
            next_id += 1
        head += w
        c_dst.extend(nb)
        c_cause.extend([done] * w)
        done += 1
    i64 = lambda x: np.frombuffer(x, dtype=np.int64).copy() if len(x) else np.zeros(0, dtype=np.int64)  # noqa: E731
    mid_a = i64(mids)
    del mids
    cause = i64(c_cause)[mid_a]
    del c_cause, c_dst
    node_a = i64(node)
    src = np.where(cause >= 0, node_a[np.maximum(cause, 0)], -1)
    slot = np.where(mid_a < k, slot_base + mid_a, -1)
    cols = {"node": node_a, "msg_id": mid_a, "cause": cause, "prev": i64(prevs), "slot": slot,
            "src": src, "time": np.frombuffer(times, dtype=np.float64).copy() if len(times) else np.zeros(0),
            "level": i64(levels)}
    return cols, done, next_id


def _native():
    """The compiled planner loop (``csrc/plan.cpp``, built with the level loop by :mod:`ampsim.batched.fused`),
    or ``None``: not built here, or ``AMPSIM_FUSED=0`` (everything in Python)."""
    from . import fused

    if fused.resolve(None) is False:
        return None
    return fused.library()


def _plan_uniform_native(lib, csr, model: Uniform, seed: int, pairs, slot_base: int,
                         budget: int) -> tuple[dict, int, int]:
    """:func:`_plan_uniform` in compiled code: the same deliveries (the same Mersenne Twister draws, from
    the state of ``stream(seed, "delays")``, and the same float arithmetic), some 20x faster. The loop
    writes the schedule's columns in their final types, each delivery's sender and slot, and each
    node's last delivery (``"final"``), so Python converts nothing; rows are int32 (``budget`` < 2^31)."""
    import ctypes

    from .fused import PlanArgs

    indptr, indices, _ = csr
    n = len(indptr) - 1
    words = stream(seed, "delays").getstate()[1]
    mt = np.asarray(words[:624], dtype=np.uint32)
    starts = np.asarray([v for v, _ in pairs], dtype=np.int64)
    low, high = float(model.low), float(model.high)
    unit = int(low == 0.0 and high == 1.0)
    i64p = ctypes.POINTER(ctypes.c_int64)
    last = np.empty(n, dtype=np.int32)
    a = PlanArgs(n, len(pairs), budget, indptr.ctypes.data_as(i64p), indices.ctypes.data_as(i64p),
                 starts.ctypes.data_as(i64p), mt.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), int(words[624]),
                 unit, low, high, slot_base)
    a.last = last.ctypes.data
    cols: dict = {}
    cap = min(budget, NATIVE_ROWS)
    try:
        while True:
            grown = {k: np.empty(cap, dtype=dt) for k, dt in _NATIVE_COLUMNS.items()}
            for k, arr in grown.items():
                if k in cols:
                    arr[:a.done] = cols[k][:a.done]
                setattr(a, k, arr.ctypes.data)
            cols, a.cap = grown, cap
            rc = lib.ampsim_plan_uniform(ctypes.byref(a))
            if rc != 2:
                break
            cap = min(budget, 2 * cap)
    finally:
        lib.ampsim_plan_free(a.state)
    if rc == 1:
        raise DelayError(f"message {a.err_msg} would arrive at its send time {a.err_t!r} (delay {a.err_d!r} "
                         "is below the clock's resolution); the planner cannot order it")
    done = int(a.done)
    cols = {k: v[:done] for k, v in cols.items()}
    cols["final"] = last
    return cols, done, int(a.sent)


#: Rows the compiled uniform planner's arrays start with (they grow x2 only for a run longer than that).
NATIVE_ROWS = 1 << 24

#: The compiled uniform planner's columns and their types (the schedule's).
_NATIVE_COLUMNS = {"node": np.int32, "msg_id": np.int64, "cause": np.int32, "prev": np.int32, "slot": np.int32,
                   "src": np.int32, "level": np.int32, "time": np.float64}


class PlanCache:
    """An LRU of schedules keyed by :func:`plan_key` (a hash of graph, runs, delays, fifo, budget)."""

    def __init__(self, maxsize: int = 100_000, max_deliveries: int = 1 << 17) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        #: a schedule with more deliveries is returned but not kept: one large run's compiled program
        #: is cached by the executor, and keeping the schedule beside it (44-45 bytes per delivery,
        #: 8.8 MB for a PubMed run of 197k deliveries) would raise that run's peak by a sixth
        self.max_deliveries = max_deliveries
        self._items: OrderedDict[str, Schedule] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, graph: Graph, runs: Sequence[tuple[Sequence[int], int]], budget: int,
            delay: Union[str, float, DelayModel], fifo: bool, ties: Optional[str] = None,
            graph_hash: Optional[str] = None, loss: float = 0.0, rule=None) -> Schedule:
        """The cached schedule, or a fresh :func:`plan` (stored when the delay model is cacheable)."""
        ties = engine_ties() if ties is None else ties
        key = plan_key(graph, runs, budget, delay, fifo, ties, graph_hash, loss, rule)
        if key is not None and key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        sched = plan(graph, runs, budget, delay, fifo, ties, loss, rule)
        if key is not None and self.maxsize and sched.num_deliveries <= self.max_deliveries:
            self._items[key] = sched
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return sched

    def clear(self) -> None:
        self._items.clear()
