"""``ampsim figure4 | delays | reaction``: the paper's Sections 3 and 4.3 by execution and measurement.

* ``figure4``: for each pair of Figure 4, how many random cells separate the start node's views
  (:func:`ampsim.train.figure4.report`);
* ``delays run | gradients | summarize``: "constant delays are easier to train", the same runs
  with both delay models (:mod:`ampsim.theory.delays_training`);
* ``reaction``: Figure 3's relays and AMP-Iter's halting drops (:mod:`ampsim.theory.reaction_demo`).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Sequence

from .args import names, nonneg, positive

__all__ = ["configure"]


def _figure4(args: argparse.Namespace) -> int:
    from ..train.figure4 import report

    for line in report(range(args.seeds)):
        print(line)
    return 0


def _delays(args: argparse.Namespace) -> int:
    from ..theory import delays_training as D

    if args.action == "summarize":
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        doc = D.summarize(args.out, args.root)
        for t, r in doc["tasks"].items():
            print(f"{t:<11} seeds {len(r['seeds'])}: {r['verdict']}: {r['why']}")
    elif args.action == "run":
        if bool(args.extra_tasks) != (args.extra_seeds > D.FULL_SEEDS):
            raise ValueError(f"--extra-tasks and --extra-seeds go together: seeds {D.FULL_SEEDS} .. EXTRA_SEEDS-1 of the "
                             f"named tasks (got --extra-tasks {','.join(args.extra_tasks) or 'none'}, "
                             f"--extra-seeds {args.extra_seeds}; EXTRA_SEEDS must be above {D.FULL_SEEDS})")
        D.run_plan(D.plan(args.full_seeds, args.short_seeds, D.FULL_EPOCHS, args.short_epochs,
                          args.extra_tasks, args.extra_seeds), root=args.root)
    else:
        D.gradient_files(args.tasks, args.draws, args.root)
    return 0


def _reaction(args: argparse.Namespace) -> int:
    from ..theory.reaction_demo import write_reaction_demo

    print(json.dumps(write_reaction_demo(args.graphs, args.parity_run, args.out, args.figures), indent=1))
    return 0


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    if name == "figure4":
        parser.add_argument("--seeds", type=positive, default=3, help="random cells per kind (default 3)")
        parser.set_defaults(func=_figure4)
    elif name == "delays":
        from ..theory.delays_training import (FULL_SEEDS, PUBLISHED, RUNS, SHORT_EPOCHS, SHORT_SEEDS, TASKS)

        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        r = sub.add_parser("run", help="train the plan's runs (resumable)")
        r.add_argument("--full-seeds", type=nonneg, default=FULL_SEEDS)
        r.add_argument("--short-seeds", type=nonneg, default=SHORT_SEEDS)
        r.add_argument("--short-epochs", type=nonneg, default=SHORT_EPOCHS)
        r.add_argument("--extra-tasks", type=names("tasks", TASKS), default=[],
                       help="tasks that get seeds 10 .. EXTRA_SEEDS-1 with both delay models (where the paired "
                            "test is not clear at 10 seeds)")
        r.add_argument("--extra-seeds", type=nonneg, default=0,
                       help="seeds of the extra tasks: 10 .. EXTRA_SEEDS-1 (default 0: none)")
        g = sub.add_parser("gradients", help="gradient variance across delay draws at fixed parameters")
        g.add_argument("--draws", type=positive, default=8)
        g.add_argument("--tasks", type=names("tasks", TASKS), default=list(TASKS))
        m = sub.add_parser("summarize", help="write OUT.{json,md} and OUT_curves.png")
        m.add_argument("--out", default=os.path.join("runs", "delays_training"),
                       help="default runs/delays_training (published: results/delays_training)")
        for q in (r, g, m):
            q.add_argument("--root", default=RUNS, help=f"run folders (default {RUNS}); summarize also reads their "
                                                        f"pack (published: {PUBLISHED})")
            q.set_defaults(func=_delays)
    else:
        from ..theory.reaction_demo import PARITY_RUN

        parser.add_argument("--graphs", type=positive, default=16, help="test graphs per question (default 16)")
        parser.add_argument("--parity-run", default=PARITY_RUN,
                            help="a parity run folder, or one inside a pack (default: the Table 3 AMP-Iter run of seed 0)")
        parser.add_argument("--out", default=os.path.join("runs", "reaction"),
                            help="folder of figure3.json and parity_iter.json (default runs/reaction, ignored by git; "
                                 "the published ones: --out results/reaction)")
        parser.add_argument("--figures", default=None,
                            help="folder of the pictures (default: --out; the published ones: --figures docs/reaction)")
        parser.set_defaults(func=_reaction)
