"""The engine's event order without tensors: one run's copies in flight (:class:`EventQueue`), the
same-instant tie rule of the installed engine (:func:`engine_ties`), FIFO channels (:func:`fifo_delay`)
and message loss, exactly as :class:`~ampsim.engine.simulation.Simulation` does them (Section 3).

Message loss (the engine's ``loss``): every copy a broadcast sends draws its delay first (the
delay stream is the same with or without loss), then one number from ``stream(seed, "loss")``, in
msg_id order; the copy is lost when that number is below ``loss``. A lost copy keeps its msg_id,
is never delivered, and does not move a FIFO channel's last arrival.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from functools import lru_cache
from typing import Optional, Union

from ..engine.delays import Constant, DelayModel, Uniform
from ..engine.errors import DelayError
from ..engine.messages import Message
from ..engine.rng import stream

__all__ = ["EventQueue", "TIES", "engine_ties", "fifo_delay"]

INF = math.inf

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
                 "next_id", "sent", "last_arrival", "model", "ahead", "head", "lose", "p_loss", "lost")

    def __init__(self, nbrs, model: DelayModel, seed: int, fifo: bool, ties: str, loss: float = 0.0) -> None:
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
        # message loss (module docstring): one draw per sent copy, msg_id order
        self.p_loss = float(loss)
        self.lose = stream(seed, "loss").random if self.p_loss > 0 else None
        self.lost = 0

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
        lose, p = self.lose, self.p_loss
        if self.constant:
            ta = t + self.value
            if lose is None:
                self.queue.extend((ta, mid + k, u, cause, v, -1) for k, u in enumerate(nb))
                return
            for k, u in enumerate(nb):
                if lose() < p:
                    self.lost += 1
                else:
                    self.queue.append((ta, mid + k, u, cause, v, -1))
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
            if lose is not None and lose() < p:
                self.lost += 1
                mid += 1
                continue
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


class _AlwaysEmit:
    """The probe's rule: count the messages received, broadcast the count after each one (the
    always-emit schedule the planner plans; the Echo protocol, without importing the protocols)."""

    name = "always-emit"
    assumes = frozenset()

    def start(self, node):
        return 0, None

    def receive(self, node, state, message):
        return state + 1, Message("echo", state + 1)


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
    from ..engine.simulation import Simulation
    from ..trace.tracers import ListTracer

    tracer = ListTracer(states=False)
    sim = Simulation([[0, 0, 1], [2, 3, 2]], _AlwaysEmit(), num_nodes=4, tracer=tracer,
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
