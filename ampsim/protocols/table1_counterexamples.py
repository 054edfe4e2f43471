"""Minimal Table 1 runs written by hand (Section 4.1, Table 1; docs/synchronizer.md, section 3):
scripted delays, the counterexample of each failure cause, and the search that found them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..engine.simulation import Simulation
from .sgin import SGIN, run_sgin
from .synchronizer import ORIGIN
from .sync_cases import RULES, Execution, _evaluate, _graph, _Recorder, budget_for

__all__ = ["Scripted", "Counterexample", "run_counterexample", "COUNTEREXAMPLES", "search_counterexamples",
           "EARLY_PULSE_RUN"]


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


FLAW_GRAPHS = ("path:2", "path:3", "path:4", "cycle:3", "star:3", "cycle:4", "complete:4", "path:5", "cycle:5",
               "star:4", "star:5", "cycle:6", "petersen")
"""The small graphs of :func:`smallest_flaw_failures`, smallest first."""


def smallest_flaw_failures(
    flaw_sets: Sequence[tuple],
    graphs: Sequence[str] = FLAW_GRAPHS,
    layers: Sequence[int] = (1, 2, 3),
    seeds: int = 10,
    delays: Sequence[str] = ("constant", "uniform"),
) -> dict:
    """For each flaw set: the smallest failing sweep case of Table 1 with only those flaws, or None.

    Cases are the sweep's (:func:`~.sync_cases.make_cases`: the seed draws features, weights, start
    node and delays) over ``graphs`` x ``layers`` x ``seeds`` x (constant; uniform; uniform FIFO),
    tried in the order (nodes, edges, L, seed, delay setting); the first failure of each set is kept.
    Returns ``flaws -> {"case", "outcome", "divergence", "first_actions", "tried"}``, where
    ``first_actions`` lists the first steps a present flaw changed (:func:`~.table1_flaws.flaw_actions`)
    and ``tried`` counts the cases run (all of them when none failed).
    """
    from .sync_cases import make_cases

    cases = make_cases(graphs=graphs, layers=layers, seeds=seeds, rule="table1-literal", delays=delays)
    order = sorted(cases, key=lambda c: (_graph(c.graph).num_nodes, _graph(c.graph).num_edges, c.layers, c.seed,
                                         c.delay, c.fifo))
    out: dict = {}
    for flaws in flaw_sets:
        flaws = tuple(sorted(flaws))
        found = None
        tried = 0
        for c in order:
            tried += 1
            case = _replace(c, flaws=flaws)
            ex = _run(case)
            if ex.outcome != "pass":
                found = {"case": case, "outcome": ex.outcome, "divergence": ex.divergence,
                         "first_actions": ex.causes[:8], "deliveries": ex.result.total_deliveries}
                break
        out[flaws] = {**(found or {"case": None}), "tried": tried}
    return out


def _replace(case, **kw):
    from dataclasses import replace

    return replace(case, **kw)


def _run(case) -> Execution:
    from .sync_cases import build_simulation

    sim, rec, ref = build_simulation(case)
    return _evaluate(sim, rec, ref, case.layers)
