"""The few exception types users catch.

Every bad input gets exactly one of these, raised before anything is written.
All derive from ``AmpsimError`` so ``except AmpsimError`` catches them all; the
ones about malformed inputs also derive from ``ValueError``.
"""
from __future__ import annotations

__all__ = [
    "AmpsimError",
    "GraphError",
    "DelayError",
    "AssumptionError",
    "TraceFormatError",
    "ReplayMismatch",
    "CheckpointError",
]


class AmpsimError(Exception):
    """Base class of every error ampsim raises on purpose."""


class GraphError(AmpsimError, ValueError):
    """The graph cannot be simulated (directed, multi-edges, self-loops, empty, ...)."""


class DelayError(AmpsimError, ValueError):
    """A delay model produced a delay that is not finite and > 0 (never clamped)."""


class AssumptionError(AmpsimError, ValueError):
    """A rule assumes something (random delays, FIFO, known degree) the simulation does not give."""


class TraceFormatError(AmpsimError, ValueError):
    """A trace file is corrupt, truncated, foreign, or of an unsupported version."""


class CheckpointError(AmpsimError, ValueError):
    """A checkpoint file is empty, truncated, foreign, or was written for another configuration."""


class ReplayMismatch(AmpsimError):
    """A replay diverged from its recorded trace; ``index``, ``expected`` and ``got`` say where."""

    def __init__(self, index: int, expected: object, got: object) -> None:
        self.index = index
        self.expected = expected
        self.got = got
        super().__init__(
            f"replay diverged at record {index}:\n  expected {expected}\n  got      {got}"
        )
