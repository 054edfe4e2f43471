"""Section 4.3, "constant delays are easier to train", measured: the same tasks, seeds and epochs
trained with constant and with uniform delays.

Plan (one run = ``ampsim.train.fit`` of AMP-RNN on one task/delay/seed, run folder
``results/delays_training_runs/<task>/<delay>/e<epochs>/seed<k>``, resumable):

* ``FULL`` tasks (cheap: Limits1, Limits2, LCC, Parity): 10 seeds x 1000 epochs with uniform delays;
  the constant-delay side is the existing Table 2/3 runs ``results/runs/<task>/amp-rnn/seed<k>``
  (identical configuration: AMP-RNN, lr 0.01, 1000 epochs, same seeds).
* ``SHORT`` tasks (Triangles, MAX, MEAN, 4-cycles, Skip-Cycles; 4-12 min per 1000 epochs on one
  core): 2 seeds x 100 epochs, both delay models run here (so test accuracy is at the same epoch).

``python -m ampsim.theory.delays_training run`` executes the plan round by round (seed r of every task
before seed r+1), skipping finished runs, so any interruption leaves a balanced, paired set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

FULL_TASKS = ("limits1", "limits2", "lcc", "parity")
SHORT_TASKS = ("triangles", "max", "mean", "4cycles", "skipcycles")
TASKS = ("limits1", "limits2", "triangles", "lcc", "max", "mean", "4cycles", "skipcycles", "parity")
FULL_SEEDS, FULL_EPOCHS = 10, 1000
SHORT_SEEDS, SHORT_EPOCHS = 2, 100
RUNS = os.path.join("results", "delays_training_runs")
TABLE_RUNS = os.path.join("results", "runs")


def run_dir(task: str, delay: str, epochs: int, seed: int, root: str = RUNS) -> str:
    """Run folder of one (task, delay, epochs, seed); the existing Table 2/3 runs for constant/1000."""
    if delay == "constant" and epochs == 1000:
        return os.path.join(TABLE_RUNS, task, "amp-rnn", f"seed{seed}")
    return os.path.join(root, task, delay, f"e{epochs}", f"seed{seed}")


def plan(full_seeds: int = FULL_SEEDS, short_seeds: int = SHORT_SEEDS, full_epochs: int = FULL_EPOCHS,
         short_epochs: int = SHORT_EPOCHS) -> list[tuple[str, str, int, int]]:
    """(task, delay, epochs, seed) in execution order: round r = seed r of every task."""
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


def finished(folder: str) -> bool:
    path = os.path.join(folder, "result.json")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        return bool(json.load(f).get("finished"))


def run_plan(items, log=sys.stderr) -> None:
    """Run every unfinished item of ``items`` (resuming from its checkpoint)."""
    import torch

    from ..train import TrainConfig, fit

    torch.set_num_threads(1)
    for task, delay, epochs, seed in items:
        folder = run_dir(task, delay, epochs, seed)
        if finished(folder):
            continue
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
    constant-delay model trained for 1000 epochs, ``results/runs/<task>/amp-rnn/seed<seed>``):
    the gradient under constant delays (deterministic) and under ``draws`` uniform delay draws.

    Reported per point: ``|g_const|``, ``|mean g_unif|``, the total variance
    ``tr Cov = mean |g_k - mean g|^2`` across draws, the noise-to-signal ratio
    ``tr Cov / |mean g|^2``, the mean cosine of single-draw gradients to their mean, and the
    cosine between the constant-delay gradient and the uniform mean.
    """
    import torch

    from ..engine.rng import stream
    from ..train import TrainConfig, build_model, get_executor, load_model, load_task

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
    if finished(trained_u):
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


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ampsim.theory.delays_training")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the plan's runs (resumable)")
    r.add_argument("--full-seeds", type=int, default=FULL_SEEDS)
    r.add_argument("--short-seeds", type=int, default=SHORT_SEEDS)
    r.add_argument("--short-epochs", type=int, default=SHORT_EPOCHS)
    g = sub.add_parser("gradients", help="gradient variance across delay draws at fixed parameters")
    g.add_argument("--draws", type=int, default=8)
    g.add_argument("--tasks", default=",".join(TASKS))
    args = p.parse_args(argv)
    if args.cmd == "run":
        run_plan(plan(args.full_seeds, args.short_seeds, FULL_EPOCHS, args.short_epochs))
    elif args.cmd == "gradients":
        from ..fileio import write_json

        os.makedirs(RUNS, exist_ok=True)
        for task in args.tasks.split(","):
            path = os.path.join(RUNS, f"gradients_{task}.json")
            if os.path.exists(path):
                continue
            t0 = time.time()
            write_json(path, {"task": task, **gradient_variance(task, args.draws)})
            print(f"{time.strftime('%H:%M:%S')} gradients {task} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
