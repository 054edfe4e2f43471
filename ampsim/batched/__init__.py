"""The batched executor: AMP runs at tensor speed with the engine's exact schedule (see docs/batched.md).

``BatchedExecutor`` implements the :class:`~ampsim.cells.execute.Executor` protocol
(``execute``), plus ``execute_many`` for minibatches and ``unroll`` for custom
readouts; the planner computes the engine's schedule without tensors.
"""
from .executor import MODES, BatchedExecutor, Unrolled, needs_lockstep, retain_freed_memory
from .planner import (
    TIES,
    EventQueue,
    PlanCache,
    PlannedDelivery,
    Schedule,
    engine_ties,
    plan,
    plan_key,
    start_slots,
)

__all__ = [
    "BatchedExecutor",
    "EventQueue",
    "MODES",
    "PlanCache",
    "PlannedDelivery",
    "Schedule",
    "TIES",
    "Unrolled",
    "engine_ties",
    "needs_lockstep",
    "plan",
    "plan_key",
    "retain_freed_memory",
    "start_slots",
]
