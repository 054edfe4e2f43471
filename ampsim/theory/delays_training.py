"""Section 4.3, "constant delays are easier to train", measured: the same tasks, seeds and epochs
trained with constant and with uniform delays.

Plan (one run = ``ampsim.train.fit`` of AMP-RNN on one task/delay/seed, run folder
``runs/delays_training_runs/<task>/<delay>/e<epochs>/seed<k>`` by default, resumable; the published
ones are packed in ``results/delays_training_runs.jsonl.gz``, which ``summarize --root`` reads too):

* ``FULL`` tasks (cheap: Limits1, Limits2, LCC, Parity): 10 seeds x 1000 epochs with uniform delays;
  the constant-delay side is the existing Table 2/3 runs ``<task>/amp-rnn/seed<k>`` of the packs
  ``results/table2_runs.jsonl.gz`` and ``results/table3_runs.jsonl.gz`` (:mod:`ampsim.runpack`)
  (identical configuration: AMP-RNN, lr 0.01, 1000 epochs, same seeds).
* ``SHORT`` tasks (Triangles, MAX, MEAN, 4-cycles, Skip-Cycles; 4-12 min per 1000 epochs on one
  core): 2 seeds x 100 epochs, both delay models run here (so test accuracy is at the same epoch).

``ampsim delays run`` executes the plan round by round (seed r of every task
before seed r+1), skipping finished runs, so any interruption leaves a balanced, paired set.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Optional, Sequence

from .. import runpack

FULL_TASKS = ("limits1", "limits2", "lcc", "parity")
SHORT_TASKS = ("triangles", "max", "mean", "4cycles", "skipcycles")
TASKS = ("limits1", "limits2", "triangles", "lcc", "max", "mean", "4cycles", "skipcycles", "parity")
FULL_SEEDS, FULL_EPOCHS = 10, 1000
SHORT_SEEDS, SHORT_EPOCHS = 2, 100
RUNS = os.path.join("runs", "delays_training_runs")  # a user's runs (ignored by git)
PUBLISHED = "results/delays_training_runs.jsonl.gz"  # the committed ones, packed: summarize --root PUBLISHED
TABLE_RUNS = "results/table2_runs.jsonl.gz,results/table3_runs.jsonl.gz"  # the packed Table 2/3 runs (of the checkout)


def run_dir(task: str, delay: str, epochs: int, seed: int, root: str = RUNS) -> str:
    """Run folder of one (task, delay, epochs, seed); the existing Table 2/3 runs (seeds 0-9) for
    constant/1000, the plan's own folders for every other run (extra seeds included)."""
    if delay == "constant" and epochs == 1000 and seed < FULL_SEEDS:
        return os.path.join(runpack.folder(runpack.published(TABLE_RUNS)), task, "amp-rnn", f"seed{seed}")
    return os.path.join(root, task, delay, f"e{epochs}", f"seed{seed}")


def plan(full_seeds: int = FULL_SEEDS, short_seeds: int = SHORT_SEEDS, full_epochs: int = FULL_EPOCHS,
         short_epochs: int = SHORT_EPOCHS, extra_tasks: Sequence[str] = (), extra_seeds: int = 0
         ) -> list[tuple[str, str, int, int]]:
    """(task, delay, epochs, seed) in execution order: round r = seed r of every task; then, for each of
    ``extra_tasks``, seeds ``FULL_SEEDS .. extra_seeds - 1`` with both delay models (for tasks whose
    paired test is not clear at 10 seeds; the Table 2/3 runs stop at seed 9)."""
    out = []
    for r in range(FULL_SEEDS, extra_seeds):
        for task in extra_tasks:
            epochs = full_epochs if task in FULL_TASKS else short_epochs
            for delay in ("constant", "uniform"):
                out.append((task, delay, epochs, r))
    return _base_plan(full_seeds, short_seeds, full_epochs, short_epochs) + out


def _base_plan(full_seeds: int, short_seeds: int, full_epochs: int, short_epochs: int) -> list[tuple[str, str, int, int]]:
    out = []
    for r in range(max(full_seeds, short_seeds)):
        if r < full_seeds:
            for task in FULL_TASKS:
                out.append((task, "uniform", full_epochs, r))
        if r < short_seeds:
            for task in SHORT_TASKS:
                for delay in ("constant", "uniform"):
                    out.append((task, delay, short_epochs, r))
    return out


def run_plan(items, log=sys.stderr, root: str = RUNS) -> None:
    """Run every unfinished item of ``items`` (resuming from its checkpoint)."""
    from ..train import TrainConfig, fit
    from ..train.loop import training_process
    from ..train.synthetic import finished_result

    training_process(1)
    items = list(items)
    todo = [item for item in items if finished_result(run_dir(*item, root)) is None]
    print(f"{len(items)} run(s) planned under {root}, {len(items) - len(todo)} finished, {len(todo)} to train "
          "(one AMP-RNN fit each: 1-10 minutes of one core per 1000 epochs; rerun to resume)", file=log, flush=True)
    for task, delay, epochs, seed in todo:
        folder = run_dir(task, delay, epochs, seed, root)
        t0 = time.time()
        fit(TrainConfig(task=task, model="amp-rnn", delay=delay, seed=seed, epochs=epochs),
            out_dir=folder, resume=True)
        print(f"{time.strftime('%H:%M:%S')} {task} {delay} e{epochs} seed{seed} {time.time() - t0:.0f}s",
              file=log, flush=True)


# ------------------------------------------------------------------ gradient variance across delay draws
def full_batch_loss(model, task, executor, delay: str, epoch_seed: int):
    """The training objective of one epoch (``ampsim.train.loop``'s: mean NLL over every prediction,
    summed over heads), with the delays of ``epoch_seed``: graph i uses ``derive_seed(epoch_seed, "graph<i>")``."""
    import torch

    from ..cells.models import nll
    from ..engine.rng import derive_seed

    graphs = task.train
    factor = task.budget_factor
    logps = model.forward_many(graphs, executor, [factor * g.num_nodes for g in graphs], delay,
                               [derive_seed(epoch_seed, f"graph{i}") for i in range(len(graphs))])
    dim = 1 if task.readout == "all" else 0
    logp = torch.cat(logps, dim=dim)
    target = torch.cat([model.targets(g) for g in graphs], dim=dim)
    if task.readout == "all":
        return sum(nll(logp[h], target[h]) for h in range(task.heads))
    return nll(logp, target)


def gradient(model, task, executor, delay: str, epoch_seed: int):
    """The flattened full-batch gradient at the model's current parameters."""
    import torch

    model.zero_grad(set_to_none=True)
    loss = full_batch_loss(model, task, executor, delay, epoch_seed)
    loss.backward()
    return torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel())
                      for p in model.parameters()]).detach().double(), float(loss.detach())


def gradient_variance(task_name: str, draws: int = 8, seed: int = 0) -> dict:
    """At two fixed parameter points of AMP-RNN on ``task_name`` (the seed's initialisation, and the
    constant-delay model trained for 1000 epochs, the Table 2/3 run ``<task>/amp-rnn/seed<seed>``):
    the gradient under constant delays (deterministic) and under ``draws`` uniform delay draws.

    Reported per point: ``|g_const|``, ``|mean g_unif|``, the total variance
    ``tr Cov = mean |g_k - mean g|^2`` across draws, the noise-to-signal ratio
    ``tr Cov / |mean g|^2``, the mean cosine of single-draw gradients to their mean, and the
    cosine between the constant-delay gradient and the uniform mean.
    """
    import torch

    from ..engine.rng import stream
    from ..train import TrainConfig, build_model, get_executor, load_model, load_task
    from ..train.synthetic import finished_result

    torch.set_num_threads(1)
    _, executor = get_executor(None)
    config = TrainConfig(task=task_name, model="amp-rnn", seed=seed)
    task = load_task(task_name, seed)
    points = {"init": build_model(task, config)}
    trained = run_dir(task_name, "constant", 1000, seed)
    if os.path.exists(os.path.join(trained, "checkpoint.pt")):
        points["trained-constant"] = load_model(trained)[0]
    epochs = FULL_EPOCHS if task_name in FULL_TASKS else SHORT_EPOCHS
    trained_u = run_dir(task_name, "uniform", epochs, seed)
    if finished_result(trained_u) is not None:
        points[f"trained-uniform-e{epochs}"] = load_model(trained_u)[0]
    rng = stream(seed, "gradient-variance")
    epoch_seeds = [rng.getrandbits(63) for _ in range(draws)]
    out = {}
    for name, model in points.items():
        model.train()
        g_const, loss_const = gradient(model, task, executor, "constant", 0)
        grads, losses = zip(*(gradient(model, task, executor, "uniform", s) for s in epoch_seeds))
        G = torch.stack(grads)
        mean = G.mean(0)
        tr_cov = float(((G - mean) ** 2).sum(1).mean())
        cos = torch.nn.functional.cosine_similarity(G, mean.unsqueeze(0), dim=1)
        out[name] = {
            "loss_constant": loss_const,
            "loss_uniform_mean": sum(losses) / len(losses),
            "loss_uniform_std": float(torch.tensor(losses).std()),
            "grad_norm_constant": float(g_const.norm()),
            "grad_norm_uniform_mean": float(mean.norm()),
            "grad_norm_uniform_single_mean": float(G.norm(dim=1).mean()),
            "trace_cov_uniform": tr_cov,
            "noise_to_signal_uniform": tr_cov / float(mean.norm() ** 2) if float(mean.norm()) > 0 else float("inf"),
            "cosine_single_to_mean_uniform": float(cos.mean()),
            "cosine_constant_to_uniform_mean": float(torch.nn.functional.cosine_similarity(g_const, mean, dim=0)),
            "draws": draws,
        }
    return out


# ------------------------------------------------------------------ summary
def _test_acc(result: dict) -> float:
    """Test accuracy: Table 2's test set; parity: the mean over its test sizes up to 100 nodes."""
    test = result["test"]
    if "test" in test:
        return float(test["test"]["acc"])
    sizes = [k for k in test if int(k) <= 100]
    return sum(float(test[k]["acc"]) for k in sizes) / len(sizes)


def _first(values: list, target: float = 1.0) -> Optional[int]:
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def _mean(xs: list) -> Optional[float]:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _std(xs: list) -> Optional[float]:
    m = _mean(xs)
    if m is None or len(xs) < 2:
        return None
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


ALPHA = 0.05  # two-sided significance level of every paired test
LOSS_BAND = 0.02  # a loss difference under 2% of the pair's mean counts as no difference
ACC_BAND = 0.01  # a test-accuracy difference of at most one point counts as no difference
MAX_SEEDS = 100  # seeds summarize looks for (0 .. MAX_SEEDS-1, paired where both runs finished)


def paired_test(constant: Sequence[float], uniform: Sequence[float], lower_is_better: bool,
                band: float, relative: bool) -> dict:
    """Wilcoxon signed-rank test of the paired differences d_k = (uniform_k - constant_k), signed so that
    d_k > 0 favours constant delays; pairs with ``|d_k|`` within the tie band (``band``, or ``band`` times the
    pair's mean magnitude when ``relative``) count as no difference and are dropped (Wilcoxon's own
    convention for zeros). Two-sided; exact p-value when no ranks tie (scipy's ``method="auto"``).
    Returns n (pairs), ties, favour_constant, favour_uniform, W (the smaller rank sum), p."""
    from scipy.stats import wilcoxon

    sign = 1.0 if lower_is_better else -1.0
    diffs = []
    ties = 0
    for c, u in zip(constant, uniform):
        d = sign * (u - c)
        limit = band * (abs(c) + abs(u)) / 2 if relative else band
        if abs(d) <= limit:
            ties += 1
        else:
            diffs.append(d)
    out = {"n": len(constant), "ties": ties, "favour_constant": sum(d > 0 for d in diffs),
           "favour_uniform": sum(d < 0 for d in diffs), "W": None, "p": 1.0}
    if diffs:
        res = wilcoxon(diffs, alternative="two-sided", method="auto")
        out["W"], out["p"] = float(res.statistic), float(res.pvalue)
    return out


def _direction(test: dict) -> str:
    """constant / uniform (significantly better at ALPHA) or none."""
    if test["p"] >= ALPHA:
        return "none"
    return "constant" if test["favour_constant"] > test["favour_uniform"] else "uniform"


def verdict(row: dict) -> tuple[str, str]:
    """The claim "constant delays train better", per task, from paired tests over seeds (rule in
    docs/delays_training.md): *confirmed* when the mean training loss over the epochs is significantly
    lower under constant delays and the test accuracy is not significantly lower; *refuted* when the
    loss is significantly lower under uniform delays or the test accuracy significantly lower under
    constant ones; *no difference* otherwise (neither test significant at ALPHA)."""
    if not row["seeds"]:
        return "not measured", "no paired seeds finished"
    t = row["tests"]
    speed, acc = _direction(t["loss_mean"]), _direction(t["test_acc"])
    fmt = lambda name, x: (f"{name}: {x['favour_constant']} of {x['n']} seeds favour constant, "
                           f"{x['favour_uniform']} uniform, {x['ties']} tie(s), W = {_fmt(x['W'], 1)}, p = {x['p']:.3g}")
    why = fmt("mean training loss", t["loss_mean"]) + "; " + fmt("test accuracy", t["test_acc"])
    if speed == "uniform" or acc == "uniform":
        v = "refuted"
    elif speed == "constant":
        v = "confirmed"
    else:
        v = "no difference"
    if len(row["seeds"]) < 6:
        why += f"; only {len(row['seeds'])} paired seed(s): no two-sided test can reach p < {ALPHA} below 6"
    return v, why


def claim_verdict(rows: dict) -> str:
    """The claim over all tasks: how many tasks confirm it, refute it, or show no difference."""
    counts = {v: [t for t, r in rows.items() if r["verdict"] == v] for v in ("confirmed", "refuted", "no difference")}
    parts = [f"{v} on {len(ts)} of {len(rows)} task(s)" + (f" ({', '.join(ts)})" if ts and len(ts) < len(rows) else "")
             for v, ts in counts.items() if ts]
    return "; ".join(parts)


def summarize(out: str = os.path.join("runs", "delays_training"), root: str = RUNS) -> dict:
    """Pair every finished uniform run with its constant twin (same task, seed, epochs) and write
    ``out``.json, ``out``.md and ``out``_curves.png (``root``: run folders or their pack; ``out`` a file stem,
    :func:`ampsim.fileio.output_stem`, checked before anything is read)."""
    from ..fileio import output_stem, write_json, write_text
    from ..train.synthetic import finished_result

    out = output_stem(out, (".json", ".md", "_curves.png"))
    root = runpack.folder(root)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    rows = {}
    curves = {}
    for task in TASKS:
        epochs = FULL_EPOCHS if task in FULL_TASKS else SHORT_EPOCHS
        seeds, per = [], {"constant": [], "uniform": []}
        for seed in range(MAX_SEEDS):
            c = finished_result(run_dir(task, "constant", epochs, seed, root))
            u = finished_result(run_dir(task, "uniform", epochs, seed, root))
            if c is None or u is None:
                continue
            seeds.append(seed)
            per["constant"].append(c)
            per["uniform"].append(u)
        row: dict = {"task": task, "epochs": epochs, "seeds": seeds}
        for delay, results in per.items():
            row[delay] = {
                "test_acc": [_test_acc(r) for r in results],
                "test_acc_mean": _mean([_test_acc(r) for r in results]),
                "test_acc_std": _std([_test_acc(r) for r in results]),
                "train_acc_final_mean": _mean([r["train_acc"][-1] for r in results]),
                "loss_final_mean": _mean([r["loss"][-1] for r in results]),
                "loss_auc_mean": _mean([sum(r["loss"]) / len(r["loss"]) for r in results]),
                "epochs_to_train_acc_1": [_first(r["train_acc"]) for r in results],
                "seconds_train_mean": _mean([r["seconds_train_this_call"] for r in results]),
            }
            curves[(task, delay)] = [r["loss"] for r in results]
        c, u = row["constant"], row["uniform"]
        auc = lambda results: [sum(r["loss"]) / len(r["loss"]) for r in results]
        row["tests"] = {
            "loss_mean": paired_test(auc(per["constant"]), auc(per["uniform"]), True, LOSS_BAND, True),
            "loss_final": paired_test([r["loss"][-1] for r in per["constant"]], [r["loss"][-1] for r in per["uniform"]],
                                      True, LOSS_BAND, True),
            "test_acc": paired_test(c["test_acc"], u["test_acc"], False, ACC_BAND, False),
        }
        grad_path = os.path.join(root, f"gradients_{task}.json")
        if os.path.exists(grad_path):
            with open(grad_path, encoding="utf-8") as f:
                row["gradients"] = json.load(f)
        row["verdict"], row["why"] = verdict(row)
        rows[task] = row
    doc = {"plan": {"full_tasks": list(FULL_TASKS), "full": f"{FULL_SEEDS} seeds x {FULL_EPOCHS} epochs (uniform runs here, "
                    "constant = the Table 2/3 runs)", "short_tasks": list(SHORT_TASKS),
                    "short": f"{SHORT_SEEDS} seeds x {SHORT_EPOCHS} epochs, both delay models"},
           "rule": {"test": "Wilcoxon signed-rank, paired by seed, two-sided", "alpha": ALPHA,
                    "loss_tie_band": f"{LOSS_BAND:g} of the pair's mean", "test_acc_tie_band": ACC_BAND},
           "claim": claim_verdict(rows),
           "tasks": rows}
    write_json(out + ".json", doc)
    _plot_curves(curves, rows, out + "_curves.png")
    write_text(out + ".md", _markdown(rows))
    return doc


def _plot_curves(curves: dict, rows: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(3, 3, figsize=(13, 9))
    for ax, task in zip(axes.flat, TASKS):
        for delay, colour in (("constant", "tab:blue"), ("uniform", "tab:orange")):
            runs = curves.get((task, delay)) or []
            if not runs:
                continue
            L = np.array(runs)
            m = L.mean(0)
            x = np.arange(1, L.shape[1] + 1)
            ax.plot(x, m, color=colour, label=f"{delay} ({len(runs)} seeds)")
            if len(runs) > 1:
                ax.fill_between(x, L.min(0), L.max(0), color=colour, alpha=0.2)
        ax.set_yscale("log")
        ax.set_title(f"{task}: {rows[task]['verdict']}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7)
    fig.suptitle("AMP-RNN training loss, constant vs uniform delays (mean; band = min..max over seeds)")
    fig.tight_layout()
    from ..fileio import save_figure

    save_figure(fig, path, dpi=100)
    plt.close(fig)


def _fmt(x: Optional[float], digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _markdown(rows: dict) -> str:
    lines = ["# Constant vs uniform delays in training (Section 4.3), AMP-RNN",
             "",
             "Generated by `ampsim delays summarize --root results/delays_training_runs.jsonl.gz --out results/delays_training` (see docs/delays_training.md for the "
             "plan, what was scaled down, and the verdict rule).",
             "",
             "| task | epochs | seeds | test acc constant | test acc uniform | mean train loss c / u | "
             "epochs to train acc 1, c / u | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for task, r in rows.items():
        c, u = r["constant"], r["uniform"]
        e2 = lambda d: ",".join("–" if e is None else str(e) for e in d["epochs_to_train_acc_1"])
        lines.append(f"| {task} | {r['epochs']} | {len(r['seeds'])} | {_fmt(c['test_acc_mean'])} ± {_fmt(c['test_acc_std'])} | "
                     f"{_fmt(u['test_acc_mean'])} ± {_fmt(u['test_acc_std'])} | {_fmt(c['loss_auc_mean'])} / "
                     f"{_fmt(u['loss_auc_mean'])} | {e2(c)} / {e2(u)} | **{r['verdict']}** |")
    lines += ["", "## Paired tests over seeds",
              "",
              f"Wilcoxon signed-rank test, paired by seed (same seed: same data and initialisation), two-sided, "
              f"significance level {ALPHA}. A difference within the tie band counts as no difference and is dropped "
              f"(loss: {LOSS_BAND:.0%} of the pair's mean; test accuracy: {ACC_BAND} absolute). c / u / = : seeds "
              "favouring constant / favouring uniform / tied. The verdict reads the first and last tests: "
              "*confirmed* = mean training loss significantly lower with constant delays and test accuracy not "
              "significantly lower; *refuted* = either significantly favours uniform delays; otherwise *no difference*.",
              "",
              "| task | pairs | mean training loss: c / u / =, W, p | final training loss: c / u / =, W, p | "
              "test accuracy: c / u / =, W, p | verdict |",
              "|---|---|---|---|---|---|"]
    cell = lambda x: (f"{x['favour_constant']} / {x['favour_uniform']} / {x['ties']}, W = {_fmt(x['W'], 1)}, "
                      f"p = {x['p']:.3g}")
    for task, r in rows.items():
        if r.get("tests"):
            t = r["tests"]
            lines.append(f"| {task} | {len(r['seeds'])} | {cell(t['loss_mean'])} | {cell(t['loss_final'])} | "
                         f"{cell(t['test_acc'])} | **{r['verdict']}** |")
    lines += ["", f"**The claim over all tasks:** {claim_verdict(rows)}."]
    lines += ["", "## Gradient variance across delay draws at fixed parameters", "",
              "Per parameter point: |g| under constant delays (deterministic: variance 0), and over 8 uniform "
              "draws the norm of the mean gradient, the total variance tr Cov, the noise-to-signal ratio "
              "tr Cov / |mean g|^2, and the cosine between the constant gradient and the uniform mean.", "",
              "| task | point | loss const | loss unif (mean ± std) | abs g const | abs mean g unif | tr Cov unif | noise/signal | cos(const, unif mean) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for task, r in rows.items():
        for point, g in (r.get("gradients") or {}).items():
            if point == "task":
                continue
            lines.append(f"| {task} | {point} | {g['loss_constant']:.4g} | {g['loss_uniform_mean']:.4g} ± "
                         f"{g['loss_uniform_std']:.2g} | {g['grad_norm_constant']:.3g} | {g['grad_norm_uniform_mean']:.3g} | "
                         f"{g['trace_cov_uniform']:.3g} | {g['noise_to_signal_uniform']:.3g} | "
                         f"{g['cosine_constant_to_uniform_mean']:.3f} |")
    lines += ["", "Why, per task:", ""] + [f"* **{t}** ({r['verdict']}): {r['why']}" for t, r in rows.items()]
    lines += ["", "![training curves](delays_training_curves.png)", ""]
    return "\n".join(lines)


def gradient_files(tasks: Sequence[str], draws: int = 8, root: str = RUNS, log=sys.stderr) -> list[str]:
    """``<root>/gradients_<task>.json`` (:func:`gradient_variance`) for each task without one; the files written."""
    from ..fileio import write_json

    from ..sweeps import check_folder

    check_folder(root)  # refused before any work; made only when the first file is written
    written = []
    for task in tasks:
        path = os.path.join(root, f"gradients_{task}.json")
        if os.path.exists(path):
            continue
        t0 = time.time()
        doc = {"task": task, **gradient_variance(task, draws)}
        os.makedirs(root, exist_ok=True)
        write_json(path, doc)
        written.append(path)
        print(f"{time.strftime('%H:%M:%S')} gradients {task} {time.time() - t0:.0f}s", file=log, flush=True)
    return written


if __name__ == "__main__":  # `python -m ampsim.theory.delays_training run|gradients|summarize`: alias of `ampsim delays`
    from ampsim.cli import alias

    raise SystemExit(alias(["delays"]))
