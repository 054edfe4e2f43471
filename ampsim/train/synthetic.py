"""Tables 2 and 3 and Figure 6 (Sections 5.1-5.2): the synthetic tasks' protocol on the one loop.

Protocol (reference notes 1.5): per seed, build the data, initialise the model,
then ``epochs`` full-batch Adam steps (lr 0.01), each one forward pass over every
training graph -- every run simulated message by message (or by a batched
executor with the same results) -- one NLL, one backward pass (full BPTT), one
step (:func:`ampsim.train.loop.fit_models`). The final model is evaluated on the test set(s).

Randomness, all from ``seed`` (no global RNG is read or seeded):

* ``data``: the task's generator (:func:`ampsim.engine.rng.derive_seed`);
* ``init``: a ``torch.Generator`` that draws every parameter (:func:`init_parameters`);
* ``train-delays``: a ``random.Random`` stream; every epoch draws one 63-bit seed
  from it, so with ``delay="uniform"`` every epoch sees new delays; run r of
  training graph g in that epoch uses ``derive_seed(derive_seed(e, "graph<g>"), "run<r>")``;
* ``test-delays``: the same scheme for evaluation, fixed per (split, graph).

Checkpoints (every ``checkpoint_every`` epochs and at the end, :func:`ampsim.train.loop.save_checkpoint`)
hold the model, the optimiser, the delay stream's state, the epoch and the loss history;
:func:`fit` with ``resume=True`` continues from the last one and ends with bit-for-bit
the parameters of an uninterrupted run. :func:`fit_seeds` trains several seeds of one
(task, model) in one pass (:class:`ampsim.cells.stacked.AMPModelStack`) where their
schedules can be shared, with one run folder per seed as :func:`fit` writes it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

from ..cells.execute import EngineExecutor, Executor
from ..cells.models import AMPModel, budget_groups, cell_kind, init_parameters
from ..data.graphdata import GraphData
from ..data.tasks import LONGRANGE_TEST_SIZES, get_task, longrange_split
from ..engine.rng import derive_seed, stream
from . import ddp
from .. import validate as V
from .loop import Data, Options, check_run_numbers, fit_models, load_checkpoint, write_result

__all__ = [
    "TrainConfig",
    "TaskSpec",
    "PARITY_TASKS",
    "load_task",
    "build_model",
    "get_executor",
    "fit",
    "fit_seeds",
    "stack_groups",
    "level_rows",
    "work_per_epoch",
    "evaluate",
    "load_model",
    "distance_bucket",
    "param_digest",
    "budget_of",
    "CHECKPOINT",
    "RESULT",
    "USER_RUNS",
    "run_folder",
]

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
LOOP_NAMES = ("TrainConfig", "TaskSpec", "PARITY_TASKS", "DISPLAY", "GATE_INIT_BIAS", "load_task", "build_model",
              "get_executor", "fit", "fit_seeds", "evaluate", "load_model", "distance_bucket", "param_digest",
              "CHECKPOINT", "RESULT", "budget_of")
"""Names of this protocol that :mod:`ampsim.train.loop` also offers (their home before the loop became generic)."""
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
        """Every field checked and normalised (NumPy numbers become ``int``/``float``), so a configuration
        equals, hashes and serialises as the one written with Python values."""
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 -- frozen dataclass
        if not isinstance(self.task, str):
            raise V.ArgumentError(f"task must be a task name (str), got {V.show(self.task)}")  # known by load_task
        if not isinstance(self.model, str):
            raise V.ArgumentError(f"model must be a model name (str), got {V.show(self.model)}")
        cell_kind(self.model)
        set_("delay", V.choice("delay", self.delay, ("constant", "uniform")))
        set_("seed", V.integer("seed", self.seed))
        check_run_numbers(self.epochs, self.lr, self.checkpoint_every)
        set_("epochs", int(self.epochs))
        set_("lr", float(self.lr))
        set_("checkpoint_every", int(self.checkpoint_every))
        set_("gate", V.boolean("gate", self.gate))
        set_("sources", V.positive_int("sources", self.sources))
        for name in ("hidden", "msg_size", "budget_factor", "train_graphs"):
            set_(name, V.optional_positive_int(name, getattr(self, name)))
        if self.test_sizes is not None:
            sizes = V.plain(self.test_sizes)
            if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
                raise V.ArgumentError(f"test_sizes must be a list of graph sizes, got {V.show(self.test_sizes)}")
            set_("test_sizes", tuple(V.positive_int(f"test_sizes[{i}]", s) for i, s in enumerate(sizes)))

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


def budget_of(task: TaskSpec, config: Optional[TrainConfig], graph: GraphData) -> int:
    """The run budget on ``graph``: the task's (or the config's) factor times n processed deliveries."""
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
    logps = model.forward_many(graphs, executor, [budget_of(task, config, g) for g in graphs], delay,
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




def _forward(task: TaskSpec, config: TrainConfig, executor: Executor) -> Callable:
    """The loop's ``forward``: log-probabilities of training graphs ``items``, predictions concatenated.

    Graph i's runs take their delays from ``derive_seed(epoch_seed, "graph<i>")`` (the
    model's epoch seed), whichever process of a process group runs it.
    """
    budgets = [budget_of(task, config, g) for g in task.train]

    def forward(model: AMPModel, items: Sequence[int], seeds: Sequence[int]) -> torch.Tensor:
        graphs = [task.train[i] for i in items]
        logps = model.forward_many(graphs, executor, [budgets[i] for i in items], config.delay,
                                   [_graph_seed(seeds[0], i) for i in items])
        return torch.cat(logps, dim=-2)

    return forward


def _result(task: TaskSpec, config: TrainConfig, executor_name: str, outcome, model) -> dict:
    return {
        "task": task.name,
        "model": DISPLAY[cell_kind(config.model)] + ("+gate" if config.gate else ""),
        "config": config.to_dict(),
        "executor": executor_name,
        "epochs_done": outcome.epochs_done,
        "finished": outcome.finished,
        "loss": outcome.history["loss"],
        "train_acc": outcome.history["train_acc"],
        "params_sha256": param_digest(model),
        "seconds_train_this_call": outcome.seconds,
        "threads": torch.get_num_threads(),
        "processes": ddp.world_size(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _finish(result: dict, model: AMPModel, task: TaskSpec, config: TrainConfig, executor: Executor,
            out_dir: Optional[str]) -> dict:
    """Evaluate a finished model on the test split(s) (rank 0) and write ``out_dir/result.json``."""
    if not result["finished"] or not ddp.is_main():
        return result  # evaluation (a few seconds) runs on rank 0 alone
    t1 = time.perf_counter()
    test_seed = derive_seed(config.seed, "test-delays")
    result["test"] = {split: evaluate(model, task, graphs, executor, config.delay, test_seed, split, config)
                      for split, graphs in task.tests.items()}
    result["seconds_eval"] = time.perf_counter() - t1
    if task.seen_distances:
        result["seen_distances"] = list(task.seen_distances)
    if out_dir:
        write_result(os.path.join(out_dir, RESULT), result)
    return result


USER_RUNS = "runs"
"""Where a user's runs go by default (ignored by git), never the published ``results/``."""


def run_folder(root: str, task: str, model: str, seed: int, gate: bool = False, delay: str = "constant") -> str:
    """``<root>/<task>/<model>[+gate][@delay]/seed<k>``: one folder per (task, model, seed)."""
    tag = model.lower() + ("+gate" if gate else "") + ("" if delay == "constant" else f"@{delay}")
    slug = task.strip().lower().replace(" ", "")
    return os.path.join(root, slug, tag, f"seed{seed}")


def finished_result(out_dir: str, config: Optional[TrainConfig] = None) -> Optional[dict]:
    """The result in ``out_dir`` when it is a finished run (of ``config``, ``checkpoint_every`` aside,
    when one is given), else None."""
    path = os.path.join(out_dir, RESULT)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            result = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a valid result file ({exc.msg}, line {exc.lineno}); it is kept: move it "
                             "away to train this run again") from None
    if not isinstance(result, dict):
        raise ValueError(f"{path}: not a result file (a JSON {type(result).__name__}, not an object); move it away "
                         "to train this run again")
    if not result.get("finished"):
        return None
    if config is None:
        return result
    got, want = dict(result.get("config", {})), config.to_dict()
    got.pop("checkpoint_every", None)
    want.pop("checkpoint_every", None)
    return result if got == want else None


def check_run_folder(out_dir: Optional[str], config: TrainConfig, resume: bool = False) -> None:
    """Refuse to train into ``out_dir`` when its result file is a run of another configuration: that file is
    never overwritten (``ValueError`` naming it and the settings that differ); a corrupt one is named too.
    With ``resume`` a run of fewer or more epochs is the same run continued (its checkpoint decides)."""
    if not out_dir:
        return
    path = os.path.join(out_dir, RESULT)
    if not os.path.exists(path):
        return
    finished_result(out_dir)  # a corrupt file: an error naming it
    with open(path, encoding="utf-8") as f:
        got = dict(json.load(f).get("config") or {})
    want = config.to_dict()
    ignored = {"checkpoint_every", "epochs"} if resume else {"checkpoint_every"}
    first = ("task", "model", "seed", "delay", "gate", "epochs")
    differ = sorted((k for k in set(got) | set(want) if k not in ignored and got.get(k) != want.get(k)),
                    key=lambda k: (first.index(k) if k in first else len(first), k))
    if differ:
        shown = ", ".join(f"{k} {got.get(k)!r} there, {want.get(k)!r} here" for k in differ[:4])
        shown += f", and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ValueError(f"{path} holds a run of another configuration ({shown}); it is never overwritten: "
                         "give another --out (or --root), or move it away")


def _resolve(executor: Optional[Executor], executor_name: Optional[str]) -> tuple[str, Executor]:
    if executor is None:
        return get_executor(executor_name)
    return executor_name or type(executor).__name__, executor


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
    afresh), and returns a finished run's stored result without training or writing. Inside a process group (``ampsim train --nproc N``, see :mod:`ampsim.train.ddp`)
    each rank trains on its shard under DDP, rank 0 alone writes and evaluates, and the
    other ranks return the unevaluated result. ``stop_after`` ends the call after that many epochs *of this call*
    without evaluating (a simulated interruption); the result then has
    ``"finished": False``. Progress: tqdm on stderr unless ``quiet`` or not a TTY.
    """
    if resume and out_dir and stop_after is None:
        done = finished_result(out_dir, config)
        if done is not None:  # nothing to train: the stored result, and no file is touched
            return done
    if ddp.is_main():
        check_run_folder(out_dir, config, resume)
    executor_name, executor = _resolve(executor, executor_name)
    task = task if task is not None else load_task(
        config.task, config.seed, train_graphs=config.train_graphs, test_sizes=config.test_sizes,
        sources=config.sources)
    model = build_model(task, config)
    if out_dir and ddp.is_main():
        os.makedirs(out_dir, exist_ok=True)
    options = Options(epochs=config.epochs, lr=config.lr, checkpoint_every=config.checkpoint_every, resume=resume,
                      stop_after=stop_after, quiet=quiet, desc=f"{task.name} {config.model} s{config.seed}")
    tell = None
    if on_epoch is not None:
        tell = lambda epoch, outs: on_epoch(epoch, outs[0].history["loss"][-1],  # noqa: E731
                                            outs[0].history["train_acc"][-1])
    outcomes = fit_models(model, _forward(task, config, executor), Data([model.targets(g) for g in task.train]),
                          options, checkpoints=[os.path.join(out_dir, CHECKPOINT)] if out_dir else None,
                          configs=[config.to_dict()], delay_rngs=[stream(config.seed, "train-delays")],
                          on_epoch=tell)
    return _finish(_result(task, config, executor_name, outcomes[0], model), model, task, config, executor, out_dir)


def _same_data(a: TaskSpec, b: TaskSpec) -> bool:
    """Whether two tasks train on the same graphs (structure, features and labels)."""
    if len(a.train) != len(b.train):
        return False
    return all(x.num_nodes == y.num_nodes and torch.equal(x.edge_index, y.edge_index) and torch.equal(x.x, y.x)
               and torch.equal(x.y, y.y) and ((x.starts is None and y.starts is None) or
                                              (x.starts is not None and y.starts is not None and
                                               torch.equal(x.starts, y.starts)))
               for x, y in zip(a.train, b.train))


#: Rows per level (of one model) from which a stack of models costs the CPU more than the models one
#: after another: a stacked level is K times larger and its batched products no longer sit in cache.
#: Measured with the RNN level kernels (h32, K = 10; stacked vs ten single levels): 2.4x at 32 rows,
#: 1.2x at 256, 0.97x at 512, 0.55x at 4096 (docs/learned_amp.md). Tables 2 and 3 train on the CPU.
STACK_MAX_LEVEL_ROWS = 512


def work_per_epoch(task: TaskSpec, config: TrainConfig) -> int:
    """Cell calls of one training epoch at most: runs x budget summed over the training graphs."""
    model_runs = (lambda g: 1) if task.readout == "all" else (lambda g: g.num_nodes)
    return sum(model_runs(g) * budget_of(task, config, g) for g in task.train)


def level_rows(task: TaskSpec, config: TrainConfig, executor: Executor) -> float:
    """Mean rows per level of one model's training pass (constant delays; computed deliveries / levels
    over the budget groups that :meth:`~ampsim.cells.models.AMPModel.forward_many` runs)."""
    model = build_model(task, config)
    budgets = [budget_of(task, config, g) for g in task.train]
    rows = levels = 0
    for budget, idx in budget_groups(budgets).items():
        sizes = executor.level_sizes([task.train[i] for i in idx], [model.runs(task.train[i]) for i in idx], budget,
                                     config.delay, keep=[model.entries(task.train[i].num_nodes) for i in idx])
        rows, levels = rows + sum(sizes), levels + len(sizes)
    return rows / max(levels, 1)


def stack_groups(configs: Sequence[TrainConfig], tasks: Sequence[TaskSpec], executor: Executor,
                 stack: bool = True) -> list[tuple[list[int], str]]:
    """Which configs train together: ``[(indices, reason), ...]``, one pass per group.

    A group shares one schedule (one :class:`~ampsim.cells.stacked.AMPModelStack`) when its
    configs differ only in the seed, the cell is always-emit (RNN, GRU, LSTM, no gate), delays
    are constant, the executor batches (``execute_many``), the seeds train on the same graphs
    and the levels are small: at most :data:`STACK_MAX_LEVEL_ROWS` rows per model on average
    (beyond, stacking costs the CPU more than it saves). Otherwise each config is its own
    group; ``reason`` says why.
    """
    def key(c: TrainConfig) -> tuple:
        d = c.to_dict()
        d.pop("seed")
        return tuple(sorted((k, str(v)) for k, v in d.items()))

    alone = None
    first = configs[0] if configs else None
    if len(configs) == 1:
        alone = "one seed"
    elif not stack:
        alone = "stacking is off"
    elif first is not None and (cell_kind(first.model) not in ("rnn", "gru", "lstm") or first.gate):
        alone = (f"{first.model}{'+gate' if first.gate else ''} has a value-dependent schedule (halting or gate), "
                 "which differs per model")
    elif first is not None and first.delay != "constant":
        alone = "uniform delays draw a different schedule per seed and epoch"
    elif getattr(executor, "execute_many", None) is None:
        alone = "the executor runs one model at a time (use the batched executor)"
    if alone is not None:
        return [([i], alone) for i in range(len(configs))]
    groups: list[tuple[list[int], str]] = []
    for i, c in enumerate(configs):
        for idx, _ in groups:
            j = idx[0]
            if key(configs[j]) == key(c) and _same_data(tasks[j], tasks[i]):
                idx.append(i)
                break
        else:
            groups.append(([i], "its training graphs differ from the other seeds' (a shared pass would run every "
                                "model on every seed's graphs)"))
    out: list[tuple[list[int], str]] = []
    for idx, why in groups:
        rows = level_rows(tasks[idx[0]], configs[idx[0]], executor) if len(idx) > 1 else 0.0
        if rows > STACK_MAX_LEVEL_ROWS:
            why = (f"its levels hold {rows:.0f} rows per model on average (over {STACK_MAX_LEVEL_ROWS}, a stack "
                   "costs the CPU more than the seeds one after another)")
            out += [([i], why) for i in idx]
        else:
            out.append((idx, "stacked" if len(idx) > 1 else why))
    return out


def fit_seeds(configs: Sequence[TrainConfig], executor: Optional[Executor] = None,
              out_dirs: Optional[Sequence[Optional[str]]] = None, resume: bool = False, quiet: bool = True,
              executor_name: Optional[str] = None, stack: bool = True,
              log: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Train several configs (seeds of one task and model) in one process; one result per config.

    Groups from :func:`stack_groups` train as one stack (one executor pass per epoch for all
    seeds), the rest one after another with :func:`fit`. Each seed keeps its own run folder,
    checkpoint and ``result.json`` exactly as :func:`fit` writes them (a stacked seed's
    checkpoint reloads as a plain model), so tables and resuming do not care how it was trained.
    """
    from ..cells.stacked import AMPModelStack
    from .loop import checkpoint_epoch, unstack_state

    executor_name, executor = _resolve(executor, executor_name)
    out_dirs = list(out_dirs) if out_dirs is not None else [None] * len(configs)
    results: list[Optional[dict]] = [None] * len(configs)
    if resume:  # finished runs: their stored results, nothing trained or written
        results = [finished_result(d, c) if d else None for c, d in zip(configs, out_dirs)]
    todo = [i for i, r in enumerate(results) if r is None]
    if ddp.is_main():
        for i in todo:
            check_run_folder(out_dirs[i], configs[i], resume)
    tasks: list = [None] * len(configs)
    for i in todo:
        c = configs[i]
        tasks[i] = load_task(c.task, c.seed, train_graphs=c.train_graphs, test_sizes=c.test_sizes, sources=c.sources)
    groups = []
    for sub, why in stack_groups([configs[i] for i in todo], [tasks[i] for i in todo], executor, stack):
        idx = [todo[k] for k in sub]
        by_epoch: dict[int, list[int]] = {}
        for i in idx:  # a stack resumes together only from checkpoints at the same epoch
            ckpt = os.path.join(out_dirs[i], CHECKPOINT) if out_dirs[i] else None
            by_epoch.setdefault(checkpoint_epoch(ckpt) if resume else 0, []).append(i)
        groups += [(sub, why) for sub in by_epoch.values()]
    for idx, why in groups:
        if log is not None:
            seeds = ", ".join(str(configs[i].seed) for i in idx)
            log(f"{tasks[idx[0]].name} {configs[idx[0]].model} seed(s) {seeds}: "
                + ("one pass for all" if len(idx) > 1 else f"alone ({why})"))
        if len(idx) == 1:
            i = idx[0]
            results[i] = fit(configs[i], executor, out_dirs[i], resume, quiet, executor_name, task=tasks[i])
            continue
        task, first = tasks[idx[0]], configs[idx[0]]
        models = [build_model(tasks[i], configs[i]) for i in idx]
        net = AMPModelStack(models)
        for i in idx:
            if out_dirs[i] and ddp.is_main():
                os.makedirs(out_dirs[i], exist_ok=True)
        options = Options(epochs=first.epochs, lr=first.lr, checkpoint_every=first.checkpoint_every, resume=resume,
                          quiet=quiet, desc=f"{task.name} {first.model} x{len(idx)}")
        paths = [os.path.join(out_dirs[i], CHECKPOINT) for i in idx] if all(out_dirs[i] for i in idx) else None
        outcomes = fit_models(net, _forward(task, first, executor), Data([models[0].targets(g) for g in task.train]),
                              options, checkpoints=paths, configs=[configs[i].to_dict() for i in idx],
                              delay_rngs=[stream(configs[i].seed, "train-delays") for i in idx])
        state = net.state_dict()
        for j, i in enumerate(idx):
            models[j].load_state_dict(unstack_state(state, j))
            result = _result(tasks[i], configs[i], executor_name, outcomes[j], models[j])
            result["stacked_with"] = len(idx)
            results[i] = _finish(result, models[j], tasks[i], configs[i], executor, out_dirs[i])
    return results  # type: ignore[return-value]


def load_model(out_dir: str) -> tuple[AMPModel, TaskSpec, TrainConfig]:
    """The trained model of a run folder (its checkpoint), with its task and config."""
    ckpt = load_checkpoint(os.path.join(out_dir, CHECKPOINT))
    config = TrainConfig.from_dict(ckpt["config"])
    task = load_task(config.task, config.seed, train_graphs=config.train_graphs,
                     test_sizes=config.test_sizes, sources=config.sources)
    model = build_model(task, config)
    model.load_state_dict(ckpt["model"])
    return model, task, config
