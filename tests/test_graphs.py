"""Graph input: relabelling order, edge_index, specs, hashes, and one clear error per bad graph."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from ampsim import GraphError, as_graph, parse_graph_spec


def test_networkx_relabelled_in_sorted_label_order():
    g = nx.Graph([("c", "a"), ("a", "b")])
    G = as_graph(g)
    assert G.labels == ("a", "b", "c")
    assert G.neighbors == ((1, 2), (0,), (0,))


def test_unsortable_labels_keep_insertion_order():
    g = nx.Graph()
    g.add_edge("x", 3)
    g.add_edge(3, (1, 2))
    G = as_graph(g)
    assert G.labels == ("x", 3, (1, 2))
    assert G.neighbors == ((1,), (0, 2), (1,))


@pytest.mark.parametrize("edge_index", [
    [[0, 1], [1, 2]],
    [[0, 1, 1, 2], [1, 0, 2, 1]],
    torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
])
def test_edge_index_one_or_both_directions(edge_index):
    G = as_graph(edge_index, num_nodes=4 if not isinstance(edge_index, list) or len(edge_index[0]) == 4 else 3)
    assert G.neighbors[:3] == ((1,), (0, 2), (1,))


def test_edge_index_errors():
    with pytest.raises(GraphError, match=r"shape \(2, E\)"):
        as_graph([[0, 1, 2]])
    with pytest.raises(GraphError, match="outside"):
        as_graph([[0], [5]], num_nodes=3)
    with pytest.raises(GraphError, match="self-loop"):
        as_graph([[1], [1]], num_nodes=3)
    with pytest.raises(GraphError, match="empty"):
        as_graph([[], []])


def test_hash_is_stable_and_label_independent():
    a = as_graph(nx.cycle_graph(5))
    b = as_graph(nx.relabel_nodes(nx.cycle_graph(5), {i: i + 10 for i in range(5)}))
    assert a.hash() == b.hash() == as_graph(nx.cycle_graph(5)).hash()
    assert a.hash() != as_graph(nx.path_graph(5)).hash()


@pytest.mark.parametrize("spec, n, m", [
    ("path:4", 4, 3), ("cycle:8", 8, 8), ("star:5", 6, 5), ("complete:5", 5, 10), ("grid:3x4", 12, 17),
    ("petersen", 10, 15), ("random-regular:3:20:7", 20, 30), ("tree:9:1", 9, 8),
])
def test_specs(spec, n, m):
    G = parse_graph_spec(spec)
    assert (G.num_nodes, G.num_edges) == (n, m)
    assert G == G and G.name == spec


def test_gnp_takes_largest_component():
    G = parse_graph_spec("gnp:40:0.05:3")
    assert nx.is_connected(G.to_networkx()) and G.num_nodes <= 40
    assert parse_graph_spec("gnp:40:0.05:3").hash() == G.hash()


@pytest.mark.parametrize("spec, match", [
    ("cycle:2", "at least 3"), ("path:x", "integers"), ("grid:3", "RxC"), ("random-regular:3:5:1", "d\\*n even"),
    ("gnp:10:2:1", r"\[0, 1\]"), ("hexagon:5", "unknown graph spec"), ("path:0", ">= 1"), ("petersen:3", "needs 0"),
])
def test_bad_specs(spec, match):
    with pytest.raises(GraphError, match=match):
        parse_graph_spec(spec)


def test_edge_list_file(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# a triangle and a tail\n0 1\n1 2\n2 0\n2 3\n")
    G = parse_graph_spec(str(p))
    assert (G.num_nodes, G.num_edges) == (4, 4)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1 x\n")
    with pytest.raises(GraphError, match=r"bad.txt:2"):
        parse_graph_spec(str(bad))
    loop = tmp_path / "loop.txt"
    loop.write_text("0 1\n1 1\n")
    with pytest.raises(GraphError, match="self-loop"):
        parse_graph_spec(str(loop))


def test_round_trip_dict():
    G = parse_graph_spec("petersen")
    assert as_graph(G) is G
    H = type(G).from_dict(G.to_dict())
    assert H.neighbors == G.neighbors and H.hash() == G.hash()


def test_sizes_given_to_the_graph_builders_are_checked_before_allocation():
    from ampsim.engine.errors import SizeLimitError
    from ampsim.graphs import Graph, as_graph

    with pytest.raises(SizeLimitError, match=r"graph dict would have 1,000,000,000,000 nodes.*max_edges="):
        Graph.from_dict({"n": 10**12, "edges": []})
    with pytest.raises(SizeLimitError, match=r"num_nodes=10,000,000,000 would have"):
        as_graph([[0], [1]], num_nodes=10**10)
    assert as_graph([[0], [1]], num_nodes=20, max_edges=20).num_nodes == 20
    assert Graph.from_dict({"n": 20, "edges": []}, max_edges=20).num_nodes == 20
