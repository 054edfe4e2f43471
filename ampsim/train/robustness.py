"""Delay robustness of trained AMP node classifiers: test accuracy under delays and losses not trained on.

A GNN's output does not depend on message timing; an AMP model's may. Every trained AMP model
(its parameters at the selected epoch, :func:`ampsim.train.node_classification.train_seed`) is
evaluated on the test nodes under each **condition** (dropout off):

=================  ===========================================================
condition          delays, message loss
=================  ===========================================================
``constant``       every delay 1.0
``uniform``        U(0, 1]
``exponential``    Exp with mean 0.5 (never seen in training)
``pareto``         Pareto, alpha 1.5, mean 0.5: heavy-tailed (never seen)
``loss 1%``        the training delays, each copy lost with probability 0.01
``loss 5%``        the training delays, each copy lost with probability 0.05
=================  ===========================================================

Each condition is run with two delay seeds (``derive_seed(seed, "robust-a")`` and ``"robust-b"``):
the reported accuracy is seed a's; **changed** is the fraction of test nodes whose predicted class
differs between the two (prediction stability: 0 where the condition draws nothing at random).

For an order-free cell (AMP-Mean, AMP-Att: sums and running softmaxes, emission once per wave)
the loss-free conditions give the same outputs up to float rounding: once the run is quiescent its
state is a function of the set of delivered messages (:mod:`ampsim.batched.settled`), which no
delay changes. Under loss a node that misses a message never completes its wave; it reads out
what arrived (:mod:`ampsim.cells.aggregate`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..engine.delays import Constant, Exponential, Pareto, Uniform
from ..engine.rng import derive_seed

__all__ = ["CONDITIONS", "conditions_for", "evaluate_conditions", "summarize_robustness", "render_robustness"]

#: Condition name -> (delay model, or None for the training delays; loss probability).
CONDITIONS: dict[str, tuple[Any, float]] = {
    "constant": (Constant(), 0.0),
    "uniform": (Uniform(), 0.0),
    "exponential": (Exponential(0.5), 0.0),
    "pareto": (Pareto(1.5, 1.0 / 6.0), 0.0),
    "loss 1%": (None, 0.01),
    "loss 5%": (None, 0.05),
}


def conditions_for(training_delay: str) -> list[tuple[str, Any, float]]:
    """``(name, delay model, loss)`` of every condition for a model trained under ``training_delay``."""
    return [(name, training_delay if delay is None else delay, loss) for name, (delay, loss) in CONDITIONS.items()]


def evaluate_conditions(logp: Callable[[Any, int, float], Tensor], training_delay: str, seed: int,
                        y: Tensor, test_mask: Tensor) -> dict[str, dict[str, float]]:
    """``{condition: {"test_acc", "changed"}}``; ``logp(delay, delay_seed, loss)`` gives (n, C) log-probabilities."""
    out = {}
    sa, sb = derive_seed(seed, "robust-a"), derive_seed(seed, "robust-b")
    target = y[test_mask]
    with torch.no_grad():
        for name, delay, loss in conditions_for(training_delay):
            a = logp(delay, sa, loss).argmax(-1)[test_mask]
            b = logp(delay, sb, loss).argmax(-1)[test_mask]
            out[name] = {"test_acc": float((a == target).float().mean()), "changed": float((a != b).float().mean())}
    return out


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s


def summarize_robustness(results: Sequence[dict]) -> dict:
    """Rows ``(data set, model key)`` with, per condition, the mean and std over seeds of the test accuracy
    and of the changed fraction (in %), and each row's accuracy at its selected epoch (the training condition)."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if r.get("robustness") and r.get("finished"):
            rows.setdefault((r["dataset"], r["key"]), []).append(r)
    out = []
    for (dataset, key), runs in sorted(rows.items()):
        runs.sort(key=lambda r: r["seed"])
        row: dict[str, Any] = {"dataset": dataset, "key": key, "model": runs[0]["model"], "delay": runs[0]["delay"],
                               "seeds": [r["seed"] for r in runs], "conditions": {}}
        row["trained"] = dict(zip(("mean", "std"), _mean_std([100 * r["test_acc"] for r in runs])))
        for name in CONDITIONS:
            acc = [100 * r["robustness"][name]["test_acc"] for r in runs]
            chg = [100 * r["robustness"][name]["changed"] for r in runs]
            (am, asd), (cm, csd) = _mean_std(acc), _mean_std(chg)
            row["conditions"][name] = {"test_acc": am, "test_acc_std": asd, "changed": cm, "changed_std": csd}
        out.append(row)
    return {"format": "ampsim.delay_robustness", "conditions": list(CONDITIONS), "rows": out}


def render_robustness(summary: dict) -> str:
    """The Markdown of :func:`summarize_robustness`: one accuracy table and one stability table per data set."""
    conds = summary["conditions"]
    lines = ["# Delay robustness of trained AMP node classifiers (test accuracy, %)", "",
             "Each trained model (its parameters at the epoch selected on validation) evaluated on the test nodes "
             "under delays and message loss; mean ± std over seeds. *trained*: the accuracy reported in "
             "`node_classification.md` (the training delays, the evaluation seed of the protocol). "
             "Conditions and the reason order-free cells do not move: `docs/node_classification.md`.", ""]
    for dataset in sorted({r["dataset"] for r in summary["rows"]}):
        rows = [r for r in summary["rows"] if r["dataset"] == dataset]
        for title, field in (("test accuracy", "test_acc"), ("test predictions changed between two delay seeds",
                                                                 "changed")):
            lines += [f"## {dataset}: {title}", "",
                      "| model | trained under | seeds | " + ("trained | " if field == "test_acc" else "")
                      + " | ".join(conds) + " |",
                      "|---|---|---|" + ("---|" if field == "test_acc" else "") + "---|" * len(conds)]
            for r in rows:
                cells = [f"{r['conditions'][c][field]:.1f} ± {r['conditions'][c][field + '_std']:.1f}" for c in conds]
                head = f"| {r['model']} | {r['delay']} | {len(r['seeds'])} | "
                if field == "test_acc":
                    head += f"{r['trained']['mean']:.1f} ± {r['trained']['std']:.1f} | "
                lines.append(head + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)
