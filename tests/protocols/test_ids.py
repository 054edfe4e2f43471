"""Unique IDs from random delays (Lemma 4.2, Corollary 4.3): the state machine row by row, stars,
general graphs, and why constant delays cannot work (automorphic leaves stay identical)."""
from __future__ import annotations

from collections import defaultdict

import networkx as nx
import pytest

from ampsim import AssumptionError, ListTracer, Message, NodeView, Simulation, StateRecord, parse_graph_spec
from ampsim.protocols import Flooding, get_rule
from ampsim.protocols.ids import (
    ACK,
    CLOSE,
    NAME,
    SPLIT_A,
    SPLIT_B,
    IdState,
    UniqueIds,
    format_id,
    is_newer,
    rank_ids,
)
from ampsim.protocols.verify_ids import fixed_graph_specs, random_graph_specs, run_ids

NODE = NodeView()
RULE = UniqueIds()


def step(state, kind, payload=None):
    return RULE.receive(NODE, state, Message(kind, payload))


# ------------------------------------------------------------------ the table, row by row
def test_declares_only_random_delays_and_is_registered():
    assert UniqueIds.assumes == frozenset({"random_delays", "overtaking"})
    assert isinstance(get_rule("ids"), UniqueIds)
    state, out = RULE.start(NODE)
    assert state == IdState() and out is None and not RULE.finished(state)


def test_unnamed_rows():
    assert step(IdState(), "start") == (IdState(()), Message(NAME, ()))
    # any protocol message names its sender; the node joins it with an empty label
    assert step(IdState(), NAME, ("0",)) == (IdState(("0", "")), Message(NAME, ("0", "")))
    assert step(IdState(), SPLIT_A, (("1",), "2")) == (IdState(("1", "")), Message(NAME, ("1", "")))
    assert step(IdState(), ACK, ("", "0")) == (IdState(("", "0", "")), Message(NAME, ("", "0", "")))
    assert step(IdState(), "flood", 3) == (IdState(), None)  # not ours: no name to join
    assert RULE.finished(IdState(()))


def test_centre_counts_reports_splits_resends_and_closes():
    root = IdState(())
    s1, out = step(root, NAME, ("",))
    assert s1 == IdState((), star=(("", 1),)) and out is None
    s2, out = step(s1, NAME, ("",))
    assert s2 == IdState((), star=(("", 2),)) and out == Message(SPLIT_A, ((), ""))
    s3, out = step(s2, NAME, ("",))  # a late report while splitting: A again
    assert s3 == s2 and out == Message(SPLIT_A, ((), ""))
    s4, out = step(s3, ACK, ("",))
    assert s4 == IdState((), star=(("", 3),)) and out == Message(SPLIT_B, ((), ""))
    assert step(s4, ACK, ("",)) == (s4, None)  # later acks: B already sent
    assert step(s4, NAME, ("",)) == (s4, Message(CLOSE, ((), "")))  # a report after B: close
    # other labels are counted separately; acks before any A are ignored
    s5, out = step(s4, NAME, ("1",))
    assert s5.star == (("", 3), ("1", 1)) and out is None
    assert step(s5, ACK, ("1",)) == (s5, None)
    # reports addressed to another centre, or from grandchildren, are ignored
    assert step(s5, NAME, ("0", "")) == (s5, None)
    inner = IdState(("0",))
    assert step(inner, NAME, ("1", "")) == (inner, None)
    assert step(inner, NAME, ("0", "")) == (IdState(("0",), star=(("", 1),)), None)


def test_child_race_of_a_and_b():
    child = IdState(("0", "1"))
    # A first: remember it and acknowledge; then B: move to label + "0"
    s, out = step(child, SPLIT_A, (("0",), "1"))
    assert s == IdState(("0", "1"), a=True) and out == Message(ACK, ("0", "1"))
    s2, out = step(s, SPLIT_A, (("0",), "1"))  # every A is acknowledged
    assert s2 == s and out == Message(ACK, ("0", "1"))
    assert step(s, SPLIT_B, (("0",), "1")) == (IdState(("0", "10")), Message(NAME, ("0", "10")))
    # B first: remember it silently; then A: move to label + "1"
    s, out = step(child, SPLIT_B, (("0",), "1"))
    assert s == IdState(("0", "1"), b=True) and out is None
    assert step(s, SPLIT_A, (("0",), "1")) == (IdState(("0", "11")), Message(NAME, ("0", "11")))
    # close: label + "2", and the star of the old name is forgotten
    busy = IdState(("0", "1"), a=True, star=(("", 2),))
    assert step(busy, CLOSE, (("0",), "1")) == (IdState(("0", "12")), Message(NAME, ("0", "12")))
    # messages for another label or another centre change nothing
    for kind in (SPLIT_A, SPLIT_B, CLOSE):
        assert step(child, kind, (("0",), "0")) == (child, None)
        assert step(child, kind, (("1",), "1")) == (child, None)
    root = IdState(())
    assert step(root, SPLIT_A, ((), "")) == (root, None)


def test_child_follows_its_parents_new_name():
    child = IdState(("0", "1"), a=True, star=(("", 1),))
    # the parent ("0") became ("01"): same label, new name, fresh split flags and star
    assert step(child, NAME, ("01",)) == (IdState(("01", "1")), Message(NAME, ("01", "1")))
    deep = IdState(("0", "", "2"))
    assert step(deep, NAME, ("02", "1")) == (IdState(("02", "1", "2")), Message(NAME, ("02", "1", "2")))
    # not newer: equal, a sibling branch, another length
    for other in (("0",), ("1",), ("00", "1")):
        assert step(child, NAME, other) == (child, None)


def test_is_newer_format_and_rank():
    assert is_newer(("01",), ("0",)) and is_newer(("01", "2"), ("0", "")) and is_newer(("", "1"), ("", ""))
    assert not is_newer(("0",), ("0",)) and not is_newer(("1",), ("0",)) and not is_newer(("0", ""), ("0",))
    assert not is_newer(("0",), ("01",))
    assert format_id(()) == "r" and format_id(("", "01")) == "r._.01" and format_id(None) == "?"
    assert rank_ids([("1",), (), ("0", ""), ("0",), None]) == [2, 0, 3, 1, None]
    assert RULE.summarize_state(IdState(("0",), a=True, star=(("", 3), ("1", 2)))) == "r.0 a {_:D,1:S}"
    assert RULE.summarize((("0",), "")) == "r.0/_" and RULE.summarize(("", "1")) == "r._.1"


# ------------------------------------------------------------------ runs
def names_of(result):
    return [s.name for s in result.states]


@pytest.mark.parametrize("k", range(1, 9))
def test_star_ids_unique_and_quiescent(k):
    """Lemma 4.2 on a deterministic subset: 60 seeds per k (the full 1000-seed check: results/ids/)."""
    for seed in range(60):
        run = run_ids(f"star:{k}", seed)
        assert run.ok, run
        assert run.reason == "quiescent" and run.distinct == k + 1


def test_star_run_exact_small_case():
    """star:2, seed 0: the exact final names and the parent structure (every child names its centre)."""
    sim = Simulation(nx.star_graph(2), UniqueIds(), delay="uniform", seed=0)
    result = sim.run()
    names = names_of(result)
    assert result.reason == "quiescent" and names[0] == ()
    assert sorted(names[1:]) == sorted(set(names[1:])) and all(len(n) == 1 for n in names[1:])
    again = Simulation(nx.star_graph(2), UniqueIds(), delay="uniform", seed=0).run()
    assert names_of(again) == names and again.time == result.time and again.deliveries == result.deliveries


def check_tree(graph, names):
    """Every non-root name is a neighbour's name plus one label: the names form a spanning tree."""
    by_name = {n: v for v, n in enumerate(names)}
    assert len(by_name) == len(names)
    for v, n in enumerate(names):
        if n:
            assert by_name[n[:-1]] in graph.neighbors[v]


@pytest.mark.parametrize("spec", fixed_graph_specs())
def test_corollary_on_named_graphs(spec):
    g = parse_graph_spec(spec)
    for seed in range(3):
        sim = Simulation(g, UniqueIds(), delay="uniform", seed=seed, start=seed % g.num_nodes, budget=500_000)
        result = sim.run()
        assert result.reason == "quiescent", (spec, seed)
        check_tree(g, names_of(result))


def test_corollary_on_random_graphs_subset():
    """25 of the 200 random graphs, 2 seeds each, varying start node (all 200: results/ids/)."""
    for spec in random_graph_specs(200)[::8]:
        for seed in range(2):
            run = run_ids(spec, seed, start="vary")
            assert run.ok, run


def test_general_rows_fire_on_dense_graphs():
    """On the Petersen graph children follow renamed parents (the *general* rows) and still end unique."""
    tracer = ListTracer(states=False)
    sim = Simulation(nx.petersen_graph(), UniqueIds(), delay="uniform", seed=0, tracer=tracer)
    result = sim.run()
    assert result.reason == "quiescent"
    sent = [r for r in tracer.messages if r.event == "send" and r.kind == NAME]
    names_sent = {}
    renames = 0
    for r in sent:  # a node's successive names; a rename changes an entry other than the last
        prev = names_sent.get(r.src)
        cur = eval_name(r.payload)
        if prev is not None and len(prev) == len(cur) and prev[:-1] != cur[:-1]:
            renames += 1
        names_sent[r.src] = cur
    assert renames > 0
    check_tree(sim.graph, names_of(result))


def eval_name(text):
    """Parse ``format_id`` text back into a name."""
    parts = text.split(".")
    assert parts[0] == "r"
    return tuple("" if p == "_" else p for p in parts[1:])


def test_start_at_a_leaf_and_finished_hook():
    g = nx.star_graph(5)
    result = Simulation(g, UniqueIds(), delay="uniform", seed=2, start=3).run()
    names = names_of(result)
    assert result.reason == "quiescent" and names[3] == () and names[0] == ("",)
    assert len(set(names)) == 6
    # no start message: nobody is ever named, and the run says which nodes are stuck
    quiet = Simulation(g, UniqueIds(), delay="uniform", seed=2, start=None).run()
    assert quiet.reason == "stalled" and quiet.stuck == tuple(range(6))


# ------------------------------------------------------------------ constant delays (Section 4.3)
def test_engine_refuses_under_constant_delays():
    with pytest.raises(AssumptionError, match="needs random message delays"):
        Simulation(nx.star_graph(4), UniqueIds(), delay="constant")


def test_engine_refuses_fifo_channels():
    with pytest.raises(AssumptionError, match="overtake each other on an edge"):
        Simulation(nx.star_graph(4), UniqueIds(), delay="uniform", fifo=True)
    with pytest.raises(AssumptionError, match="overtake"):
        run_ids("star:3", 0, fifo=True)


def test_fifo_channels_never_split_a_group():
    """Why FIFO is refused: on a FIFO edge B never overtakes A, so every child of a split gets "0";
    star:2 never separates its leaves and the run ends on the budget."""
    sim = Simulation(nx.star_graph(2), WithoutAssumptions(UniqueIds()), delay="uniform", fifo=True, seed=3,
                     start=0, budget=2000)
    result = sim.run()
    assert result.reason == "message_budget"
    a, b = result.states[1].name, result.states[2].name
    assert a[-1][:40] == b[-1][:40] and set(a[-1][:-1]) <= {"0"}


class WithoutAssumptions:
    """The same rule with its declaration removed, to watch what constant delays do to it."""

    def __init__(self, rule):
        self.rule = rule
        self.name = rule.name
        self.assumes = frozenset()
        self.start = rule.start
        self.receive = rule.receive
        if hasattr(rule, "summarize_state"):
            self.summarize_state = rule.summarize_state


def leaf_histories(records, leaves):
    """Per leaf: its (time, state) after start-up and after every delivery, from the StateRecords."""
    hist = defaultdict(list)
    for r in records:
        if isinstance(r, StateRecord) and r.node in leaves:
            hist[r.node].append((r.t, r.state))
    return hist


def states_at_each_instant(records, n):
    """After all deliveries of each instant, every node's current state."""
    current = [None] * n
    snapshots = []
    states = [r for r in records if isinstance(r, StateRecord)]
    for i, r in enumerate(states):
        current[r.node] = r.state
        if i + 1 == len(states) or states[i + 1].t != r.t:
            snapshots.append((r.t, tuple(current)))
    return snapshots


@pytest.mark.parametrize("rule", [UniqueIds(), Flooding()], ids=["ids", "flooding"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_automorphic_leaves_stay_identical_under_constant_delays(rule, k):
    tracer = ListTracer(states=True)
    sim = Simulation(nx.star_graph(k), WithoutAssumptions(rule), delay="constant", tracer=tracer, budget=600)
    result = sim.run()
    leaves = set(range(1, k + 1))
    hist = leaf_histories(tracer.records, leaves)
    assert len(hist[1]) > 1
    assert all(hist[v] == hist[1] for v in leaves)  # same states at the same times, step for step
    snapshots = states_at_each_instant(tracer.records, k + 1)
    assert all(len({snap[v] for v in leaves}) == 1 for _, snap in snapshots)
    final = {sim.rule.summarize_state(s) if hasattr(sim.rule, "summarize_state") else s
             for s in (result.states[v] for v in leaves)}
    assert len(final) == 1  # the leaves end (or stop) with one shared state: no IDs possible
    if isinstance(rule, UniqueIds):
        # the labels only ever grow by "0": the run never settles and stops at the budget
        assert result.reason == "message_budget"
        label = result.states[1].name[-1]
        assert len(label) > 10 and set(label) == {"0"}
    else:
        assert result.reason == "quiescent"


# ------------------------------------------------------------------ what the constant-delay argument covers
class Heard:
    """A deterministic anonymous rule: the state is the tuple of payloads heard so far; each of the
    first ``k - 1`` deliveries emits how many messages the node has heard."""

    name = "heard"
    assumes = frozenset()

    def __init__(self, k=4):
        self.k = k

    def start(self, node):
        return (), None

    def receive(self, node, state, message):
        state = state + (message.payload,)
        return state, (Message("count", len(state)) if len(state) < self.k else None)


def test_tie_break_order_breaks_mirror_symmetry_of_cycle6_under_constant_delays():
    """cycle:6 started at node 0 has the mirror automorphism v -> -v mod 6, yet under constant delays
    nodes 1 and 5 (and 2 and 4) end in different states: the engine processes simultaneous arrivals
    in (msg_id, neighbour index) order, which is not invariant under the mirror. At t = 3 node 1
    hears node 0's count 3 after node 2's count 1, node 5 hears it before node 4's."""
    result = Simulation(nx.cycle_graph(6), Heard(4), delay="constant", start=0).run()
    assert result.reason == "quiescent"
    assert result.states[1] == (1, 2, 1, 3, 2, 3) and result.states[5] == (1, 2, 3, 1, 2, 3)
    assert result.states[2] != result.states[4]


def test_star_started_at_its_centre_keeps_leaves_identical_for_the_same_rule():
    """What the constant-delay argument does prove: on a star started at its centre every leaf hears
    only the centre, whose broadcasts reach all leaves at the same instant, so any deterministic
    rule -- this one included -- leaves every leaf in the same state, whatever the tie-break."""
    result = Simulation(nx.star_graph(5), Heard(4), delay="constant", start=0).run()
    assert result.reason == "quiescent"
    assert len({result.states[v] for v in range(1, 6)}) == 1 and result.states[1] == (1, 2, 3)


class HistoryHash:
    """Deterministic and anonymous: the state is the tuple of payloads heard; each of the first
    ``k - 1`` deliveries broadcasts a hash of that history."""

    name = "history-hash"
    assumes = frozenset()

    def __init__(self, k):
        self.k = k

    def start(self, node):
        return (), None

    def receive(self, node, state, message):
        import hashlib

        state = state + (message.payload,)
        digest = hashlib.sha256(repr(state).encode()).hexdigest()[:8]
        return state, (Message("h", digest) if len(state) < self.k else None)


def test_engine_tie_order_alone_gives_unique_histories_on_cycle6_under_constant_delays():
    """Not the model's doing: constant delays draw nothing (every seed gives the same run), the
    engine's order of simultaneous arrivals breaks the symmetry (docs/ids.md, constant delays)."""
    def unique(n, k, start, seed=0):
        states = Simulation(nx.cycle_graph(n), HistoryHash(k), delay="constant", start=start, seed=seed).run().states
        return len(set(states)) == n

    assert [sum(unique(6, k, s, seed) for s in range(6) for seed in range(6)) for k in (2, 3, 4, 5, 6, 8)] == \
        [0, 24, 36, 36, 36, 36]
    assert [unique(6, 3, s) for s in range(6)] == [False, False, True, True, True, True]
    assert [sum(unique(n, 4, s) for s in range(n)) for n in (4, 5, 7, 8, 10)] == [0, 5, 7, 8, 10]


def test_constant_delay_refusal_says_the_model_gives_no_randomness():
    with pytest.raises(AssumptionError) as info:
        Simulation(nx.cycle_graph(6), UniqueIds(), delay="constant", start=0)
    assert ("the model gives no randomness under constant delays; any symmetry breaking comes from the "
            "engine's deterministic tie order, which is not part of the model") in str(info.value)
