"""Planetoid citation graphs (Cora, CiteSeer, PubMed), read offline from ``data/planetoid/``.

The standard node-classification benchmarks of Yang, Cohen & Salakhutdinov (ICML 2016) with
the public split of Kipf & Welling (ICLR 2017): 20 labelled nodes per class for training,
500 validation and 1000 test nodes. ``load_planetoid`` reads the vendored plain files
(``edges.txt``, ``labels.txt``, ``features.npz``, ``split.json``; see ``data/README.md``),
checks each against ``data/planetoid/SHA256SUMS`` and returns a :class:`Planetoid`: one
node-level :class:`GraphData` (edges once per direction, sorted) plus boolean masks.

PubMed is vendored as graph and labels only (its feature file could not be retrieved): its
``x`` has zero columns and it has no split (``train_mask`` etc. are ``None``); use it as a
real topology. Nothing is ever downloaded: a missing file is ``FileNotFoundError``, a checksum
mismatch or malformed line is :class:`~ampsim.data.tu.DataError`, each naming the file.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from ampsim import validate as V
from ampsim.data.graphdata import GraphData
from ampsim.data.tu import DataError, _data_root, read_verified as _read

__all__ = ["DATASETS", "DataError", "Planetoid", "load_planetoid", "row_normalize"]

DATASETS = ("Cora", "CiteSeer", "PubMed")
_FOLDER = {"CORA": "cora", "CITESEER": "citeseer", "PUBMED": "pubmed"}
_CANONICAL = {"CORA": "Cora", "CITESEER": "CiteSeer", "PUBMED": "PubMed"}
_NUM_CLASSES = {"Cora": 7, "CiteSeer": 6, "PubMed": 3}


@dataclass(frozen=True)
class Planetoid:
    """One citation graph with the public split (PyG's ``Planetoid(split="public")``).

    ``graph`` is node-level: ``x`` (n, F) float32 bag-of-words (F = 0 for PubMed), ``y`` (n,)
    long. ``train_mask``/``val_mask``/``test_mask`` are (n,) bool, disjoint, or ``None`` where
    the data set has no split (PubMed). ``unlabeled`` marks nodes without a label in the
    source (CiteSeer's 15; class 0 in ``y``, never in a split).
    """

    name: str
    graph: GraphData
    num_classes: int
    train_mask: Optional[torch.Tensor]
    val_mask: Optional[torch.Tensor]
    test_mask: Optional[torch.Tensor]
    unlabeled: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        """Undirected edges (each stored once per direction in ``graph.edge_index``)."""
        return self.graph.num_edges

    @property
    def num_features(self) -> int:
        return int(self.graph.x.shape[1])

    def __repr__(self) -> str:
        split = ("no split" if self.train_mask is None else
                 f"train/val/test={int(self.train_mask.sum())}/{int(self.val_mask.sum())}/"
                 f"{int(self.test_mask.sum())}")
        return (f"Planetoid({self.name}, nodes={self.num_nodes}, edges={self.num_edges}, "
                f"features={self.num_features}, classes={self.num_classes}, {split})")


def row_normalize(x: torch.Tensor) -> torch.Tensor:
    """x_i / sum_j x_ij for every row with a non-zero sum (Kipf & Welling's feature preprocessing)."""
    s = x.sum(1, keepdim=True)
    return x / torch.where(s == 0, torch.ones_like(s), s)


def _canonical(name: str) -> str:
    key = name.strip().upper()
    if key not in _CANONICAL:
        raise ValueError(f"unknown Planetoid data set {name!r}; choose from {', '.join(DATASETS)}")
    return _CANONICAL[key]


def _int_table(path: Path, data: bytes, cols: int) -> np.ndarray:
    """Whitespace-separated non-negative integers, ``cols`` per line, as an (m, cols) array."""
    rows = []
    for lineno, line in enumerate(data.decode("ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        tok = line.split()
        if len(tok) != cols or not all(t.isdigit() for t in tok):
            raise DataError(f"{path}:{lineno}: expected {cols} non-negative integer(s), got {line!r}")
        rows.append([int(t) for t in tok])
    return np.asarray(rows, dtype=np.int64).reshape(-1, cols)


def _edges(path: Path, data: bytes, n: int) -> torch.Tensor:
    pairs = _int_table(path, data, 2)
    if pairs.size and int(pairs.max()) >= n:
        line = int(np.nonzero(pairs.max(1) >= n)[0][0]) + 1
        raise DataError(f"{path}:{line}: node id out of range for {n} nodes")
    bad = np.nonzero(pairs[:, 0] >= pairs[:, 1])[0]
    if bad.size:
        raise DataError(f"{path}:{int(bad[0]) + 1}: edges must be listed once as 'u v' with u < v")
    codes = pairs[:, 0] * n + pairs[:, 1]
    if np.unique(codes).size != codes.size:
        raise DataError(f"{path}: duplicate edges")
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    return torch.from_numpy(np.ascontiguousarray(both.T))


def _features(path: Path, data: bytes, n: int) -> torch.Tensor:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            indptr, indices, values, shape = (z[k] for k in ("indptr", "indices", "data", "shape"))
    except (KeyError, ValueError, OSError) as err:
        raise DataError(f"{path}: not a CSR feature archive (indptr, indices, data, shape): {err}") from None
    rows, cols = (int(s) for s in shape)
    V.within_memory(f"{path}: a feature matrix of shape ({rows:,}, {cols:,})", 4.0 * max(rows, 0) * max(cols, 0),
                    V.MAX_BYTES, "ampsim.validate.MAX_BYTES (a module setting)")
    if rows != n or indptr.shape != (n + 1,) or int(indptr[-1]) != len(indices) \
            or len(indices) != len(values) \
            or (len(indices) and (indices.min() < 0 or indices.max() >= cols)):
        raise DataError(f"{path}: inconsistent CSR arrays for shape ({rows}, {cols}) and {n} nodes")
    x = torch.zeros(n, cols, dtype=torch.float32)
    row = np.repeat(np.arange(n), np.diff(indptr))
    x[torch.from_numpy(row), torch.from_numpy(indices.astype(np.int64))] = torch.from_numpy(
        values.astype(np.float32))
    return x


def _split(path: Path, data: bytes, n: int) -> dict[str, torch.Tensor]:
    try:
        raw = json.loads(data)
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON: {err}") from None
    out, seen = {}, torch.zeros(n, dtype=torch.bool)
    for part in ("train", "val", "test", "unlabeled_nodes"):
        ids = raw.get(part, [] if part == "unlabeled_nodes" else None)
        if not isinstance(ids, list) or not all(isinstance(i, int) and 0 <= i < n for i in ids):
            raise DataError(f"{path}: '{part}' must be a list of node ids in 0..{n - 1}")
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.tensor(ids, dtype=torch.long)] = True
        if part != "unlabeled_nodes":
            if int(mask.sum()) != len(ids) or bool((mask & seen).any()):
                raise DataError(f"{path}: '{part}' repeats a node or overlaps another split")
            seen |= mask
        out[part] = mask
    if bool((out["unlabeled_nodes"] & seen).any()):
        raise DataError(f"{path}: an unlabeled node is in train/val/test")
    return out


def load_planetoid(name: str, root: Union[str, Path, None] = None, verify: bool = True) -> Planetoid:
    """Load Cora, CiteSeer or PubMed (case-insensitive) from the vendored files; never downloads.

    ``root`` is the data folder holding ``planetoid/`` (default ``$AMPSIM_DATA`` or the repo's
    ``data/``). With ``verify`` every file read is checked against ``planetoid/SHA256SUMS``.
    Features are returned raw (binary); apply :func:`row_normalize` for the GCN preprocessing.
    """
    name = _canonical(name)
    base = _data_root(root) / "planetoid"
    folder = _FOLDER[name.upper()]
    rel = lambda f: f"{folder}/{f}"  # noqa: E731

    labels_path = base / rel("labels.txt")
    labels = _int_table(labels_path, _read(base, rel("labels.txt"), verify), 1)[:, 0]
    n = len(labels)
    k = _NUM_CLASSES[name]
    if n == 0 or int(labels.max()) >= k:
        raise DataError(f"{labels_path}: expected class ids in 0..{k - 1} for {name}")
    y = torch.from_numpy(labels)
    edge_index = _edges(base / rel("edges.txt"), _read(base, rel("edges.txt"), verify), n)

    if name == "PubMed":
        x = torch.zeros(n, 0)
        masks: dict[str, Optional[torch.Tensor]] = {"train": None, "val": None, "test": None}
        unlabeled = torch.zeros(n, dtype=torch.bool)
    else:
        x = _features(base / rel("features.npz"), _read(base, rel("features.npz"), verify), n)
        split = _split(base / rel("split.json"), _read(base, rel("split.json"), verify), n)
        masks = {p: split[p] for p in ("train", "val", "test")}
        unlabeled = split["unlabeled_nodes"]

    graph = GraphData(edge_index=edge_index, x=x, y=y, num_nodes=n, level="node",
                      meta={"dataset": name})
    return Planetoid(name=name, graph=graph, num_classes=k, train_mask=masks["train"],
                     val_mask=masks["val"], test_mask=masks["test"], unlabeled=unlabeled,
                     meta={"folder": str(base / folder)})
