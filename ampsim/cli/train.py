"""``ampsim train``: train one learned AMP model on one task and write its result JSON.

Example::

    ampsim train --task limits1 --model amp-rnn --delay constant --seed 0
    ampsim train --task parity --model amp-iter --delay uniform --seed 3 --out runs/x --resume
    ampsim train --task 4cycles --nproc 2              # data-parallel: DDP over 2 processes (gloo on CPU)
    torchrun --nproc-per-node 2 -m ampsim train --task 4cycles   # the same, started by torchrun

Without ``--out`` the run folder is ``runs/<task>/<model>[+gate][@uniform]/seed<k>`` (``runs/`` is
ignored by git; the published runs in ``results/runs`` are written only with an explicit
``--out results/runs/...``; the layout is the one :mod:`ampsim.train.tables` reads). A folder holding a checkpoint is
continued with ``--resume`` and refused without it.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from ..train import ddp
from ..train.loop import training_process
from ..train.synthetic import (CHECKPOINT, PARITY_TASKS, USER_RUNS, TrainConfig, check_run_folder, finished_result,
                               fit_seeds, get_executor, run_folder)
from .args import (MAX_PROCESSES, announce_runs, index_list, learning_rate, nonneg, output_folder, positive, processes,
                   whole, width)

__all__ = ["configure", "TASK_NAMES"]


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes, got {text!r}") from None
    if not sizes or min(sizes) < 2 or max(sizes) > MAX_TEST_NODES:
        raise argparse.ArgumentTypeError(f"expected comma-separated test sizes in 2..{MAX_TEST_NODES:,} nodes, "
                                         f"got {text!r}")
    return sizes


MAX_TEST_NODES = 5000
"""``--test-sizes``: parity test graphs of at most this many nodes (the paper's: 10, 25, 50)."""
MAX_TRAIN_GRAPHS = 100_000
"""``--train-graphs`` at most this (the paper's: 100)."""
MAX_SOURCES = 64
"""``--sources`` at most this (the paper's: 3); the message size grows with it."""
MAX_BUDGET_FACTOR = 1000
"""``--budget-factor`` at most this (the paper's: 5 and 10 deliveries per node)."""


MAX_SEEDS = 1000
"""``--seeds`` names at most this many seeds (each one a run folder and a model in memory)."""

TASK_NAMES = ("limits1", "limits2", "triangles", "lcc", "max", "mean", "4cycles", "skipcycles") + tuple(PARITY_TASKS)
"""The ``--task`` names, each once (matching ignores case, ``-``, ``_`` and spaces; paper names work too)."""


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    """Add the ``train`` flags (one flag per :class:`TrainConfig` field, plus run options)."""
    parser.set_defaults(func=main)
    parser.add_argument("--task", required=True, help=", ".join(TASK_NAMES))
    parser.add_argument("--model", default="amp-rnn", help="amp-rnn, amp-gru, amp-lstm, amp-act, amp-iter")
    parser.add_argument("--delay", default="constant", choices=["constant", "uniform"])
    parser.add_argument("--seed", type=nonneg, default=0)
    parser.add_argument("--seeds", type=index_list("seeds", limit=MAX_SEEDS), default=None,
                        help="several seeds in one process, e.g. 0-9 (one folder each: <out>/seed<k>); seeds that "
                             "share graphs and schedule train in one pass")
    parser.add_argument("--no-stack", dest="stack", action="store_false",
                        help="with --seeds: train them one after another")
    parser.add_argument("--epochs", type=nonneg, default=1000, help="full-batch Adam steps (paper: 1000; 0: evaluate the initial model)")
    parser.add_argument("--lr", type=learning_rate, default=0.01)
    parser.add_argument("--gate", action="store_true", help="learned emission gate (straight-through)")
    parser.add_argument("--hidden", type=width, default=None, help="default: the task's (16/32, or 30)")
    parser.add_argument("--msg-size", type=width, default=None, help="default: 3 (3 * sources for parity-multi)")
    parser.add_argument("--budget-factor", type=whole(1, MAX_BUDGET_FACTOR), default=None, help="budget = factor * n (default 5, parity 10)")
    parser.add_argument("--train-graphs", type=whole(1, MAX_TRAIN_GRAPHS), default=None, help="parity tasks: training graphs (default 100)")
    parser.add_argument("--test-sizes", type=_sizes, default=None, help="parity tasks: e.g. 10,25,50")
    parser.add_argument("--sources", type=whole(1, MAX_SOURCES), default=3, help="parity-multi: number of origins")
    parser.add_argument("--checkpoint-every", type=positive, default=50)
    parser.add_argument("--executor", choices=["engine", "batched"], default=None,
                        help="default: batched if ampsim.batched imports, else engine")
    parser.add_argument("--out", default=None, help="run folder (default runs/<task>/<model>/seed<k>)")
    parser.add_argument("--resume", action="store_true", help="continue from the folder's checkpoint")
    parser.add_argument("--threads", type=positive, default=1, help="torch intra-op threads per process (default 1)")
    parser.add_argument("--nproc", type=processes, default=1,
                        help=f"data-parallel processes (torch.distributed DDP; gloo on CPU); default 1, at most {MAX_PROCESSES}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _train(configs: list, executor: Optional[str], outs: list, resume: bool, quiet: bool, threads: int,
           stack: bool = True) -> list:
    """One process of ``--nproc N`` (and the whole run for N = 1): the result dicts of :func:`fit_seeds`."""
    training_process(threads)
    name, executor_obj = get_executor(executor)
    return fit_seeds([TrainConfig.from_dict(c) for c in configs], executor_obj, outs, resume=resume, quiet=quiet,
                     executor_name=name, stack=stack)


def _check_task(name: str) -> None:
    """Refuse an unknown ``--task`` up front, listing every valid name once (parity tasks included)."""
    from ..data.tasks import TABLE2, TABLE2_ALIASES

    def norm(text: str) -> str:
        return "".join(ch for ch in text.strip().lower() if ch not in "-_ ")

    known = {norm(k) for k in list(TABLE2) + list(TABLE2_ALIASES)}
    if norm(name) not in known and name.strip().lower() not in PARITY_TASKS:
        raise ValueError(f"--task {name!r}: unknown task; valid names: {', '.join(TASK_NAMES)}")


def _check_shares(config: TrainConfig, nproc: int) -> None:
    """Refuse ``--nproc N`` on a task with fewer than N training graphs before any process starts
    (data-parallel training gives every process at least one graph)."""
    from ..train.synthetic import load_task

    n = len(load_task(config.task, config.seed, train_graphs=config.train_graphs, test_sizes=config.test_sizes,
                      sources=config.sources).train)
    if n < nproc:
        raise ValueError(f"--nproc {nproc}: task {config.task!r} trains on {n} graph{'' if n == 1 else 's'}; "
                         f"{n} training items cannot be shared by {nproc} processes (use --nproc {n} or fewer)")


def main(args: argparse.Namespace) -> int:
    _check_task(args.task)
    seeds = args.seeds if args.seeds is not None else [args.seed]
    configs = [TrainConfig(
        task=args.task, model=args.model, delay=args.delay, seed=seed, epochs=args.epochs, lr=args.lr,
        gate=args.gate, hidden=args.hidden, msg_size=args.msg_size, budget_factor=args.budget_factor,
        train_graphs=args.train_graphs, test_sizes=args.test_sizes, sources=args.sources,
        checkpoint_every=args.checkpoint_every,
    ) for seed in seeds]
    if args.out and args.seeds is not None:
        outs = [os.path.join(args.out, f"seed{seed}") for seed in seeds]
    elif args.out:
        outs = [args.out]
    else:
        outs = [run_folder(USER_RUNS, args.task, args.model, seed, args.gate, args.delay) for seed in seeds]
    finished = [bool(args.resume) and finished_result(out, c) is not None for c, out in zip(configs, outs)]
    if args.nproc > 1:
        _check_shares(configs[0], args.nproc)
    if ddp.is_main() and os.environ.get("LOCAL_RANK") is None:
        from .args import SECONDS_PER_EPOCH

        for config, out, was_done in zip(configs, outs, finished):  # the folders, before the plan line
            if not was_done:
                output_folder(out, create=False)
                check_run_folder(out, config, args.resume)
                if not args.resume and os.path.exists(os.path.join(out, CHECKPOINT)):
                    raise ValueError(f"{os.path.join(out, CHECKPOINT)} exists: add --resume to continue it, or give "
                                     "another --out")
        announce_runs(len(configs) - sum(finished), f"{len(configs)} seed{'s' if len(configs) > 1 else ''}, "
                      f"{sum(finished)} already finished", args.nproc, args.epochs, SECONDS_PER_EPOCH)
    job = ([c.to_dict() for c in configs], args.executor, outs, args.resume, args.quiet, args.threads, args.stack)
    if args.nproc > 1:
        results = ddp.launch(args.nproc, _train, *job)[0]
    else:
        if ddp.init_from_env() and not ddp.is_main():  # started by torchrun: join its group; rank 0 reports
            _train(*job)
            return 0
        results = _train(*job)
    for config, out, result, was_done in zip(configs, outs, results, finished):
        loss = result["loss"][-1] if result["loss"] else float("nan")
        procs = result.get("processes", 1)
        together = result.get("stacked_with", 1)
        print(f"{result['task']} {result['model']} seed {config.seed} ({config.delay} delays, {result['executor']} "
              f"executor{f', {procs} processes' if procs > 1 else ''}"
              f"{f', {together} seeds in one pass' if together > 1 else ''}): {result['epochs_done']} epochs, "
              f"final loss {loss:.4f}, train acc "
              f"{result['train_acc'][-1] if result['train_acc'] else float('nan'):.3f}")
        for split, metrics in result.get("test", {}).items():
            print(f"  test {split}: accuracy {metrics['acc']:.4f} ({metrics['correct']}/{metrics['total']})")
        print(f"{'already finished, nothing to do; result in' if was_done else 'result written to'} "
              f"{os.path.join(out, 'result.json')}")
    return 0
