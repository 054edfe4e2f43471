"""Tracers: the hooks the engine calls for every send, delivery, drop and state change.

The engine only calls a tracer when one is given (``tracer=None`` costs nothing on
the per-message path). A tracer implements :class:`Tracer`, one hook per event:
``run_start(header)`` (once, when the simulation is built), ``send``, ``deliver``,
``drop`` (each with a :class:`MessageRecord`), ``state`` (a :class:`StateRecord`
after every delivery, only if ``wants_states``) and ``run_end`` (an
:class:`EndRecord` per ``run()`` call).

* :class:`ListTracer` keeps every record in ``records`` (and the header/ends).
* :class:`JSONLTracer` streams records to a ``.jsonl`` file (see :mod:`ampsim.trace.io`);
  the file appears under its name only when the tracer is closed cleanly, so a
  failed run leaves nothing half-written.
* :class:`TeeTracer` fans out to several tracers.

A tracer written by a user needs only ``send``, ``deliver`` and ``drop``; ``run_start``,
``run_end``, ``state`` and ``wants_states`` (default ``False``) are optional.
:func:`as_tracer` (called by the simulation once, at construction) fills in the missing optional
hooks with no-ops and refuses, with a :class:`~ampsim.engine.errors.RuleError` naming the class
and the method, a tracer that lacks a required hook or has one that is not callable. Nothing
is checked per record: the engine calls the user's own bound methods.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Protocol, Sequence, Union, runtime_checkable

from ..engine.errors import AmpsimError, RuleError
from ..fileio import AtomicFile, FinishOnExit
from .records import EndRecord, MessageRecord, StateRecord, Trace, trace_format

__all__ = ["Tracer", "ListTracer", "JSONLTracer", "TeeTracer", "TraceLimitError", "as_tracer"]


@runtime_checkable
class Tracer(Protocol):
    """Hooks called by the simulation, in event order."""

    wants_states: bool

    def run_start(self, header: dict) -> None: ...

    def send(self, record: MessageRecord) -> None: ...

    def deliver(self, record: MessageRecord) -> None: ...

    def drop(self, record: MessageRecord) -> None: ...

    def state(self, record: StateRecord) -> None: ...

    def run_end(self, record: EndRecord) -> None: ...


_REQUIRED = ("send", "deliver", "drop")
_OPTIONAL = ("run_start", "run_end", "state")


def _ignore(record: object) -> None:
    return None


class _Hooks:
    """A user's tracer with its missing optional hooks filled in (its own hooks are its bound methods)."""

    def __init__(self, tracer: object, wants_states: bool) -> None:
        self.tracer = tracer
        self.wants_states = wants_states
        for name in _REQUIRED + _OPTIONAL:
            setattr(self, name, getattr(tracer, name, _ignore))


def as_tracer(tracer: object):
    """``tracer`` itself when it has every hook, else a view of it with no-ops for the missing optional ones.

    :class:`RuleError` (naming the class and the method) for ``None``-like values, a missing
    ``send``/``deliver``/``drop``, a hook that is not callable, ``wants_states`` that is not a bool,
    or ``wants_states=True`` without a ``state`` hook.
    """
    from ..validate import show

    cls = type(tracer).__name__
    if isinstance(tracer, type) or not any(hasattr(tracer, name) for name in _REQUIRED + _OPTIONAL):
        raise RuleError(f"tracer must be a Tracer (send, deliver, drop; optionally run_start, state, run_end) "
                        f"or None, got {show(tracer)}")
    for name in _REQUIRED + _OPTIONAL:
        hook = getattr(tracer, name, None)
        if hook is None and name in _REQUIRED:
            raise RuleError(f"tracer {cls} has no method {name!r}: a Tracer needs send, deliver and drop "
                            "(run_start, state, run_end are optional)")
        if hook is not None and not callable(hook):
            raise RuleError(f"tracer {cls}.{name} must be a method, got {type(hook).__name__}")
    wants = getattr(tracer, "wants_states", False)
    if type(wants) is not bool and type(wants).__name__ != "bool_":
        raise RuleError(f"tracer {cls}.wants_states must be True or False, got {wants!r:.60}")
    if wants and getattr(tracer, "state", None) is None:
        raise RuleError(f"tracer {cls} wants states (wants_states=True) but has no method 'state'")
    if all(hasattr(tracer, name) for name in _OPTIONAL + ("wants_states",)):
        return tracer
    return _Hooks(tracer, bool(wants))


class ListTracer:
    """Keeps everything in memory: ``header``, ``records`` (messages and states, in order), ``ends``."""

    def __init__(self, states: bool = True) -> None:
        self.wants_states = states
        self.header_: dict = {}
        self.records: list[Union[MessageRecord, StateRecord]] = []
        self.ends: list[EndRecord] = []

    def run_start(self, header: dict) -> None:
        self.header_ = header

    def send(self, record: MessageRecord) -> None:
        self.records.append(record)

    deliver = drop = state = send

    def run_end(self, record: EndRecord) -> None:
        self.ends.append(record)

    @property
    def messages(self) -> list[MessageRecord]:
        """Only the message records."""
        return [r for r in self.records if isinstance(r, MessageRecord)]

    def trace(self) -> "object":
        """A :class:`~ampsim.trace.records.Trace` of what was recorded (for replay and plots)."""
        return Trace(self.header_, tuple(self.records), tuple(self.ends))


def _dumps(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"), allow_nan=False)


class TraceLimitError(AmpsimError):
    """A trace grew past its size limit (``max_bytes``); the partial file has been removed."""


class JSONLTracer(FinishOnExit):
    """Writes a versioned JSONL trace to ``path``: atomically, on :meth:`close` (or ``with``).

    The records go to an :class:`~ampsim.fileio.AtomicFile`: the file appears under
    ``path`` only on :meth:`close`; :meth:`abort`, an exception inside ``with``, a
    signal (see :func:`ampsim.fileio.on_signal_exit`) or the garbage collection of a
    tracer never closed leave nothing. ``max_bytes`` (default: no limit) stops the
    run with :class:`TraceLimitError` as soon as the trace would grow past it.
    """

    def __init__(self, path: Union[str, os.PathLike], states: bool = True, max_bytes: Optional[int] = None) -> None:
        self.path = os.fspath(path)
        if trace_format(self.path) != "jsonl":
            raise ValueError(f"{self.path}: a Parquet name; JSONLTracer writes JSONL (open_tracer picks the tracer "
                             "by the name)")
        self.wants_states = states
        self.max_bytes = max_bytes
        self.bytes_written = 0
        self._file = AtomicFile(self.path, "w")
        self._write = self._file.write

    def _line(self, d: dict) -> None:
        line = _dumps(d) + "\n"
        self.bytes_written += len(line)
        if self.max_bytes is not None and self.bytes_written > self.max_bytes:
            self.abort()
            raise TraceLimitError(f"{self.path}: the trace would exceed {self.max_bytes / 1e6:g} MB; "
                                  "stopped, nothing written")
        self._write(line)

    def run_start(self, header: dict) -> None:
        self._line(header)

    def send(self, record: Union[MessageRecord, StateRecord, EndRecord]) -> None:
        self._line(record.to_dict())

    deliver = drop = state = run_end = send

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        """Finish the file and move it into place (idempotent)."""
        self._file.commit()

    def abort(self) -> None:
        """Discard the partial file (after an error): nothing half-written is left (idempotent)."""
        self._file.abort()



class TeeTracer:
    """Forwards every hook to each of ``tracers``."""

    def __init__(self, tracers: Sequence[Tracer]) -> None:
        self.tracers = list(tracers)
        self.wants_states = any(t.wants_states for t in self.tracers)

    def run_start(self, header: dict) -> None:
        for t in self.tracers:
            t.run_start(header)

    def send(self, record: MessageRecord) -> None:
        for t in self.tracers:
            t.send(record)

    def deliver(self, record: MessageRecord) -> None:
        for t in self.tracers:
            t.deliver(record)

    def drop(self, record: MessageRecord) -> None:
        for t in self.tracers:
            t.drop(record)

    def state(self, record: StateRecord) -> None:
        for t in self.tracers:
            if t.wants_states:
                t.state(record)

    def run_end(self, record: EndRecord) -> None:
        for t in self.tracers:
            t.run_end(record)
