"""Writing Parquet traces: :class:`ParquetTracer` encodes records into row groups as the run goes
(numpy columns, dictionary strings, the compact rows of :mod:`ampsim.trace.columnar`), through an
atomic file; :func:`save_parquet` writes a whole :class:`~ampsim.trace.records.Trace`."""
from __future__ import annotations

import gc
import json
import os
from array import array
from typing import Any, Optional, Union

import numpy as np

from ..fileio import FinishOnExit
from .parquet_layout import COLUMNS, T_DELIVER, T_END, T_SEND, T_STATE, _EVENTS, _pyarrow, _schema, is_parquet
from .records import DELIVER, EndRecord, MessageRecord, StateRecord

__all__ = ["ParquetTracer", "open_tracer", "save_parquet"]


class _Batch:
    """One row group's records: appended as they come, turned into numpy columns a chunk at a time.

    The hooks only append records to ``msgs`` / ``states`` (a state also notes how many message
    records precede it, so the event order survives). Every ``CHUNK`` records, :meth:`absorb`
    transposes the chunk with one C-level ``zip(*records)`` while its records are still in the
    cache, and keeps numpy columns; the records are freed young. :meth:`columns` joins the chunks
    for the encoder.
    """

    CHUNK = 2048
    MSG = (("ev", object), ("mid", np.int64), ("cause", np.int64), ("src", np.int64), ("dst", np.int64),
           ("t_send", np.float64), ("t_deliver", np.float64), ("delay", np.float64), ("kind", object),
           ("payload", object), ("reason", object))
    STATE = (("st_t", np.float64), ("st_node", np.int64), ("st_mid", np.int64), ("st_text", object))

    def __init__(self) -> None:
        self.msgs: list = []
        self.states: list = []
        self.st_at = array("q")
        self.absorbed = 0  # message records already in ``chunks``
        self.chunks: dict[str, list] = {name: [] for name, _ in self.MSG + self.STATE}

    def __len__(self) -> int:
        return self.absorbed + len(self.msgs) + len(self.st_at)

    def absorb(self) -> None:
        """Move the pending records into numpy column chunks (checking that they are records)."""
        for records, spec, cls in ((self.msgs, self.MSG, MessageRecord), (self.states, self.STATE, StateRecord)):
            if not records:
                continue
            if set(map(type, records)) != {cls}:
                bad = next(r for r in records if type(r) is not cls)
                raise TypeError(f"not a {'message' if cls is MessageRecord else 'state'} record: {bad!r}")
            collecting = gc.isenabled()  # zip(*records) makes one iterator per record: no collection meanwhile
            gc.disable()
            try:
                for (name, dtype), col in zip(spec, zip(*records)):
                    self.chunks[name].append(np.array(col, dtype))
            finally:
                if collecting:
                    gc.enable()
        self.absorbed += len(self.msgs)
        self.msgs.clear()
        self.states.clear()

    def columns(self) -> dict:
        """Every column of the batch, joined (after :meth:`absorb`), and ``st_at``."""
        out = {}
        for name, dtype in self.MSG + self.STATE:
            parts = self.chunks[name]
            out[name] = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype)
        out["st_at"] = np.array(self.st_at, np.int64)
        return out

    def clear(self) -> None:
        self.msgs.clear()
        self.states.clear()
        del self.st_at[:]
        self.absorbed = 0
        for parts in self.chunks.values():
            parts.clear()


class _Pool:
    """The sends a later delivery or drop may repeat, by ascending ``msg_id``, with a ``used`` mark.

    Columns grow by doubling (appending a batch's sends is amortised O(sends), not a copy of
    every copy in flight); :meth:`prune_if_half_used` drops the used ones once they are half.
    """

    TYPES = (("msg_id", "i8"), ("cause", "i8"), ("src", "i8"), ("dst", "i8"), ("t_send", "f8"),
             ("t_deliver", "f8"), ("delay", "f8"), ("kind", "O"), ("payload", "O"), ("seq", "i8"), ("used", "?"))

    def __init__(self) -> None:
        self.n = 0
        self.data = {name: np.empty(1024, t) for name, t in self.TYPES}

    def columns(self) -> dict:
        """The first ``n`` entries of every column (views)."""
        return {name: col[: self.n] for name, col in self.data.items()}

    def extend(self, rows, *values) -> None:
        """Append the sends ``rows`` (a mask) of one batch; ``values`` in the order of ``TYPES``."""
        k = int(rows.sum())
        if not k:
            return
        n = self.n
        if n + k > len(self.data["msg_id"]):
            cap = max(2 * len(self.data["msg_id"]), n + k)
            for name, col in self.data.items():
                grown = np.empty(cap, col.dtype)
                grown[:n] = col[:n]
                self.data[name] = grown
        for (name, _), v in zip(self.TYPES, values):
            self.data[name][n: n + k] = v[rows]
        self.data["used"][n: n + k] = False
        self.n = n + k
        ids = self.data["msg_id"][: self.n]
        tail = ids[max(n - 1, 0):]  # the new sends and the last old one
        if not bool(np.all(tail[1:] > tail[:-1])):
            order = np.argsort(ids, kind="stable")  # records not in send order: sort the pool
            for name, col in self.data.items():
                col[: self.n] = col[: self.n][order]

    def prune_if_half_used(self) -> None:
        if 2 * int(self.data["used"][: self.n].sum()) <= self.n:
            return
        keep = ~self.data["used"][: self.n]
        k = int(keep.sum())
        for col in self.data.values():
            col[:k] = col[: self.n][keep]
        self.n = k


class _Encoder:
    """Turns a batch of message and state records into one Arrow table (see the module doc).

    Its input is a :class:`_Batch` (numpy columns), so the work here is numpy and Arrow on
    whole columns: a run of 100k messages writes three times that many records. Sends not yet
    delivered stay in ``pool`` (a :class:`_Pool`) so later batches can refer to them.
    """

    def __init__(self, schema) -> None:
        self.schema = schema
        self.pool = _Pool()
        self.rows = 0  # message rows encoded so far

    def table(self, batch: _Batch):
        import pyarrow as pa

        batch.absorb()
        c = batch.columns()
        m, k = len(c["mid"]), len(c["st_mid"])
        n = m + k
        # the event order: state i comes after the first st_at[i] message records
        st_pos = c["st_at"] + np.arange(k)
        is_state = np.zeros(n, bool)
        is_state[st_pos] = True
        ms_pos = np.flatnonzero(~is_state)
        ev = c["ev"]
        code = np.full(m, -1, np.int8)
        for name, value in _EVENTS.items():
            code[ev == name] = value
        if m and int(code.min()) < 0:
            raise ValueError(f"unknown event {ev[np.argmin(code)]!r} in a message record")
        mid, cause, src, dst = c["mid"], c["cause"], c["src"], c["dst"]
        ts, td, delay = c["t_send"], c["t_deliver"], c["delay"]
        kind, payload, reason = c["kind"], c["payload"], c["reason"]
        is_send = code == T_SEND

        # A delivery or drop is stored compact when the reader will rebuild it from its copy's send: the
        # reader keeps the latest send of each msg_id until a delivery or drop of that msg_id takes it
        # (load_parquet). So: the send precedes the row, no other send has its msg_id, no earlier row took
        # it, and every field equals. The engine's traces always qualify; shuffled or edited ones are
        # stored as they are, compacting only what the reader can rebuild.
        pool = self.pool
        seq = self.rows + np.arange(m)  # the message rows' positions in the whole trace
        self.rows += m
        pool.extend(is_send, mid, cause, src, dst, ts, td, delay, kind, payload, seq)
        other = np.flatnonzero(~is_send)
        compact = np.zeros(m, bool)
        if len(other) and pool.n:
            p = pool.columns()
            ids = p["msg_id"]
            j = np.minimum(np.searchsorted(ids, mid[other]), pool.n - 1)
            found = (ids[j] == mid[other]) & (p["seq"][j] < seq[other]) & ~p["used"][j]
            unique = (ids[np.maximum(j - 1, 0)] != ids[j]) | (j == 0)
            unique &= (ids[np.minimum(j + 1, pool.n - 1)] != ids[j]) | (j == pool.n - 1)
            first = np.zeros(len(other), bool)  # the first row of this batch that takes each send
            hit = np.flatnonzero(found)
            first[hit[np.unique(j[hit], return_index=True)[1]]] = True
            found &= first
            same = found & unique
            for name, b in (("cause", cause), ("src", src), ("dst", dst), ("t_send", ts), ("t_deliver", td),
                            ("delay", delay), ("kind", kind), ("payload", payload)):
                same &= p[name][j] == b[other]
            compact[other] = same
            p["used"][j[found]] = True
            for r in np.flatnonzero(found & ~unique):  # a reused msg_id (never in the engine's traces): the
                p["used"][(ids == mid[other[r]]) & (p["seq"] < seq[other[r]])] = True  # row takes every earlier send
            pool.prune_if_half_used()

        # A state that directly follows the delivery of its msg_id, at that node and time (every state the
        # engine records after a delivery), rides in that delivery's row: its text in ``text``. Other states
        # (start-up, or odd streams) keep a row of their own with every field.
        st_t, st_node, st_mid, st_text = c["st_t"], c["st_node"], c["st_mid"], c["st_text"]
        row_of = np.full(n + 1, -1, np.int64)
        row_of[ms_pos] = np.arange(m)
        prev = row_of[st_pos - 1] if k else np.empty(0, np.int64)  # st_pos - 1 == -1 maps to row_of[-1] == -1
        ok = prev >= 0
        pk = np.where(ok, prev, 0)
        merged = ok & (code[pk] == T_DELIVER) if m else np.zeros(k, bool)
        if m:
            merged &= (mid[pk] == st_mid) & (dst[pk] == st_node) & (td[pk] == st_t)
        own = ~merged
        gone = np.zeros(n, bool)
        gone[st_pos[merged]] = True
        new_index = np.cumsum(~gone) - 1
        n = n - int(merged.sum())
        ms_pos, st_pos = new_index[ms_pos], new_index[st_pos[own]]

        def full(dtype, fill, msg_vals, msg_null, st_vals=None):
            vals = np.full(n, fill, dtype)
            null = np.ones(n, bool)
            vals[ms_pos] = msg_vals
            null[ms_pos] = msg_null
            if st_vals is not None:
                vals[st_pos] = st_vals[own]
                null[st_pos] = False
            return vals, null

        td_null = compact | (ts + delay == td)
        ev_type = np.full(n, T_STATE, np.int8)
        ev_type[ms_pos] = code
        mid_all = np.empty(n, np.int64)
        mid_all[ms_pos] = mid
        mid_all[st_pos] = st_mid[own]
        columns = {
            "type": pa.array(ev_type, pa.int8()),
            "msg_id": pa.array(mid_all, pa.int64()),
        }
        for name, dtype, fill, mv, mn, sv, typ in (
            ("cause_id", np.int64, 0, cause, compact, None, pa.int64()),
            ("src", np.int32, 0, src, compact, None, pa.int32()),
            ("dst", np.int32, 0, dst, compact, st_node, pa.int32()),
            ("t_send", np.float64, 0.0, ts, compact, st_t, pa.float64()),
            ("t_deliver", np.float64, 0.0, td, td_null, None, pa.float64()),
            ("delay", np.float64, 0.0, delay, compact, None, pa.float64()),
        ):
            vals, null = full(dtype, fill, mv, mn, sv)
            columns[name] = pa.array(vals, typ, mask=null)
        for name, mv, mn in (("kind", kind, compact), ("payload", payload, compact), ("reason", reason, reason == "")):
            keep = ~mn  # dictionary-encode only the rows that hold a value (a send's; a drop's reason)
            enc = pa.array(mv[keep], pa.string()).dictionary_encode()
            indices = np.zeros(n, np.int32)
            indices[ms_pos[keep]] = enc.indices.to_numpy(zero_copy_only=False)
            null = np.ones(n, bool)
            null[ms_pos[keep]] = False
            columns[name] = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32(), mask=null), enc.dictionary)
        text = np.full(n, None, object)
        text[ms_pos[pk[merged]]] = st_text[merged]
        text[st_pos] = st_text[own]
        columns["text"] = pa.array(text, pa.string())
        return pa.table(columns, schema=self.schema)

    def end_table(self, record: EndRecord):
        import pyarrow as pa

        row = {name: [None] for name in COLUMNS}
        row["type"] = [T_END]
        row["text"] = [json.dumps(record.to_dict(), separators=(",", ":"), allow_nan=False)]
        return pa.Table.from_pydict(row, schema=self.schema)


class _Counted:
    """The stream pyarrow writes to: an :class:`~ampsim.fileio.AtomicFile` that counts the bytes."""

    def __init__(self, f) -> None:
        self.f = f
        self.written = 0

    @property
    def closed(self) -> bool:
        return self.f.closed

    def write(self, data) -> int:
        self.written += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    def tell(self) -> int:
        return self.written


class ParquetTracer(FinishOnExit):
    """Writes a Parquet trace to ``path`` in row groups as the run goes; atomically, on :meth:`close`.

    The hot hooks append each record to a :class:`_Batch` (which turns them into numpy columns a
    chunk at a time); every
    ``row_group_size`` records the batch is encoded and written as one row group (zstd,
    level ``compression_level``).
    """

    def __init__(self, path: Union[str, os.PathLike], states: bool = True, row_group_size: int = 16384,
                 compression_level: int = 3, max_bytes: Optional[int] = None) -> None:
        _pyarrow()
        if row_group_size < 1:
            raise ValueError(f"row_group_size must be >= 1, got {row_group_size!r}")
        self.path = os.fspath(path)
        self.wants_states = states
        self.row_group_size = row_group_size
        self.compression_level = compression_level
        self.max_bytes = max_bytes
        batch = self._batch = _Batch()
        msgs, states, st_at, size = batch.msgs, batch.states, batch.st_at.append, row_group_size
        chunk = min(batch.CHUNK, row_group_size)
        self.send = msgs.append  # hot path: one list append (a broadcast's sends follow a delivery, which checks)

        def state(record: StateRecord) -> None:
            states.append(record)
            st_at(batch.absorbed + len(msgs))

        def deliver(record: MessageRecord) -> None:
            if len(msgs) + len(states) >= chunk:
                if len(batch) >= size:  # before the delivery: its state joins it in the next group
                    self.flush()
                else:
                    batch.absorb()
            msgs.append(record)

        self.state, self.deliver = state, deliver
        self.drop = deliver  # a run of drops (halted nodes) also fills row groups
        self._encoder = None
        self._file = None
        self._writer = None
        self._schema = None

    def run_start(self, header: dict) -> None:
        from ..fileio import AtomicFile

        pa, pq = _pyarrow()
        if self._writer is not None:
            raise RuntimeError(f"{self.path}: run_start called twice (one simulation per trace file)")
        self._schema = _schema(pa, header)
        self._encoder = _Encoder(self._schema)
        self._file = AtomicFile(self.path, "wb")
        self._out = _Counted(self._file)
        self._writer = pq.ParquetWriter(
            self._out, self._schema, compression="zstd", compression_level=self.compression_level,
            use_dictionary=["kind", "payload", "reason", "text"],
            column_encoding={"t_send": "BYTE_STREAM_SPLIT", "t_deliver": "BYTE_STREAM_SPLIT",
                             "delay": "BYTE_STREAM_SPLIT", "msg_id": "DELTA_BINARY_PACKED"},
            write_statistics=False,
            store_schema=False,  # the header is in the key-value metadata once, not again in an Arrow schema
        )
        self._writer.add_key_value_metadata(self._schema.metadata)

    def run_end(self, record: EndRecord) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.write_table(self._encoder.end_table(record))

    def flush(self) -> None:
        """Encode the buffered records and write them as one row group."""
        if not len(self._batch) or self._writer is None:
            return
        # The encoder makes no reference cycles; its object arrays (kind, payload, texts)
        # would only make the collector rescan them.
        collecting = gc.isenabled()
        gc.disable()
        try:
            table = self._encoder.table(self._batch)
            self._batch.clear()
        finally:
            if collecting:
                gc.enable()
        self._writer.write_table(table, row_group_size=max(self.row_group_size, table.num_rows))
        if self.max_bytes is not None and self._out.written > self.max_bytes:
            from .tracers import TraceLimitError

            self.abort()
            raise TraceLimitError(f"{self.path}: the trace would exceed {self.max_bytes / 1e6:g} MB; "
                                  "nothing was written (raise the limit, or trace a shorter run)")

    def close(self) -> None:
        """Write what is buffered, finish the file and move it into place."""
        if self._file is None or self._file.closed:
            return
        try:
            self.flush()
            self._writer.close()
        except BaseException:
            self.abort()
            raise
        self._writer = None
        self._file.commit()

    def abort(self) -> None:
        """Discard the partial file (after an error): nothing half-written is left."""
        writer, self._writer = self._writer, None
        if writer is not None and self._file is not None and not self._file.closed:
            try:
                writer.close()  # so that the writer has nothing left to do when it is collected
            except Exception:  # noqa: BLE001 - the file is discarded anyway
                pass
        if self._file is not None:
            self._file.abort()



def open_tracer(path: Union[str, os.PathLike], states: bool = True, max_bytes: Optional[int] = None):
    """The tracer for ``path`` by its suffix: :class:`ParquetTracer` for ``.parquet``, else JSONL."""
    if is_parquet(path):
        return ParquetTracer(path, states=states, max_bytes=max_bytes)
    from .tracers import JSONLTracer

    return JSONLTracer(path, states=states, max_bytes=max_bytes)


def save_parquet(trace: Any, path: Union[str, os.PathLike]) -> None:
    """Write a :class:`Trace` (or anything :func:`~ampsim.trace.causality.as_trace` takes) as Parquet."""
    from .causality import as_trace

    trace = as_trace(trace)
    with ParquetTracer(path) as out:
        out.run_start(trace.header)
        for r in trace.records:
            if type(r) is StateRecord:
                out.state(r)
            elif type(r) is MessageRecord and r.event == DELIVER:
                out.deliver(r)
            else:
                out.send(r)
        for e in trace.ends:
            out.run_end(e)
