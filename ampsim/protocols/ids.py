"""Unique IDs from random delays (Section 4.2): Lemma 4.2 on a star, Corollary 4.3 on every graph.

Nodes are anonymous and start identical; the only symmetry breaker is the order in
which messages arrive. Our copy of the paper has no appendix, so the protocol is ours
(docs/ids.md has the design, the proof sketch and the measured time against
``k * 6**k``).

**Names.** A node's ID is a tuple of labels: the start node (the root) is ``()``; a
node that joins a parent named ``P`` is ``P + ("",)`` and its own label (the last
entry) then grows by one character, ``"0"``, ``"1"`` or ``"2"``, each time its parent
splits the group of children that share that label. Messages carry the sender's
current name in the payload (never in ``sender``): a child addresses its parent by
name, and a centre addresses the children at label ``l`` by ``(its name, l)``.

**A split.** The centre ``C`` counts the reports of label ``l`` (a report is a child's
``name`` message). At the second one it broadcasts ``A``; a child at ``l`` that gets
``A`` acknowledges it, and the first acknowledgement makes ``C`` broadcast ``B``.
Each child at ``l`` moves to ``l + "0"`` if ``A`` reached it first and to ``l + "1"``
if ``B`` overtook ``A`` on its edge (the race of the paper's ``P(U1 > U2 + U3) = 1/6``).
A report that reaches ``C`` after ``B`` was sent gets ``CLOSE``, which moves every
child still at ``l`` to ``l + "2"``. Nothing ever tells a centre how many children it
has (no ``degree``): it never needs to know. The run simply goes quiet, and at
quiescence every label with two holders has been split (the proof is in docs/ids.md).

**General graphs (Corollary 4.3).** Every named node is the centre of a star made of
the neighbours that joined it (an unnamed node joins the sender of the first message
it hears). Children's names embed their parent's, so when a node's name changes it
broadcasts the new name, its children adopt it (a name is "newer" when it has the
same length and extends the old one entry by entry) and re-report, and its own star
starts afresh. On a star started at its centre no name ever changes except the
leaves' labels: the rows marked *general* never fire and the rule is the star
protocol of Lemma 4.2.

The state machine of one node (``N``: its name; ``R = N[:-1]``, ``l = N[-1]``: its
parent's name and its label; ``a``, ``b``: which of ``A(R, l)``, ``B(R, l)`` it has;
``T[l']``: its star's phase for label ``l'``: 0 none, 1 one report, S splitting, D done):

=====================  =============================================  ============================  ======================
state                  on message (payload ``M`` = sender's name)     new state                     emits
=====================  =============================================  ============================  ======================
unnamed                ``start``                                      ``N = ()`` (root)             ``name(())``
unnamed                any other, from ``M``                          ``N = M + ("",)``             ``name(N)``
named                  ``name(M)``, ``M[:-1] == N``, ``T[M[-1]] = 0``  ``T[M[-1]] = 1``              --
named                  ``name(M)``, ``M[:-1] == N``, ``T = 1``         ``T[M[-1]] = S``              ``A(N, M[-1])``
named                  ``name(M)``, ``M[:-1] == N``, ``T = S``         unchanged                     ``A(N, M[-1])`` again
named                  ``name(M)``, ``M[:-1] == N``, ``T = D``         unchanged                     ``close(N, M[-1])``
named                  ``ack(M)``, ``M[:-1] == N``, ``T[M[-1]] = S``   ``T[M[-1]] = D``              ``B(N, M[-1])``
child at ``(R, l)``    ``A(R, l)``, no ``b``                          ``a``                         ``ack(N)``
child at ``(R, l)``    ``A(R, l)``, ``b``                             ``N = R + (l+"1",)``, fresh   ``name(N)``
child at ``(R, l)``    ``B(R, l)``, no ``a``                          ``b``                         --
child at ``(R, l)``    ``B(R, l)``, ``a``                             ``N = R + (l+"0",)``, fresh   ``name(N)``
child at ``(R, l)``    ``close(R, l)``                                ``N = R + (l+"2",)``, fresh   ``name(N)``
child (*general*)      ``name(M)``, ``M`` newer than ``R``            ``N = M + (l,)``, fresh       ``name(N)``
any                    anything else                                  unchanged                     --
=====================  =============================================  ============================  ======================

"Fresh" clears ``a``, ``b`` and ``T``: a new name is a new star, and a child at a new
``(R, l)`` only counts the ``A``/``B`` it gets from then on. Every node is ``finished``
once named, so a run that goes quiet with an unnamed node ends ``stalled``. Exactly
one node may receive the start message (two roots would both be ``()``).

Under constant delays every leaf of a star sees the same messages at the same times,
no split ever separates them, and the labels grow forever ("0", "00", ...): the rule
therefore ``assumes`` random delays and the engine refuses it otherwise. It also ``assumes``
``overtaking``: with FIFO channels ``B`` never overtakes ``A`` on an edge, so a split never
separates anyone, and the engine refuses ``fifo=True``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..engine.messages import Message, NodeView
from . import register

__all__ = [
    "UniqueIds",
    "IdState",
    "Name",
    "format_id",
    "is_newer",
    "rank_ids",
    "NAME",
    "ACK",
    "SPLIT_A",
    "SPLIT_B",
    "CLOSE",
]

Name = tuple  # tuple[str, ...]: () for the root, parent name + (label,) for the others

NAME, ACK, SPLIT_A, SPLIT_B, CLOSE = "name", "ack", "split-a", "split-b", "close"

# Phases of one label in a centre's star.
ONE, SPLITTING, DONE = 1, 2, 3
_PHASE_TEXT = {ONE: "1", SPLITTING: "S", DONE: "D"}


@dataclass(frozen=True, slots=True)
class IdState:
    """One node: its ``name`` (None until named), ``a``/``b`` for its own label, its star's phases."""

    name: Optional[Name] = None
    a: bool = False
    b: bool = False
    star: tuple = ()  # ((label, phase), ...) sorted by label; absent label = phase 0

    @property
    def id(self) -> Optional[Name]:
        """The node's ID (its name); unique across the graph once the run is quiescent."""
        return self.name

    def phase(self, label: str) -> int:
        for lab, ph in self.star:
            if lab == label:
                return ph
        return 0

    def with_phase(self, label: str, phase: int) -> "IdState":
        star = tuple(sorted({**dict(self.star), label: phase}.items()))
        return IdState(self.name, self.a, self.b, star)


def is_newer(new: Sequence[str], old: Sequence[str]) -> bool:
    """``new`` is a later name of a node once named ``old``: same length, each entry extends, not equal."""
    return len(new) == len(old) and tuple(new) != tuple(old) and all(n.startswith(o) for n, o in zip(new, old))


def format_id(name: Optional[Sequence[str]]) -> str:
    """``()`` -> ``"r"``, ``("", "01")`` -> ``"r._.01"`` (``_`` for an empty label); None -> ``"?"``."""
    if name is None:
        return "?"
    return ".".join(["r"] + [label or "_" for label in name])


def rank_ids(names: Sequence[Optional[Sequence[str]]]) -> list[Optional[int]]:
    """Compact display numbers 0..n-1 for distinct names, by (depth, name); equal names share one.

    An observer's convenience for plots (it needs the global view the nodes do not have).
    """
    distinct = sorted({tuple(n) for n in names if n is not None}, key=lambda n: (len(n), n))
    index = {n: i for i, n in enumerate(distinct)}
    return [None if n is None else index[tuple(n)] for n in names]


class UniqueIds:
    """Create unique IDs with random delays (Lemma 4.2 / Corollary 4.3); see the module docstring.

    ``assumes = {"random_delays", "overtaking"}``: random delays on non-FIFO channels (the split
    needs ``B`` to overtake ``A`` on an edge; with FIFO channels it never does, every child of a
    group gets ``0`` and the labels grow forever). Nodes need no degree, no sender and no IDs.
    The state is an :class:`IdState`; ``state.id`` is the node's name.
    """

    name = "ids"
    assumes = frozenset({"random_delays", "overtaking"})

    def start(self, node: NodeView) -> tuple[IdState, Optional[Message]]:
        return IdState(), None

    def receive(self, node: NodeView, state: IdState, message: Message) -> tuple[IdState, Optional[Message]]:
        kind = message.kind
        if state.name is None:
            if kind == "start":
                return IdState(()), Message(NAME, ())
            sender = _sender_name(message)
            if sender is None:
                return state, None
            return _renamed(sender + ("",))
        mine = state.name
        if kind == NAME:
            other = message.payload
            if len(other) == len(mine) + 1 and other[:-1] == mine:
                return self._report(state, other[-1])
            if mine and is_newer(other, mine[:-1]):
                return _renamed(tuple(other) + (mine[-1],))
            return state, None
        if kind == ACK:
            other = message.payload
            if len(other) == len(mine) + 1 and other[:-1] == mine and state.phase(other[-1]) == SPLITTING:
                label = other[-1]
                return state.with_phase(label, DONE), Message(SPLIT_B, (mine, label))
            return state, None
        if kind in (SPLIT_A, SPLIT_B, CLOSE):
            centre, label = message.payload
            if not mine or centre != mine[:-1] or label != mine[-1]:
                return state, None
            if kind == CLOSE:
                return _moved(mine, "2")
            if kind == SPLIT_A:
                if state.b:
                    return _moved(mine, "1")
                return IdState(mine, True, False, state.star), Message(ACK, mine)
            if state.a:
                return _moved(mine, "0")
            return IdState(mine, False, True, state.star), None
        return state, None

    def _report(self, state: IdState, label: str) -> tuple[IdState, Optional[Message]]:
        """A child reports ``label``: count it; split at two; resend A while splitting; close when done."""
        phase = state.phase(label)
        mine = state.name
        if phase == 0:
            return state.with_phase(label, ONE), None
        if phase == ONE:
            return state.with_phase(label, SPLITTING), Message(SPLIT_A, (mine, label))
        if phase == SPLITTING:
            return state, Message(SPLIT_A, (mine, label))
        return state, Message(CLOSE, (mine, label))

    def finished(self, state: IdState) -> bool:
        return state.name is not None

    def summarize(self, payload: Any) -> str:
        if isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[1], str) and isinstance(payload[0], tuple):
            return f"{format_id(payload[0])}/{payload[1] or '_'}"
        if isinstance(payload, tuple):
            return format_id(payload)
        return "" if payload is None else repr(payload)

    def summarize_state(self, state: IdState) -> str:
        text = format_id(state.name)
        if state.a or state.b:
            text += " " + ("a" if state.a else "") + ("b" if state.b else "")
        if state.star:
            text += " {" + ",".join(f"{lab or '_'}:{_PHASE_TEXT[ph]}" for lab, ph in state.star) + "}"
        return text

    def params(self) -> dict:
        return {}


def _sender_name(message: Message) -> Optional[Name]:
    """The sender's name carried by a protocol message (None for foreign messages)."""
    payload = message.payload
    if message.kind in (NAME, ACK) and isinstance(payload, tuple):
        return payload
    if message.kind in (SPLIT_A, SPLIT_B, CLOSE) and isinstance(payload, tuple) and len(payload) == 2:
        return payload[0]
    return None


def _renamed(name: Name) -> tuple[IdState, Message]:
    """A fresh node under ``name``: nothing heard for it yet, an empty star; announce the name."""
    return IdState(name), Message(NAME, name)


def _moved(name: Name, bit: str) -> tuple[IdState, Message]:
    return _renamed(name[:-1] + (name[-1] + bit,))


register("ids", UniqueIds)
