"""Theorem 4.4 by execution: AMP with random delays distinguishes any pair of non-isomorphic graphs.

``ampsim verify separation --pair A,B [--pair ...] --seeds N`` reports two routes side by side.

**Route 1, constructive (the paper's argument).** Per seed the graph is relabelled at random
(a permutation from the seed), one node is the origin, and two AMP protocols run with delays
U(0, 1] on non-FIFO channels:

1. :class:`~ampsim.protocols.ids.UniqueIds` (Lemma 4.2 / Corollary 4.3) until the run is
   quiescent: every node of the origin's component holds a unique name;
2. :class:`GatherEdges` (below), started at every named node with its name as its feature:
   names make edges nameable, so every node learns the whole edge list of its component.

Each node then outputs a **complete** invariant of the graph it gathered (:func:`invariant`:
n, m, degrees, adjacency spectrum, clique counts up to size 4, and the canonical form, which alone
decides isomorphism; the cheaper fields say *why* two graphs differ). A run *passes* when both
phases end ``quiescent`` (never on the budget), the names are unique, and every node's edge list
is exactly its component, renamed. Each pair gets one of three outcomes: *separated* (every seed of
both graphs passes and no node output of A equals one of B; the first differing field is named),
*not separated*, or *isomorphic (control)*: the observer's isomorphism test only labels the controls
(:func:`covered`), it never decides a verdict. Graphs over :data:`MAX_NODES` nodes are refused.

The phases are composed by the observer: phase 2 starts once phase 1 is quiescent. A node
cannot detect that quiescence itself (it would need termination detection, hence its degree,
docs/ids.md); the theorem's argument assumes the IDs given, and so do we.

**Constant delays.** The ID protocol is refused under constant delays. What constant delays can
still separate is measured with a deterministic anonymous rule, :class:`Heard` (the state is the
sequence of payloads heard; the first deliveries emit how many were heard), run on random
relabellings of both graphs; its graph-level output is the multiset of final states. With
constant delays every run is a function of the *labelled* graph: simultaneous arrivals are
processed in (msg_id, neighbour index) order, which is not invariant under relabelling, so the
order-sensitive rule can tell some relabellings apart (docs/ids.md, the cycle:6 test). A pair counts
as separated by constant delays when no output of A over the relabellings tried equals one of B.
The order-blind control (:class:`Heard` with ``ordered=False``: the multiset of payloads) is
1-WL-like and separates no 1-WL-equivalent pair.

**Route 2, learned.** AMP-RNN (Table 2's protocol: one run per node, sum pooling) trained with
``ampsim.train.fit`` to classify A vs B, every sample a fresh random relabelling, with uniform and
with constant delays; test accuracy on fresh relabellings (and fresh delays), per seed.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Optional, Sequence

import networkx as nx

from .. import validate as V
from ..engine.messages import Message, NodeView
from ..engine.rng import derive_seed, stream
from ..engine.simulation import Simulation
from ..fileio import output_stem
from ..graphs import Graph, as_graph, parse_graph_spec
from ..protocols.ids import UniqueIds, format_id
from ..sweeps import (add_executor_arguments, add_max_cases, announce_cases, case_limit, executor_from_args,
                      run_map, starred)

__all__ = [
    "GatherEdges",
    "Heard",
    "ConstructiveRun",
    "PairReport",
    "DEFAULT_PAIRS",
    "default_pairs",
    "relabel",
    "invariant",
    "covered",
    "canonical_form",
    "MAX_NODES",
    "constructive_run",
    "constant_output",
    "constant_outputs",
    "learned_accuracy",
    "verify_pair",
    "configure",
    "main",
]

ID_BUDGET = 500_000
GATHER_BUDGET = 2_000_000


# ------------------------------------------------------------------ phase 2: gather the edge list
@dataclass(frozen=True, slots=True)
class GatherState:
    """A node's name (from the ID protocol) and the edges it knows, as sorted name pairs."""

    me: Any
    edges: frozenset = frozenset()


class GatherEdges:
    """Every node learns its component's edge list, given unique names as features (no other assumption).

    start: broadcast ``know(me, {})``. On ``know(sender, E)``: add the edge {me, sender} and E
    to what it knows; if that grew, broadcast ``know(me, knowledge)``. Knowledge only grows and is
    finite, so the run is quiescent after finitely many messages; at quiescence every node knows
    every edge of its component (an edge {u, v} is learnt by v from u's first message and then
    spread by every node whose knowledge grows).
    """

    name = "gather-edges"
    assumes = frozenset()

    def start(self, node: NodeView) -> tuple[GatherState, Optional[Message]]:
        return GatherState(node.features), None

    def receive(self, node: NodeView, state: GatherState, message: Message) -> tuple[GatherState, Optional[Message]]:
        if message.kind == "start":
            return state, Message("know", (state.me, state.edges))
        if message.kind != "know":
            return state, None
        sender, edges = message.payload
        edge = (state.me, sender) if state.me < sender else (sender, state.me)
        known = state.edges | edges | {edge}
        if known == state.edges:
            return state, None
        new = GatherState(state.me, known)
        return new, Message("know", (state.me, known))

    def finished(self, state: GatherState) -> bool:
        return True

    def summarize(self, payload: Any) -> str:
        return f"{payload[0]}: {len(payload[1])} edges" if isinstance(payload, tuple) else repr(payload)


class Heard:
    """Deterministic and anonymous: the state is the sequence of payloads heard (``ordered``) or their
    sorted multiset (not ``ordered``); each of the first ``k - 1`` deliveries emits how many
    messages the node has heard. Used to measure what constant delays separate."""

    name = "heard"
    assumes = frozenset()

    def __init__(self, k: int = 4, ordered: bool = True) -> None:
        self.k = k
        self.ordered = ordered

    def start(self, node: NodeView) -> tuple[tuple, None]:
        return (), None

    def receive(self, node: NodeView, state: tuple, message: Message) -> tuple[tuple, Optional[Message]]:
        heard = state + (message.payload,)
        if not self.ordered:
            heard = tuple(sorted(heard, key=repr))
        return heard, (Message("count", len(heard)) if len(heard) < self.k else None)

    def params(self) -> dict:
        return {"k": self.k, "ordered": self.ordered}


# ------------------------------------------------------------------ graphs, invariants
@lru_cache(maxsize=256)
def _spec_graph(spec: str) -> Graph:
    return parse_graph_spec(spec)


def relabel(graph: Graph, seed: int) -> tuple[Graph, list[int]]:
    """``graph`` with node v renamed ``perm[v]``, perm a uniform permutation from ``stream(seed, "relabel")``."""
    perm = list(range(graph.num_nodes))
    stream(seed, "relabel").shuffle(perm)
    g = nx.Graph()
    g.add_nodes_from(range(graph.num_nodes))
    g.add_edges_from((perm[u], perm[v]) for u, v in graph.edges)
    return as_graph(g, name=f"{graph.name}~{seed}"), perm


MAX_NODES = 100
"""Largest graph route 1 accepts. The canonical form itself is fast well beyond it (igraph's BLISS:
1.8 s for K_300, 0.2 s for a 3-regular graph on 2 000 nodes); what grows is the gather phase (each
message carries a node's whole edge list) and the clique counts, so larger graphs are refused with
a clear error rather than left to run for hours."""

CLIQUE_SIZES = 4


def canonical_form(g: nx.Graph) -> tuple:
    """A complete isomorphism invariant: (n, the edge list under the canonical labelling of
    ``igraph.Graph.canonical_permutation`` (BLISS), sorted). Two graphs have the same canonical form
    exactly when they are isomorphic; it does not depend on the node names."""
    import igraph

    nodes = sorted(g.nodes, key=repr)
    index = {v: i for i, v in enumerate(nodes)}
    ig = igraph.Graph(n=len(nodes), edges=[(index[u], index[v]) for u, v in g.edges])
    canon = ig.permute_vertices(ig.canonical_permutation())
    return (len(nodes), tuple(sorted((min(a, b), max(a, b)) for a, b in canon.get_edgelist())))


def invariant(g: nx.Graph) -> tuple:
    """A complete isomorphism invariant: (n, m, sorted degrees, adjacency spectrum to 1e-6, clique
    counts by size up to :data:`CLIQUE_SIZES`, :func:`canonical_form`). The canonical form alone
    decides isomorphism; the other fields come first so that the first field that differs says why."""
    return _invariant(frozenset(frozenset(e) for e in g.edges), frozenset(g.nodes))


@lru_cache(maxsize=1024)
def _invariant(edges: frozenset, nodes: frozenset) -> tuple:
    import numpy as np

    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(tuple(e) for e in edges)
    order = sorted(g.nodes, key=repr)
    spec = np.linalg.eigvalsh(nx.to_numpy_array(g, nodelist=order)) if order else np.zeros(0)
    cliques: dict[int, int] = {}
    for c in nx.enumerate_all_cliques(g):
        if len(c) > CLIQUE_SIZES:
            break
        cliques[len(c)] = cliques.get(len(c), 0) + 1
    return (g.number_of_nodes(), g.number_of_edges(), tuple(sorted(d for _, d in g.degree())),
            tuple(round(float(x), 6) + 0.0 for x in np.sort(spec)), tuple(sorted(cliques.items())),
            canonical_form(g))


def _components(spec: str) -> list[nx.Graph]:
    g = _spec_graph(spec).to_networkx()
    return [g.subgraph(c).copy() for c in nx.connected_components(g)]


@lru_cache(maxsize=4096)
def covered(spec_a: str, spec_b: str) -> bool:
    """Theorem 4.4 covers the pair when no component of A is isomorphic to a component of B
    (one origin explores only its component, so then every origin sees a different graph).
    The observer's ``networkx.is_isomorphic`` decides this; it only labels the controls (pairs not
    covered), never whether a pair is separated."""
    for ca in _components(spec_a):
        for cb in _components(spec_b):
            if nx.is_isomorphic(ca, cb):
                return False
    return True


# ------------------------------------------------------------------ route 1: constructive
@dataclass(frozen=True)
class ConstructiveRun:
    """One seed of route 1 on one graph: how both phases ended and what the nodes computed."""

    spec: str
    seed: int
    origin: int
    ids_reason: str
    ids_deliveries: int
    unique: bool
    gather_reason: str
    gather_deliveries: int
    exact: bool
    invariants: int  # distinct invariant values over the nodes (1 when all agree)
    value: Optional[tuple] = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """Both phases quiescent (not budget-cut), unique names, every node's edge list exact, one value."""
        return (self.ids_reason == "quiescent" and self.gather_reason == "quiescent" and self.unique
                and self.exact and self.invariants == 1)


def constructive_run(spec: str, seed: int) -> ConstructiveRun:
    """Route 1 on a random relabelling of ``spec``: IDs (uniform delays), then gather, then the invariant."""
    g, _ = relabel(_spec_graph(spec), seed)
    origin = stream(seed, "origin").randrange(g.num_nodes)
    ids = Simulation(g, UniqueIds(), delay="uniform", seed=derive_seed(seed, "ids"), start=origin,
                     budget=ID_BUDGET).run()
    names = [format_id(s.name) if s.name is not None else None for s in ids.states]
    named = [v for v, nm in enumerate(names) if nm is not None]
    nxg = g.to_networkx()
    component = nx.node_connected_component(nxg, origin)
    ids_reason = ids.reason
    if ids_reason == "stalled" and set(ids.stuck) == set(range(g.num_nodes)) - component:
        ids_reason = "quiescent"  # quiet; only the nodes no message can reach (other components) are unnamed
    unique = len({names[v] for v in named}) == len(named)
    gather = Simulation(g, GatherEdges(), delay="uniform", seed=derive_seed(seed, "gather"), start=named,
                        features=[nm if nm is not None else "?" for nm in names], budget=GATHER_BUDGET).run()
    truth = frozenset(tuple(sorted((names[u], names[v]))) for u, v in nxg.subgraph(component).edges)
    exact = set(named) == component and all(gather.states[v].edges == truth for v in named)
    values = {invariant(nx.Graph(list(gather.states[v].edges))) for v in named}
    return ConstructiveRun(spec, seed, origin, ids_reason, ids.total_deliveries, unique, gather.reason,
                           gather.total_deliveries, exact, len(values), next(iter(values)) if len(values) == 1 else None)


# ------------------------------------------------------------------ constant delays
def constant_output(graph: Graph, origin: int, ordered: bool = True) -> tuple:
    """Graph-level output of :class:`Heard` under constant delays: the sorted multiset of final states."""
    res = Simulation(graph, Heard(ordered=ordered), delay="constant", start=origin, budget=ID_BUDGET).run()
    return tuple(sorted(res.states, key=repr))


def constant_outputs(spec: str, seeds: Sequence[int], ordered: bool = True) -> list:
    """:func:`constant_output` on random relabellings of ``spec`` (random origin), one per seed."""
    out = []
    for s in seeds:
        g, _ = relabel(_spec_graph(spec), s)
        out.append(constant_output(g, stream(s, "origin").randrange(g.num_nodes), ordered))
    return out


# ------------------------------------------------------------------ route 2: learned
def _pair_task(spec_a: str, spec_b: str, seed: int, train_per_class: int, test_per_class: int):
    import torch

    from ..data.graphdata import GraphData
    from ..train.loop import TaskSpec

    def sample(spec: str, label: int, k: int) -> GraphData:
        g, _ = relabel(_spec_graph(spec), derive_seed(seed, f"learned/{spec}/{k}"))
        edges = sorted({(u, v) for a, b in g.edges for u, v in ((a, b), (b, a))})
        ei = torch.tensor(edges, dtype=torch.long).t().contiguous()
        return GraphData(ei, torch.ones(g.num_nodes, 1), torch.tensor([label]), g.num_nodes, "graph")

    train = [sample(s, c, k) for k in range(train_per_class) for c, s in enumerate((spec_a, spec_b))]
    test = [sample(s, c, 1000 + k) for k in range(test_per_class) for c, s in enumerate((spec_a, spec_b))]
    return TaskSpec(name=f"{spec_a} vs {spec_b}", train=train, tests={"test": test}, num_classes=2, hidden=16,
                    aggr="sum", readout="pool", budget_factor=5, msg_size=3, heads=1, in_features=1)


def learned_accuracy(spec_a: str, spec_b: str, delay: str, seed: int, epochs: int, train_per_class: int = 4,
                     test_per_class: int = 10) -> dict:
    """Train AMP-RNN with ``delay`` on relabelled copies of A and B (``ampsim.train.fit``); test accuracy."""
    from ..train import TrainConfig, fit

    task = _pair_task(spec_a, spec_b, seed, train_per_class, test_per_class)
    config = TrainConfig(task=f"pair:{spec_a},{spec_b}", model="amp-rnn", delay=delay, seed=seed, epochs=epochs)
    result = fit(config, task=task)
    return {"acc": result["test"]["test"]["acc"], "train_acc": result["train_acc"][-1] if result["train_acc"] else None,
            "loss": result["loss"][-1] if result["loss"] else None, "seconds": result["seconds_train_this_call"]}


# ------------------------------------------------------------------ one pair
@dataclass
class PairReport:
    """Everything measured on one pair."""

    a: str
    b: str
    covered: bool
    seeds: int
    runs_ok: int = 0
    runs: int = 0
    budget_cut: int = 0
    separated: bool = False
    outcome: str = ""  # "separated" | "not separated" | "isomorphic (control)"
    invariant_field: str = ""
    constant_fixed: Optional[bool] = None        # order-sensitive rule, the specs' own labelling, origin 0
    constant_blind_fixed: Optional[bool] = None  # order-blind rule, same
    constant_distinct: tuple = (0, 0)            # distinct outputs over the relabellings, A and B
    constant_overlap: int = 0                    # outputs of A's relabellings that some relabelling of B also gives
    learned: dict = field(default_factory=dict)
    seconds: float = 0.0


_FIELDS = ("n", "m", "degrees", "spectrum", "cliques", "canonical form")
OUTCOMES = ("separated", "not separated", "isomorphic (control)")


def verify_pair(spec_a: str, spec_b: str, seeds: int, relabellings: int = 20, learned: Optional[dict] = None) -> PairReport:
    """Route 1 over ``seeds`` seeds of both graphs, the constant-delay measurement over ``relabellings``,
    and route 2 when ``learned`` gives ``{"seeds", "epochs", "train_per_class", "test_per_class"}``."""
    t0 = time.perf_counter()
    rep = PairReport(spec_a, spec_b, covered(spec_a, spec_b), seeds)
    runs = {spec: [_constructive_cached(spec, s) for s in range(seeds)] for spec in (spec_a, spec_b)}
    all_runs = runs[spec_a] + runs[spec_b]
    rep.runs = len(all_runs)
    rep.runs_ok = sum(r.ok for r in all_runs)
    rep.budget_cut = sum(r.ids_reason == "message_budget" or r.gather_reason == "message_budget" for r in all_runs)
    va = {r.value for r in runs[spec_a] if r.ok}
    vb = {r.value for r in runs[spec_b] if r.ok}
    rep.separated = rep.runs_ok == rep.runs and not (va & vb)  # decided by the nodes' outputs alone
    if rep.separated:
        a0, b0 = next(iter(va)), next(iter(vb))
        rep.invariant_field = next(f for f, x, y in zip(_FIELDS, a0, b0) if x != y)
    rep.outcome = OUTCOMES[2] if not rep.covered else OUTCOMES[0] if rep.separated else OUTCOMES[1]
    ga, gb = _spec_graph(spec_a), _spec_graph(spec_b)
    rep.constant_fixed = constant_output(ga, 0) != constant_output(gb, 0)
    rep.constant_blind_fixed = constant_output(ga, 0, False) != constant_output(gb, 0, False)
    rel = range(relabellings)
    ca, cb = constant_outputs(spec_a, rel), constant_outputs(spec_b, rel)
    rep.constant_distinct = (len(set(ca)), len(set(cb)))
    rep.constant_overlap = sum(1 for o in ca if o in set(cb))
    if learned:
        for delay in ("uniform", "constant"):
            accs = [learned_accuracy(spec_a, spec_b, delay, s, learned["epochs"], learned["train_per_class"],
                                     learned["test_per_class"])["acc"] for s in range(learned["seeds"])]
            rep.learned[delay] = {"acc_mean": sum(accs) / len(accs), "accs": accs}
    rep.seconds = time.perf_counter() - t0
    return rep


@lru_cache(maxsize=4096)
def _constructive_cached(spec: str, seed: int) -> ConstructiveRun:
    return constructive_run(spec, seed)


def default_pairs() -> list[tuple[str, str]]:
    """Every pair of CSL(41, S), S in Table 2's skip lengths; rook:4 vs shrikhande; Figure 4's pairs."""
    from ..data.tasks import SKIP_LENGTHS

    csl = [(f"csl:41:{a}", f"csl:41:{b}") for a, b in itertools.combinations(SKIP_LENGTHS, 2)]
    return csl + [("rook:4", "shrikhande")] + [(f"figure4:{p}:1", f"figure4:{p}:2") for p in ("4a", "4b", "4c")]


DEFAULT_PAIRS = "every CSL(41, S) pair of Table 2's skip lengths (45), rook:4,shrikhande, figure4:4a/4b/4c"

QUICK_LEARNED_PAIRS = (("rook:4", "shrikhande"),)


# ------------------------------------------------------------------ CLI
def configure(parser: argparse.ArgumentParser) -> None:
    """Flags of ``ampsim verify separation``."""
    parser.description = "Theorem 4.4: random delays separate non-isomorphic graphs (constructive and learned routes)."
    parser.add_argument("--pair", action="append", default=None, metavar="SPEC_A,SPEC_B",
                        help=f"a pair of graph specs or edge-list files (repeatable; default: {DEFAULT_PAIRS})")
    parser.add_argument("--seeds", type=V.whole_flag(1), default=10, help="seeds (random relabelling + delays) per graph (default 10)")
    parser.add_argument("--relabellings", type=V.whole_flag(1), default=20,
                        help="random relabellings per graph for the constant-delay measurement (default 20)")
    parser.add_argument("--learned", choices=["off", "quick", "full"], default="quick",
                        help="route 2: off; quick (default: rook:4,shrikhande only when it is among the pairs, "
                             "2 seeds, 40 epochs, 4 training graphs per class); full (every pair, 10 seeds, 300 epochs, 8 per class)")
    parser.add_argument("--out", default=None, metavar="STEM",
                        help="also write the files STEM.json and STEM.md (STEM.json or STEM.md name them too; the "
                             "published run: --out results/separation); a folder, a device or a FIFO is refused; "
                             "default: print only")
    add_max_cases(parser, "runs")
    add_executor_arguments(parser)  # --dask ADDRESS (ampsim.sweeps)


SECONDS_PER_RUN = (0.002, 0.2)
"""One core's time of one run of a pair (one seed or one relabelling of one graph): the routes of route 1 on
graphs of up to MAX_NODES nodes."""


def _check_args(args: argparse.Namespace) -> list[tuple[str, str]]:
    V.positive_int("--seeds", args.seeds)
    V.positive_int("--relabellings", args.relabellings)
    pairs = []
    for text in args.pair or []:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"--pair takes SPEC_A,SPEC_B, got {text!r}")
        for spec in parts:
            n = _spec_graph(spec).num_nodes  # a bad spec fails here, before any run
            if n > MAX_NODES:
                raise ValueError(f"--pair: {spec} has {n} nodes; route 1 (every node gathers the whole graph "
                                 f"and outputs its canonical form) is practical up to {MAX_NODES} nodes")
        pairs.append((parts[0], parts[1]))
    return pairs or default_pairs()


def format_table(reports: Sequence[PairReport]) -> str:
    """The printed table; the last line is ``separated P/N`` (N = pairs the theorem covers)."""
    head = (f"{'pair':<30}{'covered':>8}{'runs ok':>10}{'budget':>7}  {'route 1':<21}{'by':<16}"
            f"{'const fixed':>12}{'blind':>6}{'const relabelled':>18}{'learned unif/const':>20}")
    lines = [head, "-" * len(head)]
    for r in reports:
        learned = ""
        if r.learned:
            learned = f"{r.learned['uniform']['acc_mean']:.2f}/{r.learned['constant']['acc_mean']:.2f}"
        lines.append(f"{r.a + ',' + r.b:<30}{'yes' if r.covered else 'no':>8}{f'{r.runs_ok}/{r.runs}':>10}"
                     f"{r.budget_cut:>7}  {r.outcome if r.outcome != OUTCOMES[1] else 'NOT SEPARATED':<21}"
                     f"{r.invariant_field:<16}"
                     f"{'yes' if r.constant_fixed else 'no':>12}{'yes' if r.constant_blind_fixed else 'no':>6}"
                     f"{f'{r.constant_distinct[0]}/{r.constant_distinct[1]} ov {r.constant_overlap}':>18}{learned:>20}")
    cov = [r for r in reports if r.covered]
    controls = [r for r in reports if not r.covered]
    lines.append(f"constant delays (non-isomorphic pairs only), the specs' labelling: the order-sensitive rule "
                 f"separates {sum(bool(r.constant_fixed) for r in cov)}/{len(cov)} pairs, the order-blind rule "
                 f"{sum(bool(r.constant_blind_fixed) for r in cov)}/{len(cov)}; relabelled at random, the "
                 f"order-sensitive output is a function of the graph (1 distinct output) for "
                 f"{sum(r.constant_distinct == (1, 1) for r in cov)}/{len(cov)} pairs")
    if controls:
        lines.append(f"isomorphic controls: {len(controls)}, separated by the nodes' outputs: "
                     f"{sum(r.separated for r in controls)} (must be 0)")
    lines.append(f"separated {sum(r.separated for r in cov)}/{len(cov)}")
    return "\n".join(lines)


def _markdown(reports: Sequence[PairReport], meta: dict) -> str:
    rows = ["| pair | covered | route 1 runs ok | budget-cut | route 1 outcome (nodes' outputs) | by | constant, spec labelling, "
            "order-sensitive | order-blind | constant, relabelled: distinct outputs A/B, overlap | "
            "learned acc uniform | learned acc constant |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lu = f"{r.learned['uniform']['acc_mean']:.2f}" if r.learned else "–"
        lc = f"{r.learned['constant']['acc_mean']:.2f}" if r.learned else "–"
        rows.append(f"| {r.a} vs {r.b} | {'yes' if r.covered else 'no'} | {r.runs_ok}/{r.runs} | {r.budget_cut} | "
                    f"{r.outcome if r.outcome != OUTCOMES[1] else '**not separated**'} | {r.invariant_field} | "
                    f"{'yes' if r.constant_fixed else 'no'} | {'yes' if r.constant_blind_fixed else 'no'} | "
                    f"{r.constant_distinct[0]}/{r.constant_distinct[1]}, {r.constant_overlap} | {lu} | {lc} |")
    cov = [r for r in reports if r.covered]
    return (f"# Theorem 4.4 by execution (generated by `{meta['command']}`)\n\n"
            f"Seeds per graph: {meta['seeds']}; relabellings for constant delays: {meta['relabellings']}; "
            f"learned route: {meta['learned']}. Wall time {meta['wall_s']:.0f} s.\n\n" + "\n".join(rows)
            + f"\n\n**separated {sum(r.separated for r in cov)}/{len(cov)}** (non-isomorphic pairs, by the "
            "nodes' outputs: n, m, degrees, spectrum, clique counts, canonical form; the first field that differs "
            "is named). Constant-delay counts are over the non-isomorphic pairs only. "
            "See docs/separation.md for what each column means.\n")


def main(args: argparse.Namespace) -> int:
    """Run every pair, print the table, write OUT.json/OUT.md; exit 1 if a non-isomorphic pair is not
    separated by the nodes' outputs, or an isomorphic control is."""
    pairs = _check_args(args)
    learned = None
    if args.learned == "quick":
        learned = {"seeds": 2, "epochs": 40, "train_per_class": 4, "test_per_class": 10}
    elif args.learned == "full":
        learned = {"seeds": 10, "epochs": 300, "train_per_class": 8, "test_per_class": 25}
    stem = output_stem(args.out, (".json", ".md")) if args.out is not None else None  # refused before the plan
    announce_cases(len(pairs) * 2 * (args.seeds + args.relabellings),
                   f"{len(pairs)} pairs x 2 graphs x ({args.seeds} seeds + {args.relabellings} relabellings)"
                   + ("" if learned is None else "; then the learned route"), 1, SECONDS_PER_RUN, case_limit(args),
                   unit="runs")
    t0 = time.perf_counter()
    tasks = [(a, b, args.seeds, args.relabellings,
              learned if (args.learned == "full" or (a, b) in QUICK_LEARNED_PAIRS) else None) for a, b in pairs]
    with executor_from_args(args) as executor:  # --dask (ampsim.sweeps); None: one pair after another, here
        reports = run_map(starred(verify_pair), tasks, executor=executor)
    wall = time.perf_counter() - t0
    text = format_table(reports)
    print(text)
    if stem:
        from ..fileio import write_json, write_text

        meta = {"command": "ampsim verify separation " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else
                "ampsim verify separation", "seeds": args.seeds, "relabellings": args.relabellings,
                "learned": args.learned, "learned_settings": learned, "wall_s": wall}
        folder = os.path.dirname(stem)
        if folder:
            os.makedirs(folder, exist_ok=True)
        write_json(stem + ".json", {"meta": meta, "pairs": [asdict(r) for r in reports]})
        write_text(stem + ".md", _markdown(reports, meta))
    return 0 if all(r.separated == r.covered for r in reports) else 1
