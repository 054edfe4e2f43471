"""TU Dortmund's own text format (``<NAME>_A.txt``, ``_graph_indicator``, ``_graph_labels``, ``_node_labels``).

The format PyG's ``TUDataset`` reads. ampsim vendors it for ``PTC_MR`` only
(``data/TU/PTC_MR``): GIN's file named ``PTC`` (what :func:`ampsim.data.tu.load_tu`
reads for ``"PTC"``, 8792 nodes) is PTC_MR **with explicit hydrogens**, while
``"PTC_MR"`` here is the TU original (4915 nodes) that PyG and the authors' code load.
Both readings are available by name through ``load_tu``.

Rules (as PyG reads these files): node ids in ``_A.txt`` are 1-based and global; edges
are symmetrised and deduplicated, self-loops dropped; node features are a one-hot of
the node label over the data set's sorted label vocabulary; graph labels are remapped
to ``0..C-1`` in sorted order of the raw labels (PTC_MR: -1, 1 -> 0, 1). The TU order
of graphs is not GIN's, so these data sets have no GIN fold files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from .graphdata import GraphData
from .tu import DataError, TUDataset, _data_root, _edges, _read

__all__ = ["RAW_DATASETS", "load_tu_raw", "read_tu_folder"]

RAW_DATASETS = ("PTC_MR",)


def _column(root: Path, rel: str, verify: bool) -> list[int]:
    out = []
    for lineno, line in enumerate(_read(root, rel, verify).splitlines(), 1):
        if line.strip():
            try:
                out.append(int(line.split(",")[0]))
            except ValueError:
                raise DataError(f"{root / rel}:{lineno}: expected an integer, got {line!r}") from None
    return out


def read_tu_folder(root: Path, name: str, verify: bool = True) -> TUDataset:
    """Read ``root/TU/<name>/<name>_*.txt`` into a :class:`TUDataset` (see the module doc for the rules)."""
    base = f"TU/{name}/{name}"
    pairs = []
    for lineno, line in enumerate(_read(root, f"{base}_A.txt", verify).splitlines(), 1):
        if line.strip():
            try:
                u, v = (int(p) for p in line.split(","))
            except ValueError:
                raise DataError(f"{root / base}_A.txt:{lineno}: expected 'u, v', got {line!r}") from None
            pairs.append((u - 1, v - 1))
    graph_of = [g - 1 for g in _column(root, f"{base}_graph_indicator.txt", verify)]
    raw_y = _column(root, f"{base}_graph_labels.txt", verify)
    tags = torch.tensor(_column(root, f"{base}_node_labels.txt", verify), dtype=torch.long)
    if len(tags) != len(graph_of):
        raise DataError(f"{root / base}_node_labels.txt: {len(tags)} labels for {len(graph_of)} nodes")
    num_graphs = len(raw_y)
    first = [0] * (num_graphs + 1)
    for g in graph_of:
        first[g + 1] += 1
    for g in range(num_graphs):
        first[g + 1] += first[g]
    local: list[list[tuple[int, int]]] = [[] for _ in range(num_graphs)]
    for u, v in pairs:
        g = graph_of[u]
        if graph_of[v] != g:
            raise DataError(f"{root / base}_A.txt: edge ({u + 1}, {v + 1}) joins two graphs")
        local[g].append((u - first[g], v - first[g]))
    vocab = torch.unique(tags)
    labels = sorted(set(raw_y))
    label_id = {y: i for i, y in enumerate(labels)}
    graphs, dropped = [], {"self_loops": 0, "duplicates": 0, "one_way": 0}
    for g in range(num_graphs):
        n = first[g + 1] - first[g]
        edge_index, counts = _edges(n, local[g])
        for key in dropped:
            dropped[key] += counts[key]
        t = tags[first[g]:first[g + 1]]
        x = torch.nn.functional.one_hot(torch.searchsorted(vocab, t), len(vocab)).float().reshape(n, len(vocab))
        graphs.append(GraphData(edge_index=edge_index, x=x, y=torch.tensor([label_id[raw_y[g]]]), num_nodes=n,
                                level="graph", meta={"index": g}))
    meta = {"feature": "tag", "vocab": vocab.tolist(), "raw_labels": labels, "format": "TU",
            "self_loops_dropped": dropped["self_loops"], "duplicates_dropped": dropped["duplicates"],
            "one_way_completed": dropped["one_way"], "file": str(root / f"TU/{name}")}
    return TUDataset(name, graphs, num_classes=len(labels), num_features=len(vocab), root=root, verify=verify,
                     meta=meta)


def load_tu_raw(name: str, root: Union[str, Path, None] = None, verify: bool = True) -> TUDataset:
    """A vendored TU-format data set by name (:data:`RAW_DATASETS`); checked against ``data/SHA256SUMS``."""
    key = name.strip().upper()
    if key not in RAW_DATASETS:
        raise ValueError(f"no TU-format copy of {name!r} is vendored; choose from {', '.join(RAW_DATASETS)}")
    return read_tu_folder(_data_root(root), key, verify)
