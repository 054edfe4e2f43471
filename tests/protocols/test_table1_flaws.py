"""Table 1 with one flaw at a time (docs/synchronizer.md, section 3a): each flaw fails on its own,
its first failure is the documented one, all six together are Table 1 step for step, none is correct."""
from __future__ import annotations

from dataclasses import replace

import pytest

from ampsim.cli import main
from ampsim.protocols.sync_cases import Case, build_simulation, _evaluate, make_cases, run_case
from ampsim.protocols.table1_counterexamples import smallest_flaw_failures
from ampsim.protocols.table1_flaws import ALL_FLAWS, FLAWS, parse_flaws


def execute(case: Case):
    sim, rec, ref = build_simulation(case)
    return _evaluate(sim, rec, ref, case.layers)


def test_flaw_names_parse_and_bad_ones_are_refused():
    assert parse_flaws("F3") == ("F3",)
    assert parse_flaws("f5, F1") == ("F1", "F5")
    assert parse_flaws("all") == ALL_FLAWS == tuple(FLAWS)
    assert parse_flaws("none") == ()
    for bad in ("F7", "F1,,F2", "", "F1,none"):
        with pytest.raises(ValueError):
            parse_flaws(bad)


def test_all_six_flaws_are_table1_step_for_step_and_none_is_correct():
    cases = make_cases(graphs=("path:3", "cycle:4", "star:4", "petersen"), layers=(1, 2, 3), seeds=2,
                       rule="table1-literal")
    for case in cases:
        lit = execute(case)
        full = execute(replace(case, flaws=ALL_FLAWS))
        sent = lambda ex: [None if o is None else (o.kind, o.payload) for *_, o, _, _ in ex.steps]  # noqa: E731
        assert sent(full) == sent(lit), case.label()
        layers = lambda ex, i: [(new[i], new[0]) for _, st, _, new, *_ in ex.steps if new[i] < st[i]]  # noqa: E731
        assert layers(full, 4) == layers(lit, 3)               # every layer computed, same value, same order
        assert (full.outcome, full.result.total_deliveries) == (lit.outcome, lit.result.total_deliveries)
        assert execute(replace(case, flaws=())).outcome == "pass", case.label()


# flaw -> (smallest failing case, outcome, first divergence (node, pulse, delivery), first step it changes (delivery, node))
SMALLEST = {
    "F1": (Case("path:2", 1, 0, "constant", True, "table1-literal"), "wrong", (0, 1, 3), (1, 0)),
    "F2": (Case("path:2", 1, 0, "constant", True, "table1-literal"), "deadlock", (1, 1, None), (2, 1)),
    "F3": (Case("path:3", 2, 0, "uniform", False, "table1-literal"), "wrong", (2, 2, 6), (6, 2)),
    "F4": (Case("path:3", 2, 0, "uniform", False, "table1-literal"), "wrong", (1, 2, 9), (7, 0)),
    "F5": (Case("path:3", 2, 0, "constant", True, "table1-literal"), "wrong", (1, 2, 9), (6, 1)),
    "F6": (Case("path:3", 2, 0, "uniform", False, "table1-literal"), "deadlock", (0, 2, 10), (8, 1)),
}


@pytest.mark.parametrize("flaw", ALL_FLAWS)
def test_each_flaw_alone_fails_first_where_documented(flaw):
    case, outcome, (node, pulse, delivery), (k, v) = SMALLEST[flaw]
    ex = execute(replace(case, flaws=(flaw,)))
    assert ex.outcome == outcome
    d = ex.divergence
    assert (d.node, d.pulse, d.delivery) == (node, pulse, delivery)
    assert {c for _, _, c in ex.causes} == {flaw}          # only this flaw ever changes a step
    assert ex.causes[0][:2] == (k, v)                      # and this is the first step it changes
    assert execute(replace(case, flaws=())).outcome == "pass"   # the same case with the flaw corrected


def test_each_flaw_alone_specifics():
    # F2: the leaf (node 1, D = 1) wakes on the only pulse it will get and never computes
    ex = execute(replace(SMALLEST["F2"][0], flaws=("F2",)))
    assert tuple(ex.result.stuck) == (1,)
    # F3: node 2, a leaf, takes node 1's safe message for node 1's pulse and computes layer 2 from it
    ex = execute(replace(SMALLEST["F3"][0], flaws=("F3",)))
    view, state, message, *_ = next(s for s in ex.steps if s[6] == 6)
    assert message.kind == "safe" and ex.divergence.row == "u=0"
    # F4: node 0 has every safe message in, and its own layer's pulse makes it proceed: layer skipped
    ex = execute(replace(SMALLEST["F4"][0], flaws=("F4",)))
    view, state, message, new, *_ = next(s for s in ex.steps if s[6] == 7)
    assert (state[3], state[5], message.kind, state[4], new[4]) == (0, 0, "pulse", 2, 1)
    # F5: node 1 computes layer 2 from one of its two neighbours' pulses (w' = 0 left by layer 1)
    ex = execute(replace(SMALLEST["F5"][0], flaws=("F5",)))
    assert [s[3][2] for s in ex.steps if s[6] == 6] == [1]
    # F6: node 1's early pulse goes into s, which then goes out as its pulse 2
    ex = execute(replace(SMALLEST["F6"][0], flaws=("F6",)))
    view, state, message, new, *_ = next(s for s in ex.steps if s[6] == 8)
    assert state[5] == 1 and new[0] == tuple(x + y for x, y in zip(state[0], message.payload[0]))


def test_the_search_finds_the_smallest_failures():
    found = smallest_flaw_failures([("F1",), ("F3",)], seeds=5)
    assert found[("F1",)]["case"] == replace(SMALLEST["F1"][0], flaws=("F1",)) and found[("F1",)]["tried"] == 1
    assert found[("F3",)]["case"] == replace(SMALLEST["F3"][0], flaws=("F3",)) and found[("F3",)]["tried"] == 62


def test_a_flawed_sweep_case_reports_its_flaws():
    r = run_case(replace(SMALLEST["F5"][0], flaws=("F5",)), relu=False)
    assert (r.outcome, r.causes) == ("wrong", ("F5",))
    assert r.case.label() == "table1-literal[F5] path:3 L=2 seed=0 constant fifo"


@pytest.mark.parametrize("argv, text", [
    (["--table1-literal", "--flaw", "F7"], "argument --flaw: unknown flaw 'F7'; choose from F1, F2, F3, F4, F5, F6"),
    (["--table1-literal", "--flaw", "F1,,F2"], "argument --flaw: expected flaws F1..F6 separated by commas"),
    (["--flaw", "F1"], "--flaw selects flaws of Table 1: it needs --table1-literal"),
])
def test_cli_bad_flaw_is_one_line_exit_2(argv, text, capsys):
    try:
        rc = main(["verify", "synchronizer", *argv])
    except SystemExit as exc:  # argparse's usage error (one line, exit 2)
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1


def test_cli_one_flaw_runs_and_fails(tmp_path, capsys):
    rc = main(["verify", "synchronizer", "--table1-literal", "--flaw", "F1", "--graph", "path:2", "--layers", "1",
               "--seeds", "1", "--delay", "constant", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "table1-literal with only F1: 1 cases" in out and "passed 0/1" in out
    assert (tmp_path / "table1_literal_flaws_F1_summary.json").exists()
