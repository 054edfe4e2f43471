"""``ampsim verify synchronizer``: Theorem 4.1 checked by execution, case by case, against sGIN.

A case is (graph, L, seed, delay model, FIFO). The seed draws the node features
(U(-1, 1)^d, stream ``features/<graph>``), the start node (stream ``start/<graph>``),
the sGIN weights (:meth:`SGIN.random`) and the delays (the simulation's own
``delays`` stream). With constant delays channels are FIFO by construction, so a
constant case is run once (``fifo`` recorded as true). The run starts with the
origin message to the start node. Each case ends as exactly one of

=============  =====================================================================
``pass``       every node finished L layers and its final state equals sGIN's
               (|got - expected| <= 1e-6 · max(1, |expected|) per entry)
``wrong``      every node finished, some final state differs
``deadlock``   the run went quiet before every node finished L layers (the
               engine's ``stalled``; the stuck nodes are named)
``budget``     the message budget ran out first: 20 · L · |E| + 2n processed
               deliveries, 5x what the corrected synchronizer can need
               ((2L - 1) · 2|E| + 1)
=============  =====================================================================

For a failure the *first divergence* is the first layer value, in delivery order,
that differs from sGIN (node, pulse = layer, expected, got, and for Table 1 the row
that fired), or else the stuck node with the fewest layers done. The smallest
failing case (fewest nodes, edges, layers, deliveries) is rerun with a JSONL tracer
and saved with a ``.case.json`` that :func:`replay_case` turns back into the run.

For the corrected synchronizer every delivery of every case is also fed to the
3-layer ReLU network of :mod:`ampsim.protocols.relu_net`, which must reproduce the
rule's new state and emission (integers exactly, reals to 1e-9).
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Optional, Sequence

from ..engine.messages import Message, NodeView
from ..engine.rng import derive_seed, stream
from ..engine.simulation import Simulation
from ..fileio import save_figure, write_text
from ..sweeps import add_executor_arguments, executor_from_args
from ..graphs import Graph, parse_graph_spec
from .sgin import SGIN, run_sgin
from .synchronizer import ORIGIN, TABLE1_ROWS, Synchronizer, Table1Literal

__all__ = [
    "DEFAULT_GRAPHS",
    "DEFAULT_LAYERS",
    "Case",
    "CaseResult",
    "Divergence",
    "make_cases",
    "run_case",
    "sweep",
    "summarize",
    "format_summary",
    "save_failure",
    "replay_case",
    "plot_messages_per_layer",
    "budget_for",
    "CAUSES",
    "COUNTEREXAMPLES",
    "Counterexample",
    "EARLY_PULSE_RUN",
    "Execution",
    "Scripted",
    "run_counterexample",
    "search_counterexamples",
    "literal_causes",
    "synchronizer_events",
    "degeneracy",
    "reference_quality",
    "MAX_REDRAWS",
    "configure",
    "main",
]

DEFAULT_GRAPHS = (
    "path:2", "path:7", "path:50",
    "cycle:3", "cycle:8", "cycle:31",
    "star:5", "star:20",
    "complete:4", "complete:10",
    "petersen",
    "grid:3x3", "grid:5x10",
    "tree:15:1", "tree:50:2",
    "random-regular:3:20:7", "random-regular:4:30:1", "random-regular:5:50:2",
    "gnp:30:0.15:3", "gnp:50:0.08:5",
)
"""20 graphs, n <= 50: paths, cycles, stars, complete, Petersen, grids, trees, random regular, G(n, p)."""

DEFAULT_LAYERS = (1, 2, 3, 5)
DEFAULT_DIM = 3
RTOL = 1e-6
RELU_TOL = 1e-9
RULES = {"synchronizer": Synchronizer, "table1-literal": Table1Literal}


def budget_for(graph: Graph, layers: int) -> int:
    """Processed deliveries a case may use: 20 · L · |E| + 2n."""
    return 20 * layers * graph.num_edges + 2 * graph.num_nodes


@dataclass(frozen=True)
class Case:
    """One verification run."""

    graph: str
    layers: int
    seed: int
    delay: str = "uniform"
    fifo: bool = False
    rule: str = "synchronizer"
    aggregation: str = "sum"
    dim: int = DEFAULT_DIM
    loss: float = 0.0

    def label(self) -> str:
        return (f"{self.rule} {self.graph} L={self.layers} seed={self.seed} {self.delay}"
                f"{' fifo' if self.fifo else ''}{f' loss={self.loss}' if self.loss else ''}")


@dataclass(frozen=True)
class Divergence:
    """Where a run first left sGIN: ``node`` at ``pulse`` (= layer); ``got`` is None if never computed."""

    node: int
    pulse: int
    expected: tuple
    got: Optional[tuple]
    t: Optional[float] = None
    delivery: Optional[int] = None
    row: Optional[str] = None

    def describe(self) -> str:
        exp = "[" + ", ".join(f"{x:.6g}" for x in self.expected) + "]"
        got = "never computed" if self.got is None else "[" + ", ".join(f"{x:.6g}" for x in self.got) + "]"
        row = f", row {self.row}" if self.row else ""
        where = "" if self.t is None else f" at t={self.t:.6g} (delivery #{self.delivery}{row})"
        return f"node {self.node}, pulse {self.pulse}{where}: expected {exp}, got {got}"


@dataclass(frozen=True)
class CaseResult:
    """How one case ended."""

    case: Case
    outcome: str
    reason: str
    n: int
    m: int
    start: int
    deliveries: int
    sent: int
    dropped: int
    stuck: tuple = ()
    max_error: float = 0.0
    divergence: Optional[Divergence] = None
    relu_steps: int = 0
    relu_mismatches: int = 0
    relu_max_error: float = 0.0
    causes: tuple = ()
    events: tuple = ()
    redraws: int = 0
    degenerate: Optional[str] = None

    @property
    def failed(self) -> bool:
        """Wrong, deadlocked or over budget, a ReLU mismatch, or a reference that tests nothing."""
        return self.outcome != "pass" or self.relu_mismatches > 0 or self.degenerate is not None


# ------------------------------------------------------------------ one case
@lru_cache(maxsize=64)
def _graph(spec: str) -> Graph:
    return parse_graph_spec(spec)


MAX_REDRAWS = 50
"""Redraws of the sGIN weights allowed per case before the reference is reported degenerate."""


def degeneracy(final: Sequence[Sequence[float]], tol: float = 1e-9) -> Optional[str]:
    """Why a reference output tests nothing: ``"all-zero"`` (every entry of every node's h^(L) is 0),
    ``"identical"`` (every node has the same h^(L)), or None (non-degenerate).

    A synchronizer that computed the wrong layers, or none, would often still match such a
    reference (ReLU zeros or a constant output hide the difference).
    """
    if all(abs(x) <= tol for row in final for x in row):
        return "all-zero"
    first = final[0]
    if all(all(abs(a - b) <= tol * max(1.0, abs(b)) for a, b in zip(row, first)) for row in final[1:]):
        return "identical"
    return None


@lru_cache(maxsize=4096)
def _reference_draw(graph: str, layers: int, seed: int, dim: int, aggregation: str) -> tuple:
    g = _graph(graph)
    rng = stream(seed, f"features/{graph}")
    features = [[rng.uniform(-1.0, 1.0) for _ in range(dim)] for _ in range(g.num_nodes)]
    model = SGIN.random(dim, layers, seed, aggregation)
    redraws = 0
    why = degeneracy(run_sgin(g, features, model)[layers])
    while why is not None and redraws < MAX_REDRAWS:  # redraw the weights from a derived stream
        redraws += 1
        model = SGIN.random(dim, layers, derive_seed(seed, f"sgin-redraw/{redraws}"), aggregation)
        why = degeneracy(run_sgin(g, features, model)[layers])
    return features, model, redraws, why


def case_inputs(case: Case) -> tuple[Graph, list, int, SGIN]:
    """(graph, features, start node, sGIN model) of a case, all drawn from its seed.

    The weights are redrawn (from ``derive_seed(seed, "sgin-redraw/<k>")``, k = 1, 2, ...) while
    sGIN's output h^(L) is degenerate (:func:`degeneracy`): a reference that is all zeros or
    the same at every node would let a wrong synchronizer pass. :func:`reference_quality`
    says how many redraws a case took.
    """
    g = _graph(case.graph)
    features, model, _, _ = _reference_draw(case.graph, case.layers, case.seed, case.dim, case.aggregation)
    start = stream(case.seed, f"start/{case.graph}").randrange(g.num_nodes)
    return g, [list(r) for r in features], start, model


def reference_quality(case: Case) -> tuple[int, Optional[str]]:
    """(redraws needed, degeneracy left after them or None) of a case's sGIN reference."""
    _, _, redraws, why = _reference_draw(case.graph, case.layers, case.seed, case.dim, case.aggregation)
    return redraws, why


class _Recorder:
    """A transparent NodeRule wrapper that keeps (node view, state, message, new state, emission) per delivery."""

    def __init__(self, rule: Any) -> None:
        self.rule = rule
        self.name = rule.name
        self.assumes = rule.assumes
        self.steps: list[tuple] = []
        self.sim: Optional[Simulation] = None

    def start(self, node: NodeView):
        return self.rule.start(node)

    def receive(self, node: NodeView, state: Any, message: Message):
        new, out = self.rule.receive(node, state, message)
        sim = self.sim
        self.steps.append((node, state, message, new, out, sim.now if sim else None, sim.deliveries + 1 if sim else None))
        return new, out

    def finished(self, state: Any) -> bool:
        return self.rule.finished(state)

    def summarize(self, payload: Any) -> str:
        return self.rule.summarize(payload)

    def summarize_state(self, state: Any) -> str:
        return self.rule.summarize_state(state)

    def params(self) -> dict:
        return self.rule.params()


def _close(got: Sequence[float], expected: Sequence[float]) -> bool:
    return all(abs(g - e) <= RTOL * max(1.0, abs(e)) for g, e in zip(got, expected))


def _error(got: Sequence[float], expected: Sequence[float]) -> float:
    return max((abs(g - e) / max(1.0, abs(e)) for g, e in zip(got, expected)), default=0.0)


def build_simulation(case: Case, tracer: Any = None, wrap: bool = True) -> tuple[Simulation, Any, tuple]:
    """The simulation of a case (with the recording wrapper if ``wrap``), and sGIN's layers for it."""
    g, features, start, model = case_inputs(case)
    rule = RULES[case.rule](model)
    rec = _Recorder(rule) if wrap else rule
    sim = Simulation(
        g, rec, delay=case.delay, fifo=case.fifo, seed=case.seed, tracer=tracer, start=start,
        start_message=ORIGIN, features=features, loss=case.loss, budget=budget_for(g, case.layers),
    )
    if wrap:
        rec.sim = sim
    return sim, rec, run_sgin(g, features, model)


@dataclass(frozen=True)
class Execution:
    """A finished, classified run: the engine's result, the recorded steps and what went wrong."""

    sim: Simulation
    result: Any
    outcome: str
    reference: tuple
    steps: list
    index: dict
    divergence: Optional[Divergence]
    causes: list
    max_error: float

    def node_of(self, step: tuple) -> int:
        return self.index[id(step[0])]


def _evaluate(sim: Simulation, rec: _Recorder, ref: tuple, layers: int) -> Execution:
    result = sim.run()
    index = {id(view): v for v, view in enumerate(sim.views)}
    progress = rec.rule.progress
    finals = [progress(s) for s in result.states]
    max_error = max((_error(s, ref[layers][v]) for v, (l, s) in enumerate(finals) if l == 0), default=0.0)
    if result.reason == "message_budget":
        outcome = "budget"
    elif result.reason == "stalled" or any(l != 0 for l, _ in finals):
        outcome = "deadlock"
    else:
        outcome = "pass" if all(_close(s, ref[layers][v]) for v, (_, s) in enumerate(finals)) else "wrong"
    divergence = _first_divergence(rec, index, ref, layers, finals, result.stuck) if outcome != "pass" else None
    causes = literal_causes(rec.rule, rec.steps, index) if isinstance(rec.rule, Table1Literal) else []
    return Execution(sim, result, outcome, ref, rec.steps, index, divergence, causes, max_error)


def run_case(case: Case, relu: bool = True) -> CaseResult:
    """Run one case and classify it; ``relu``: also check the ReLU network on every step (corrected rule)."""
    sim, rec, ref = build_simulation(case)
    ex = _evaluate(sim, rec, ref, case.layers)
    g, result = sim.graph, ex.result
    relu_steps = relu_bad = 0
    relu_err = 0.0
    events: tuple = ()
    if case.rule == "synchronizer":
        events = tuple(sorted(synchronizer_events(rec.steps).items()))
        if relu and rec.steps:
            relu_steps, relu_bad, relu_err = _check_relu(rec.rule.model, rec.steps, max(g.degrees))
    return CaseResult(
        case, ex.outcome, result.reason, g.num_nodes, g.num_edges, sim.start_nodes[0][0], result.total_deliveries,
        result.sent, result.dropped, tuple(result.stuck), ex.max_error, ex.divergence, relu_steps, relu_bad, relu_err,
        tuple(dict.fromkeys(c for _, _, c in ex.causes)), events, *reference_quality(case),
    )


@dataclass(frozen=True)
class Scripted:
    """Delays by ``msg_id`` from a table, every other copy ``default``: counterexamples written by hand."""

    delays: tuple = ()
    default: float = 1.0
    name: str = field(default="scripted", init=False)
    random: bool = field(default=True, init=False)

    def bind(self, rng: Any):
        table, default = dict(self.delays), float(self.default)
        return lambda msg_id, src, dst: table.get(msg_id, default)

    def describe(self) -> dict:
        return {"name": self.name, "delays": [list(p) for p in self.delays], "default": self.default}


@dataclass(frozen=True)
class Counterexample:
    """A run small enough to read: sGIN with d = 1, W = 1, b = 0, so h_v^(k) is the sum of the
    neighbours' h^(k-1), exact in floats; node v's feature is 2^v (a sum tells which nodes it
    holds), except the start node's, which is 0 unless ``keep_origin`` (so row 2's cause stays
    out of the way of the others). ``delays``: ((msg_id, delay), ...), every other copy 1.0;
    no FIFO."""

    graph: str
    start: int
    layers: int
    delays: tuple = ()
    keep_origin: bool = False

    def features(self) -> list:
        n = _graph(self.graph).num_nodes
        return [[0.0 if v == self.start and not self.keep_origin else float(2 ** v)] for v in range(n)]

    def model(self) -> SGIN:
        return SGIN([[[1.0]]] * self.layers, [[0.0]] * self.layers)


def run_counterexample(cx: Counterexample, rule: str = "table1-literal", tracer: Any = None) -> Execution:
    """Run ``cx`` with Table 1 (or ``rule="synchronizer"``) and classify it like a sweep case."""
    g, model, features = _graph(cx.graph), cx.model(), cx.features()
    rec = _Recorder(RULES[rule](model))
    sim = Simulation(g, rec, delay=Scripted(tuple(cx.delays)), fifo=False, tracer=tracer, start=cx.start,
                     start_message=ORIGIN, features=features, budget=budget_for(g, cx.layers))
    rec.sim = sim
    return _evaluate(sim, rec, run_sgin(g, features, model), cx.layers)


COUNTEREXAMPLES = {
    "origin-keeps-state": Counterexample("cycle:3", 0, 1, keep_origin=True),
    "degree-one": Counterexample("path:2", 0, 1),
    "u0-takes-safe": Counterexample("cycle:3", 0, 2),
    "u0-takes-stale-pulse": Counterexample("cycle:3", 0, 1, ((3, 2.5),)),
    "w0-refires": Counterexample("cycle:3", 0, 2, ((3, 2.5),)),
    "late-pulse": Counterexample("cycle:3", 0, 2, ((7, 2.5), (13, 2.5))),
    "early-pulse": Counterexample("cycle:3", 0, 2, ((7, 2.5), (11, 2.5))),
    "u0-nothing-proceeds": Counterexample("path:2", 0, 2),
    "u0-takes-early-pulse": Counterexample("cycle:8", 7, 3, (
        (1, 0.604), (2, 0.336), (3, 0.25), (5, 0.592), (6, 0.427), (7, 0.5), (11, 0.25), (13, 0.896),
        (14, 0.325), (16, 0.5), (18, 0.603), (20, 0.5), (21, 0.912), (22, 0.25), (23, 0.052), (24, 0.614),
        (25, 0.537), (26, 0.115), (27, 0.223), (28, 0.25), (29, 0.5), (30, 0.5), (35, 0.5), (36, 0.62),
        (37, 0.25), (40, 0.205), (41, 0.372), (42, 0.177), (47, 0.25), (48, 0.18), (51, 0.25), (57, 0.121),
        (60, 0.002))),
}
"""For each cause, the smallest run found by :func:`search_counterexamples` (fewest other causes
before it and in all, then nodes, edges, L, scripted delays, deliveries); tests/protocols/test_table1.py
pins each to its row.
The row-5 and row-6 causes never strike first in Table 1 as printed (a row-3 misfire always comes
before them); they are what remains once row 3 is repaired (docs/synchronizer.md).
``u0-nothing-proceeds`` cannot occur alone (it needs a neighbour that never sends its safe
message, i.e. another cause: in its counterexample the degree-one leaf); ``u0-takes-early-pulse``
needs a neighbour two pulses ahead, which only an earlier row-3 misfire produces: its counterexample
is the sweep case ``table1-literal cycle:8 L=3 seed=6 uniform`` with the delays that do not matter
for it reset to 1 (greedily) and the rest rounded to 3 decimals."""


def search_counterexamples(
    graphs: Sequence[str] = ("path:2", "path:3", "cycle:3", "star:3", "path:4", "cycle:4"),
    layers: Sequence[int] = (1, 2, 3),
    slowed: int = 1,
    max_msg_id: int = 20,
    delays: Sequence[float] = (1.5, 2.5),
) -> dict:
    """The smallest Table 1 run showing each cause: ``cause -> (key, Counterexample, outcome)``.

    Tries every graph, L, start node, start feature (0 or not), constant delays and every
    choice of up to ``slowed`` copies (``msg_id`` < ``max_msg_id``) slowed to one of ``delays``.
    Runs rank by (other causes before this one, other causes, nodes, edges, L, slowed copies,
    start feature kept, deliveries).
    ``COUNTEREXAMPLES`` is the union of this search with its defaults and with
    ``graphs=("cycle:3",), layers=(2,), slowed=2, delays=(2.5,)``.
    """
    import itertools

    best: dict = {}
    for spec in graphs:
        g = _graph(spec)
        for L in layers:
            for start in range(g.num_nodes):
                tables = [()]
                for k in range(1, slowed + 1):
                    for ids in itertools.combinations(range(1, max_msg_id), k):
                        tables += [tuple(zip(ids, ds)) for ds in itertools.product(delays, repeat=k)]
                for table in tables:
                    for keep in (False, True):
                        cx = Counterexample(spec, start, L, table, keep)
                        ex = run_counterexample(cx)
                        if ex.outcome == "pass":
                            continue
                        seen = list(dict.fromkeys(c for _, _, c in ex.causes))
                        for j, cause in enumerate(seen):
                            key = (j, len(seen) - 1, g.num_nodes, g.num_edges, L, len(table), keep,
                                   ex.result.total_deliveries)
                            if cause not in best or key < best[cause][0]:
                                best[cause] = (key, cx, ex.outcome)
    return best


EARLY_PULSE_RUN = Counterexample("path:4", 1, 2, keep_origin=True)
"""The smallest run in which the corrected synchronizer meets an early pulse, with constant
(FIFO) delays: at t = 4 node 1 has computed layer 1 (s = h^(1), still to be sent with its
pulse 2) and waits for node 2's safe message when node 0's pulse 2 arrives. Table 1's
state has no room for both (its row 5 would fire on the pulse)."""


CAUSES = {
    "origin-keeps-state": "row 2 (origin=1): s' = s keeps the origin's own state in its neighbour sum",
    "degree-one": "row 3 (u=0): w' = D-2 = -1 when D = 1, so the node never reaches w = 0",
    "u0-takes-safe": "row 3 (u=0): fires on a safe message and takes its payload as a neighbour state",
    "u0-takes-stale-pulse": "row 3 (u=0): fires on a pulse of a layer already started; that layer is never computed",
    "u0-takes-early-pulse": "row 3 (u=0): fires on a pulse two or more layers ahead",
    "u0-nothing-proceeds": "rows 4/5 bring u to 0 and emit no pulse: the node waits for a later message, and none comes",
    "w0-refires": "row 5 (w=0): w' = 0, so the next pulse computes one more layer",
    "early-pulse": "rows 5/6 (w=0, pulse=1): add a pulse of a later layer into s (no room for two layers)",
    "late-pulse": "rows 5/6 (w=0, pulse=1): add a pulse of an earlier layer into s",
}
"""Every way Table 1 goes wrong that the sweep observes, by the row responsible (docs/synchronizer.md)."""


def literal_causes(rule: Table1Literal, steps: list, index: dict) -> list[tuple[int, int, str]]:
    """(delivery, node, cause) for every step of a Table 1 run where a row misbehaves (see :data:`CAUSES`).

    Each message is tagged with its sender's pulse number (row 2/3 firings so far), so a
    pulse can be told apart as belonging to this node's layer, a later or an earlier one.
    """
    pulses: dict[int, int] = {}
    computed: dict[int, int] = {}
    tag: dict[int, int] = {}
    waiting: dict[int, int] = {}
    found = []
    for view, state, message, new, out, _, k in steps:
        v = index[id(view)]
        r = rule.row(state, message)
        mine = pulses.get(v, 0)
        theirs = tag.get(id(message))
        is_pulse = message.kind == "pulse"
        if r == 2 and any(x != 0.0 for x in state[0]):
            found.append((k, v, "origin-keeps-state"))
        if r == 3:
            if view.degree == 1:
                found.append((k, v, "degree-one"))
            if message.kind == "safe":
                found.append((k, v, "u0-takes-safe"))
            elif is_pulse and theirs <= mine:
                found.append((k, v, "u0-takes-stale-pulse"))
            elif is_pulse and theirs > mine + 1:
                found.append((k, v, "u0-takes-early-pulse"))
        if r == 5:
            if computed.get(v, 0):
                found.append((k, v, "w0-refires"))
            computed[v] = computed.get(v, 0) + 1
        if r in (5, 6) and is_pulse and theirs != mine:
            found.append((k, v, "early-pulse" if theirs > mine else "late-pulse"))
        if r in (2, 3):
            pulses[v] = mine + 1
            computed[v] = 0
        if out is not None:
            tag[id(out)] = pulses.get(v, 0)
        if r in (4, 5) and new[2] == 0 and new[3] >= 1 and computed.get(v, 0):
            waiting[v] = k  # safe, u reached 0: only a *later* message can fire row 3 and start the next pulse
        else:
            waiting.pop(v, None)
    # a node whose last step left it waiting at u = 0 with layers to go: nothing ever started its next pulse
    found.extend((k, v, "u0-nothing-proceeds") for v, k in waiting.items())
    found.sort(key=lambda c: c[0])
    return found


def synchronizer_events(steps: list) -> dict:
    """Counts of the situations Table 1 has no row for, as the corrected synchronizer meets them.

    ``early_pulse``: a pulse reaches a node that is safe but still waits for safe messages
    (it must keep s for its next pulse and sum the early pulse elsewhere: the second
    accumulator); ``pulse_safe``: one activation both completes a layer and proceeds
    (a message with both bits).
    """
    early = both = 0
    for _, state, message, _, out, _, _ in steps:
        p = message.payload
        if p is not None and p[1] and state[5] == 1 and state[3] - p[2] > 0:
            early += 1
        if out is not None and out.payload[1] and out.payload[2]:
            both += 1
    return {"early_pulse": early, "pulse_safe": both}


def _first_divergence(rec: _Recorder, index: dict, ref: tuple, L: int, finals: list, stuck: tuple) -> Optional[Divergence]:
    progress = rec.rule.progress
    row_of = getattr(rec.rule, "row", None)
    for view, state, message, new, _, t, k in rec.steps:
        l_old, _ = progress(state)
        l_new, value = progress(new)
        if l_new < l_old:
            v = index[id(view)]
            layer = L - l_new
            if not _close(value, ref[layer][v]):
                row = TABLE1_ROWS[row_of(state, message)] if row_of else None
                return Divergence(v, layer, ref[layer][v], value, t, k, row)
    unfinished = [(L - l, v) for v, (l, _) in enumerate(finals) if l != 0]
    if unfinished:
        done, v = min(unfinished)
        return Divergence(v, done + 1, ref[done + 1][v], None)
    return None


_NETS: dict = {}
RELU_BOUND = 64.0
"""Smallest entry bound of the checking networks; a case with larger values gets the next power of two."""


def _relu_net(model: SGIN, max_degree: int, bound: float):
    """The ReLU network for ``model``, cached per process (one per sGIN model, bound and degree classes)."""
    from .relu_net import build_relu_net

    key = (model, max_degree if model.aggregation != "sum" else 0, bound)
    net = _NETS.get(key)
    if net is None:
        if len(_NETS) >= 256:
            _NETS.clear()
        net = _NETS[key] = build_relu_net(model, max(max_degree, 1) if model.aggregation != "sum" else 64, bound)
    return net


def _check_relu(model: SGIN, steps: list, max_degree: int) -> tuple[int, int, float]:
    """Feed every recorded step to the ReLU network: (steps, mismatching steps, max relative real error)."""
    import torch

    from .relu_net import encode_input, encode_output

    rows_in, rows_out = [], []
    biggest = 1.0
    for view, state, message, new, out, _, _ in steps:
        payload = message.payload
        rows_in.append(encode_input(state, payload, view.degree))
        rows_out.append(encode_output(new, None if out is None else out.payload))
    x = torch.tensor(rows_in, dtype=torch.float64)
    y = torch.tensor(rows_out, dtype=torch.float64)
    d = model.dim
    biggest = max(float(x[:, :3 * d].abs().max()), float(y[:, :2 * d].abs().max()))
    bound = max(RELU_BOUND, 2.0 ** math.ceil(math.log2(max(biggest, 1.0))))
    got = _relu_net(model, max_degree, bound)(x)
    real_cols = list(range(0, 2 * d)) + list(range(2 * d + 4, 3 * d + 4))
    int_cols = [c for c in range(y.shape[1]) if c not in real_cols]
    err = ((got[:, real_cols] - y[:, real_cols]).abs() / y[:, real_cols].abs().clamp(min=1.0)).max(dim=1).values
    int_ok = (got[:, int_cols] == y[:, int_cols]).all(dim=1)
    bad = int(((err > RELU_TOL) | ~int_ok).sum())
    return len(steps), bad, float(err.max())


# ------------------------------------------------------------------ the sweep
def make_cases(
    graphs: Sequence[str] = DEFAULT_GRAPHS,
    layers: Sequence[int] = DEFAULT_LAYERS,
    seeds: int = 50,
    rule: str = "synchronizer",
    delays: Sequence[str] = ("constant", "uniform"),
    aggregation: str = "sum",
    dim: int = DEFAULT_DIM,
    loss: float = 0.0,
) -> list[Case]:
    """graphs x L x seeds x (constant; uniform non-FIFO; uniform FIFO), in that order."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {sorted(RULES)}")
    for L in layers:
        if L < 1:
            raise ValueError(f"--layers must be >= 1, got {L}")
    for spec in graphs:
        g = _graph(spec)
        if g.isolated():
            raise ValueError(f"graph {spec!r} has isolated nodes {g.isolated()[:5]}: every node needs a neighbour")
    settings = []
    for delay in delays:
        if delay == "constant":
            settings.append(("constant", True))
        elif delay == "uniform":
            settings += [("uniform", False), ("uniform", True)]
        else:
            raise ValueError(f"unknown delay model {delay!r}; choose constant or uniform")
    return [
        Case(spec, L, seed, delay, fifo, rule, aggregation, dim, loss)
        for spec in graphs for L in layers for seed in range(seeds) for delay, fifo in settings
    ]


def _one_torch_thread() -> None:
    """The ReLU check runs many small matmuls: one torch thread is several times faster than two."""
    import torch

    torch.set_num_threads(1)


def sweep(cases: Sequence[Case], workers: int = 1, relu: bool = True, executor: Any = None) -> list[CaseResult]:
    """Run every case; with ``workers > 1`` over a process pool, or on ``executor`` (any
    ``concurrent.futures.Executor``, e.g. Dask: :mod:`ampsim.sweeps`). Results are in case order either way."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    cases = list(cases)
    case_fn = functools.partial(run_case, relu=relu)
    if executor is None and workers == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return [case_fn(c) for c in cases]
        finally:
            torch.set_num_threads(threads)
    from ..sweeps import run_map

    # spawn, not fork: the parent may hold torch's threads (forking them is unsafe, and deprecated)
    return run_map(case_fn, cases, workers=workers, executor=executor,
                   pool_options={"mp_context": multiprocessing.get_context("spawn"),
                                 "initializer": _one_torch_thread})


def _setting(case: Case) -> str:
    return f"{case.delay}{'/fifo' if case.fifo and case.delay != 'constant' else ''}"


def summarize(results: Sequence[CaseResult]) -> dict:
    """Counts overall, per graph and per (delay, FIFO); message counts per (graph, L, setting)."""
    outcomes = ("pass", "wrong", "deadlock", "budget")

    def counts(rs: Sequence[CaseResult]) -> dict:
        c = Counter(r.outcome for r in rs)
        return {"cases": len(rs), **{o: c.get(o, 0) for o in outcomes}}

    by_graph: dict[str, list] = {}
    by_setting: dict[str, list] = {}
    by_layers: dict[int, list] = {}
    msgs: dict[tuple, list] = {}
    for r in results:
        by_graph.setdefault(r.case.graph, []).append(r)
        by_setting.setdefault(_setting(r.case), []).append(r)
        by_layers.setdefault(r.case.layers, []).append(r)
        msgs.setdefault((r.case.graph, r.case.layers, _setting(r.case)), []).append(r)
    failures = [r for r in results if r.failed]
    relu_steps = sum(r.relu_steps for r in results)
    return {
        "total": counts(results),
        "passed": sum(1 for r in results if not r.failed),
        "by_graph": {k: {"n": v[0].n, "m": v[0].m, **counts(v)} for k, v in by_graph.items()},
        "by_setting": {k: counts(v) for k, v in by_setting.items()},
        "by_layers": {str(k): counts(v) for k, v in sorted(by_layers.items())},
        "divergence_rows": dict(Counter(r.divergence.row or "none" for r in failures if r.divergence)),
        "messages": [
            {"graph": g, "layers": L, "setting": s, "n": v[0].n, "m": v[0].m, "cases": len(v),
             "deliveries_mean": sum(r.deliveries for r in v) / len(v),
             "deliveries_min": min(r.deliveries for r in v), "deliveries_max": max(r.deliveries for r in v),
             "passed": sum(1 for r in v if not r.failed)}
            for (g, L, s), v in msgs.items()
        ],
        "reference": {
            "non_degenerate": sum(1 for r in results if r.degenerate is None),
            "degenerate": sum(1 for r in results if r.degenerate is not None),
            "redrawn": sum(1 for r in results if r.redraws),
            "redraws": sum(r.redraws for r in results),
            "rule": "sGIN weights redrawn while h^(L) is all zeros or identical at every node",
        },
        "literal_causes": _cause_summary(results),
        "synchronizer_events": {k: sum(dict(r.events).get(k, 0) for r in results) for k in ("early_pulse", "pulse_safe")},
        "relu": {"steps": relu_steps, "mismatches": sum(r.relu_mismatches for r in results),
                 "max_rel_error": max((r.relu_max_error for r in results), default=0.0)},
        "failures": [_failure_dict(r) for r in sorted(failures, key=_size_key)[:50]],
    }


def _cause_summary(results: Sequence[CaseResult]) -> dict:
    """For Table 1 runs: failing cases by their first cause after row 2's, cases each cause occurs in."""
    lit = [r for r in results if r.case.rule == "table1-literal"]
    if not lit:
        return {}
    first: Counter = Counter()
    present: Counter = Counter()
    for r in lit:
        for c in r.causes:
            present[c] += 1
        if r.failed:
            later = [c for c in r.causes if c != "origin-keeps-state"]
            first[later[0] if later else (r.causes[0] if r.causes else "unexplained")] += 1
    return {
        "failing_by_first_cause": dict(first.most_common()),
        "cases_with_cause": dict(present.most_common()),
        "unexplained_failures": first.get("unexplained", 0),
        "passes": sum(1 for r in lit if not r.failed),
        "passes_with_causes": sum(1 for r in lit if not r.failed and r.causes),
    }


def _size_key(r: CaseResult) -> tuple:
    c = r.case
    return (r.n, r.m, c.layers, r.deliveries, c.seed, c.delay, c.fifo, c.graph)


def _failure_dict(r: CaseResult) -> dict:
    return {"case": asdict(r.case), "outcome": r.outcome, "stuck": list(r.stuck), "start": r.start, "causes": list(r.causes),
            "deliveries": r.deliveries, "relu_mismatches": r.relu_mismatches,
            "divergence": r.divergence.describe() if r.divergence else None}


def format_summary(summary: dict, results: Sequence[CaseResult]) -> str:
    """The table printed by the CLI; the last line is ``passed P/N``."""
    head = f"{'graph':<24}{'n':>4}{'m':>5}{'cases':>7}{'passed':>8}{'wrong':>7}{'deadlock':>10}{'budget':>8}"
    lines = [head, "-" * len(head)]
    for g, c in summary["by_graph"].items():
        lines.append(f"{g:<24}{c['n']:>4}{c['m']:>5}{c['cases']:>7}{c['pass']:>8}{c['wrong']:>7}"
                     f"{c['deadlock']:>10}{c['budget']:>8}")
    lines.append("-" * len(head))
    for s, c in summary["by_setting"].items():
        lines.append(f"{'delay ' + s:<33}{c['cases']:>7}{c['pass']:>8}{c['wrong']:>7}{c['deadlock']:>10}{c['budget']:>8}")
    for L, c in summary["by_layers"].items():
        lines.append(f"{'L=' + L:<33}{c['cases']:>7}{c['pass']:>8}{c['wrong']:>7}{c['deadlock']:>10}{c['budget']:>8}")
    t = summary["total"]
    lines.append(f"{'total':<33}{t['cases']:>7}{t['pass']:>8}{t['wrong']:>7}{t['deadlock']:>10}{t['budget']:>8}")
    ref = summary["reference"]
    lines.append(f"sGIN reference non-degenerate in {ref['non_degenerate']}/{t['cases']} cases "
                 f"({ref['redrawn']} needed redrawn weights, {ref['redraws']} redraws in all; "
                 f"{ref['degenerate']} still degenerate)")
    relu = summary["relu"]
    if relu["steps"]:
        lines.append(f"ReLU network (3 affine layers) vs rule: {relu['steps']} steps, {relu['mismatches']} mismatches, "
                     f"max relative error {relu['max_rel_error']:.2e}")
    causes = summary.get("literal_causes") or {}
    if causes.get("failing_by_first_cause"):
        lines.append("failing cases by first cause (after row 2's, which every run with a non-zero origin state has):")
        for c, k in causes["failing_by_first_cause"].items():
            lines.append(f"  {k:>6}  {c}: {CAUSES.get(c, 'no row misbehaved')}")
        occurs = ", ".join(f"{c} {k}" for c, k in causes["cases_with_cause"].items())
        lines.append(f"cases in which each cause occurs: {occurs}")
    failures = sorted((r for r in results if r.failed), key=_size_key)
    if failures:
        r = failures[0]
        lines.append(f"smallest failure: {r.case.label()} (start node {r.start}): {r.outcome}"
                     + (f", stuck {list(r.stuck)[:10]}" if r.stuck else ""))
        if r.divergence:
            lines.append(f"  first divergence: {r.divergence.describe()}")
        if r.relu_mismatches:
            lines.append(f"  ReLU network differs from the rule on {r.relu_mismatches} of {r.relu_steps} steps")
    lines.append(f"passed {summary['passed']}/{t['cases']}")
    return "\n".join(lines)


# ------------------------------------------------------------------ traces of failures
def save_failure(result: CaseResult, out_dir: str, stem: str) -> tuple[str, str]:
    """Rerun a case with a JSONL tracer; write ``<stem>.jsonl`` and ``<stem>.case.json``; return both paths."""
    from ..trace.tracers import JSONLTracer

    os.makedirs(out_dir, exist_ok=True)
    trace_path = os.path.join(out_dir, f"{stem}.jsonl")
    case_path = os.path.join(out_dir, f"{stem}.case.json")
    with JSONLTracer(trace_path, states=True) as tracer:
        sim, _, _ = build_simulation(result.case, tracer=tracer, wrap=False)
        sim.run()
    _, features, start, model = case_inputs(result.case)
    doc = {
        "case": asdict(result.case),
        "outcome": result.outcome,
        "start": start,
        "stuck": list(result.stuck),
        "first_divergence": result.divergence.describe() if result.divergence else None,
        "trace": os.path.basename(trace_path),
        "features": features,
        "model": model.to_dict(),
        "replay": "ampsim.protocols.verify_synchronizer.replay_case(<this file>)",
    }
    write_text(case_path, json.dumps(doc, indent=1))
    return trace_path, case_path


def replay_case(case_path: str, verify: bool = True):
    """Replay a saved failing case (its trace and features); raises ReplayMismatch if it differs."""
    from ..trace.io import load_trace
    from ..trace.replay import replay

    with open(case_path, encoding="utf-8") as f:
        doc = json.load(f)
    trace = load_trace(os.path.join(os.path.dirname(case_path), doc["trace"]))
    rule = RULES[doc["case"]["rule"]](SGIN.from_dict(doc["model"]))
    return replay(trace, rule, verify=verify, start_message=ORIGIN, features=doc["features"])


# ------------------------------------------------------------------ messages per layer
def plot_messages_per_layer(summary: dict, path: str) -> None:
    """Deliveries per simulated layer against 2|E| (one pulse wave), per graph, L and delay setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["messages"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4))
    markers = {"constant": "o", "uniform": "^", "uniform/fifo": "s"}
    colors = {1: "tab:blue", 2: "tab:orange", 3: "tab:green", 5: "tab:red"}
    for r in rows:
        per_layer = (r["deliveries_mean"] - 1) / r["layers"]
        x = 2 * r["m"]
        c = colors.get(r["layers"], "tab:gray")
        ax1.scatter(x, per_layer, marker=markers.get(r["setting"], "x"), color=c, s=18, alpha=0.8)
        ax2.scatter(x, per_layer / x, marker=markers.get(r["setting"], "x"), color=c, s=18, alpha=0.8)
    xs = sorted({2 * r["m"] for r in rows})
    if xs:
        ax1.plot(xs, xs, "k--", lw=1, label="2|E| (one pulse wave)")
        ax1.plot(xs, [2 * x for x in xs], "k:", lw=1, label="4|E| (pulse + safe)")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("2|E|")
    ax1.set_ylabel("deliveries per simulated layer")
    ax1.legend(fontsize=8)
    for L, c in colors.items():
        ax2.axhline(2 - 1 / L, color=c, lw=0.8, ls=":")
    ax2.axhline(1.0, color="k", lw=1, ls="--")
    ax2.set_xscale("log")
    ax2.set_xlabel("2|E|")
    ax2.set_ylabel("deliveries per layer / 2|E|")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=f"L={L} (dotted: 2-1/L)") for L, c in colors.items()]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=s) for s, m in markers.items()]
    ax2.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Corrected synchronizer: messages per simulated sGIN layer (mean over seeds)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------ CLI
def configure(parser: argparse.ArgumentParser) -> None:
    """Flags of ``ampsim verify synchronizer``."""
    parser.add_argument("--seeds", type=int, default=50, help="seeds per (graph, L, delay setting) (default 50)")
    parser.add_argument("--table1-literal", action="store_true", help="verify Table 1 exactly as printed")
    parser.add_argument("--graph", action="append", default=None, metavar="SPEC",
                        help="graph spec (repeatable; default: the 20-graph sweep)")
    parser.add_argument("--layers", action="append", type=int, default=None, metavar="L",
                        help="sGIN layers (repeatable; default 1 2 3 5)")
    parser.add_argument("--delay", action="append", choices=["constant", "uniform"], default=None,
                        help="delay models (repeatable; default both; uniform runs with FIFO off and on)")
    parser.add_argument("--aggregation", choices=["sum", "mean", "gcn"], default="sum")
    parser.add_argument("--dim", type=int, default=DEFAULT_DIM, help=f"sGIN dimension d (default {DEFAULT_DIM})")
    parser.add_argument("--loss", type=float, default=0.0, help="probability that a message copy is lost")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1; results are identical)")
    parser.add_argument("--no-relu", action="store_true", help="skip the ReLU-network check")
    add_executor_arguments(parser)  # --dask ADDRESS (ampsim.sweeps)
    parser.add_argument("--out", default=os.path.join("runs", "synchronizer"),
                        help="where the summary JSON and the smallest failing trace go (default runs/synchronizer; "
                             "the published summary: --out results/synchronizer)")
    parser.add_argument("--plot", action="store_true", help="also draw the messages-per-layer plot into --out")


def main(args: argparse.Namespace) -> int:
    """Run the sweep, print the table, save summary and smallest failure; exit 1 if any case fails."""
    rule = "table1-literal" if args.table1_literal else "synchronizer"
    if args.dim < 1:
        raise ValueError(f"--dim must be >= 1, got {args.dim}")
    cases = make_cases(
        graphs=args.graph or DEFAULT_GRAPHS,
        layers=args.layers or DEFAULT_LAYERS,
        seeds=args.seeds,
        rule=rule,
        delays=args.delay or ("constant", "uniform"),
        aggregation=args.aggregation,
        dim=args.dim,
        loss=args.loss,
    )
    t0 = time.perf_counter()
    with executor_from_args(args) as executor:  # None unless --dask
        results = sweep(cases, workers=args.workers, relu=not args.no_relu, executor=executor)
    wall = time.perf_counter() - t0
    summary = summarize(results)
    summary["args"] = {k: v for k, v in vars(args).items() if k not in ("func", "command", "target")}
    summary["rule"] = rule
    summary["wall_s"] = round(wall, 2)
    summary["workers"] = args.workers
    summary["budget"] = "20 * L * |E| + 2 * n processed deliveries"
    stem = rule.replace("-", "_")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        failures = sorted((r for r in results if r.failed), key=_size_key)
        if failures:
            trace_path, case_path = save_failure(failures[0], args.out, f"{stem}_smallest_failure")
            summary["smallest_failure"] = {"trace": trace_path, "case": case_path}
        path = os.path.join(args.out, f"{stem}_summary.json")
        write_text(path, json.dumps(summary, indent=1))
        if args.plot:
            plot_messages_per_layer(summary, os.path.join(args.out, "messages_per_layer.png"))
    print(f"{rule}: {len(cases)} cases in {wall:.1f} s ({args.workers} worker{'s' if args.workers > 1 else ''})")
    text = format_summary(summary, results)
    if args.out and "smallest_failure" in summary:
        head, last = text.rsplit("\n", 1)
        text = f"{head}\n  trace saved: {summary['smallest_failure']['trace']}\n{last}"
    print(text)
    return 0 if summary["passed"] == len(results) else 1
