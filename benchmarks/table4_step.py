"""One Table 4 training step as the protocol runs it vs every row, in one run.

The workload: a grid point of the Table 4 protocol on fold 0 of a data set, one
full-batch step -- forward over the fold's training graphs, NLL, backward, Adam -- with the
protocol's executor (:func:`ampsim.train.graph_classification.table4_executor`). Three
variants, taken in alternating rounds after a warm-up step each (the plans are cached, as in
training):

* **protocol**: as training runs it: only the deliveries that each node's own final state
  depends on (``unroll(..., keep=...)``), and of those each level's distinct rows once
  (``dedup``: equal feature rows give equal start states, docs/batched.md);
* **keep**: the same without ``dedup`` (the step before value numbering);
* **every row**: ``keep`` ignored and no ``dedup``: every delivery of every run is computed
  (the path before the keep/dedup pruning). All three give the same loss (checked, 1e-5).

    python benchmarks/table4_step.py [--points MUTAG:h16_m25_noskip IMDB-BINARY:h64_m25_noskip ...]
                                     [--rounds 5] [--threads 1] [--loops]

``--loops`` compares the level loops instead: the protocol step with the compiled level loop
(ampsim/batched/fused.py) against the same step with the eager kernels, alternating rounds,
same losses checked; the last line is then ``compiled / eager: N.NNx`` (summed step times).

Per point it prints the rows each variant computes and the median step times; the last line is
``speedup: N.Nx`` (every row / protocol, summed over the points).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ampsim.batched import BatchedExecutor  # noqa: E402
from ampsim.train.graph_classification import (GridPoint, build_model, load_dataset, table4_executor,  # noqa: E402
                                               _labels)
from ampsim.train.loop import training_process  # noqa: E402

DEFAULT_POINTS = ["MUTAG:h16_m25_noskip", "PROTEINS:h32_m25_skip", "IMDB-BINARY:h64_m25_noskip"]


class EveryRow(BatchedExecutor):
    """The Table 4 executor without pruning: ``keep`` is ignored (with ``dedup=False``: every delivery is computed)."""

    def unroll(self, *args, keep=None, **kwargs):
        return super().unroll(*args, **kwargs)


def _step(model, graphs, y, executor, opt) -> float:
    opt.zero_grad()
    loss = torch.nn.functional.nll_loss(model(graphs, executor), y)
    loss.backward()
    opt.step()
    return float(loss.detach())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", nargs="+", default=DEFAULT_POINTS, help="DATASET:tag, e.g. PTC:h32_m25_noskip")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--loops", action="store_true", help="the protocol step: compiled level loop vs eager kernels")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        p.error("--rounds and --threads must be >= 1")
    training_process(args.threads)
    names = ("compiled", "eager") if args.loops else ("protocol", "keep", "every row")
    totals = dict.fromkeys(names, 0.0)
    for spec in args.points:
        name, _, tag = spec.partition(":")
        ds = load_dataset(name)
        point = GridPoint.from_tag(tag)
        train, _ = ds.folds(0)
        graphs = [ds[int(i)] for i in train]
        y = _labels(graphs)
        if args.loops:
            variants = {"compiled": table4_executor(), "eager": table4_executor()}
            variants["compiled"].fused, variants["eager"].fused = True, False
        else:
            variants = {"protocol": table4_executor(), "keep": BatchedExecutor(segment_rows=0, dedup=False),
                        "every row": EveryRow(segment_rows=0, dedup=False)}
        models, opts, times, losses, rows = {}, {}, {}, {}, {}
        for v, ex in variants.items():
            models[v] = build_model(ds, point, 0)
            opts[v] = torch.optim.Adam(models[v].parameters(), lr=0.01)
            losses[v] = [_step(models[v], graphs, y, ex, opts[v])]  # warm-up: plans and programs cached
            rows[v] = ex.last.states.shape[0]
            times[v] = []
        for _ in range(args.rounds):
            for v, ex in variants.items():
                t0 = time.perf_counter()
                losses[v].append(_step(models[v], graphs, y, ex, opts[v]))
                times[v].append(time.perf_counter() - t0)
        worst = max(abs(a - b) for v in names[1:] for a, b in zip(losses[names[0]], losses[v]))
        med = {v: statistics.median(t) for v, t in times.items()}
        for v in totals:
            totals[v] += med[v]
        parts = ", ".join(f"{v} {med[v] * 1e3:.0f} ms ({rows[v]:,} state rows)" for v in names)
        ratio = (f"compiled / eager {med['compiled'] / med['eager']:.2f}" if args.loops else
                 f"every row / protocol {med['every row'] / med['protocol']:.2f}")
        print(f"{name} {tag} fold 0 ({len(graphs)} graphs): {parts}; {ratio}; max |loss difference| {worst:.1e}",
              flush=True)
        if worst > 1e-5:
            print("MISMATCH: the protocol step's loss differs from the full step's")
            return 1
    print("totals: " + ", ".join(f"{v} {totals[v] * 1e3:.0f} ms" for v in names))
    if args.loops:
        print(f"compiled / eager: {totals['compiled'] / totals['eager']:.2f}x")
    else:
        print(f"speedup: {totals['every row'] / totals['protocol']:.1f}x")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
