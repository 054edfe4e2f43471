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

=====================  ===============================================  ============================  ======================
state                  on message (payload ``M`` = sender's name)       new state                     emits
=====================  ===============================================  ============================  ======================
unnamed                ``start``                                        ``N = ()`` (root)             ``name(())``
unnamed                any other, from ``M``                            ``N = M + ("",)``             ``name(N)``
named                  ``name(M)``, ``M[:-1] == N``, ``T[M[-1]] = 0``   ``T[M[-1]] = 1``              --
named                  ``name(M)``, ``M[:-1] == N``, ``T = 1``          ``T[M[-1]] = S``              ``A(N, M[-1])``
named                  ``name(M)``, ``M[:-1] == N``, ``T = S``          unchanged                     ``A(N, M[-1])`` again
named                  ``name(M)``, ``M[:-1] == N``, ``T = D``          unchanged                     ``close(N, M[-1])``
named                  ``ack(M)``, ``M[:-1] == N``, ``T[M[-1]] = S``    ``T[M[-1]] = D``              ``B(N, M[-1])``
child at ``(R, l)``    ``A(R, l)``, no ``b``                            ``a``                         ``ack(N)``
child at ``(R, l)``    ``A(R, l)``, ``b``                               ``N = R + (l+"1",)``, fresh   ``name(N)``
child at ``(R, l)``    ``B(R, l)``, no ``a``                            ``b``                         --
child at ``(R, l)``    ``B(R, l)``, ``a``                               ``N = R + (l+"0",)``, fresh   ``name(N)``
child at ``(R, l)``    ``close(R, l)``                                  ``N = R + (l+"2",)``, fresh   ``name(N)``
child (*general*)      ``name(M)``, ``M`` newer than ``R``              ``N = M + (l,)``, fresh       ``name(N)``
any                    anything else                                    unchanged                     --
=====================  ===============================================  ============================  ======================

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
    "DegreeAwareIds",
    "DegreeIdState",
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
    "CALL",
    "JOIN",
    "FINAL",
]

Name = tuple  # tuple[str, ...]: () for the root, parent name + (label,) for the others

NAME, ACK, SPLIT_A, SPLIT_B, CLOSE = "name", "ack", "split-a", "split-b", "close"
CALL, JOIN, FINAL = "call", "join", "final"  # the degree-aware variant only

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


# ------------------------------------------------------------------ degree-aware variant
# Roles of a node in DegreeAwareIds.
CHILD, CALLING, SPLITTING_STAR, FINISHED = 0, 1, 2, 3
_ROLE_TEXT = {CHILD: "child", CALLING: "calling", SPLITTING_STAR: "splitting", FINISHED: "done"}


@dataclass(frozen=True, slots=True)
class DegreeIdState:
    """One node of :class:`DegreeAwareIds`.

    ``name`` (None until named); ``heard``: how many neighbours' announcements it has received;
    ``a``/``b``: which of ``A``/``B`` it has for its own label; ``role``: child (name not final),
    calling (final, waiting for all neighbours), splitting (its star is being split) or done;
    ``reports``: ``((label, count), ...)`` of its children; ``groups``: ``((label, size, phase), ...)``
    for the groups of its star being split (phase S before the first ack, D after ``B``).
    """

    name: Optional[Name] = None
    heard: int = 0
    a: bool = False
    b: bool = False
    role: int = CHILD
    reports: tuple = ()
    groups: tuple = ()

    @property
    def id(self) -> Optional[Name]:
        """The node's ID (its name); final once ``role`` is done, unique across the graph."""
        return self.name

    def count(self, label: str) -> int:
        for lab, c in self.reports:
            if lab == label:
                return c
        return 0

    def group(self, label: str) -> Optional[tuple]:
        for g in self.groups:
            if g[0] == label:
                return g
        return None


def _replace(state: DegreeIdState, **changes: Any) -> DegreeIdState:
    fields = {f: getattr(state, f) for f in DegreeIdState.__slots__}
    fields.update(changes)
    return DegreeIdState(**fields)


class DegreeAwareIds:
    """Unique IDs with random delays when every node knows its degree: one star at a time per centre.

    The star protocol of Lemma 4.2 run as the paper moves its centre (Section 4.2, Corollary 4.3),
    made possible by ``node.degree`` (``assumes`` ``"degree"`` as the synchronizer of Table 1 does,
    plus ``"random_delays"`` and ``"overtaking"`` for the split race of :class:`UniqueIds`):

    * **Announcements.** Every node announces itself exactly once, when it is named: the root with
      ``call(())``, every other node with ``join(N)``. A node counts the announcements it hears
      (``heard``); ``heard == degree`` means every neighbour is named, and then every neighbour that
      joined it has told it so. This is what the degree buys: a centre knows its star is complete.
    * **Joining.** An unnamed node joins only a ``call(M)`` (not any message): it becomes
      ``M + ("",)`` and sends ``join``. Only a node whose name is final calls, so a child's parent
      name never changes and nothing is ever renamed: no cascade of renames, no interference.
    * **Splitting a complete group.** A calling centre waits for ``heard == degree``; its ``j``
      joins form the group ``""``. A group of ``s >= 2`` is split by the race of :class:`UniqueIds`
      (``A``; the first ack triggers ``B``; a child appends ``0`` if ``A`` came first, ``1`` if ``B``
      overtook it and reports its new name). The centre knows ``s``, so it waits for all ``s``
      reports before splitting ``l0`` and ``l1`` in turn (one ``A`` naming every label to split).
      No report is ever late, so there is no ``close`` and no second ``A``.
    * **Moving the centre.** When no group of two or more is left, the centre sends ``final(N)``;
      each child, its name now final, calls its own neighbours, or, if all of them are already
      named (``heard == degree``), is done without a message. Siblings call concurrently: their
      names are final and distinct, so their stars never interfere.

    Uniqueness is deterministic given termination: by induction on the depth, final names of
    centres are distinct, each node joins exactly one centre, and a centre sends ``final`` only
    when its children's labels are pairwise distinct. Termination has probability 1 (each split of
    a group separates it with probability bounded below, as for :class:`UniqueIds`). docs/ids.md
    compares its cost with :class:`UniqueIds`.
    """

    name = "ids-degree"
    assumes = frozenset({"random_delays", "overtaking", "degree"})

    def start(self, node: NodeView) -> tuple[DegreeIdState, Optional[Message]]:
        if node.degree is None or node.degree < 1:
            raise ValueError(f"the degree-aware ID rule needs every node to have a neighbour (degree >= 1), got {node.degree}")
        return DegreeIdState(), None

    def receive(self, node: NodeView, state: DegreeIdState, message: Message) -> tuple[DegreeIdState, Optional[Message]]:
        kind, payload = message.kind, message.payload
        if kind == "start":
            if state.name is not None:
                return state, None
            return _replace(state, name=(), role=CALLING), Message(CALL, ())
        if kind == CALL:
            heard = state.heard + 1 if payload == () else state.heard  # the root's call is its announcement
            if state.name is None:
                name = tuple(payload) + ("",)
                return _replace(state, name=name, heard=heard), Message(JOIN, name)
            return _replace(state, heard=heard) if heard != state.heard else state, None
        if kind == JOIN:
            heard = state.heard + 1
            if state.role == CALLING:
                reports = state.reports
                if payload[:-1] == state.name:
                    reports = ((payload[-1], state.count(payload[-1]) + 1),)
                state = _replace(state, heard=heard, reports=reports)
                return self._begin(node, state) if heard == node.degree else (state, None)
            return _replace(state, heard=heard), None
        mine = state.name
        if mine is None:
            return state, None
        if kind == FINAL:
            if state.role != CHILD or not mine or payload != mine[:-1]:
                return state, None
            if state.heard == node.degree:
                return _replace(state, role=FINISHED), None
            return _replace(state, role=CALLING), Message(CALL, mine)
        if kind in (SPLIT_A, SPLIT_B):
            centre, labels = payload
            if state.role != CHILD or not mine or centre != mine[:-1]:
                return state, None
            label = mine[-1]
            if kind == SPLIT_A:
                if label not in labels:
                    return state, None
                if state.b:
                    return _moved_degree(state, "1")
                return _replace(state, a=True), Message(ACK, mine)
            if labels != label:
                return state, None
            if state.a:
                return _moved_degree(state, "0")
            return _replace(state, b=True), None
        if state.role != SPLITTING_STAR or len(payload) != len(mine) + 1 or payload[:-1] != mine:
            return state, None
        label = payload[-1]
        if kind == ACK:
            g = state.group(label)
            if g is None or g[2] != SPLITTING:
                return state, None
            groups = tuple(x if x[0] != label else (label, g[1], DONE) for x in state.groups)
            return _replace(state, groups=groups), Message(SPLIT_B, (mine, label))
        if kind == NAME:  # a child's report of its new label
            reports = tuple(sorted({**dict(state.reports), label: state.count(label) + 1}.items()))
            state = _replace(state, reports=reports)
            parent = label[:-1]
            g = state.group(parent)
            if g is None or g[2] != DONE or state.count(parent + "0") + state.count(parent + "1") < g[1]:
                return state, None
            split = tuple(c for c in (parent + "0", parent + "1") if state.count(c) >= 2)
            groups = tuple(x for x in state.groups if x[0] != parent) + tuple((c, state.count(c), SPLITTING) for c in split)
            if split:
                return _replace(state, groups=groups), Message(SPLIT_A, (mine, split))
            if groups:
                return _replace(state, groups=groups), None
            return _replace(state, groups=(), role=FINISHED), Message(FINAL, mine)
        return state, None

    def _begin(self, node: NodeView, state: DegreeIdState) -> tuple[DegreeIdState, Optional[Message]]:
        """Every neighbour is named: split the ``j`` joiners (group ``""``), or hand on at once."""
        j = state.count("")
        if j >= 2:
            return _replace(state, role=SPLITTING_STAR, groups=(("", j, SPLITTING),)), Message(SPLIT_A, (state.name, ("",)))
        if j == 1:
            return _replace(state, role=FINISHED), Message(FINAL, state.name)
        return _replace(state, role=FINISHED), None

    def finished(self, state: DegreeIdState) -> bool:
        return state.role == FINISHED

    def summarize(self, payload: Any) -> str:
        if isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[0], tuple):
            labels = payload[1] if isinstance(payload[1], tuple) else (payload[1],)
            return f"{format_id(payload[0])}/" + ",".join(lab or "_" for lab in labels)
        if isinstance(payload, tuple):
            return format_id(payload)
        return "" if payload is None else repr(payload)

    def summarize_state(self, state: DegreeIdState) -> str:
        text = f"{format_id(state.name)} {_ROLE_TEXT[state.role]} heard {state.heard}"
        if state.a or state.b:
            text += " " + ("a" if state.a else "") + ("b" if state.b else "")
        if state.groups:
            text += " {" + ",".join(f"{lab or '_'}:{size}{_PHASE_TEXT[ph]}" for lab, size, ph in state.groups) + "}"
        return text

    def params(self) -> dict:
        return {}


def _moved_degree(state: DegreeIdState, bit: str) -> tuple[DegreeIdState, Message]:
    name = state.name[:-1] + (state.name[-1] + bit,)
    return _replace(state, name=name, a=False, b=False), Message(NAME, name)


register("ids-degree", DegreeAwareIds)
