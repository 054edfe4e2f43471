"""The one training loop (paper Sections 5.1-5.3): model + data + readout + loss in; fit, evaluate, checkpoint.

Every training in ampsim goes through :func:`fit_models`: Tables 2 and 3 and Figure 6
(:mod:`ampsim.train.synthetic`), Table 4 (:mod:`ampsim.train.graph_classification`) and
node classification are protocol definitions on it. A protocol supplies four things:

* ``model`` -- the ``nn.Module`` that owns the parameters (what a checkpoint saves). Either
  **one model**, or a **stack of K models** (``model.models == K``, e.g.
  :class:`ampsim.cells.stacked.AMPModelStack`): every parameter has a leading dimension K and
  the stack's ``state_dict`` keys are the single model's, so model k alone is
  ``{key: value[k]}`` (:func:`unstack_state`; :func:`stack_states` the inverse).
* ``forward(model, items, seeds) -> Tensor`` -- the readout included: log-probabilities of the
  predictions of ``items`` (indices into ``data.targets``), concatenated along the prediction
  axis (``-2``) in the order of ``items``, shape ``([K,] [heads,] P, C)``; ``seeds[k]`` is model
  k's delay seed of this epoch (drawn from its ``delay_rngs[k]``; 0 without streams).
* ``data`` -- :class:`Data`: ``targets[i]`` the labels of item i, shape ``([heads,] p_i)``;
  ``train`` a ``(K, items)`` bool mask: item i is in model k's training set (folds).
* ``loss`` -- per prediction, ``loss(logp, target) -> (...)`` (default :func:`nll_terms`).

The rule: model k's loss is ``L_k = (1/P_k) sum_{i in train_k} sum_{heads, p} loss(i, p)`` with
``P_k`` the predictions (per head) of its training items -- the full-batch mean NLL of the
paper's protocols, summed over heads (Figure 6). One epoch = one forward over the items that
any model trains on, one backward of ``sum_k L_k``, one Adam step (and a StepLR step). Models
of a stack share nothing but the pass: Adam is elementwise, so each slice of the stacked
optimiser state is that model's own, and its losses, gradients and parameters are those of
training it alone (``tests/train/test_stacked.py``, to 1e-5).

:class:`Options` (``epochs``, ``lr``, ``lr_steps`` = StepLR(step, gamma), ``eval_every``,
``checkpoint_every``, ``resume``, ``stop_after``) are shared by the models of one call.

* **Evaluation**: ``evaluate(model, epoch) -> [dict per model]`` every ``eval_every`` epochs;
  each value is appended to that model's history under its key (Table 4's ``test_acc``).
  A final evaluation is the protocol's business (it has the trained model). Optionally
  ``evaluate_forward(logp, items) -> [dict per model]`` gives the same metrics from a training
  forward's output (``(K, ..., P, C)``, detached, over ``items``), for a protocol whose
  training batch holds every evaluated item and whose model computes the same values in
  train and eval mode (Table 4's stacked folds: each fold's test graphs are other folds'
  training graphs). Then, in one process, the evaluation of epoch e waits for epoch e + 1's
  training forward, which runs the weights of epoch e (the step comes after it), instead of a
  pass of its own; ``on_epoch(e)`` waits with it (not with ``delay_rngs``: each epoch draws new
  delays). Checkpoint epochs and the last epoch
  evaluate at once, so a checkpoint always holds its epoch's metrics; ``None`` from
  ``evaluate_forward`` falls back to ``evaluate``.
* **Checkpoints**: ``checkpoints[k]`` is model k's file (:func:`save_checkpoint`, via
  :func:`ampsim.fileio.save_torch`): its parameters, its slice of the optimiser state, the
  scheduler, its delay stream, the epoch and its history, plus the protocol's ``configs[k]``
  (checked on resume). So a stack resumes as a stack or one model at a time, and a finished
  model's checkpoint reloads as a plain model. All models of a call must be at the same epoch
  (:func:`checkpoint_epoch` lets a runner group them).
* **Data parallel**: inside a process group (:mod:`ampsim.train.ddp`) every rank takes every
  P-th item (:func:`ampsim.train.ddp.shard`), the model is wrapped in DDP, and the loss is
  ``world / P_k`` times the shard's sum, so DDP's averaged gradient is the full-batch gradient;
  rank 0 alone evaluates and writes.
* **Results**: :func:`write_result` (rank 0, :func:`ampsim.fileio.write_json`, NaN -> null).

Returns one :class:`Outcome` per model (history, epochs done, finished, seconds of this call).

Example (one model; ``forward`` closes over the graphs and the executor)::

    def forward(model, items, seeds):
        return torch.cat(model.forward_many([graphs[i] for i in items], executor, budgets, "constant"), dim=-2)

    data = Data([model.targets(g) for g in graphs])                  # every graph trains
    (out,) = fit_models(model, forward, data, Options(epochs=1000, lr=0.01),
                        checkpoints=["runs/x/checkpoint.pt"], configs=[config])
    write_result("runs/x/result.json", {"loss": out.history["loss"], ...})

K models: pass a stack (``AMPModelStack(models)``, ``GraphClassifierStack(models)``), a
``(K, items)`` mask in ``Data.train`` and K checkpoint paths. A stack needs one schedule for
all models (always-emit cells, constant delays, the same graphs and budget) and one
optimiser schedule (lr, StepLR); :func:`ampsim.train.synthetic.stack_groups` decides and says
why not. A mask over the nodes of one graph (node classification) belongs in ``loss`` or in
the readout, not in ``Data.train``, which is per item.

Table 2/3 names (``TrainConfig``, ``fit``, ...) still import from here: they live in
:mod:`ampsim.train.synthetic`, and the package (:mod:`ampsim.train`) binds them into this module's
namespace, so that this loop imports no task.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from .. import validate as V
from ..checkpoint import load_checkpoint as read_checkpoint
from ..engine.errors import CheckpointError
from ..fileio import save_torch, write_json
from . import ddp

__all__ = [
    "Data",
    "Options",
    "Outcome",
    "CheckpointError",
    "fit_models",
    "nll_terms",
    "stack_states",
    "unstack_state",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_epoch",
    "write_result",
    "training_process",
    "run_largest_first",
    "CKPT_FORMAT",
]

CKPT_FORMAT = "ampsim.train.checkpoint"
Forward = Callable[[nn.Module, Sequence[int], Sequence[int]], Tensor]
Evaluate = Callable[[nn.Module, int], Sequence[dict]]
EvaluateForward = Callable[[Tensor, Sequence[int]], Optional[Sequence[dict]]]


def training_process(threads: int = 1) -> None:
    """Set up this process to train: ``threads`` torch threads, and glibc keeping freed memory
    (:func:`ampsim.batched.retain_freed_memory`; a Skip-Cycles epoch 53 -> 41 ms, 4-cycles 30 -> 27 ms,
    a PROTEINS step about 40%). Every training entry point calls it once per process; the
    library never does on import."""
    from ..batched import retain_freed_memory

    V.positive_int("threads", threads)
    torch.set_num_threads(threads)
    retain_freed_memory()


def run_largest_first(fn: Callable[..., Any], units: Sequence[tuple[float, tuple]], workers: int,
                      threads: int = 1) -> list:
    """``fn(*args)`` for every ``(cost, args)`` of ``units``, over ``workers`` training processes
    (:func:`training_process` with ``threads`` each), largest cost first: each process takes the next
    unit when it is done (longest-processing-time list scheduling). Results in that order.

    ``fn`` must be module-level (it is pickled); the Table 2/3 and Table 4 runners' ``--workers``."""
    from ..sweeps import run_map, starred

    ordered = sorted(units, key=lambda u: -u[0])
    return run_map(starred(fn), [args for _, args in ordered], workers=workers, chunksize=1,
                   pool_options={"initializer": training_process, "initargs": (threads,)})


def check_run_numbers(epochs: int, lr: float, checkpoint_every: int) -> None:
    """The numbers every training configuration shares (:mod:`ampsim.validate`): ``epochs >= 0``,
    ``lr > 0``, ``checkpoint_every >= 1``; an :class:`~ampsim.engine.errors.ArgumentError` otherwise."""
    V.nonneg_int("epochs", epochs)
    V.positive_float("lr", lr)
    V.positive_int("checkpoint_every", checkpoint_every)


@dataclass(frozen=True)
class Data:
    """What the models learn: ``targets[i]`` the labels of item i (``([heads,] p_i)``), and ``train``
    (``(K, len(targets))`` bool, or ``None`` = every item for every model)."""

    targets: Sequence[Tensor]
    train: Optional[Tensor] = None

    def mask(self, models: int) -> Tensor:
        if self.train is None:
            return torch.ones(models, len(self.targets), dtype=torch.bool)
        m = torch.as_tensor(self.train, dtype=torch.bool)
        if m.dim() == 1:
            m = m.unsqueeze(0).expand(models, -1)
        if tuple(m.shape) != (models, len(self.targets)):
            raise ValueError(f"train mask must be ({models}, {len(self.targets)}), got {tuple(m.shape)}")
        return m


@dataclass(frozen=True)
class Options:
    """The schedule shared by the models of one call (see the module docstring)."""

    epochs: int
    lr: float = 0.01
    lr_steps: Optional[tuple[int, float]] = None
    eval_every: int = 0
    checkpoint_every: int = 50
    resume: bool = False
    stop_after: Optional[int] = None
    quiet: bool = True
    desc: str = ""

    def __post_init__(self) -> None:
        check_run_numbers(self.epochs, self.lr, self.checkpoint_every)
        V.nonneg_int("eval_every", self.eval_every)


@dataclass
class Outcome:
    """One model's training: ``history`` (``loss``, ``train_acc`` and the evaluated keys, per epoch)."""

    history: dict = field(default_factory=dict)
    epochs_done: int = 0
    finished: bool = False
    seconds: float = 0.0


def nll_terms(logp: Tensor, target: Tensor) -> Tensor:
    """``-logp[..., target]`` per prediction (the NLL of every prediction, not reduced)."""
    return -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)


# ----------------------------------------------------------------------------- stacking
def models_of(model: nn.Module) -> int:
    """K for a stack (``model.models``), 1 for a plain model."""
    return int(getattr(model, "models", 1))


def unstack_state(state: dict, k: int) -> dict:
    """Model k's ``state_dict`` from a stack's (every tensor sliced at ``[k]``)."""
    return {key: value[k].clone() for key, value in state.items()}


def stack_states(states: Sequence[dict]) -> dict:
    """The stack's ``state_dict`` from K single ones (the inverse of :func:`unstack_state`)."""
    return {key: torch.stack([s[key] for s in states]) for key in states[0]}


def _opt_slice(state: dict, k: Optional[int]) -> dict:
    """An Adam ``state_dict`` for model k of a stacked one (``k=None``: unchanged)."""
    if k is None:
        return state
    per = {i: {name: (v if name == "step" else v[k]).clone() for name, v in s.items()}
           for i, s in state["state"].items()}
    return {"state": per, "param_groups": state["param_groups"]}


def _opt_stack(states: Sequence[dict]) -> dict:
    first = states[0]
    per = {}
    for i, s in first["state"].items():
        steps = {float(st["state"][i]["step"]) for st in states}
        if len(steps) != 1:
            raise CheckpointError("the optimiser states of a stack must be at the same step")
        per[i] = {name: (v if name == "step" else torch.stack([st["state"][i][name] for st in states]))
                  for name, v in s.items()}
    return {"state": per, "param_groups": first["param_groups"]}


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str, *, config: Any, epoch: int, model: dict, optimizer: dict,
                    scheduler: Optional[dict], delay_rng: Optional[tuple], history: dict) -> None:
    """One model's checkpoint, atomically (``ampsim.fileio.save_torch``)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_torch({"format": CKPT_FORMAT, "version": 1, "config": config, "epoch": epoch, "model": model,
                "optimizer": optimizer, "scheduler": scheduler, "delay_rng": delay_rng, "history": history}, path)


def load_checkpoint(path: str) -> dict:
    """Read an ampsim training checkpoint; every failure (missing, empty, truncated, foreign, another
    kind) is one :class:`~ampsim.engine.errors.CheckpointError` that names the file
    (:func:`ampsim.checkpoint.load_checkpoint`, the one checkpoint reader)."""
    return read_checkpoint(path, format=CKPT_FORMAT, required=("epoch", "model", "optimizer", "history"))


def checkpoint_epoch(path: Optional[str]) -> int:
    """The epoch a checkpoint holds (0 when there is none): runners group models by it."""
    if path is None or not os.path.exists(path):
        return 0
    return int(load_checkpoint(path)["epoch"])


def _rng_state_tuple(state: Any) -> tuple:
    """``random.Random.setstate`` wants tuples; a loaded checkpoint may hold lists."""
    version, internal, gauss = state
    return (int(version), tuple(int(x) for x in internal), gauss)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_result(path: str, record: dict) -> None:
    """A result file (rank 0 only): JSON through :func:`ampsim.fileio.write_json`, non-finite floats as null."""
    if not ddp.is_main():
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(path, _json_safe(record))


# ----------------------------------------------------------------------------- the loop
class _Call(nn.Module):
    """``forward(items, seeds) = fn(model, items, seeds)``: the module DDP wraps (its hooks see the pass)."""

    def __init__(self, model: nn.Module, fn: Forward) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, items, seeds):  # noqa: D102
        return self.fn(self.model, items, seeds)


def _check_config(path: str, saved: Any, mine: Any) -> None:
    if mine is None or saved == mine:
        return
    if isinstance(saved, dict) and isinstance(mine, dict):
        diff = sorted(k for k in set(mine) | set(saved) if mine.get(k) != saved.get(k))
        raise CheckpointError(f"checkpoint {path} was written for another configuration (differs in {diff})")
    raise CheckpointError(f"checkpoint {path} was written for another configuration")


def fit_models(model: nn.Module, forward: Forward, data: Data, options: Options, *,
               loss: Callable[[Tensor, Tensor], Tensor] = nll_terms, evaluate: Optional[Evaluate] = None,
               evaluate_forward: Optional[EvaluateForward] = None,
               checkpoints: Optional[Sequence[str]] = None, configs: Optional[Sequence[Any]] = None,
               delay_rngs: Optional[Sequence[random.Random]] = None,
               on_epoch: Optional[Callable[[int, list], None]] = None) -> list[Outcome]:
    """Train ``model`` (one, or a stack of K) on ``data`` for ``options.epochs``; see the module docstring.

    ``configs[k]`` is stored in model k's checkpoint and must match on resume (keys
    ``epochs`` and ``checkpoint_every`` may differ). ``on_epoch(epoch, outcomes)`` after every step.
    """
    K = models_of(model)
    stacked = hasattr(model, "models")
    mask = data.mask(K)
    n_items = len(data.targets)
    counts = torch.tensor([int(t.shape[-1]) for t in data.targets], dtype=torch.long)
    per_model = (mask.to(torch.long) * counts).sum(1)  # P_k: predictions (per head) of model k's training set
    if bool((per_model == 0).any()):
        raise ValueError("every model needs at least one training prediction")
    if checkpoints is not None and len(checkpoints) != K:
        raise ValueError(f"{K} models but {len(checkpoints)} checkpoint paths")
    configs = list(configs) if configs is not None else [None] * K
    rngs = list(delay_rngs) if delay_rngs is not None else None
    if rngs is not None and len(rngs) != K:
        raise ValueError(f"{K} models but {len(rngs)} delay streams")
    writer = ddp.is_main()

    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    sched = (torch.optim.lr_scheduler.StepLR(opt, step_size=options.lr_steps[0], gamma=options.lr_steps[1])
             if options.lr_steps else None)
    outcomes = [Outcome(history={"loss": [], "train_acc": []}) for _ in range(K)]
    epoch = 0
    if checkpoints is not None:
        found = [p for p in checkpoints if os.path.exists(p)]
        if found and not options.resume:
            raise ValueError(f"{found[0]} exists: pass resume=True (--resume) to continue it, or use another "
                             "output folder")
        if found:
            if len(found) != K:
                raise CheckpointError(f"{len(found)} of {K} checkpoints exist ({found[0]}, ...): resume the "
                                      "models that have one separately")
            ckpts = [load_checkpoint(p) for p in checkpoints]
            for p, c, mine in zip(checkpoints, ckpts, configs):
                saved = dict(c["config"]) if isinstance(c["config"], dict) else c["config"]
                ours = dict(mine) if isinstance(mine, dict) else mine
                if isinstance(saved, dict) and isinstance(ours, dict):
                    for key in ("epochs", "checkpoint_every"):
                        saved.pop(key, None)
                        ours.pop(key, None)
                _check_config(p, saved, ours)
                if c["epoch"] > options.epochs:
                    raise CheckpointError(f"checkpoint {p} is at epoch {c['epoch']}, beyond epochs={options.epochs}")
            epochs = {int(c["epoch"]) for c in ckpts}
            if len(epochs) != 1:
                raise CheckpointError(f"the checkpoints of one stack are at different epochs {sorted(epochs)} "
                                      f"({checkpoints[0]}, ...): group the models by checkpoint_epoch")
            epoch = epochs.pop()
            try:
                if stacked:
                    model.load_state_dict(stack_states([c["model"] for c in ckpts]))
                    opt.load_state_dict(_opt_stack([c["optimizer"] for c in ckpts]))
                else:
                    model.load_state_dict(ckpts[0]["model"])
                    opt.load_state_dict(ckpts[0]["optimizer"])
                if sched is not None and ckpts[0].get("scheduler"):
                    sched.load_state_dict(ckpts[0]["scheduler"])
            except (RuntimeError, KeyError, ValueError) as exc:
                raise CheckpointError(f"checkpoint {checkpoints[0]} does not fit this model: "
                                      f"{str(exc).splitlines()[0]}") from None
            for k, c in enumerate(ckpts):
                outcomes[k].history = {key: list(v) for key, v in c["history"].items()}
                if rngs is not None and c.get("delay_rng") is not None:
                    rngs[k].setstate(_rng_state_tuple(c["delay_rng"]))
    net: nn.Module = _Call(model, forward)
    world = ddp.world_size()
    if world > 1:
        if n_items < world:
            raise ValueError(f"{n_items} training items cannot be shared by {world} processes")
        torch.distributed.barrier()  # every rank has read the checkpoints before rank 0 may replace them
        net = ddp.wrap(net)
    active = [i for i in range(n_items) if bool(mask[:, i].any())]
    mine = ddp.shard(active)
    device = next(model.parameters()).device
    target = torch.cat([data.targets[i] for i in mine], dim=-1).to(device)
    weight = (mask[:, mine].to(torch.get_default_dtype())
              .repeat_interleave(counts[mine], dim=1) * world / per_model.unsqueeze(1))  # (K, P_shard)
    preds_total = per_model.to(torch.float64) * (int(target[..., :1].numel()) if target.numel() else 1)

    from tqdm import tqdm

    show = not options.quiet and writer and sys.stderr.isatty()
    bar = tqdm(total=options.epochs, initial=epoch, disable=not show, desc=options.desc, leave=False)
    defer = evaluate_forward is not None and world == 1 and rngs is None  # one process, no per-epoch delay draws
    pending: Optional[int] = None  # an epoch whose evaluation waits for the next training forward

    def end_epoch(ep: int, metrics: Optional[Sequence[dict]], due: bool) -> None:
        """Epoch ``ep`` is done: its evaluation (``metrics``, else a pass of its own) when due, the bar, ``on_epoch``."""
        if due:
            if metrics is None:
                was = model.training
                model.eval()
                with torch.no_grad():
                    metrics = evaluate(model, ep)
                model.train(was)
            for k, m in enumerate(metrics):
                for key, value in m.items():
                    outcomes[k].history.setdefault(key, []).append(value)
        bar.update(1)
        bar.set_postfix(loss=f"{float(values.mean()):.4f}")
        if on_epoch is not None:
            on_epoch(ep, outcomes)

    t0 = time.perf_counter()
    done_now = 0
    try:
        while epoch < options.epochs:
            if options.stop_after is not None and done_now >= options.stop_after:
                break
            seeds = [r.getrandbits(63) for r in rngs] if rngs is not None else [0] * K
            model.train()
            logp = net(mine, seeds)
            if not stacked:
                logp = logp.unsqueeze(0)
            if pending is not None:  # this forward ran epoch `pending`'s weights
                with torch.no_grad():
                    metrics = evaluate_forward(logp.detach(), mine)
                end_epoch(pending, metrics, True)
                pending = None
            terms = loss(logp, target.expand(logp.shape[:-1]) if target.dim() < logp.dim() - 1 else target)
            w = weight.to(device=terms.device, dtype=terms.dtype)
            w = w.reshape(K, *([1] * (terms.dim() - 2)), -1)
            losses = (terms * w).flatten(1).sum(1)  # (K,) per-model (shard-scaled) losses
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            if sched is not None:
                sched.step()
            epoch += 1
            done_now += 1
            with torch.no_grad():
                hits = ((logp.detach().argmax(-1) == target).to(torch.float64)
                        * (w != 0).to(torch.float64)).flatten(1).sum(1).cpu()
                values = losses.detach().to(torch.float64).cpu()
                if world > 1:
                    both = torch.stack([values, hits])
                    torch.distributed.all_reduce(both)
                    values, hits = both[0] / world, both[1]
            accs = (hits / preds_total).tolist()
            for k in range(K):
                outcomes[k].history["loss"].append(float(values[k]))
                outcomes[k].history["train_acc"].append(float(accs[k]))
            due = evaluate is not None and writer and bool(options.eval_every) and (
                epoch % options.eval_every == 0 or epoch == options.epochs)
            save = checkpoints is not None and writer and (epoch % options.checkpoint_every == 0 or
                                                           epoch == options.epochs)
            if due and defer and not save and epoch < options.epochs and (
                    options.stop_after is None or done_now < options.stop_after):
                pending = epoch  # the next forward (there is one: not the last epoch, not stopping) runs these weights
                continue
            end_epoch(epoch, None, due)
            if save:
                _save_all(checkpoints, configs, epoch, model, opt, sched, rngs, outcomes, stacked)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    for o in outcomes:
        o.epochs_done, o.finished, o.seconds = epoch, epoch >= options.epochs, seconds
    model.eval()
    return outcomes


def _save_all(paths: Sequence[str], configs: Sequence[Any], epoch: int, model: nn.Module,
              opt: torch.optim.Optimizer, sched, rngs, outcomes: Sequence[Outcome], stacked: bool) -> None:
    state = model.state_dict()
    opt_state = opt.state_dict()
    for k, path in enumerate(paths):
        save_checkpoint(path, config=configs[k], epoch=epoch,
                        model=unstack_state(state, k) if stacked else state,
                        optimizer=_opt_slice(opt_state, k if stacked else None),
                        scheduler=sched.state_dict() if sched is not None else None,
                        delay_rng=rngs[k].getstate() if rngs is not None else None,
                        history=outcomes[k].history)
