"""``ampsim nodes run | render``: node classification on Cora and CiteSeer, AMP models, a GCN and a GAT.

``run`` trains every (data set, model, delay, seed) without a finished result file
(:func:`ampsim.train.node_classification.train_seed`: a finished seed is skipped, a stopped
one resumes from its checkpoint), then writes the summary; ``render`` only writes the
summary (``--json``, ``--md``) from the result files under ``--out`` (a folder or its pack).

    ampsim nodes run --models GCN GAT --seeds 0-9
    ampsim nodes run --models AMP-GRU AMP-ACT --delays constant uniform --seeds 0-9
    ampsim nodes run --models AMP-Mean AMP-Att --delays constant uniform --seeds 0-9
    ampsim nodes render --out results/node_classification_runs.jsonl.gz --json results/node_classification.json \
        --md results/node_classification.md --robustness results/delay_robustness

A new flag is one ``add_argument`` in :func:`configure_run` and, when it is a setting of the
model, one keyword in :func:`configs` (a per-model default goes into ``DEFAULTS``).
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .. import runpack
from .. import validate as V
from ..train.loop import training_process
from ..cells.aggregate import NORMS
from ..train.node_classification import (AMP_BUDGET, BASELINES, DATASETS, DEFAULT_RUNS, DEFAULTS, DELAYS, MODELS,
                                         READOUTS, WAVE_MODELS, NodeConfig, NodeTask, finished_seed, load_node_task,
                                         train_seed, write_summary)
from .args import MAX_WIDTH, add_threads, announce_runs, output_folder, checked, index_list, learning_rate, positive, width

__all__ = ["configure", "configure_run", "configs"]

MAX_SEEDS = 1000
SECONDS_PER_EPOCH = (0.01, 1.0)
"""One core's seconds per epoch of one seed on Cora / CiteSeer: a GCN to an AMP model."""
_width = width  # --hidden, --msg-size, --heads: at most MAX_WIDTH (the protocols: 8-16)
_budget = checked(float, lambda v: V.positive_float("value", v), "a number", "a finite number > 0")
_rate = checked(float, lambda v: V.probability("value", v, allow_one=False), "a number", "a number in [0, 1)")
_decay = checked(float, lambda v: V.nonneg_float("value", v), "a number", "a finite number >= 0")
#: the per-model settings (``DEFAULTS``): flag type
_SETTINGS = {"epochs": positive, "hidden": _width, "lr": learning_rate, "dropout": _rate}


def configs(args: argparse.Namespace) -> list[NodeConfig]:
    """One :class:`NodeConfig` per (data set, model, delay, seed); a flag left out takes the model's ``DEFAULTS``."""
    out = []
    for dataset in args.datasets:
        for model in args.models:
            defaults = DEFAULTS.get(model, DEFAULTS["AMP"])
            given = {k: getattr(args, k, None) for k in defaults}
            settings = {k: defaults[k] if v is None else v for k, v in given.items()}
            features = getattr(args, "amp_features", None) or ("normalized" if model in WAVE_MODELS else "binary")
            for delay in (["constant"] if model in BASELINES else args.delays):
                for seed in args.seeds:
                    out.append(NodeConfig(dataset, model, delay, seed, msg_size=args.msg_size,
                                          budget_factor=args.budget_factor, readout=args.readout, embed=args.embed,
                                          weight_decay=args.weight_decay, heads=getattr(args, "heads", 8),
                                          waves=getattr(args, "waves", 2), norm=getattr(args, "norm", "sym"),
                                          normalize=model in BASELINES or features == "normalized",
                                          **settings))
    return out


def _run(args: argparse.Namespace) -> int:
    if not args.summarize:
        if runpack.is_pack(args.out):
            raise ValueError(f"--out {args.out}: a pack is read, not trained into; train into a folder and pack it "
                             "with ampsim runs pack")
        output_folder(args.out, create=False)
        training_process(args.threads)
        planned = configs(args)
        todo = [c for c in planned if finished_seed(c, args.out) is None]  # another configuration's: refused here
        epochs = max(c.epochs for c in todo) if todo else 0
        announce_runs(len(todo), f"{len(args.datasets)} data sets x {len(args.models)} models x delays x "
                      f"{len(args.seeds)} seeds, {len(planned) - len(todo):,} of the {len(planned):,} already "
                      f"finished under {args.out}", 1, epochs, SECONDS_PER_EPOCH)
        tasks: dict[tuple, NodeTask] = {}
        for config in todo:  # every data file read before anything is written
            key = (config.dataset, config.normalize)
            if key not in tasks:
                tasks[key] = load_node_task(config.dataset, normalize=config.normalize)
        output_folder(args.out)
        for config in todo:
            key = (config.dataset, config.normalize)
            r = train_seed(config, args.out, task=tasks[key], log=lambda s: print(s, flush=True))
            print(f"{config.dataset} {config.key} seed {config.seed}: test {100 * r['test_acc']:.1f} "
                  f"(val {100 * r['val_acc']:.1f}, epoch {r['best_epoch']}, {r['seconds']:.0f}s)", flush=True)
    return _render(args)


def _render(args: argparse.Namespace) -> int:
    summary = write_summary(args.out, args.json, args.md, args.robustness)
    for dataset, rows in summary.items():
        for key, row in rows.items():
            print(f"{dataset:9s} {key:18s} {row['mean']:5.1f} ± {row['std']:4.1f}  ({row['seeds']} seeds)")
    return 0


def _summary_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", default=DEFAULT_RUNS, help=f"folder of the per-seed result files{what}")
    p.add_argument("--json", default="runs/node_classification.json",
                   help="the summary table (default under runs/, ignored by git; the published one: "
                        "results/node_classification.json)")
    p.add_argument("--md", default="runs/node_classification.md")
    p.add_argument("--robustness", default="runs/delay_robustness", metavar="STEM",
                   help="STEM.json and STEM.md: the delay-robustness table of the AMP runs that have one "
                        "(written when some run has)")


def configure_run(p: argparse.ArgumentParser) -> None:
    """The flags of ``ampsim nodes run`` (and of its alias ``python -m ampsim.train.node_classification``)."""
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--models", nargs="+", default=["GCN"], choices=MODELS)
    p.add_argument("--delays", nargs="+", default=["constant"], choices=DELAYS,
                   help="delay models for the AMP models (the GCN and GAT ignore this)")
    p.add_argument("--seeds", type=index_list("seeds", limit=MAX_SEEDS), default=list(range(10)),
                   help="e.g. 0-9 or 0,3")
    for name, kind in _SETTINGS.items():
        p.add_argument(f"--{name}", type=kind, default=None, help="default per model: " + ", ".join(
            f"{model} {d[name]}" for model, d in DEFAULTS.items()))
    p.add_argument("--heads", type=_width, default=8, help="GAT and AMP-Att attention heads (default 8)")
    p.add_argument("--waves", type=_width, default=2, help="AMP-Mean, AMP-Att: waves = GNN layers (default 2)")
    p.add_argument("--norm", choices=NORMS, default="sym",
                   help="AMP-Mean: sym (GCN's D^-1/2 (A+I) D^-1/2, default) or mean")
    p.add_argument("--msg-size", type=_width, default=16)
    p.add_argument("--budget-factor", type=_budget, default=AMP_BUDGET, help="AMP budget: deliveries per node")
    p.add_argument("--weight-decay", type=_decay, default=5e-4)
    p.add_argument("--amp-features", choices=("binary", "normalized"), default=None,
                   help="AMP input: the binary bag of words or row-normalised (the GCN's, always); default "
                        "binary for AMP-GRU/ACT/Iter/RNN, normalized for AMP-Mean/Att")
    p.add_argument("--readout", default="skip", choices=READOUTS, help="AMP readout (default skip)")
    p.add_argument("--embed", action="store_true", help="AMP: a sparse linear embedding before the cell")
    add_threads(p)
    p.add_argument("--summarize", action="store_true", help="only write the summary files (as ampsim nodes render)")
    _summary_flags(p, "; with --summarize also their pack (.jsonl.gz)")
    p.set_defaults(func=_run)


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    configure_run(sub.add_parser("run", help="train the missing seeds, then write the summary"))
    p = sub.add_parser("render", help="write the summary (--json, --md) from the result files under --out")
    _summary_flags(p, ", or their pack (.jsonl.gz)")
    p.set_defaults(func=_render)
