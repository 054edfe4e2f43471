"""``ampsim table2 | table3 | figure6 | gate``: the learned-AMP tables from per-seed run folders.

``run`` trains every missing (task, model, seed) of the table's protocol
(:func:`ampsim.train.tables.run_protocol`: finished folders are skipped, stopped ones
resume); ``render`` writes every table and figure from whatever has finished
(:func:`ampsim.train.table_reports.write_all`), from run folders or the published packs;
``pack`` packs finished run folders, one file per table; ``table2 cost`` measures seconds per epoch;
``table2 compare`` sets a rerun beside the published runs.

    ampsim table2 run --seeds 0-9 --workers 2
    ampsim table3 run --seeds 0-9
    ampsim table2 render --root results/runs --out results
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ..train.loop import training_process, write_result
from ..train.tables import (GATE_TASKS, ROOT, TABLE2_TASKS, TABLE3_MODELS, USER_ROOT, compare_table2, measure_cost,
                            pack_runs, protocol_runs, run_protocol)
from .args import (SECONDS_PER_EPOCH, add_threads, add_workers, announce_runs, index_list, input_folder, names, nonneg,
                   output_folder, positive)

__all__ = ["configure", "PROTOCOLS"]

MAX_SEEDS = 1000
"""``--seeds`` names at most this many seeds (one run folder each)."""

#: command -> (tasks, models, gated): what ``run`` trains by default
PROTOCOLS = {
    "table2": (tuple(TABLE2_TASKS.values()), ("amp-rnn",), False),
    "table3": (("parity",), tuple(TABLE3_MODELS.values()), False),
    "figure6": (("parity-multi",), tuple(TABLE3_MODELS.values()), False),
    # only the gated runs: their always-emit twins are the Table 2 / 3 folders (same protocol);
    # running both here could race a table2 / table3 process on the same folder
    "gate": (GATE_TASKS, ("amp-rnn",), True),
}
MODELS = ("amp-rnn", "amp-gru", "amp-lstm", "amp-act", "amp-iter")


def _run(args: argparse.Namespace) -> int:
    from .train import _check_task

    tasks, models, gate = PROTOCOLS[args.command]
    tasks = args.tasks or list(tasks)
    models = args.models or list(models)
    for task in tasks:
        _check_task(task)  # an unknown name is refused before the plan line and before any folder is made
    output_folder(args.root, create=False)
    training_process(args.threads)
    trained: list[str] = []
    log = lambda line: (trained.append(line), print(line, flush=True))  # noqa: E731
    finished, _ = protocol_runs(tasks, models, args.seeds, args.root, gate=gate, epochs=args.epochs)
    total = len(tasks) * len(models) * len(args.seeds)
    announce_runs(total - len(finished), f"{len(tasks)} tasks x {len(models)} models x {len(args.seeds)} seeds, "
                  f"{len(finished):,} of the {total:,} already finished under {args.root}", args.workers,
                  args.epochs, SECONDS_PER_EPOCH)
    output_folder(args.root)
    done = run_protocol(tasks, models, args.seeds, args.root, args.executor, gate=gate, epochs=args.epochs,
                        quiet=args.quiet, log=log, stack=args.stack, workers=args.workers, threads=args.threads)
    if not trained:
        print(f"{args.command} run: all {len(done)} runs already finished under {args.root}; nothing to do")
    return 0


def _render(args: argparse.Namespace) -> int:
    from ..train.table_reports import write_all

    for path in write_all(args.root, args.out):
        print(f"wrote {path}")
    return 0


def _pack(args: argparse.Namespace) -> int:
    input_folder("--root", args.root)
    written = pack_runs(args.root, args.out)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{args.command} pack: no finished runs under {args.root}; nothing written")
    return 0


def _cost(args: argparse.Namespace) -> int:
    from ..fileio import write_json

    training_process(args.threads)
    tasks = args.tasks or list(TABLE2_TASKS.values()) + ["parity"]
    cost = measure_cost(tasks, args.executor, args.epochs, log=lambda line: print(line, flush=True))
    if args.out:
        write_json(args.out, cost, sort_keys=False)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ..fileio import write_text
    from ..train.table_reports import render_comparison

    comparison = compare_table2(args.root)
    write_text(args.md, render_comparison(comparison, args.root, args.note))
    if args.json:
        write_result(args.json, comparison)
    print(f"wrote {args.md}")
    return 0


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    """``run`` and ``render`` for every table; ``cost`` and ``compare`` for ``table2``."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("run", help="train the missing runs of the protocol (finished ones are skipped)")
    p.add_argument("--seeds", type=index_list("seeds", limit=MAX_SEEDS), default=list(range(10)),
                   help="e.g. 0-9 or 0,3,5 (default 0-9)")
    p.add_argument("--tasks", type=names("tasks"), default=None,
                   help=f"comma-separated task names (default {','.join(PROTOCOLS[name][0])})")
    p.add_argument("--models", type=names("models", MODELS), default=None,
                   help=f"comma-separated models (default {','.join(PROTOCOLS[name][1])})")
    p.add_argument("--executor", choices=["engine", "batched"], default=None)
    p.add_argument("--root", default=USER_ROOT, help=f"run folders (default {USER_ROOT})")
    add_threads(p)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--epochs", type=nonneg, default=1000, help="1000 is the protocol; render counts only those")
    p.add_argument("--no-stack", dest="stack", action="store_false",
                   help="train the seeds one after another (default: seeds sharing graphs in one pass)")
    add_workers(p, "runs")
    p.set_defaults(func=_run)
    p = sub.add_parser("render", help="write Tables 2, 3, Figures 5, 6 and the gate comparison from finished runs")
    p.add_argument("--root", default=USER_ROOT,
                   help=f"run folders, or packs separated by commas (default {USER_ROOT}; published: {ROOT})")
    p.add_argument("--out", default=USER_ROOT, help=f"tables and figures (default {USER_ROOT}; published: results)")
    p.set_defaults(func=_render)
    p = sub.add_parser("pack", help="pack finished run folders into one .jsonl.gz per table (ampsim.runpack)")
    p.add_argument("--root", default=USER_ROOT, help=f"run folders (default {USER_ROOT})")
    p.add_argument("--out", required=True, help="folder of the packs (published: results)")
    p.set_defaults(func=_pack)
    if name != "table2":
        return
    p = sub.add_parser("cost", help="seconds per epoch of each task's protocol model")
    p.add_argument("--executor", choices=["engine", "batched"], default="engine")
    p.add_argument("--tasks", type=names("tasks"), default=None)
    p.add_argument("--epochs", type=positive, default=3)
    add_threads(p)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.set_defaults(func=_cost)
    p = sub.add_parser("compare", help="Table 2 of a rerun next to the published runs (accuracy, wall time)")
    p.add_argument("--root", required=True, help="the rerun's run folders")
    p.add_argument("--md", required=True, help="write the comparison (Markdown) here")
    p.add_argument("--json", default=None, help="and as JSON here")
    p.add_argument("--note", default="", help="a paragraph on how the rerun ran (command, machine, wall time)")
    p.set_defaults(func=_compare)
