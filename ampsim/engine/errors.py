"""The few exception types users catch.

Every bad input gets exactly one of these, raised before anything is written.
All derive from ``AmpsimError`` so ``except AmpsimError`` catches them all; the
ones about malformed inputs also derive from ``ValueError``.
"""
from __future__ import annotations

__all__ = [
    "AmpsimError",
    "ArgumentError",
    "GraphError",
    "FeatureError",
    "EdgeListError",
    "SizeLimitError",
    "CheckpointError",
    "DelayError",
    "AssumptionError",
    "TraceFormatError",
    "ReplayMismatch",
    "TraceMismatch",
    "OutputPathError",
    "RuleError",
]


class AmpsimError(Exception):
    """Base class of every error ampsim raises on purpose."""


class ArgumentError(AmpsimError, ValueError, TypeError):
    """An argument of a public entry point has the wrong type or is out of range.

    The message names the argument and repeats the user's value (see :mod:`ampsim.validate`).
    It is both a ``ValueError`` and a ``TypeError``, so callers that catch either keep working.
    """


class GraphError(AmpsimError, ValueError):
    """The graph cannot be simulated (directed, multi-edges, self-loops, empty, ...)."""


class FeatureError(ArgumentError, GraphError):
    """Node features are misshapen, given on only some nodes, or hold NaN or infinity (design rule 11)."""


class EdgeListError(GraphError):
    """An edge-list file is missing, unreadable or malformed; the message names the file (and line)."""


class SizeLimitError(GraphError):
    """A size from an argument or a file header (a graph spec, a trace header's graph, a trace's length, a
    checkpoint's or data file's dimensions) would exceed its limit; the message gives the estimate, the
    limit and the option that lifts it. Raised before anything is allocated."""


class CheckpointError(AmpsimError, ValueError):
    """A checkpoint file is missing, empty, truncated, corrupt, foreign, or written for another configuration;
    the message names the file."""


class OutputPathError(AmpsimError, OSError, ValueError):
    """A file cannot be written where its name points: a folder, a FIFO or device, a missing or read-only
    folder, a link loop. Raised before anything is written; the message names the path.

    It is an ``OSError`` (a path problem) and a ``ValueError`` (bad input), so callers that catch either keep working.
    """


class RuleError(ArgumentError):
    """A user-written ``NodeRule`` or ``Tracer`` broke its contract (a wrong return type, a missing method);
    the message names its class and the method. An :class:`ArgumentError` (the rule or tracer is an argument)."""


class DelayError(AmpsimError, ValueError):
    """A delay model produced a delay that is not finite and > 0 (never clamped)."""


class AssumptionError(AmpsimError, ValueError):
    """A rule assumes something (random delays, FIFO, known degree) the simulation does not give."""


class TraceFormatError(AmpsimError, ValueError):
    """A trace file is corrupt, truncated, foreign, or of an unsupported version."""


class ReplayMismatch(AmpsimError):
    """A replay diverged from its recorded trace; ``index``, ``expected`` and ``got`` say where."""

    def __init__(self, index: int, expected: object, got: object) -> None:
        self.index = index
        self.expected = expected
        self.got = got
        where = "in the header" if index == -1 else f"at record {index}"
        super().__init__(f"replay diverged {where}:\n  expected {expected}\n  got      {got}")


class TraceMismatch(TraceFormatError, ReplayMismatch):
    """A trace's records contradict its header or each other (another graph, a tampered delay, a missing record).

    Found when the trace is loaded, before anything is replayed or drawn; it is both a
    :class:`TraceFormatError` and a :class:`ReplayMismatch` (``index``: the record).
    """

    def __init__(self, message: str, index: int = -1) -> None:
        self.index = index
        self.expected = None
        self.got = None
        Exception.__init__(self, message)
