"""Planner: the engine's schedule of an always-emit run, computed without tensors (Section 3).

When every processed delivery makes its node broadcast (AMP-RNN/GRU/LSTM without a
gate, as the authors' code), *which* deliveries happen and in which order does not
depend on any value: it is fixed by the graph, the start nodes, the delays and the
budget. The planner replays the engine's event queue and records, per delivery,
``(run, dst, msg_id, cause, prev)`` in processing order (constant delays: one *wave* of
copies per instant, with numpy, :func:`_plan_waves`; uniform delays: one heap with a
calendar of later buckets, :func:`_plan_uniform`; any other model: :class:`EventQueue`):

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
from collections import OrderedDict, deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence, Union

import numpy as np

from ..engine.delays import Constant, DelayModel, Exponential, Pareto, Uniform, get_delay
from ..engine.errors import DelayError
from ..engine.rng import stream
from ..graphs import Graph

__all__ = [
    "Schedule",
    "PlannedDelivery",
    "plan",
    "plan_key",
    "runs_key",
    "seeded",
    "PlanCache",
    "start_slots",
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
    chosen: dict[int, int] = {}
    for j, v in enumerate(starts):
        v = int(v)
        if not 0 <= v < num_nodes:
            raise ValueError(f"start node {v} is not in the graph (nodes 0..{num_nodes - 1})")
        chosen[v] = j
    return sorted(chosen.items())


def delay_key(delay: Union[str, float, DelayModel]) -> Optional[str]:
    """A cache key for a delay model, or ``None`` when its description does not pin it down."""
    model = get_delay(delay)
    if isinstance(model, (Constant, Uniform, Exponential, Pareto)):  # described by their parameters alone
        return repr(sorted(model.describe().items()))
    return None


def plan_key(graph: Graph, runs: Sequence[tuple[Sequence[int], int]], budget: int,
             delay: Union[str, float, DelayModel], fifo: bool, ties: str = "mailbox",
             graph_hash: Optional[str] = None) -> Optional[str]:
    """SHA-256 of everything a schedule depends on (``None`` for uncacheable delay models).

    ``graph_hash`` may be passed when the caller already knows it (:func:`neighbour_hash`).
    """
    dk = delay_key(delay)
    if dk is None:
        return None
    h = hashlib.sha256(f"{budget}|{dk}|{bool(fifo)}|{ties}|{graph_hash or neighbour_hash(graph)}|".encode())
    runs = [(tuple(int(v) for v in s), int(seed)) for s, seed in runs]
    h.update(runs_key(runs, seeded(delay)).encode())
    return h.hexdigest()


def seeded(delay: Union[str, float, DelayModel]) -> bool:
    """Whether a schedule under ``delay`` depends on the run's seed (every model but ``constant``)."""
    return get_delay(delay).name != "constant"


def runs_key(runs: Sequence[tuple[tuple[int, ...], int]], with_seeds: bool) -> str:
    """The part of a cache key that the runs ``[(starts, seed), ...]`` contribute: the start nodes, and
    the seeds only ``with_seeds`` (see :func:`seeded`).

    Under constant delays a schedule does not depend on the seed, so a training loop that
    draws new seeds every epoch (as :mod:`ampsim.train.loop` does) still hits the cache.
    """
    return repr(list(runs) if with_seeds else [s for s, _ in runs])


def neighbour_hash(graph: Graph) -> str:
    """SHA-256 of a graph's size and sorted neighbour lists (what a schedule depends on)."""
    h = hashlib.sha256(str(graph.num_nodes).encode())
    for u, nb in enumerate(graph.neighbors):
        h.update(f";{u}:{','.join(map(str, nb))}".encode())
    return h.hexdigest()


def plan(graph: Graph, runs: Sequence[tuple[Sequence[int], int]], budget: int,
         delay: Union[str, float, DelayModel] = "constant", fifo: bool = False,
         ties: Optional[str] = None) -> Schedule:
    """The engine's processing order of always-emit runs ``[(starts, seed), ...]`` on ``graph``.

    Equal to ``Simulation(graph, rule, delay, fifo, seed, start={v: ...}).run(max_deliveries=budget)``
    for any rule that always emits, delivery for delivery (tested against engine traces).
    ``ties`` orders copies that arrive at the same instant (see :func:`engine_ties`);
    ``None`` uses the installed engine's rule.
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
        if isinstance(model, Constant) and budget >= WAVES_MIN_BUDGET:
            if csr is None:
                csr = _csr(graph)
            cols, done, copies = _plan_waves(csr, model, pairs, slot_base, budget, ties)
        elif isinstance(model, Uniform) and ties == "msg_id" and not fifo:
            cols, done, copies = _plan_uniform(graph, model, seed, pairs, slot_base, budget)
        else:
            cols, done, copies = _plan_queue(graph, model, seed, bool(fifo), ties, pairs, slot_base, budget)
        if offset + len(cols["node"]) >= 2 ** 31 - 1:
            cols["cause"], cols["prev"] = cols["cause"].astype(np.int64), cols["prev"].astype(np.int64)
        node, cause, prev = cols["node"], cols["cause"], cols["prev"]
        cause[cause >= 0] += offset
        prev[prev >= 0] += offset
        # the last delivery at each node: last occurrence in processing order
        rev = node[::-1]
        uniq, first_rev = np.unique(rev, return_index=True)
        final[r, uniq] = offset + len(node) - 1 - first_rev
        cols["run"] = np.full(len(node), r, dtype=np.int32)
        parts.append(cols)
        offset += len(node)
        slot_base += len(pairs)
        reasons.append("message_budget" if done == budget else "quiescent")
        sent.append(copies)
    keys = ("run", "node", "msg_id", "cause", "prev", "slot", "src", "time", "level")
    wide = offset >= 2 ** 31 - 1
    dtypes = {k: np.float64 if k == "time" else np.int64 if (k == "msg_id" or wide) else np.int32 for k in keys}
    arr = {k: (parts[0][k] if len(parts) == 1 else np.concatenate([c[k] for c in parts]) if parts else np.zeros(0))
           .astype(dtypes[k], copy=False) for k in keys}
    return Schedule(n, len(runs), arr["run"], arr["node"], arr["msg_id"], arr["cause"], arr["prev"],
                    arr["slot"], arr["src"], arr["time"], arr["level"], final, tuple(reasons), tuple(sent))


#: Constant-delay runs with at least this budget are planned wave by wave with numpy (else one by one).
WAVES_MIN_BUDGET = 256


def _csr(graph: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, degree) of the graph's sorted neighbour lists."""
    deg = np.fromiter((len(nb) for nb in graph.neighbors), dtype=np.int64, count=graph.num_nodes)
    indptr = np.zeros(graph.num_nodes + 1, dtype=np.int64)
    np.cumsum(deg, out=indptr[1:])
    indices = np.fromiter((u for nb in graph.neighbors for u in nb), dtype=np.int64, count=int(indptr[-1]))
    return indptr, indices, deg


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


def _plan_queue(graph: Graph, model: DelayModel, seed: int, fifo: bool, ties: str, pairs, slot_base: int,
                budget: int) -> tuple[dict, int, int]:
    """One run through the event queue, delivery by delivery (any delay model)."""
    queue = EventQueue(graph.neighbors, model, seed, fifo, ties)
    for j, (v, _) in enumerate(pairs):
        queue.start(v, slot_base + j)
    node, mids, causes, prevs, slots, srcs, times, levels = ([] for _ in range(8))
    last: dict[int, int] = {}
    done = 0
    pop, broadcast = queue.pop, queue.broadcast
    while done < budget:
        item = pop()
        if item is None:
            break
        t, mid, v, cause, src, slot = item
        p = last.get(v, -1)
        lc = levels[cause] if cause >= 0 else -1
        lp = levels[p] if p >= 0 else -1
        node.append(v)
        mids.append(mid)
        causes.append(cause)
        prevs.append(p)
        slots.append(slot)
        srcs.append(src)
        times.append(t)
        levels.append(1 + (lc if lc > lp else lp))
        last[v] = done
        done += 1
        broadcast(t, v, done - 1)
    i64 = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    cols = {"node": i64(node), "msg_id": i64(mids), "cause": i64(causes), "prev": i64(prevs), "slot": i64(slots),
            "src": i64(srcs), "time": np.asarray(times, dtype=np.float64), "level": i64(levels)}
    return cols, done, queue.sent


class EventQueue:
    """One run's copies in flight, popped in the engine's processing order.

    Items are ``(arrival, msg_id, dst, cause, src, slot)``; ``cause`` is whatever the
    caller passes to :meth:`broadcast` (a delivery index or a buffer row). Copies are
    handed out one *instant* at a time: all copies arriving at the same time t are
    taken together (every one of them was sent before t, since delays are > 0) and
    ordered by the tie rule (``"mailbox"``: grouped by receiver, receivers in order of
    their first copy's msg_id, each receiver's copies by msg_id; ``"msg_id"``: by
    msg_id). Constant delays arrive in send order, so their queue is a FIFO; any other
    model uses a heap on (arrival, msg_id).

    :meth:`window` serves the lock-step executor: the next copies that may be processed
    together because none of them can be affected by another's broadcast (see there).
    Uniform delays ignore (msg_id, src, dst), so their draws can be made ahead of time,
    in the same order, to bound how soon a broadcast can arrive.
    """

    __slots__ = ("nbrs", "sample", "fifo", "ties", "constant", "value", "queue", "block",
                 "next_id", "sent", "last_arrival", "model", "ahead", "head")

    def __init__(self, nbrs, model: DelayModel, seed: int, fifo: bool, ties: str) -> None:
        self.nbrs = nbrs
        self.model = model
        self.constant = isinstance(model, Constant)
        self.value = float(model.value) if self.constant else 0.0
        if self.constant and not 0.0 < self.value < INF:
            raise DelayError(f"constant delay must be finite and > 0, got {self.value!r}")
        self.sample = None if self.constant else model.bind(stream(seed, "delays"))
        self.fifo = fifo and not self.constant  # constant delays are FIFO by construction
        self.ties = ties
        self.queue: Union[deque, list] = deque() if self.constant else []
        self.block: deque = deque()
        self.next_id = 0
        self.sent = 0
        self.last_arrival: dict[tuple[int, int], float] = {}
        # delays drawn ahead (Uniform only: its sampler ignores its arguments), consumed from ``head``
        self.ahead: Optional[list] = [] if isinstance(model, Uniform) else None
        self.head = 0

    def start(self, v: int, slot: int) -> None:
        """Inject a start message for ``v`` (t = 0, delay 0, cause -1)."""
        item = (0.0, self.next_id, v, -1, -1, slot)
        self.next_id += 1
        self.sent += 1
        if self.constant:
            self.queue.append(item)
        else:
            heapq.heappush(self.queue, item)

    def broadcast(self, t: float, v: int, cause: int) -> None:
        """Send one copy to every neighbour of ``v`` at time ``t``, delays drawn in msg_id order."""
        nb = self.nbrs[v]
        mid = self.next_id
        self.next_id = mid + len(nb)
        self.sent += len(nb)
        if self.constant:
            ta = t + self.value
            self.queue.extend((ta, mid + k, u, cause, v, -1) for k, u in enumerate(nb))
            return
        sample, heap, ahead = self.sample, self.queue, self.ahead
        for u in nb:
            if ahead is not None and self.head < len(ahead):
                d = ahead[self.head]
                self.head += 1
            else:
                d = sample(mid, v, u)
            if not 0.0 < d < INF:
                raise DelayError(f"delay model {self.model.name!r} gave delay {d!r} for message {mid} "
                                 f"({v} -> {u}); delays must be finite and > 0")
            if self.fifo:
                d = fifo_delay(self.last_arrival, v, u, t, d)
            if not t + d > t:
                raise DelayError(f"message {mid} ({v} -> {u}) would arrive at its send time {t!r} "
                                 f"(delay {d!r} is below the clock's resolution); the planner cannot order it")
            heapq.heappush(heap, (t + d, mid, u, cause, v, -1))
            mid += 1

    def pop(self) -> Optional[tuple]:
        """The next copy in processing order, or ``None`` when nothing is in flight."""
        if not self.block:
            if not self.queue:
                return None
            self.block = deque(self.instant())
        return self.block.popleft()

    def instant(self) -> list[tuple]:
        """Remove and return every copy of the earliest arrival time, in processing order."""
        q = self.queue
        if self.constant:
            t = q[0][0]
            items = []
            while q and q[0][0] == t:
                items.append(q.popleft())
        else:
            t = q[0][0]
            items = []
            while q and q[0][0] == t:
                items.append(heapq.heappop(q))
        if self.ties == "mailbox" and len(items) > 1:
            groups: dict[int, list] = {}
            for it in items:
                groups.setdefault(it[2], []).append(it)
            items = [it for g in groups.values() for it in g]
        return items

    def pending(self) -> bool:
        return bool(self.block) or bool(self.queue)

    def window(self, limit: int) -> list[tuple]:
        """Up to ``limit`` next copies (processing order) that no broadcast among them can precede.

        Copy j may join copies 1..j-1 when every copy those could send arrives no earlier
        than j: their sends leave at t_i >= t_1 with delays >= the smallest delay d_min
        they can draw, so ``t_j <= t_1 + d_min`` suffices (a send arriving exactly at t_j
        has a larger msg_id and goes after j; FIFO only lengthens delays). d_min is the
        constant delay, or for uniform delays the smallest of the next W pre-drawn delays,
        W = the copies 1..j-1 can send (their receivers' degrees). Other models, and the
        ``"mailbox"`` tie rule, take one instant at a time. Copies at the same receiver may
        share a window: the caller processes them in order (rounds).
        """
        if limit < 1:
            return []
        if self.ties != "msg_id" or (not self.constant and self.ahead is None):
            if not self.block:
                if not self.queue:
                    return []
                self.block.extend(self.instant())
            take = min(len(self.block), limit)
            return [self.block.popleft() for _ in range(take)]
        q = self.queue
        items: list[tuple] = []
        if self.block:  # only when pop() was used before; finish that instant first
            while self.block and len(items) < limit:
                items.append(self.block.popleft())
            return items
        if not q:
            return []
        constant = self.constant
        first = q.popleft() if constant else heapq.heappop(q)
        items.append(first)
        t1 = first[0]
        if constant:
            bound = t1 + self.value
            while q and len(items) < limit and q[0][0] <= bound:
                items.append(q.popleft())
            return items
        ahead, sample, nbrs = self.ahead, self.sample, self.nbrs
        k = self.head
        want = self.head + len(nbrs[first[2]])
        dmin = INF
        while True:
            while k < want:
                if k >= len(ahead):
                    ahead.append(sample(-1, -1, -1))
                if ahead[k] < dmin:
                    dmin = ahead[k]
                k += 1
            if not q or len(items) >= limit or not q[0][0] <= t1 + dmin:
                break
            it = heapq.heappop(q)
            items.append(it)
            want += len(nbrs[it[2]])
        if self.head > 4096 and self.head * 2 > len(ahead):
            del ahead[: self.head]
            self.head = 0
        return items


TIES = ("mailbox", "msg_id")


@lru_cache(maxsize=1)
def engine_ties() -> str:
    """The engine's order of copies that arrive at the same instant, found by a probe run.

    SimPy puts a copy into the receiver's store from its timer's callback, and the
    store wakes the receiver only when that *put* event is processed, after every timer
    of the instant has fired: a woken receiver then drains all its copies of the instant
    before the next receiver wakes (``"mailbox"``). An engine that hands copies over
    strictly in (arrival, msg_id) order gives ``"msg_id"``. The probe: starts at 0 and
    1 on edges 0-2, 0-3, 1-2; at t = 1 copies 2 (to 2), 3 (to 3), 4 (to 2) arrive.
    """
    from ..engine.messages import Message
    from ..engine.simulation import Simulation
    from ..protocols.echo import Echo
    from ..trace.tracers import ListTracer

    tracer = ListTracer(states=False)
    sim = Simulation([[0, 0, 1], [2, 3, 2]], Echo(), num_nodes=4, tracer=tracer,
                     start={0: Message("s"), 1: Message("s")})
    sim.run(max_deliveries=5)
    order = [r.msg_id for r in tracer.records if r.event == "deliver"][2:5]
    if order == [2, 4, 3]:
        return "mailbox"
    if order == [2, 3, 4]:
        return "msg_id"
    raise RuntimeError(f"the engine processed the probe's instant t=1 as {order}; the planner knows neither rule")


def fifo_delay(last_arrival: dict, v: int, u: int, now: float, d: float) -> float:
    """The engine's FIFO rule: the delay that makes this copy arrive no earlier than the last on (v, u)."""
    last = last_arrival.get((v, u), -INF)
    if now + d < last:
        d = last - now
        while now + d < last:
            d = math.nextafter(d, INF)
    last_arrival[(v, u)] = now + d
    return d


class PlanCache:
    """An LRU of schedules keyed by :func:`plan_key` (a hash of graph, runs, delays, fifo, budget)."""

    def __init__(self, maxsize: int = 100_000, max_deliveries: int = 1 << 19) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        #: a schedule with more deliveries is returned but not kept (one large run: its compiled
        #: program is cached by the executor, and the schedule's 44 bytes per delivery are not)
        self.max_deliveries = max_deliveries
        self._items: OrderedDict[str, Schedule] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, graph: Graph, runs: Sequence[tuple[Sequence[int], int]], budget: int,
            delay: Union[str, float, DelayModel], fifo: bool, ties: Optional[str] = None,
            graph_hash: Optional[str] = None) -> Schedule:
        """The cached schedule, or a fresh :func:`plan` (stored when the delay model is cacheable)."""
        ties = engine_ties() if ties is None else ties
        key = plan_key(graph, runs, budget, delay, fifo, ties, graph_hash)
        if key is not None and key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        sched = plan(graph, runs, budget, delay, fifo, ties)
        if key is not None and self.maxsize and sched.num_deliveries <= self.max_deliveries:
            self._items[key] = sched
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return sched

    def clear(self) -> None:
        self._items.clear()
