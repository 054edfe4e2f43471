"""Frozen trace records: the product every other feature is a function of (STYLE.md semantics 6).

One :class:`MessageRecord` per event in a message copy's life, where a copy is one
(message, receiving edge) pair and has its own ``msg_id``:

* ``send``: scheduled at ``t_send`` to arrive at ``t_deliver = t_send + delay``
  (FIFO may push the arrival later than ``t_send + delay``);
* ``deliver``: processed by ``dst`` at ``t_deliver``;
* ``drop``: not processed, with a ``reason`` (``lost`` at send time, ``halted``
  at arrival).

``cause_id`` is the ``msg_id`` of the delivery whose processing sent this copy
(-1 for start-up emissions and initial messages); the initial messages of the
start policy have ``src = -1`` and ``delay = 0``. Every sent copy is delivered or
dropped exactly once, or still in flight when a run ends (listed in its
:class:`EndRecord`).

Message and state records are immutable named tuples (``typing.NamedTuple``), not
frozen dataclasses: a traced run builds about three records per message on the hot
path, and a frozen dataclass of eleven fields costs 0.8 us to build against 0.18 us
for the tuple (``benchmarks/engine.py --trace``). They read like dataclasses
(``record.msg_id``, ``record._replace(...)``, ``MessageRecord._fields``) and the
columnar writer transposes them in C (``zip(*records)``). The one-per-run
:class:`EndRecord` stays a frozen dataclass.

A :class:`Trace` is a whole recorded run (header, records, ends), and :data:`FORMAT` /
:data:`VERSION` are what a trace file's header says it is. They live here, with the records and
below everything that reads or writes a trace, so that the engine names them without importing a
trace reader.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Union

__all__ = ["MessageRecord", "StateRecord", "EndRecord", "Trace", "SEND", "DELIVER", "DROP", "FORMAT", "VERSION",
           "SUPPORTED_VERSIONS", "summarize", "trace_format", "PARQUET_SUFFIXES"]

SEND, DELIVER, DROP = "send", "deliver", "drop"
FORMAT = "ampsim.trace"
"""The ``format`` of every trace header (JSONL line or Parquet metadata)."""
VERSION = 1
"""The trace format version the engine writes."""
SUPPORTED_VERSIONS = (1,)
"""The versions the readers accept."""

PARQUET_SUFFIXES = (".parquet", ".pq")
"""A trace file named with one of these is Parquet (:mod:`ampsim.trace.columnar`); any other allowed name is JSONL."""
OTHER_FORMAT_SUFFIXES = (".csv", ".tsv", ".gz", ".bz2", ".xz", ".zst", ".zip", ".tar", ".png", ".jpg", ".jpeg", ".gif",
                         ".webp", ".tif", ".tiff", ".svg", ".svgz", ".pdf", ".eps", ".ps", ".html", ".htm", ".npy",
                         ".npz", ".pt", ".pth", ".pkl", ".pickle", ".h5", ".hdf5", ".feather", ".arrow", ".xlsx")
"""Suffixes that name a format a trace is not (a table, an archive, a picture, a page, an array)."""


def trace_format(path: Union[str, os.PathLike]) -> str:
    """A trace file's format from its name, the one place that decides it: ``"parquet"`` for a name
    ending in :data:`PARQUET_SUFFIXES`, else ``"jsonl"``. A name ending in another format's suffix
    (:data:`OTHER_FORMAT_SUFFIXES`: ``.csv``, ``.gz``, ``.png``, ``.html``, ...) is refused with a
    ValueError naming the file, so a trace is never written, nor read, under another format's name
    (a compressed trace is decompressed first)."""
    name = os.fspath(path)
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    other = next((suffix for suffix in OTHER_FORMAT_SUFFIXES if lower.endswith(suffix)), None)
    if other is not None:
        raise ValueError(f"{name}: a name ending in {other} names another format; a trace file is JSONL "
                         f"(e.g. .jsonl) or Parquet ({', '.join(PARQUET_SUFFIXES)})"
                         + ("; traces are written and read uncompressed" if other in (".gz", ".bz2", ".xz", ".zst", ".zip") else ""))
    return "jsonl"


class MessageRecord(NamedTuple):
    """One send, delivery or drop of one message copy on one edge."""

    event: str
    msg_id: int
    cause_id: int
    src: int
    dst: int
    t_send: float
    t_deliver: float
    delay: float
    kind: str
    payload: str
    reason: str = ""

    def to_dict(self) -> dict:
        return {"type": self.event, **dict(zip(_MSG_KEYS, self[1:]))}


_MSG_KEYS = MessageRecord._fields[1:]


class StateRecord(NamedTuple):
    """Node ``node``'s state after processing delivery ``msg_id`` at time ``t`` (-1: start-up)."""

    t: float
    node: int
    msg_id: int
    state: str

    def to_dict(self) -> dict:
        return {"type": "state", **self._asdict()}


@dataclass(frozen=True, slots=True)
class EndRecord:
    """How one ``run()`` call ended: its reason, clock, counts, stuck nodes and copies still in flight."""

    reason: str
    time: float
    deliveries: int
    sent: int
    dropped: int
    in_flight: tuple[int, ...]
    stuck: tuple[int, ...] = ()
    until: float | None = None
    max_deliveries: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["in_flight"] = list(self.in_flight)
        d["stuck"] = list(self.stuck)
        return {"type": "end", **d}


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


def summarize(value: Any, limit: int = 120) -> str:
    """A short deterministic text for a payload or state: exact for numbers, rounded for tensors."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, str)):
        return repr(value)
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch tensor
        flat = value.detach().reshape(-1).tolist()
        head = ",".join(f"{x:.4g}" for x in flat[:8])
        return f"[{head}{',...' if len(flat) > 8 else ''}]"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
