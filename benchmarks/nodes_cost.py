"""Training cost of the node classifiers side by side: seconds per epoch and per seed, as multiples of our GCN.

One process, one torch thread. For each data set every (model, delay) of the protocol
(:mod:`ampsim.train.node_classification`, seed 0, its default recipe) is built once; then
``--epochs`` rounds, each running one epoch of every model in a rotated order (so that a burst
of load on the shared machine hits every model alike). An epoch is what the protocol's loop does:
one training step (forward, loss with weight decay, backward, Adam) and one evaluation pass.
Warm-up rounds (``--warmup``: plans, caches, allocator) are not timed. Per model the median epoch
time is reported, the seconds per seed it implies (median x the recipe's epochs), and that as a
multiple of our GCN's.

    python benchmarks/nodes_cost.py [--datasets Cora CiteSeer] [--models GCN GAT AMP-Mean AMP-Att]
                                    [--delays constant uniform] [--epochs 10] [--warmup 2]

The last line gives the aggregating cells' cost per seed as a multiple of the GCN's, worst data set:
``per seed, worst data set: AMP-Mean constant Ax, uniform Bx; AMP-Att constant Cx, uniform Dx of our GCN``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ampsim.cli.nodes import configs, configure_run
from ampsim.train.node_classification import (BASELINES, DATASETS, MODELS, WAVE_MODELS, Protocol, load_node_task,
                                              train_step)


def one_epoch(proto: Protocol, opt: torch.optim.Optimizer, epoch: int) -> float:
    """Seconds of one protocol epoch: a training step (:func:`train_step`) and an evaluation pass."""
    seconds = train_step(proto, opt, epoch)
    t = time.perf_counter()
    proto.model.eval()
    with torch.no_grad():
        proto.logp(proto.model, None, 12345)
    return seconds + time.perf_counter() - t


def measure(dataset: str, models: list[str], delays: list[str], epochs: int, warmup: int) -> list[dict]:
    entries = []
    tasks = {}
    parser = argparse.ArgumentParser()
    configure_run(parser)  # the recipes exactly as `ampsim nodes run` builds them
    recipe = parser.parse_args(["--datasets", dataset, "--models", *models, "--delays", *delays, "--seeds", "0"])
    for config in configs(recipe):
        if config.normalize not in tasks:
            tasks[config.normalize] = load_node_task(dataset, normalize=config.normalize)
        proto = Protocol(tasks[config.normalize], config)
        opt = torch.optim.Adam(proto.model.parameters(), lr=config.lr)
        entries.append({"model": config.model, "delay": None if config.model in BASELINES else config.delay,
                        "config": config, "proto": proto, "opt": opt, "times": []})
    for r in range(warmup + epochs):
        order = entries[r % len(entries):] + entries[: r % len(entries)]
        for e in order:
            s = one_epoch(e["proto"], e["opt"], r)
            if r >= warmup:
                e["times"].append(s)
    out = []
    for e in entries:
        med = statistics.median(e["times"])
        out.append({"dataset": dataset, "model": e["model"], "delay": e["delay"], "s_per_epoch": med,
                    "epochs": e["config"].epochs, "s_per_seed": med * e["config"].epochs})
    gcn = next((o for o in out if o["model"] == "GCN"), None)
    for o in out:
        o["x_gcn"] = o["s_per_seed"] / gcn["s_per_seed"] if gcn else None
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--models", nargs="+", default=["GCN", "GAT", "AMP-Mean", "AMP-Att"], choices=MODELS)
    p.add_argument("--delays", nargs="+", default=["constant", "uniform"], choices=("constant", "uniform"))
    p.add_argument("--epochs", type=int, default=10, help="timed rounds (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.warmup < 0:
        p.error("--epochs must be >= 1 and --warmup >= 0")
    torch.set_num_threads(1)
    rows = []
    print(f"{'data set':9s} {'model':9s} {'delay':9s} {'s/epoch':>8s} {'epochs':>6s} {'s/seed':>7s} {'x GCN':>6s}")
    for dataset in args.datasets:
        for o in measure(dataset, args.models, args.delays, args.epochs, args.warmup):
            rows.append(o)
            x = "" if o["x_gcn"] is None else f"{o['x_gcn']:6.2f}"
            print(f"{o['dataset']:9s} {o['model']:9s} {o['delay'] or '-':9s} {o['s_per_epoch']:8.4f} "
                  f"{o['epochs']:6d} {o['s_per_seed']:7.2f} {x}", flush=True)
    worst = []
    for model in [m for m in args.models if m in WAVE_MODELS]:
        parts = []
        for delay in args.delays:
            xs = [o["x_gcn"] for o in rows if o["model"] == model and o["delay"] == delay and o["x_gcn"] is not None]
            if xs:
                parts.append(f"{delay} {max(xs):.1f}x")
        if parts:
            worst.append(f"{model} " + ", ".join(parts))
    if worst:
        print("per seed, worst data set: " + "; ".join(worst) + " of our GCN")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
