"""The alpha-synchronizer of Theorem 4.1 (Section 4.1): AMP simulating an L-layer sGIN.

Two NodeRules, registered as ``"table1-literal"`` and ``"synchronizer"``.

**Table1Literal** is Table 1 exactly as printed, nothing fixed. A node's state is
(s, w, u, l); a message is (m, pulse, safe, origin), where m is the sender's *old*
state s ("Nodes in AMP always send their old state s plus 3 additional bits").
The first matching row wins; ⊥ sends nothing; D is the node's degree::

    row  condition   s'              w'    u'    l'    message
    1    l = 0       s               w     u     l     ⊥
    2    origin = 1  s               D-1   D     l     pulse
    3    u = 0       m               D-2   D     l     pulse
    4    safe = 1    s               w     u-1   l     ⊥
    5    w = 0       ReLU(W(s+m)+b)  0     u-1   l-1   safe
    6    pulse = 1   s+m             w-1   u     l     ⊥

Every node starts in (x, 0, 0, L). Row 5's "ReLu(u(s+m))" uses the letter u for
the linear layer; we read it as sGIN layer L-l+1, i.e. W_{L-l+1} with its bias
(the counter u in that place would not be a linear layer). docs/synchronizer.md
shows by execution where this table fails and pins each cause to a row.

**Synchronizer** is the corrected rule. It stays inside AMP: it acts only on a
delivered message, emits at most one broadcast per activation (a message may
carry the pulse and the safe bit together), uses no ids. State
(s, a, w, u, l, σ): s the node's current sGIN state, a the sum of the neighbour
states received for the next layer, w the neighbour pulses still missing for it,
u the neighbour safe messages still missing for the current pulse, l the layers
left, σ = 1 iff the node has computed the layer of its current pulse (is safe).
Start state (x, 0, D, 0, L, 1): "safe at pulse 0 with every neighbour safe".
On a message (m, pulse, safe, origin), unless l = 0 (finished: ignore):

1. absorb:   pulse -> a += m, w -= 1;   safe -> u -= 1
2. compute:  if σ = 0 and w = 0: s = ReLU(W_{L-l+1} agg(a) + b), a = 0, w = D,
             l -= 1, σ = 1; emit the safe bit unless l = 0
3. proceed:  if σ = 1 and u = 0 and l > 0: emit the pulse bit with payload
             scale·s, σ = 0, u = D; then step 2 once more (early pulses may
             already have completed a)

agg(a) is a (sum), a/D (mean) or a/sqrt(D) (gcn; the pulse payload is then
s/sqrt(D_sender)). A neighbour's pulse for the next layer can only arrive after
this node is safe (its sender waited for this node's safe bit), so the one
accumulator a never mixes two layers. The last layer sends no safe bit: nobody
waits for pulse L+1.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from ..engine.messages import Message, NodeView
from .sgin import SGIN, Vector, as_vector, zeros

__all__ = ["Table1Literal", "Synchronizer", "ORIGIN", "TABLE1_ROWS", "payload_of", "sync_message"]

TABLE1_ROWS = ("", "l=0", "origin=1", "u=0", "safe=1", "w=0", "pulse=1")
"""Row names of Table 1, 1-based (index 0: no row matched)."""

ORIGIN = Message("origin", None)
"""The paper's origin message: the one message that starts the run (payload: zero vector, origin bit)."""


def _fmt(vec: Vector) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in vec) + "]"


def payload_of(message: Message, dim: int) -> tuple[Vector, int, int, int]:
    """(m, pulse, safe, origin) of a message; the engine's start message and :data:`ORIGIN` are origin messages."""
    p = message.payload
    if p is None:
        if message.kind in ("origin", "start"):
            return zeros(dim), 0, 0, 1
        raise ValueError(f"message of kind {message.kind!r} has no (m, pulse, safe, origin) payload")
    return p


def sync_message(m: Vector, pulse: int, safe: int, origin: int = 0) -> Message:
    """A synchronizer message; its kind names the bits set (``pulse``, ``safe``, ``pulse+safe``)."""
    kind = "+".join(k for k, bit in (("pulse", pulse), ("safe", safe), ("origin", origin)) if bit) or "empty"
    return Message(kind, (m, pulse, safe, origin))


def _model(model: Optional[SGIN], weights: Any, biases: Any, aggregation: str, layers: int, dim: int, seed: int) -> SGIN:
    if model is not None:
        return model
    if weights is not None:
        return SGIN(weights, biases, aggregation)
    return SGIN.random(dim=dim, layers=layers, seed=seed, aggregation=aggregation)


class _Base:
    """Shared plumbing: the sGIN model, parameters for trace headers, message summaries."""

    name = ""
    assumes = frozenset({"degree"})

    def __init__(
        self,
        model: Optional[SGIN] = None,
        *,
        weights: Any = None,
        biases: Any = None,
        aggregation: str = "sum",
        layers: int = 2,
        dim: int = 2,
        seed: int = 0,
    ) -> None:
        self.model = _model(model, weights, biases, aggregation, layers, dim, seed)
        self.L = self.model.layers
        self.d = self.model.dim

    def params(self) -> dict:
        return self.model.to_dict()

    def summarize(self, payload: Any) -> str:
        if payload is None:
            return ""
        m, pulse, safe, origin = payload
        bits = "".join(c for c, b in (("P", pulse), ("S", safe), ("O", origin)) if b) or "-"
        return f"{bits} m={_fmt(m)}"


class Table1Literal(_Base):
    """Table 1 as printed (sum aggregation): state (s, w, u, l), first matching row wins."""

    name = "table1-literal"

    def __init__(self, model: Optional[SGIN] = None, **kw: Any) -> None:
        super().__init__(model, **kw)
        if self.model.aggregation != "sum":
            raise ValueError("Table 1 as printed simulates sum aggregation; use the corrected 'synchronizer' for mean/gcn")

    def start(self, node: NodeView) -> tuple[tuple, Optional[Message]]:
        return (as_vector(node.features, self.d), 0, 0, self.L), None

    def row(self, state: tuple, message: Message) -> int:
        """The first row of Table 1 whose condition holds (1..6), or 0 if none does."""
        _, w, u, l = state
        _, pulse, safe, origin = payload_of(message, self.d)
        if l == 0:
            return 1
        if origin == 1:
            return 2
        if u == 0:
            return 3
        if safe == 1:
            return 4
        if w == 0:
            return 5
        if pulse == 1:
            return 6
        return 0

    def receive(self, node: NodeView, state: tuple, message: Message) -> tuple[tuple, Optional[Message]]:
        s, w, u, l = state
        m = payload_of(message, self.d)[0]
        D = node.degree
        r = self.row(state, message)
        if r == 2:
            return (s, D - 1, D, l), sync_message(s, 1, 0)
        if r == 3:
            return (m, D - 2, D, l), sync_message(s, 1, 0)
        if r == 4:
            return (s, w, u - 1, l), None
        if r == 5:
            total = tuple(x + y for x, y in zip(s, m))
            return (self.model.layer(self.L - l, total), 0, u - 1, l - 1), sync_message(s, 0, 1)
        if r == 6:
            return (tuple(x + y for x, y in zip(s, m)), w - 1, u, l), None
        return state, None  # rows 1 and 0: unchanged, ⊥

    def finished(self, state: tuple) -> bool:
        return state[3] == 0

    def progress(self, state: tuple) -> tuple[int, Vector]:
        """(layers left, s): a layer is computed when l drops."""
        return state[3], state[0]

    def summarize_state(self, state: tuple) -> str:
        s, w, u, l = state
        return f"s={_fmt(s)} w={w} u={u} l={l}"


class Synchronizer(_Base):
    """The corrected alpha-synchronizer (module docstring): state (s, a, w, u, l, σ)."""

    name = "synchronizer"

    def start(self, node: NodeView) -> tuple[tuple, Optional[Message]]:
        D = node.degree
        if D is None or D < 1:
            raise ValueError(f"the synchronizer needs every node to have a neighbour (degree >= 1), got degree {D}")
        return (as_vector(node.features, self.d), zeros(self.d), D, 0, self.L, 1), None

    def _scale(self, D: int) -> float:
        return 1.0 / math.sqrt(D) if self.model.aggregation == "gcn" else 1.0

    def _compute(self, a: Vector, l: int, D: int) -> Vector:
        agg = self.model.aggregation
        if agg == "mean":
            a = tuple(x / D for x in a)
        elif agg == "gcn":
            c = 1.0 / math.sqrt(D)
            a = tuple(c * x for x in a)
        return self.model.layer(self.L - l, a)

    def receive(self, node: NodeView, state: tuple, message: Message) -> tuple[tuple, Optional[Message]]:
        s, a, w, u, l, safe = state
        if l == 0:
            return state, None
        m, p_in, s_in, _ = payload_of(message, self.d)
        D = node.degree
        if p_in:
            a = tuple(x + y for x, y in zip(a, m))
            w -= 1
        if s_in:
            u -= 1
        pulse_out = safe_out = 0
        m_out = zeros(self.d)
        if safe == 0 and w == 0:
            s, a, w, l, safe = self._compute(a, l, D), zeros(self.d), D, l - 1, 1
            safe_out = int(l > 0)
        if safe == 1 and u == 0 and l > 0:
            c = self._scale(D)
            m_out = s if c == 1.0 else tuple(c * x for x in s)
            pulse_out, safe, u = 1, 0, D
            if w == 0:
                s, a, w, l, safe = self._compute(a, l, D), zeros(self.d), D, l - 1, 1
                safe_out = int(l > 0)
        state = (s, a, w, u, l, safe)
        if pulse_out or safe_out:
            return state, sync_message(m_out, pulse_out, safe_out)
        return state, None

    def finished(self, state: tuple) -> bool:
        return state[4] == 0

    def progress(self, state: tuple) -> tuple[int, Vector]:
        """(layers left, s): a layer is computed when l drops."""
        return state[4], state[0]

    def summarize_state(self, state: tuple) -> str:
        s, a, w, u, l, safe = state
        return f"s={_fmt(s)} a={_fmt(a)} w={w} u={u} l={l} σ={safe}"


def _register() -> None:
    from . import register

    register("table1-literal", Table1Literal)
    register("synchronizer", Synchronizer)


_register()
