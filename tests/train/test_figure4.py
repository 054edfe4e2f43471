"""Figure 4 by execution: AMP (constant delays) separates 4a and 4b, and 4c from every node but red."""
from __future__ import annotations

import pytest

from ampsim.cells.cells import CELL_KINDS
from ampsim.data.tasks import nodes_on_triangles
from ampsim.train.figure4 import (
    BLUE,
    RED,
    aggregation_blind,
    demo_cell,
    figure4_pairs,
    report,
    separated,
    start_view,
    wl_equivalent,
)

PAIRS = figure4_pairs()


def test_pairs_have_the_stated_properties():
    a, b, c = PAIRS["4a"], PAIRS["4b"], PAIRS["4c"]
    assert (a.first.num_edges, a.second.num_edges) == (8, 8) and wl_equivalent(a.first, a.second)
    assert aggregation_blind(b, 0) == {"sum": False, "mean": True, "max": True}
    assert wl_equivalent(c.first, c.second)
    assert nodes_on_triangles(c.first) == [0, 1, 1, 1, 1, 1, 1]  # every white/blue node on a triangle
    assert nodes_on_triangles(c.second) == [0] * 7
    assert c.colours_first[0] == RED and c.colours_first[1] == c.colours_first[4] == BLUE
    assert wl_equivalent(c.first, c.second, mark=(0, 0))  # marking red keeps them 1-WL-equivalent
    for v in range(1, 7):
        assert not wl_equivalent(c.first, c.second, mark=(v, v))


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_4a_and_4b_are_separated_from_their_start_node(kind):
    for name in ("4a", "4b"):
        pair = PAIRS[name]
        assert separated(pair, 0, 0, demo_cell(kind, pair.first.x.shape[1], seed=0)), name


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_4c_from_red_cannot_be_separated_but_from_others_it_is(kind):
    pair = PAIRS["4c"]
    for seed in (0, 1):
        cell = demo_cell(kind, 3, seed=seed)
        top, bottom = start_view(pair.first, 0, cell), start_view(pair.second, 0, cell)
        assert top == bottom and len(top.times) >= 5  # bit-identical view of a non-trivial run
        for v in (1, 2):  # a blue and a white start
            assert separated(pair, v, v, cell)


def test_4a_views_differ_first_when_the_4_cycle_closes():
    pair = PAIRS["4a"]
    cell = demo_cell("rnn", 4, seed=0)
    four, eight = start_view(pair.first, 0, cell), start_view(pair.second, 0, cell)
    # both see the start at t=0, the two echoes at t=2, ...; around a 4-cycle messages come back at t=4
    assert four.times[:3] == eight.times[:3] == (0.0, 2.0, 2.0)
    assert four.times.count(4.0) > eight.times.count(4.0)


def test_random_delays_separate_4c_even_from_red():
    assert separated(PAIRS["4c"], 0, 0, demo_cell("gru", 3, seed=0), delay="uniform", seed=0)


def test_report_lines():
    lines = report(seeds=(0,), kinds=("rnn",))
    assert lines[3].startswith("Figure 4c, start at red node: separated by 0/1 random cells")
    assert lines[0].startswith("Figure 4a, start at node 0 (4-cycle vs 8-cycle): separated by 1/1")
