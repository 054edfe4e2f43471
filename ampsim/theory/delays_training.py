"""Section 4.3, "constant delays are easier to train", measured: the same tasks, seeds and epochs
trained with constant and with uniform delays.

Plan (one run = ``ampsim.train.fit`` of AMP-RNN on one task/delay/seed, run folder
``results/delays_training_runs/<task>/<delay>/e<epochs>/seed<k>``, resumable):

* ``FULL`` tasks (cheap: Limits1, Limits2, LCC, Parity): 10 seeds x 1000 epochs with uniform delays;
  the constant-delay side is the existing Table 2/3 runs ``results/runs/<task>/amp-rnn/seed<k>``
  (identical configuration: AMP-RNN, lr 0.01, 1000 epochs, same seeds).
* ``SHORT`` tasks (Triangles, MAX, MEAN, 4-cycles, Skip-Cycles; 4-12 min per 1000 epochs on one
  core): 2 seeds x 100 epochs, both delay models run here (so test accuracy is at the same epoch).

``python -m ampsim.theory.delays_training run`` executes the plan round by round (seed r of every task
before seed r+1), skipping finished runs, so any interruption leaves a balanced, paired set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

FULL_TASKS = ("limits1", "limits2", "lcc", "parity")
SHORT_TASKS = ("triangles", "max", "mean", "4cycles", "skipcycles")
TASKS = ("limits1", "limits2", "triangles", "lcc", "max", "mean", "4cycles", "skipcycles", "parity")
FULL_SEEDS, FULL_EPOCHS = 10, 1000
SHORT_SEEDS, SHORT_EPOCHS = 2, 100
RUNS = os.path.join("results", "delays_training_runs")
TABLE_RUNS = os.path.join("results", "runs")


def run_dir(task: str, delay: str, epochs: int, seed: int, root: str = RUNS) -> str:
    """Run folder of one (task, delay, epochs, seed); the existing Table 2/3 runs for constant/1000."""
    if delay == "constant" and epochs == 1000:
        return os.path.join(TABLE_RUNS, task, "amp-rnn", f"seed{seed}")
    return os.path.join(root, task, delay, f"e{epochs}", f"seed{seed}")


def plan(full_seeds: int = FULL_SEEDS, short_seeds: int = SHORT_SEEDS, full_epochs: int = FULL_EPOCHS,
         short_epochs: int = SHORT_EPOCHS) -> list[tuple[str, str, int, int]]:
    """(task, delay, epochs, seed) in execution order: round r = seed r of every task."""
    out = []
    for r in range(max(full_seeds, short_seeds)):
        if r < full_seeds:
            for task in FULL_TASKS:
                out.append((task, "uniform", full_epochs, r))
        if r < short_seeds:
            for task in SHORT_TASKS:
                for delay in ("constant", "uniform"):
                    out.append((task, delay, short_epochs, r))
    return out


def finished(folder: str) -> bool:
    path = os.path.join(folder, "result.json")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        return bool(json.load(f).get("finished"))


def run_plan(items, log=sys.stderr) -> None:
    """Run every unfinished item of ``items`` (resuming from its checkpoint)."""
    import torch

    from ..train import TrainConfig, fit

    torch.set_num_threads(1)
    for task, delay, epochs, seed in items:
        folder = run_dir(task, delay, epochs, seed)
        if finished(folder):
            continue
        t0 = time.time()
        fit(TrainConfig(task=task, model="amp-rnn", delay=delay, seed=seed, epochs=epochs),
            out_dir=folder, resume=True)
        print(f"{time.strftime('%H:%M:%S')} {task} {delay} e{epochs} seed{seed} {time.time() - t0:.0f}s",
              file=log, flush=True)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ampsim.theory.delays_training")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the plan's runs (resumable)")
    r.add_argument("--full-seeds", type=int, default=FULL_SEEDS)
    r.add_argument("--short-seeds", type=int, default=SHORT_SEEDS)
    r.add_argument("--short-epochs", type=int, default=SHORT_EPOCHS)
    args = p.parse_args(argv)
    if args.cmd == "run":
        run_plan(plan(args.full_seeds, args.short_seeds, FULL_EPOCHS, args.short_epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
