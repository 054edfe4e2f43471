"""``ampsim table4 run | render``: Table 4, AMP-RNN graph classification on the TU data sets (Section 5.3).

``run`` trains every (data set, grid point, fold) without a finished result file
(:func:`ampsim.train.graph_classification.run_grid`; stopped folds resume from their
checkpoints), then writes the table; ``render`` only writes the table from the fold files
(:mod:`ampsim.train.table4_report`). ``--workers N`` shares the grid points among N
processes, ``--nproc N`` trains data-parallel (DDP).

    ampsim table4 run --datasets MUTAG --folds 0-9 --workers 2
    ampsim table4 render --out results/table4_runs --json results/table4.json --md results/table4.md
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Sequence

from .. import runpack
from ..data.tu import DATASETS
from ..train import ddp
from ..train.graph_classification import (DEFAULT_RUNS, EPOCHS, FOLDS, USER_RUNS, GridPoint, grid, log_main, grid_process,
                                          run_grid, run_grid_parallel)
from ..train.loop import training_process
from ..train.table4_report import summarize, write_tables
from .args import MAX_PROCESSES, add_threads, add_workers, announce_runs, output_folder, index_list, nonneg, positive, processes

__all__ = ["configure", "MAX_HIDDEN", "MAX_MESSAGES"]

SECONDS_PER_EPOCH = (0.02, 5.0)
"""One core's seconds per epoch of one fold: MUTAG (188 graphs) to the larger TU sets."""
MAX_HIDDEN = 1024
MAX_MESSAGES = 1000
"""``--points`` tags name at most this hidden size and message budget (the grid: 16-64 and 15-25)."""


def _dataset(text: str) -> str:
    name = text.strip().upper()
    if name not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; choose from {', '.join(DATASETS)}")
    return name


def _point(text: str) -> GridPoint:
    try:
        point = GridPoint.from_tag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if point.hidden > MAX_HIDDEN or point.messages > MAX_MESSAGES:
        raise argparse.ArgumentTypeError(f"{text!r}: at most hidden {MAX_HIDDEN} and {MAX_MESSAGES} messages "
                                         "(the paper's grid: h16-h64, m15-m25)")
    return point


def _device(text: str) -> str:
    if re.fullmatch(r"cpu|cuda(:\d+)?", text.strip()) is None:
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text.strip()


def _fold_text(folds: Sequence[int]) -> str:
    folds = sorted(folds)
    return f"{folds[0]}-{folds[-1]}" if folds == list(range(folds[0], folds[-1] + 1)) else ",".join(map(str, folds))


def _run(args: argparse.Namespace) -> int:
    if args.summarize:
        return _render(args)
    if runpack.is_pack(args.out):
        raise ValueError(f"--out {args.out}: a pack is read, not trained into; train into a folder "
                         "(e.g. runs/table4_runs) and pack it with ampsim runs pack")
    job = dict(points=args.points, root=args.out, epochs=args.epochs, seed=args.seed, max_graphs=args.max_graphs,
               device=args.device, stack=args.stack)
    if args.nproc > 1 and args.workers > 1:
        raise ValueError("--nproc (data-parallel) and --workers (grid points in parallel) do not combine")
    if ddp.is_main():
        output_folder(args.out, create=False)
    if ddp.is_main() and os.environ.get("LOCAL_RANK") is None:
        points = sum(len(args.points) if args.points else len(grid(d)) for d in args.datasets)
        announce_runs(points * len(args.folds),
                      f"{len(args.datasets)} data sets, {points} grid points in all x {len(args.folds)} folds, at most: "
                      f"finished folds under {args.out} are skipped", max(args.workers, args.nproc), args.epochs,
                      SECONDS_PER_EPOCH)
    if ddp.is_main():
        output_folder(args.out)
    written = None
    if args.nproc > 1:
        ddp.launch(args.nproc, grid_process, args.threads, list(args.datasets), list(args.folds), job)
    else:
        training_process(args.threads)
        if args.workers > 1:
            written = run_grid_parallel(args.datasets, args.folds, args.workers, threads=args.threads,
                                        log=log_main, **job)
        else:
            ddp.init_from_env()  # started by torchrun: join its process group
            written = run_grid(args.datasets, args.folds, log=log_main, **job)
    if written == [] and ddp.is_main():
        print(f"every result of {', '.join(args.datasets)} (folds {_fold_text(args.folds)}) already exists "
              f"under {args.out}; nothing to train", flush=True)
    if args.max_graphs is None and ddp.is_main():
        _render(args)
    return 0


def _render(args: argparse.Namespace) -> int:
    summary = summarize(args.out, epochs=args.epochs)
    if not any(e["folds"] for row in summary.values() for e in row["grid"].values()):
        raise ValueError(f"--out {args.out}: no fold results of {args.epochs} epochs (the folder of ampsim table4 run, "
                         "or its pack); nothing to tabulate")
    write_tables(summary, args.json, args.md, args.out, args.note)
    print(f"wrote {args.json} and {args.md}")
    return 0


def _table_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=USER_RUNS,
                   help=f"folder of the per-fold result files (default {USER_RUNS}); for the table also "
                        f"their pack (published: {DEFAULT_RUNS})")
    p.add_argument("--epochs", type=positive, default=EPOCHS,
                   help=f"epochs per fold (default {EPOCHS}, the protocol; at least 1: a fold's accuracy is its "
                        "last epoch's)")
    p.add_argument("--note", default="", help="a paragraph for the table's head (how the runs ran, wall time)")
    p.add_argument("--json", default=os.path.join("runs", "table4.json"), help="default runs/table4.json "
                   "(published: results/table4.json)")
    p.add_argument("--md", default=os.path.join("runs", "table4.md"), help="default runs/table4.md "
                   "(published: results/table4.md)")


def configure_run(p: argparse.ArgumentParser) -> None:
    """The flags of ``ampsim table4 run`` (and of its alias ``python -m ampsim.train.graph_classification``)."""
    p.add_argument("--datasets", nargs="+", type=_dataset, default=list(DATASETS), help=f"any of {', '.join(DATASETS)}")
    p.add_argument("--folds", type=index_list("folds", hi=FOLDS - 1), default=list(range(FOLDS)),
                   help="e.g. 0-9 or 0,3")
    p.add_argument("--points", nargs="+", type=_point, default=None,
                   help="grid point tags (h32_m25_skip ...); default: the grid")
    p.add_argument("--seed", type=nonneg, default=0)
    _table_flags(p)
    add_threads(p)
    p.add_argument("--nproc", type=processes, default=1,
                   help=f"data-parallel processes (DDP; gloo on CPU; at most {MAX_PROCESSES})")
    add_workers(p, "grid points")
    p.add_argument("--max-graphs", type=positive, default=None, help="smoke runs only: first graphs of the set")
    p.add_argument("--device", type=_device, default="cpu", help="cpu or cuda (with --nproc: one GPU per process)")
    p.add_argument("--stack", dest="stack", action="store_true", default=True,
                   help="train the folds of a grid point in one pass (the default)")
    p.add_argument("--no-stack", dest="stack", action="store_false",
                   help="train the folds one after another (the same numbers up to float summation order; slower)")
    p.add_argument("--summarize", action="store_true", help="only write the table (as ampsim table4 render)")
    p.set_defaults(func=_run)


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    configure_run(sub.add_parser("run", help="train the missing folds, then write the table"))
    p = sub.add_parser("render", help="write the table (--json, --md) from the fold files under --out")
    _table_flags(p)
    p.set_defaults(func=_render)
