"""The cell protocol: what the engine's :class:`~ampsim.cells.rule.CellRule`, the batched executor and the
training code ask of a learned AMP node model (Section 3), declared in one place.

A cell works on *rows*: one row is one node of one run, so the engine calls it with one
row and the batched executor with thousands. A node's whole state is one packed row of
``state_size`` floats; a message is one row of ``msg_size`` floats::

    init_state(x, inputs)  -> state (B, S)                  # the node wakes: features x (B, F)
    step(state, m)         -> (state', m', emit)            # one delivery: emit (B,) is 1.0 / 0.0
    halted(state)          -> (B,) bool                     # a halted node drops what it receives
    output(state)          -> (B, output_size)              # what a task's readout decodes
    start_message(k)       -> (k, M)                        # the paper's initial message, as this cell reads it

``emission`` says what decides whether a delivery emits, and so which executor path runs it:

* ``"always"``: every delivery emits (AMP-RNN/GRU/LSTM as the authors' code). The schedule
  depends on the graph, start nodes, delays, loss and budget only: planned once, cached.
* ``"counted"``: the cell emits by a rule on what the node has *counted* (messages heard per
  kind, its degree), never on learned values. Such a cell also has ``count_rule`` (a
  :class:`CountRule`), the same rule in plain Python, which the planner replays to plan the
  schedule ahead (levels, cached per seed) exactly as for always-emit cells. The cell's own
  ``emit`` must agree with it (the equivalence tests check that it does). The planner gives every
  start message tag 0; a counted cell that defines ``message_tags(messages)`` (the tag its rule
  reads from each message row) has its start messages checked against that, and a start row with
  another tag is refused by the batched executor (the SimPy engine and ``mode="lockstep"`` run it).
* ``"learned"``: the schedule depends on values (a learned gate, ACT/Iter halting): the
  lock-step driver decides each batch after the previous one (one host synchronisation per batch).

A counted cell may also declare ``order_free = True``: its per-message update is an order-free
aggregate (a sum, a running softmax), so a node's final state is a function of the *set* of
messages delivered to it. Such a cell implements ``settle(x, inputs, start, started, edges,
delivered) -> (states, sent)`` -- the final states of a run computed wave by wave from the
delivered copies; the batched executor then runs the *settled* driver (:mod:`ampsim.batched.settled`) instead of
one batch per level.

Per-node inputs reach a cell through ``init_state(x, inputs)`` (:class:`NodeInputs`: the node's
degree, its noise key). The cell copies into its state row what ``step`` needs later, so
``step`` has one signature for every cell and the executors' hot path gathers nothing extra.
``node_inputs`` names what a cell reads (empty for :class:`~ampsim.cells.cells.AMPCell`);
the engine's ``CellRule`` then assumes ``degree`` (and ``ids`` for the noise key).

Randomness inside a cell (dropout) comes from :mod:`ampsim.cells.noise`: a pure function
of (noise key, counter, column), so the engine and the batched executor draw the same masks
whatever order and batches they process rows in. A run's noise seed is
``RunSpec.noise_seed`` (``None``: no noise, as in evaluation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

from .noise import noise_keys

__all__ = ["Cell", "CountRule", "NodeInputs", "EMISSIONS", "INPUTS", "node_inputs", "emission_of"]

EMISSIONS = ("always", "counted", "learned")
#: What a cell may read through :class:`NodeInputs`.
INPUTS = frozenset({"degree", "noise"})


@dataclass(frozen=True)
class NodeInputs:
    """Per-node inputs of B rows: ``degree`` (B,) float (number of neighbours), ``noise`` (B,) int64 keys
    (:func:`ampsim.cells.noise.noise_keys`; -1 = no noise)."""

    degree: Tensor
    noise: Tensor


def node_inputs(degrees: Sequence[int], nodes: Optional[Sequence[int]] = None, noise_seed: Optional[int] = None,
                dtype: torch.dtype = torch.float32, device: Any = None) -> NodeInputs:
    """:class:`NodeInputs` of ``nodes`` (default: all) given every node's degree and the run's noise seed."""
    deg = torch.as_tensor(list(degrees) if not isinstance(degrees, Tensor) else degrees, dtype=torch.int64)
    idx = torch.arange(len(deg)) if nodes is None else torch.as_tensor(nodes, dtype=torch.int64).reshape(-1)
    return NodeInputs(deg.index_select(0, idx).to(dtype=dtype, device=device),
                      noise_keys(noise_seed, idx).to(device=device))


@runtime_checkable
class CountRule(Protocol):
    """A plannable emission rule: the node's counters and the tag of each delivered message decide.

    ``start(degree)`` gives a node's counter state (any Python value); ``deliver(state, tag)``
    handles one delivery whose message has ``tag`` (an int; 0 = the start message) and returns
    ``(state', out_tag)``, ``out_tag`` 0 when the node does not emit; ``finished(state)`` says
    whether the node has done all it will do. ``key`` identifies the rule in plan caches.
    """

    key: str

    def start(self, degree: int) -> Any: ...

    def deliver(self, state: Any, tag: int) -> tuple[Any, int]: ...

    def finished(self, state: Any) -> bool: ...


@runtime_checkable
class Cell(Protocol):
    """A learned AMP node model on rows (see the module docstring); a ``torch.nn.Module`` in practice."""

    kind: str
    in_features: int
    state_size: int
    msg_size: int
    output_size: int
    emission: str
    node_inputs: frozenset

    def init_state(self, x: Tensor, inputs: Optional[NodeInputs] = None) -> Tensor: ...

    def step(self, state: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...

    def halted(self, state: Tensor) -> Tensor: ...

    def output(self, state: Tensor) -> Tensor: ...

    def start_message(self, k: int = 1) -> Tensor: ...


def emission_of(cell: Any) -> str:
    """The cell's ``emission`` (checked): one of :data:`EMISSIONS`; a counted cell must have a ``count_rule``."""
    kind = getattr(cell, "emission", None)
    if kind not in EMISSIONS:
        raise ValueError(f"cell {type(cell).__name__} declares emission {kind!r}; expected one of {EMISSIONS}")
    rule = getattr(cell, "count_rule", None)
    if kind == "counted" and not (isinstance(getattr(rule, "key", None), str) and all(
            callable(getattr(rule, m, None)) for m in ("start", "deliver", "finished"))):  # CountRule, checked fast
        raise ValueError(f"cell {type(cell).__name__} has counted emission but no count_rule (a CountRule)")
    return kind
