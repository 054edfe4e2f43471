"""Replay: rerun a recorded trace with its recorded delays and check that every record matches.

``replay(trace, rule)`` rebuilds the simulation from the trace header (graph, FIFO
flag, start nodes), feeds back each copy's recorded delay by ``msg_id`` (so the
replay does not depend on any RNG state), loses exactly the copies recorded as
lost, repeats the recorded sequence of ``run()`` calls, and with ``verify=True``
raises :class:`~ampsim.engine.errors.ReplayMismatch` at the first record that
differs (a tampered trace, a changed rule, a different model).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Union

from ..engine.delays import FromTrace
from ..engine.errors import ReplayMismatch, TraceFormatError
from ..engine.messages import Message
from ..engine.rule import NodeRule, check_rule
from ..graphs import Graph
from .. import validate as V
from .io import DEFAULT_MAX_RECORDS, Trace, load_trace, validate_trace
from .records import StateRecord
from .tracers import ListTracer

__all__ = ["replay"]


def replay(
    trace: Union[Trace, str, os.PathLike],
    rule: Optional[NodeRule] = None,
    verify: bool = True,
    start_message: Optional[Message] = None,
    features: Any = None,
    start: Any = None,
    max_records: Optional[int] = DEFAULT_MAX_RECORDS,
) -> Trace:
    """Rerun ``trace`` (a :class:`Trace` or a path) and return the new trace; verify it matches.

    ``rule`` defaults to the registered protocol named in the header; ``features``
    to the header's. Learned cells, and start messages with payloads (tensors),
    must be passed in: ``start_message=`` or, for per-node messages, ``start={v: Message}``.
    ``max_records`` bounds a trace read from a file (:func:`~ampsim.trace.io.load_trace`; None: no limit).
    """
    from ..engine.simulation import Simulation
    from ..protocols import get_rule  # upward: a trace names its protocol, replay finds it in the registry (rule= skips it)

    V.boolean("verify", verify)
    if rule is not None:
        check_rule(rule)
    if start_message is not None and not isinstance(start_message, Message):
        raise V.ArgumentError(f"start_message must be a Message or None, got {V.show(start_message)}")
    if isinstance(trace, Trace):
        source = "trace"
        if not trace.header:
            raise TraceFormatError("the trace has no header (a list of records): replay needs a recorded run")
        validate_trace(trace)
    elif isinstance(trace, (str, os.PathLike)):
        source = os.fspath(trace)
        trace = load_trace(trace, max_records=max_records)
    else:
        raise V.ArgumentError(f"trace must be a Trace or a trace file path, got {V.show(trace)}")
    header = trace.header
    graph = Graph.from_dict(header["graph"])
    if rule is None:
        spec = header["rule"]
        try:
            rule = get_rule(spec["name"], **spec.get("params", {}))
        except TypeError as exc:
            raise TraceFormatError(f"{source}: the header's rule {spec['name']!r} does not take the recorded "
                                   f"params {spec.get('params')} ({exc})") from None
    if start is None:
        per_node = header.get("start_messages") or []
        if any(m.get("payload") for m in per_node):
            raise TraceFormatError("the recorded start messages carry payloads; pass start={node: Message} to replay")
        start = {m["node"]: Message(m["kind"]) for m in per_node} or header.get("start", [0])
    if start_message is None:
        recorded = header.get("start_message") or {"kind": "start", "payload": ""}
        if recorded.get("payload", ""):
            raise TraceFormatError(
                f"the recorded start message carried a payload ({recorded['payload']}); pass start_message= to replay"
            )
        start_message = Message(recorded.get("kind", "start"))
    lost = {r.msg_id for r in trace.messages if r.event == "drop" and r.reason == "lost"}
    was_random = header["delay"].get("name") != "constant" and header["delay"].get("random", True)
    recorder = ListTracer(states=any(isinstance(r, StateRecord) for r in trace.records))
    sim = Simulation(
        graph,
        rule,
        delay=FromTrace(trace.delays(), random=bool(was_random)),
        fifo=header["fifo"],
        seed=header["seed"],
        tracer=recorder,
        start=start,
        start_message=start_message,
        features=features if features is not None else header.get("features"),
        loss=(lambda mid, src, dst: mid in lost) if lost else 0.0,
        allow_isolated=True,
    )
    for end in trace.ends:
        if end.reason == "time_limit" or (end.until is not None and end.reason in ("quiescent", "stalled")):
            sim.run(until=end.until)  # a time-limited run that went quiet before its limit ends the same way
        elif end.reason in ("quiescent", "stalled"):
            sim.run(max_deliveries=end.deliveries + 1)
        else:
            sim.run(max_deliveries=end.deliveries)
    new = recorder.trace()
    if verify:
        _compare(trace, new)
    return new


_SAME_RUN = ("format", "version", "graph_hash", "fifo", "start", "start_message", "start_messages", "rule", "features")
"""Header fields a replay must reproduce: the run it reruns (its delays come from the records, not the model)."""


def _compare(old: Trace, new: Trace) -> None:
    for key in _SAME_RUN:
        a, b = old.header.get(key), new.header.get(key)
        if key == "features" and (a is None or b is None):
            continue  # features JSON cannot hold (tensors of a learned cell) are not in the header
        if a != b:
            raise ReplayMismatch(-1, f"header {key!r}: {str(a)[:200]}", f"{str(b)[:200]}: the replay is not the recorded run")
    for i, (a, b) in enumerate(zip(old.records, new.records)):
        if a != b:
            raise ReplayMismatch(i, a, b)
    if len(old.records) != len(new.records):
        i = min(len(old.records), len(new.records))
        raise ReplayMismatch(
            i,
            old.records[i] if i < len(old.records) else "<end of recorded trace>",
            new.records[i] if i < len(new.records) else "<end of replayed trace>",
        )
    for k, (a, b) in enumerate(zip(old.ends, new.ends)):
        if a.in_flight != b.in_flight or a.deliveries != b.deliveries:
            raise ReplayMismatch(len(old.records) + k, a, b)
