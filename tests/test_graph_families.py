"""Theorem 4.4's hard pairs as graph specs: CSL(41, S) are 4-regular and 1-WL equivalent yet pairwise
non-isomorphic; rook:4 and shrikhande are both strongly regular (16, 6, 2, 2) and not isomorphic."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from ampsim.data.tasks import SKIP_LENGTHS, skip_cycles
from ampsim.engine.errors import GraphError
from ampsim.graphs import parse_graph_spec


def nxg(spec):
    return parse_graph_spec(spec).to_networkx()


def spectrum(g):
    return np.round(np.sort(np.linalg.eigvalsh(nx.to_numpy_array(g, nodelist=sorted(g)))), 8)


def wl_equivalent(g1, g2, rounds=20):
    """1-WL colour refinement on the disjoint union: equal colour histograms on both sides."""
    u = nx.disjoint_union(g1, g2)
    colour = {v: 0 for v in u}
    for _ in range(rounds):
        sig = {v: (colour[v], tuple(sorted(colour[w] for w in u[v]))) for v in u}
        names = {c: i for i, c in enumerate(sorted(set(sig.values())))}
        colour = {v: names[sig[v]] for v in u}
    n1 = g1.number_of_nodes()
    hist = lambda nodes: sorted(colour[v] for v in nodes)
    return hist(range(n1)) == hist(range(n1, u.number_of_nodes()))


def strongly_regular_parameters(g):
    """(n, k, lambda, mu) if ``g`` is strongly regular, else None."""
    degrees = {d for _, d in g.degree()}
    if len(degrees) != 1:
        return None
    lam, mu = set(), set()
    for u, v in itertools.combinations(g.nodes, 2):
        common = len(set(g[u]) & set(g[v]))
        (lam if g.has_edge(u, v) else mu).add(common)
    if len(lam) != 1 or len(mu) != 1:
        return None
    return g.number_of_nodes(), degrees.pop(), lam.pop(), mu.pop()


def test_csl41_is_4_regular_1wl_equivalent_and_pairwise_non_isomorphic():
    graphs = {s: nxg(f"csl:41:{s}") for s in SKIP_LENGTHS}
    assert all(wl_equivalent(graphs[2], g) for g in graphs.values())  # 1-WL cannot tell any two apart
    assert not wl_equivalent(graphs[2], nxg("cycle:41"))  # (the check can fail)
    for g in graphs.values():
        assert g.number_of_nodes() == 41 and g.number_of_edges() == 82 and {d for _, d in g.degree()} == {4}
        assert nx.is_connected(g)
    spectra = {s: tuple(spectrum(g)) for s, g in graphs.items()}
    assert len(set(spectra.values())) == len(SKIP_LENGTHS)  # pairwise non-isomorphic (different spectra)


def test_csl_matches_the_skip_cycles_task():
    task = skip_cycles(0)
    for data in task.train:
        s = data.meta["skip"]
        mine = {tuple(sorted(e)) for e in nxg(f"csl:41:{s}").edges}
        theirs = {tuple(sorted(e)) for e in data.edge_index.t().tolist()}
        assert mine == theirs


def test_rook4_and_shrikhande_are_srg_16_6_2_2_and_not_isomorphic():
    rook, shri = nxg("rook:4"), nxg("shrikhande")
    assert strongly_regular_parameters(rook) == (16, 6, 2, 2)
    assert strongly_regular_parameters(shri) == (16, 6, 2, 2)
    assert tuple(spectrum(rook)) == tuple(spectrum(shri))  # cospectral, too
    assert wl_equivalent(rook, shri)
    k4 = lambda g: sum(1 for c in nx.enumerate_all_cliques(g) if len(c) == 4)
    assert (k4(rook), k4(shri)) == (8, 0)
    assert not nx.is_isomorphic(rook, shri)


def test_cospectral_trees_share_degrees_and_spectrum_and_are_not_isomorphic():
    t1, t2 = nxg("cotrees:1"), nxg("cotrees:2")
    assert nx.is_tree(t1) and nx.is_tree(t2) and t1.number_of_nodes() == t2.number_of_nodes() == 9
    assert sorted(d for _, d in t1.degree()) == sorted(d for _, d in t2.degree()) == [1, 1, 1, 1, 2, 2, 2, 3, 3]
    assert tuple(spectrum(t1)) == tuple(spectrum(t2))
    assert not nx.is_isomorphic(t1, t2)


def test_figure4_specs_and_bad_specs():
    assert nxg("figure4:4b:2").number_of_nodes() == 4
    assert nx.number_connected_components(nxg("figure4:4a:1")) == 2
    for bad in ("csl:41:1", "csl:41:40", "csl:4:2", "csl:41", "rook:1", "shrikhande:3", "figure4:4d:1", "figure4:4a:3",
                "cotrees:3", "cotrees"):
        with pytest.raises(GraphError):
            parse_graph_spec(bad)
