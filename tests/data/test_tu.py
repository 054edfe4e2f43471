"""Tests for the offline TU loader (ampsim.data.tu) against the table in data/README.md."""
from __future__ import annotations

import functools
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from ampsim.data.tu import DATASETS, DataError, TUDataset, load_tu

DATA = Path(__file__).resolve().parents[2] / "data"

# name: (graphs, avg nodes, avg undirected edges, class counts, features)
EXPECTED = {
    "MUTAG": (188, 17.93, 19.79, [63, 125], 7),
    "PTC": (344, 25.56, 25.96, [192, 152], 19),
    "PROTEINS": (1113, 39.06, 72.82, [663, 450], 3),
    "IMDB-BINARY": (1000, 19.77, 96.53, [500, 500], 65),
    "IMDB-MULTI": (1500, 13.00, 65.94, [500, 500, 500], 59),
}
NEVER_TESTED = {"MUTAG": {0, 13, 37, 114, 161, 163, 169, 187}, "PTC": {14, 171, 235, 267},
                "PROTEINS": {25, 314, 454}, "IMDB-BINARY": set(), "IMDB-MULTI": set()}


@functools.lru_cache(maxsize=None)
def dataset(name: str) -> TUDataset:
    return load_tu(name)


@pytest.mark.parametrize("name", DATASETS)
def test_stats_match_readme(name):
    graphs, nodes, edges, counts, features = EXPECTED[name]
    s = dataset(name).stats()
    assert s["graphs"] == graphs and s["classes"] == len(counts)
    assert round(s["avg_nodes"], 2) == nodes and round(s["avg_edges"], 2) == edges
    assert s["class_counts"] == counts
    assert dataset(name).num_features == features


@pytest.mark.parametrize("name", DATASETS)
def test_graphs_are_clean_graph_level_data(name):
    ds = dataset(name)
    assert ds.labels.dtype == torch.long and ds.labels.shape == (len(ds),)
    assert ds.meta["self_loops_dropped"] == ds.meta["duplicates_dropped"] == 0
    used = torch.zeros(ds.num_features)
    for i, g in enumerate(ds):
        assert g.level == "graph" and g.starts is None and g.y.shape == (1,)
        assert int(g.y) == int(ds.labels[i])
        src, dst = g.edge_index
        assert not bool((src == dst).any())
        codes = (src * g.num_nodes + dst).tolist()
        assert len(set(codes)) == len(codes)
        assert set(codes) == set((dst * g.num_nodes + src).tolist())
        assert g.x.shape == (g.num_nodes, ds.num_features) and g.x.dtype == torch.float32
        assert bool(((g.x == 0) | (g.x == 1)).all()) and bool((g.x.sum(1) == 1).all())
        used += g.x.sum(0)
    assert bool((used > 0).all())  # vocabulary is exactly what the data set uses


@pytest.mark.parametrize("name", ["IMDB-BINARY", "IMDB-MULTI"])
def test_imdb_features_are_degree_one_hot(name):
    ds = dataset(name)
    vocab = torch.tensor(ds.meta["vocab"])
    assert ds.meta["feature"] == "degree" and bool((vocab[1:] > vocab[:-1]).all())
    for g in ds[:50]:
        degree = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
        assert torch.equal(vocab[g.x.argmax(1)], degree)


def test_tag_features_are_sorted_tag_one_hot():
    ds = dataset("MUTAG")
    assert ds.meta["feature"] == "tag" and ds.meta["vocab"] == list(range(7))
    assert ds.meta["raw_labels"] == [0, 2]
    first = (DATA / "GIN/MUTAG/MUTAG.txt").read_text().splitlines()[2:25]
    assert ds[0].x.argmax(1).tolist() == [int(line.split()[0]) for line in first]


@pytest.mark.parametrize("name", DATASETS)
def test_folds_partition(name):
    ds = dataset(name)
    n = len(ds)
    tested = set()
    for k in range(10):
        train, test = ds.folds(k)
        assert train.dtype == test.dtype == torch.long
        assert not set(train.tolist()) & set(test.tolist())
        assert sorted(train.tolist() + test.tolist()) == list(range(n))
        assert len(test) == n // 10
        tested |= set(test.tolist())
    assert set(range(n)) - tested == NEVER_TESTED[name]
    with pytest.raises(IndexError):
        ds.folds(10)


def test_folds_read_once_and_returned_fresh(tmp_path):
    root = _copy_mutag(tmp_path)
    ds = load_tu("MUTAG", root=root)
    train, test = ds.folds(4)
    expected = (train.tolist(), test.tolist())
    train[:] = -1  # the caller's copy
    for path in (root / "GIN/MUTAG/10fold_idx").iterdir():
        path.unlink()  # fold 4 was read, verified and kept on first use
    again = ds.folds(4)
    assert (again[0].tolist(), again[1].tolist()) == expected
    with pytest.raises(FileNotFoundError, match="test_idx-6.txt|train_idx-6.txt"):
        ds.folds(5)  # ... once per fold, on first use


def test_checksum_list_parsed_per_content(tmp_path):
    root = _copy_mutag(tmp_path)
    load_tu("MUTAG", root=root)
    sums = root / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("GIN/MUTAG/MUTAG.txt", "GIN/MUTAG/other.txt"))
    with pytest.raises(DataError, match="not listed"):
        load_tu("MUTAG", root=root)  # the edited list is parsed again, whatever the file's mtime


def test_aliases_and_case():
    assert load_tu("ptc").name == "PTC" and load_tu("ptc_mr").name == "PTC_MR"  # GIN's file vs the TU original
    assert load_tu("imdbbinary").name == "IMDB-BINARY"
    assert load_tu("IMDBMulti").name == "IMDB-MULTI"
    with pytest.raises(ValueError, match="unknown"):
        load_tu("COLLAB")


def test_indexing_and_subsets():
    ds = dataset("MUTAG")
    assert len(list(ds)) == len(ds) == 188 and ds[-1] is ds[187]
    for idx in ([3, 1, 4], torch.tensor([3, 1, 4])):
        sub = ds[idx]
        assert isinstance(sub, TUDataset) and len(sub) == 3 and sub[0] is ds[3]
        assert sub.labels.tolist() == ds.labels[[3, 1, 4]].tolist()
        assert sub.num_features == ds.num_features and sub.num_classes == ds.num_classes
    assert len(ds[10:20]) == 10 and len(ds[ds.labels == 0]) == 63
    # folds of a subset are positions into the subset
    train, test = ds.folds(0)
    sub = ds[test]
    sub_train, sub_test = sub.folds(0)
    assert len(sub_train) == 0 and sorted(sub_test.tolist()) == list(range(len(test)))


def _copy_mutag(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "GIN/MUTAG", tmp_path / "GIN/MUTAG")
    shutil.copy(DATA / "SHA256SUMS", tmp_path / "SHA256SUMS")
    return tmp_path


def test_sha256sums_cover_vendored_files():
    listed = {}
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        listed[rel.strip()] = digest
    files = {p.relative_to(DATA).as_posix() for d in ("GIN", "TU") for p in (DATA / d).rglob("*") if p.is_file()}
    assert files == set(listed) and len(files) == 105 + 6  # GIN files + TU/PTC_MR
    for rel, digest in listed.items():
        assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest, rel


def test_corrupt_line_names_file_and_line(tmp_path):
    root = _copy_mutag(tmp_path)
    path = root / "GIN/MUTAG/MUTAG.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = "2 2 1 x\n"  # a node line of graph 0
    path.write_text("".join(lines))
    with pytest.raises(DataError, match=r"MUTAG\.txt:5: expected integers"):
        load_tu("MUTAG", root=root, verify=False)
    lines[4] = "2 2 1 99\n"  # neighbour out of range
    path.write_text("".join(lines))
    with pytest.raises(DataError, match=r"MUTAG\.txt:5: neighbour 99 out of range"):
        load_tu("MUTAG", root=root, verify=False)
    with pytest.raises(DataError, match=r"sha256 .* listed at .*SHA256SUMS:\d+"):
        load_tu("MUTAG", root=root)


def test_flipped_byte_fails_checksum(tmp_path):
    root = _copy_mutag(tmp_path)
    path = root / "GIN/MUTAG/10fold_idx/test_idx-3.txt"
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    ds = load_tu("MUTAG", root=root)  # the graph file itself is intact
    ds.folds(0)
    with pytest.raises(DataError, match="test_idx-3.txt: sha256"):
        ds.folds(2)


def test_malformed_checksum_line(tmp_path):
    root = _copy_mutag(tmp_path)
    sums = root / "SHA256SUMS"
    sums.write_text("not-a-digest  GIN/MUTAG/MUTAG.txt\n" + sums.read_text())
    with pytest.raises(DataError, match=r"SHA256SUMS:1: malformed"):
        load_tu("MUTAG", root=root)


def test_missing_file_is_reported_not_downloaded(tmp_path, monkeypatch):
    root = _copy_mutag(tmp_path)
    (root / "GIN/MUTAG/MUTAG.txt").unlink()
    with pytest.raises(FileNotFoundError, match="never downloads") as err:
        load_tu("MUTAG", root=root)
    assert str(root / "GIN/MUTAG/MUTAG.txt") in str(err.value)
    monkeypatch.setenv("AMPSIM_DATA", str(root))  # the env var redirects the default root
    with pytest.raises(FileNotFoundError, match="MUTAG.txt"):
        load_tu("MUTAG")


def test_self_loops_and_duplicates_are_dropped(tmp_path):
    path = tmp_path / "GIN/MUTAG/MUTAG.txt"
    path.parent.mkdir(parents=True)
    # node 0 has a self-loop and lists 1 twice; edge 1-2 is listed one way only
    path.write_text("1\n3 5\n4 3 0 1 1\n1 2 0 2\n1 0\n")
    with pytest.warns(UserWarning, match="1 self-loop and 1 duplicate"):
        ds = load_tu("mutag", root=tmp_path, verify=False)
    g = ds[0]
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert ds.meta["self_loops_dropped"] == 1 and ds.meta["duplicates_dropped"] == 1
    assert ds.meta["one_way_completed"] == 1
    assert ds.num_features == 2 and g.x.tolist() == [[0, 1], [1, 0], [1, 0]]
