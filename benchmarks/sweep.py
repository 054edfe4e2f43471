"""K models at once vs one after another: the 10 MUTAG folds of one Table 4 grid point, in one run.

The workload: MUTAG, grid point ``h16_m25_noskip`` (AMP-RNN, hidden 16, 25
messages per run, one run per node), the Table 4 protocol (one full-batch Adam step per
epoch, StepLR, test accuracy after every epoch) for ``--epochs`` epochs, every fold:

* **at once**: :func:`ampsim.train.graph_classification.train_folds` with ``stack=True`` --
  the K folds as one :class:`~ampsim.train.graph_classification.GraphClassifierStack`,
  one executor pass per epoch over all graphs (each fold's loss masked to its training
  graphs, its accuracy to its test graphs);
* **one after another**: the same function with ``stack=False`` -- K single-model trainings.

Both start from the same executor caches (one warm-up epoch of each path first, so that the
plans and compiled programs of every batch -- all graphs for the stack, each fold's training and
test graphs one by one -- are built before the clock runs: a 350-epoch sweep builds them once; the
program cache holds all 2K + 2 of them, so neither path evicts the other's), alternate over
``--rounds`` rounds (the machine is shared), and the medians are compared. The script also
checks that the two give the same per-fold losses (to 1e-4).

    python benchmarks/sweep.py [--folds 10] [--epochs 3] [--rounds 5] [--point h16_m25_noskip] [--threads 1]
    python benchmarks/sweep.py --seeds-task max [--folds 10] [--epochs 20]   # K seeds of a Table 2 set instead
    python benchmarks/sweep.py --level-rows [--folds 10]   # one level: K stacked vs K single RNN steps, by rows

``--level-rows`` times one level (forward, backward, parameter gradients) of the hand-written
RNN kernels (hidden 32, messages 3) for K models stacked against K single models, at 32 to 4096
rows per model: where the ratio crosses 1 is ``ampsim.train.synthetic.STACK_MAX_LEVEL_ROWS``.

The last line is ``speedup: N.Nx`` (one after another / at once, same work).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ampsim.batched import BatchedExecutor, retain_freed_memory  # noqa: E402
from ampsim.train.graph_classification import GridPoint, load_dataset, train_folds  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--point", default="h16_m25_noskip")
    p.add_argument("--dataset", default="MUTAG")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds-task", default=None,
                   help="a Table 2 set whose seeds share graphs (limits1, limits2, max, mean, skipcycles): K seeds "
                        "in one pass (ampsim.train.synthetic.fit_seeds) vs one after another (fit), evaluation included")
    p.add_argument("--level-rows", action="store_true", help="time one stacked level against K single ones")
    p.add_argument("--out", default=None,
                   help="also write the figures to OUT.json (the published one: --out results/sweeps)")
    args = p.parse_args(argv)
    if args.level_rows:
        return _level_rows(args)
    if args.seeds_task:
        return _seeds(args)
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    ds = load_dataset(args.dataset)
    point = GridPoint.from_tag(args.point)
    folds = list(range(args.folds))
    ex = BatchedExecutor()
    # room for every compiled program of both paths (the stack's training and test batch, each fold's
    # two): with less, the two paths evict each other's programs and recompile them every round
    ex.program_cache = 2 * len(folds) + 2
    for stack in (True, False):  # warm the plan and program caches (both paths' batches): steady state is timed
        train_folds(ds, folds, point, epochs=1, executor=ex, stack=stack)
    times = {"at once": [], "one after another": []}
    outs = {}
    for r in range(args.rounds):
        for name, stack in (("at once", True), ("one after another", False)):
            t0 = time.perf_counter()
            outs[name] = train_folds(ds, folds, point, epochs=args.epochs, executor=ex, stack=stack)
            times[name].append(time.perf_counter() - t0)
            print(f"round {r}: {name}: {times[name][-1]:.2f} s", flush=True)
    worst = max(abs(a - b) for x, y in zip(outs["at once"], outs["one after another"])
                for a, b in zip(x["train_loss"], y["train_loss"]))
    print(f"{args.dataset} {args.point}, K = {args.folds} folds x {args.epochs} epochs, {args.threads} thread(s): "
          f"max |loss difference| between the two = {worst:.2e}")
    if worst > 1e-4:
        print("MISMATCH: the stacked losses differ from the one-by-one losses")
        return 1
    at, seq = statistics.median(times["at once"]), statistics.median(times["one after another"])
    print(f"at once: {at:.2f} s, one after another: {seq:.2f} s (medians of {args.rounds} rounds)")
    print(f"speedup: {seq / at:.1f}x")
    if args.out:
        _write(args, times, worst, "max |loss difference|")
    return 0


def _write(args, times: dict, worst: float, what: str) -> None:
    """OUT.json: the workload, every round's seconds of both paths, their medians and ratio, the check."""
    import platform

    from ampsim.fileio import write_json

    at, seq = statistics.median(times["at once"]), statistics.median(times["one after another"])
    write_json(args.out + ".json", {
        "command": "python benchmarks/sweep.py " + " ".join(sys.argv[1:]),
        "workload": {"dataset": args.dataset, "point": args.point, "seeds_task": args.seeds_task,
                     "K": args.folds, "epochs": args.epochs, "rounds": args.rounds, "threads": args.threads},
        "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "median_s": {"at once": round(at, 3), "one after another": round(seq, 3)},
        "speedup": round(seq / at, 2), "check": {what: worst},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d", time.gmtime())})
    print(f"wrote {args.out}.json")


def _seeds(args) -> int:
    from ampsim.train.synthetic import TrainConfig, fit, fit_seeds

    torch.set_num_threads(args.threads)
    configs = [TrainConfig(task=args.seeds_task, seed=s, epochs=args.epochs) for s in range(args.folds)]
    ex = BatchedExecutor()
    fit(TrainConfig(task=args.seeds_task, seed=0, epochs=1), ex)  # warm the plan cache
    times = {"at once": [], "one after another": []}
    outs = {}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        outs["at once"] = fit_seeds(configs, ex, executor_name="batched")
        times["at once"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        outs["one after another"] = [fit(c, ex, executor_name="batched") for c in configs]
        times["one after another"].append(time.perf_counter() - t0)
        print(f"round {r}: at once {times['at once'][-1]:.2f} s, one after another "
              f"{times['one after another'][-1]:.2f} s", flush=True)
    first = max(abs(a["loss"][0] - b["loss"][0]) for a, b in zip(outs["at once"], outs["one after another"]))
    print(f"{args.seeds_task}, K = {args.folds} seeds x {args.epochs} epochs: max |first-epoch loss difference| "
          f"{first:.2e}; stacked: {outs['at once'][0].get('stacked_with', 1)}")
    at, seq = statistics.median(times["at once"]), statistics.median(times["one after another"])
    print(f"at once: {at:.2f} s, one after another: {seq:.2f} s (medians of {args.rounds} rounds)")
    print(f"speedup: {seq / at:.1f}x")
    if args.out:
        _write(args, times, first, "max |first-epoch loss difference|")
    return 0


def _level_rows(args) -> int:
    from ampsim.batched.kernels import kernel_for
    from ampsim.cells.cells import AMPCell
    from ampsim.cells.stacked import StackedCell

    torch.set_num_threads(args.threads)
    retain_freed_memory()
    K, H, M = args.folds, 32, 3
    cells = [AMPCell("rnn", 4, H, M) for _ in range(K)]
    single, stacked = kernel_for(cells[0]), kernel_for(StackedCell(cells))

    def level(kernel, rows: int, S: int, W: int, reps: int) -> float:
        h, m, g_new, g_out = torch.randn(rows, S), torch.randn(rows, W), torch.randn(rows, S), torch.randn(rows, W)
        new, out, act = torch.empty(rows, S), torch.empty(rows, W), torch.empty(rows, kernel.act_size)
        t0 = time.perf_counter()
        for _ in range(reps):
            kernel.forward(h, m, new, out, act)
            kernel.backward(h, m, new, act, g_new, g_out)
            kernel.param_grads(h, m, new, act, g_out, {})
        return (time.perf_counter() - t0) / reps

    print(f"one level, RNN h{H} m{M}, K = {K}: {K} single levels / one stacked level (best of 3)")
    for rows in (32, 64, 128, 256, 512, 1024, 2048, 4096):
        reps = max(20, 20000 // rows)
        level(single, rows, H, M, 3), level(stacked, rows, K * H, K * M, 3)
        a = K * min(level(single, rows, H, M, reps) for _ in range(3))
        b = min(level(stacked, rows, K * H, K * M, reps) for _ in range(3))
        print(f"{rows:5d} rows per model: {K} single {a * 1e6:7.0f} us, stacked {b * 1e6:7.0f} us, ratio {a / b:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
