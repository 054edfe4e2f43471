"""``ampsim run | demo | replay | plot | export``: simulate a graph, and read, draw and convert its trace.

* A run is bounded: at most ``--max-deliveries`` (default :func:`default_budget`:
  max(100,000, 20 · ``|E|``)) and a trace of at most ``--max-trace-mb`` (default 200); on a
  terminal a progress bar shows the deliveries.
* Imports are light (no torch): the simulation path is the start-up path.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .. import validate as V
from .args import checked, file_name, file_or_stdout, megabytes, nonneg, positive, positive_real, whole

__all__ = ["configure", "CLI_BUDGET", "CLI_BUDGET_PER_EDGE", "default_budget", "MAX_TRACE_MB"]

CLI_BUDGET = 100_000
CLI_BUDGET_PER_EDGE = 20
"""``ampsim run`` processes at most max(CLI_BUDGET, CLI_BUDGET_PER_EDGE · ``|E|``) deliveries unless
``--max-deliveries`` says otherwise: flooding needs 2|E| + 1, the synchronizer (2L - 1) · 2|E| + 1,
while a rule that never goes quiet (echo) stops after seconds, not minutes, and not gigabytes."""


def default_budget(num_edges: int) -> int:
    """The CLI's message budget for a graph with ``num_edges`` edges."""
    return max(CLI_BUDGET, CLI_BUDGET_PER_EDGE * num_edges)

MAX_TRACE_MB = 200.0
"""Default of ``--max-trace-mb``: a longer trace stops the run, and nothing is written."""

_start = checked(lambda t: t if t == "all" else int(t), lambda v: v if v == "all" else V.nonneg_int("start", v),
                 "a node index or 'all'", "a node index >= 0 or 'all'")


def _graph(spec: str, max_edges: Optional[int] = None):
    """``--graph``: a spec, or an edge-list file that must exist ("not found" otherwise); ``--max-edges``."""
    from ..engine.errors import EdgeListError, GraphError
    from ..graphs import DEFAULT_MAX_EDGES, GRAPH_SPECS, parse_graph_spec

    if spec.split(":", 1)[0].strip().lower() not in GRAPH_SPECS and not os.path.exists(spec):
        raise GraphError(f"--graph {spec}: unknown graph spec, and no edge-list file of that name (not found); "
                         f"specs: {', '.join(GRAPH_SPECS)} (e.g. cycle:8)")
    if os.path.isdir(spec):
        raise GraphError(f"--graph {spec}: is a folder, not an edge-list file")
    try:
        return parse_graph_spec(spec, max_edges=DEFAULT_MAX_EDGES if max_edges is None else max_edges)
    except EdgeListError as exc:  # it names the file; say which flag it came from
        raise EdgeListError(f"--graph {exc}") from None


# ------------------------------------------------------------------ progress (terminal only)
class _Progress:
    """A tqdm bar of processed deliveries on stderr, only when stderr is a terminal."""

    EVERY = 2048

    def __init__(self, total: Optional[int], enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=" deliveries", unit_scale=True, leave=False, file=sys.stderr,
                            mininterval=0.5)
        self._shown = 0

    @property
    def stop_when(self):
        if self.bar is None:
            return None

        def tick(sim) -> bool:
            n = sim.deliveries
            if n - self._shown >= self.EVERY:
                self.bar.update(n - self._shown)
                self._shown = n
            return False

        return tick

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ------------------------------------------------------------------ commands
def _cmd_run(args: argparse.Namespace) -> int:
    from ..engine.simulation import Simulation
    from ..protocols import get_rule
    from ..trace.columnar import open_tracer
    from ..trace.tracers import TraceLimitError

    graph = _graph(args.graph, args.max_edges)
    rule = get_rule(args.rule)
    budget = default_budget(graph.num_edges) if args.max_deliveries is None else args.max_deliveries
    max_bytes = int(args.max_trace_mb * 1e6) if args.trace and args.max_trace_mb > 0 else None
    # the suffix picks the format: .parquet columnar (ampsim.trace.columnar), else JSONL
    tracer = open_tracer(args.trace, max_bytes=max_bytes) if args.trace else None
    progress = _Progress(budget, enabled=not args.quiet)
    sim = None
    try:
        sim = Simulation(graph, rule, delay=args.delay, fifo=args.fifo, seed=args.seed, tracer=tracer,
                         start=args.start, loss=args.loss, allow_isolated=args.allow_isolated)
        result = sim.run(until=args.until, max_deliveries=budget, stop_when=progress.stop_when)
        if tracer is not None:
            tracer.close()
    except TraceLimitError as exc:
        where = f" after {sim.deliveries} deliveries at t={sim.now:.6g}" if sim is not None else ""
        raise TraceLimitError(f"{exc}{where}; raise --max-trace-mb (0: no limit) or bound the run with "
                              "--max-deliveries / --until") from None
    finally:
        progress.close()
        if tracer is not None:
            tracer.abort()  # no-op after close(); on every other path the partial trace is removed
    print(f"graph {graph.name} (n={graph.num_nodes}, m={graph.num_edges}), rule {args.rule}, "
          f"delay {args.delay}, fifo={args.fifo}, seed {args.seed}")
    reason = result.reason
    if reason == "message_budget" and args.max_deliveries is None:
        reason = (f"message_budget (the default budget of {budget} deliveries, max({CLI_BUDGET}, "
                  f"{CLI_BUDGET_PER_EDGE}*|E|); --max-deliveries N to change)")
    print(f"ended: {reason} at t={result.time:.6g} after {result.deliveries} deliveries "
          f"({result.sent} sent, {result.dropped} dropped, {result.in_flight} in flight)")
    if result.stuck:
        print(f"stuck nodes: {list(result.stuck)}")
    if args.trace:
        print(f"trace written to {args.trace}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from ..trace.replay import replay

    new = replay(args.trace, verify=args.verify, max_records=_records(args))
    n = len(new.deliveries)
    print(f"replayed {n} deliveries, {len(new.messages)} message records"
          + (": identical to the recorded trace" if args.verify else ""))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    if args.output.lower().endswith((".html", ".htm")):  # the interactive diagram (plotly), one self-contained file
        from ..viz.interactive import write_html

        from ..fileio import target_path
        from ..viz.interactive import plot_interactive

        target_path(args.output)  # a bad output path is refused before the figure is built
        fig = plot_interactive(_load(args), max_messages=args.max_messages)
        write_html(fig, args.output, max_mb=args.max_html_mb)
        meta = fig.layout.meta
        shown = (f" (showing {meta['drawn']:,} of {meta['messages']:,} messages, an evenly spaced sample; "
                 f"--max-messages 0 draws all)" if meta["drawn"] < meta["messages"] else "")
        print(f"interactive space-time diagram written to {args.output}{shown}")
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import save_figure
    from ..trace.io import load_trace
    from ..viz import plot_spacetime

    trace = _load(args)
    ax = plot_spacetime(trace)
    try:
        _check_pixels(ax.figure, args)
        path = save_figure(ax.figure, args.output, dpi=args.dpi, bbox_inches="tight")
    finally:
        plt.close(ax.figure)
    print(f"space-time diagram written to {path}")
    return 0


def _records(args: argparse.Namespace) -> Optional[int]:
    """``--max-records`` as :func:`ampsim.trace.io.load_trace` takes it (0: no limit)."""
    return args.max_records or None


def _load(args: argparse.Namespace):
    """The trace named on the command line, read within ``--max-records`` (checked before it is read)."""
    from ..trace.io import load_trace

    return load_trace(args.trace, max_records=_records(args))


MAX_MEGAPIXELS = 100.0
"""Default of ``plot --max-megapixels``: a static picture of at most this many million pixels (400 MB as RGBA
while drawn); the diagram is at most 11 x 14 inches, so 120 dpi is 2.2 megapixels."""


def _check_pixels(figure, args: argparse.Namespace) -> None:
    """Refuse, before drawing, a raster picture larger than ``--max-megapixels`` (``--dpi`` times the size)."""
    if args.max_megapixels <= 0 or os.path.splitext(args.output)[1].lower() in VECTOR_SUFFIXES:
        return
    from ..validate import fmt_bytes

    w, h = (float(x) * args.dpi for x in figure.get_size_inches())
    pixels = w * h
    if pixels > args.max_megapixels * 1e6:
        raise ValueError(f"--dpi {args.dpi} makes a {w:,.0f} x {h:,.0f} pixel picture ({pixels / 1e6:,.0f} "
                         f"megapixels, about {fmt_bytes(4 * pixels)} while drawn); the limit is "
                         f"{args.max_megapixels:g} megapixels: lower --dpi, or lift it with --max-megapixels "
                         f"{pixels / 1e6:.0f} (0: no limit)")


VECTOR_SUFFIXES = (".svg", ".svgz", ".pdf", ".eps", ".ps", ".pgf")


def _cmd_export(args: argparse.Namespace) -> int:
    """Convert a trace: ``shiviz`` (a file ShiViz's upload accepts as is), ``jsonl`` or ``parquet``."""
    from ..trace.export import export_trace

    if args.output == "-":  # standard output: the ShiViz log (text) only
        if args.format != "shiviz":
            raise ValueError(f"-o -: a {args.format} trace cannot go to standard output; name a file")
        from ..trace.causality import shiviz_file

        sys.stdout.write(shiviz_file(_load(args)))
        return 0
    info = export_trace(_load(args), args.output, args.format)
    print(f"{info} written to {args.output}")
    return 0


DEMO_STEPS = 5
MAX_MESSAGES = 1500  # ampsim.viz.interactive.MAX_MESSAGES (not imported here: plotly loads only when drawing)
MAX_HTML_MB = 20.0  # ampsim.viz.interactive.MAX_HTML_MB
PLOT_HELP = ("draw a trace's space-time diagram (one lane per node against simulation time); the output's suffix "
             "picks the kind: .html gives the interactive diagram, any matplotlib picture suffix a static one")


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main demo: flood a graph (Petersen) with uniform delays, trace, replay-verify, plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..engine.simulation import Simulation
    from ..fileio import save_figure
    from ..protocols import get_rule
    from ..trace.io import load_trace
    from ..trace.replay import replay
    from ..trace.tracers import JSONLTracer
    from ..viz import plot_spacetime

    graph = _graph(args.graph)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise NotADirectoryError(f"--out {args.out}: is a file, not a folder")
    os.makedirs(args.out, exist_ok=True)
    trace_path = os.path.join(args.out, "demo.jsonl")
    with JSONLTracer(trace_path) as tracer:
        sim = Simulation(graph, get_rule("flooding"), delay="uniform", seed=args.seed, tracer=tracer)
        print(f"AMP flooding on {graph.name} (n={graph.num_nodes}, m={graph.num_edges}), uniform (0,1] delays, "
              f"seed {args.seed}")
        for _ in range(DEMO_STEPS):
            rec = sim.step()
            if rec is None:
                print(f"  (the run went quiet after {sim.deliveries} deliveries)")
                break
            print(f"  t={rec.t_deliver:.3f}  message {rec.msg_id}: {rec.src} -> {rec.dst} ({rec.kind} {rec.payload})")
        else:
            nxt = sim.peek()
            if nxt != float("inf"):
                print(f"  ... {len(sim.in_flight())} copies in flight, next delivery at t={nxt:.3f}")
        result = sim.run()
    print(f"ended: {result.reason} at t={result.time:.3f} after {result.total_deliveries} deliveries; "
          f"first-heard hop counts: {list(result.states)}")
    new = replay(trace_path, verify=True)
    print(f"replay of {trace_path}: {len(new.records)} records, identical")
    ax = plot_spacetime(load_trace(trace_path))
    try:
        png = save_figure(ax.figure, os.path.join(args.out, "demo_timeline.png"), dpi=110, bbox_inches="tight")
    finally:
        plt.close(ax.figure)
    print(f"space-time diagram: {png}")
    return 0




# ------------------------------------------------------------------ flags
def _add_max_records(p: argparse.ArgumentParser) -> None:
    from ..trace.io import BYTES_PER_RECORD, DEFAULT_MAX_RECORDS  # light: no torch, no plotting

    p.add_argument("--max-records", type=nonneg, default=DEFAULT_MAX_RECORDS,
                   help=f"refuse, before reading, a trace of more records than this (default {DEFAULT_MAX_RECORDS:,}"
                        f", ampsim.trace.io.DEFAULT_MAX_RECORDS, about {DEFAULT_MAX_RECORDS * BYTES_PER_RECORD / 1e9:.0f}"
                        " GB loaded; 0: no limit)")


def configure(name: str, p: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    """The flags of ``ampsim run | demo | replay | plot | export``."""
    if name == "run":
        p.add_argument("--graph", required=True, help="path:N, cycle:N, star:K, complete:N, grid:RxC, petersen, "
                       "random-regular:D:N:SEED, gnp:N:P:SEED, tree:N:SEED, or an edge-list file")
        p.add_argument("--rule", default="flooding", help="a registered rule (default: flooding)")
        p.add_argument("--delay", default="constant", choices=["constant", "uniform"])
        p.add_argument("--fifo", action="store_true", help="FIFO channels")
        p.add_argument("--seed", type=whole(), default=0)
        p.add_argument("--start", type=_start, default=0, help="start node index, or 'all'")
        p.add_argument("--loss", type=float, default=0.0, help="probability that a message copy is lost")
        p.add_argument("--until", type=positive_real, default=None, help="stop at this simulated time")
        p.add_argument("--max-deliveries", type=positive, default=None,
                       help=f"message budget: processed deliveries (default max({CLI_BUDGET:,}, "
                            f"{CLI_BUDGET_PER_EDGE}*|E|))")
        p.add_argument("--allow-isolated", action="store_true",
                       help="simulate although some nodes have no neighbours")
        from ..graphs import DEFAULT_MAX_EDGES

        p.add_argument("--max-edges", type=int, default=None,
                       help=f"refuse graphs with more edges than this (default {DEFAULT_MAX_EDGES:,}, about 2 GB; "
                            "estimated before building)")
        p.add_argument("--trace", type=file_name, default=None,
                       help="write the trace to this file (JSONL; Parquet if it ends in .parquet)")
        p.add_argument("--max-trace-mb", type=megabytes, default=MAX_TRACE_MB,
                       help=f"stop the run (writing nothing) if the trace would exceed this size "
                            f"(default {MAX_TRACE_MB:g}; 0: no limit)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=_cmd_run)
    elif name == "demo":
        p.add_argument("--graph", default="petersen")
        p.add_argument("--seed", type=whole(), default=3)
        p.add_argument("--out", type=file_name, default="demo_out", help="folder for the trace and the picture")
        p.set_defaults(func=_cmd_demo)
    elif name == "replay":
        p.add_argument("trace")
        _add_max_records(p)
        p.add_argument("--verify", action="store_true", help="fail at the first record that differs")
        p.set_defaults(func=_cmd_replay)
    elif name == "plot":
        p.add_argument("trace", help="a trace file (JSONL, or Parquet by its suffix)")
        p.description = PLOT_HELP
        p.add_argument("-o", "--output", type=file_name, default="timeline.png",
                       help="the file to write; its suffix picks what it holds (default: timeline.png): "
                            ".html or .htm: the interactive diagram (plotly: zoom, hover, a slider and Play through "
                            "the deliveries; one self-contained file that opens offline); .png, .jpg, .jpeg, .webp, "
                            ".tif, .tiff: a static raster picture (--dpi); .svg, .svgz, .pdf, .eps, .ps, .pgf: a "
                            "static vector picture")
        p.add_argument("--dpi", type=positive, default=120, help="dots per inch of a raster picture (default 120)")
        p.add_argument("--max-megapixels", type=megabytes, default=MAX_MEGAPIXELS,
                       help=f"refuse, before drawing, a raster picture of more million pixels than this (--dpi "
                            f"times the diagram's size; default {MAX_MEGAPIXELS:g}; 0: no limit)")
        _add_max_records(p)
        p.add_argument("--max-messages", type=nonneg, default=MAX_MESSAGES,
                       help=f".html only: draw an evenly spaced sample of this many messages when the trace has more "
                            f"(the page says so; default {MAX_MESSAGES:,}, which renders in a few seconds; 0: all)")
        p.add_argument("--max-html-mb", type=megabytes, default=MAX_HTML_MB,
                       help=f".html only: refuse, before writing, a page larger than this (default {MAX_HTML_MB:g}; "
                            f"0: no limit)")
        p.set_defaults(func=_cmd_plot)
    elif name == "export":
        p.add_argument("trace")
        p.add_argument("--format", required=True, choices=["shiviz", "jsonl", "parquet"])
        _add_max_records(p)
        p.add_argument("-o", "--output", required=True, type=file_or_stdout,
                       help="the file to write (atomically); - writes the ShiViz log to standard output")
        p.set_defaults(func=_cmd_export)
