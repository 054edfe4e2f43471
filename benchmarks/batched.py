"""Batched executor vs the per-message engine path, and vs a plain batched GRUCell, in one run.

The workload: MUTAG, one 25-message run from every node (Table 4's runs),
AMP-GRU with hidden 32 and message size 16, forward + backward of the sum of all
final states. Three timings, taken in alternating rounds (the median of each is
reported; the machine is shared):

* **batched**: :class:`ampsim.batched.BatchedExecutor` on all 188 graphs at once
  (the plan is cached after the warm-up round, as in training);
* **plain GRUCell**: ``nn.GRUCell(16, 32)`` forward + backward on the same number of
  rows in one batch -- the ceiling for a GRU on this machine;
* **per-message**: :class:`ampsim.cells.execute.EngineExecutor` (SimPy, one cell call
  per delivery) on the first graphs until ``--engine-rows`` deliveries, timed and
  **scaled per cell call** to the full data set (running all of MUTAG per message
  takes minutes).

    python benchmarks/batched.py [--rounds 5] [--engine-rows 1500] [--threads N] [--device cpu|cuda]

The last line is ``speedup: N.Nx`` (per-message time / batched time, same work).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ampsim.batched import BatchedExecutor, retain_freed_memory  # noqa: E402
from ampsim.cells.cells import AMPCell  # noqa: E402
from ampsim.cells.execute import EngineExecutor, RunSpec  # noqa: E402
from ampsim.data.tu import load_tu  # noqa: E402

HIDDEN, MSG, BUDGET = 32, 16, 25


def batched_round(bx, cell, graphs, starts, seeds, msgs, sync) -> tuple[float, int]:
    """Seconds for forward + backward of all runs of all graphs, and the rows (deliveries) processed."""
    cell.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    out = bx.unroll(cell, graphs, starts, seeds, msgs, BUDGET)
    out.final().sum().backward()
    sync()
    return time.perf_counter() - t0, sum(out.deliveries)


def gru_round(gru, rows: int, device, sync) -> float:
    """Seconds for forward + backward of a plain GRUCell on ``rows`` rows at once."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(rows, MSG, generator=g).to(device)
    h = torch.randn(rows, HIDDEN, generator=g).to(device)
    gru.zero_grad(set_to_none=True)
    sync()
    t0 = time.perf_counter()
    gru(x, h).sum().backward()
    sync()
    return time.perf_counter() - t0


def engine_round(cell, graphs, limit: int) -> tuple[float, int]:
    """Seconds and cell calls for the per-message path on the first graphs (>= ``limit`` calls)."""
    ex = EngineExecutor()
    cell.zero_grad(set_to_none=True)
    ones = torch.ones(1, MSG)
    t0 = time.perf_counter()
    calls = 0
    total = None
    for g in graphs:
        runs = [RunSpec((i,), ones, 0) for i in range(g.num_nodes)]
        states = ex.execute(cell, g, runs, BUDGET)
        calls += sum(r.deliveries for r in ex.last_results)
        total = states.sum() if total is None else total + states.sum()
        if calls >= limit:
            break
    total.backward()
    return time.perf_counter() - t0, calls


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--engine-rows", type=int, default=1500)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared machine OpenMP barriers stall both paths)")
    p.add_argument("--keep-malloc", action="store_true", help="do not call retain_freed_memory()")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = False if args.keep_malloc else retain_freed_memory()
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    ds = load_tu("MUTAG")
    graphs = [ds[i] for i in range(len(ds))]
    torch.manual_seed(0)
    cell = AMPCell("gru", ds.num_features, HIDDEN, MSG)
    starts = [[(i,) for i in range(g.num_nodes)] for g in graphs]
    seeds = [[0] * g.num_nodes for g in graphs]
    msgs = torch.ones(sum(g.num_nodes for g in graphs), MSG)
    bx = BatchedExecutor()
    dcell = cell.to(device)
    dmsgs = msgs.to(device)
    t0 = time.perf_counter()
    _, rows = batched_round(bx, dcell, graphs, starts, seeds, dmsgs, sync)
    first = time.perf_counter() - t0
    gru = torch.nn.GRUCell(MSG, HIDDEN).to(device)
    gru_round(gru, rows, device, sync)

    bt, gt = [], []
    for _ in range(args.rounds):
        bt.append(batched_round(bx, dcell, graphs, starts, seeds, dmsgs, sync)[0])
        gt.append(gru_round(gru, rows, device, sync))
    cpu_cell = cell.to("cpu")
    et, calls = engine_round(cpu_cell, graphs, args.engine_rows)
    b, g = statistics.median(bt), statistics.median(gt)
    per_call = et / calls
    engine_full = per_call * rows
    u = bx.last
    print(f"workload: MUTAG, {len(graphs)} graphs, {sum(len(s) for s in starts)} runs (one per node), "
          f"{BUDGET} messages each, AMP-GRU hidden {HIDDEN} msg {MSG}, forward+backward; device {device}; "
          f"torch threads {torch.get_num_threads()}; retain_freed_memory: {tuned}")
    print(f"rows (deliveries): {rows}; batches (levels): {u.batches}; first call incl. planning: {first:.2f} s")
    print(f"batched:       median {b:.3f} s  (min {min(bt):.3f})  -> {rows / b:,.0f} rows/s")
    print(f"plain GRUCell: median {g:.3f} s  (min {min(gt):.3f})  -> {rows / g:,.0f} rows/s on {rows} rows at once")
    print(f"batched / plain GRUCell rows/s: {g / b:.1%}")
    print(f"per-message: {calls} cell calls in {et:.2f} s = {calls / et:,.0f} calls/s (forward+backward), "
          f"scaled per cell call to {rows} rows: {engine_full:.1f} s")
    print(f"speedup: {engine_full / b:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
