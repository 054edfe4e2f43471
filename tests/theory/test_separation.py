"""Theorem 4.4 by execution (ampsim.theory.separation): IDs -> gathered edge list -> an invariant."""
from __future__ import annotations

from ampsim.cli import main as cli_main
from ampsim.engine.simulation import Simulation
from ampsim.graphs import parse_graph_spec
import networkx as nx

from ampsim.theory.separation import (
    MAX_NODES,
    GatherEdges,
    canonical_form,
    constant_output,
    constructive_run,
    covered,
    invariant,
    relabel,
    verify_pair,
)


def test_gather_edges_learns_the_whole_component_from_names():
    g = parse_graph_spec("petersen")
    names = [f"n{v:02d}" for v in range(10)]
    res = Simulation(g, GatherEdges(), delay="uniform", seed=4, start=list(range(10)), features=names).run()
    truth = frozenset(tuple(sorted((names[u], names[v]))) for u, v in g.edges)
    assert res.reason == "quiescent"
    assert all(s.edges == truth for s in res.states)


def test_constructive_run_is_quiescent_unique_and_exact():
    r = constructive_run("rook:4", 0)
    assert r.ok and r.ids_reason == "quiescent" and r.gather_reason == "quiescent" and r.invariants == 1
    assert r.value == invariant(parse_graph_spec("rook:4").to_networkx())
    other = constructive_run("shrikhande", 0)
    assert other.ok and other.value != r.value
    assert r.value[4] != other.value[4] and r.value[:4] == other.value[:4]  # clique counts differ first
    assert r.value[5] != other.value[5]  # and the canonical form


def test_canonical_form_is_complete_on_pairs_the_cheaper_fields_miss():
    """Relabelled copies get the same canonical form; the cospectral trees with equal degrees, which
    agree on n, m, degrees, spectrum and clique counts, do not."""
    g = parse_graph_spec("csl:41:3")
    assert canonical_form(relabel(g, 3)[0].to_networkx()) == canonical_form(g.to_networkx())
    assert canonical_form(nx.relabel_nodes(g.to_networkx(), {v: f"x{v}" for v in range(41)})) == \
        canonical_form(g.to_networkx())
    t1, t2 = (parse_graph_spec(f"cotrees:{k}").to_networkx() for k in (1, 2))
    assert not nx.is_isomorphic(t1, t2)
    assert invariant(t1)[:5] == invariant(t2)[:5] and invariant(t1)[5] != invariant(t2)[5]
    assert canonical_form(t1)[0] == 9 and len(canonical_form(t1)[1]) == 8


def test_relabel_is_a_random_isomorphic_copy():
    g = parse_graph_spec("csl:41:3")
    h, perm = relabel(g, 7)
    assert sorted(perm) == list(range(41)) and perm != list(range(41))
    assert {tuple(sorted((perm[u], perm[v]))) for u, v in g.edges} == {tuple(sorted(e)) for e in h.edges}


def test_covered_pairs():
    assert covered("rook:4", "shrikhande") and covered("csl:41:2", "csl:41:3")
    assert covered("figure4:4a:1", "figure4:4a:2")  # two 4-cycles vs one 8-cycle: no common component
    assert not covered("cycle:6", "cycle:6")


def test_verify_pair_separates_rook_and_shrikhande_and_not_a_graph_from_itself():
    rep = verify_pair("rook:4", "shrikhande", seeds=2, relabellings=3)
    assert rep.covered and rep.separated and rep.runs_ok == rep.runs == 4 and rep.budget_cut == 0
    assert rep.invariant_field == "cliques" and rep.outcome == "separated"
    same = verify_pair("cycle:6", "cycle:6", seeds=2, relabellings=3)
    assert not same.covered and not same.separated and same.outcome == "isomorphic (control)"


def test_the_nodes_outputs_separate_cospectral_trees_by_their_canonical_form():
    rep = verify_pair("cotrees:1", "cotrees:2", seeds=2, relabellings=2)
    assert rep.covered and rep.runs_ok == rep.runs == 4
    assert rep.separated and rep.outcome == "separated" and rep.invariant_field == "canonical form"


def test_constant_delays_depend_on_the_labelling():
    """The order-sensitive rule's output under constant delays is not an isomorphism invariant:
    two labellings of the same graph can give different outputs (the tie-break order)."""
    g = parse_graph_spec("cycle:6")
    outs = {constant_output(relabel(g, s)[0], 0) for s in range(6)}
    blind = {constant_output(relabel(g, s)[0], 0, ordered=False) for s in range(6)}
    assert len(outs) > 1 and len(blind) == 1


def test_cli_table_last_line_and_exit_status(tmp_path, capsys):
    out = tmp_path / "sep"
    rc = cli_main(["verify", "separation", "--pair", "rook:4,shrikhande", "--seeds", "2", "--relabellings", "2",
                   "--learned", "off", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and text.strip().splitlines()[-1] == "separated 1/1"
    assert (tmp_path / "sep.json").exists() and (tmp_path / "sep.md").exists()
    rc = cli_main(["verify", "separation", "--pair", "rook:4", "--learned", "off", "--out", ""])
    assert rc != 0 and "--pair takes SPEC_A,SPEC_B" in capsys.readouterr().err
    rc = cli_main(["verify", "separation", "--pair", f"cycle:{MAX_NODES + 1},path:4", "--learned", "off"])
    err = capsys.readouterr().err
    assert rc == 2 and f"cycle:{MAX_NODES + 1} has {MAX_NODES + 1} nodes" in err and f"up to {MAX_NODES} nodes" in err


def test_cli_counts_controls_apart(capsys):
    rc = cli_main(["verify", "separation", "--pair", "cotrees:1,cotrees:2", "--pair", "cycle:6,cycle:6",
                   "--seeds", "1", "--relabellings", "2", "--learned", "off"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and lines[-1] == "separated 1/1"
    assert lines[-2] == "isomorphic controls: 1, separated by the nodes' outputs: 0 (must be 0)"
    assert lines[-3].startswith("constant delays (non-isomorphic pairs only)") and "1/1 pairs" in lines[-3]
