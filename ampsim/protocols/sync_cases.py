"""One case of ``ampsim verify synchronizer`` (Section 4.1, Theorem 4.1): its inputs drawn from the
seed, its run, its classification against sGIN, and the sweep over many cases.

See :mod:`ampsim.protocols.verify_synchronizer` for the outcomes and the CLI.
"""
from __future__ import annotations

import functools
import math
import multiprocessing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

from ..engine.messages import Message, NodeView
from ..engine.rng import derive_seed, stream
from ..engine.simulation import Simulation
from ..graphs import Graph, parse_graph_spec
from .sgin import SGIN, run_sgin
from .synchronizer import ORIGIN, TABLE1_ROWS, Synchronizer, Table1Literal
from .table1_causes import literal_causes, synchronizer_events
from .table1_flaws import Table1Flawed, flaw_actions

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


def make_rule(case: "Case", model: SGIN) -> Any:
    """The case's NodeRule: Table 1 with only ``case.flaws`` (:mod:`.table1_flaws`) when given, else ``RULES[rule]``."""
    if case.flaws is not None:
        if case.rule != "table1-literal":
            raise ValueError("flaws select parts of Table 1: they need the table1-literal rule")
        return Table1Flawed(model, flaws=case.flaws)
    return RULES[case.rule](model)


def budget_for(graph: Graph, layers: int) -> int:
    """Processed deliveries a case may use: 20 · L · ``|E|`` + 2n."""
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
    flaws: Optional[tuple] = None

    def label(self) -> str:
        rule = self.rule if self.flaws is None else f"{self.rule}[{','.join(self.flaws) or 'none'}]"
        return (f"{rule} {self.graph} L={self.layers} seed={self.seed} {self.delay}"
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
    rule = make_rule(case, model)
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
    if isinstance(rec.rule, Table1Literal):
        causes = literal_causes(rec.rule, rec.steps, index)
    elif isinstance(rec.rule, Table1Flawed):
        causes = flaw_actions(rec.rule, rec.steps, index)
    else:
        causes = []
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
    flaws: Optional[tuple] = None,
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
        Case(spec, L, seed, delay, fifo, rule, aggregation, dim, loss, flaws)
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
