"""``ampsim verify synchronizer``: Theorem 4.1 checked by execution, case by case, against sGIN.

A case is (graph, L, seed, delay model, FIFO). The seed draws the node features
(U(-1, 1)^d, stream ``features/<graph>``), the start node (stream ``start/<graph>``),
the sGIN weights (:meth:`SGIN.random`) and the delays (the simulation's own
``delays`` stream). With constant delays channels are FIFO by construction, so a
constant case is run once (``fifo`` recorded as true). The run starts with the
origin message to the start node. Each case ends as exactly one of

=============  =====================================================================
``pass``       every node finished L layers and its final state equals sGIN's
               (``|got - expected| <= 1e-6 · max(1, |expected|)`` per entry)
``wrong``      every node finished, some final state differs
``deadlock``   the run went quiet before every node finished L layers (the
               engine's ``stalled``; the stuck nodes are named)
``budget``     the message budget ran out first: 20 · L · ``|E|`` + 2n processed
               deliveries, 5x what the corrected synchronizer can need
               ((2L - 1) · 2|E| + 1)
=============  =====================================================================

For a failure the *first divergence* is the first layer value, in delivery order,
that differs from sGIN (node, pulse = layer, expected, got, and for Table 1 the row
that fired), or else the stuck node with the fewest layers done. The smallest
failing case (fewest nodes, edges, layers, deliveries) is rerun with a JSONL tracer
and saved with a ``.case.json`` that :func:`replay_case` turns back into the run.

For the corrected synchronizer every delivery of every case is also fed to the
3-layer ReLU network of :mod:`ampsim.protocols.relu_net`, which must reproduce the
rule's new state and emission (integers exactly, reals to 1e-9).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from dataclasses import asdict
from typing import Sequence

from ..fileio import save_figure, write_text
from .. import validate as V
from ..sweeps import (MAX_WORKERS, add_executor_arguments, add_max_cases, announce_cases, case_limit, check_folder,
                      dask_workers, executor_from_args)
from .sgin import SGIN
from .sync_cases import (DEFAULT_DIM, DEFAULT_GRAPHS, DEFAULT_LAYERS, MAX_REDRAWS, RULES, Case, CaseResult,
                         Divergence, Execution, budget_for, build_simulation, case_inputs, degeneracy, make_cases,
                         reference_quality, run_case, sweep)
from .synchronizer import ORIGIN
from .table1_causes import CAUSES, literal_causes, synchronizer_events
from .table1_flaws import ALL_FLAWS, FLAWS, Table1Flawed, parse_flaws
from .table1_counterexamples import (COUNTEREXAMPLES, EARLY_PULSE_RUN, Counterexample, Scripted,
                                     run_counterexample, search_counterexamples)

__all__ = [
    "DEFAULT_GRAPHS",
    "DEFAULT_LAYERS",
    "Case",
    "CaseResult",
    "Divergence",
    "make_cases",
    "run_case",
    "sweep",
    "summarize",
    "format_summary",
    "save_failure",
    "replay_case",
    "plot_messages_per_layer",
    "budget_for",
    "CAUSES",
    "COUNTEREXAMPLES",
    "Counterexample",
    "EARLY_PULSE_RUN",
    "Execution",
    "Scripted",
    "run_counterexample",
    "search_counterexamples",
    "literal_causes",
    "synchronizer_events",
    "degeneracy",
    "reference_quality",
    "MAX_REDRAWS",
    "configure",
    "main",
]


def _setting(case: Case) -> str:
    return f"{case.delay}{'/fifo' if case.fifo and case.delay != 'constant' else ''}"


def summarize(results: Sequence[CaseResult]) -> dict:
    """Counts overall, per graph and per (delay, FIFO); message counts per (graph, L, setting)."""
    outcomes = ("pass", "wrong", "deadlock", "budget")

    def counts(rs: Sequence[CaseResult]) -> dict:
        c = Counter(r.outcome for r in rs)
        return {"cases": len(rs), **{o: c.get(o, 0) for o in outcomes}}

    by_graph: dict[str, list] = {}
    by_setting: dict[str, list] = {}
    by_layers: dict[int, list] = {}
    msgs: dict[tuple, list] = {}
    for r in results:
        by_graph.setdefault(r.case.graph, []).append(r)
        by_setting.setdefault(_setting(r.case), []).append(r)
        by_layers.setdefault(r.case.layers, []).append(r)
        msgs.setdefault((r.case.graph, r.case.layers, _setting(r.case)), []).append(r)
    failures = [r for r in results if r.failed]
    relu_steps = sum(r.relu_steps for r in results)
    return {
        "total": counts(results),
        "passed": sum(1 for r in results if not r.failed),
        "by_graph": {k: {"n": v[0].n, "m": v[0].m, **counts(v)} for k, v in by_graph.items()},
        "by_setting": {k: counts(v) for k, v in by_setting.items()},
        "by_layers": {str(k): counts(v) for k, v in sorted(by_layers.items())},
        "divergence_rows": dict(Counter(r.divergence.row or "none" for r in failures if r.divergence)),
        "messages": [
            {"graph": g, "layers": L, "setting": s, "n": v[0].n, "m": v[0].m, "cases": len(v),
             "deliveries_mean": sum(r.deliveries for r in v) / len(v),
             "deliveries_min": min(r.deliveries for r in v), "deliveries_max": max(r.deliveries for r in v),
             "passed": sum(1 for r in v if not r.failed)}
            for (g, L, s), v in msgs.items()
        ],
        "reference": {
            "non_degenerate": sum(1 for r in results if r.degenerate is None),
            "degenerate": sum(1 for r in results if r.degenerate is not None),
            "redrawn": sum(1 for r in results if r.redraws),
            "redraws": sum(r.redraws for r in results),
            "rule": "sGIN weights redrawn while h^(L) is all zeros or identical at every node",
        },
        "literal_causes": _cause_summary(results),
        "synchronizer_events": {k: sum(dict(r.events).get(k, 0) for r in results) for k in ("early_pulse", "pulse_safe")},
        "relu": {"steps": relu_steps, "mismatches": sum(r.relu_mismatches for r in results),
                 "max_rel_error": max((r.relu_max_error for r in results), default=0.0)},
        "failures": [_failure_dict(r) for r in sorted(failures, key=_size_key)[:50]],
    }


def _cause_summary(results: Sequence[CaseResult]) -> dict:
    """For Table 1 runs: failing cases by their first cause after row 2's, cases each cause occurs in."""
    lit = [r for r in results if r.case.rule == "table1-literal"]
    if not lit:
        return {}
    first: Counter = Counter()
    present: Counter = Counter()
    for r in lit:
        for c in r.causes:
            present[c] += 1
        if r.failed:
            later = [c for c in r.causes if c != "origin-keeps-state"]
            first[later[0] if later else (r.causes[0] if r.causes else "unexplained")] += 1
    return {
        "failing_by_first_cause": dict(first.most_common()),
        "cases_with_cause": dict(present.most_common()),
        "unexplained_failures": first.get("unexplained", 0),
        "passes": sum(1 for r in lit if not r.failed),
        "passes_with_causes": sum(1 for r in lit if not r.failed and r.causes),
    }


def _size_key(r: CaseResult) -> tuple:
    c = r.case
    return (r.n, r.m, c.layers, r.deliveries, c.seed, c.delay, c.fifo, c.graph)


def _failure_dict(r: CaseResult) -> dict:
    return {"case": asdict(r.case), "outcome": r.outcome, "stuck": list(r.stuck), "start": r.start, "causes": list(r.causes),
            "deliveries": r.deliveries, "relu_mismatches": r.relu_mismatches,
            "divergence": r.divergence.describe() if r.divergence else None}


def format_summary(summary: dict, results: Sequence[CaseResult]) -> str:
    """The table printed by the CLI; the last line is ``passed P/N``."""
    head = f"{'graph':<24}{'n':>4}{'m':>5}{'cases':>7}{'passed':>8}{'wrong':>7}{'deadlock':>10}{'budget':>8}"
    lines = [head, "-" * len(head)]
    for g, c in summary["by_graph"].items():
        lines.append(f"{g:<24}{c['n']:>4}{c['m']:>5}{c['cases']:>7}{c['pass']:>8}{c['wrong']:>7}"
                     f"{c['deadlock']:>10}{c['budget']:>8}")
    lines.append("-" * len(head))
    for s, c in summary["by_setting"].items():
        lines.append(f"{'delay ' + s:<33}{c['cases']:>7}{c['pass']:>8}{c['wrong']:>7}{c['deadlock']:>10}{c['budget']:>8}")
    for L, c in summary["by_layers"].items():
        lines.append(f"{'L=' + L:<33}{c['cases']:>7}{c['pass']:>8}{c['wrong']:>7}{c['deadlock']:>10}{c['budget']:>8}")
    t = summary["total"]
    lines.append(f"{'total':<33}{t['cases']:>7}{t['pass']:>8}{t['wrong']:>7}{t['deadlock']:>10}{t['budget']:>8}")
    ref = summary["reference"]
    lines.append(f"sGIN reference non-degenerate in {ref['non_degenerate']}/{t['cases']} cases "
                 f"({ref['redrawn']} needed redrawn weights, {ref['redraws']} redraws in all; "
                 f"{ref['degenerate']} still degenerate)")
    relu = summary["relu"]
    if relu["steps"]:
        lines.append(f"ReLU network (3 affine layers) vs rule: {relu['steps']} steps, {relu['mismatches']} mismatches, "
                     f"max relative error {relu['max_rel_error']:.2e}")
    causes = summary.get("literal_causes") or {}
    if causes.get("failing_by_first_cause"):
        lines.append("failing cases by first cause (after row 2's, which every run with a non-zero origin state has):")
        for c, k in causes["failing_by_first_cause"].items():
            lines.append(f"  {k:>6}  {c}: {CAUSES.get(c) or FLAWS.get(c, 'no row misbehaved')}")
        occurs = ", ".join(f"{c} {k}" for c, k in causes["cases_with_cause"].items())
        lines.append(f"cases in which each cause occurs: {occurs}")
    failures = sorted((r for r in results if r.failed), key=_size_key)
    if failures:
        r = failures[0]
        lines.append(f"smallest failure: {r.case.label()} (start node {r.start}): {r.outcome}"
                     + (f", stuck {list(r.stuck)[:10]}" if r.stuck else ""))
        if r.divergence:
            lines.append(f"  first divergence: {r.divergence.describe()}")
        if r.relu_mismatches:
            lines.append(f"  ReLU network differs from the rule on {r.relu_mismatches} of {r.relu_steps} steps")
    lines.append(f"passed {summary['passed']}/{t['cases']}")
    return "\n".join(lines)


# ------------------------------------------------------------------ traces of failures
def save_failure(result: CaseResult, out_dir: str, stem: str) -> tuple[str, str]:
    """Rerun a case with a JSONL tracer; write ``<stem>.jsonl`` and ``<stem>.case.json``; return both paths."""
    from ..trace.tracers import JSONLTracer

    os.makedirs(out_dir, exist_ok=True)
    trace_path = os.path.join(out_dir, f"{stem}.jsonl")
    case_path = os.path.join(out_dir, f"{stem}.case.json")
    with JSONLTracer(trace_path, states=True) as tracer:
        sim, _, _ = build_simulation(result.case, tracer=tracer, wrap=False)
        sim.run()
    _, features, start, model = case_inputs(result.case)
    doc = {
        "case": asdict(result.case),
        "outcome": result.outcome,
        "start": start,
        "stuck": list(result.stuck),
        "first_divergence": result.divergence.describe() if result.divergence else None,
        "trace": os.path.basename(trace_path),
        "features": features,
        "model": model.to_dict(),
        "replay": "ampsim.protocols.verify_synchronizer.replay_case(<this file>)",
    }
    write_text(case_path, json.dumps(doc, indent=1))
    return trace_path, case_path


def replay_case(case_path: str, verify: bool = True):
    """Replay a saved failing case (its trace and features); raises ReplayMismatch if it differs."""
    from ..trace.io import load_trace
    from ..trace.replay import replay

    with open(case_path, encoding="utf-8") as f:
        doc = json.load(f)
    trace = load_trace(os.path.join(os.path.dirname(case_path), doc["trace"]))
    flaws = doc["case"].get("flaws")
    model = SGIN.from_dict(doc["model"])
    rule = RULES[doc["case"]["rule"]](model) if flaws is None else Table1Flawed(model, flaws=flaws)
    return replay(trace, rule, verify=verify, start_message=ORIGIN, features=doc["features"])


# ------------------------------------------------------------------ messages per layer
def plot_messages_per_layer(summary: dict, path: str) -> None:
    """Deliveries per simulated layer against 2|E| (one pulse wave), per graph, L and delay setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["messages"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4))
    markers = {"constant": "o", "uniform": "^", "uniform/fifo": "s"}
    colors = {1: "tab:blue", 2: "tab:orange", 3: "tab:green", 5: "tab:red"}
    for r in rows:
        per_layer = (r["deliveries_mean"] - 1) / r["layers"]
        x = 2 * r["m"]
        c = colors.get(r["layers"], "tab:gray")
        ax1.scatter(x, per_layer, marker=markers.get(r["setting"], "x"), color=c, s=18, alpha=0.8)
        ax2.scatter(x, per_layer / x, marker=markers.get(r["setting"], "x"), color=c, s=18, alpha=0.8)
    xs = sorted({2 * r["m"] for r in rows})
    if xs:
        ax1.plot(xs, xs, "k--", lw=1, label="2|E| (one pulse wave)")
        ax1.plot(xs, [2 * x for x in xs], "k:", lw=1, label="4|E| (pulse + safe)")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("2|E|")
    ax1.set_ylabel("deliveries per simulated layer")
    ax1.legend(fontsize=8)
    for L, c in colors.items():
        ax2.axhline(2 - 1 / L, color=c, lw=0.8, ls=":")
    ax2.axhline(1.0, color="k", lw=1, ls="--")
    ax2.set_xscale("log")
    ax2.set_xlabel("2|E|")
    ax2.set_ylabel("deliveries per layer / 2|E|")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=f"L={L} (dotted: 2-1/L)") for L, c in colors.items()]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=s) for s, m in markers.items()]
    ax2.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Corrected synchronizer: messages per simulated sGIN layer (mean over seeds)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------ CLI
SECONDS_PER_CASE = (0.05, 0.5)
"""One case's time on one core, low and high: 0.07 s (the literal rule's 1,200 cases in 82 s) to 0.36 s
(the corrected synchronizer's 12,000 cases in 4,272 s, one worker; L = 5 and larger graphs take longer)."""



def configure(parser: argparse.ArgumentParser) -> None:
    """Flags of ``ampsim verify synchronizer``."""
    parser.add_argument("--seeds", type=_whole(1), default=50, help="seeds per (graph, L, delay setting) (default 50)")
    parser.add_argument("--table1-literal", action="store_true", help="verify Table 1 exactly as printed")
    parser.add_argument("--flaw", type=_flaw_list, default=None, metavar="F[,F...]",
                        help="with --table1-literal: keep only these of Table 1's flaws F1..F6 and correct the "
                             "others ('none': all corrected, 'all': as printed); docs/synchronizer.md, section 3a")
    parser.add_argument("--graph", action="append", default=None, metavar="SPEC",
                        help="graph spec (repeatable; default: the 20-graph sweep)")
    parser.add_argument("--layers", action="append", type=_whole(1, MAX_LAYERS), default=None, metavar="L",
                        help="sGIN layers (repeatable; default 1 2 3 5)")
    parser.add_argument("--delay", action="append", choices=["constant", "uniform"], default=None,
                        help="delay models (repeatable; default both; uniform runs with FIFO off and on)")
    parser.add_argument("--aggregation", choices=["sum", "mean", "gcn"], default="sum")
    parser.add_argument("--dim", type=_whole(1, MAX_DIM), default=DEFAULT_DIM,
                        help=f"sGIN dimension d (default {DEFAULT_DIM}; at most {MAX_DIM})")
    parser.add_argument("--loss", type=_loss, default=0.0, help="probability that a message copy is lost")
    parser.add_argument("--workers", type=_whole(1, MAX_WORKERS), default=1,
                        help="processes (default 1; results are identical)")
    add_max_cases(parser)
    parser.add_argument("--no-relu", action="store_true", help="skip the ReLU-network check")
    add_executor_arguments(parser)  # --dask ADDRESS (ampsim.sweeps)
    parser.add_argument("--out", default=os.path.join("runs", "synchronizer"),
                        help="where the summary JSON and the smallest failing trace go (default runs/synchronizer; "
                             "the published summary: --out results/synchronizer)")
    parser.add_argument("--plot", action="store_true", help="also draw the messages-per-layer plot into --out")


MAX_LAYERS = 64
"""``--layers`` at most this (the sweep: 1-5): a case's messages grow as (2L - 1) · 2|E|."""
MAX_DIM = 4096
"""``--dim`` at most this (default 8): the sGIN's weights are d x d per layer, its states n x d."""


def _whole(lo: int, hi: "int | None" = None):
    """An argparse ``type``: a whole number in ``[lo, hi]`` (one usage line naming the flag otherwise)."""
    rng = f">= {lo}" if hi is None else f"in {lo}..{hi:,}"
    return V.whole_flag(lo, hi, range_what=f"a whole number {rng}")


_loss = V.flag_type(float, lambda v: V.probability("--loss", v, allow_one=False), "a probability in [0, 1)")
"""``--loss``: a probability in [0, 1)."""


def _flaw_list(text: str) -> tuple:
    """``--flaw F3`` / ``--flaw F1,F5``: the flaws kept (:func:`~.table1_flaws.parse_flaws`); one line otherwise."""
    try:
        return parse_flaws(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(args: argparse.Namespace) -> int:
    """Run the sweep, print the table, save summary and smallest failure; exit 1 if any case fails."""
    rule = "table1-literal" if args.table1_literal else "synchronizer"
    flaws = getattr(args, "flaw", None)
    if flaws is not None and not args.table1_literal:
        raise ValueError("--flaw selects flaws of Table 1: it needs --table1-literal")
    graphs, layers = args.graph or DEFAULT_GRAPHS, args.layers or DEFAULT_LAYERS
    delays = args.delay or ("constant", "uniform")
    settings = sum(2 if d == "uniform" else 1 for d in delays)  # uniform runs with and without FIFO channels
    make = dict(graphs=graphs, layers=layers, rule=rule, delays=delays, aggregation=args.aggregation, dim=args.dim,
                loss=args.loss, flaws=flaws)
    make_cases(seeds=1, **make)  # every graph spec and setting checked before the plan is stated
    check_folder(args.out)  # an --out that is not a folder is refused before the plan, and nothing is made
    announce_cases(len(graphs) * len(layers) * settings * args.seeds,
                   f"{len(graphs)} graphs x {len(layers)} L x {settings} delay settings x {args.seeds} seeds",
                   args.workers, SECONDS_PER_CASE, case_limit(args))
    cases = make_cases(seeds=args.seeds, **make)
    t0 = time.perf_counter()
    with executor_from_args(args) as executor:  # None unless --dask
        on_dask = dask_workers(executor) if executor is not None else None  # the scheduler's real workers
        results = sweep(cases, workers=args.workers, relu=not args.no_relu, executor=executor)
    workers = on_dask[0] if on_dask else args.workers
    wall = time.perf_counter() - t0
    summary = summarize(results)
    summary["args"] = {k: v for k, v in vars(args).items() if k not in ("func", "command", "target")}
    summary["rule"] = rule
    summary["flaws"] = None if flaws is None else list(flaws)
    summary["wall_s"] = round(wall, 2)
    summary["workers"] = workers
    summary["budget"] = "20 * L * |E| + 2 * n processed deliveries"
    stem = rule.replace("-", "_") + ("" if flaws is None else "_flaws_" + ("_".join(flaws) or "none"))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        failures = sorted((r for r in results if r.failed), key=_size_key)
        if failures:
            trace_path, case_path = save_failure(failures[0], args.out, f"{stem}_smallest_failure")
            summary["smallest_failure"] = {"trace": trace_path, "case": case_path}
        path = os.path.join(args.out, f"{stem}_summary.json")
        write_text(path, json.dumps(summary, indent=1))
        if args.plot:
            plot_messages_per_layer(summary, os.path.join(args.out, "messages_per_layer.png"))
    label = rule if flaws is None else f"{rule} with only {', '.join(flaws) or 'no flaw'}"
    print(f"{label}: {len(cases)} cases in {wall:.1f} s ({workers} {'Dask ' if on_dask else ''}"
          f"worker{'s' if workers != 1 else ''})")
    text = format_summary(summary, results)
    if args.out and "smallest_failure" in summary:
        head, last = text.rsplit("\n", 1)
        text = f"{head}\n  trace saved: {summary['smallest_failure']['trace']}\n{last}"
    print(text)
    return 0 if summary["passed"] == len(results) else 1
