"""``ampsim verify ids``: run the ID protocol (Lemma 4.2, Corollary 4.3) over graphs x seeds and check it.

A run passes when it ends ``quiescent`` (not at the safety budget, not ``stalled``)
and every node holds a name that no other node holds. The summary's last line is
``unique P/N`` (P passing runs of N); the exit status is 0 only when P == N. Under
``--delay constant`` the engine refuses the protocol (it assumes random delays): the
refusal is printed as one line and the exit status is 2.

``--variant`` picks the rule: ``plain`` (:class:`~ampsim.protocols.ids.UniqueIds`, nodes know
nothing; the default), ``degree-aware`` (:class:`~ampsim.protocols.ids.DegreeAwareIds`, every node
knows its degree) or ``both``, which runs the two on the same graphs and seeds and prints one line
per graph and variant, then ``compare`` lines with the mean deliveries until quiescence of each
(the table of docs/ids.md).

The same functions produce ``results/ids/`` (``ampsim ids stars | graphs``):

* ``stars``: time to finish on ``star:k`` against k (simulated time and deliveries,
  mean and 95th percentile per k), one JSON per k so the sweep is resumable, then
  ``time_vs_k.json`` and ``time_vs_k.png`` (plotted against ``k * 6**k``);
* ``graphs``: the Corollary 4.3 check on 200 random connected graphs up to 30 nodes
  (trees, cycles, grids, random regular, G(n, p)) plus paths, cycles, complete graphs
  and the Petersen graph, summarised in ``graphs_check.json``.

Percentiles are nearest-rank: the 95th of sorted values ``x`` is ``x[ceil(0.95 n) - 1]``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Optional, Sequence, Union

from .. import validate as V
from ..engine.errors import AssumptionError
from ..engine.rng import stream
from ..engine.simulation import Simulation
from ..fileio import save_figure, write_text
from ..sweeps import add_executor_arguments, add_max_cases, announce_cases, case_limit, executor_from_args
from ..graphs import Graph, parse_graph_spec
from .ids import DegreeAwareIds, UniqueIds

__all__ = [
    "IdRun",
    "run_ids",
    "verify_ids",
    "summarize_runs",
    "percentile",
    "random_graph_specs",
    "fixed_graph_specs",
    "measure_stars",
    "check_graphs",
    "plot_time_vs_k",
    "configure",
    "main",
    "DEFAULT_BUDGET",
    "VARIANTS",
]

DEFAULT_BUDGET = 500_000
"""Safety budget (processed deliveries) per run; reaching it is a failure. The largest run seen
on graphs up to 30 nodes took about 12,000 deliveries (docs/ids.md)."""


VARIANTS = {"plain": UniqueIds, "degree-aware": DegreeAwareIds}
"""The ID rules ``run_ids`` can run: nodes know nothing, or every node knows its degree."""


def _rule(variant: str):
    try:
        return VARIANTS[variant]()
    except KeyError:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}") from None


@dataclass(frozen=True)
class IdRun:
    """One run of the protocol: how it ended, its cost, and whether the names came out unique."""

    graph: str
    n: int
    seed: int
    start: int
    reason: str
    time: float
    deliveries: int
    named: int
    distinct: int
    variant: str = "plain"

    @property
    def ok(self) -> bool:
        """Quiescent, every node named, all names distinct."""
        return self.reason == "quiescent" and self.named == self.n and self.distinct == self.n


@lru_cache(maxsize=64)
def _graph(spec: str) -> Graph:
    return parse_graph_spec(spec)


def _start_node(start: Union[int, str], seed: int, n: int) -> int:
    if start == "vary":
        return seed % n
    if isinstance(start, int) and 0 <= start < n:
        return start
    raise ValueError(f"start must be a node index in 0..{n - 1} or 'vary', got {start!r}")


def run_ids(
    graph: Union[str, Graph],
    seed: int,
    delay: str = "uniform",
    start: Union[int, str] = 0,
    budget: int = DEFAULT_BUDGET,
    fifo: bool = False,
    variant: str = "plain",
) -> IdRun:
    """Run the ID rule ``variant`` (:data:`VARIANTS`) once from one start node and check the names.

    ``fifo=True`` is refused (:class:`~ampsim.engine.errors.AssumptionError`): the protocol needs
    messages to overtake each other on an edge (docs/ids.md).
    """
    spec = graph if isinstance(graph, str) else (graph.name or repr(graph))
    g = _graph(graph) if isinstance(graph, str) else graph
    first = _start_node(start, seed, g.num_nodes)
    sim = Simulation(g, _rule(variant), delay=delay, fifo=fifo, seed=seed, start=first, budget=budget)
    result = sim.run()
    names = [s.name for s in result.states if s.name is not None]
    return IdRun(spec, g.num_nodes, seed, first, result.reason, result.time, result.total_deliveries,
                 len(names), len(set(names)), variant)


def _run_task(task: tuple) -> IdRun:
    return run_ids(*task)


SECONDS_PER_RUN = (0.005, 0.5)
"""One core's time of one run (one graph, one seed): a few ms on a small star, about a second at 100 nodes."""


def check_inputs(graphs: Sequence[str], delay: str = "uniform", start: Union[int, str] = 0, fifo: bool = False,
                 variant: str = "plain") -> None:
    """Refuse a bad graph spec, start node or assumption (``AssumptionError``: FIFO channels) before any run."""
    for spec in graphs:
        g = _graph(spec)
        Simulation(g, _rule(variant), delay=delay, fifo=fifo, seed=0, start=_start_node(start, 0, g.num_nodes))


def verify_ids(
    graphs: Sequence[str],
    seeds: Union[int, Sequence[int]],
    delay: str = "uniform",
    start: Union[int, str] = 0,
    budget: int = DEFAULT_BUDGET,
    workers: int = 1,
    fifo: bool = False,
    executor: Any = None,
    variant: str = "plain",
) -> list[IdRun]:
    """Every graph spec x every seed (``seeds``: a count from 0, or a list), in that order, with the rule ``variant``.

    With ``workers > 1`` the runs are spread over processes, with ``executor`` (any
    ``concurrent.futures.Executor``, e.g. Dask: :mod:`ampsim.sweeps`) over it; the result is identical.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError("need at least one seed")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_inputs(graphs, delay, start, fifo, variant)
    tasks = [(spec, s, delay, start, budget, fifo, variant) for spec in graphs for s in seed_list]
    from ..sweeps import run_map

    # a local pool gets few large chunks (about 8 per worker): a huge sweep then holds few pending futures
    chunksize = None if executor is not None else max(1, len(tasks) // (8 * workers))
    return run_map(_run_task, tasks, workers=workers, executor=executor, chunksize=chunksize)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the ``ceil(q/100 * n)``-th smallest value."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summarize_runs(runs: Sequence[IdRun]) -> dict:
    """Pass count, failures (as seeds) and mean / p95 / max of time and deliveries."""
    times = [r.time for r in runs]
    dels = [r.deliveries for r in runs]
    return {
        "runs": len(runs),
        "unique": sum(r.ok for r in runs),
        "failed_seeds": [r.seed for r in runs if not r.ok],
        "reasons": dict(sorted({r.reason: sum(x.reason == r.reason for x in runs) for r in runs}.items())),
        "time_mean": sum(times) / len(times),
        "time_p95": percentile(times, 95),
        "time_max": max(times),
        "deliveries_mean": sum(dels) / len(dels),
        "deliveries_p95": percentile(dels, 95),
        "deliveries_max": max(dels),
    }


# ------------------------------------------------------------------ CLI
def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Check that the ID protocol (Lemma 4.2, Corollary 4.3) ends with unique IDs."
    parser.add_argument("--graph", action="append", required=True,
                        help="graph spec (repeatable): star:K, random-regular:D:N:SEED, petersen, ...")
    parser.add_argument("--seeds", type=_positive, default=100, help="runs per graph, seeds 0..N-1 (default 100)")
    parser.add_argument("--delay", choices=["uniform", "constant"], default="uniform")
    parser.add_argument("--start", type=_start_arg, default=0,
                        help="start node index, or 'vary' (seed mod n); default 0")
    parser.add_argument("--budget", type=_positive, default=DEFAULT_BUDGET,
                        help=f"safety budget of deliveries per run, reaching it fails the run (default {DEFAULT_BUDGET})")
    parser.add_argument("--workers", type=_positive, default=1, help="processes (same results as 1)")
    parser.add_argument("--fifo", action="store_true",
                        help="FIFO channels: refused (the protocol needs messages to overtake each other)")
    parser.add_argument("--variant", choices=[*VARIANTS, "both"], default="plain",
                        help="plain: nodes know nothing (default); degree-aware: every node knows its degree; "
                             "both: run the two on the same seeds and compare their deliveries until quiescence")
    add_max_cases(parser, "runs")
    add_executor_arguments(parser)  # --dask ADDRESS (ampsim.sweeps)


_positive = V.whole_flag(1, parse_what="a whole number >= 1")
"""A whole number >= 1 (argparse's one-line usage error otherwise)."""
_start_arg = V.flag_type(lambda text: "vary" if text.strip() == "vary" else int(text),
                         lambda v: v if v == "vary" else V.nonneg_int("--start", v), "a node index >= 0 or 'vary'")
"""``--start``: a node index >= 0 or ``vary``."""


def main(args: argparse.Namespace) -> int:
    start: Union[int, str] = args.start
    variants = list(VARIANTS) if args.variant == "both" else [args.variant]
    runs: list[IdRun] = []
    try:
        for variant in variants:
            check_inputs(args.graph, args.delay, start, args.fifo, variant)
        announce_cases(len(args.graph) * args.seeds * len(variants),
                       f"{len(args.graph)} graphs x {args.seeds} seeds"
                       + (f" x {len(variants)} variants" if len(variants) > 1 else ""),
                       args.workers, SECONDS_PER_RUN, case_limit(args))
        with executor_from_args(args) as executor:  # None unless --dask
            for variant in variants:
                runs += verify_ids(args.graph, args.seeds, delay=args.delay, start=start, budget=args.budget,
                                   workers=args.workers, fifo=args.fifo, executor=executor, variant=variant)
    except AssumptionError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    means: dict = {}
    for spec in args.graph:
        for variant in variants:
            mine = [r for r in runs if r.graph == spec and r.variant == variant]
            s = summarize_runs(mine)
            means[spec, variant] = s["deliveries_mean"]
            tag = "" if len(variants) == 1 else f" [{variant}]"
            print(f"{spec}{tag} (n={mine[0].n}): unique {s['unique']}/{s['runs']}; "
                  f"time mean {s['time_mean']:.2f} p95 {s['time_p95']:.2f} max {s['time_max']:.2f}; "
                  f"deliveries mean {s['deliveries_mean']:.0f} p95 {s['deliveries_p95']} max {s['deliveries_max']}")
            for r in mine:
                if not r.ok:
                    print(f"  FAILED seed {r.seed} (start {r.start}): {r.reason} after {r.deliveries} deliveries, "
                          f"{r.named}/{r.n} named, {r.distinct} distinct")
    if len(variants) > 1:
        for spec in args.graph:
            plain, aware = means[spec, "plain"], means[spec, "degree-aware"]
            print(f"compare {spec}: deliveries mean plain {plain:.1f}, degree-aware {aware:.1f} "
                  f"(ratio {aware / plain:.2f})")
    passed = sum(r.ok for r in runs)
    print(f"unique {passed}/{len(runs)}")
    return 0 if passed == len(runs) else 1


# ------------------------------------------------------------------ results/ids
def fixed_graph_specs() -> list[str]:
    """Paths, cycles, complete graphs (small to 30 nodes) and the Petersen graph."""
    sizes = (2, 3, 4, 5, 7, 10, 16, 30)
    return ([f"path:{n}" for n in sizes] + [f"cycle:{n}" for n in sizes if n >= 3]
            + [f"complete:{n}" for n in sizes] + ["petersen"])


def random_graph_specs(count: int = 200, seed: int = 0, max_nodes: int = 30) -> list[str]:
    """``count`` random connected graphs with at most ``max_nodes`` nodes, evenly over five families.

    Trees (``tree:N:S``), cycles, grids (R x C <= max_nodes), random regular graphs
    and G(n, p) with p = 2 ln(n) / n (``gnp`` keeps the largest component, so it is
    connected). Distinct specs, drawn from the ``graphs`` stream of ``seed``.
    """
    rng = stream(seed, "graphs")
    families = ("tree", "cycle", "grid", "random-regular", "gnp")
    specs: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(specs) < count:
        attempts += 1
        if attempts > 100 * count:
            raise ValueError(f"cannot draw {count} distinct graphs of at most {max_nodes} nodes")
        family = families[len(specs) % len(families)]
        if family == "tree":
            spec = f"tree:{rng.randint(3, max_nodes)}:{rng.randrange(10**6)}"
        elif family == "cycle":
            spec = f"cycle:{rng.randint(3, max_nodes)}"
            if spec in seen:  # only 28 cycles exist: fall back to a tree
                spec = f"tree:{rng.randint(3, max_nodes)}:{rng.randrange(10**6)}"
        elif family == "grid":
            r = rng.randint(2, 5)
            spec = f"grid:{r}x{rng.randint(2, max_nodes // r)}"
            if spec in seen:
                spec = f"gnp:{rng.randint(8, max_nodes)}:0.3:{rng.randrange(10**6)}"
        elif family == "random-regular":
            d = rng.randint(3, 5)
            n = rng.randint(d + 1, max_nodes)
            if (d * n) % 2:
                n -= 1 if n - 1 > d else -1
            spec = f"random-regular:{d}:{n}:{rng.randrange(10**6)}"
        else:
            n = rng.randint(8, max_nodes)
            spec = f"gnp:{n}:{2 * math.log(n) / n:.3f}:{rng.randrange(10**6)}"
        if spec in seen:
            continue
        g = _graph(spec)
        if g.num_nodes < 2 or g.num_nodes > max_nodes or not _connected(g):
            continue
        seen.add(spec)
        specs.append(spec)
    return specs


def _connected(g: Graph) -> bool:
    seen, todo = {0}, [0]
    while todo:
        for u in g.neighbors[todo.pop()]:
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return len(seen) == g.num_nodes


def _write_json(path: str, data: dict, indent: Optional[int] = 1) -> None:
    write_text(path, json.dumps(data, indent=indent, sort_keys=True) + "\n")


def _measured(path: str, seeds: int, budget: int, force: bool) -> Optional[dict]:
    """The measurement in ``path`` when it is one of ``seeds`` runs with ``budget``; None when there is none
    (or ``force``). One of another configuration is refused unless ``force``: never replaced silently."""
    if not os.path.exists(path) or force:
        return None
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a valid measurement file ({exc.msg}, line {exc.lineno}); "
                             "remove it (or pass --force) to measure this k again") from None
    if not isinstance(data, dict) or "seeds" not in data:
        raise ValueError(f"{path}: not a measurement file of ampsim ids stars; remove it or pass --force")
    if data.get("seeds") != seeds or data.get("budget", budget) != budget:
        raise ValueError(f"{path}: a measurement of {data.get('seeds')} seeds (budget {data.get('budget')}); this run "
                         f"asks {seeds} (budget {budget}): pass --force to measure it again and replace the file, "
                         "or write to another --out")
    return data


def existing_stars(ks: Iterable[int], seeds: int, out_dir: str, budget: int = DEFAULT_BUDGET,
                   force: bool = False) -> dict:
    """``{k: measurement or None}`` for the ``star_k{k}.json`` files under ``out_dir`` (:func:`measure_stars`
    reads them back); a file of another configuration is refused here, before anything runs."""
    return {k: _measured(os.path.join(out_dir, f"star_k{k}.json"), seeds, budget, force) for k in ks}


def measure_stars(ks: Iterable[int], seeds: int, out_dir: str, workers: int = 1, budget: int = DEFAULT_BUDGET,
                  force: bool = False) -> dict:
    """Time to finish on ``star:k`` (started at the centre) for each k; ``time_vs_k.json`` in ``out_dir``.

    One ``star_k{k}.json`` per k (per-seed time and deliveries, in seed order, and the wall
    time of the sweep); a k whose file already holds ``seeds`` runs is read back, not rerun. A file of
    another configuration (other seeds or budget) is refused before anything runs, unless ``force``.
    """
    ks = list(ks)
    found = existing_stars(ks, seeds, out_dir, budget, force)
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for k in ks:
        path = os.path.join(out_dir, f"star_k{k}.json")
        data = found[k]
        if data is None:
            began = time.perf_counter()
            runs = verify_ids([f"star:{k}"], seeds, start=0, budget=budget, workers=workers)
            data = {"k": k, "seeds": seeds, "budget": budget, "workers": workers,
                    "wall_s": round(time.perf_counter() - began, 2), "summary": summarize_runs(runs),
                    "time": [round(r.time, 6) for r in runs], "deliveries": [r.deliveries for r in runs]}
            _write_json(path, data, indent=None)
        rows.append({"k": k, "bound_k6k": k * 6**k, "wall_s": data["wall_s"], **data["summary"]})
    table = {
        "command": f"ampsim ids stars --seeds {seeds} --out {out_dir}",
        "protocol": "ids (UniqueIds), started at the star's centre, delay U(0,1]",
        "percentile": "nearest-rank",
        "rows": rows,
    }
    _write_json(os.path.join(out_dir, "time_vs_k.json"), table)
    return table


def plot_time_vs_k(table: dict, path: Optional[str] = None):
    """Mean and p95 of time and deliveries per k against ``k * 6**k`` (log-log); saved to ``path``."""
    import matplotlib.pyplot as plt

    rows = table["rows"]
    bound = [r["bound_k6k"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, what, unit in ((axes[0], "time", "simulated time"), (axes[1], "deliveries", "messages (deliveries)")):
        ax.loglog(bound, [r[f"{what}_mean"] for r in rows], "o-", label="mean")
        ax.loglog(bound, [r[f"{what}_p95"] for r in rows], "s--", label="95th percentile")
        ax.loglog(bound, bound, ":", color="grey", label="k·6^k (constant 1)")
        for r in rows:
            ax.annotate(f"k={r['k']}", (r["bound_k6k"], r[f"{what}_mean"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
        ax.set_xlabel("k·6^k")
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"IDs on star:k ({rows[0]['runs']} seeds per k)")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=120)
    return fig


def check_graphs(out_dir: str, count: int = 200, seeds: int = 20, workers: int = 1,
                 budget: int = DEFAULT_BUDGET) -> dict:
    """Corollary 4.3 on ``random_graph_specs(count)`` + ``fixed_graph_specs()``, start node seed mod n."""
    os.makedirs(out_dir, exist_ok=True)
    specs = random_graph_specs(count) + fixed_graph_specs()
    runs = verify_ids(specs, seeds, start="vary", budget=budget, workers=workers)
    per_graph = []
    for spec in specs:
        mine = [r for r in runs if r.graph == spec]
        s = summarize_runs(mine)
        per_graph.append({"graph": spec, "n": mine[0].n, "unique": s["unique"], "runs": s["runs"],
                          "failed_seeds": s["failed_seeds"], "time_mean": s["time_mean"],
                          "time_max": s["time_max"], "deliveries_mean": s["deliveries_mean"],
                          "deliveries_max": s["deliveries_max"]})
    table = {
        "command": f"ampsim ids graphs --count {count} --seeds {seeds} --out {out_dir}",
        "protocol": "ids (UniqueIds), delay U(0,1], start node = seed mod n",
        "graphs": len(specs),
        "random_graphs": count,
        "seeds_per_graph": seeds,
        "total": summarize_runs(runs),
        "per_graph": per_graph,
    }
    _write_json(os.path.join(out_dir, "graphs_check.json"), table)
    return table


if __name__ == "__main__":  # `python -m ampsim.protocols.verify_ids stars|graphs`: alias of `ampsim ids ...`
    from ampsim.cli import alias

    raise SystemExit(alias(["ids"]))
