"""PubMed (19,717 nodes) as the scale row of node classification: its topology only.

Our PubMed files hold the graph and the labels, no features and no split
(:func:`ampsim.data.planetoid.load_planetoid`). Two measurements use the topology:

* **structure-only node classification**: every model gets the same structural features
  (:func:`structural_features`), the same seeded split (:func:`seeded_split`) and the protocol of
  :mod:`ampsim.train.node_classification` (its models, recipes and the one loop, through
  :func:`~ampsim.train.node_classification.train_seed`; model selection on validation only), seeds
  0-4; plus the majority class of the training nodes (:func:`majority`);
* **timing** (:func:`time_epochs`): seconds per training epoch of every model with the same random
  features, one process, side by side, as multiples of the GCN's.

The rules:

* **features** (:data:`FEATURE_NAMES`), with ``d_v`` the degree, ``A`` the adjacency and
  ``P = D^-1 A`` the random-walk matrix: ``log(1 + d_v)``; the return probabilities ``(P^k)_vv`` of
  a k-step random walk for k = 2, 3, 4; the clustering coefficient ``(A^3)_vv / (d_v (d_v - 1))``
  (0 if ``d_v < 2``); the mean, minimum and maximum of ``log(1 + d_u)`` over the neighbours u of v
  (0 for an isolated node). Each column is then standardised over all nodes (``(f - mean) / std``,
  population std; a constant column becomes 0): deterministic, computed in float64, stored float32;
* **split** (:data:`SPLIT`): one permutation of the node ids drawn with ``torch.randperm`` from a
  generator seeded with ``derive_seed(split_seed, "pubmed-split")`` (``split_seed`` 0); in that order,
  training = the first 20 nodes of each class, validation = the next 500 nodes not in training,
  test = the next 1000 nodes after those: disjoint, 60 / 500 / 1000 on PubMed;
* **models**: ``majority`` (the most frequent class among the training and validation nodes, ties
  to the lower id, predicted for every node: no seed; the training nodes alone are a tie), ``MLP`` (the GCN with no neighbours), ``GCN``, ``GAT``,
  ``AMP-Mean``, ``AMP-Mean-nobias`` (its biases fixed at zero: the GCN's function exactly) and
  ``AMP-Att``, each with its recipe of :data:`~ampsim.train.node_classification.DEFAULTS` and
  weight decay 5e-4 and its epochs (200; the GAT 500), constant delays (the aggregating cells' result does not
  depend on the delays), budget 12 n (a run needs ``n + 4|E|`` = 10.0 n deliveries);
* **timing**: features ``N(0, 1)`` of width :data:`TIMING_FEATURES` (PubMed's TF-IDF width) from
  ``derive_seed(0, "pubmed-timing")``, every model built by the protocol with its recipe (seed 0);
  ``warmup + epochs`` rounds, each one training step (forward, loss, backward, Adam step: the
  training part of the loop's epoch) of every model in a rotated order, so that load on the machine
  hits every model alike; the median over the timed rounds, one torch thread.

    ampsim nodes pubmed                                    # runs/pubmed.json, .md; seeds under runs/pubmed_runs/
    ampsim nodes pubmed --out results/pubmed               # the published files
"""
from __future__ import annotations

import math
import os
import statistics
import time
from typing import Callable, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .. import validate as V
from ..data.graphdata import GraphData
from ..data.planetoid import load_planetoid
from ..engine.rng import derive_seed
from ..fileio import write_json, write_text
from .node_classification import (DEFAULTS, NodeConfig, NodeTask, Protocol, _std, finished_results, train_seed,
                                  train_step)

__all__ = ["FEATURE_NAMES", "ROWS", "EPOCHS", "SPLIT", "TIMING_MODELS", "TIMING_FEATURES", "structural_features",
           "standardize", "seeded_split", "pubmed_task", "random_features", "row_config", "majority",
           "time_epochs", "train_rows", "summary", "render_markdown", "write_tables"]

FEATURE_NAMES = ("log_degree", "return_2", "return_3", "return_4", "clustering", "nbr_mean_log_degree",
                 "nbr_min_log_degree", "nbr_max_log_degree")
#: The rows of the table, in order (``majority`` is computed, not trained).
ROWS = ("majority", "MLP", "GCN", "GAT", "AMP-Mean", "AMP-Mean-nobias", "AMP-Att")
#: Epochs per trained row: None, each model's recipe (``DEFAULTS``: 200, the GAT 500).
EPOCHS: Optional[int] = None
#: The split rule's sizes and its seed.
SPLIT = {"train_per_class": 20, "val": 500, "test": 1000, "split_seed": 0}
TIMING_MODELS = ("GCN", "GAT", "AMP-Mean", "AMP-Att")
TIMING_CHOICES = ("MLP", "GCN", "GAT", "AMP-Mean", "AMP-Att")
TIMING_FEATURES = 500
FORMAT = "ampsim.pubmed"
DEFAULT_RUNS = "runs/pubmed_runs"
DEFAULT_OUT = "runs/pubmed"


# --------------------------------------------------------------------------- features and split
def structural_features(edge_index: Tensor, num_nodes: int) -> Tensor:
    """(n, 8) raw structural features, the columns of :data:`FEATURE_NAMES`: ``log(1 + d_v)``, ``(P^k)_vv``
    for k = 2, 3, 4 with ``P = D^-1 A``, the clustering coefficient ``(A^3)_vv / (d_v (d_v - 1))``, and the
    mean / min / max of ``log(1 + d_u)`` over v's neighbours (0 where there are none).

    ``edge_index`` (2, E) holds every undirected edge once per direction, no self-loops. float64 inside."""
    n = int(num_nodes)
    src, dst = edge_index[0].numpy(), edge_index[1].numpy()
    A = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    A.sum_duplicates()
    deg = np.asarray(A.sum(1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros(n), where=deg > 0)
    P = sp.diags(inv) @ A
    P2 = P @ P
    ret2 = P2.diagonal()
    ret3 = np.asarray(P2.multiply(P.T).sum(1)).ravel()
    ret4 = np.asarray(P2.multiply(P2.T).sum(1)).ravel()
    closed3 = np.asarray((A @ A).multiply(A).sum(1)).ravel()  # (A^3)_vv = 2 * triangles at v
    pairs = deg * (deg - 1)
    clustering = np.divide(closed3, pairs, out=np.zeros(n), where=pairs > 0)
    logd = np.log1p(deg)
    nbr = logd[A.indices]
    has = deg > 0
    mean = np.divide(A @ logd, deg, out=np.zeros(n), where=has)
    lo, hi = np.zeros(n), np.zeros(n)
    starts = A.indptr[:-1][has]
    if starts.size:
        lo[has] = np.minimum.reduceat(nbr, starts)
        hi[has] = np.maximum.reduceat(nbr, starts)
    cols = (logd, ret2, ret3, ret4, clustering, mean, lo, hi)
    return torch.from_numpy(np.stack(cols, axis=1)).to(torch.float32)


def standardize(x: Tensor) -> Tensor:
    """Each column ``(f - mean) / std`` over all rows (population std, float64 inside); a constant column is 0."""
    z = x.to(torch.float64)
    mean, std = z.mean(0), z.std(0, unbiased=False)
    return ((z - mean) / torch.where(std > 0, std, torch.ones_like(std))).to(torch.float32)


def seeded_split(y: Tensor, num_classes: int, split_seed: int = 0, train_per_class: int = 20, val: int = 500,
                 test: int = 1000) -> tuple[Tensor, Tensor, Tensor]:
    """Boolean (train, val, test) masks: a permutation of the nodes from ``derive_seed(split_seed, "pubmed-split")``;
    in its order the first ``train_per_class`` nodes of each class train, the next ``val`` other nodes validate,
    the ``test`` after them test. ``ValueError`` when a class has too few nodes or the graph too few."""
    V.nonneg_int("split_seed", split_seed)
    V.positive_int("train_per_class", train_per_class)
    V.positive_int("val", val)
    V.positive_int("test", test)
    n = int(y.shape[0])
    counts = torch.bincount(y, minlength=num_classes)
    if int(counts.min()) < train_per_class:
        raise ValueError(f"a class has {int(counts.min())} nodes, fewer than train_per_class={train_per_class}")
    if num_classes * train_per_class + val + test > n:
        raise ValueError(f"{n} nodes cannot hold {num_classes} x {train_per_class} training, {val} validation and "
                         f"{test} test nodes")
    gen = torch.Generator().manual_seed(derive_seed(split_seed, "pubmed-split") % (2**63))
    order = torch.randperm(n, generator=gen)
    train = torch.zeros(n, dtype=torch.bool)
    for c in range(num_classes):
        train[order[y[order] == c][:train_per_class]] = True
    rest = order[~train[order]]
    val_mask = torch.zeros(n, dtype=torch.bool)
    test_mask = torch.zeros(n, dtype=torch.bool)
    val_mask[rest[:val]] = True
    test_mask[rest[val: val + test]] = True
    return train, val_mask, test_mask


def pubmed_task(root: Optional[str] = None, split_seed: int = 0, features: Optional[Tensor] = None,
                graph: Optional[tuple[Tensor, Tensor, int, int]] = None) -> NodeTask:
    """The PubMed task: its graph and labels, :func:`standardize`-d :func:`structural_features` (or ``features``)
    and the :func:`seeded_split`. ``graph=(edge_index, y, num_nodes, num_classes)`` replaces PubMed (tests)."""
    if graph is None:
        ds = load_planetoid("PubMed", root)
        edge_index, y, n, k = ds.graph.edge_index, ds.graph.y, ds.num_nodes, ds.num_classes
    else:
        edge_index, y, n, k = graph
    x = standardize(structural_features(edge_index, n)) if features is None else features
    sizes = {key: SPLIT[key] for key in ("train_per_class", "val", "test")}
    if graph is not None:  # a small graph: the split scaled down to it
        sizes = {"train_per_class": 2, "val": max(1, n // 4), "test": max(1, n // 4)}
    train, val, test = seeded_split(y, k, split_seed, **sizes)
    g = GraphData(edge_index, x, y, n, "node", None, {"dataset": "PubMed"})
    return NodeTask("PubMed", g, k, train, val, test, x)


def random_features(num_nodes: int, width: int = TIMING_FEATURES, seed: int = 0) -> Tensor:
    """(n, width) float32 ``N(0, 1)`` from ``derive_seed(seed, "pubmed-timing")``: the timing's features."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "pubmed-timing") % (2**63))
    return torch.randn(num_nodes, width, generator=gen)


def row_config(row: str, seed: int, epochs: Optional[int] = EPOCHS) -> NodeConfig:
    """The :class:`NodeConfig` of a trained row: its model's recipe (``DEFAULTS``; ``epochs`` replaces the recipe's
    when given), constant delays."""
    model = row[: -len("-nobias")] if row.endswith("-nobias") else row
    recipe = dict(DEFAULTS.get(model, DEFAULTS["AMP"]))
    if epochs is not None:
        recipe["epochs"] = epochs
    return NodeConfig("PubMed", model, "constant", seed, bias=not row.endswith("-nobias"), normalize=False,
                      **recipe)


# --------------------------------------------------------------------------- the rows
def majority(task: NodeTask) -> dict:
    """The majority-class row: the most frequent label among the training and validation nodes (ties: the lower
    class id) predicted for every node. (The training nodes alone are balanced, 20 per class: a tie.)"""
    y = task.graph.y
    seen = task.train_mask | task.val_mask
    cls = int(torch.bincount(y[seen], minlength=task.num_classes).argmax())
    acc = {split: float((y[m] == cls).float().mean()) for split, m in (("val", task.val_mask),
                                                                         ("test", task.test_mask))}
    return {"class": cls, "val_acc": acc["val"], "test_acc": acc["test"]}


def train_rows(task: NodeTask, rows: Sequence[str], seeds: Sequence[int], root: str, epochs: Optional[int] = EPOCHS,
               log: Optional[Callable[[str], None]] = None) -> None:
    """Train every (row, seed) without a finished result file under ``root`` (resumable, the one loop)."""
    for row in rows:
        if row == "majority":
            continue
        for seed in seeds:
            r = train_seed(row_config(row, seed, epochs), root, task=task, log=log, robustness=False)
            if log is not None:
                log(f"PubMed {row} seed {seed}: test {100 * r['test_acc']:.1f} (val {100 * r['val_acc']:.1f}, "
                    f"epoch {r['best_epoch']}, {r['seconds']:.0f}s)")


# --------------------------------------------------------------------------- timing
def time_epochs(task: NodeTask, models: Sequence[str] = TIMING_MODELS, epochs: int = 5, warmup: int = 1,
                width: int = TIMING_FEATURES) -> dict:
    """Median seconds per training step of each model on ``task``'s graph with :func:`random_features`, side by
    side in rotated order; ``{"rows": [{"model", "s_per_epoch", "x_gcn", "times"}], "features": width, ...}``."""
    V.positive_int("epochs", epochs)
    V.nonneg_int("warmup", warmup)
    V.positive_int("width", width)
    x = random_features(task.graph.num_nodes, width)
    g = task.graph
    timed = NodeTask(task.name, GraphData(g.edge_index, x, g.y, g.num_nodes, "node", None, g.meta), task.num_classes,
                     task.train_mask, task.val_mask, task.test_mask, x)
    entries = []
    for model in models:
        proto = Protocol(timed, row_config(model, 0))
        entries.append({"model": model, "proto": proto, "times": [],
                        "opt": torch.optim.Adam(proto.model.parameters(), lr=proto.config.lr)})
    for r in range(warmup + epochs):
        k = r % len(entries)
        for e in entries[k:] + entries[:k]:
            s = train_step(e["proto"], e["opt"], r)
            if r >= warmup:
                e["times"].append(s)
    rows = [{"model": e["model"], "s_per_epoch": statistics.median(e["times"]),
             "times": [round(t, 4) for t in e["times"]]} for e in entries]
    gcn = next((r["s_per_epoch"] for r in rows if r["model"] == "GCN"), None)
    for r in rows:
        r["x_gcn"] = None if gcn is None else r["s_per_epoch"] / gcn
    return {"rows": rows, "features": width, "epochs": epochs, "warmup": warmup, "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------- the table
def summary(task: NodeTask, root: str, timing: Optional[Sequence[dict]] = None, rows: Sequence[str] = ROWS,
            seeds: Optional[Sequence[int]] = None) -> dict:
    """The table: per row the test accuracy (%) at the epoch selected on validation, mean and unbiased std over
    the finished PubMed result files under ``root`` (of ``seeds``, default all), the majority row, the split
    and features used, and the timing tables (when given)."""
    runs: dict[str, list] = {}
    for r in (finished_results(root) if os.path.exists(root) else []):
        if r["dataset"] == "PubMed" and r["key"] in rows and (seeds is None or r["seed"] in seeds):
            runs.setdefault(r["key"], []).append(r)
    maj = majority(task)
    table = {}
    for row in rows:
        if row == "majority":
            table[row] = {"mean": round(100 * maj["test_acc"], 2), "std": 0.0, "seeds": 0,
                          "val_mean": round(100 * maj["val_acc"], 2), "class": maj["class"]}
            continue
        done = sorted(runs.get(row, []), key=lambda r: r["seed"])
        if not done:
            continue
        tests = [100.0 * r["test_acc"] for r in done]
        vals = [100.0 * r["val_acc"] for r in done]
        c = done[0]["config"]
        table[row] = {"mean": round(sum(tests) / len(tests), 2), "std": round(_std(tests), 2), "seeds": len(done),
                      "seed_list": [r["seed"] for r in done], "test": [round(t, 2) for t in tests],
                      "val_mean": round(sum(vals) / len(vals), 2), "best_epochs": [r["best_epoch"] for r in done],
                      "epochs": c["epochs"], "hidden": c["hidden"], "lr": c["lr"], "dropout": c["dropout"],
                      "weight_decay": c["weight_decay"],
                      "minutes": round(sum(r["seconds"] for r in done) / 60.0, 2)}
        if c["model"] in ("GAT", "AMP-Att"):
            table[row]["heads"] = c["heads"]
    return {"format": FORMAT, "dataset": "PubMed", "nodes": task.graph.num_nodes, "edges": task.graph.num_edges,
            "classes": task.num_classes, "features": list(FEATURE_NAMES),
            "split": dict(SPLIT, train=int(task.train_mask.sum()), val_nodes=int(task.val_mask.sum()),
                          test_nodes=int(task.test_mask.sum())),
            "rows": table, "timing": list(timing) if timing else []}


def _fmt_x(x: Optional[float]) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.2f}"


def render_markdown(s: dict) -> str:
    """The summary as Markdown: the accuracy table, then the timing table."""
    gcn = s["rows"].get("GCN")
    lines = ["# PubMed from its topology: structure-only node classification and seconds per epoch", "",
             f"PubMed, {s['nodes']:,} nodes, {s['edges']:,} edges, {s['classes']} classes; no features in our "
             "files: every model gets the same structural features (" + ", ".join(s["features"]) + ", "
             "standardised). Seeded split: " f"{s['split']['train']} training nodes ({s['split']['train_per_class']} "
             f"per class), {s['split']['val_nodes']} validation, {s['split']['test_nodes']} test (split seed "
             f"{s['split']['split_seed']}). Test accuracy (%) at the epoch with the best validation accuracy, "
             "mean ± std over seeds; in brackets the difference to our GCN. Protocol: `docs/pubmed.md`.", "",
             "| model | test accuracy | seeds | epochs | best epochs | minutes per seed |", "|---|---|---|---|---|---|"]
    keys = [k for k in ROWS if k in s["rows"]] + [k for k in s["rows"] if k not in ROWS]
    for key in keys:
        row = s["rows"][key]
        gap = f" ({row['mean'] - gcn['mean']:+.1f})" if gcn is not None and key not in ("GCN", "majority") else ""
        acc = f"{row['mean']:.1f}{gap}" if key == "majority" else f"{row['mean']:.1f} ± {row['std']:.1f}{gap}"
        if key == "majority":
            lines.append(f"| majority class (class {row['class']}) | {acc} | — | — | — | — |")
            continue
        best = row.get("best_epochs") or []
        span = f"{min(best)}-{max(best)}" if best else "—"
        lines.append(f"| {key} | {acc} | {row['seeds']} | {row['epochs']} | {span} | "
                     f"{row['minutes'] / row['seeds']:.2f} |")
    for t in s.get("timing") or []:
        lines += ["", f"Seconds per training epoch (forward, loss, backward, Adam step), the same random features "
                  f"N(0, 1) of width {t['features']} for every model, one process, side by side in rotated order, "
                  f"median of {t['epochs']} epochs after {t['warmup']} warm-up, {t['threads']} torch thread; AMP "
                  "cells under constant delays, every node started, runs quiescent. The absolute seconds depend on "
                  "the load of the shared machine; the ratio is the point.", "",
                  "| model | s / epoch | x GCN |", "|---|---|---|"]
        for r in t["rows"]:
            lines.append(f"| {r['model']} | {r['s_per_epoch']:.3f} | {_fmt_x(r['x_gcn'])} |")
    return "\n".join(lines) + "\n"


def write_tables(stem: str, s: dict) -> None:
    """``<stem>.json`` and ``<stem>.md`` (atomic, :mod:`ampsim.fileio`)."""
    write_json(stem + ".json", s)
    write_text(stem + ".md", render_markdown(s))
