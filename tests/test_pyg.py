"""PyTorch Geometric in and out (ampsim.pyg), and parity of the TU data with PyG's reading of the raw files."""
from __future__ import annotations

import shutil
import warnings
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest
import torch

with warnings.catch_warnings():  # PyG's import warns about torch.jit.script (not ours to fix)
    warnings.simplefilter("ignore")
    torch_geometric = pytest.importorskip("torch_geometric")
    from torch_geometric.data import Batch, Data
    from torch_geometric.datasets import TUDataset as PygTUDataset

from ampsim import GraphError, Simulation, from_pyg, get_rule, parse_graph_spec, to_pyg  # noqa: E402
from ampsim.data.graphdata import GraphData  # noqa: E402
from ampsim.data.tu import load_tu  # noqa: E402
from ampsim.pyg import first_nodes, simulations  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_TU = next((p for p in (REPO.parent / "shared" / "data" / "TU", Path("/work/shared/data/TU")) if p.is_dir()), None)


def _path3() -> Data:
    return Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=3)


def test_simulation_takes_a_pyg_data():
    result = Simulation(_path3(), get_rule("flooding")).run()
    assert (result.reason, result.total_deliveries, result.states) == ("quiescent", 5, (0, 1, 2))
    # x becomes the node features
    data = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), x=torch.tensor([[1.0], [2.0], [3.0]]),
                edge_attr=torch.ones(4, 2))  # ignored, as networkx edge attributes are
    sim = Simulation(data, get_rule("flooding"))
    assert sim.graph.edges == [(0, 1), (1, 2)]
    assert [v.features.tolist() for v in sim.views] == [[1.0], [2.0], [3.0]]
    assert sim.header()["features"] == [[1.0], [2.0], [3.0]]


def test_bad_pyg_graphs_get_clear_errors():
    with pytest.raises(GraphError, match="self-loop"):
        Simulation(Data(edge_index=torch.tensor([[0, 1], [0, 0]]), num_nodes=2), get_rule("flooding"))
    with pytest.raises(GraphError, match="outside"):
        Simulation(Data(edge_index=torch.tensor([[0], [5]]), num_nodes=3), get_rule("flooding"))
    # what is refused for a DiGraph / MultiGraph is refused for a directed / repeated PyG edge_index
    with pytest.raises(GraphError, match=r"directed: edge \(1, 2\) has no reverse \(2, 1\).*DiGraph.*to_undirected"):
        Simulation(Data(edge_index=torch.tensor([[0, 1, 1], [1, 0, 2]]), num_nodes=3), get_rule("flooding"))
    with pytest.raises(GraphError, match=r"directed"):
        Simulation(nx.DiGraph([(0, 1), (1, 2)]), get_rule("flooding"))
    with pytest.raises(GraphError, match=r"lists edge \(0, 1\) twice.*MultiGraph.*coalesce"):
        Simulation(Data(edge_index=torch.tensor([[0, 1, 0], [1, 0, 1]]), num_nodes=2), get_rule("flooding"))
    with pytest.raises(GraphError, match=r"multigraphs"):
        Simulation(nx.MultiGraph([(0, 1), (0, 1)]), get_rule("flooding"))
    with pytest.raises(GraphError, match=r"integer node ids, got dtype torch.float32"):
        Simulation(Data(edge_index=torch.tensor([[0.0, 1.0], [1.0, 0.0]]), num_nodes=2), get_rule("flooding"))
    # a bare edge_index is a list of undirected edges: one direction is enough
    assert Simulation(torch.tensor([[0, 1], [1, 2]]), get_rule("flooding")).graph.edges == [(0, 1), (1, 2)]
    lonely = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=2)
    with pytest.raises(GraphError, match="no neighbours"):
        Simulation(lonely, get_rule("flooding"))


def test_batch_one_simulation_per_graph_or_one_over_all():
    a, b = _path3(), Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]]), num_nodes=4)
    batch = Batch.from_data_list([a, b])
    each = [s.run() for s in simulations(batch, get_rule("flooding"))]
    assert [r.total_deliveries for r in each] == [5, 9]
    union = Simulation(batch, get_rule("flooding"), start=first_nodes(batch))
    assert union.graph.num_nodes == 7 and first_nodes(batch) == [0, 3]
    assert union.run().total_deliveries == 5 + 9
    graphs = from_pyg(batch)
    assert [g.num_nodes for g in graphs] == [3, 4] and all(isinstance(g, GraphData) for g in graphs)
    assert graphs[1].edge_index.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3], [1, 3, 0, 2, 1, 3, 0, 2]]


def test_to_pyg_and_back():
    g = parse_graph_spec("petersen")
    data = to_pyg(g)
    assert data.num_nodes == 10 and data.edge_index.shape == (2, 30)
    assert Simulation(data, get_rule("flooding")).graph.hash() == g.hash()
    mutag = load_tu("MUTAG")
    datas = to_pyg(mutag[:5])
    assert len(datas) == 5 and torch.equal(datas[0].x, mutag[0].x) and datas[0].y.tolist() == mutag[0].y.tolist()
    back = from_pyg(datas[0])
    assert back.level == "graph" and torch.equal(back.edge_index, mutag[0].edge_index) and torch.equal(back.x, mutag[0].x)
    assert len(Batch.from_data_list(datas).to_data_list()) == 5


def test_both_ptc_readings_by_name():
    gin, tu = load_tu("PTC"), load_tu("PTC_MR")
    assert (len(gin), len(tu)) == (344, 344)
    assert sum(g.num_nodes for g in gin) == 8792 and sum(g.num_nodes for g in tu) == 4915
    assert (gin.num_features, tu.num_features) == (19, 18)
    assert sorted(Counter(gin.labels.tolist()).values()) == sorted(Counter(tu.labels.tolist()).values()) == [152, 192]
    with pytest.raises(ValueError, match="no GIN fold files"):
        tu.folds(0)


def _pyg(tmp_path: Path, name: str, source: Path):
    raw = tmp_path / name / "raw"
    raw.mkdir(parents=True)
    for f in source.iterdir():
        shutil.copy(f, raw / f.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PygTUDataset(str(tmp_path), name)  # raw files present: PyG processes them, nothing is downloaded


def _edge_set(edge_index) -> set:
    return {tuple(e) for e in edge_index.t().tolist()}


def test_ptc_mr_equals_pygs_reading_of_the_same_files(tmp_path):
    ours = load_tu("PTC_MR")
    theirs = _pyg(tmp_path, "PTC_MR", REPO / "data" / "TU" / "PTC_MR")
    assert len(ours) == len(theirs) == 344
    for g, d in zip(ours, theirs):
        assert g.num_nodes == d.num_nodes
        assert _edge_set(g.edge_index) == _edge_set(d.edge_index)
        assert torch.equal(g.x, d.x) and g.y.tolist() == d.y.tolist()


def _wl(g, labels=None) -> str:
    G = nx.Graph()
    G.add_nodes_from(range(g.num_nodes))
    G.add_edges_from(g.edge_index.t().tolist())
    if labels is not None:
        nx.set_node_attributes(G, {v: str(labels[v]) for v in range(g.num_nodes)}, "t")
    return nx.weisfeiler_lehman_graph_hash(G, node_attr="t" if labels is not None else None, iterations=3)


@pytest.mark.skipif(SHARED_TU is None, reason="the TU-format originals (shared/data/TU) are not on this machine")
@pytest.mark.parametrize("name", ["MUTAG", "PROTEINS", "IMDB-BINARY", "IMDB-MULTI"])
@pytest.mark.slow
def test_vendored_gin_data_matches_pygs_tudataset(tmp_path, name):
    ours = load_tu(name)
    theirs = _pyg(tmp_path, name, SHARED_TU / name)
    assert len(ours) == len(theirs)
    assert sum(g.num_nodes for g in ours) == int(theirs._data.num_nodes if hasattr(theirs, "_data") else sum(
        d.num_nodes for d in theirs))
    assert Counter(ours.labels.tolist()) == Counter(theirs.y.tolist())
    if name == "MUTAG":  # the same graphs in another order; atom tags a permutation of PyG's one-hot columns
        ours_h = Counter(_wl(g, g.x.argmax(1).tolist()) for g in ours)
        tag_of_tu = {2: 0, 5: 1, 6: 2, 3: 3, 4: 4, 1: 5, 0: 6}  # data/README: GIN tag -> TU label
        vocab = ours.meta["vocab"]
        ours_tu = Counter(_wl(g, [tag_of_tu[vocab[i]] for i in g.x.argmax(1).tolist()]) for g in ours)
        theirs_tu = Counter(_wl(d, d.x.argmax(1).tolist()) for d in theirs)
        assert ours_tu == theirs_tu and len(ours_h) > 150
        return
    for g, d in zip(ours, theirs):  # same order, same graphs, same labels
        assert g.num_nodes == d.num_nodes and g.y.tolist() == d.y.tolist()
        assert _edge_set(g.edge_index) == _edge_set(d.edge_index)
    if name == "PROTEINS":  # GIN tags are PyG's node-label columns, up to a fixed relabelling
        pairs = {(int(a), int(b)) for g, d in zip(ours, theirs) for a, b in zip(g.x.argmax(1), d.x.argmax(1))}
        assert len(pairs) == ours.num_features == theirs.num_features
