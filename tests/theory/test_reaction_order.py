"""``ampsim reaction --delay D --seeds S``: halted parity nodes that halted before a closer node's first message."""
from __future__ import annotations

import pytest

from ampsim.cli import main


def test_uniform_delays_count_exactly_on_a_small_case(capsys):
    argv = ["reaction", "--delay", "uniform", "--seeds", "1,4", "--sizes", "25", "--graphs", "4"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "25 nodes, seed 1: 2 of 89 halted nodes halted before a closer node's first message",
        "25 nodes, seed 4: 1 of 92 halted nodes halted before a closer node's first message",
        "total (uniform delays, 4 graphs per size, 2 seeds): 3 of 181 halted nodes halted before a closer "
        "node's first message",
    ]


def test_constant_delays_give_zero_by_construction(capsys):
    assert main(["reaction", "--delay", "constant", "--seeds", "0", "--sizes", "25", "--graphs", "4"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "25 nodes, seed 0: 0 of 91 halted nodes halted before a closer node's first message")


def test_bad_seeds_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's usage error, one line
        main(["reaction", "--delay", "uniform", "--seeds", "5-2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "expected seeds like 0-9" in err and err.count("\n") == 1
