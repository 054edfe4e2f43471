"""``ampsim run | replay | plot | verify | train``: the command line (argparse; a flag is a kwarg).

Bad input exits with status 2 and one line on stderr saying what is wrong.
``verify`` and ``train`` load their modules lazily; each such module exposes
``configure(parser)`` and ``main(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

__all__ = ["main"]

# sub-command -> module implementing configure(parser) / main(args)
VERIFY_TARGETS = {
    "synchronizer": "ampsim.protocols.verify_synchronizer",
    "ids": "ampsim.protocols.verify_ids",
}
TRAIN_MODULE = "ampsim.train.cli"


def _cmd_run(args: argparse.Namespace) -> int:
    from .engine.simulation import Simulation
    from .graphs import parse_graph_spec
    from .protocols import get_rule
    from .trace.columnar import open_tracer

    graph = parse_graph_spec(args.graph)
    rule = get_rule(args.rule)
    start = "all" if args.start == "all" else int(args.start)
    tracer = open_tracer(args.trace) if args.trace else None  # .parquet: columnar, else JSONL
    try:
        sim = Simulation(graph, rule, delay=args.delay, fifo=args.fifo, seed=args.seed, tracer=tracer,
                         start=start, loss=args.loss)
        result = sim.run(until=args.until, max_deliveries=args.max_deliveries)
    except BaseException:
        if tracer is not None:
            tracer.abort()
        raise
    if tracer is not None:
        tracer.close()
    print(f"graph {graph.name} (n={graph.num_nodes}, m={graph.num_edges}), rule {args.rule}, "
          f"delay {args.delay}, fifo={args.fifo}, seed {args.seed}")
    print(f"ended: {result.reason} at t={result.time:.6g} after {result.deliveries} deliveries "
          f"({result.sent} sent, {result.dropped} dropped, {result.in_flight} in flight)")
    if result.stuck:
        print(f"stuck nodes: {list(result.stuck)}")
    if args.trace:
        print(f"trace written to {args.trace}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from .trace.replay import replay

    new = replay(args.trace, verify=args.verify)
    n = len(new.deliveries)
    print(f"replayed {n} deliveries, {len(new.messages)} message records"
          + (": identical to the recorded trace" if args.verify else ""))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    if args.output.lower().endswith((".html", ".htm")):  # the interactive diagram (plotly), one self-contained file
        from .viz.interactive import write_html

        write_html(args.trace, args.output)
        print(f"interactive space-time diagram written to {args.output}")
        return 0
    import matplotlib

    matplotlib.use("Agg")
    from .trace.io import load_trace
    from .viz import plot_spacetime

    trace = load_trace(args.trace)
    ax = plot_spacetime(trace)
    ax.figure.savefig(args.output, dpi=args.dpi, bbox_inches="tight")
    print(f"space-time diagram written to {args.output}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Convert a trace: ``shiviz`` (a file ShiViz's upload accepts as is), ``jsonl`` or ``parquet``."""
    from .trace.export import export_trace

    info = export_trace(args.trace, args.output, args.format)
    print(f"{info} written to {args.output}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main demo: flood a Petersen graph with uniform delays, trace, replay-verify, plot."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    from .engine.simulation import Simulation
    from .graphs import parse_graph_spec
    from .protocols import get_rule
    from .trace.io import load_trace
    from .trace.replay import replay
    from .trace.tracers import JSONLTracer
    from .viz import plot_spacetime

    os.makedirs(args.out, exist_ok=True)
    trace_path = os.path.join(args.out, "demo.jsonl")
    graph = parse_graph_spec(args.graph)
    with JSONLTracer(trace_path) as tracer:
        sim = Simulation(graph, get_rule("flooding"), delay="uniform", seed=args.seed, tracer=tracer)
        print(f"AMP flooding on {graph.name} (n={graph.num_nodes}, m={graph.num_edges}), uniform (0,1] delays, seed {args.seed}")
        for _ in range(5):
            rec = sim.step()
            print(f"  t={rec.t_deliver:.3f}  message {rec.msg_id}: {rec.src} -> {rec.dst} ({rec.kind} {rec.payload})")
        print(f"  ... {len(sim.in_flight())} copies in flight, next delivery at t={sim.peek():.3f}")
        result = sim.run()
    print(f"ended: {result.reason} at t={result.time:.3f} after {result.total_deliveries} deliveries; "
          f"first-heard hop counts: {list(result.states)}")
    new = replay(trace_path, verify=True)
    print(f"replay of {trace_path}: {len(new.records)} records, identical")
    png = os.path.join(args.out, "demo_timeline.png")
    ax = plot_spacetime(load_trace(trace_path))
    ax.figure.savefig(png, dpi=110, bbox_inches="tight")
    print(f"space-time diagram: {png}")
    return 0


def _lazy(module: str):
    return importlib.import_module(module)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ampsim", description="Asynchronous Message Passing simulations on SimPy")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="simulate a rule on a graph, optionally writing a JSONL trace")
    p.add_argument("--graph", required=True, help="path:N, cycle:N, star:K, complete:N, grid:RxC, petersen, "
                   "random-regular:D:N:SEED, gnp:N:P:SEED, tree:N:SEED, or an edge-list file")
    p.add_argument("--rule", default="flooding", help="a registered rule (default: flooding)")
    p.add_argument("--delay", default="constant", choices=["constant", "uniform"])
    p.add_argument("--fifo", action="store_true", help="FIFO channels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", default="0", help="start node index, or 'all'")
    p.add_argument("--loss", type=float, default=0.0, help="probability that a message copy is lost")
    p.add_argument("--until", type=float, default=None, help="stop at this simulated time")
    p.add_argument("--max-deliveries", type=int, default=None, help="message budget (processed deliveries)")
    p.add_argument("--trace", default=None, help="write the trace here (JSONL; Parquet if it ends in .parquet)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="the main demo: simulate, trace, replay, plot")
    p.add_argument("--graph", default="petersen")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--out", default="demo_out", help="folder for the trace and the picture")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("replay", help="rerun a trace with its recorded delays")
    p.add_argument("trace")
    p.add_argument("--verify", action="store_true", help="fail at the first record that differs")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("plot", help="draw a trace's space-time diagram (-o x.html: interactive)")
    p.add_argument("trace")
    p.add_argument("-o", "--output", default="timeline.png")
    p.add_argument("--dpi", type=int, default=120)
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("export", help="convert a trace for other tools (ShiViz) or to another trace format")
    p.add_argument("trace")
    p.add_argument("--format", required=True, choices=["shiviz", "jsonl", "parquet"])
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", help="verify the paper's theory by execution")
    vsub = p.add_subparsers(dest="target", required=True)
    for name, module in VERIFY_TARGETS.items():
        vp = vsub.add_parser(name, help=f"verify the {name} protocol")
        try:
            mod = _lazy(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            vp.set_defaults(func=lambda a, m=module: _missing(m))
            continue
        mod.configure(vp)
        vp.set_defaults(func=mod.main)

    p = sub.add_parser("train", help="train a learned AMP model on a task")
    try:
        mod = _lazy(TRAIN_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != TRAIN_MODULE:
            raise
        p.set_defaults(func=lambda a: _missing(TRAIN_MODULE))
    else:
        mod.configure(p)
        p.set_defaults(func=mod.main)
    return parser


def _missing(module: str) -> int:
    print(f"ampsim: error: {module} is not available in this build", file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .engine.errors import AmpsimError, ReplayMismatch

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ReplayMismatch as exc:
        print(f"ampsim: replay mismatch: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except (AmpsimError, ValueError, OSError) as exc:
        print(f"ampsim: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
