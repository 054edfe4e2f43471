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
import os
from dataclasses import dataclass, fields
from typing import Union

from ..engine.errors import TraceFormatError
from .records import EndRecord, MessageRecord, StateRecord

__all__ = ["Trace", "load_trace", "save_trace"]

FORMAT = "ampsim.trace"
SUPPORTED_VERSIONS = (1,)
_MSG_FIELDS = [f.name for f in fields(MessageRecord)][1:]
_STATE_FIELDS = [f.name for f in fields(StateRecord)]
_END_FIELDS = [f.name for f in fields(EndRecord)]


@dataclass(frozen=True)
class Trace:
    """A recorded run: its ``header``, its records in event order, and one end record per ``run()``."""

    header: dict
    records: tuple
    ends: tuple

    @property
    def messages(self) -> list[MessageRecord]:
        return [r for r in self.records if isinstance(r, MessageRecord)]

    @property
    def deliveries(self) -> list[MessageRecord]:
        return [r for r in self.records if isinstance(r, MessageRecord) and r.event == "deliver"]

    @property
    def states(self) -> list[StateRecord]:
        return [r for r in self.records if isinstance(r, StateRecord)]

    def delays(self) -> dict[int, float]:
        """``msg_id -> delay`` of every copy sent on an edge (the input of a from-trace replay)."""
        return {r.msg_id: r.delay for r in self.records if isinstance(r, MessageRecord) and r.event in ("send", "drop") and r.src >= 0}


def _parse_line(path: str, lineno: int, line: str) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg}); the trace file is corrupt or truncated") from None
    if not isinstance(obj, dict) or "type" not in obj:
        raise TraceFormatError(f"{path}:{lineno}: expected a JSON object with a 'type' field")
    return obj


def _build(path: str, lineno: int, cls, names: list[str], obj: dict, extra: dict | None = None):
    try:
        kwargs = {name: obj[name] for name in names if name in obj}
        if extra:
            kwargs.update(extra)
        record = cls(**kwargs)
    except TypeError as exc:
        raise TraceFormatError(f"{path}:{lineno}: malformed {obj.get('type')!r} record ({exc})") from None
    return record


def load_trace(path: Union[str, os.PathLike]) -> Trace:
    """Read and validate a trace: JSONL (:class:`~ampsim.trace.tracers.JSONLTracer`) or, by suffix, Parquet."""
    path = os.fspath(path)
    if path.lower().endswith((".parquet", ".pq")):  # the columnar format (ampsim.trace.columnar)
        from .columnar import load_parquet

        return load_parquet(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"trace file not found: {path}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        raise TraceFormatError(f"{path}: empty file, not an ampsim trace")
    header = _parse_line(path, 1, lines[0])
    if header.get("type") != "header" or header.get("format") != FORMAT:
        raise TraceFormatError(f"{path}: not an ampsim trace (the first line must be a header with format {FORMAT!r})")
    if header.get("version") not in SUPPORTED_VERSIONS:
        raise TraceFormatError(f"{path}: trace format version {header.get('version')!r} is not supported (this ampsim reads {SUPPORTED_VERSIONS})")
    for key in ("seed", "delay", "fifo", "graph_hash", "graph", "rule"):
        if key not in header:
            raise TraceFormatError(f"{path}:1: header lacks {key!r}")
    records: list = []
    ends: list = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        obj = _parse_line(path, lineno, line)
        kind = obj["type"]
        if kind in ("send", "deliver", "drop"):
            if any(name not in obj for name in _MSG_FIELDS[:-1]):
                raise TraceFormatError(f"{path}:{lineno}: {kind} record lacks fields {[n for n in _MSG_FIELDS[:-1] if n not in obj]}")
            records.append(_build(path, lineno, MessageRecord, _MSG_FIELDS, obj, {"event": kind}))
        elif kind == "state":
            records.append(_build(path, lineno, StateRecord, _STATE_FIELDS, obj))
        elif kind == "end":
            rec = _build(path, lineno, EndRecord, _END_FIELDS, obj)
            ends.append(EndRecord(**{**{f: getattr(rec, f) for f in _END_FIELDS}, "in_flight": tuple(rec.in_flight), "stuck": tuple(rec.stuck)}))
        else:
            raise TraceFormatError(f"{path}:{lineno}: unknown record type {kind!r}")
    if not ends:
        raise TraceFormatError(f"{path}: no 'end' record: the trace is truncated (its run did not finish)")
    return Trace(header, tuple(records), tuple(ends))


def save_trace(trace: Trace, path: Union[str, os.PathLike]) -> None:
    """Write ``trace`` as JSONL (or Parquet, by suffix), atomically (a temporary file renamed into place)."""
    from .tracers import JSONLTracer

    if os.fspath(path).lower().endswith((".parquet", ".pq")):  # the columnar format (ampsim.trace.columnar)
        from .columnar import save_parquet

        return save_parquet(trace, path)

    with JSONLTracer(path) as out:
        out.run_start(trace.header)
        for r in trace.records:
            out.send(r)
        for e in trace.ends:
            out.run_end(e)
