"""Columnar traces: Parquet (pyarrow), written in row groups as the run goes; a DataFrame view.

A ``.parquet`` trace holds the same records as a JSONL trace (:mod:`ampsim.trace.io`)
and reads back as the same :class:`~ampsim.trace.io.Trace`: ``load_trace`` dispatches
on the suffix, so replay, plots, export and every loader take either format.

Layout: the versioned header is the file's key-value metadata ``ampsim.header`` (the
JSON object of the JSONL header line); records are rows of one table, in event order:

=========  =====  =======================================================================
column     type   meaning
=========  =====  =======================================================================
type       int8   0 send, 1 deliver, 2 drop, 3 state, 4 end
msg_id     int64  the copy (for a state: the delivery it follows, -1 at start-up)
cause_id   int64  MessageRecord.cause_id
src, dst   int32  MessageRecord.src / dst (a state's node is in ``dst``)
t_send     f64    MessageRecord.t_send (a state's ``t``)
t_deliver  f64    MessageRecord.t_deliver; null when it equals ``t_send + delay``
delay      f64    MessageRecord.delay
kind       dict   MessageRecord.kind
payload    dict   MessageRecord.payload
reason     dict   MessageRecord.reason (null for "")
text       str    a state's ``state`` (on a state row, or on the delivery row it follows); an end record as JSON
=========  =====  =======================================================================

Rows repeat nothing the reader can recover exactly: a ``deliver`` (or a ``halted``
drop) whose fields equal its copy's ``send`` row stores only ``type``, ``msg_id`` and
``reason``; a ``state`` that directly follows the delivery of its ``msg_id`` at that
node and time has no row of its own: its text is that delivery row's ``text``. (Files
of the first layout gave such a state a row with ``type``, ``msg_id`` and ``text``
only; the reader still reads them.) Null cells cost almost nothing
in Parquet, and the one column that carries information per copy (``delay``) is
stored with byte-stream-split encoding and zstd. See ``benchmarks/engine.py --trace``
for the bytes per message and the speed against JSONL.

The writer (:class:`ParquetTracer`) buffers records and writes a row group every
``row_group_size`` rows (default 16384), through :class:`ampsim.fileio.AtomicFile`: the file appears
under its name only when the tracer is closed cleanly.

The layout is :mod:`ampsim.trace.parquet_layout`, the writer :mod:`ampsim.trace.parquet_writer`,
the reader :mod:`ampsim.trace.parquet_reader`; this module names them all.
"""
from __future__ import annotations

from .parquet_layout import COLUMNS, HEADER_KEY, T_DELIVER, T_DROP, T_END, T_SEND, T_STATE, is_parquet  # noqa: F401
from .parquet_reader import load_parquet, to_arrow, to_dataframe
from .parquet_writer import ParquetTracer, open_tracer, save_parquet

__all__ = [
    "ParquetTracer",
    "load_parquet",
    "save_parquet",
    "to_arrow",
    "to_dataframe",
    "open_tracer",
    "is_parquet",
    "HEADER_KEY",
]
