"""Copies in flight and node mailboxes: the SimPy events of AMP's channels (semantics 2 and 3).

A message copy is its own timer (:class:`Copy`), or, under constant delays, a whole broadcast
travels as one :class:`Burst`; a node's mailbox (:class:`Mailbox`) hands a delivered copy to the
node's waiting get (:class:`Take`) at once, URGENT. :class:`~ampsim.engine.simulation.Simulation`
builds and schedules them; their memory per copy is what ``benchmarks/engine.py`` measures.
"""
from __future__ import annotations

import simpy
from simpy.events import PENDING, URGENT, Event

from .messages import Message

__all__ = ["Copy", "Burst", "Item", "Take", "Mailbox"]


class Copy:
    """One message copy in flight, which is also its own SimPy timer (semantics 2).

    SimPy's ``Environment.step`` pops ``(time, priority, event id, event)`` from its
    heap and calls each of ``event.callbacks`` with the event; that (and ``_ok``) is
    all it asks of an event. A copy is therefore scheduled exactly as a ``Timeout``
    is (``NORMAL`` priority, the next event id, so the order is unchanged), and its
    ``callbacks`` is the receiver's shared one-element tuple ``(mailbox.deliver,)``.
    With ``__slots__`` and no per-copy callback list, closure or value tuple, a copy
    and its heap entry cost under 0.3 KB in flight (0.6 KB as a ``Timeout``).
    Under constant delays a whole broadcast travels as one :class:`Burst` instead.
    """

    __slots__ = ("msg_id", "cause", "src", "dst", "t_send", "delay", "message", "callbacks")
    _ok = True  # a timer never fails

    def __init__(self, msg_id: int, cause: int, src: int, dst: int, t_send: float, delay: float,
                 message: Message, callbacks: tuple) -> None:
        self.msg_id = msg_id
        self.cause = cause
        self.src = src
        self.dst = dst
        self.t_send = t_send
        self.delay = delay
        self.message = message
        self.callbacks = callbacks

    def __repr__(self) -> str:
        return f"<Copy {self.msg_id}: {self.src} -> {self.dst} at {self.t_send}+{self.delay}>"


class Burst:
    """Every copy of one broadcast under constant delays, in flight as one object (semantics 2 and 3).

    With constant delays and no loss, all copies of a broadcast arrive at the same
    instant and would hold consecutive event ids. A burst holds them as the
    broadcast (sender, cause, send time, delay, message), the receivers (the
    sender's neighbour tuple, shared with the graph) and the first ``msg_id``; it
    sits in SimPy's heap once and, each time it fires, delivers the next copy alone
    (built then, as a :class:`Copy`) and pushes itself again with the same time and
    event id. The order of deliveries is therefore exactly that of one timer per
    copy, while a flood of complete:800 holds 800 heap entries and no per-copy
    object instead of 640,000 of each.
    """

    __slots__ = ("src", "cause", "t_send", "delay", "message", "dsts", "first", "index", "eid", "callbacks")
    _ok = True

    def __init__(self, src: int, cause: int, t_send: float, delay: float, message: Message,
                 dsts: tuple, first: int, eid: int, callbacks: tuple) -> None:
        self.src = src
        self.cause = cause
        self.t_send = t_send
        self.delay = delay
        self.message = message
        self.dsts = dsts
        self.first = first
        self.index = 0
        self.eid = eid
        self.callbacks = callbacks

    def pending(self) -> list[Copy]:
        """The copies not yet delivered, in delivery order."""
        return [
            Copy(self.first + i, self.cause, self.src, self.dsts[i], self.t_send, self.delay, self.message, None)
            for i in range(self.index, len(self.dsts))
        ]


Item = Copy


class Take(Event):
    """A node's get on its mailbox: succeeds (URGENT) with the oldest copy, at once or when one is delivered.

    ``simpy.Store.get`` with only what a mailbox needs: no put queue to wake, no
    scan of the get queue (a mailbox has one reader, its node). A node waits on one
    get at a time, so its mailbox keeps one ``Take`` and re-arms it (:meth:`Mailbox.get`)
    instead of allocating an event per delivery.
    """

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.callbacks = []
        self._ok = True
        self._value = PENDING


class Mailbox:
    """A node's mailbox, a ``simpy.Store`` cut to what AMP needs: a delivered copy wakes the node's get at once, URGENT (semantics 3).

    With a plain ``Store.put`` the waiting get is triggered only when the put event
    itself is processed, after every other timer of the same instant; copies then
    pile up in the store and a node can process a later copy before an earlier
    copy to another node. ``deliver`` hands the copy to the waiting :class:`Take`
    synchronously (or keeps it in ``items`` when the node is not waiting). A mailbox
    has one reader and no capacity, so it keeps only ``items`` and ``get_queue``
    (``__slots__``): with hundreds of nodes the per-node state stays in cache.
    """

    __slots__ = ("_env", "items", "get_queue", "_take")

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self.items: list[Copy] = []
        self.get_queue: list[Take] = []
        self._take = Take(env)

    def deliver(self, item: Copy) -> None:
        """The copy's timer callback: wake the waiting get with ``item`` (URGENT), or keep it."""
        waiting = self.get_queue
        if waiting:
            take = waiting.pop()
            take._ok = True
            take._value = item
            self._env.schedule(take, URGENT)
        else:
            self.items.append(item)

    def get(self) -> Take:
        """The next copy, as an event (yielded by the node's process): the mailbox's one ``Take``, re-armed."""
        take = self._take
        take.callbacks = []
        if self.items:
            take._value = self.items.pop(0)
            self._env.schedule(take, URGENT)
        else:
            take._value = PENDING
            self.get_queue.append(take)
        return take
