"""``ampsim nodes run | render | pubmed``: node classification on Cora and CiteSeer, AMP models, a GCN and a GAT;
PubMed from its topology.

``run`` trains every (data set, model, delay, seed) without a finished result file
(:func:`ampsim.train.node_classification.train_seed`: a finished seed is skipped, a stopped
one resumes from its checkpoint), then writes the summary; ``render`` only writes the
summary (``--json``, ``--md``) from the result files under ``--out`` (a folder or its pack).
``pubmed`` trains the structure-only PubMed rows (:mod:`ampsim.train.pubmed`; per-seed files under
``--runs``, resumed like ``run``'s), times the models' epochs side by side and writes ``--out STEM``
(``STEM.json``, ``STEM.md``; default ``runs/pubmed``).

    ampsim nodes run --models GCN GAT --seeds 0-9
    ampsim nodes run --models AMP-GRU AMP-ACT --delays constant uniform --seeds 0-9
    ampsim nodes run --models AMP-Mean AMP-Att --delays constant uniform --seeds 0-9
    ampsim nodes render --out results/node_classification_runs.jsonl.gz --json results/node_classification.json \
        --md results/node_classification.md --robustness results/delay_robustness
    ampsim nodes pubmed --out results/pubmed

A new flag is one ``add_argument`` in :func:`configure_run` and, when it is a setting of the
model, one keyword in :func:`configs` (a per-model default goes into ``DEFAULTS``).
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

from .. import runpack
from .. import validate as V
from ..train.loop import training_process
from ..cells.aggregate import NORMS
from ..train.node_classification import (AMP_BUDGET, BASELINES, DATASETS, DEFAULT_RUNS, DEFAULTS, DELAYS, MODELS,
                                         READOUTS, WAVE_MODELS, NodeConfig, NodeTask, finished_seed, load_node_task,
                                         train_seed, write_summary)
from .args import (MAX_WIDTH, add_threads, announce_runs, checked, index_list, learning_rate, output_folder, positive,
                   whole, width)

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
                                          bias=not (getattr(args, "no_bias", False) and model in WAVE_MODELS),
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
    p.add_argument("--no-bias", action="store_true",
                   help="AMP-Mean, AMP-Att: the cell's per-wave biases fixed at zero (our GCN has none)")
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


MAX_TIMING_EPOCHS = 1000
_timing_width = checked(int, lambda v: V.integer("value", v, 1, MAX_WIDTH), "a whole number",
                        f"a whole number in 1..{MAX_WIDTH}")


def _pubmed(args: argparse.Namespace) -> int:
    from ..fileio import output_stem
    from ..train import pubmed

    stem = output_stem(args.out, (".json", ".md"))
    if runpack.is_pack(args.runs):
        raise ValueError(f"--runs {args.runs}: a pack is read, not trained into; give a folder")
    output_folder(args.runs, create=False)
    training_process(args.threads)
    task = pubmed.pubmed_task()  # the data files read (and checked) before anything is written
    trained = [r for r in args.models if r != "majority"]
    planned = [pubmed.row_config(r, s, args.epochs) for r in trained for s in args.seeds]
    todo = [c for c in planned if finished_seed(c, args.runs) is None]  # another configuration's: refused here
    epochs = max(c.epochs for c in todo) if todo else 0
    announce_runs(len(todo), f"PubMed, {len(trained)} models x {len(args.seeds)} seeds, "
                  f"{len(planned) - len(todo):,} of the {len(planned):,} already finished under {args.runs}", 1,
                  epochs, SECONDS_PER_EPOCH)
    output_folder(args.runs)
    pubmed.train_rows(task, trained, args.seeds, args.runs, args.epochs, log=lambda s: print(s, flush=True))
    timing = None
    if args.timing_epochs:
        timing = [pubmed.time_epochs(task, args.timing_models, args.timing_epochs, args.timing_warmup, w)
                  for w in args.timing_features]
        for t in timing:
            for r in t["rows"]:
                ratio = f" ({r['x_gcn']:.2f}x GCN)" if r["x_gcn"] is not None else ""
                print(f"timing, {t['features']} features: {r['model']:9s} {r['s_per_epoch']:.3f} s/epoch{ratio}",
                      flush=True)
    summary = pubmed.summary(task, args.runs, timing, args.models, args.seeds)
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    pubmed.write_tables(stem, summary)
    for key, row in summary["rows"].items():
        print(f"PubMed    {key:18s} {row['mean']:5.1f} ± {row['std']:4.1f}  ({row['seeds']} seeds)")
    print(f"wrote {stem}.json and {stem}.md")
    return 0


def configure_pubmed(p: argparse.ArgumentParser) -> None:
    """The flags of ``ampsim nodes pubmed``."""
    from ..train import pubmed

    p.add_argument("--models", nargs="+", default=list(pubmed.ROWS), choices=pubmed.ROWS,
                   help="table rows (default all; majority is computed, not trained)")
    p.add_argument("--seeds", type=index_list("seeds", limit=MAX_SEEDS), default=list(range(5)),
                   help="e.g. 0-4 (default) or 0,3")
    p.add_argument("--epochs", type=positive, default=None,
                   help="epochs of every trained row (default: each model's recipe, 200; GAT 500)")
    p.add_argument("--runs", default=pubmed.DEFAULT_RUNS, help="folder of the per-seed result files (default "
                   f"{pubmed.DEFAULT_RUNS}, ignored by git)")
    p.add_argument("--out", default=pubmed.DEFAULT_OUT, metavar="STEM",
                   help=f"writes STEM.json and STEM.md (default {pubmed.DEFAULT_OUT}, under the ignored runs/; the "
                        "published files: results/pubmed)")
    p.add_argument("--timing-epochs", type=whole(0, MAX_TIMING_EPOCHS), default=5,
                   help="timed training epochs per model (default 5; 0: no timing)")
    p.add_argument("--timing-warmup", type=whole(0, MAX_TIMING_EPOCHS), default=1,
                   help="untimed epochs first (default 1)")
    p.add_argument("--timing-features", type=_timing_width, nargs="+", default=[pubmed.TIMING_FEATURES],
                   help=f"widths of the random features of the timing, one table each (default "
                        f"{pubmed.TIMING_FEATURES}, PubMed's TF-IDF width)")
    p.add_argument("--timing-models", nargs="+", default=list(pubmed.TIMING_MODELS),
                   choices=pubmed.TIMING_CHOICES, help="models timed (default " + " ".join(pubmed.TIMING_MODELS) +
                   "; the ratios need GCN)")
    add_threads(p)
    p.set_defaults(func=_pubmed)


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    configure_run(sub.add_parser("run", help="train the missing seeds, then write the summary"))
    p = sub.add_parser("render", help="write the summary (--json, --md) from the result files under --out")
    _summary_flags(p, ", or their pack (.jsonl.gz)")
    p.set_defaults(func=_render)
    configure_pubmed(sub.add_parser("pubmed", help="PubMed from its topology: structure-only node classification "
                                    "and seconds per epoch side by side"))
