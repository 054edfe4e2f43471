"""Simulation: AMP (Section 3) on SimPy — one process and one mailbox per node, one timer per message copy.

The semantics (docs/design.md pins each with a test):

1. A node acts at start-up (``rule.start``) or when one message is delivered
   (``rule.receive``); it handles it in zero time and emits at most one message,
   broadcast to every neighbour in ascending index order.
2. A broadcast schedules one SimPy timeout per receiving edge, whose callback puts
   the copy into the receiver's ``simpy.Store`` mailbox. Its delay is drawn at send
   time, per copy. With ``fifo=True`` the arrival is ``max(t + d, last arrival on
   that edge)``.
3. Deliveries are processed in increasing ``(arrival time, msg_id)`` order, where
   ``msg_id`` numbers copies in the order they were sent. (A timer's callback hands
   its copy to the receiver's waiting get at once, and the get is scheduled
   URGENT, so the node processes the copy right after its timer fires, before any
   other timer of the same instant; SimPy orders those timers by event id, which
   is send order.) With constant delays this is the reference code's FIFO queue.
4. All randomness comes from named streams of ``seed`` (``delays``, ``loss``).
5. ``run`` ends with a reason: ``quiescent``, ``stalled`` (quiet, but the rule's
   ``finished`` is false somewhere; the stuck nodes are named), ``time_limit``,
   ``message_budget`` (processed deliveries, as the paper's budgets) or
   ``halted`` (``stop_when`` said so). Delays <= 0 or non-finite are errors.

This module is the run: set-up, broadcast, the node processes, stopping. The copies in flight and
the mailboxes are :mod:`ampsim.engine.mailbox`; reading start nodes and features from the arguments
is :mod:`ampsim.engine.inputs`.
"""
from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import simpy
from simpy.core import EmptySchedule, StopSimulation
from heapq import heappush

from simpy.events import NORMAL, URGENT, Event

from .._version import __version__
from .. import validate as V
from ..graphs import Graph, as_graph
from ..trace.records import DELIVER, DROP, SEND, EndRecord, MessageRecord, StateRecord, summarize
from ..trace.records import FORMAT as TRACE_FORMAT, VERSION as TRACE_VERSION
from ..trace.tracers import Tracer, as_tracer
from .delays import Constant, DelayModel, get_delay, sampler
from .errors import AssumptionError, DelayError, GraphError, RuleError
from .inputs import container_features, features_json, start_node
from .mailbox import Burst, Copy, Item, Mailbox, Take
from .messages import START, Message, NodeView
from .rng import stream
from .rule import ASSUMPTIONS, NodeRule, check_output, check_rule, rule_name, rule_spec

__all__ = ["Simulation", "RunResult", "Mailbox", "Take", "Copy", "Burst", "TRACE_FORMAT", "TRACE_VERSION", "DEFAULT_BUDGET"]

DEFAULT_BUDGET = 1_000_000
"""Deliveries one ``run()`` may process when it is given neither ``until`` nor a budget: no run hangs."""

INF = math.inf
_NO_FULL_GC = 1 << 30  # gen-2 threshold during run(): no full collection (see run)
_new = tuple.__new__
"""The traced hot path builds records as ``_new(MessageRecord, (fields...))``: the same named tuple as
``MessageRecord(...)`` without the Python-level ``__new__`` (a third of the cost of building one)."""
_UNSET = object()
_ATOMS = frozenset({int, float, str, bool, bytes, type(None)})
"""Immutable values whose trace text a node may reuse when the next payload or state *is* the same
object (flooding's hop counts, a protocol's unchanged state): text of an object that could change in
place (a list, a tensor) is always made anew."""


@dataclass(frozen=True)
class RunResult:
    """How a ``run()`` ended: ``reason``, the clock, counts, stuck nodes, final states."""

    reason: str
    time: float
    deliveries: int
    total_deliveries: int
    sent: int
    dropped: int
    in_flight: int
    stuck: tuple[int, ...]
    states: tuple


class Simulation:
    """AMP on a graph: ``Simulation(graph, rule, delay="uniform", fifo=False, seed=0, tracer=None)``.

    ``graph``: networkx graph, :class:`~ampsim.graphs.Graph` or ``edge_index`` (+ ``num_nodes``).
    ``start``: a node index (default 0) or a list of them receive ``start_message``;
    ``"all"`` sends it to every node; ``None`` sends none (rules that speak at start-up);
    a dict ``{node: Message}`` gives each start node its own message.
    ``loss``: probability that a copy is lost at send time (traced as a drop), or a function
    ``lost(msg_id, src, dst) -> bool`` (replay uses this to lose exactly the recorded copies).
    ``features``: per-node rows (list, array, tensor); defaults to the networkx attribute ``x``.
    They are written to the trace header when JSON can hold them exactly, so replay needs no extra input.
    ``views[v]`` is the :class:`NodeView` handed to the rule for node ``v`` on every call.
    """

    def __init__(
        self,
        graph: Any,
        rule: NodeRule,
        delay: Union[str, float, DelayModel] = "constant",
        fifo: bool = False,
        seed: int = 0,
        tracer: Optional[Tracer] = None,
        start: Union[int, Sequence[int], str, dict, None] = 0,
        start_message: Message = START,
        features: Any = None,
        num_nodes: Optional[int] = None,
        loss: Union[float, Callable[[int, int, int], bool]] = 0.0,
        allow_isolated: bool = False,
        budget: Optional[int] = None,
    ) -> None:
        labels = None
        if features is None:
            features, labels = container_features(graph)
        self.graph: Graph = as_graph(graph, num_nodes=V.optional_positive_int("num_nodes", num_nodes))
        n = self.graph.num_nodes
        if not V.boolean("allow_isolated", allow_isolated) and self.graph.isolated():
            lone = [self.graph.labels[v] for v in self.graph.isolated()]
            raise GraphError(
                f"node(s) {lone[:10]} have no neighbours and can never receive a message; "
                "pass allow_isolated=True to simulate anyway"
            )
        self._assumes = check_rule(rule)
        self.rule = rule
        self.delay = get_delay(delay)
        self.fifo = V.boolean("fifo", fifo)
        self.seed = V.integer("seed", seed)
        if tracer is not None:
            tracer = as_tracer(tracer)  # missing optional hooks filled in, a broken contract named
        if not isinstance(start_message, Message):
            raise V.ArgumentError(f"start_message must be a Message, got {V.show(start_message)}")
        if callable(loss):
            self.loss, self._lose = -1.0, self._first_loss(loss)
        else:
            self.loss = V.probability("loss", loss, allow_one=False)
            if self.loss > 0:
                draw, p = stream(self.seed, "loss").random, self.loss
                self._lose = lambda msg_id, src, dst: draw() < p
            else:
                self._lose = None
        self.budget = V.optional_positive_int("budget", budget)
        self._check_assumptions()

        self.env = simpy.Environment(initial_time=0.0)
        self.tracer = tracer
        self._wants_states = bool(tracer is not None and tracer.wants_states)
        self._sample = sampler(self.delay, stream(self.seed, "delays"))  # float64 delays from any model
        self._last_arrival: dict[tuple[int, int], float] = {}
        self._next_id = 0
        self._sent = 0
        self._dropped = 0
        self._deliveries = 0
        self._t_active = 0.0  # the instant of the last event a node handled (see _time_up)
        self._limit = -1
        self._stop_when: Optional[Callable[["Simulation"], bool]] = None
        self._stop_reason = ""
        self._error: Optional[BaseException] = None
        self._last: Optional[Item] = None
        self._halted = getattr(rule, "halted", None)
        self._finished = getattr(rule, "finished", None)
        self._summ = getattr(rule, "summarize", summarize)
        self._summ_state = getattr(rule, "summarize_state", summarize)
        assumes = self._assumes
        self._needs_sender = "sender" in assumes

        rows = V.features_rows(features, n, labels if labels is not None else self.graph.labels)
        degs = self.graph.degrees
        self.views = tuple(
            NodeView(rows[v], degs[v] if "degree" in assumes else None, v if "ids" in assumes else None)
            for v in range(n)
        )
        self.mailboxes = [Mailbox(self.env) for _ in range(n)]
        self._deliver_cb = [(box.deliver,) for box in self.mailboxes]
        self._fire_burst_cb = (self._fire_burst,)
        self._constant = float(self.delay.value) if type(self.delay) is Constant and self._lose is None else None
        self.start_nodes = self._start_nodes(start)
        self.start_message = start_message
        if tracer is not None:
            self._check_summaries()
            tracer.run_start(self.header())

        self.states: list[Any] = [None] * n
        for v in range(n):
            self.states[v], out = check_output(rule, "start", rule.start(self.views[v]))
            if self._wants_states:
                tracer.state(StateRecord(0.0, v, -1, self._text_of("summarize_state", self._summ_state(self.states[v]))))
            if out is not None:
                self._broadcast(v, out, -1)
        for v, message in self.start_nodes:
            self._inject(v, message)
        for v in range(n):
            self.env.process(self._node(v))

    # ------------------------------------------------------------------ set-up
    def _check_assumptions(self) -> None:
        assumes = self._assumes
        name = rule_name(self.rule)
        unknown = assumes - ASSUMPTIONS
        if unknown:
            raise AssumptionError(f"rule {name!r} declares unknown assumption(s) {sorted(unknown)}; known: {sorted(ASSUMPTIONS)}")
        if "random_delays" in assumes and not self.delay.random:
            raise AssumptionError(
                f"rule {name!r} needs random message delays (Lemma 4.2), but the delay model is "
                f"{self.delay.name!r}: the model gives no randomness under constant delays; any symmetry "
                "breaking comes from the engine's deterministic tie order, which is not part of the model; "
                "use delay='uniform'"
            )
        if "overtaking" in assumes and self.fifo:
            raise AssumptionError(
                f"rule {name!r} needs messages to overtake each other on an edge, but fifo=True "
                "keeps every channel in order; use fifo=False"
            )
        if "fifo" in assumes and not (self.fifo or self.delay.name == "constant"):
            raise AssumptionError(
                f"rule {name!r} assumes FIFO channels, but fifo=False with {self.delay.name!r} delays; "
                "pass fifo=True"
            )

    def _first_loss(self, lost: Callable[[int, int, int], Any]) -> Callable[[int, int, int], Any]:
        """A user's ``loss(msg_id, src, dst)``: its first answer must be a bool (a :class:`RuleError`
        otherwise, naming the function); after it the simulation calls the user's function directly."""
        V.callable_or_none("loss", lost)

        def first(msg_id: int, src: int, dst: int) -> bool:
            answer = lost(msg_id, src, dst)
            if not (type(answer) is bool or V._is_np_bool(answer)):
                name = getattr(lost, "__qualname__", type(lost).__name__)
                raise RuleError(f"loss function {name}(msg_id, src, dst) must return True or False, "
                                f"got {V.show(answer)}")
            self._lose = lost  # checked once: the next broadcast calls it unwrapped
            return answer

        return first

    def _check_summaries(self) -> None:
        """A traced rule's ``summarize`` returns text: checked once, on the start message (which the trace
        summarises first anyway), so a record never holds another type; ``summarize_state`` is checked on
        every start-up state."""
        if self._summ is not summarize:
            self._text_of("summarize", self._summ(self.start_message.payload))

    def _text_of(self, hook: str, text: Any) -> str:
        if type(text) is not str:
            raise RuleError(f"{type(self.rule).__name__}.{hook} must return a str, got {V.show(text)}")
        return text

    def _start_nodes(self, start: Any) -> list[tuple[int, Optional[Message]]]:
        """The start policy (semantics 5) as ``(node, message or None)`` pairs, every node checked; an array
        or tensor of indices reads as the list of its values (a 0-d one as its value)."""
        n = self.graph.num_nodes
        if start is None:
            return []
        start = V.plain(start)
        if isinstance(start, str):
            if start != "all":
                raise V.ArgumentError(
                    f"start must be a node index, a list of them, a dict {{node: Message}}, 'all' or None; got {start!r}"
                )
            return [(v, None) for v in range(n)]
        if isinstance(start, dict):
            if not start:
                return []  # no start message, as start=None (a run that ends quiescent at t=0)
            pairs = []
            for v, m in start.items():
                v = start_node(v, n)
                if not isinstance(m, Message):
                    raise V.ArgumentError(f"start[{v}] must be a Message, got {V.show(m)}")
                pairs.append((v, m))
            return sorted(pairs, key=lambda p: p[0])
        if V._is_int(start):
            return [(start_node(start, n), None)]
        return [(v, None) for v in V.node_ids("start", start, n, allow_empty=True)]

    def header(self) -> dict:
        """The versioned trace header: everything needed to rerun this simulation."""
        starts = [v for v, _ in self.start_nodes]
        return {
            "type": "header",
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "ampsim": __version__,
            "seed": self.seed,
            "delay": self.delay.describe(),
            "fifo": self.fifo,
            "loss": self.loss,
            "graph_hash": self.graph.hash(),
            "graph": self.graph.to_dict(),
            "rule": rule_spec(self.rule),
            "start": starts,
            "start_message": {"kind": self.start_message.kind, "payload": summarize(self.start_message.payload)},
            "start_messages": [
                {"node": v, "kind": m.kind, "payload": summarize(m.payload)} for v, m in self.start_nodes if m is not None
            ],
            "features": features_json([view.features for view in self.views]),
        }

    def _inject(self, v: int, message: Optional[Message]) -> None:
        """Deliver a start message to ``v`` at t = 0 (src -1, cause -1, delay 0)."""
        message = self.start_message if message is None else message
        mid = self._next_id
        self._next_id += 1
        self._sent += 1
        item = Copy(mid, -1, -1, v, self.env.now, 0.0, message, self._deliver_cb[v])
        self.env.schedule(item, NORMAL, 0.0)
        if self.tracer is not None:
            self.tracer.send(self._record(SEND, item, self.env.now))

    # ------------------------------------------------------------- hot path
    def _broadcast(self, v: int, message: Message, cause: int) -> None:
        """Send ``message`` from ``v`` to every neighbour: one timer per copy (semantics 2)."""
        env = self.env
        now = env.now
        if self._needs_sender and message.sender != v:
            message = Message(message.kind, message.payload, v)
        sample = self._sample
        tracer = self.tracer
        text = self._summ(message.payload) if tracer is not None else None  # once per broadcast, not per copy
        lose = self._lose
        cbs = self._deliver_cb
        queue = env._queue
        eid = env._eid
        if self._constant is not None:  # every copy arrives at now + d: one Burst (see Burst)
            nbrs = self.graph.neighbors[v]
            if not nbrs:
                return
            d = self._constant
            first = self._next_id
            self._next_id = first + len(nbrs)
            self._sent += len(nbrs)
            e = next(eid)
            burst = Burst(v, cause, now, d, message, nbrs, first, e, self._fire_burst_cb)
            heappush(queue, (now + d, NORMAL, e, burst))
            if tracer is not None:
                for item in burst.pending():
                    tracer.send(self._record(SEND, item, now + d, "", text))
            return
        fifo = self.fifo
        for u in self.graph.neighbors[v]:
            mid = self._next_id
            self._next_id = mid + 1
            d = sample(mid, v, u)
            if not 0.0 < d < INF:
                raise DelayError(f"delay model {self.delay.name!r} gave delay {d!r} for message {mid} ({v} -> {u}); delays must be finite and > 0")
            self._sent += 1
            item = Copy(mid, cause, v, u, now, d, message, cbs[u])
            if lose is not None and lose(mid, v, u):
                self._dropped += 1
                if tracer is not None:
                    tracer.drop(self._record(DROP, item, now + d, "lost", text))
                continue
            if fifo:
                d = self._fifo_delay(v, u, now, d)
            heappush(queue, (now + d, NORMAL, next(eid), item))  # = env.schedule(item, NORMAL, d)
            if tracer is not None:  # = self._record(SEND, item, now + d, "", text), inlined: the traced hot path
                tracer.send(_new(MessageRecord, (SEND, mid, cause, v, u, now, now + d, item.delay, message.kind, text, "")))

    def _fire_burst(self, burst: Burst) -> None:
        """Timer callback of a burst: deliver its next copy alone; reschedule the rest (same time, same id)."""
        i = burst.index
        dst = burst.dsts[i]
        item = Copy(burst.first + i, burst.cause, burst.src, dst, burst.t_send, burst.delay, burst.message, None)
        i += 1
        if i < len(burst.dsts):
            burst.index = i
            burst.callbacks = self._fire_burst_cb
            heappush(self.env._queue, (self.env._now, NORMAL, burst.eid, burst))
        self.mailboxes[dst].deliver(item)

    def _fifo_delay(self, v: int, u: int, now: float, d: float) -> float:
        """The delay that makes this copy arrive no earlier than the previous one on (v, u)."""
        last = self._last_arrival.get((v, u), -INF)
        if now + d < last:
            d = last - now
            while now + d < last:  # floating point: never arrive 1 ulp before the previous copy
                d = math.nextafter(d, INF)
        self._last_arrival[(v, u)] = now + d
        return d

    def _node(self, v: int):
        """Node ``v``'s SimPy process: take one copy from the mailbox, apply the rule, broadcast."""
        get = self.mailboxes[v].get
        view = self.views[v]
        receive = self.rule.receive
        states = self.states
        halted = self._halted
        tracer = self.tracer
        wants_states = self._wants_states
        summ_state = self._summ_state
        summ = self._summ
        env = self.env
        last_payload = last_state = _UNSET  # this node's last summarised payload and state (if immutable atoms)
        payload_text = state_text = ""
        try:
            while True:
                item = yield get()
                self._t_active = env._now  # the last instant with work: a time-limited run that went quiet ends here
                state = states[v]
                if halted is not None and halted(state):
                    self._dropped += 1
                    if tracer is not None:
                        tracer.drop(self._record(DROP, item, self.env.now, "halted"))
                    continue
                state, out = receive(view, state, item.message)
                states[v] = state
                self._deliveries += 1
                self._last = item
                if tracer is not None:
                    now = env._now
                    message = item.message  # = self._record(DELIVER, item, now), inlined: the traced hot path
                    payload = message.payload
                    if payload is not last_payload:  # texts of immutable atoms are reused (see _ATOMS)
                        payload_text = summ(payload)
                        last_payload = payload if type(payload) in _ATOMS else _UNSET
                    tracer.deliver(_new(MessageRecord, (DELIVER, item.msg_id, item.cause, item.src, item.dst, item.t_send,
                                                        now, item.delay, message.kind, payload_text, "")))
                    if wants_states:
                        if state is not last_state:
                            state_text = summ_state(state)
                            last_state = state if type(state) in _ATOMS else _UNSET
                        tracer.state(_new(StateRecord, (now, v, item.msg_id, state_text)))
                if out is not None:
                    if type(out) is not Message:  # one identity test per emission; subclasses pass
                        check_output(self.rule, "receive", (state, out))
                    self._broadcast(v, out, item.msg_id)
                if self._deliveries == self._limit:
                    self._stop("message_budget")
                elif self._stop_when is not None and self._stop_when(self):
                    self._stop("halted")
        except BaseException as exc:  # surface the original error from run(), not SimPy's copy
            self._error = self._explain(exc)
            self._stop("error")

    def _explain(self, exc: BaseException) -> BaseException:
        """An error raised in a node's own frame (not in a rule's or tracer's code) by what the rule returned:
        ``receive``'s result that is not a pair is named as the rule's error; any other error is the user's own."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code is not Simulation._node.__code__:
            tb = tb.tb_next
        if (tb is not None and tb.tb_next is None and type(exc) in (TypeError, ValueError)
                and "unpack" in str(exc)):
            err = RuleError(f"{type(self.rule).__name__}.receive must return a pair (state, Message or None): {exc}")
            err.__cause__ = exc
            return err
        return exc

    def _record(self, event: str, item: Item, t_deliver: float, reason: str = "",
                payload: Optional[str] = None) -> MessageRecord:
        message = item.message
        if payload is None:
            payload = self._summ(message.payload)
        return MessageRecord(event, item.msg_id, item.cause, item.src, item.dst, item.t_send, t_deliver, item.delay,
                             message.kind, payload, reason)

    def _stop(self, reason: str) -> None:
        """End the current ``run()`` before any other event at this instant (URGENT, delay 0)."""
        self._stop_reason = reason
        ev = Event(self.env)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(StopSimulation.callback)
        self.env.schedule(ev, URGENT, 0)

    # ------------------------------------------------------------- control
    @property
    def now(self) -> float:
        """The simulation clock."""
        return self.env.now

    @property
    def deliveries(self) -> int:
        """Deliveries processed so far (drops excluded): the paper's message count."""
        return self._deliveries

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def dropped(self) -> int:
        return self._dropped

    def run(
        self,
        until: Optional[float] = None,
        max_deliveries: Optional[int] = None,
        stop_when: Optional[Callable[["Simulation"], bool]] = None,
    ) -> RunResult:
        """Process deliveries until quiet, ``until`` (exclusive, as SimPy), the budget, or ``stop_when``.

        With neither ``until`` nor ``max_deliveries`` the simulation's ``budget`` (or
        :data:`DEFAULT_BUDGET`) applies, so no call hangs. May be called again to go on.
        """
        if self._error is not None:
            raise RuntimeError("this simulation failed earlier; create a new one") from self._error
        if until is not None:
            until = V.number("until", until, allow_inf=True)
            if not until > self.env.now:
                raise V.ArgumentError(f"until must be greater than the current time {self.env.now:g}, got {until!r}")
            if until == INF:  # no time limit: the run ends quiescent (or by budget) at its real time
                until = None
        max_deliveries = V.optional_positive_int("max_deliveries", max_deliveries)
        V.callable_or_none("stop_when", stop_when, ("simulation",))
        if max_deliveries is None and until is None:
            max_deliveries = self.budget if self.budget is not None else DEFAULT_BUDGET
        start = self._deliveries
        self._limit = start + max_deliveries if max_deliveries is not None else -1
        self._stop_when = stop_when
        self._stop_reason = ""
        t_start = self.env.now
        if until is not None:
            ev = Event(self.env)
            ev._ok = True
            ev._value = None
            ev.callbacks.append(self._time_up)
            self.env.schedule(ev, URGENT, until - self.env.now)
        stuck: tuple[int, ...] = ()
        step = self.env.step
        thresholds = gc.get_threshold()
        try:
            # Copies in flight are long-lived containers: with many of them, Python's full
            # (oldest-generation) collections rescan all of them again and again and halve
            # the throughput. Young collections still run (cyclic garbage of a rule is
            # freed); full ones wait until the run ends (benchmarks/engine.py --scale). Restored on every path.
            if thresholds[0]:
                gc.set_threshold(thresholds[0], thresholds[1], _NO_FULL_GC)
            while True:
                step()
        except StopSimulation:
            reason = self._stop_reason
            if reason == "quiescent":  # the time limit found nothing left: the clock goes back to the last event
                self.env._now = max(self._t_active, t_start)
        except EmptySchedule:
            reason = "quiescent"
        finally:
            if thresholds[0]:
                gc.set_threshold(*thresholds)
            self._limit = -1
            self._stop_when = None
            self._discard_control()
        if self._error is not None:
            raise self._error
        if reason == "quiescent" and self._finished is not None:
            stuck = tuple(v for v, s in enumerate(self.states) if not self._finished(s))
            if stuck:
                reason = "stalled"
        result = RunResult(
            reason, self.env.now, self._deliveries - start, self._deliveries, self._sent,
            self._dropped, len(self.in_flight()), stuck, tuple(self.states),
        )
        if self.tracer is not None:
            self.tracer.run_end(EndRecord(
                reason, self.env.now, self._deliveries - start, self._sent, self._dropped,
                tuple(sorted(r.msg_id for r in self._in_flight_items())), stuck, until, max_deliveries,
            ))
        return result

    def _time_up(self, event: Event) -> None:
        """The ``until`` of ``run()``: a run with work left ends on the time limit; one that went quiet
        before it ends ``quiescent`` at the instant of its last event (the clock goes back there), so
        ``run(until=10)`` of a flood that ends at t=3 says what happened, not ``time_limit``."""
        if any(type(entry[3]) is not Event for entry in self.env._queue):
            self._stop_reason = "time_limit"
        else:
            self._stop_reason = "quiescent"
        raise StopSimulation(None)

    def _discard_control(self) -> None:
        """Remove this run's stop and time-limit events (plain ``Event``s) from SimPy's heap."""
        queue = self.env._queue
        keep = [entry for entry in queue if type(entry[3]) is not Event]
        if len(keep) != len(queue):
            import heapq

            queue[:] = keep
            heapq.heapify(queue)

    def step(self) -> Optional[MessageRecord]:
        """Process exactly one delivery and return its record; ``None`` when nothing is left."""
        before = self._deliveries
        self.run(max_deliveries=1)
        if self._deliveries == before:
            return None
        return self._record(DELIVER, self._last, self.env.now)

    def peek(self) -> float:
        """Time of the next delivery (``inf`` when nothing is in flight)."""
        items = self._in_flight_items()
        return min((t for t, _ in self._arrivals(items)), default=INF)

    def _in_flight_items(self) -> list[Item]:
        found = []
        for entry in self.env._queue:
            ev = entry[3]
            if type(ev) is Copy:
                found.append(ev)
            elif type(ev) is Burst:
                found.extend(ev.pending())
            elif type(ev) is Take and type(ev._value) is Copy:
                found.append(ev._value)
        for box in self.mailboxes:
            found.extend(box.items)
        return found

    def _arrivals(self, items: list[Item]) -> list[tuple[float, Item]]:
        when = {}
        for entry in self.env._queue:
            ev = entry[3]
            if type(ev) is Copy:
                when[ev.msg_id] = entry[0]
            elif type(ev) is Burst:
                for i in range(ev.first + ev.index, ev.first + len(ev.dsts)):
                    when[i] = entry[0]
            elif type(ev) is Take and type(ev._value) is Copy:
                when[ev._value.msg_id] = entry[0]
        return [(when.get(it.msg_id, self.env.now), it) for it in items]

    def in_flight(self) -> list[MessageRecord]:
        """Copies sent but neither delivered nor dropped, as ``send`` records, in delivery order."""
        pairs = sorted(self._arrivals(self._in_flight_items()), key=lambda p: (p[0], p[1].msg_id))
        return [self._record(SEND, item, t) for t, item in pairs]
