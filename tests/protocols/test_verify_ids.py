"""``ampsim verify ids`` and the results/ids/ generators: exit codes, the last line, workers, resumability."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ampsim.cli import main
from ampsim.graphs import parse_graph_spec
from ampsim.protocols.verify_ids import (
    IdRun,
    check_graphs,
    fixed_graph_specs,
    measure_stars,
    percentile,
    plot_time_vs_k,
    random_graph_specs,
    run_ids,
    summarize_runs,
    verify_ids,
)

RESULTS = Path(__file__).resolve().parents[2] / "results" / "ids"


def test_cli_star_passes_with_last_line(capsys):
    assert main(["verify", "ids", "--graph", "star:6", "--seeds", "25"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "unique 25/25"
    assert lines[0].startswith("star:6 (n=7): unique 25/25; time mean ")


def test_cli_random_regular_and_repeated_graphs(capsys):
    argv = ["verify", "ids", "--graph", "random-regular:3:16:5", "--graph", "petersen", "--seeds", "4"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "unique 8/8"
    assert [line.split(" ")[0] for line in lines[:-1]] == ["random-regular:3:16:5", "petersen"]


def test_cli_constant_delay_is_refused_in_one_line(capsys):
    assert main(["verify", "ids", "--graph", "star:4", "--delay", "constant"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("refused: rule 'ids' needs random message delays")
    assert captured.err.count("\n") == 1


def test_cli_budget_failures_exit_1(capsys):
    """A run stopped by the safety budget is a failure, listed by seed."""
    assert main(["verify", "ids", "--graph", "star:4", "--seeds", "3", "--budget", "20"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "unique 0/3"
    assert out[1].startswith("  FAILED seed 0 (start 0): message_budget after 20 deliveries")


@pytest.mark.parametrize("argv, needle", [
    (["verify", "ids", "--graph", "star:0"], "K must be >= 1"),
    (["verify", "ids", "--graph", "star:3", "--seeds", "0"], "argument --seeds: expected a whole number >= 1, got '0'"),
    (["verify", "ids", "--graph", "star:3", "--start", "x"], "argument --start: expected a node index >= 0 or 'vary'"),
    (["verify", "ids", "--graph", "star:3", "--seeds", "200000"], "makes 200,000 cases (about 17 min to 27.8 h over 1 "
                                                                   "worker); the limit is 100,000 cases: lift it with "
                                                                   "--max-cases 200000"),
    (["verify", "ids", "--graph", "star:3", "--start", "9"], "start must be a node index in 0..3"),
])
def test_cli_bad_input_exit_2(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # a usage error found by the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_workers_give_identical_results():
    specs = ["star:5", "cycle:7"]
    one = verify_ids(specs, 6, start="vary")
    two = verify_ids(specs, 6, start="vary", workers=2)
    assert one == two
    assert [(r.graph, r.seed, r.start) for r in one][:7] == [("star:5", s, s % 6) for s in range(6)] + [("cycle:7", 0, 0)]


def test_run_ids_fields_and_ok():
    run = run_ids("star:3", seed=5)
    assert (run.graph, run.n, run.seed, run.start, run.reason) == ("star:3", 4, 5, 0, "quiescent")
    assert run.named == run.distinct == 4 and run.ok and run.time > 0 and run.deliveries > 4
    bad = IdRun("x", 3, 0, 0, "quiescent", 1.0, 10, 3, 2)
    assert not bad.ok
    assert not IdRun("x", 3, 0, 0, "message_budget", 1.0, 10, 3, 3).ok
    assert not IdRun("x", 3, 0, 0, "stalled", 1.0, 10, 2, 2).ok


def test_percentile_nearest_rank_and_summary():
    assert percentile([5, 1, 4, 2, 3], 95) == 5 and percentile([5, 1, 4, 2, 3], 40) == 2
    assert percentile(list(range(1, 101)), 95) == 95
    with pytest.raises(ValueError):
        percentile([], 50)
    runs = [IdRun("g", 3, s, 0, "quiescent", float(s + 1), 10 * (s + 1), 3, 3 if s else 2) for s in range(4)]
    s = summarize_runs(runs)
    assert (s["runs"], s["unique"], s["failed_seeds"], s["reasons"]) == (4, 3, [0], {"quiescent": 4})
    assert (s["time_mean"], s["time_p95"], s["deliveries_max"]) == (2.5, 4.0, 40)


def test_graph_suites_are_connected_small_and_distinct():
    specs = random_graph_specs(200)
    assert len(specs) == len(set(specs)) == 200 and specs == random_graph_specs(200)
    families = {s.split(":")[0] for s in specs}
    assert families == {"tree", "cycle", "grid", "random-regular", "gnp"}
    for spec in specs + fixed_graph_specs():
        g = parse_graph_spec(spec)
        assert 2 <= g.num_nodes <= 30 and not g.isolated()
    assert {"petersen", "path:30", "cycle:30", "complete:30"} <= set(fixed_graph_specs())


def test_measure_stars_resumes_and_plots(tmp_path):
    table = measure_stars([1, 2], 5, str(tmp_path))
    assert [r["k"] for r in table["rows"]] == [1, 2] and [r["bound_k6k"] for r in table["rows"]] == [6, 72]
    assert all(r["unique"] == r["runs"] == 5 for r in table["rows"])
    per_k = json.loads((tmp_path / "star_k2.json").read_text())
    assert per_k["seeds"] == 5 and len(per_k["time"]) == len(per_k["deliveries"]) == 5
    # a second call reads the per-k files back instead of rerunning: a marker survives
    per_k["summary"]["time_mean"] = -1.0
    (tmp_path / "star_k2.json").write_text(json.dumps(per_k))
    again = measure_stars([1, 2], 5, str(tmp_path))
    assert again["rows"][1]["time_mean"] == -1.0
    fig = plot_time_vs_k(table, str(tmp_path / "t.png"))
    assert (tmp_path / "t.png").stat().st_size > 1000 and len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)
    assert json.loads((tmp_path / "time_vs_k.json").read_text())["rows"][0]["k"] == 1


def test_check_graphs_writes_summary(tmp_path, monkeypatch):
    import ampsim.protocols.verify_ids as mod

    monkeypatch.setattr(mod, "fixed_graph_specs", lambda: ["petersen"])
    table = check_graphs(str(tmp_path), count=3, seeds=2)
    assert table["graphs"] == 4 and table["total"]["unique"] == table["total"]["runs"] == 8
    saved = json.loads((tmp_path / "graphs_check.json").read_text())
    assert [g["graph"] for g in saved["per_graph"]] == random_graph_specs(3) + ["petersen"]


def test_saved_results_cover_the_issue():
    """results/ids/: stars k = 1..8 with >= 1000 seeds and >= 200 random graphs, every run unique."""
    table = json.loads((RESULTS / "time_vs_k.json").read_text())
    rows = {r["k"]: r for r in table["rows"]}
    for k in range(1, 9):
        assert rows[k]["runs"] >= 1000 and rows[k]["unique"] == rows[k]["runs"]
    graphs = json.loads((RESULTS / "graphs_check.json").read_text())
    assert graphs["random_graphs"] >= 200 and graphs["total"]["unique"] == graphs["total"]["runs"]
    assert (RESULTS / "time_vs_k.png").exists()


def test_stars_of_other_seeds_are_refused_unless_forced(tmp_path):
    from ampsim.protocols.verify_ids import measure_stars

    out = str(tmp_path / "ids")
    measure_stars([1], 3, out)
    before = (tmp_path / "ids" / "star_k1.json").read_text()
    with pytest.raises(ValueError, match=r"star_k1.json: a measurement of 3 seeds .* this run asks 4 .* --force"):
        measure_stars([1, 2], 4, out)
    assert (tmp_path / "ids" / "star_k1.json").read_text() == before and not (tmp_path / "ids" / "star_k2.json").exists()
    assert measure_stars([1], 4, out, force=True)["rows"][0]["runs"] == 4
