"""Tests for the offline Planetoid loader (ampsim.data.planetoid) against data/README.md."""
from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
import torch

from ampsim.data.planetoid import DATASETS, DataError, Planetoid, load_planetoid, row_normalize

DATA = Path(__file__).resolve().parents[2] / "data"

# name: (nodes, undirected edges, features, classes, train/val/test, nonzero features, unlabeled)
EXPECTED = {
    "Cora": (2708, 5278, 1433, 7, (140, 500, 1000), 49216, 0),
    "CiteSeer": (3327, 4552, 3703, 6, (120, 500, 1000), 105165, 15),
    "PubMed": (19717, 44324, 0, 3, None, 0, 0),
}


@functools.lru_cache(maxsize=None)
def dataset(name: str) -> Planetoid:
    return load_planetoid(name)


@pytest.mark.parametrize("name", DATASETS)
def test_counts_match_readme(name):
    nodes, edges, feats, classes, split, nnz, unlabeled = EXPECTED[name]
    ds = dataset(name)
    assert (ds.num_nodes, ds.num_edges, ds.num_features, ds.num_classes) == (nodes, edges, feats, classes)
    assert ds.graph.edge_index.shape == (2, 2 * edges)
    assert int((ds.graph.x != 0).sum()) == nnz
    assert int(ds.unlabeled.sum()) == unlabeled
    if split is None:
        assert ds.train_mask is ds.val_mask is ds.test_mask is None
    else:
        assert tuple(int(m.sum()) for m in (ds.train_mask, ds.val_mask, ds.test_mask)) == split


@pytest.mark.parametrize("name", ["Cora", "CiteSeer"])
def test_public_split_is_20_per_class_and_disjoint(name):
    ds = dataset(name)
    assert torch.bincount(ds.graph.y[ds.train_mask], minlength=ds.num_classes).tolist() == [20] * ds.num_classes
    assert not bool((ds.train_mask & ds.val_mask).any() or (ds.val_mask & ds.test_mask).any()
                    or (ds.train_mask & ds.test_mask).any())
    assert not bool((ds.unlabeled & (ds.train_mask | ds.val_mask | ds.test_mask)).any())
    # Kipf & Welling's public split: the first 20 per class are nodes 0..(20C-1), val the next 500
    assert ds.train_mask.nonzero().flatten().tolist() == list(range(20 * ds.num_classes))
    assert ds.val_mask.nonzero().flatten().tolist() == list(range(20 * ds.num_classes, 20 * ds.num_classes + 500))


@pytest.mark.parametrize("name", DATASETS)
def test_edges_symmetric_sorted_no_loops(name):
    g = dataset(name).graph
    src, dst = g.edge_index
    n = g.num_nodes
    assert g.level == "node" and g.edge_index.dtype == torch.long
    assert not bool((src == dst).any())
    codes = src * n + dst
    assert bool((codes[1:] > codes[:-1]).all())  # sorted, no duplicates
    assert torch.equal(torch.sort(dst * n + src).values, codes)  # every edge both ways
    assert g.y.shape == (n,) and int(g.y.max()) == dataset(name).num_classes - 1


def test_names_case_insensitive_and_unknown_rejected():
    assert load_planetoid("cora").name == "Cora" and load_planetoid(" PUBMED ").name == "PubMed"
    with pytest.raises(ValueError, match="unknown Planetoid data set 'Reddit'"):
        load_planetoid("Reddit")


def test_row_normalize():
    x = torch.tensor([[1.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(row_normalize(x), torch.tensor([[0.25, 0.25, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]]))
    x = row_normalize(dataset("Cora").graph.x)
    assert torch.allclose(x.sum(1), torch.ones(2708))


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "planetoid", tmp_path / "planetoid")
    return tmp_path


def test_missing_file_is_named(tmp_path):
    root = _copy(tmp_path)
    (root / "planetoid" / "cora" / "split.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"cora/split\.json.*never downloads"):
        load_planetoid("Cora", root=root)


def test_corrupt_file_fails_checksum_naming_it(tmp_path):
    root = _copy(tmp_path)
    path = root / "planetoid" / "citeseer" / "edges.txt"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\n\n", 1))
    with pytest.raises(DataError, match=r"citeseer/edges\.txt: sha256 [0-9a-f]{64} does not match"):
        load_planetoid("CiteSeer", root=root)


def test_malformed_line_names_file_and_line_without_verify(tmp_path):
    root = _copy(tmp_path)
    path = root / "planetoid" / "pubmed" / "edges.txt"
    lines = path.read_text().splitlines()
    lines[2] = "5 3"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"pubmed/edges\.txt:3: edges must be listed once"):
        load_planetoid("PubMed", root=root, verify=False)
    lines[2] = "x y"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"pubmed/edges\.txt:3: expected 2 non-negative"):
        load_planetoid("PubMed", root=root, verify=False)
