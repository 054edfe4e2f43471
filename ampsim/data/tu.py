"""TU graph-classification benchmarks, read offline from the vendored GIN-format files.

The five small TU Dortmund data sets (MUTAG, PTC, PROTEINS, IMDB-BINARY, IMDB-MULTI)
that the paper evaluates AMP on in Section 5.3 / Table 4, following the GIN protocol
(Xu et al. 2019). ``load_tu`` reads ``data/GIN/<NAME>/<NAME>.txt`` (the DGCNN/GIN text
format) and its ``10fold_idx`` split files, checks them against ``data/SHA256SUMS`` and
returns a :class:`TUDataset` of :class:`GraphData` (``level="graph"``). Nothing is ever
downloaded: a missing file is an error.

Features follow GIN: a one-hot of the node tag for the molecule and protein sets, a
one-hot of the node degree for the IMDB sets (``--degree_as_tag``). Both vocabularies
are taken over the whole data set, sorted; labels are remapped to ``0..C-1`` in sorted
order of the raw labels. Edges are symmetrised and deduplicated, self-loops dropped;
anything dropped is counted in ``TUDataset.meta`` and reported with a warning.

TU Dortmund's own text format (``<NAME>_A.txt``, ``_graph_indicator``, ``_graph_labels``,
``_node_labels``), the format PyG's ``TUDataset`` reads, is vendored for ``PTC_MR`` only
(``data/TU/PTC_MR``, :func:`load_tu_raw`): GIN's file named ``PTC`` (what ``load_tu("PTC")``
reads, 8792 nodes) is PTC_MR **with explicit hydrogens**, while ``"PTC_MR"`` is the TU
original (4915 nodes) that PyG and the authors' code load. Rules (as PyG reads these files):
node ids in ``_A.txt`` are 1-based and global; edges are symmetrised and deduplicated,
self-loops dropped; node features are a one-hot of the node label over the data set's sorted
label vocabulary; graph labels are remapped to ``0..C-1`` in sorted order of the raw labels
(PTC_MR: -1, 1 -> 0, 1). The TU order of graphs is not GIN's, so these data sets have no GIN
fold files.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ampsim.data.graphdata import GraphData

__all__ = ["DATASETS", "RAW_DATASETS", "DataError", "TUDataset", "load_tu", "load_tu_raw", "read_tu_folder"]

DATASETS = ("MUTAG", "PTC", "PROTEINS", "IMDB-BINARY", "IMDB-MULTI")

# canonical name -> folder/file stem of the GIN format
_GIN_NAME = {"MUTAG": "MUTAG", "PTC": "PTC", "PROTEINS": "PROTEINS",
             "IMDB-BINARY": "IMDBBINARY", "IMDB-MULTI": "IMDBMULTI"}
_ALIASES = {**{n: n for n in DATASETS},
            "IMDBBINARY": "IMDB-BINARY", "IMDBMULTI": "IMDB-MULTI"}
_DEGREE_AS_TAG = ("IMDB-BINARY", "IMDB-MULTI")
_NUM_FOLDS = 10

# (resolved path, size, mtime_ns, expected sha256) of files already verified in this process
_VERIFIED: set[tuple[str, int, int, str]] = set()
_SUMS: dict[str, dict[str, tuple[str, int]]] = {}  # parsed SHA256SUMS files by their text


class DataError(ValueError):
    """A data file is malformed or fails its checksum; the message names file and line."""


def _canonical(name: str) -> str:
    key = name.strip().upper()
    if key not in _ALIASES:
        raise ValueError(f"unknown TU data set {name!r}; choose from {', '.join(DATASETS)}")
    return _ALIASES[key]


def _data_root(root: Union[str, Path, None]) -> Path:
    if root is None:
        root = os.environ.get("AMPSIM_DATA") or Path(__file__).resolve().parents[2] / "data"
    return Path(root)


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"data file not found: {path} (ampsim never downloads data; restore the vendored "
        f"files under data/ from the repository, or point AMPSIM_DATA at a copy)")


def _read_sums(root: Path) -> dict[str, tuple[str, int]]:
    """Parse ``root/SHA256SUMS`` into {relative path: (hex digest, line number)}.

    Parsed once per content and process (the file is re-read every call); do not modify the result."""
    path = root / "SHA256SUMS"
    if not path.is_file():
        raise _missing(path)
    text = path.read_text()
    if text not in _SUMS:
        _SUMS[text] = _parse_sums(path, text)
    return _SUMS[text]


def _parse_sums(path: Path, text: str) -> dict[str, tuple[str, int]]:
    sums: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        if len(parts) != 2 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise DataError(f"{path}:{lineno}: malformed checksum line {line!r}")
        sums[parts[1].strip().lstrip("*")] = (digest, lineno)
    return sums


def read_verified(root: Path, rel: str, verify: bool) -> bytes:
    """The bytes of ``root/rel``, checked against ``root/SHA256SUMS`` when ``verify``.

    The one checksummed reader of vendored data (TU/GIN sets, Planetoid): a missing file
    is ``FileNotFoundError`` naming it, a file not listed or with another digest a
    :class:`DataError` naming the file and the SHA256SUMS line. A file is hashed once per
    (path, size, mtime) and process.
    """
    path = root / rel
    if not path.is_file():
        raise _missing(path)
    data = path.read_bytes()
    if verify:
        sums_path = root / "SHA256SUMS"
        sums = _read_sums(root)
        if rel not in sums:
            raise DataError(f"{path}: not listed in {sums_path}")
        expected, lineno = sums[rel]
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, expected)
        if key not in _VERIFIED:
            got = hashlib.sha256(data).hexdigest()
            if got != expected:
                raise DataError(f"{path}: sha256 {got} does not match {expected} "
                                f"listed at {sums_path}:{lineno}")
            _VERIFIED.add(key)
    return data


def _read(root: Path, rel: str, verify: bool) -> str:
    """The ASCII text of ``root/rel`` (:func:`read_verified`)."""
    data = read_verified(root, rel, verify)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(f"{root / rel}:{line}: non-ASCII byte") from None


def _ints(path: Path, lineno: int, line: str, what: str) -> list[int]:
    try:
        return [int(tok) for tok in line.split()]
    except ValueError:
        raise DataError(f"{path}:{lineno}: expected integers ({what}), got {line!r}") from None


def _parse_gin(path: Path, text: str) -> list[tuple[int, int, list[int], list[tuple[int, int]]]]:
    """Parse the GIN/DGCNN text format into (n, label, tags, directed pairs) per graph."""
    lines = text.splitlines()
    pos = 0

    def next_line(what: str) -> tuple[int, list[int]]:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1
        if pos >= len(lines):
            raise DataError(f"{path}:{len(lines) + 1}: unexpected end of file, expected {what}")
        pos += 1
        return pos, _ints(path, pos, lines[pos - 1], what)

    lineno, head = next_line("the number of graphs")
    if len(head) != 1 or head[0] < 0:
        raise DataError(f"{path}:{lineno}: first line must be the number of graphs")
    graphs = []
    for _ in range(head[0]):
        lineno, nl = next_line("'n label' graph header")
        if len(nl) != 2 or nl[0] < 0:
            raise DataError(f"{path}:{lineno}: graph header must be 'n label', got {lines[lineno - 1]!r}")
        n, label = nl
        tags, pairs = [], []
        for v in range(n):
            lineno, row = next_line("node line 'tag m nbr_1 .. nbr_m'")
            if len(row) < 2 or row[1] < 0 or len(row) < 2 + row[1]:
                raise DataError(f"{path}:{lineno}: node line must be 'tag m nbr_1 .. nbr_m'")
            if len(row) > 2 + row[1]:
                raise DataError(f"{path}:{lineno}: continuous node attributes are not supported")
            for u in row[2:]:
                if not 0 <= u < n:
                    raise DataError(f"{path}:{lineno}: neighbour {u} out of range for a graph of {n} nodes")
                pairs.append((v, u))
            tags.append(row[0])
        graphs.append((n, label, tags, pairs))
    while pos < len(lines):
        if lines[pos].strip():
            raise DataError(f"{path}:{pos + 1}: trailing data after {head[0]} graphs")
        pos += 1
    return graphs


def _edges(n: int, pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, dict[str, int]]:
    """Symmetrise, deduplicate and drop self-loops; return sorted edge_index and counts."""
    seen: set[tuple[int, int]] = set()
    loops = dups = 0
    for v, u in pairs:
        if v == u:
            loops += 1
        elif (v, u) in seen:
            dups += 1
        else:
            seen.add((v, u))
    one_way = sum((u, v) not in seen for v, u in seen)
    seen |= {(u, v) for v, u in seen}
    edge_index = torch.tensor(sorted(seen), dtype=torch.long).reshape(-1, 2).t().contiguous()
    return edge_index, {"self_loops": loops, "duplicates": dups, "one_way": one_way}


class TUDataset(Sequence):
    """A read-only sequence of graph-level :class:`GraphData`, one per TU graph.

    Indexing with an int gives a graph; a slice, list, long or bool tensor gives a new
    ``TUDataset`` that shares the vocabularies (``num_features``, ``num_classes``).
    ``folds(k)`` returns the GIN split ``k`` (0..9) as positions into this data set.
    """

    def __init__(self, name: str, graphs: list[GraphData], *, num_classes: int,
                 num_features: int, root: Path, verify: bool, meta: dict[str, Any],
                 index: Optional[torch.Tensor] = None, total: Optional[int] = None) -> None:
        self.name = name
        self.num_classes = num_classes
        self.num_features = num_features
        self.meta = meta
        self._graphs = graphs
        self._root, self._verify = root, verify
        self._total = len(graphs) if total is None else total
        self._index = torch.arange(len(graphs)) if index is None else index
        self.labels = torch.tensor([int(g.y[0]) for g in graphs], dtype=torch.long)
        self._folds: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # parsed GIN folds of this snapshot

    def __len__(self) -> int:
        return len(self._graphs)

    def __getitem__(self, idx: Any) -> Union[GraphData, "TUDataset"]:
        if isinstance(idx, int) or (isinstance(idx, torch.Tensor) and idx.dim() == 0):
            return self._graphs[int(idx)]
        if isinstance(idx, slice):
            idx = range(len(self))[idx]
        idx = torch.as_tensor(idx)
        if idx.dtype == torch.bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {tuple(idx.shape)} for {len(self)} graphs")
            idx = idx.nonzero().flatten()
        idx = idx.long().flatten()
        picked = [self._graphs[int(i)] for i in idx]
        return TUDataset(self.name, picked, num_classes=self.num_classes,
                         num_features=self.num_features, root=self._root, verify=self._verify,
                         meta=self.meta, index=self._index[idx], total=self._total)

    def __repr__(self) -> str:
        return (f"TUDataset({self.name}, graphs={len(self)}, classes={self.num_classes}, "
                f"features={self.num_features})")

    def folds(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(train_idx, test_idx) of GIN fold ``k`` in 0..9 (files ``*_idx-{k+1}.txt``).

        The files are read, verified and checked once per data set object, like its graphs;
        each call returns new tensors."""
        if self.name not in _GIN_NAME:
            raise ValueError(f"{self.name} is in TU order and has no GIN fold files; split it yourself "
                             "(e.g. sklearn's StratifiedKFold)")
        if not 0 <= k < _NUM_FOLDS:
            raise IndexError(f"fold {k} out of range 0..{_NUM_FOLDS - 1}")
        if k not in self._folds:
            self._folds[k] = self._read_fold(k)
        train, test = self._folds[k]
        return train.clone(), test.clone()

    def _read_fold(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        stem = _GIN_NAME[self.name]
        split = []
        for part in ("train", "test"):
            rel = f"GIN/{stem}/10fold_idx/{part}_idx-{k + 1}.txt"
            path = self._root / rel
            idx = []
            for lineno, line in enumerate(_read(self._root, rel, self._verify).splitlines(), 1):
                if not line.strip():
                    continue
                row = _ints(path, lineno, line, "a graph index")
                if len(row) != 1 or not 0 <= row[0] < self._total:
                    raise DataError(f"{path}:{lineno}: expected one graph index in 0..{self._total - 1}")
                idx.append(row[0])
            split.append(torch.tensor(idx, dtype=torch.long))
        train, test = split
        covered = torch.zeros(self._total, dtype=torch.long)
        covered.index_add_(0, torch.cat([train, test]), torch.ones(len(train) + len(test), dtype=torch.long))
        if not bool((covered == 1).all()):
            raise DataError(f"{self._root / f'GIN/{stem}/10fold_idx'}: fold {k + 1} train/test "
                            f"do not partition the {self._total} graphs")
        # map indices into the full data set to positions in this (possibly sub-) set
        where = torch.full((self._total,), -1, dtype=torch.long)
        where[self._index] = torch.arange(len(self))
        train, test = where[train], where[test]
        return train[train >= 0], test[test >= 0]

    def stats(self) -> dict[str, Any]:
        """Counts and averages comparable to the table in ``data/README.md``."""
        n = max(len(self), 1)
        return {
            "graphs": len(self),
            "classes": self.num_classes,
            "class_counts": torch.bincount(self.labels, minlength=self.num_classes).tolist(),
            "avg_nodes": sum(g.num_nodes for g in self._graphs) / n,
            "avg_edges": sum(g.num_edges for g in self._graphs) / n,
        }


def load_tu(name: str, root: Union[str, Path, None] = None, verify: bool = True) -> TUDataset:
    """Load a TU benchmark from the vendored GIN-format files (never downloads).

    ``name`` is one of :data:`DATASETS` or an alias (``IMDBBINARY``, ``IMDBMULTI``),
    case-insensitive; ``"PTC"`` is GIN's file (explicit hydrogens, 8792 nodes) and
    ``"PTC_MR"`` the TU original (4915 nodes, :func:`load_tu_raw`). ``root`` defaults to ``$AMPSIM_DATA`` or the repo's
    ``data/``. With ``verify`` the files read are checked against ``root/SHA256SUMS``.
    Raises ``FileNotFoundError`` for a missing file, :class:`DataError` for a checksum
    mismatch or a malformed line.
    """
    if name.strip().upper() == "PTC_MR":  # the TU original (4915 nodes), not GIN's PTC with hydrogens (8792)
        return load_tu_raw("PTC_MR", root, verify)
    name = _canonical(name)
    root = _data_root(root)
    stem = _GIN_NAME[name]
    rel = f"GIN/{stem}/{stem}.txt"
    parsed = _parse_gin(root / rel, _read(root, rel, verify))

    edges, counts = [], {"self_loops": 0, "duplicates": 0, "one_way": 0}
    for n, _, _, pairs in parsed:
        edge_index, c = _edges(n, pairs)
        edges.append(edge_index)
        for key in counts:
            counts[key] += c[key]

    by_degree = name in _DEGREE_AS_TAG
    if by_degree:
        tags = [torch.bincount(ei[0], minlength=n) for ei, (n, *_) in zip(edges, parsed)]
    else:
        tags = [torch.tensor(t, dtype=torch.long) for _, _, t, _ in parsed]
    vocab = torch.unique(torch.cat(tags)) if tags else torch.empty(0, dtype=torch.long)
    raw_labels = sorted({label for _, label, _, _ in parsed})
    label_id = {label: i for i, label in enumerate(raw_labels)}

    graphs = []
    for i, ((n, label, _, _), ei, t) in enumerate(zip(parsed, edges, tags)):
        x = torch.nn.functional.one_hot(torch.searchsorted(vocab, t), len(vocab)).float()
        graphs.append(GraphData(edge_index=ei, x=x.reshape(n, len(vocab)),
                                y=torch.tensor([label_id[label]], dtype=torch.long),
                                num_nodes=n, level="graph", meta={"index": i}))

    if counts["self_loops"] or counts["duplicates"]:
        warnings.warn(f"{root / rel}: dropped {counts['self_loops']} self-loop and "
                      f"{counts['duplicates']} duplicate edge entries", stacklevel=2)
    meta = {"feature": "degree" if by_degree else "tag", "vocab": vocab.tolist(),
            "raw_labels": raw_labels, "self_loops_dropped": counts["self_loops"],
            "duplicates_dropped": counts["duplicates"], "one_way_completed": counts["one_way"],
            "file": str(root / rel)}
    return TUDataset(name, graphs, num_classes=len(raw_labels), num_features=len(vocab),
                     root=root, verify=verify, meta=meta)


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
