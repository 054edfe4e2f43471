"""``ampsim verify synchronizer | ids | separation`` and ``ampsim ids stars | graphs``: the theory by execution.

``verify TARGET`` checks one statement of the paper case by case; its flags and its report
come from the target's module (``configure(parser)`` / ``main(args)``), imported only when it
is the target given. ``ids stars | graphs`` regenerates the measurements of ``results/ids``
(:func:`ampsim.protocols.verify_ids.measure_stars`, :func:`~ampsim.protocols.verify_ids.check_graphs`).
"""
from __future__ import annotations

import argparse
import importlib
import os
from typing import Sequence

from ..sweeps import add_max_cases, announce_cases, case_limit, check_folder
from .args import positive, processes

__all__ = ["configure", "VERIFY_TARGETS"]

# target -> (module implementing configure(parser) / main(args), one line of help); imported only when chosen
VERIFY_TARGETS = {
    "synchronizer": ("ampsim.protocols.verify_synchronizer",
                     "Theorem 4.1: the Table 1 synchronizer computes sGIN, checked case by case"),
    "ids": ("ampsim.protocols.verify_ids", "Lemma 4.2: unique IDs from random delays"),
    "separation": ("ampsim.theory.separation", "Theorem 4.4: random delays separate any pair of graphs"),
}


def _ks(text: str) -> range:
    """``--ks 1-12`` (or one k): a non-empty range of star sizes k >= 1."""
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range a-b of star sizes, got {text!r}") from None
    if a < 1 or b < a:
        raise argparse.ArgumentTypeError(f"expected a range a-b with 1 <= a <= b, got {text!r}")
    return range(a, b + 1)


def _stars(args: argparse.Namespace) -> int:
    from ..protocols.verify_ids import SECONDS_PER_RUN, existing_stars, measure_stars, plot_time_vs_k

    check_folder(args.out)  # an --out that is not a folder is refused before the plan; nothing is made
    existing_stars(args.ks, args.seeds, args.out, force=args.force)  # a file of other seeds: refused before the plan
    announce_cases(len(args.ks) * args.seeds, f"{len(args.ks)} star sizes x {args.seeds} seeds; sizes already "
                   f"measured under {args.out} are read back", args.workers, SECONDS_PER_RUN, case_limit(args))
    table = measure_stars(args.ks, args.seeds, args.out, args.workers, force=args.force)
    plot_time_vs_k(table, os.path.join(args.out, "time_vs_k.png"))
    for r in table["rows"]:
        print(f"k={r['k']:2d}  unique {r['unique']}/{r['runs']}  time mean {r['time_mean']:7.2f} "
              f"p95 {r['time_p95']:7.2f}  deliveries mean {r['deliveries_mean']:8.1f} "
              f"p95 {r['deliveries_p95']:6d}  k*6^k {r['bound_k6k']}")
    return 0 if all(r["unique"] == r["runs"] for r in table["rows"]) else 1


def _graphs(args: argparse.Namespace) -> int:
    from ..protocols.verify_ids import SECONDS_PER_RUN, check_graphs, fixed_graph_specs

    graphs = args.count + len(fixed_graph_specs())
    check_folder(args.out)
    announce_cases(graphs * args.seeds, f"{args.count} random + {graphs - args.count} fixed graphs x {args.seeds} "
                   "seeds", args.workers, SECONDS_PER_RUN, case_limit(args))
    table = check_graphs(args.out, args.count, args.seeds, args.workers)
    t = table["total"]
    print(f"{table['graphs']} graphs x {args.seeds} seeds: unique {t['unique']}/{t['runs']}, "
          f"time max {t['time_max']:.1f}, deliveries max {t['deliveries_max']}")
    return 0 if t["unique"] == t["runs"] else 1


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    """``verify``: one sub-parser per target, configured only for the target in ``words``; ``ids``."""
    if name == "verify":
        sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
        for target, (module, text) in VERIFY_TARGETS.items():
            p = sub.add_parser(target, help=text, description=text)
            if words and words[0] == target:
                mod = importlib.import_module(module)
                mod.configure(p)
                p.set_defaults(func=mod.main)
        return
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("stars", help="time to finish against k on stars (time_vs_k.json, .png)")
    p.add_argument("--ks", type=_ks, default=range(1, 13), help="range a-b (default 1-12)")
    p.add_argument("--seeds", type=positive, default=1000)
    p.add_argument("--force", action="store_true",
                   help="measure again a star size whose file under --out holds another --seeds (and replace it)")
    p.set_defaults(func=_stars)
    q = sub.add_parser("graphs", help="unique IDs on random connected graphs (graphs_check.json)")
    q.add_argument("--count", type=positive, default=200)
    q.add_argument("--seeds", type=positive, default=20)
    q.set_defaults(func=_graphs)
    for r in (p, q):
        r.add_argument("--out", default="runs/ids", help="default runs/ids (published: results/ids)")
        r.add_argument("--workers", type=processes, default=1)
        add_max_cases(r, "runs")
