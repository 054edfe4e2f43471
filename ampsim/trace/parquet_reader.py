"""Reading Parquet traces: :func:`load_parquet` decodes the rows of :mod:`ampsim.trace.columnar`
back into the same :class:`~ampsim.trace.records.Trace` a JSONL copy gives, refusing a foreign or
damaged file with a :class:`~ampsim.engine.errors.TraceFormatError`; :func:`to_arrow` and
:func:`to_dataframe` give a trace's records as a table."""
from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

from ..engine.errors import TraceFormatError
from .parquet_layout import COLUMNS, HEADER_KEY, T_DELIVER, T_DROP, T_END, T_SEND, T_STATE, _NAMES, _pyarrow
from .records import FORMAT, SUPPORTED_VERSIONS, EndRecord, MessageRecord, StateRecord, Trace

__all__ = ["load_parquet", "to_arrow", "to_dataframe"]


def _read_table(path: str, max_records: Optional[int] = None):
    from .io import check_length

    pa, pq = _pyarrow()
    if not os.path.exists(path):
        raise FileNotFoundError(f"trace file not found: {path}")
    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata.metadata or {}
        check_length(path, pf.metadata.num_rows, max_records, exact=True)  # the footer's count, before reading
        table = pf.read()
    except (pa.ArrowException, OSError) as exc:
        raise TraceFormatError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())}); "
                               "the trace file is corrupt or truncated") from None
    return meta, table


def _header(path: str, meta: dict) -> dict:

    if HEADER_KEY not in meta:
        raise TraceFormatError(f"{path}: not an ampsim trace (no {HEADER_KEY.decode()!r} metadata)")
    try:
        header = json.loads(meta[HEADER_KEY])
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"{path}: the header metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TraceFormatError(f"{path}: not an ampsim trace (the header must have format {FORMAT!r})")
    if header.get("version") not in SUPPORTED_VERSIONS:
        raise TraceFormatError(f"{path}: trace format version {header.get('version')!r} is not supported "
                               f"(this ampsim reads {SUPPORTED_VERSIONS})")
    for key in ("seed", "delay", "fifo", "graph_hash", "graph", "rule"):
        if key not in header:
            raise TraceFormatError(f"{path}: header lacks {key!r}")
    return header


def load_parquet(path: Union[str, os.PathLike], max_records: Optional[int] = None):
    """Read and validate a Parquet trace; the same :class:`Trace` a JSONL copy of it gives (``max_records``:
    see :func:`ampsim.trace.io.load_trace`)."""

    path = os.fspath(path)
    meta, table = _read_table(path, max_records)
    header = _header(path, meta)
    names = list(COLUMNS)
    missing = [c for c in names if c not in table.column_names]
    if missing:
        raise TraceFormatError(f"{path}: not an ampsim trace table (columns {missing} missing)")
    cols = [table.column(c).to_pylist() for c in names]
    records: list = []
    ends: list = []
    pending: dict[int, MessageRecord] = {}
    last: Optional[MessageRecord] = None
    for row, (typ, mid, cause, src, dst, ts, td, delay, kind, payload, reason, text) in enumerate(zip(*cols)):
        try:
            if typ in (T_SEND, T_DELIVER, T_DROP):
                event = _NAMES[typ]
                if cause is None:  # compact: the copy's send row holds the fields
                    sent = pending.pop(mid)
                    r = MessageRecord(event, mid, sent.cause_id, sent.src, sent.dst, sent.t_send, sent.t_deliver,
                                      sent.delay, sent.kind, sent.payload, reason or "")
                else:
                    r = MessageRecord(event, mid, cause, src, dst, ts, ts + delay if td is None else td, delay,
                                      kind, payload, reason or "")
                    if typ == T_SEND:
                        pending[mid] = r
                    else:
                        pending.pop(mid, None)
                if typ == T_DELIVER:
                    last = r
                records.append(r)
                if text is not None:  # the state after this delivery rides in its row
                    if typ != T_DELIVER:
                        raise ValueError(f"a {event} row holds a state")
                    records.append(StateRecord(r.t_deliver, r.dst, mid, text))
            elif typ == T_STATE:
                if dst is None:
                    if last is None or last.msg_id != mid:
                        raise KeyError(mid)
                    records.append(StateRecord(last.t_deliver, last.dst, mid, text))
                else:
                    records.append(StateRecord(ts, dst, mid, text))
            elif typ == T_END:
                d = json.loads(text)
                d.pop("type", None)
                d["in_flight"] = tuple(d["in_flight"])
                d["stuck"] = tuple(d.get("stuck", ()))
                ends.append(EndRecord(**d))
            else:
                raise TraceFormatError(f"{path}: row {row}: unknown record type {typ!r}")
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, TraceFormatError):
                raise
            raise TraceFormatError(f"{path}: row {row}: malformed record ({type(exc).__name__}: {exc})") from None
    if not ends:
        raise TraceFormatError(f"{path}: no 'end' record: the trace is truncated (its run did not finish)")
    return Trace(header, tuple(records), tuple(ends))


def to_arrow(trace: Any, what: str = "messages"):
    """A pyarrow Table of ``trace`` (a Trace, ListTracer or a file): ``messages`` or ``states``.

    ``messages``: one row per send/deliver/drop with every :class:`MessageRecord` field
    (``event`` first). ``states``: one row per :class:`StateRecord` (``t, node, msg_id, state``).
    For polars: ``polars.from_arrow(to_arrow(trace))``.
    """
    from .causality import as_trace

    pa, _ = _pyarrow()
    trace = as_trace(trace)
    if what == "messages":
        cls = MessageRecord
    elif what == "states":
        cls = StateRecord
    else:
        raise ValueError(f"what must be 'messages' or 'states', got {what!r}")
    rows = [r for r in trace.records if type(r) is cls]
    names = list(cls._fields)
    return pa.table({name: [getattr(r, name) for r in rows] for name in names}) if rows else pa.table(
        {name: pa.array([], type=pa.string() if name in ("event", "kind", "payload", "reason", "state")
                        else pa.float64() if name.startswith("t") or name == "delay" else pa.int64())
         for name in names})


def to_dataframe(trace: Any, what: str = "messages"):
    """The pandas DataFrame of :func:`to_arrow` (pandas needed)."""
    try:
        import pandas  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError("to_dataframe needs pandas: pip install pandas (or use to_arrow)") from None
    return to_arrow(trace, what).to_pandas()
