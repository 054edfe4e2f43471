"""Table 4: AMP-RNN graph classification on MUTAG, PTC, PROTEINS, IMDB-BINARY, IMDB-MULTI (Section 5.3).

The protocol of the authors' code (reference notes section 4, ``main_graph_classification.py``):

* model: AMP-RNN, h' = ReLU(W[h ‖ m]), message m' = W_m[h' ‖ m] of size hidden // 2; one
  run per node i with start message ``ones(hidden // 2)``, constant delays, a budget of
  15 or 25 processed messages per run; readout: the sum over i of node i's final state
  in its own run (or, with *skip*, of its last 4 states, encoding included, left-padded
  with zeros), then a linear decoder and log-softmax; NLL loss;
* 10 folds (the vendored GIN ``10fold_idx`` files), 350 epochs, each epoch **one**
  full-batch Adam step (lr 0.01) on the training fold, StepLR(step 50, gamma 0.5), test
  accuracy after every epoch; all folds start from the same initial weights (seed 0);
* report: average the 10 per-fold test curves, take the best epoch of that average,
  mean ± std (unbiased) over folds at that epoch, x100; the grid is hidden {16, 32}
  (bio) or {64} (social), messages {15, 25}, skip {off, on}; the best grid point is
  reported (as the GIN protocol and the paper do);
* data filters of the authors' code: PROTEINS drops graphs with >= 450 nodes and those
  with 7 nodes and 6 edges; IMDB keeps graphs with <= 70 nodes.

Runs are resumable: one JSON per (data set, grid point, fold) under
``<out>/<DATASET>/h<H>_m<K>_<skip|noskip>/fold<k>.json``;
:func:`ampsim.train.table4_report.summarize` turns complete grid points into ``table4.json`` and
``table4.md`` (next to the paper's AMP-RNN row).

    ampsim table4 run --datasets MUTAG --folds 0-9
    ampsim table4 render
"""
from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..batched import BatchedExecutor
from ..cells.cells import AMPCell
from ..cells.execute import RunSpec
from ..cells.models import init_parameters, readout_entries
from ..cells.stacked import StackedCell, StackedLinear
from ..data.graphdata import GraphData
from ..data.tu import TUDataset, load_tu
from ..engine.rng import derive_seed
from .. import validate as V
from . import ddp
from .loop import (Data, Options, checkpoint_epoch, fit_models, run_largest_first, training_process,
                   write_result)

__all__ = [
    "PAPER_AMP_RNN",
    "GridPoint",
    "AMPGraphClassifier",
    "grid",
    "load_dataset",
    "train_fold",
    "train_folds",
    "table4_executor",
    "first_step_gradients",
    "run_grid",
    "run_grid_parallel",
    "fold_path",
    "checkpoint_path",
    "read_fold",
    "grid_process",
    "log_main",
]

#: Table 4, row "AMP-RNN (ours)": mean and std of the test accuracy (%).
PAPER_AMP_RNN = {
    "MUTAG": (90.4, 4.1),
    "PTC": (63.7, 9.1),
    "PROTEINS": (76.7, 7.1),
    "IMDB-BINARY": (74.6, 3.6),
    "IMDB-MULTI": (52.1, 3.6),
}
SOCIAL = ("IMDB-BINARY", "IMDB-MULTI")
EPOCHS, LR, STEP, GAMMA, FOLDS, SKIP_STATES = 350, 0.01, 50, 0.5, 10, 4
DEFAULT_RUNS = os.path.join("results", "table4_runs.jsonl.gz")  # the published fold files, packed
USER_RUNS = os.path.join("runs", "table4_runs")  # the CLI's default (ignored by git), not the published runs


@dataclass(frozen=True)
class GridPoint:
    """One point of the paper's small grid: hidden size, messages per run, skip readout."""

    hidden: int
    messages: int
    skip: bool

    @property
    def tag(self) -> str:
        return f"h{self.hidden}_m{self.messages}_{'skip' if self.skip else 'noskip'}"

    @classmethod
    def from_tag(cls, tag: str) -> "GridPoint":
        match = re.fullmatch(r"h(\d{1,6})_m(\d{1,6})_(skip|noskip)", tag)
        if match is None or int(match[1]) < 2 or int(match[2]) < 1:
            raise ValueError(f"not a grid point tag: {tag!r} (expected h<hidden >= 2>_m<messages >= 1>_skip|noskip, "
                             "e.g. h32_m25_skip)")
        return cls(int(match[1]), int(match[2]), match[3] == "skip")


def grid(dataset: str) -> list[GridPoint]:
    """The paper's grid: hidden {16, 32} for bio sets and {64} for social ones x messages {15, 25} x skip."""
    hidden = (64,) if dataset in SOCIAL else (16, 32)
    return [GridPoint(h, m, s) for h in hidden for m in (15, 25) for s in (False, True)]


def _keep(name: str, g: GraphData) -> bool:
    if name == "PROTEINS":
        return g.num_nodes < 450 and not (g.num_nodes == 7 and g.num_edges == 6)
    if name in SOCIAL:
        return g.num_nodes <= 70
    return True


def load_dataset(name: str, root: Optional[str] = None, amp_filter: bool = True) -> TUDataset:
    """The vendored TU data set, with the authors' size filters (PROTEINS, IMDB) unless ``amp_filter=False``."""
    ds = load_tu(name, root)
    if not amp_filter:
        return ds
    keep = torch.tensor([_keep(ds.name, ds[i]) for i in range(len(ds))], dtype=torch.bool)
    return ds if bool(keep.all()) else ds[keep]


class AMPGraphClassifier(nn.Module):
    """AMP-RNN for graph classification: ``AMPGraphClassifier(in_features, hidden, classes, messages, skip)``.

    ``forward(graphs, executor) -> (G, classes)`` log-probabilities: one run per node with
    start message ``ones(hidden // 2)`` and ``messages`` processed deliveries; the sum over
    start nodes of their final state (or last 4 states with ``skip``) is decoded.
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, messages: int, skip: bool) -> None:
        super().__init__()
        if hidden < 2 or messages < 1 or num_classes < 2:
            raise ValueError("need hidden >= 2, messages >= 1 and num_classes >= 2")
        self.cell = AMPCell("rnn", in_features, hidden, hidden // 2)
        self.decoder = nn.Linear((SKIP_STATES if skip else 1) * hidden, num_classes)
        self.messages, self.skip = messages, skip

    def forward(self, graphs: Sequence[GraphData], executor: BatchedExecutor) -> Tensor:
        u, entries, owner = _own_runs(self.cell, graphs, executor, self.messages, self.decoder.weight, self.skip)
        G = len(graphs)
        if self.skip:  # (G, 4, S): each graph's sum of its nodes' last 4 states
            z = self.cell.output(u.sum_by(entries, owner, G, SKIP_STATES).reshape(G * SKIP_STATES, -1)).reshape(G, -1)
        else:
            z = self.cell.output(u.sum_by(entries, owner, G))
        return nn.functional.log_softmax(self.decoder(z), dim=-1)


def _own_runs(cell, graphs: Sequence[GraphData], executor: BatchedExecutor, messages: int, ref: Tensor,
              history: bool):
    """One run per node, started at that node with ones(M), budget ``messages`` (Section 5.3):
    the unroll, each node's entry in its own run (graph by graph, node by node) and the graph owning it.
    Only the deliveries those entries depend on are computed (``keep``: 18-39% of the rows).
    ``history``: keep every state row (the skip readout reads the last 4 states of each entry)."""
    sizes = tuple(g.num_nodes for g in graphs)
    starts, seeds = _own_starts(sizes)
    msgs = ref.new_ones((1, cell.msg_size)).expand(sum(sizes), -1)  # one row, broadcast: one start class
    entries = own_entries(sizes)
    u = executor.unroll(cell, graphs, starts, seeds, msgs, messages, history=history, keep=entries)
    entries = entries.to(ref.device)
    owner = torch.repeat_interleave(torch.arange(len(graphs), device=ref.device),
                                    torch.tensor(sizes, device=ref.device))
    return u, entries, owner


def own_entries(sizes: Sequence[int]) -> Tensor:
    """The entry (:meth:`Unrolled.entry` order) of node i in its own run i, graph after graph.

    Built once per graph-size sequence (every epoch asks for the same ones); do not modify it."""
    return _own_entries(tuple(int(n) for n in sizes))


@lru_cache(maxsize=16)
def _own_starts(sizes: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Start nodes and seeds of one run per node, graph after graph (immutable: built once per size sequence)."""
    return (tuple(tuple((i,) for i in range(n)) for n in sizes), tuple((0,) * n for n in sizes))


@lru_cache(maxsize=16)
def _own_entries(sizes: tuple[int, ...]) -> Tensor:
    offsets = accumulate((n * n for n in sizes), initial=0)
    return torch.cat([readout_entries("start", n) + off for n, off in zip(sizes, offsets)])


def _labels(graphs: Sequence[GraphData]) -> Tensor:
    return torch.cat([g.y.reshape(1) for g in graphs])


class GraphClassifierStack(nn.Module):
    """K :class:`AMPGraphClassifier` of one grid point as one (folds): ``forward -> (K, G, classes)``.

    One executor pass runs every model (:class:`ampsim.cells.stacked.StackedCell`); the
    ``state_dict`` keys are a single classifier's with a leading K.
    """

    def __init__(self, models: Sequence[AMPGraphClassifier]) -> None:
        super().__init__()
        first = models[0]
        if any((m.messages, m.skip, m.cell.hidden) != (first.messages, first.skip, first.cell.hidden) for m in models):
            raise ValueError("the classifiers of a stack must share hidden size, messages and skip")
        self.models = len(models)
        self.cell = StackedCell([m.cell for m in models])
        self.decoder = StackedLinear(self.models, first.decoder.in_features, first.decoder.out_features)
        self.decoder.to(device=first.decoder.weight.device, dtype=first.decoder.weight.dtype)
        with torch.no_grad():
            self.decoder.weight.copy_(torch.stack([m.decoder.weight.detach() for m in models]))
            self.decoder.bias.copy_(torch.stack([m.decoder.bias.detach() for m in models]))
        self.messages, self.skip = first.messages, first.skip

    def forward(self, graphs: Sequence[GraphData], executor: BatchedExecutor) -> Tensor:
        K = self.models
        u, entries, owner = _own_runs(self.cell, graphs, executor, self.messages, self.decoder.weight, self.skip)
        G = len(graphs)
        if self.skip:
            z = self.cell.output(u.sum_by(entries, owner, G, SKIP_STATES))  # (G, 4, K, H)
            pooled = z.permute(2, 0, 1, 3).reshape(K, G, -1)
        else:
            pooled = self.cell.output(u.sum_by(entries, owner, G)).transpose(0, 1)  # (K, G, H)
        return nn.functional.log_softmax(self.decoder(pooled), dim=-1)


def build_model(ds: TUDataset, point: GridPoint, seed: int = 0) -> AMPGraphClassifier:
    """The model of ``point``, initialised from ``derive_seed(seed, "init")`` (same weights for every fold)."""
    model = AMPGraphClassifier(ds.num_features, point.hidden, ds.num_classes, point.messages, point.skip)
    init_parameters(model, torch.Generator().manual_seed(derive_seed(seed, "init")))
    return model


def _forward(graphs: Sequence[GraphData], executor: BatchedExecutor) -> Callable:
    def forward(model: nn.Module, items: Sequence[int], seeds: Sequence[int]) -> Tensor:
        return model([graphs[i] for i in items], executor)

    return forward


def _test_scores(graphs: Sequence[GraphData], test: Tensor) -> tuple[list[int], Callable]:
    """``(union, score)``: the graphs that any model tests on, and ``score(pred)`` for predictions ``(K, union)``
    -> per model ``{"test_acc": a}``, its accuracy on its own test graphs (``test``: (K, items) bool)."""
    union = torch.nonzero(test.any(0)).reshape(-1).tolist()
    share = test[:, union].to(torch.float64)
    share = share / share.sum(1, keepdim=True)      # (K, union): 1 / |test_k| on model k's test graphs
    y = _labels([graphs[i] for i in union]) if union else None

    def score(pred: Tensor) -> list[dict]:
        hits = (pred == y.to(pred.device)).to(torch.float64).cpu()
        return [{"test_acc": acc} for acc in (hits * share).sum(1).tolist()]  # NaN where a model has no test graph

    return union, score


def _evaluate(graphs: Sequence[GraphData], test: Tensor, executor: BatchedExecutor) -> Callable:
    """Per model, the accuracy on its own test graphs (``test``: (K, items) bool) -> ``[{"test_acc": a}]``.

    A stack runs the union of its folds' test graphs once, all models together (one executor
    pass; with ``dedup`` the extra graphs cost little), and model k is scored on its own.
    """
    union, score = _test_scores(graphs, test)
    batch = [graphs[i] for i in union]

    def evaluate(model: nn.Module, epoch: int) -> list[dict]:
        if not batch:
            return [{"test_acc": float("nan")} for _ in range(test.shape[0])]
        return score(model(batch, executor).argmax(-1).reshape(-1, len(batch)))  # (K, union); one model: K = 1

    return evaluate


def _evaluate_forward(graphs: Sequence[GraphData], test: Tensor) -> Callable:
    """:func:`_evaluate`'s accuracies from a training forward's log-probabilities ``(K, items, C)``
    (:func:`ampsim.train.loop.fit_models`' ``evaluate_forward``); ``None`` unless every test graph is in ``items``.

    The classifiers compute the same values in train and eval mode (no dropout, no batch
    statistics) and the executor the same with and without a graph, so the predictions are
    the evaluation's to the bit (``tests/train/test_graph_classification.py``)."""
    union, score = _test_scores(graphs, test)

    def evaluate_forward(logp: Tensor, items: Sequence[int]) -> Optional[list[dict]]:
        where = {int(item): j for j, item in enumerate(items)}
        if not union or any(i not in where for i in union):
            return None
        cols = torch.tensor([where[i] for i in union], device=logp.device)
        return score(logp.argmax(-1).reshape(-1, len(where)).index_select(1, cols))

    return evaluate_forward


def _fold_config(ds: TUDataset, fold: int, point: GridPoint, epochs: int, lr: float, seed: int) -> dict:
    return {"dataset": ds.name, "graphs": len(ds), **asdict(point), "fold": fold, "epochs": epochs, "lr": lr,
            "seed": seed, "step_size": STEP, "gamma": GAMMA}


def table4_executor() -> BatchedExecutor:
    """The executor of the Table 4 protocol: every state row kept (``segment_rows=0``), never checkpointed.

    One model of the largest grid point (PROTEINS h32 m25) holds about 0.6 GB of work space,
    over the automatic plan's 256 MB; keeping it all instead of recomputing segments in the
    backward pass makes an epoch 35-40% faster (PROTEINS h32_m25_noskip 954 -> 621 ms,
    IMDB-BINARY h64_m25_noskip 816 -> 527 ms, one thread).
    """
    return BatchedExecutor(segment_rows=0)


def train_folds(ds: TUDataset, folds: Sequence[int], point: GridPoint, *, epochs: int = EPOCHS, lr: float = LR,
                seed: int = 0, executor: Optional[BatchedExecutor] = None, device: Union[str, torch.device] = "cpu",
                stack: bool = True, checkpoints: Optional[Sequence[str]] = None, resume: bool = True,
                checkpoint_every: int = 25, stop_after: Optional[int] = None,
                progress: Optional[Callable[[int, list], None]] = None) -> list[dict]:
    """The protocol for several folds of one grid point; one record per fold (``test_acc``, ``train_loss``, ...).

    With ``stack`` (default) the folds train together as one :class:`GraphClassifierStack`
    (one executor pass over every graph a fold trains on; fold k's loss is masked to its
    training graphs, its test accuracy to its test graphs; each epoch's accuracies come from
    the next epoch's training forward, which runs the same weights over every graph:
    ``evaluate_forward`` of :func:`ampsim.train.loop.fit_models`), else one after another.
    Either way each fold's numbers are those of training it alone, up to float summation order
    (``tests/train/test_stacked.py``: losses to 1e-5).
    ``checkpoints[j]`` is fold ``folds[j]``'s checkpoint (resumed when present). Inside a
    process group the loop shards the graphs (:mod:`ampsim.train.loop`).
    """
    folds = list(folds)
    if not stack and len(folds) > 1:
        out = []
        for j, fold in enumerate(folds):
            out += train_folds(ds, [fold], point, epochs=epochs, lr=lr, seed=seed, executor=executor, device=device,
                               checkpoints=[checkpoints[j]] if checkpoints else None, resume=resume,
                               checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress)
        return out
    graphs = [ds[i] for i in range(len(ds))]
    K = len(folds)
    train = torch.zeros(K, len(graphs), dtype=torch.bool)
    test = torch.zeros(K, len(graphs), dtype=torch.bool)
    for k, fold in enumerate(folds):
        tr, te = ds.folds(fold)
        train[k, torch.as_tensor(tr, dtype=torch.long)] = True
        test[k, torch.as_tensor(te, dtype=torch.long)] = True
    executor = executor or table4_executor()
    # the training batch and each fold's test batch are compiled programs: keep them all cached
    executor.program_cache = max(executor.program_cache, K + 2)
    single = build_model(ds, point, seed).to(device)  # every fold starts from the same weights
    model = GraphClassifierStack([single] * K).to(device) if K > 1 else single
    options = Options(epochs=epochs, lr=lr, lr_steps=(STEP, GAMMA), eval_every=1, checkpoint_every=checkpoint_every,
                      resume=resume, stop_after=stop_after)
    # a stack's test graphs are its other folds' training graphs: evaluate from the next training forward
    covered = bool(test.any(0).sum()) and not bool((test.any(0) & ~train.any(0)).any())
    outcomes = fit_models(model, _forward(graphs, executor), Data([g.y.reshape(1) for g in graphs], train), options,
                          evaluate=_evaluate(graphs, test, executor),
                          evaluate_forward=_evaluate_forward(graphs, test) if covered else None,
                          checkpoints=checkpoints,
                          configs=[_fold_config(ds, f, point, epochs, lr, seed) for f in folds], on_epoch=progress)
    records = []
    for k, o in enumerate(outcomes):
        records.append({"test_acc": o.history.get("test_acc", []), "train_loss": o.history["loss"],
                        "seconds": o.seconds / K, "stack_seconds": o.seconds, "stacked_with": K,
                        "epochs_done": o.epochs_done, "finished": o.finished,
                        "n_train": int(train[k].sum()), "n_test": int(test[k].sum()), "processes": ddp.world_size()})
    return records


def train_fold(ds: TUDataset, fold: int, point: GridPoint, *, epochs: int = EPOCHS, lr: float = LR, seed: int = 0,
               executor: Optional[BatchedExecutor] = None, device: Union[str, torch.device] = "cpu",
               progress: Optional[Callable[[int, list], None]] = None) -> dict:
    """One fold of the protocol alone (:func:`train_folds` with one fold)."""
    return train_folds(ds, [fold], point, epochs=epochs, lr=lr, seed=seed, executor=executor, device=device,
                       progress=progress)[0]


def first_step_gradients(dataset: str, tag: str, graphs: int, dtype: torch.dtype = torch.float64,
                         threads: int = 1) -> list[Tensor]:
    """Gradients of the first training step on the first ``graphs`` graphs of ``dataset`` (all of them train).

    Runs one epoch of :func:`ampsim.train.loop.fit_models`; inside a process group each
    process takes its shard and DDP averages, so the result must not depend on the number
    of processes (``tests/train/test_ddp.py``).
    """
    torch.set_num_threads(threads)
    ds = load_dataset(dataset)[:graphs]
    model = build_model(ds, GridPoint.from_tag(tag)).to(dtype)
    data = [ds[i] for i in range(len(ds))]
    fit_models(model, _forward(data, BatchedExecutor()), Data([g.y.reshape(1) for g in data]), Options(epochs=1))
    return [p.grad.detach().clone() for p in model.parameters()]


def fold_path(root: str, dataset: str, point: GridPoint, fold: int) -> Path:
    return Path(root) / dataset / point.tag / f"fold{fold}.json"


def checkpoint_path(root: str, dataset: str, point: GridPoint, fold: int) -> Path:
    """The fold's checkpoint while it trains (removed once its result file is written)."""
    return Path(root) / dataset / point.tag / f"fold{fold}.pt"


def read_fold(path: Path) -> dict:
    """The record of one fold's result file; a file that is not one gives a ``ValueError`` naming it."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a fold result file (corrupt JSON: {exc}); remove it to train the fold "
                         "again") from None
    if not isinstance(record, dict) or not isinstance(record.get("test_acc"), list):
        raise ValueError(f"{path}: not a fold result file (no test_acc curve); remove it to train the fold again")
    return record


def _done(path: Path, epochs: int, subset: bool) -> bool:
    """Whether ``path`` holds a finished fold (decided on rank 0 and shared with every process)."""
    flag = False
    if ddp.is_main() and path.exists():
        done = read_fold(path)
        flag = done.get("epochs") == epochs and done.get("subset", False) == subset
    if ddp.world_size() > 1:
        box = [flag]
        torch.distributed.broadcast_object_list(box, src=0)
        flag = bool(box[0])
    return flag


def run_grid(datasets: Sequence[str], folds: Sequence[int], *, points: Optional[Sequence[GridPoint]] = None,
             root: str = USER_RUNS, epochs: int = EPOCHS, seed: int = 0, max_graphs: Optional[int] = None,
             data_root: Optional[str] = None, device: str = "cpu", stack: bool = True,
             log: Callable[[str], None] = print) -> list[Path]:
    """Train every (data set, grid point, fold) that has no complete result file yet; return the files written.

    ``points`` defaults to each data set's :func:`grid`. The missing folds of a grid point
    train together (``stack``, default; ``False``: one after another), grouped by the epoch
    of their checkpoints (a run that was stopped resumes from them). Since the executor
    computes each level's distinct rows once (``dedup``), a step is mostly per-pass overhead,
    and one pass for all folds is faster on a CPU too (benchmarks/sweep.py: 6.3-6.8x for the 10
    MUTAG folds; before ``dedup`` it measured 0.8-1.5x). ``max_graphs`` (smoke tests only)
    keeps the first graphs of the data set; such files are marked ``"subset": true``.
    """
    written = []
    for name in datasets:
        ds = load_dataset(name, data_root)
        if max_graphs is not None:
            ds = ds[: max_graphs]
        executor = table4_executor()
        for point in (points if points is not None else grid(ds.name)):
            todo = [f for f in folds if not _done(fold_path(root, ds.name, point, f), epochs, max_graphs is not None)]
            groups: dict[int, list[int]] = {}
            for f in todo:
                groups.setdefault(checkpoint_epoch(str(checkpoint_path(root, ds.name, point, f))), []).append(f)
            for group in groups.values():
                ckpts = [str(checkpoint_path(root, ds.name, point, f)) for f in group]
                outs = train_folds(ds, group, point, epochs=epochs, seed=seed, executor=executor, device=device,
                                   stack=stack, checkpoints=ckpts, resume=True)
                for fold, out, ckpt in zip(group, outs, ckpts):
                    if not ddp.is_main():
                        continue
                    path = fold_path(root, ds.name, point, fold)
                    record = {"dataset": ds.name, **asdict(point), "fold": fold, "epochs": epochs, "seed": seed,
                              "lr": LR, "step_size": STEP, "gamma": GAMMA, "subset": max_graphs is not None,
                              "graphs": len(ds), **{k: v for k, v in out.items() if k not in ("epochs_done", "finished")},
                              "threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device),
                              "host": platform.node()}
                    write_result(str(path), record)
                    if os.path.exists(ckpt):
                        os.remove(ckpt)
                    written.append(path)
                    best = max(out["test_acc"]) if out["test_acc"] else float("nan")
                    log(f"{ds.name} {point.tag} fold {fold}: final acc {out['test_acc'][-1]:.3f}, best {best:.3f}, "
                        f"{out['stack_seconds'] / 60:.1f} min for {out['stacked_with']} fold(s) together")
    return written


def computed_rows(ds: TUDataset, messages: int) -> int:
    """The deliveries one epoch computes on all of ``ds``: the causal past of each node's own final state.

    One planning pass (seconds on PROTEINS); the grid points of a data set that share
    ``messages`` share it."""
    graphs = [ds[i] for i in range(len(ds))]
    runs = [[RunSpec((i,), torch.ones(1, 1), 0) for i in range(g.num_nodes)] for g in graphs]
    own = [readout_entries("start", g.num_nodes) for g in graphs]
    return sum(BatchedExecutor().level_sizes(graphs, runs, messages, keep=own))


def grid_cost(point: GridPoint, rows: int) -> float:
    """Relative cost of one fold-epoch of ``point`` (for scheduling): computed rows x a row's products.

    A row multiplies its state and message by the ``(h + h/2) x h`` RNN weights and the
    ``(h + h/2) x h/2`` message map: about ``2.25 h^2``. ``rows``: :func:`computed_rows` of the
    point's data set and budget (the grid points that share them share it)."""
    return rows * 2.25 * point.hidden * point.hidden


def run_grid_parallel(datasets: Sequence[str], folds: Sequence[int], workers: int, *, threads: int = 1,
                      points: Optional[Sequence[GridPoint]] = None, log: Callable[[str], None] = print,
                      **job: Any) -> list[Path]:
    """:func:`run_grid` over ``workers`` processes: one unit per (data set, grid point), largest first.

    Each process takes the next unit when it is done (longest-processing-time list scheduling by
    :func:`grid_cost` x folds), with ``threads`` torch threads; every unit writes its folds'
    files exactly as :func:`run_grid` does, so a stopped sweep resumes either way.
    """
    V.positive_int("workers", workers)
    units = []
    for name in datasets:
        ds = load_dataset(name, job.get("data_root"))
        rows: dict[int, int] = {}
        for point in (points if points is not None else grid(ds.name)):
            if point.messages not in rows:
                rows[point.messages] = computed_rows(ds, point.messages)
            units.append((grid_cost(point, rows[point.messages]) * len(folds),
                          ([name], list(folds), {**job, "points": [point]})))
    log(f"{len(units)} grid points over {workers} processes, largest first")
    written: list[Path] = []
    for paths in run_largest_first(_grid_unit, units, workers, threads):
        written += paths
    return written


def _grid_unit(datasets: list, folds: list, job: dict) -> list[Path]:
    return run_grid(datasets, folds, log=log_main, **job)


def log_main(text: str) -> None:
    """Print ``text`` on rank 0 only (every process of a DDP group runs the same loop)."""
    if ddp.is_main():
        print(text, flush=True)


def grid_process(threads: int, datasets: list, folds: list, job: dict) -> int:
    """One process of ``--nproc N`` (run inside :func:`ampsim.train.ddp.launch`)."""
    training_process(threads)
    if str(job.get("device", "cpu")).startswith("cuda"):
        job = {**job, "device": f"cuda:{torch.cuda.current_device()}"}
    run_grid(datasets, folds, log=log_main, **job)
    return 0


if __name__ == "__main__":  # `python -m ampsim.train.graph_classification ...`: alias of `ampsim table4 run ...`
    from ampsim.cli import alias

    raise SystemExit(alias(["table4", "run"]))
