"""Appendix A's claim, made concrete: the corrected update function f as a fixed-weight ReLU network.

    f(s, a, m, w, u, l, σ, pulse, safe, origin, D) = Linear3(ReLU(Linear2(ReLU(Linear1(x)))))

three affine layers with ReLU between them (two hidden layers), weights set by
hand from the sGIN weights, no training. It reproduces :class:`Synchronizer`'s
``receive`` (state and message, ⊥ as all-zero bits) on the bounded domain::

    |s|, |a|, |m| <= bound (entrywise),  0 <= w, u <= D <= max_degree,  0 <= l <= L,
    σ, pulse, safe, origin in {0, 1}.

Construction (docs/synchronizer.md, "Appendix A"):

* layer 1 computes exact 0/1 indicators of integer conditions with hat functions,
  ``[z = 0] = ReLU(z+1) - 2 ReLU(z) + ReLU(z-1)`` and ``[z >= 1] = ReLU(z) - ReLU(z-1)``
  (for integer z), and passes reals through as ``x = ReLU(x) - ReLU(-x)``;
* layer 2 gates each case's value by a conjunction of indicators with a big-M
  penalty, ``gate(v) = ReLU(v - K·pen) - ReLU(-v - K·pen)`` where pen = number of
  false literals; the linear layer of sGIN sits inside the same unit,
  ``ReLU(W_k agg(a+m) + b_k - K·pen)``, one unit per (case, layer k, degree class);
* layer 3 sums the gated pieces: in every case exactly one piece is non-zero.

Why a bound is needed at all: on the unbounded domain no ReLU network of any depth
computes f exactly. A ReLU network is globally Lipschitz, but f changes by the
unbounded amount m when only the pulse bit flips (a' = a + pulse·m).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from .sgin import SGIN

__all__ = ["ReluF", "build_relu_net", "encode_input", "encode_output", "decode_output", "in_size", "out_size"]


def in_size(d: int) -> int:
    """x = [s (d), a (d), m (d), w, u, l, σ, pulse, safe, origin, D]."""
    return 3 * d + 8


def out_size(d: int) -> int:
    """y = [s' (d), a' (d), w', u', l', σ', m' (d), pulse', safe', origin']."""
    return 3 * d + 7


def encode_input(state: tuple, payload: Optional[tuple], degree: int) -> list[float]:
    """The network input for :class:`Synchronizer` state (s, a, w, u, l, σ) and message (m, p, s, o)."""
    s, a, w, u, l, sigma = state
    if payload is None:  # the origin message
        payload = ((0.0,) * len(s), 0, 0, 1)
    m, p, sb, o = payload
    return [*s, *a, *m, float(w), float(u), float(l), float(sigma), float(p), float(sb), float(o), float(degree)]


def encode_output(state: tuple, payload: Optional[tuple]) -> list[float]:
    """The expected network output for the rule's new state and emission (``None``: ⊥)."""
    s, a, w, u, l, sigma = state
    if payload is None:
        payload = ((0.0,) * len(s), 0, 0, 0)
    m, p, sb, o = payload
    return [*s, *a, float(w), float(u), float(l), float(sigma), *m, float(p), float(sb), float(o)]


def decode_output(y: Sequence[float], d: int) -> tuple[tuple, Optional[tuple]]:
    """(state, payload or None) from a network output row (integers rounded)."""
    y = [float(v) for v in y]
    s, a = tuple(y[:d]), tuple(y[d:2 * d])
    w, u, l, sigma = (int(round(v)) for v in y[2 * d:2 * d + 4])
    m = tuple(y[2 * d + 4:3 * d + 4])
    p, sb, o = (int(round(v)) for v in y[3 * d + 4:])
    return (s, a, w, u, l, sigma), ((m, p, sb, o) if (p or sb or o) else None)


# --------------------------------------------------------------------------- construction
Lin = dict  # {unit index: coefficient}, plus an optional constant under key -1


class _Layer:
    """Rows of one affine map followed by ReLU; units are deduplicated by (coefficients, bias)."""

    def __init__(self) -> None:
        self.rows: list[tuple[dict, float]] = []
        self._index: dict = {}

    def unit(self, coeffs: dict, bias: float = 0.0) -> int:
        key = (tuple(sorted((k, float(c)) for k, c in coeffs.items() if c != 0.0)), float(bias))
        if key not in self._index:
            self._index[key] = len(self.rows)
            self.rows.append((dict(key[0]), float(bias)))
        return self._index[key]


def _add(*terms: tuple[float, Lin]) -> Lin:
    out: Lin = {}
    for c, lin in terms:
        for k, v in lin.items():
            out[k] = out.get(k, 0.0) + c * v
    return {k: v for k, v in out.items() if v != 0.0 or k == -1}


def _split(lin: Lin) -> tuple[dict, float]:
    return {k: v for k, v in lin.items() if k != -1}, lin.get(-1, 0.0)


@dataclass(frozen=True)
class ReluF:
    """The network and what it was built for: ``net(x)`` maps :func:`encode_input` rows to outputs."""

    net: nn.Sequential
    model: SGIN
    max_degree: int
    bound: float
    big_m: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(x)

    @property
    def depth(self) -> int:
        """Number of affine layers (3)."""
        return sum(isinstance(m, nn.Linear) for m in self.net)

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(m.out_features for m in self.net if isinstance(m, nn.Linear))[:-1]


def build_relu_net(model: SGIN, max_degree: int, bound: float = 64.0) -> ReluF:
    """The 3-layer ReLU network equal to ``Synchronizer(model).receive`` on the bounded domain.

    ``max_degree``: the largest D it must handle (mean/gcn need one unit group per degree);
    ``bound``: the largest magnitude of any entry of s, a and m it must handle.
    """
    if max_degree < 1:
        raise ValueError(f"max_degree must be >= 1, got {max_degree}")
    if not bound > 0 or not math.isfinite(bound):
        raise ValueError(f"bound must be finite and > 0, got {bound}")
    d, L, agg = model.dim, model.layers, model.aggregation
    # input positions
    S, A, M = range(0, d), range(d, 2 * d), range(2 * d, 3 * d)
    W_, U_, L_, SIG, P, SB, _O, DEG = range(3 * d, 3 * d + 8)

    # big-M: larger than every value a gate may have to switch off
    row_norm = max(sum(abs(x) for x in row) for w in model.weights for row in w)
    bias_norm = max(abs(x) for b in model.biases for x in b)
    biggest = max(2 * bound * row_norm + bias_norm, bound, max_degree + 2.0, L + 2.0)
    K = 2.0 ** math.ceil(math.log2(2 * biggest))

    h1 = _Layer()

    def real(i: int) -> Lin:
        return {h1.unit({i: 1.0}): 1.0, h1.unit({i: -1.0}): -1.0}

    def lin1(coeffs: dict, bias: float = 0.0) -> Lin:  # an integer-valued linear form, passed through exactly
        return {h1.unit(coeffs, bias): 1.0, h1.unit({k: -v for k, v in coeffs.items()}, -bias): -1.0}

    def is_zero(coeffs: dict, bias: float = 0.0) -> Lin:  # [z = 0] for integer z
        return {h1.unit(coeffs, bias + 1.0): 1.0, h1.unit(coeffs, bias): -2.0, h1.unit(coeffs, bias - 1.0): 1.0}

    def at_least_one(coeffs: dict, bias: float = 0.0) -> Lin:  # [z >= 1] for integer z
        return _add((1.0, {h1.unit(coeffs, bias): 1.0}), (-1.0, {h1.unit(coeffs, bias - 1.0): 1.0}))

    # literals (0/1 valued linear forms of layer-1 units)
    F = is_zero({L_: 1.0})                         # l = 0: finished
    sig = {h1.unit({SIG: 1.0}): 1.0}               # σ
    pb = {h1.unit({P: 1.0}): 1.0}                  # pulse bit
    zw = is_zero({W_: 1.0, P: -1.0})               # w - pulse = 0
    zu = is_zero({U_: 1.0, SB: -1.0})              # u - safe = 0
    l2 = at_least_one({L_: 1.0}, -1.0)             # l >= 2
    lk = {k: is_zero({L_: 1.0}, -float(k)) for k in range(1, L + 1)}  # l = k
    classes = [1] if agg == "sum" else list(range(1, max_degree + 1))
    dj = {j: is_zero({DEG: 1.0}, -float(j)) for j in classes} if agg != "sum" else {1: {-1: 1.0}}

    def pos(x: Lin) -> tuple[Lin, bool]:
        return x, True

    def neg(x: Lin) -> tuple[Lin, bool]:
        return x, False

    s_in = [real(i) for i in S]
    a_in = [real(i) for i in A]
    m_in = [real(i) for i in M]
    w_in, u_in, l_in, deg_in = lin1({W_: 1.0}), lin1({U_: 1.0}), lin1({L_: 1.0}), lin1({DEG: 1.0})
    w1 = lin1({W_: 1.0, P: -1.0})
    u1 = lin1({U_: 1.0, SB: -1.0})

    h2 = _Layer()

    def penalty(lits: Sequence[tuple[Lin, bool]]) -> Lin:
        terms: list[tuple[float, Lin]] = []
        for lit, positive in lits:
            terms.append((1.0, {-1: 1.0}) if positive else (0.0, {}))
            terms.append((-1.0 if positive else 1.0, lit))
        return _add(*terms)

    def gate(value: Lin, lits: Sequence[tuple[Lin, bool]]) -> Lin:
        """value if every literal holds, else 0 (|value| < K)."""
        pen = penalty(lits)
        up = _split(_add((1.0, value), (-K, pen)))
        down = _split(_add((-1.0, value), (-K, pen)))
        return {h2.unit(*up): 1.0, h2.unit(*down): -1.0}

    def gate_relu(value: Lin, lits: Sequence[tuple[Lin, bool]]) -> int:
        """ReLU(value) if every literal holds, else 0 (value < K): one unit."""
        return h2.unit(*_split(_add((1.0, value), (-K, penalty(lits)))))

    def indicator(lits: Sequence[tuple[Lin, bool]]) -> Lin:
        """[every literal holds] = ReLU(1 - pen)."""
        return {h2.unit(*_split(_add((1.0, {-1: 1.0}), (-1.0, penalty(lits))))): 1.0}

    nF = neg(F)
    keep_D = [nF, pos(sig), pos(zu), neg(zw)]      # proceed only
    keep_E1 = [nF, neg(sig), neg(zw)]              # absorb only (not safe yet)
    keep_E2 = [nF, pos(sig), neg(zu)]              # absorb only (safe, waiting)
    comp_a = [nF, neg(sig), pos(zw)]               # compute (then maybe proceed)
    comp_c = [nF, pos(sig), pos(zu), pos(zw)]      # proceed, then compute
    case_A1 = comp_a + [neg(zu)]
    case_A2 = comp_a + [pos(zu), neg(l2)]
    case_B = comp_a + [pos(zu), pos(l2)]

    def scale(j: int) -> float:
        return 1.0 / math.sqrt(j) if agg == "gcn" else 1.0

    def agg_coef(j: int) -> float:
        return {"sum": 1.0, "mean": 1.0 / j, "gcn": 1.0 / math.sqrt(j)}[agg]

    def h_units(lits: Sequence[tuple[Lin, bool]], out_scale: bool) -> list[Lin]:
        """sGIN layer L-l+1 on a + pulse·m, gated by ``lits``: one unit per (pulse, k, degree class, i)."""
        out: list[Lin] = [{} for _ in range(d)]
        for with_m in (True, False):
            acc = [_add((1.0, a_in[i]), (1.0, m_in[i])) if with_m else a_in[i] for i in range(d)]
            for k in range(1, L + 1):
                W, b = model.weights[L - k], model.biases[L - k]
                for j in classes:
                    c = agg_coef(j)
                    for i in range(d):
                        z = _add(*[(c * W[i][t], acc[t]) for t in range(d)], (b[i], {-1: 1.0}))
                        lits_all = list(lits) + [pos(pb) if with_m else neg(pb), pos(lk[k])]
                        if agg != "sum":
                            lits_all.append(pos(dj[j]))
                        unit = gate_relu(z, lits_all)
                        out[i] = _add((1.0, out[i]), (scale(j) if out_scale else 1.0, {unit: 1.0}))
        return out

    def absorbed(i: int, lits: Sequence[tuple[Lin, bool]]) -> Lin:
        """a_i + pulse·m_i, gated."""
        return _add((1.0, gate(_add((1.0, a_in[i]), (1.0, m_in[i])), list(lits) + [pos(pb)])),
                    (1.0, gate(a_in[i], list(lits) + [neg(pb)])))

    def scaled_state(i: int, lits: Sequence[tuple[Lin, bool]]) -> Lin:
        if agg != "gcn":
            return gate(s_in[i], lits)
        return _add(*[(1.0, gate(_add((scale(j), s_in[i])), list(lits) + [pos(dj[j])])) for j in classes])

    outputs: list[Lin] = []
    # s'
    h_new = [_add((1.0, x), (1.0, y)) for x, y in zip(h_units(comp_a, False), h_units(comp_c, False))]
    for i in range(d):
        kept = _add(*[(1.0, gate(s_in[i], lits)) for lits in ([pos(F)], keep_D, keep_E1, keep_E2)])
        outputs.append(_add((1.0, kept), (1.0, h_new[i])))
    # a'
    for i in range(d):
        outputs.append(_add((1.0, gate(a_in[i], [pos(F)])), *[(1.0, absorbed(i, c)) for c in (keep_D, keep_E1, keep_E2)]))
    # w'
    outputs.append(_add((1.0, gate(w_in, [pos(F)])), *[(1.0, gate(w1, c)) for c in (keep_D, keep_E1, keep_E2)],
                        *[(1.0, gate(deg_in, c)) for c in (comp_a, comp_c)]))
    # u'
    outputs.append(_add((1.0, gate(u_in, [pos(F)])), *[(1.0, gate(u1, c)) for c in (keep_E1, keep_E2, case_A1, case_A2)],
                        *[(1.0, gate(deg_in, c)) for c in (keep_D, case_B, comp_c)]))
    # l'
    outputs.append(_add((1.0, gate(l_in, [pos(F)])), *[(1.0, gate(l_in, c)) for c in (keep_D, keep_E1, keep_E2)],
                        *[(1.0, gate(_add((1.0, l_in), (-1.0, {-1: 1.0})), c)) for c in (comp_a, comp_c)]))
    # σ'
    outputs.append(_add(*[(1.0, indicator(c)) for c in ([pos(F), pos(sig)], keep_E2, case_A1, case_A2, comp_c)]))
    # m'
    h_b = h_units(case_B, True)
    for i in range(d):
        outputs.append(_add((1.0, scaled_state(i, keep_D)), (1.0, scaled_state(i, comp_c)), (1.0, h_b[i])))
    # pulse', safe', origin'
    outputs.append(_add(*[(1.0, indicator(c)) for c in (keep_D, case_B, comp_c)]))
    outputs.append(_add(*[(1.0, indicator(c)) for c in (case_A1 + [pos(l2)], case_B, comp_c + [pos(l2)])]))
    outputs.append({})

    n_in, n1, n2, n_out = in_size(d), len(h1.rows), len(h2.rows), out_size(d)
    assert len(outputs) == n_out
    lin1_, lin2_, lin3_ = (nn.Linear(n_in, n1, dtype=torch.float64), nn.Linear(n1, n2, dtype=torch.float64),
                           nn.Linear(n2, n_out, dtype=torch.float64))
    with torch.no_grad():
        for layer, rows, width in ((lin1_, h1.rows, n_in), (lin2_, h2.rows, n1)):
            weight = torch.zeros(len(rows), width, dtype=torch.float64)
            bias = torch.zeros(len(rows), dtype=torch.float64)
            for r, (coeffs, b) in enumerate(rows):
                for k, c in coeffs.items():
                    weight[r, k] = c
                bias[r] = b
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
        weight = torch.zeros(n_out, n2, dtype=torch.float64)
        bias = torch.zeros(n_out, dtype=torch.float64)
        for r, lin in enumerate(outputs):
            coeffs, b = _split(lin)
            for k, c in coeffs.items():
                weight[r, k] = c
            bias[r] = b
        lin3_.weight.copy_(weight)
        lin3_.bias.copy_(bias)
    net = nn.Sequential(lin1_, nn.ReLU(), lin2_, nn.ReLU(), lin3_)
    for p in net.parameters():
        p.requires_grad_(False)
    return ReluF(net, model, max_degree, float(bound), K)
