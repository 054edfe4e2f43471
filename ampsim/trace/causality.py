"""Causality from cause ids: vector clocks, happens-before, and export to ShiViz.

An AMP node acts atomically (Section 3): it takes one delivered message, updates its
state and broadcasts at most one message, in zero simulation time. So the *events*
of a run are

* one **delivery event** per ``deliver`` record: node ``dst`` processes copy ``msg_id``
  (and sends whatever copies list ``cause_id == msg_id``);
* one **start-up event** for each node that emitted in ``rule.start`` (copies with
  ``cause_id == -1`` and ``src >= 0``).

Initial messages (``src == -1``) come from outside and carry no clock; drops are not
events (a lost copy never arrives, a halted node ignores what it drops).

Vector clocks (Fidge/Mattern), derived from the records alone::

    VC(e)        = max(VC(prev_v(e)), VC(sender(e)))  with  VC(e)[v] += 1

where ``v`` is the node of ``e``, ``prev_v(e)`` its previous event at ``v`` (zeros if
none) and ``sender(e)`` the event that sent the delivered copy: the delivery whose
``msg_id`` is the copy's ``cause_id``, or the start-up event of ``src`` when
``cause_id == -1`` (none for initial messages). Then ``a`` happens before ``b`` iff
``VC(a) <= VC(b)`` componentwise and ``VC(a) != VC(b)``; ``a`` and ``b`` are
concurrent iff neither happens before the other.

ShiViz (https://distributedclocks.github.io/shiviz/) draws such a log as a
space-time diagram. :func:`to_shiviz` writes two lines per event, the event text and
then the host and its clock as JSON (only non-zero entries; hosts are ``n0, n1, ...``)::

    deliver m1 flood 1 from n0 t=1 sends 2
    n1 {"n0":1,"n1":1}

This is what ShiViz's default parser reads; paste the text and use the parser
regular expression (JavaScript syntax, as typed into ShiViz's "log parsing regular
expression" box) :data:`SHIVIZ_PARSER`::

    (?<event>.*)\\n(?<host>\\S*) (?<clock>{.*})

with an empty multiple-executions delimiter. ShiViz's "select a file" reads a
file's first line as that regular expression and its second line as the delimiter,
and the rest as the log: :func:`shiviz_file` (and :func:`write_shiviz`, which
``ampsim export TRACE --format shiviz -o FILE`` calls) writes exactly that, so the
file uploads as it is.

What ShiViz draws is a function of the clocks alone: for an event ``e`` on host
``h`` it takes as *candidate parents* the events ``(h', VC(e)[h'])`` whose entry rose
since ``h``'s previous event, drops every candidate that another candidate's clock
already covers, and draws one edge per remaining candidate. So a message whose
sender event the receiver already knew of (through an earlier message that carried
it transitively) is **not drawn**; the edge ShiViz draws instead, if any, comes
from another ancestor. :func:`shiviz_edges` computes those edges and
:func:`shiviz_hidden` the delivered messages ShiViz leaves out (``echo`` on
``grid:3x4``, uniform delays, seed 5, 60 deliveries: ShiViz draws 49 of the 59
neighbour messages). :data:`SHIVIZ_PARSER_PY` is the same
expression in Python's syntax (``(?P<name>...)``); :func:`parse_shiviz` applies it.
ShiViz requires each host's own clock entry to start at 1 and grow by exactly 1 per
event on that host, which these clocks do by construction. Event texts never contain
a newline, and never have ``{`` right after their first space, so the parser cannot
mistake an event line for a clock line.

The cost is O(events x nodes) memory: clocks are dense tuples of length ``n``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Iterable, Union

from .io import Trace, load_trace
from .records import DELIVER, DROP, EndRecord, MessageRecord, StateRecord

__all__ = [
    "CausalEvent",
    "TraceLike",
    "as_trace",
    "num_nodes",
    "vector_clocks",
    "happens_before",
    "concurrent",
    "to_shiviz",
    "write_shiviz",
    "shiviz_file",
    "parse_shiviz",
    "shiviz_edges",
    "shiviz_hidden",
    "SHIVIZ_PARSER",
    "SHIVIZ_PARSER_PY",
    "STARTUP",
]

SHIVIZ_PARSER = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"
"""ShiViz's log parsing regular expression for :func:`to_shiviz` output (JavaScript syntax)."""

SHIVIZ_PARSER_PY = r"(?P<event>.*)\n(?P<host>\S*) (?P<clock>{.*})"
"""The same expression in Python's ``re`` syntax."""

STARTUP = -1
"""``CausalEvent.msg_id`` of a start-up event (the node emitted in ``rule.start``)."""

TraceLike = Union[Trace, "object", str, os.PathLike, Iterable]
"""A :class:`Trace`, a ``ListTracer``, a path to a JSONL trace, or an iterable of records."""


def as_trace(trace: TraceLike) -> Trace:
    """Any :data:`TraceLike` as a :class:`Trace` (records in event order, end records apart)."""
    if isinstance(trace, Trace):
        return trace
    if isinstance(trace, (str, os.PathLike)):
        return load_trace(trace)
    if hasattr(trace, "records") and hasattr(trace, "ends") and hasattr(trace, "trace"):  # ListTracer
        return trace.trace()
    try:
        items = list(trace)
    except TypeError:
        raise TypeError(
            f"expected a Trace, a ListTracer, a trace file path or a list of records; got {type(trace).__name__}"
        ) from None
    records, ends = [], []
    for item in items:
        if isinstance(item, (MessageRecord, StateRecord)):
            records.append(item)
        elif isinstance(item, EndRecord):
            ends.append(item)
        else:
            raise TypeError(f"not a trace record: {item!r}")
    return Trace({}, tuple(records), tuple(ends))


def num_nodes(trace: Trace) -> int:
    """``n`` from the trace header, else one more than the largest node index in the records."""
    graph = trace.header.get("graph") if trace.header else None
    if graph and "n" in graph:
        return int(graph["n"])
    top = -1
    for r in trace.records:
        if isinstance(r, MessageRecord):
            top = max(top, r.src, r.dst)
        else:
            top = max(top, r.node)
    return top + 1


@dataclass(frozen=True, slots=True)
class CausalEvent:
    """One event of a run and its vector clock.

    ``msg_id`` is the delivered copy (:data:`STARTUP` for a start-up event), ``src``
    and ``cause_id`` come from that copy's record, ``local == clock[node]`` counts the
    node's events so far, and ``sent`` is the number of copies this event emitted.
    """

    index: int
    node: int
    local: int
    msg_id: int
    cause_id: int
    src: int
    t: float
    kind: str
    payload: str
    sent: int
    clock: tuple[int, ...]


def vector_clocks(trace: TraceLike) -> list[CausalEvent]:
    """The events of ``trace`` in trace order, each with its vector clock (see the module doc)."""
    trace = as_trace(trace)
    n = num_nodes(trace)
    messages = [r for r in trace.records if isinstance(r, MessageRecord)]
    sent: dict[tuple[int, int], int] = {}
    for r in messages:
        if r.src >= 0 and (r.event != DROP or r.reason == "lost") and r.event != DELIVER:
            sent[(r.src, r.cause_id)] = sent.get((r.src, r.cause_id), 0) + 1
    zero = (0,) * n
    last: list[tuple[int, ...]] = [zero] * n
    by_delivery: dict[int, CausalEvent] = {}
    startup: dict[int, CausalEvent] = {}
    events: list[CausalEvent] = []

    def add(node: int, other: tuple[int, ...], r: MessageRecord, msg_id: int, t: float) -> CausalEvent:
        if not 0 <= node < n:
            raise ValueError(f"record {r} names node {node}, outside 0..{n - 1}")
        clock = list(max(a, b) for a, b in zip(last[node], other))
        clock[node] += 1
        ev = CausalEvent(
            len(events), node, clock[node], msg_id, r.cause_id if msg_id != STARTUP else -1,
            r.src if msg_id != STARTUP else node, t, r.kind, r.payload,
            sent.get((node, msg_id), 0), tuple(clock),
        )
        last[node] = ev.clock
        events.append(ev)
        return ev

    for r in messages:
        if r.event != DELIVER:
            if r.src >= 0 and r.cause_id == -1 and r.src not in startup:
                startup[r.src] = add(r.src, zero, r, STARTUP, r.t_send)
            continue
        if r.src < 0:
            sender = zero
        elif r.cause_id == -1:
            if r.src not in startup:
                raise ValueError(f"copy {r.msg_id} was sent by node {r.src} at start-up, but the trace has no send record for it")
            sender = startup[r.src].clock
        else:
            if r.cause_id not in by_delivery:
                raise ValueError(
                    f"copy {r.msg_id} names cause {r.cause_id}, but no earlier delivery of copy {r.cause_id} is in the trace"
                )
            sender = by_delivery[r.cause_id].clock
        by_delivery[r.msg_id] = add(r.dst, sender, r, r.msg_id, r.t_deliver)
    return events


def _clock(x: Union[CausalEvent, tuple]) -> tuple:
    return x.clock if isinstance(x, CausalEvent) else tuple(x)


def happens_before(a: Union[CausalEvent, tuple], b: Union[CausalEvent, tuple]) -> bool:
    """``a -> b``: ``VC(a) <= VC(b)`` componentwise and ``VC(a) != VC(b)`` (events or clocks)."""
    ca, cb = _clock(a), _clock(b)
    if len(ca) != len(cb):
        raise ValueError(f"vector clocks of different lengths ({len(ca)} and {len(cb)})")
    return ca != cb and all(x <= y for x, y in zip(ca, cb))


def concurrent(a: Union[CausalEvent, tuple], b: Union[CausalEvent, tuple]) -> bool:
    """``a || b``: distinct, and neither happens before the other."""
    return _clock(a) != _clock(b) and not happens_before(a, b) and not happens_before(b, a)


def _text(ev: CausalEvent) -> str:
    """The one-line event description (no newline; no ``{`` right after the first space)."""
    if ev.msg_id == STARTUP:
        text = f"start-up t={ev.t:.6g}"
    else:
        src = "outside" if ev.src < 0 else f"n{ev.src}"
        payload = f" {ev.payload}" if ev.payload else ""
        text = f"deliver m{ev.msg_id} {ev.kind}{payload} from {src} t={ev.t:.6g}"
    if ev.sent:
        text += f" sends {ev.sent}"
    return " ".join(text.split())


def to_shiviz(trace: TraceLike, host_prefix: str = "n") -> str:
    """The trace's events as a ShiViz log (parse it with :data:`SHIVIZ_PARSER`); see the module doc."""
    if not host_prefix or any(c.isspace() for c in host_prefix) or '"' in host_prefix or "\\" in host_prefix:
        raise ValueError(f"host_prefix must be a non-empty word without spaces, quotes or backslashes; got {host_prefix!r}")
    lines = []
    for ev in vector_clocks(trace):
        clock = {f"{host_prefix}{v}": c for v, c in enumerate(ev.clock) if c}
        lines.append(_text(ev))
        lines.append(f"{host_prefix}{ev.node} {json.dumps(clock, separators=(',', ':'))}")
    return "\n".join(lines) + ("\n" if lines else "")


def shiviz_file(trace: TraceLike, host_prefix: str = "n") -> str:
    """What ShiViz's "select a file" accepts as is: the parser regex, an empty delimiter line, the log."""
    return f"{SHIVIZ_PARSER}\n\n{to_shiviz(trace, host_prefix)}"


def write_shiviz(trace: TraceLike, path: Union[str, os.PathLike], host_prefix: str = "n", upload: bool = True) -> str:
    """Write the trace for ShiViz to ``path`` (UTF-8, atomically) and return the path.

    ``upload=True`` writes :func:`shiviz_file` (uploadable as is); ``upload=False``
    only the log of :func:`to_shiviz` (for pasting, with :data:`SHIVIZ_PARSER`).
    """
    from ..fileio import write_text

    path = os.fspath(path)
    write_text(path, shiviz_file(trace, host_prefix) if upload else to_shiviz(trace, host_prefix))
    return path


def parse_shiviz(text: str) -> list[tuple[str, str, dict]]:
    """``(host, event, clock)`` for each match of :data:`SHIVIZ_PARSER_PY` in ``text``, as ShiViz reads it.

    ``text`` is a log (:func:`to_shiviz`) or an upload file (:func:`shiviz_file`).
    """
    if text.startswith(SHIVIZ_PARSER + "\n"):  # an upload file: skip the parser and delimiter lines
        text = text.split("\n", 2)[2] if text.count("\n") >= 2 else ""
    out = []
    for m in re.finditer(SHIVIZ_PARSER_PY, text):
        try:
            clock = json.loads(m.group("clock"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"bad vector clock {m.group('clock')!r} for host {m.group('host')!r}: {exc.msg}") from None
        if not isinstance(clock, dict) or clock.get(m.group("host"), 0) < 1:
            raise ValueError(f"the clock of host {m.group('host')!r} must be a JSON object with its own entry >= 1")
        out.append((m.group("host"), m.group("event"), clock))
    return out


def shiviz_edges(trace: TraceLike) -> dict[int, list[tuple[int, int]]]:
    """The message edges ShiViz draws: ``event index -> [(node, local), ...]`` of its parents.

    ShiViz's rule (see the module doc), applied per node in local order: the candidates
    of ``e`` are ``(h, VC(e)[h])`` for every ``h`` whose entry rose since the node's
    previous event; a candidate is dropped when another candidate's clock names it;
    the rest are ``e``'s parents. Only events with at least one parent are listed.
    """
    return _shiviz_parents(vector_clocks(trace))


def _shiviz_parents(events: list[CausalEvent]) -> dict[int, list[tuple[int, int]]]:
    by_key = {(ev.node, ev.local): ev for ev in events}
    seen: dict[int, list[int]] = {}
    parents: dict[int, list[tuple[int, int]]] = {}
    for ev in events:
        known = seen.setdefault(ev.node, [0] * len(ev.clock))
        known[ev.node] = ev.local
        candidates = []
        for h, t in enumerate(ev.clock):
            if t > known[h]:
                known[h] = t
                candidates.append((h, t))
        covered = {(h, by_key[c].clock[h]) for c in candidates for h in range(len(ev.clock)) if h != c[0]}
        kept = [c for c in candidates if c not in covered]
        if kept:
            parents[ev.index] = kept
    return parents


def shiviz_hidden(trace: TraceLike) -> list[int]:
    """``msg_id`` of every delivered neighbour message ShiViz does not draw (its sender was already known).

    A delivery from ``src`` is drawn iff its sender event (the delivery that caused it,
    or ``src``'s start-up event) is among the parents :func:`shiviz_edges` gives it.
    Initial messages (``src == -1``) have no sender and are not counted.
    """
    events = vector_clocks(trace)
    parents = _shiviz_parents(events)
    by_msg = {ev.msg_id: ev for ev in events if ev.msg_id != STARTUP}
    startup = {ev.node: ev for ev in events if ev.msg_id == STARTUP}
    hidden = []
    for ev in events:
        if ev.msg_id == STARTUP or ev.src < 0:
            continue
        sender = startup[ev.src] if ev.cause_id == -1 else by_msg[ev.cause_id]
        if (sender.node, sender.local) not in parents.get(ev.index, ()):
            hidden.append(ev.msg_id)
    return hidden
