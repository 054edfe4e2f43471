"""Training and evaluation of learned AMP (Sections 5.1-5.2): full-batch Adam through simulated runs.

Protocol (reference notes 1.5): per seed, build the data, initialise the model,
then ``epochs`` full-batch Adam steps (lr 0.01), each one forward pass over every
training graph -- every run simulated message by message (or by a batched
executor with the same results) -- one NLL, one backward pass (full BPTT), one
step. The final model is evaluated on the test set(s).

Randomness, all from ``seed`` (no global RNG is read or seeded):

* ``data``: the task's generator (:func:`ampsim.engine.rng.derive_seed`);
* ``init``: a ``torch.Generator`` that draws every parameter (:func:`init_parameters`);
* ``train-delays``: a ``random.Random`` stream; every epoch draws one 63-bit seed
  from it, so with ``delay="uniform"`` every epoch sees new delays; run r of
  training graph g in that epoch uses ``derive_seed(derive_seed(e, "graph<g>"), "run<r>")``;
* ``test-delays``: the same scheme for evaluation, fixed per (split, graph).

Checkpoints (every ``checkpoint_every`` epochs and at the end) hold the model, the
optimiser, the delay stream's state, the epoch and the loss history, written
atomically; :func:`fit` with ``resume=True`` continues from the last one and ends
with bit-for-bit the parameters of an uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

from ..engine.errors import CheckpointError
from ..fileio import load_torch
from ..cells.execute import EngineExecutor, Executor
from ..cells.models import AMPModel, cell_kind, init_parameters, nll
from ..data.graphdata import GraphData
from ..data.tasks import LONGRANGE_TEST_SIZES, get_task, longrange_split
from ..engine.rng import derive_seed, stream
from . import ddp

__all__ = [
    "TrainConfig",
    "TaskSpec",
    "PARITY_TASKS",
    "load_task",
    "build_model",
    "get_executor",
    "fit",
    "evaluate",
    "load_model",
    "distance_bucket",
    "param_digest",
    "CHECKPOINT",
    "RESULT",
]

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
CKPT_FORMAT = "ampsim.train.checkpoint"
#: Initial bias of the learned emission gate: sigma(2) = 0.88, so training starts close to always-emit.
GATE_INIT_BIAS = 2.0
#: Table 3 ("parity") and Figure 6b ("parity-multi") task names.
PARITY_TASKS = ("parity", "parity-multi")
#: The paper's display names of the five variants.
DISPLAY = {"rnn": "AMP-RNN", "gru": "AMP-GRU", "lstm": "AMP-LSTM", "act": "AMP-ACT", "iter": "AMP-Iter"}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``None`` fields take the task's value (hidden, message size, budget)."""

    task: str
    model: str = "amp-rnn"
    delay: str = "constant"
    seed: int = 0
    epochs: int = 1000
    lr: float = 0.01
    gate: bool = False
    hidden: Optional[int] = None
    msg_size: Optional[int] = None
    budget_factor: Optional[int] = None
    train_graphs: Optional[int] = None
    test_sizes: Optional[tuple[int, ...]] = None
    sources: int = 3
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        cell_kind(self.model)
        if self.delay not in ("constant", "uniform"):
            raise ValueError(f"delay must be 'constant' or 'uniform', got {self.delay!r}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        for name in ("hidden", "msg_size", "budget_factor", "train_graphs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.test_sizes is not None:
            object.__setattr__(self, "test_sizes", tuple(int(s) for s in self.test_sizes))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["test_sizes"] = list(self.test_sizes) if self.test_sizes is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if d.get("test_sizes") is not None:
            d["test_sizes"] = tuple(d["test_sizes"])
        return cls(**d)


@dataclass(frozen=True)
class TaskSpec:
    """A task as training sees it: graphs, the paper's settings, and the model it needs."""

    name: str
    train: list
    tests: dict  # split name ("test", or a graph size as text) -> list of GraphData
    num_classes: int
    hidden: int
    aggr: str
    readout: str
    budget_factor: int
    msg_size: int
    heads: int
    in_features: int
    seen_distances: tuple = field(default=())


def _parity_seen(train: Sequence[GraphData]) -> tuple:
    return tuple(sorted({int(d) for g in train for d in g.meta["distances"].reshape(-1).tolist()}))


def load_task(name: str, seed: int, *, train_graphs: Optional[int] = None,
              test_sizes: Optional[Sequence[int]] = None, sources: int = 3) -> TaskSpec:
    """Build task ``name`` for ``seed``: a Table 2 set (``"limits1"``, ``"4-cycles"``, ...),
    ``"parity"`` (Table 3) or ``"parity-multi"`` (Figure 6b, ``sources`` origins).

    Table 2: budget 5n, start message ones(3), one run per node, readout ``start``
    (node tasks) or ``pool`` (graph tasks). Table 3: budget 10n, one run from the
    origin with e0 of size 3 (multi-source: e_i of size 3 * sources), every node decoded.
    """
    data_seed = derive_seed(seed, "data")
    key = name.strip().lower()
    if key in PARITY_TASKS:
        multi = key == "parity-multi"
        if multi and sources < 1:
            raise ValueError(f"sources must be >= 1, got {sources}")
        sizes = tuple(test_sizes) if test_sizes is not None else LONGRANGE_TEST_SIZES
        split = longrange_split(data_seed, train_graphs=train_graphs or 100, test_sizes=sizes,
                                sources=sources if multi else None)
        train = split["train"]
        return TaskSpec(
            name=f"Parity-{sources}" if multi else "Parity",
            train=train,
            tests={str(size): graphs for size, graphs in split["test"].items()},
            num_classes=2, hidden=split["hidden"], aggr="sum", readout="all", budget_factor=10,
            msg_size=3 * sources if multi else 3, heads=sources if multi else 1,
            in_features=int(train[0].x.shape[1]), seen_distances=_parity_seen(train),
        )
    if train_graphs is not None or test_sizes is not None:
        raise ValueError("train_graphs and test_sizes apply to the parity tasks only")
    split = get_task(name, data_seed)
    return TaskSpec(
        name=split.name, train=split.train, tests={"test": split.test}, num_classes=split.num_classes,
        hidden=split.hidden, aggr=split.aggr, readout="start" if split.level == "node" else "pool",
        budget_factor=5, msg_size=3, heads=1, in_features=split.num_features,
    )


def build_model(task: TaskSpec, config: TrainConfig) -> AMPModel:
    """The model of ``config`` for ``task``, every parameter drawn from the ``init`` stream of the seed.

    A learned emission gate starts open (bias :data:`GATE_INIT_BIAS`): the straight-through gate
    only gets gradient through messages that were sent, so a gate that starts closed never learns.
    """
    with torch.device("meta"):  # no parameter is drawn from torch's global RNG
        model = AMPModel(
            cell_kind(config.model), task.in_features, config.hidden or task.hidden, task.num_classes,
            msg_size=config.msg_size or task.msg_size, readout=task.readout, aggr=task.aggr,
            heads=task.heads, gate=config.gate,
        )
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "init") % (2**63))
    init_parameters(model, generator)
    if model.cell.emit_gate is not None:
        with torch.no_grad():  # start open: a closed straight-through gate gets no gradient
            model.cell.emit_gate.bias.fill_(GATE_INIT_BIAS)
    return model


def get_executor(name: Optional[str] = None) -> tuple[str, Executor]:
    """``"engine"`` (per message), ``"batched"`` (``ampsim.batched``), or ``None``: batched if it imports."""
    if name not in (None, "engine", "batched"):
        raise ValueError(f"unknown executor {name!r}; choose 'engine' or 'batched'")
    if name in (None, "batched"):
        try:
            from ..batched import BatchedExecutor  # lazily: written in parallel
        except ImportError:
            if name == "batched":
                raise ValueError("the batched executor (ampsim.batched.BatchedExecutor) is not available") from None
        else:
            return "batched", BatchedExecutor()
    return "engine", EngineExecutor()


def param_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in ``state_dict`` order (bit-for-bit identity)."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _graph_seed(epoch_seed: int, index: int) -> int:
    return derive_seed(epoch_seed, f"graph{index}")


def distance_bucket(d: int) -> int:
    """Figure 5a's buckets: the origin alone, then odd/even pairs merged (1-2 -> 1, 3-4 -> 3, ...)."""
    return 0 if d == 0 else d - (d + 1) % 2


def _budget(task: TaskSpec, config: Optional[TrainConfig], graph: GraphData) -> int:
    factor = (config.budget_factor if config is not None else None) or task.budget_factor
    return factor * graph.num_nodes


@torch.no_grad()
def evaluate(model: AMPModel, task: TaskSpec, graphs: Sequence[GraphData], executor: Executor,
             delay: str = "constant", seed: int = 0, split: str = "test",
             config: Optional[TrainConfig] = None) -> dict:
    """Accuracy of ``model`` on ``graphs``: per node (node tasks, all heads) or per graph.

    For the parity tasks also ``by_distance`` (Figure 5a buckets, see
    :func:`distance_bucket`) and ``seen`` (only nodes whose distance occurs in the
    training set, Figure 5b). Delays of graph i come from ``derive_seed(seed, split/i)``.
    """
    correct = total = 0
    buckets: dict[int, list[int]] = {}
    seen_c = seen_t = 0
    seen = set(task.seen_distances)
    logps = model.forward_many(graphs, executor, [_budget(task, config, g) for g in graphs], delay,
                               [derive_seed(seed, f"{split}/{i}") for i in range(len(graphs))])
    for g, logp in zip(graphs, logps):
        hit = (logp.argmax(-1) == model.targets(g))
        correct += int(hit.sum())
        total += hit.numel()
        if task.readout == "all":
            dist = g.meta["distances"].reshape(g.num_nodes, -1).t()
            for d, h in zip(dist.reshape(-1).tolist(), hit.reshape(-1).tolist()):
                b = buckets.setdefault(distance_bucket(d), [0, 0])
                b[0] += int(h)
                b[1] += 1
                if d in seen:
                    seen_c += int(h)
                    seen_t += 1
    out: dict[str, Any] = {"acc": correct / total if total else float("nan"), "correct": correct, "total": total}
    if task.readout == "all":
        out["by_distance"] = {str(k): {"acc": v[0] / v[1], "total": v[1]} for k, v in sorted(buckets.items())}
        out["seen"] = {"acc": seen_c / seen_t if seen_t else float("nan"), "total": seen_t}
    return out


def _epoch_loss(model: AMPModel, task: TaskSpec, executor: Executor, config: TrainConfig,
                epoch_seed: int, net: Optional[torch.nn.Module] = None) -> tuple[torch.Tensor, float]:
    """One full-batch forward pass: mean NLL over all predictions (summed over heads); and train accuracy.

    Inside a process group (``ampsim train --nproc N``) this process runs only its shard
    of the training graphs (:func:`ampsim.train.ddp.shard`, graph i keeps its delays
    ``derive_seed(epoch_seed, "graph<i>")``) through ``net`` (the DDP wrapper); the loss
    ``world / P * sum of the shard's NLLs`` (P predictions in all) makes DDP's averaged
    gradient the single-process full-batch gradient, and the returned accuracy is global.
    """
    if ddp.world_size() > 1:
        return _shard_epoch_loss(model, task, executor, config, epoch_seed, net)
    graphs = task.train
    logps = model.forward_many(graphs, executor, [_budget(task, config, g) for g in graphs], config.delay,
                               [_graph_seed(epoch_seed, i) for i in range(len(graphs))])
    targets = [model.targets(g) for g in graphs]
    dim = 1 if task.readout == "all" else 0
    logp = torch.cat(logps, dim=dim)
    target = torch.cat(targets, dim=dim)
    if task.readout == "all":
        loss = sum(nll(logp[h], target[h]) for h in range(task.heads))
    else:
        loss = nll(logp, target)
    acc = float((logp.detach().argmax(-1) == target).double().mean())
    return loss, acc


class _ForwardMany(torch.nn.Module):
    """``forward = model.forward_many``: the module DDP wraps, so its hooks see the full-batch forward."""

    def __init__(self, model: AMPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, graphs, executor, budgets, delay, seeds):  # noqa: D102 - see AMPModel.forward_many
        return self.model.forward_many(graphs, executor, budgets, delay, seeds)


def _nll_sum(logp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), target.reshape(-1), reduction="sum")


def _shard_epoch_loss(model: AMPModel, task: TaskSpec, executor: Executor, config: TrainConfig,
                      epoch_seed: int, net: Optional[torch.nn.Module]) -> tuple[torch.Tensor, float]:
    if len(task.train) < ddp.world_size():
        raise ValueError(f"{len(task.train)} training graphs cannot be shared by {ddp.world_size()} processes")
    mine = ddp.shard(range(len(task.train)))
    graphs = [task.train[i] for i in mine]
    logps = (net or _ForwardMany(model))(graphs, executor, [_budget(task, config, g) for g in graphs],
                                          config.delay, [_graph_seed(epoch_seed, i) for i in mine])
    dim = 1 if task.readout == "all" else 0
    logp = torch.cat(logps, dim=dim)
    target = torch.cat([model.targets(g) for g in graphs], dim=dim)
    total = sum(int(model.targets(g).shape[-1]) for g in task.train)  # predictions per head, all graphs
    heads = range(task.heads) if task.readout == "all" else [None]
    local = sum(_nll_sum(logp if h is None else logp[h], target if h is None else target[h]) for h in heads)
    hits = torch.tensor([float((logp.detach().argmax(-1) == target).sum()), float(target.numel())],
                        dtype=torch.float64)
    torch.distributed.all_reduce(hits)
    return ddp.shard_loss(local, total), float(hits[0] / hits[1])


def _atomic_json(path: str, obj: dict) -> None:
    tmp = f"{path}.partial-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=False, allow_nan=True)
        f.write("\n")
    os.replace(tmp, path)


def _save_checkpoint(path: str, config: TrainConfig, epoch: int, model: AMPModel, opt: torch.optim.Optimizer,
                     rng_state: tuple, history: dict) -> None:
    tmp = f"{path}.partial-{os.getpid()}"
    torch.save({
        "format": CKPT_FORMAT, "version": 1, "config": config.to_dict(), "epoch": epoch,
        "model": model.state_dict(), "optimizer": opt.state_dict(), "delay_rng": rng_state,
        "history": history,
    }, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: str, config: TrainConfig) -> dict:
    ckpt = load_torch(path, "training checkpoint")  # empty / truncated / foreign: one CheckpointError naming path
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path}: not an ampsim training checkpoint (another program's file)")
    missing = [k for k in ("config", "epoch", "model", "optimizer", "delay_rng", "history") if k not in ckpt]
    if missing or not isinstance(ckpt["config"], dict):
        raise CheckpointError(f"{path}: incomplete ampsim training checkpoint (missing {missing or ['config']})")
    saved = dict(ckpt["config"])
    mine = config.to_dict()
    saved.pop("epochs", None)
    saved.pop("checkpoint_every", None)
    for key in ("epochs", "checkpoint_every"):
        mine.pop(key)
    if saved != mine:
        diff = sorted(k for k in mine if mine.get(k) != saved.get(k))
        raise ValueError(f"checkpoint {path} was written for another configuration (differs in {diff})")
    if ckpt["epoch"] > config.epochs:
        raise ValueError(f"checkpoint {path} is at epoch {ckpt['epoch']}, beyond epochs={config.epochs}")
    return ckpt


def _rng_state_tuple(state: Any) -> tuple:
    """``random.Random.setstate`` wants tuples; a loaded checkpoint may hold lists."""
    version, internal, gauss = state
    return (int(version), tuple(int(x) for x in internal), gauss)


def fit(
    config: TrainConfig,
    executor: Optional[Executor] = None,
    out_dir: Optional[str] = None,
    resume: bool = False,
    quiet: bool = True,
    executor_name: Optional[str] = None,
    task: Optional[TaskSpec] = None,
    stop_after: Optional[int] = None,
    on_epoch: Optional[Callable[[int, float, float], None]] = None,
) -> dict:
    """Train ``config`` and return its result dict (also written to ``out_dir/result.json``).

    ``executor`` defaults to :func:`get_executor` (batched if available). With
    ``out_dir`` a checkpoint is written every ``config.checkpoint_every`` epochs and
    at the end; ``resume=True`` continues from it (an absent checkpoint starts
    afresh). Inside a process group (``ampsim train --nproc N``, see :mod:`ampsim.train.ddp`)
    each rank trains on its shard under DDP, rank 0 alone writes and evaluates, and the
    other ranks return the unevaluated result. ``stop_after`` ends the call after that many epochs *of this call*
    without evaluating (a simulated interruption); the result then has
    ``"finished": False``. Progress: tqdm on stderr unless ``quiet`` or not a TTY.
    """
    if executor is None:
        executor_name, executor = get_executor(executor_name)
    executor_name = executor_name or type(executor).__name__
    task = task if task is not None else load_task(
        config.task, config.seed, train_graphs=config.train_graphs, test_sizes=config.test_sizes,
        sources=config.sources)
    model = build_model(task, config)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = stream(config.seed, "train-delays")
    history: dict[str, list] = {"loss": [], "train_acc": []}
    epoch = 0
    ckpt_path = os.path.join(out_dir, CHECKPOINT) if out_dir else None
    writer = ddp.is_main()  # with --nproc N only rank 0 writes; every rank reads a checkpoint to resume
    if out_dir and writer:
        os.makedirs(out_dir, exist_ok=True)
    if ckpt_path and os.path.exists(ckpt_path):
        if not resume:
            raise ValueError(f"{ckpt_path} exists: pass resume=True (--resume) to continue it, or use another output folder")
        ckpt = _load_checkpoint(ckpt_path, config)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        rng.setstate(_rng_state_tuple(ckpt["delay_rng"]))
        history = {k: list(v) for k, v in ckpt["history"].items()}
        epoch = int(ckpt["epoch"])
    net = None
    if ddp.world_size() > 1:
        torch.distributed.barrier()  # every rank has read the checkpoint before rank 0 may replace it
        net = ddp.wrap(_ForwardMany(model))

    from tqdm import tqdm

    show = not quiet and writer and sys.stderr.isatty()
    bar = tqdm(total=config.epochs, initial=epoch, disable=not show, desc=f"{task.name} {config.model} s{config.seed}",
               leave=False)
    t0 = time.perf_counter()
    done_now = 0
    model.train()
    try:
        while epoch < config.epochs:
            if stop_after is not None and done_now >= stop_after:
                break
            epoch_seed = rng.getrandbits(63)
            loss, acc = _epoch_loss(model, task, executor, config, epoch_seed, net)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            epoch += 1
            done_now += 1
            history["loss"].append(loss.item() if net is None else float(ddp.mean_across(loss.detach())))
            history["train_acc"].append(acc)
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}", acc=f"{acc:.3f}")
            if on_epoch is not None:
                on_epoch(epoch, history["loss"][-1], acc)
            if ckpt_path and writer and (epoch % config.checkpoint_every == 0 or epoch == config.epochs):
                _save_checkpoint(ckpt_path, config, epoch, model, opt, rng.getstate(), history)
    finally:
        bar.close()
    train_seconds = time.perf_counter() - t0
    result: dict[str, Any] = {
        "task": task.name,
        "model": DISPLAY[cell_kind(config.model)] + ("+gate" if config.gate else ""),
        "config": config.to_dict(),
        "executor": executor_name,
        "epochs_done": epoch,
        "finished": epoch >= config.epochs,
        "loss": history["loss"],
        "train_acc": history["train_acc"],
        "params_sha256": param_digest(model),
        "seconds_train_this_call": train_seconds,
        "threads": torch.get_num_threads(),
        "processes": ddp.world_size(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if not result["finished"] or not writer:
        return result  # evaluation (a few seconds) runs on rank 0 alone
    model.eval()
    t1 = time.perf_counter()
    test_seed = derive_seed(config.seed, "test-delays")
    result["test"] = {split: evaluate(model, task, graphs, executor, config.delay, test_seed, split, config)
                      for split, graphs in task.tests.items()}
    result["seconds_eval"] = time.perf_counter() - t1
    if task.seen_distances:
        result["seen_distances"] = list(task.seen_distances)
    if out_dir:
        _atomic_json(os.path.join(out_dir, RESULT), result)
    return result


def load_model(out_dir: str) -> tuple[AMPModel, TaskSpec, TrainConfig]:
    """The trained model of a run folder (its checkpoint), with its task and config."""
    ckpt = load_torch(os.path.join(out_dir, CHECKPOINT), "training checkpoint")
    config = TrainConfig.from_dict(ckpt["config"])
    task = load_task(config.task, config.seed, train_graphs=config.train_graphs,
                     test_sizes=config.test_sizes, sources=config.sources)
    model = build_model(task, config)
    model.load_state_dict(ckpt["model"])
    return model, task, config

