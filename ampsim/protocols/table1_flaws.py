"""Table 1 with a chosen set of its flaws (Section 4.1, Table 1; docs/synchronizer.md, section 3a).

Table 1 as printed differs from a correct alpha-synchronizer in six places, F1..F6. This rule
keeps exactly the flaws it is given and corrects the others, so each flaw can be run on its
own: with all six it is :class:`~ampsim.protocols.synchronizer.Table1Literal` step for step
(same messages, same states, same outcome), with none it computes sGIN on every case of the
default sweep (``tests/protocols/test_table1_flaws.py``).

===  ==========================  =============================================================
F1   ``origin-keeps-state``      row 2: the origin's sum starts at its own state (s' = s),
                                 not at 0
F2   ``degree-one``              row 3 never computes: when the pulse it takes completes the
                                 layer (D = 1: w' = D - 2 = -1) no row computes that layer
F3   ``u0-takes-safe``           row 3 fires on a safe message and takes its payload for a
                                 neighbour's pulse
F4   ``u-counts-own-layer``      u' = D counts the node's own computation among the D events
                                 it waits for, so row 3 fires before the node is safe and all
                                 its neighbours are: on its own layer's last pulse (the layer
                                 is skipped) or on a neighbour's next pulse while one safe is
                                 still missing
F5   ``w0-refires``              row 5: w' = 0, so the next pulse computes another layer
F6   ``one-accumulator``         s is both h^(p) and the next layer's sum: a pulse that arrives
                                 between computing and proceeding is added into s (row 6), and
                                 row 3 restarts the sum (s' = m, w' = D - 2), dropping it
===  ==========================  =============================================================

State (s, a, w, u, l, σ): s the node's state (with F6 also the running sum), a the next
layer's sum (unused with F6), w the pulses still missing for the layer being summed, u the
neighbours' safe messages still missing for the current pulse, l layers left, σ = 1 iff the
node has computed its current pulse's layer. Table 1's counters are w_T1 = w - 1 and
u_T1 = u - σ; a fresh node (σ = 1, l = L) is Table 1's start state (x, 0, 0, L).
A message is (m, pulse, safe, origin) with m the sender's old state s; when a correction
makes a node compute and proceed in one activation, both bits go out in one message (the
pulse then carries the new state), as in the corrected rule.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from ..engine.messages import Message, NodeView
from .sgin import SGIN, Vector, as_vector, zeros
from .synchronizer import _Base, _fmt, payload_of, sync_message

__all__ = ["FLAWS", "ALL_FLAWS", "parse_flaws", "Table1Flawed", "flaw_actions"]

FLAWS = {
    "F1": "row 2: the origin's neighbour sum starts at its own state (s' = s)",
    "F2": "row 3 never computes: the pulse it takes may complete the layer (D = 1: w' = -1), which is then never computed",
    "F3": "row 3 fires on a safe message and takes its payload for a neighbour's pulse",
    "F4": "u' = D counts the node's own computation: row 3 fires before the node and all its neighbours are safe",
    "F5": "row 5: w' = 0, so the next pulse computes one more layer",
    "F6": "one accumulator: a pulse that arrives between computing and proceeding is summed into s, then dropped by row 3",
}
"""The six flaws of Table 1 as printed (docs/synchronizer.md, section 3a)."""

ALL_FLAWS = tuple(FLAWS)


def parse_flaws(text: Any) -> tuple[str, ...]:
    """``"F3"``, ``"F1,F5"`` (or an iterable of names; case-insensitive) -> sorted unique flaw names.

    ``"none"`` selects no flaw, ``"all"`` all six; anything else is a ``ValueError`` naming
    the bad part and the valid names.
    """
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else list(text))]
    if not parts or any(not p for p in parts):
        raise ValueError(f"expected flaws F1..F6 separated by commas (or 'none', 'all'), got {text!r}")
    if len(parts) == 1 and parts[0].lower() in ("none", "all"):
        return () if parts[0].lower() == "none" else ALL_FLAWS
    names = []
    for p in parts:
        name = p.upper()
        if name not in FLAWS:
            raise ValueError(f"unknown flaw {p!r}; choose from {', '.join(ALL_FLAWS)} (or 'none', 'all')")
        names.append(name)
    return tuple(sorted(set(names)))


class Table1Flawed(_Base):
    """Table 1 with exactly the flaws in ``flaws`` (a subset of F1..F6); the others corrected.

    ``flaws=ALL_FLAWS`` is Table 1 as printed; ``flaws=()`` is a correct alpha-synchronizer.
    """

    name = "table1-literal"

    def __init__(self, model: Optional[SGIN] = None, *, flaws: Iterable[str] = ALL_FLAWS, **kw: Any) -> None:
        super().__init__(model, **kw)
        if self.model.aggregation != "sum":
            raise ValueError("Table 1 simulates sum aggregation; use the corrected 'synchronizer' for mean/gcn")
        self.flaws = parse_flaws(flaws) if isinstance(flaws, str) else tuple(sorted(set(flaws)))
        bad = [f for f in self.flaws if f not in FLAWS]
        if bad:
            raise ValueError(f"unknown flaw {bad[0]!r}; choose from {', '.join(ALL_FLAWS)}")
        self.has = {f: f in self.flaws for f in FLAWS}

    def params(self) -> dict:
        return {**self.model.to_dict(), "flaws": list(self.flaws)}

    def start(self, node: NodeView) -> tuple[tuple, Optional[Message]]:
        D = node.degree
        if D is None or D < 1:
            raise ValueError(f"the synchronizer needs every node to have a neighbour (degree >= 1), got degree {D}")
        return (as_vector(node.features, self.d), zeros(self.d), D, 0, self.L, 1), None

    # -------------------------------------------------------------- one step
    def _kind(self, state: tuple, message: Message) -> tuple[int, str]:
        """(Table 1 row this step plays, why): 1 finished, 2 origin, 3 proceed, 4 safe only,
        5 a pulse that completes a layer, 6 any other pulse."""
        s, a, w, u, l, sigma = state
        if l == 0:
            return 1, ""
        _, p_in, s_in, origin = payload_of(message, self.d)
        if origin:
            return 2, ""
        if sigma == 1 and l == self.L:
            return 3, "fresh"
        if sigma == 1 and u == 1 and s_in:
            return 3, "last-safe"
        if self.has["F4"] and sigma == 1 and u == 1 and p_in:
            return 3, "early"
        if self.has["F4"] and sigma == 0 and u == 0:
            return 3, "unsafe"
        if p_in and w == 1 and (sigma == 0 or self.has["F5"]):
            return 5, ""
        return (6 if p_in else 4), ""

    def row(self, state: tuple, message: Message) -> int:
        """The Table 1 row this step plays (1..6), see :meth:`_kind`."""
        return self._kind(state, message)[0]

    def receive(self, node: NodeView, state: tuple, message: Message) -> tuple[tuple, Optional[Message]]:
        D = node.degree
        row, _ = self._kind(state, message)
        if row == 1:
            return state, None
        F = self.has
        s, a, w, u, l, sigma = state
        m, p_in, s_in, _ = payload_of(message, self.d)
        if row == 2:  # the origin wakes; its sum starts at 0 (F1: at its own state)
            return (s, s if F["F1"] else zeros(self.d), D, D, l, 0), sync_message(s, 1, 0)
        if row == 3:
            return self._proceed(D, state, m, p_in, s_in)
        old = a if sigma == 0 else s  # Table 1's old s (the safe's payload, read only by F3): the running sum
        if s_in:  # row 4
            u -= 1
        if not p_in:
            return (s, a, w, u, l, sigma), None
        w -= 1  # rows 5 and 6
        if sigma == 1 and F["F6"]:  # a pulse between computing and proceeding: into s
            s = tuple(x + y for x, y in zip(s, m))
        else:
            a = tuple(x + y for x, y in zip(a, m))
        if row == 6:
            return (s, a, w, u, l, sigma), None
        state = self._compute(D, (s, a, w, u, l, sigma))
        if state[5] == 1 and state[3] == 0 and state[4] > 0:  # the node's own layer was the last event it waited for
            if not F["F4"]:  # corrected: proceed now (pulse + safe)
                return self._proceed(D, state, zeros(self.d), 0, 0, merged=True)
            state = (*state[:3], 1, *state[4:])  # F4: Table 1's u = 0, the next message proceeds
        return state, sync_message(old, 0, 1)

    def _compute(self, D: int, state: tuple) -> tuple:
        """Row 5: h = ReLU(W_k sum + b_k); a refire (σ = 1 already, F5) counts as one more event of u."""
        s, a, w, u, l, sigma = state
        refire = sigma == 1
        total = s if (refire and self.has["F6"]) else a
        h = self.model.layer(self.L - l, total)
        return (h, zeros(self.d), 1 if self.has["F5"] else D, u - int(refire), l - 1, 1)

    def _proceed(self, D: int, state: tuple, m: Vector, p_in: int, s_in: int,
                 merged: bool = False) -> tuple[tuple, Message]:
        """Row 3: send the pulse (payload s), start counting safe messages again; take the message as
        a neighbour's pulse when it is one (F3: also when it is a safe message)."""
        s, a, w, u, l, sigma = state
        F = self.has
        payload = a if (F["F6"] and sigma == 0) else s  # Table 1's old s: with one accumulator, the running sum
        taken = bool(p_in) or (bool(s_in) and F["F3"])
        if F["F6"] or sigma == 0:  # the sum restarts (F6: Table 1's s' = m, w' = D - 2; F4: the layer is skipped)
            a = m if taken else zeros(self.d)
            w = D - 1 if taken else D
        elif taken:
            a = tuple(x + y for x, y in zip(a, m))
            w -= 1
        state = (s, a, w, D, l, 0)
        safe_bit = int(merged)
        if w == 0 and not F["F2"]:  # the pulse taken (or the early ones) completed the layer
            state = self._compute(D, state)
            safe_bit = 1
        return state, sync_message(payload, 1, safe_bit)

    # -------------------------------------------------------------- analysis
    def acting(self, node: NodeView, state: tuple, message: Message) -> tuple[str, ...]:
        """The flaws present that change this step: those whose correction alone gives another result."""
        here = self.receive(node, state, message)
        if not hasattr(self, "_without"):
            self._without = {f: Table1Flawed(self.model, flaws=[g for g in self.flaws if g != f]) for f in self.flaws}
        acting = []
        for f, other in self._without.items():
            if other.receive(node, state, message) != here:
                acting.append(f)
        return tuple(acting)

    def finished(self, state: tuple) -> bool:
        return state[4] == 0

    def progress(self, state: tuple) -> tuple[int, Vector]:
        """(layers left, s): a layer is computed when l drops."""
        return state[4], state[0]

    def summarize_state(self, state: tuple) -> str:
        s, a, w, u, l, sigma = state
        return f"s={_fmt(s)} a={_fmt(a)} w={w} u={u} l={l} σ={sigma}"


def flaw_actions(rule: Table1Flawed, steps: list, index: dict) -> list[tuple[int, int, str]]:
    """(delivery, node, flaw) for every recorded step that a present flaw changes (:meth:`Table1Flawed.acting`)."""
    found = []
    for view, state, message, _, _, _, k in steps:
        for f in rule.acting(view, state, message):
            found.append((k, index[id(view)], f))
    return found
