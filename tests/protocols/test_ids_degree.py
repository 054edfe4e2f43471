"""The degree-aware ID rule (``DegreeAwareIds``) and ``ampsim verify ids --variant``: exact costs, unique IDs."""
from __future__ import annotations

import pytest

from ampsim import AssumptionError, Message, NodeView, Simulation, parse_graph_spec
from ampsim.cli import main
from ampsim.protocols import get_rule
from ampsim.protocols.ids import CALL, FINAL, JOIN, NAME, SPLIT_A, SPLIT_B, ACK, DegreeAwareIds, DegreeIdState
from ampsim.protocols.verify_ids import run_ids


def test_declares_degree_and_is_registered():
    rule = get_rule("ids-degree")
    assert isinstance(rule, DegreeAwareIds)
    assert rule.assumes == {"random_delays", "overtaking", "degree"}
    with pytest.raises(AssumptionError, match="needs random message delays"):
        Simulation(parse_graph_spec("star:3"), DegreeAwareIds(), delay="constant")


def test_centre_waits_for_every_neighbour_then_splits_and_hands_on():
    rule, centre = DegreeAwareIds(), NodeView(degree=2)
    s, m = rule.receive(centre, DegreeIdState(), Message("start"))
    assert s.name == () and m == Message(CALL, ())
    s, m = rule.receive(centre, s, Message(JOIN, ("",)))
    assert m is None and s.heard == 1  # one neighbour still unheard: no split yet
    s, m = rule.receive(centre, s, Message(JOIN, ("",)))
    assert m == Message(SPLIT_A, ((), ("",))) and s.groups == (("", 2, 2),)
    s, m = rule.receive(centre, s, Message(ACK, ("",)))
    assert m == Message(SPLIT_B, ((), ""))
    s, m = rule.receive(centre, s, Message(NAME, ("0",)))
    assert m is None
    s, m = rule.receive(centre, s, Message(NAME, ("1",)))  # both reports in, both labels alone: done
    assert m == Message(FINAL, ()) and rule.finished(s)


def test_child_with_all_neighbours_named_finishes_silently():
    rule, leaf = DegreeAwareIds(), NodeView(degree=1)
    s, m = rule.receive(leaf, DegreeIdState(), Message(CALL, ()))
    assert s.name == ("",) and s.heard == 1 and m == Message(JOIN, ("",))
    s, m = rule.receive(leaf, s, Message(FINAL, ()))
    assert m is None and rule.finished(s)


def test_exact_deliveries_on_small_graphs_both_variants():
    """Seed 3, start 0: star:3 40 vs 30, path:4 7 vs 16, cycle:5 137 vs 45 deliveries; names unique."""
    expected = {("star:3", "plain"): 40, ("star:3", "degree-aware"): 30, ("path:4", "plain"): 7,
                ("path:4", "degree-aware"): 16, ("cycle:5", "plain"): 137, ("cycle:5", "degree-aware"): 45}
    for (spec, variant), deliveries in expected.items():
        run = run_ids(spec, 3, variant=variant)
        assert (run.deliveries, run.reason, run.ok, run.variant) == (deliveries, "quiescent", True, variant)


@pytest.mark.parametrize("spec", ["star:6", "path:7", "cycle:8", "grid:3x4", "petersen", "random-regular:3:16:5",
                                  "complete:7", "tree:15:3"])
def test_degree_aware_ids_unique_on_graphs(spec):
    for seed in range(10):
        run = run_ids(spec, seed, start="vary", variant="degree-aware")
        assert run.ok, run


def test_cli_variant_both_compares(capsys):
    assert main(["verify", "ids", "--variant", "both", "--graph", "cycle:5", "--seeds", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("cycle:5 [plain] (n=5): unique 4/4;")
    assert lines[1].startswith("cycle:5 [degree-aware] (n=5): unique 4/4;")
    assert lines[2] == "compare cycle:5: deliveries mean plain 229.0, degree-aware 119.5 (ratio 0.52)"
    assert lines[3] == "unique 8/8"


def test_cli_bad_variant_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "ids", "--graph", "star:3", "--variant", "degree"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'degree'" in err and err.count("\n") == 1
