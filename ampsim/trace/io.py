"""Trace files: versioned JSONL, validated on load (one clear error for a corrupt or foreign file).

Layout, one JSON object per line::

    {"type": "header", "format": "ampsim.trace", "version": 1, "ampsim": ..., "seed": ...,
     "delay": {...}, "fifo": ..., "graph_hash": ..., "graph": {"n": ..., "edges": [...]},
     "rule": {"name": ..., "params": {...}}, "start": [...], ...}
    {"type": "send" | "deliver" | "drop", "msg_id": ..., ...}     (MessageRecord fields)
    {"type": "state", "t": ..., "node": ..., "msg_id": ..., "state": ...}
    {"type": "end", "reason": ..., ...}                            (one per run() call)
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import fields
from typing import Callable, Optional, Union

from ..engine.errors import GraphError, SizeLimitError, TraceFormatError, TraceMismatch
from .. import validate as V
from .records import FORMAT, SUPPORTED_VERSIONS, EndRecord, MessageRecord, StateRecord, Trace, trace_format

__all__ = ["Trace", "load_trace", "save_trace", "validate_trace", "register_format", "format_saver",
           "DEFAULT_MAX_RECORDS", "BYTES_PER_RECORD"]

_FORMATS: dict[str, tuple[tuple[str, ...], Callable, Callable]] = {}
"""Trace formats other than JSONL: ``name -> (suffixes, load, save)`` (Parquet: registered by the package)."""


def register_format(name: str, suffixes: tuple[str, ...], load: Callable, save: Callable) -> None:
    """Read and write the trace files whose name ends in one of ``suffixes`` with ``load(path, max_records=)``
    and ``save(trace, path)``. The package registers Parquet (:mod:`ampsim.trace.columnar`), so that this
    module imports no adapter and pyarrow loads only when such a file is read or written."""
    _FORMATS[name] = (tuple(s.lower() for s in suffixes), load, save)


def _format_of(path: str) -> Optional[tuple[tuple[str, ...], Callable, Callable]]:
    """The registered format that ``path``'s name names (:func:`~ampsim.trace.records.trace_format`), or None
    for JSONL; a name of another format entirely is refused there."""
    name = trace_format(path)
    if name == "jsonl":
        return None
    if name not in _FORMATS:
        raise ValueError(f"{path}: a {name} trace, but no {name} reader is registered (import ampsim)")
    return _FORMATS[name]


def format_saver(name: str) -> Callable:
    """The ``save(trace, path)`` of the registered format ``name`` (e.g. ``"parquet"``)."""
    if name not in _FORMATS:
        raise ValueError(f"no trace format {name!r} is registered (known: {', '.join(sorted(_FORMATS)) or 'none'})")
    return _FORMATS[name][2]
_MSG_FIELDS = list(MessageRecord._fields[1:])
_STATE_FIELDS = list(StateRecord._fields)
_END_FIELDS = [f.name for f in fields(EndRecord)]

DEFAULT_MAX_RECORDS = 5_000_000
"""The most records :func:`load_trace` reads without ``max_records=``: about 2 GB once loaded
(:data:`BYTES_PER_RECORD` each). Checked before the file is read: for JSONL from the file's size (a
record line is at least :data:`MIN_LINE_BYTES` long), for Parquet from the row count in its footer."""
BYTES_PER_RECORD = 400
"""Memory of one loaded record (a named tuple of ten fields, its strings and the list slot), rounded up."""
MIN_LINE_BYTES = 100
"""The shortest JSONL record line the tracer writes (a state record is about this long)."""


def check_length(path: str, records: int, max_records: Optional[int], exact: bool) -> None:
    """Refuse a trace of more than ``max_records`` records before reading it (:class:`SizeLimitError`)."""
    if max_records is not None and records > max_records:
        what = f"{records:,} records" if exact else f"up to {records:,} records"
        V.within_memory(f"{path}: the trace holds {what} and", records * BYTES_PER_RECORD,
                        max_records * BYTES_PER_RECORD, f"max_records= (now {max_records:,})")


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number a trace may hold")


def _parse_line(path: str, lineno: int, line: str) -> dict:
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        raise TraceFormatError(f"{path}:{lineno}: not valid JSON ({why}); the trace file is corrupt or truncated") from None
    if not isinstance(obj, dict) or "type" not in obj:
        raise TraceFormatError(f"{path}:{lineno}: expected a JSON object with a 'type' field")
    return obj


# field -> (check, what) for every record kind; numbers are finite, ints are ints (not bools)
def _int(x) -> bool:
    return type(x) is int


def _num(x) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def _str(x) -> bool:
    return type(x) is str


def _opt(check):
    return lambda x: x is None or check(x)


def _int_list(x) -> bool:
    return type(x) is list and all(type(v) is int for v in x)


_MSG_TYPES = {
    "msg_id": (_int, "an integer"), "cause_id": (_int, "an integer"), "src": (_int, "an integer"),
    "dst": (_int, "an integer"), "t_send": (_num, "a finite number"), "t_deliver": (_num, "a finite number"),
    "delay": (_num, "a finite number"), "kind": (_str, "a string"), "payload": (_str, "a string"),
    "reason": (_str, "a string"),
}
_STATE_TYPES = {"t": (_num, "a finite number"), "node": (_int, "an integer"), "msg_id": (_int, "an integer"),
                "state": (_str, "a string")}
_END_TYPES = {
    "reason": (_str, "a string"), "time": (_num, "a finite number"), "deliveries": (_int, "an integer"),
    "sent": (_int, "an integer"), "dropped": (_int, "an integer"), "in_flight": (_int_list, "a list of integers"),
    "stuck": (_int_list, "a list of integers"), "until": (_opt(_num), "a finite number or null"),
    "max_deliveries": (_opt(_int), "an integer or null"),
}
END_REASONS = ("quiescent", "stalled", "time_limit", "message_budget", "halted")


def _build(path: str, lineno: int, cls, names: list[str], obj: dict, types: dict, extra: dict | None = None):
    unknown = sorted(set(obj) - set(names) - {"type"})
    if unknown:
        raise TraceFormatError(f"{path}:{lineno}: {obj.get('type')!r} record has unknown field(s) {unknown}")
    for name in names:
        if name in obj and not types[name][0](obj[name]):
            raise TraceFormatError(
                f"{path}:{lineno}: {obj.get('type')!r} record field {name!r} must be {types[name][1]}, got {obj[name]!r}"[:300]
            )
    try:
        kwargs = {name: obj[name] for name in names if name in obj}
        if extra:
            kwargs.update(extra)
        record = cls(**kwargs)
    except TypeError as exc:
        raise TraceFormatError(f"{path}:{lineno}: malformed {obj.get('type')!r} record ({exc})") from None
    return record


def load_trace(path: Union[str, os.PathLike], max_records: Optional[int] = DEFAULT_MAX_RECORDS,
               max_edges: Optional[int] = None) -> Trace:
    """Read and validate a trace: JSONL (:class:`~ampsim.trace.tracers.JSONLTracer`) or, by suffix, Parquet.

    Every failure is a :class:`TraceFormatError` naming the file (and the line): bytes
    that are not UTF-8 JSON, a foreign or unsupported header, a record of the wrong
    shape or types, records that contradict the header or each other
    (:func:`validate_trace`: another graph, a tampered delay, a missing record), or a
    trace cut short. Replay and plotting load traces through here, so they accept
    and refuse exactly the same files.

    Sizes from the file are checked before anything is allocated (:class:`SizeLimitError`
    with the estimate): its length against ``max_records`` (default :data:`DEFAULT_MAX_RECORDS`;
    ``None``: no limit) and its header's graph against ``max_edges`` (default
    :data:`ampsim.graphs.DEFAULT_MAX_EDGES`).
    """
    if max_records is not None:
        max_records = V.positive_int("max_records", max_records)
    if max_edges is not None:
        max_edges = V.positive_int("max_edges", max_edges)
    if not isinstance(path, (str, os.PathLike)):
        from ..validate import ArgumentError, show

        raise ArgumentError(f"path must be a trace file path (str or os.PathLike), got {show(path)}")
    path = os.fspath(path)
    if V.not_a_file(path) and not os.path.isdir(path):
        raise TraceFormatError(f"{path}: is {V.not_a_file(path)}, not a trace file")
    try:
        fmt = _format_of(path)
    except ValueError as exc:
        raise TraceFormatError(str(exc)) from None
    if fmt is not None:  # a registered format by its suffix: Parquet (ampsim.trace.columnar)
        trace = fmt[1](path, max_records=max_records)
        validate_trace(trace, path, max_edges=max_edges)  # the same checks as JSONL: records against the header and each other
        return trace
    if not os.path.exists(path):
        raise FileNotFoundError(f"trace file not found: {path}")
    if os.path.isdir(path):
        raise TraceFormatError(f"{path}: is a directory, not a trace file")
    if V.not_a_file(path):
        raise TraceFormatError(f"{path}: is {V.not_a_file(path)}, not a trace file")
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    check_length(path, size // MIN_LINE_BYTES, max_records, exact=False)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise TraceFormatError(f"{path}: cannot read the trace ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TraceFormatError(f"{path}:{line}: not a text trace (undecodable byte at offset {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not any(line.strip() for line in lines):
        raise TraceFormatError(f"{path}: empty file, not an ampsim trace")
    header = _parse_line(path, 1, lines[0])
    if header.get("type") != "header" or header.get("format") != FORMAT:
        raise TraceFormatError(f"{path}: not an ampsim trace (the first line must be a header with format {FORMAT!r})")
    if header.get("version") not in SUPPORTED_VERSIONS or type(header.get("version")) is not int:
        raise TraceFormatError(f"{path}: trace format version {header.get('version')!r} is not supported (this ampsim reads {SUPPORTED_VERSIONS})")
    for key in ("seed", "delay", "fifo", "graph_hash", "graph", "rule"):
        if key not in header:
            raise TraceFormatError(f"{path}:1: header lacks {key!r}")
    records: list = []
    ends: list = []
    after_end = 0  # records after the last end record
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        obj = _parse_line(path, lineno, line)
        kind = obj["type"]
        if kind in ("send", "deliver", "drop"):
            if any(name not in obj for name in _MSG_FIELDS[:-1]):
                raise TraceFormatError(f"{path}:{lineno}: {kind} record lacks fields {[n for n in _MSG_FIELDS[:-1] if n not in obj]}")
            records.append(_build(path, lineno, MessageRecord, _MSG_FIELDS, obj, _MSG_TYPES, {"event": kind}))
            after_end += 1
        elif kind == "state":
            records.append(_build(path, lineno, StateRecord, _STATE_FIELDS, obj, _STATE_TYPES))
            after_end += 1
        elif kind == "end":
            rec = _build(path, lineno, EndRecord, _END_FIELDS, obj, _END_TYPES)
            ends.append(EndRecord(**{**{f: getattr(rec, f) for f in _END_FIELDS}, "in_flight": tuple(rec.in_flight), "stuck": tuple(rec.stuck)}))
            after_end = 0
        elif kind == "header":
            raise TraceFormatError(f"{path}:{lineno}: a second header: two traces were concatenated")
        else:
            raise TraceFormatError(f"{path}:{lineno}: unknown record type {str(kind)[:40]!r}")
    if not ends:
        raise TraceFormatError(f"{path}: no 'end' record: the trace is truncated (its run did not finish)")
    if after_end:
        raise TraceFormatError(f"{path}: {after_end} record(s) after the last 'end' record: the trace is truncated")
    trace = Trace(header, tuple(records), tuple(ends))
    validate_trace(trace, path, max_edges=max_edges)
    return trace


def validate_trace(trace: Trace, source: str = "trace", max_edges: Optional[int] = None) -> None:
    """Check that a trace's records agree with its header and with each other; :class:`TraceFormatError` if not.

    What a recorded run guarantees (docs/design.md rules 2-8, 10), checked from the records alone:

    * the header's graph is well formed and matches its ``graph_hash``;
    * copies are numbered 0, 1, 2, ... in send order (a ``send``, or a ``drop`` lost at
      send time); each goes along an edge of the graph (initial messages: ``src = -1``,
      delay 0) with a finite delay > 0 and ``t_deliver = t_send + delay`` (FIFO: ``>=``);
    * a copy is sent at the time its cause was delivered, by that delivery's node;
    * every ``deliver`` or ``halted`` drop repeats its send exactly, once, in time order;
    * the end records' counts and in-flight ids are exactly what the records leave.

    Traces without a header (a list of records) are not checked.
    """
    header = trace.header
    if not header:
        return
    from ..graphs import Graph

    index = -1

    def fail(msg: str) -> TraceFormatError:
        return TraceMismatch(f"{source}: {msg}", index)

    if header.get("format") != FORMAT:
        raise fail(f"header 'format' must be {FORMAT!r}, got {repr(header.get('format'))[:40]}: not an ampsim trace")
    if type(header.get("version")) is not int or header["version"] not in SUPPORTED_VERSIONS:
        raise fail(f"trace format version {repr(header.get('version'))[:40]} is not supported "
                   f"(this ampsim reads {SUPPORTED_VERSIONS})")
    if type(header.get("seed")) is not int:
        raise fail(f"header 'seed' must be an integer, got {header.get('seed')!r}")
    if type(header.get("fifo")) is not bool:
        raise fail(f"header 'fifo' must be true or false, got {header.get('fifo')!r}")
    if not isinstance(header.get("delay"), dict) or type(header["delay"].get("name")) is not str:
        raise fail("header 'delay' must be an object with a 'name'")
    rule = header.get("rule")
    if not isinstance(rule, dict) or type(rule.get("name")) is not str or not isinstance(rule.get("params", {}), dict):
        raise fail("header 'rule' must be an object with a 'name' and 'params'")
    try:
        graph = Graph.from_dict(header["graph"], max_edges=max_edges)
    except SizeLimitError as exc:
        raise SizeLimitError(f"{source}: the header's graph is too large: {exc}".replace(
            "max_edges= (CLI: --max-edges)", "load_trace(max_edges=)")) from None
    except GraphError as exc:
        raise fail(f"header 'graph' is malformed ({exc})") from None
    if graph.hash() != header["graph_hash"]:
        raise fail("the header's graph does not match its graph_hash: the header was altered")
    n = graph.num_nodes
    start = header.get("start", [])
    if not _int_list(start) or any(not 0 <= v < n for v in start):
        raise fail(f"header 'start' must list nodes 0..{n - 1}, got {str(start)[:80]}")
    features = header.get("features")
    if features is not None and (type(features) is not list or len(features) != n):
        raise fail(f"header 'features' must be null or one row per node ({n})")
    fifo = header["fifo"]
    nbrs = [set(nb) for nb in graph.neighbors]
    delay_ok = _delay_check(header["delay"], fail)
    loss = header.get("loss", -1.0)
    if loss is not None and not (_num(loss) and (loss == -1.0 or 0.0 <= loss < 1.0)):
        raise fail(f"header 'loss' must be a probability in [0, 1) (or -1: a function), got {repr(loss)[:40]}")
    _check_starts(header, trace.records, n, fail)

    sent: dict[int, MessageRecord] = {}
    done: set[int] = set()
    delivered: dict[int, MessageRecord] = {}
    next_id = 0
    dropped = 0
    deliveries = 0
    clock = 0.0
    for index, r in enumerate(trace.records):
        where = f"record {index + 1}"
        if isinstance(r, StateRecord):
            if not 0 <= r.node < n:
                raise fail(f"{where}: state of node {r.node}, not a node of the graph (0..{n - 1})")
            continue
        if r.event == "send" or (r.event == "drop" and r.reason == "lost"):
            if r.msg_id != next_id:
                raise fail(f"{where}: copy {r.msg_id} where copy {next_id} was due (copies are numbered in send order): "
                           "a record is missing or was altered")
            next_id += 1
            if not 0 <= r.dst < n or not -1 <= r.src < n:
                raise fail(f"{where}: copy {r.msg_id} goes {r.src} -> {r.dst}, outside the graph's nodes 0..{n - 1}")
            if r.src == -1:
                if r.delay != 0 or r.cause_id != -1 or r.t_deliver != r.t_send:
                    raise fail(f"{where}: initial message {r.msg_id} must have delay 0 and cause -1")
            else:
                if r.dst not in nbrs[r.src]:
                    raise fail(f"{where}: copy {r.msg_id} goes {r.src} -> {r.dst}, which is not an edge of the "
                               "header's graph: the records belong to another graph")
                if not 0 < r.delay < math.inf:
                    raise fail(f"{where}: copy {r.msg_id} has delay {r.delay!r}; delays are finite and > 0")
                if delay_ok is not None and not delay_ok(r.delay):
                    raise fail(f"{where}: copy {r.msg_id} has delay {r.delay!r}, which the header's delay model "
                               f"{_show_delay(header['delay'])} cannot give: the delay or the header was altered")
                due = r.t_send + r.delay
                if (r.t_deliver != due) if not fifo else (r.t_deliver < due):
                    raise fail(f"{where}: copy {r.msg_id} arrives at {r.t_deliver!r}, but t_send + delay = {due!r}: "
                               "the delay or a time was altered")
                if r.cause_id >= 0:
                    cause = delivered.get(r.cause_id)
                    if cause is None or cause.dst != r.src or cause.t_deliver != r.t_send:
                        raise fail(f"{where}: copy {r.msg_id} names cause {r.cause_id}, which is not a delivery "
                                   f"to node {r.src} at t={r.t_send!r}: a record is missing or was altered")
                elif r.cause_id != -1 or r.t_send != 0:
                    raise fail(f"{where}: copy {r.msg_id} sent at start-up must have cause -1 and t_send 0")
            if r.t_send < clock:
                raise fail(f"{where}: copy {r.msg_id} is sent at t={r.t_send!r}, before t={clock!r}: records are out of order")
            if r.event == "send":
                sent[r.msg_id] = r
            else:
                if loss == 0.0:
                    raise fail(f"{where}: copy {r.msg_id} is lost, but the header says loss 0: "
                               "the header or the records were altered")
                done.add(r.msg_id)
                dropped += 1
            continue
        # a delivery, or a drop by a halted receiver: it repeats its send
        s = sent.get(r.msg_id)
        if s is None:
            raise fail(f"{where}: {r.event} of copy {r.msg_id}, which was never sent: a record is missing")
        if r.msg_id in done:
            raise fail(f"{where}: copy {r.msg_id} is delivered or dropped twice")
        if (s.cause_id, s.src, s.dst, s.t_send, s.t_deliver, s.delay, s.kind, s.payload) != (
                r.cause_id, r.src, r.dst, r.t_send, r.t_deliver, r.delay, r.kind, r.payload):
            raise fail(f"{where}: {r.event} of copy {r.msg_id} does not match its send record: a record was altered")
        if r.t_deliver < clock:
            raise fail(f"{where}: copy {r.msg_id} is processed at t={r.t_deliver!r}, after t={clock!r}: "
                       "records are out of order (a delay was altered)")
        clock = r.t_deliver
        done.add(r.msg_id)
        if r.event == "deliver":
            delivered[r.msg_id] = r
            deliveries += 1
        elif r.event == "drop":
            dropped += 1
        else:
            raise fail(f"{where}: unknown event {r.event!r}")
    for k, e in enumerate(trace.ends):
        if e.reason not in END_REASONS:
            raise fail(f"end record {k + 1}: unknown reason {e.reason!r} (one of {', '.join(END_REASONS)})")
        if any(not 0 <= v < n for v in e.stuck):
            raise fail(f"end record {k + 1}: stuck nodes {list(e.stuck)[:10]} are not nodes of the graph")
    if not trace.ends:  # a run in progress (an in-memory trace): nothing to reconcile yet
        return
    last = trace.ends[-1]
    if sum(e.deliveries for e in trace.ends) != deliveries:
        raise fail(f"the end records count {sum(e.deliveries for e in trace.ends)} deliveries, the records hold "
                   f"{deliveries}: a record is missing or was added")
    if last.sent != next_id or last.dropped != dropped:
        raise fail(f"the last end record says {last.sent} sent and {last.dropped} dropped, the records hold "
                   f"{next_id} and {dropped}: a record is missing or was added")
    pending = sorted(set(sent) - done)
    if list(last.in_flight) != pending:
        raise fail(f"the last end record lists {len(last.in_flight)} copies in flight, the records leave "
                   f"{len(pending)} undelivered: a record is missing or was altered")


def _delay_check(spec: dict, fail):
    """A test ``delay -> bool`` for the header's delay model (``None`` when any delay > 0 may occur), its
    parameters checked: ``constant`` gives exactly ``value``; ``uniform`` gives delays in ``[low, high]``
    (drawn as ``high - (high - low) * random()``); ``pareto`` at least ``scale``; other models
    (``exponential``, ``from-trace``, ``custom``, a user's) any delay > 0."""
    name = spec["name"]
    if name == "constant":
        value = spec.get("value", 1.0)
        if not (_num(value) and value > 0) or spec.get("random", False) is not False:
            raise fail(f"header 'delay' {_show_delay(spec)}: a constant delay is one finite value > 0, not random")
        return lambda d: d == value
    if name == "uniform":
        low, high = spec.get("low", 0.0), spec.get("high", 1.0)
        if not (_num(low) and _num(high) and 0 <= low < high) or spec.get("random", True) is not True:
            raise fail(f"header 'delay' {_show_delay(spec)}: a uniform delay needs 0 <= low < high < inf")
        return lambda d: low <= d <= high  # low itself only by rounding, as the engine can draw it
    if name == "exponential":
        if not (_num(spec.get("mean", 0.5)) and spec.get("mean", 0.5) > 0):
            raise fail(f"header 'delay' {_show_delay(spec)}: an exponential delay needs a finite mean > 0")
        return None
    if name == "pareto":
        alpha, scale = spec.get("alpha", 1.5), spec.get("scale", 1.0 / 6.0)
        if not (_num(alpha) and _num(scale) and alpha > 0 and scale > 0):
            raise fail(f"header 'delay' {_show_delay(spec)}: a pareto delay needs finite alpha > 0 and scale > 0")
        return lambda d: d >= scale
    if "random" in spec and type(spec["random"]) is not bool:
        raise fail(f"header 'delay' {_show_delay(spec)}: 'random' must be true or false")
    return None


def _show_delay(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)[:120]


def _check_starts(header: dict, records: tuple, n: int, fail) -> None:
    """The records' start-up part agrees with the header: initial messages go to the header's ``start``
    nodes, in its order; traced start-up states (``msg_id`` -1) are one per node ``0..n-1``, in order
    (so a header that claims another number of nodes is found even when the extra nodes never speak)."""
    start = header.get("start", [])
    initial = [r.dst for r in records if type(r) is MessageRecord and r.src == -1 and r.event == "send"]
    if initial != list(start):
        raise fail(f"the records start nodes {initial[:10]}, the header's 'start' says {list(start)[:10]}: "
                   "the header or the records were altered")
    boot = [r.node for r in records if type(r) is StateRecord and r.msg_id == -1]
    if boot and boot != list(range(n)):
        raise fail(f"the records hold start-up states of {len(boot)} node(s) {boot[:10]}, the header's graph has "
                   f"{n} nodes 0..{n - 1}: the records belong to another graph")


def save_trace(trace: Trace, path: Union[str, os.PathLike]) -> None:
    """Write ``trace`` as JSONL (or Parquet, by suffix), atomically (a temporary file renamed into place)."""
    from ..validate import ArgumentError, show
    from .tracers import JSONLTracer

    if not isinstance(trace, Trace):
        raise ArgumentError(f"trace must be a Trace (load_trace, ListTracer.trace()), got {show(trace)}")
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"path must be a file name (str or os.PathLike), got {show(path)}")
    fmt = _format_of(os.fspath(path))
    if fmt is not None:  # a registered format by its suffix: Parquet (ampsim.trace.columnar)
        return fmt[2](trace, path)

    with JSONLTracer(path) as out:
        out.run_start(trace.header)
        for r in trace.records:
            out.send(r)
        for e in trace.ends:
            out.run_end(e)
