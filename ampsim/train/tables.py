"""Tables 2 and 3 (and Figures 5, 6b, and the emission-gate comparison): runs and their summaries.

Every (task, model, seed) is one folder ``<root>/<task>/<model>[+gate]/seed<k>`` (``runs/`` by
default) with a checkpoint and, once finished, ``result.json`` (:func:`ampsim.train.loop.fit`).
Running a protocol skips finished folders and resumes interrupted ones, so it can be stopped and
restarted at will; rendering reads whatever has finished and states the seeds per cell. The
published runs are packed, one file per table (:data:`PACKS`, :mod:`ampsim.runpack`), and
rendering reads the packs as it reads run folders.

    ampsim table2 run --seeds 0-9            # Table 2, AMP column (AMP-RNN)
    ampsim table3 run --seeds 0-9            # Table 3, five variants
    ampsim gate run --seeds 0-2              # gated twins of the Table 2 / 3 folders
    ampsim table2 render                     # runs/table{2,3}.{json,md}, figures (ampsim.train.table_reports)
    ampsim table2 pack --out results         # results/table2_runs.jsonl.gz, ...

Protocols (reference notes 1.5): Table 2 -- 1000 full-batch Adam steps, lr 0.01, hidden 16/32,
message size 3, start message ones(3), budget 5n, one run per node, constant delays, the final
model on the test set. Table 3 -- 100 training graphs of 10 nodes, 1000 steps, lr 0.01, hidden 30,
e0 of size 3 at the origin, budget 10n, 10 test graphs per size 10 ... 2500. Mean and std over
seeds; std is the population std (ddof 0, ``np.std``'s default, as DropGNN's script printed it).
"""
from __future__ import annotations

import math
import os
import sys
from typing import Iterable, Optional, Sequence

import torch

from .. import runpack
from .. import validate as V
from ..cells.models import cell_kind
from .loop import run_largest_first
from .synthetic import (TrainConfig, check_run_folder, finished_result, fit, fit_seeds, get_executor, load_task,
                        run_folder, stack_groups, work_per_epoch)

__all__ = [
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "TABLE2_TASKS",
    "TABLE3_MODELS",
    "TABLE3_SIZES",
    "protocol_config",
    "protocol_runs",
    "run_protocol",
    "table2_summary",
    "table3_summary",
    "gate_summary",
    "deliveries_per_run",
    "measure_cost",
    "pack_runs",
    "compare_table2",
]

USER_ROOT = "runs"  # the CLI's default: a user's runs and tables go to runs/ (ignored), not to results/
#: Table 2 sets: paper name -> CLI task name.
TABLE2_TASKS = {"Limits1": "limits1", "Limits2": "limits2", "Triangles": "triangles", "LCC": "lcc",
                "MAX": "max", "MEAN": "mean", "4-cycles": "4cycles", "Skip-Cycles": "skipcycles"}
#: The paper's AMP column of Table 2 (mean, std).
PAPER_TABLE2 = {"Limits1": (1.00, 0.00), "Limits2": (1.00, 0.00), "Triangles": (1.00, 0.01), "LCC": (0.96, 0.03),
                "MAX": (1.00, 0.00), "MEAN": (1.00, 0.00), "4-cycles": (1.00, 0.00), "Skip-Cycles": (1.00, 0.00)}
TABLE3_MODELS = {"AMP-RNN": "amp-rnn", "AMP-GRU": "amp-gru", "AMP-LSTM": "amp-lstm", "AMP-ACT": "amp-act",
                 "AMP-Iter": "amp-iter"}
TABLE3_SIZES = (10, 25, 50, 100, 250, 500, 1000, 2500)
#: The packed runs of each published artefact (:mod:`ampsim.runpack`): pack name -> the files it holds
#: (globs of paths relative to the run root). Table 2: AMP-RNN on its eight sets; Table 3 and Figure 5:
#: the five variants on parity; Figure 6: parity-multi; the gate comparison: the gated runs (their
#: always-emit twins are the Table 2 / Table 3 runs of the same seeds). Every run's ``result.json``;
#: the checkpoints of seeds 0-2 only, the trained models that are read again: the gate comparison's
#: deliveries (:func:`deliveries_per_run`), the gradient check of :mod:`ampsim.theory.delays_training`
#: and the reaction demo (:mod:`ampsim.theory.reaction_demo`).
PACKS = {
    "table2_runs.jsonl.gz": tuple(f"{task}/amp-rnn/{f}" for task in TABLE2_TASKS.values()
                                  for f in ("seed*/result.json", "seed[0-2]/checkpoint.pt")),
    "table3_runs.jsonl.gz": tuple(f"parity/{model}/{f}" for model in TABLE3_MODELS.values()
                                  for f in ("seed*/result.json", "seed[0-2]/checkpoint.pt")),
    "figure6_runs.jsonl.gz": tuple(f"parity-multi/{model}/seed*/result.json" for model in TABLE3_MODELS.values()),
    "gate_runs.jsonl.gz": ("*/amp-rnn+gate/seed*/result.json", "*/amp-rnn+gate/seed[0-2]/checkpoint.pt"),
}
#: The published runs: every pack of :data:`PACKS` in ``results/`` (a run root :func:`ampsim.runpack.folder` reads).
ROOT = ",".join(os.path.join("results", name) for name in PACKS)
#: How every published table of this module names its regenerating command.
REGENERATE = (f"Regenerate (from the packed runs): `ampsim table2 render --root {ROOT} --out results`; "
              "training the runs anew: `results/README.md`.")
_T3 = {
    "AMP-RNN": "0.96 0.02 0.85 0.05 0.74 0.08 0.69 0.07 0.61 0.09 0.58 0.09 0.56 0.05 0.54 0.04",
    "AMP-GRU": "0.97 0.01 0.89 0.03 0.80 0.05 0.73 0.10 0.66 0.07 0.63 0.08 0.60 0.05 0.56 0.04",
    "AMP-LSTM": "0.97 0.01 0.87 0.03 0.77 0.06 0.69 0.10 0.61 0.09 0.58 0.10 0.56 0.06 0.54 0.05",
    "AMP-ACT": "1.00 0.00 0.98 0.02 0.96 0.04 0.95 0.05 0.93 0.07 0.91 0.10 0.91 0.11 0.90 0.12",
    "AMP-Iter": "1.00 0.00 1.00 0.00 1.00 0.00 1.00 0.00 1.00 0.00 0.99 0.00 0.99 0.00 0.99 0.00",
}
#: The paper's Table 3 rows for the AMP variants: model -> size -> (mean, std).
PAPER_TABLE3 = {m: {size: (float(v[2 * i]), float(v[2 * i + 1])) for i, size in enumerate(TABLE3_SIZES)}
                for m, v in ((m, row.split()) for m, row in _T3.items())}
#: Figure 5a leaves out distance buckets with fewer test nodes than this (pooled over sizes and seeds).
MIN_BUCKET_NODES = 50
#: Tasks the gate comparison runs on (Table 2 sets and the Table 3 task).
GATE_TASKS = ("limits1", "limits2", "lcc", "4cycles", "parity")


def protocol_config(task: str, model: str, seed: int, gate: bool = False, delay: str = "constant",
                    epochs: int = 1000) -> TrainConfig:
    """The paper's protocol for one (task, model, seed): Table 3 settings for the parity tasks, else Table 2."""
    return TrainConfig(task=task, model=model, delay=delay, seed=seed, epochs=epochs, lr=0.01, gate=gate)


#: Cost of one cell call per cell kind, relative to RNN (parity protocol, batched executor, one thread:
#: 18, 28, 36, 50 and 78 ms per epoch): how the scheduler of ``--workers`` weighs its units.
CELL_COST = {"rnn": 1.0, "gru": 1.5, "lstm": 2.0, "act": 2.8, "iter": 4.3}


def protocol_runs(tasks: Sequence[str], models: Sequence[str], seeds: Iterable[int], root: str = USER_ROOT,
                  gate: bool = False, delay: str = "constant", epochs: int = 1000
                  ) -> tuple[list[str], list[list[tuple[TrainConfig, str]]]]:
    """The protocol's runs under ``root``, split: the folders already finished with this configuration, and the
    rest as ``(config, folder)`` pairs, one list per (task, model) that has any. What :func:`run_protocol` trains,
    and what a plan line counts before it starts; a folder holding a run of another configuration is refused
    here (:func:`~ampsim.train.synthetic.check_run_folder`; other epochs are the same run continued)."""
    seeds = list(seeds)
    done: list[str] = []
    pending: list[list[tuple[TrainConfig, str]]] = []
    for task in tasks:
        for model in models:
            todo = []
            for seed in seeds:
                config = protocol_config(task, model, seed, gate, delay, epochs)
                folder = run_folder(root, task, model, seed, gate, delay)
                if finished_result(folder, config) is not None:
                    done.append(folder)
                else:
                    check_run_folder(folder, config, resume=True)
                    todo.append((config, folder))
            if todo:
                pending.append(todo)
    return done, pending


def run_protocol(tasks: Sequence[str], models: Sequence[str], seeds: Iterable[int], root: str = USER_ROOT,
                 executor: Optional[str] = None, gate: bool = False, delay: str = "constant",
                 epochs: int = 1000, quiet: bool = False, log=print, stack: bool = True, workers: int = 1,
                 threads: int = 1) -> list[str]:
    """Train every missing (task, model, seed) of the protocol; skip finished ones, resume the rest.

    The missing seeds of one (task, model) train with :func:`ampsim.train.synthetic.fit_seeds`:
    as one stack where they share graphs and schedule and the levels are small (``stack``,
    :func:`~ampsim.train.synthetic.stack_groups`), else one after another. With ``workers > 1``
    the work is cut into units (a stack, or a seed that trains alone) that ``workers`` processes
    (``threads`` torch threads each) take largest first, each the next one when it is done
    (longest-processing-time list scheduling; a unit's cost: cell calls per epoch x epochs x
    models x :data:`CELL_COST`). Every seed writes its own run folder either way.
    Returns every run folder of the protocol (finished before or now).
    """
    V.positive_int("workers", workers)
    name, ex = get_executor(executor)
    done, pending = protocol_runs(tasks, models, seeds, root, gate, delay, epochs)
    if workers == 1 or not pending:
        for todo in pending:
            done += train_unit(todo, name, stack, quiet, log, ex)
        return done
    units = []
    for todo in pending:
        configs = [c for c, _ in todo]
        specs = [load_task(c.task, c.seed, train_graphs=c.train_graphs, test_sizes=c.test_sizes, sources=c.sources)
                 for c in configs]
        alone: dict[str, list[int]] = {}
        for idx, why in stack_groups(configs, specs, ex, stack):
            c = configs[idx[0]]
            cost = work_per_epoch(specs[idx[0]], c) * c.epochs * len(idx) * CELL_COST[cell_kind(c.model)]
            units.append((cost, ([todo[i] for i in idx], name, stack, quiet)))
            if len(idx) == 1:
                alone.setdefault(why, []).append(c.seed)
        for why, alone_seeds in alone.items():
            log(f"{specs[0].name} {configs[0].model} seed(s) {', '.join(map(str, alone_seeds))}: one unit each ({why})")
    log(f"{sum(len(u[0]) for _, u in units)} runs in {len(units)} units over {workers} processes, largest first")
    for folders in run_largest_first(train_unit, units, workers, threads):
        done += folders
    return done


def train_unit(todo: Sequence[tuple], executor_name: Optional[str], stack: bool = True, quiet: bool = True,
               log=None, executor=None) -> list[str]:
    """Train ``todo`` (``(config, folder)`` pairs of one task and model) with ``fit_seeds``; log a line per seed.

    Module-level, so that a process of :func:`run_protocol` (``workers > 1``) can take it; there
    the lines are printed as each unit finishes."""
    if log is None:
        log = lambda line: print(line, flush=True)  # noqa: E731
    results = fit_seeds([c for c, _ in todo], executor, [f for _, f in todo], resume=True, quiet=quiet,
                        executor_name=executor_name, stack=stack, log=log)
    for (config, _), result in zip(todo, results):
        tests = ", ".join(f"{k}: {v['acc']:.3f}" for k, v in result["test"].items())
        together = result.get("stacked_with", 1)
        log(f"{result['task']} {result['model']} seed {config.seed}: {tests} "
            f"({result['seconds_train_this_call']:.0f} s training"
            f"{f' for {together} seeds together' if together > 1 else ''}, "
            f"{result['seconds_eval']:.0f} s eval, {result['executor']})")
    return [f for _, f in todo]


def _stats(values: Sequence[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return {"mean": round(mean, 4), "std": round(std, 4), "seeds": n}


def _results(root: str, task: str, model: str, gate: bool = False, delay: str = "constant",
             epochs: int = 1000) -> list[dict]:
    """Finished protocol results of (task, model), sorted by seed (``root``: run folders or packs)."""
    base = os.path.dirname(run_folder(runpack.folder(root), task, model, 0, gate, delay))
    out = []
    if not os.path.isdir(base):
        return out
    for entry in sorted(os.listdir(base)):
        if not entry.startswith("seed") or not entry[4:].isdigit():
            continue
        result = finished_result(os.path.join(base, entry), protocol_config(task, model, int(entry[4:]), gate, delay, epochs))
        if result is not None:
            out.append(result)
    return sorted(out, key=lambda r: r["config"]["seed"])


def table2_summary(root: str = ROOT, model: str = "amp-rnn") -> dict:
    """``{set: {"mean", "std", "seeds", "seed_list"}}`` over finished Table 2 runs (sets without runs are absent)."""
    out = {}
    for paper, task in TABLE2_TASKS.items():
        rs = _results(root, task, model)
        if rs:
            out[paper] = {**_stats([r["test"]["test"]["acc"] for r in rs]),
                          "seed_list": [r["config"]["seed"] for r in rs], "executors": _executors(rs)}
    return out


def _executors(results: Sequence[dict]) -> dict:
    """How many of ``results`` each executor produced (``{"batched": 10}``)."""
    out: dict[str, int] = {}
    for r in results:
        name = str(r.get("executor", "unknown"))
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def table3_summary(root: str = ROOT, task: str = "parity") -> dict:
    """``{model: {size: {"mean", "std", "seeds"}}, ...}``, plus per model ``"by_distance"`` and ``"seen"``."""
    out = {}
    for paper, model in TABLE3_MODELS.items():
        rs = _results(root, task, model)
        if not rs:
            continue
        row: dict = {}
        for size in TABLE3_SIZES:
            accs = [r["test"][str(size)]["acc"] for r in rs if str(size) in r["test"]]
            if accs:
                row[str(size)] = _stats(accs)
        # Figure 5a: per distance bucket, pooled over test sizes, mean over seeds
        per_bucket: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        for r in rs:
            pooled: dict[str, list[float]] = {}
            for split in r["test"].values():
                for b, cell in split.get("by_distance", {}).items():
                    acc = pooled.setdefault(b, [0.0, 0.0])
                    acc[0] += cell["acc"] * cell["total"]
                    acc[1] += cell["total"]
            for b, (c, t) in pooled.items():
                per_bucket.setdefault(b, []).append(c / t)
                counts[b] = counts.get(b, 0) + int(t)
        row["by_distance"] = {b: {**_stats(v), "nodes": counts[b]}
                              for b, v in sorted(per_bucket.items(), key=lambda kv: int(kv[0]))}
        row["seen"] = {str(size): _stats([r["test"][str(size)]["seen"]["acc"] for r in rs if str(size) in r["test"]])
                       for size in TABLE3_SIZES if any(str(size) in r["test"] for r in rs)}
        row["seed_list"] = [r["config"]["seed"] for r in rs]
        row["executors"] = _executors(rs)
        out[paper] = row
    return out


def deliveries_per_run(folder: str, max_graphs: int = 10) -> float:
    """Mean processed deliveries per run of the trained model in ``folder``, on (up to ``max_graphs``)
    graphs of its first test split, by the engine: how much a learned gate saves against the budget."""
    from ..cells.execute import EngineExecutor
    from .synthetic import budget_of as _budget, load_model

    model, task, config = load_model(folder)
    graphs = next(iter(task.tests.values()))[:max_graphs]
    ex = EngineExecutor()
    total = runs = 0
    with torch.no_grad():
        for i, g in enumerate(graphs):
            model(g, ex, _budget(task, config, g), config.delay, i)
            total += sum(r.deliveries for r in ex.last_results)
            runs += len(ex.last_results)
    return total / runs


def gate_summary(root: str = ROOT, tasks: Sequence[str] = GATE_TASKS, model: str = "amp-rnn",
                 deliveries: bool = True) -> dict:
    """Learned gate vs always-emit on the same tasks and seeds: test accuracy and deliveries per run."""
    root = runpack.folder(root)
    out = {}
    for task in tasks:
        emit = {r["config"]["seed"]: r for r in _results(root, task, model)}
        gated = {r["config"]["seed"]: r for r in _results(root, task, model, gate=True)}
        seeds = sorted(set(emit) & set(gated))
        if not seeds:
            continue

        def acc(r: dict) -> float:
            tests = r["test"]
            return sum(v["acc"] for v in tests.values()) / len(tests)

        out[task] = {"seeds": seeds, "always_emit": _stats([acc(emit[s]) for s in seeds]),
                     "gate": _stats([acc(gated[s]) for s in seeds])}
        if deliveries:
            for key, gate in (("always_emit", False), ("gate", True)):
                out[task][key]["deliveries_per_run"] = round(sum(
                    deliveries_per_run(run_folder(root, task, model, s, gate)) for s in seeds) / len(seeds), 1)
    return out


def pack_runs(root: str, out_dir: str) -> list[str]:
    """Pack the finished run folders under ``root`` into the files of :data:`PACKS` in ``out_dir``
    (:func:`ampsim.runpack.pack`; a pack without runs is not written); returns the packs written."""
    written = []
    for name, select in PACKS.items():
        try:
            runpack.pack(root, os.path.join(out_dir, name), select)
        except ValueError:
            continue
        written.append(os.path.join(out_dir, name))
    return written


def _train_minutes(results: Sequence[dict]) -> float:
    """Wall-clock training minutes of runs, a stacked pass counted once (its seeds share its seconds)."""
    return sum(r.get("seconds_train_this_call", 0.0) / r.get("stacked_with", 1) for r in results) / 60


def compare_table2(root: str, published: str = ROOT, model: str = "amp-rnn") -> dict:
    """Per Table 2 set: the rerun under ``root`` and the published runs, accuracy (mean ± std, seeds) and minutes."""
    out = {}
    for paper, task in TABLE2_TASKS.items():
        new, old = _results(root, task, model), _results(published, task, model)
        row: dict = {}
        for key, rs in (("rerun", new), ("published", old)):
            if rs:
                row[key] = {**_stats([r["test"]["test"]["acc"] for r in rs]),
                            "train_minutes": round(_train_minutes(rs), 1),
                            "stacked": max(r.get("stacked_with", 1) for r in rs)}
        out[paper] = row
    return out


def measure_cost(tasks: Sequence[str], executor: str, epochs: int = 3, model: str = "amp-rnn",
                 log=print) -> dict:
    """Seconds per training epoch (forward + backward + step, mean over ``epochs`` after one warm-up
    epoch) of the protocol model on each task, and the projected cost of one 1000-epoch seed."""
    import time

    from .synthetic import load_task

    name, ex = get_executor(executor)
    out = {}
    for task_name in tasks:
        config = protocol_config(task_name, model, 0, epochs=epochs + 1)
        task = load_task(task_name, 0)
        stamps: list[float] = []
        fit(config, ex, executor_name=name, task=task, stop_after=epochs + 1,  # no evaluation
            on_epoch=lambda e, loss, acc: stamps.append(time.perf_counter()))
        per_epoch = (stamps[-1] - stamps[0]) / epochs
        calls = work_per_epoch(task, config)
        out[task.name] = {"seconds_per_epoch": round(per_epoch, 4), "cell_calls_per_epoch": calls,
                          "cell_calls_per_second": round(calls / per_epoch), "projected_seconds_1000_epochs":
                          round(1000 * per_epoch), "executor": name, "threads": torch.get_num_threads()}
        log(f"{task.name}: {per_epoch:.3f} s/epoch ({calls} cell calls, {calls / per_epoch:.0f}/s forward+backward), "
            f"1000 epochs = {1000 * per_epoch / 60:.1f} min ({name})")
    return out


if __name__ == "__main__":  # `python -m ampsim.train.tables run2 ...`: alias of `ampsim table2 run ...` (the CLI)
    from ampsim.cli import alias

    sys.exit(alias(["table2"], actions={"run2": ["table2", "run"], "run3": ["table3", "run"],
                                        "run6": ["figure6", "run"], "run-gate": ["gate", "run"],
                                        "render": ["table2", "render"], "pack": ["table2", "pack"],
                                        "cost": ["table2", "cost"], "compare2": ["table2", "compare"]}))
