"""``ampsim verify synchronizer``: cases, outcomes, first divergence, saved traces, the CLI contract."""
from __future__ import annotations

import json

import pytest

from ampsim.cli import main as cli_main
from ampsim.graphs import parse_graph_spec
from ampsim.trace.io import load_trace
from ampsim.protocols.verify_synchronizer import (
    DEFAULT_GRAPHS,
    Case,
    budget_for,
    make_cases,
    replay_case,
    run_case,
    summarize,
    sweep,
)


def test_default_sweep_covers_the_issue():
    kinds = {spec.split(":")[0] for spec in DEFAULT_GRAPHS}
    assert len(DEFAULT_GRAPHS) >= 20
    assert kinds == {"path", "cycle", "star", "complete", "petersen", "grid", "tree", "random-regular", "gnp"}
    assert max(parse_graph_spec(s).num_nodes for s in DEFAULT_GRAPHS) == 50
    cases = make_cases(seeds=50)
    assert len(cases) == len(DEFAULT_GRAPHS) * 4 * 50 * 3
    settings = {(c.delay, c.fifo) for c in cases}
    assert settings == {("constant", True), ("uniform", False), ("uniform", True)}
    assert cases[:3] == [Case("path:2", 1, 0, "constant", True), Case("path:2", 1, 0, "uniform", False),
                         Case("path:2", 1, 0, "uniform", True)]


def test_bad_sweep_arguments():
    with pytest.raises(ValueError, match="--seeds"):
        make_cases(seeds=0)
    with pytest.raises(ValueError, match="--layers"):
        make_cases(layers=[0])
    with pytest.raises(ValueError, match="unknown rule"):
        make_cases(rule="gossip")
    with pytest.raises(ValueError, match="delay model"):
        make_cases(delays=["poisson"])
    with pytest.raises(ValueError, match="--workers"):
        sweep([], workers=0)


def test_budget_is_proportional_to_L_times_E():
    assert budget_for(parse_graph_spec("petersen"), 3) == 20 * 3 * 15 + 2 * 10


def test_a_corrected_case_passes_and_its_relu_check_runs():
    r = run_case(Case("petersen", 3, 4, "uniform", False))
    assert (r.outcome, r.reason, r.stuck, r.divergence) == ("pass", "quiescent", (), None)
    assert r.relu_steps == r.deliveries and r.relu_mismatches == 0
    assert r.max_error < 1e-12 and not r.failed


def test_a_literal_case_fails_with_its_first_divergence():
    r = run_case(Case("cycle:3", 1, 0, "constant", True, rule="table1-literal"))
    assert (r.outcome, r.start) == ("wrong", 0)
    d = r.divergence
    assert (d.node, d.pulse, d.row) == (0, 1, "w=0") and d.got != d.expected
    assert r.causes == ("origin-keeps-state",)
    r = run_case(Case("path:2", 2, 0, "constant", True, rule="table1-literal"))
    assert r.outcome == "deadlock" and r.stuck and "degree-one" in r.causes


def test_workers_give_identical_results():
    cases = make_cases(graphs=["star:4", "cycle:5"], layers=[2], seeds=3) \
        + make_cases(graphs=["cycle:3"], layers=[2], seeds=2, rule="table1-literal")
    assert sweep(cases, workers=2) == sweep(cases, workers=1)


def test_every_literal_failure_is_explained_by_a_listed_cause():
    results = sweep(make_cases(graphs=["path:3", "cycle:4", "star:4", "complete:4", "petersen"], layers=[1, 2, 3],
                               seeds=4, rule="table1-literal"))
    causes = summarize(results)["literal_causes"]
    assert causes["unexplained_failures"] == 0
    assert sum(causes["failing_by_first_cause"].values()) == sum(r.failed for r in results) > 0
    assert all(r.causes for r in results)


def _run_cli(capsys, *argv):
    code = cli_main(["verify", "synchronizer", *argv])
    return code, capsys.readouterr().out.strip().splitlines()


def test_cli_corrected_sweep_passes(tmp_path, capsys):
    code, lines = _run_cli(capsys, "--graph", "petersen", "--graph", "random-regular:3:20:7", "--layers", "4",
                           "--seeds", "30", "--out", str(tmp_path), "--plot")
    assert code == 0
    assert lines[-1] == "passed 180/180"
    assert any(line.split()[:4] == ["graph", "n", "m", "cases"] and "deadlock" in line for line in lines)
    summary = json.loads((tmp_path / "synchronizer_summary.json").read_text())
    assert summary["total"] == {"cases": 180, "pass": 180, "wrong": 0, "deadlock": 0, "budget": 0}
    assert summary["relu"]["mismatches"] == 0 and summary["relu"]["steps"] > 0
    assert (tmp_path / "messages_per_layer.png").stat().st_size > 10_000
    assert not list(tmp_path.glob("*smallest_failure*"))


def test_cli_literal_sweep_fails_and_saves_a_replayable_trace(tmp_path, capsys):
    code, lines = _run_cli(capsys, "--table1-literal", "--graph", "cycle:3", "--graph", "path:3", "--layers", "1",
                           "--layers", "2", "--seeds", "2", "--out", str(tmp_path))
    assert code == 1
    assert lines[-1].startswith("passed ") and lines[-1].endswith("/24")
    assert any(line.strip().startswith("first divergence: node") for line in lines)
    case_file = tmp_path / "table1_literal_smallest_failure.case.json"
    doc = json.loads(case_file.read_text())
    # smallest: fewest nodes, then edges, then layers
    assert (doc["case"]["graph"], doc["case"]["layers"], doc["outcome"]) == ("path:3", 1, "deadlock")
    assert doc["stuck"] and doc["first_divergence"].startswith("node ")
    saved = load_trace(tmp_path / doc["trace"])
    replayed = replay_case(str(case_file))  # raises ReplayMismatch if the rerun differs
    assert replayed.records == saved.records and saved.ends[-1].reason == "stalled"


def test_cli_message_loss_ends_in_stalls_not_hangs(capsys, tmp_path):
    code, lines = _run_cli(capsys, "--graph", "petersen", "--layers", "2", "--seeds", "3", "--loss", "0.1",
                           "--delay", "uniform", "--out", str(tmp_path), "--no-relu")
    assert code == 1
    summary = json.loads((tmp_path / "synchronizer_summary.json").read_text())
    assert summary["total"]["deadlock"] == 6 and summary["total"]["wrong"] == 0
    assert "stuck" in "\n".join(lines)


def test_cli_bad_input_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:  # a usage error: the parser's line
        cli_main(["verify", "synchronizer", "--seeds", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ampsim verify synchronizer: error: argument --seeds: expected a whole number >= 1, got '0' "
                   "(see ampsim verify synchronizer --help)"]
    assert cli_main(["verify", "synchronizer", "--graph", "wheel:5"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # refused before the plan line


# ---------------------------------------------------------------- degenerate references are redrawn
def test_degeneracy_classifies_all_zero_and_identical_outputs():
    from ampsim.protocols.verify_synchronizer import degeneracy

    assert degeneracy([(0.0, 0.0), (0.0, 0.0)]) == "all-zero"
    assert degeneracy([(0.3, 0.0), (0.3, 0.0), (0.3, 0.0)]) == "identical"
    assert degeneracy([(0.3, 0.0), (0.3, 1e-6)]) is None


def test_degenerate_references_are_redrawn_and_counted():
    """Some of the first 20 seeds of L = 5 draw weights whose sGIN output is degenerate; those cases
    redraw them, and every case then has a reference that tests something."""
    from ampsim.protocols.sgin import SGIN, run_sgin
    from ampsim.protocols.verify_synchronizer import case_inputs, degeneracy, reference_quality

    cases = make_cases(graphs=["random-regular:3:20:7", "cycle:8"], layers=[5], seeds=20, delays=["constant"])
    redrawn = [c for c in cases if reference_quality(c)[0]]
    assert redrawn, "some L = 5 draw is degenerate"
    for c in cases:
        g, features, _, model = case_inputs(c)
        assert degeneracy(run_sgin(g, features, model)[5]) is None
    c = redrawn[0]
    g, features, _, model = case_inputs(c)
    first = SGIN.random(c.dim, c.layers, c.seed, c.aggregation)
    assert model != first and degeneracy(run_sgin(g, features, first)[5]) is not None
    s = summarize(sweep(cases[:4], relu=False))
    assert s["reference"]["non_degenerate"] == 4 and s["reference"]["degenerate"] == 0
