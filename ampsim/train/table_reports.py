"""Tables 2 and 3, Figures 5 and 6 and the gate comparison as files: Markdown, JSON and pictures.

Each ``render_*`` turns a summary of :mod:`ampsim.train.tables` (finished per-seed results,
run folders or packs) into the Markdown published under ``results/``, next to the paper's
numbers; :func:`write_all` writes every table and figure at once (``ampsim table2 render``).
Cells give mean ± population std over seeds, the number of seeds in brackets.
"""
from __future__ import annotations

import os
from typing import Optional

from .. import runpack
from ..fileio import save_figure, write_json, write_text
from .tables import (MIN_BUCKET_NODES, PAPER_TABLE2, PAPER_TABLE3, REGENERATE, ROOT, TABLE3_MODELS, TABLE3_SIZES,
                     gate_summary, table2_summary, table3_summary)

__all__ = ["render_table2", "render_table3", "render_gate", "render_figure6", "render_comparison", "plot_figure5",
           "plot_figure6", "write_all"]


def _executor_line(summary: dict) -> list[str]:
    total: dict[str, int] = {}
    for row in summary.values():
        for name, n in row.get("executors", {}).items():
            total[name] = total.get(name, 0) + n
    if not total:
        return []
    return ["Executor of the counted runs: " + ", ".join(f"{name} ({n} runs)" for name, n in total.items())
            + " (`batched` processes the engine's message sequence, tests/batched/test_equivalence.py).", ""]


def _fmt(cell: Optional[dict]) -> str:
    if not cell:
        return "not run"
    return f"{cell['mean']:.2f} ± {cell['std']:.2f} ({cell['seeds']})"


def render_table2(summary: dict) -> str:
    lines = [
        "# Table 2, AMP column: ours vs the paper",
        "",
        "Test accuracy, mean ± std (population std) over seeds, number of seeds in brackets.",
        "Protocol: AMP-RNN, 1000 full-batch Adam steps (lr 0.01), hidden 16/32, message size 3,",
        "start message ones(3), one run per node, budget 5n processed deliveries, constant delays.",
        "",
        REGENERATE,
        "",
        *_executor_line(summary),
        "| Set | paper | ours | within 0.05 |",
        "|---|---|---|---|",
    ]
    for paper_name, (m, s) in PAPER_TABLE2.items():
        cell = summary.get(paper_name)
        ok = "—" if not cell else ("yes" if abs(cell["mean"] - m) <= 0.05 else "no")
        lines.append(f"| {paper_name} | {m:.2f} ± {s:.2f} | {_fmt(cell)} | {ok} |")
    return "\n".join(lines) + "\n"


def render_table3(summary: dict) -> str:
    head = " | ".join(str(s) for s in TABLE3_SIZES)
    lines = [
        "# Table 3: shortest-path parity, ours vs the paper",
        "",
        "Per-node test accuracy by test graph size (training on 10-node graphs), mean ± std over seeds",
        "(population std), seeds in brackets. Each cell: paper / ours.",
        "Protocol: 100 training graphs of 10 nodes, 1000 full-batch Adam steps (lr 0.01), hidden 30,",
        "e0 of size 3 at the origin, budget 10n processed deliveries, constant delays, 10 test graphs per size.",
        "",
        REGENERATE,
        "",
        *_executor_line(summary),
        f"| Model | {head} |",
        "|---|" + "---|" * len(TABLE3_SIZES),
    ]
    for model, paper in PAPER_TABLE3.items():
        row = summary.get(model, {})
        cells = []
        for size in TABLE3_SIZES:
            p = paper[size]
            cells.append(f"{p[0]:.2f} ± {p[1]:.2f} / {_fmt(row.get(str(size)))}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += _table3_ordering(summary)
    return "\n".join(lines) + "\n"


HALTING, RECURRENT = ("AMP-ACT", "AMP-Iter"), ("AMP-RNN", "AMP-GRU", "AMP-LSTM")


def _table3_ordering(summary: dict) -> list[str]:
    """The variants ranked by mean accuracy per size (paper and ours), and whether halting beats recurrent."""
    lines = ["", "## Ordering of the variants (mean accuracy to 2 decimals, as printed; `=` a tie)", "",
             "| size | paper | ours | halting > recurrent (paper / ours) |", "|---|---|---|---|"]
    for size in TABLE3_SIZES:
        ours = {m: summary.get(m, {}).get(str(size), {}).get("mean") for m in PAPER_TABLE3}
        if any(v is None for v in ours.values()):
            continue
        paper = {m: PAPER_TABLE3[m][size][0] for m in PAPER_TABLE3}

        def rank(means: dict) -> str:
            order = sorted(means, key=lambda m: (-round(means[m], 2), m))
            out = order[0].replace("AMP-", "")
            for a, b in zip(order, order[1:]):
                out += (" = " if round(means[a], 2) == round(means[b], 2) else " > ") + b.replace("AMP-", "")
            return out

        def split(means: dict) -> str:
            low, high = round(min(means[m] for m in HALTING), 2), round(max(means[m] for m in RECURRENT), 2)
            return "yes" if low > high else ("tie" if low == high else "no")

        lines.append(f"| {size} | {rank(paper)} | {rank(ours)} | {split(paper)} / {split(ours)} |")
    it = summary.get("AMP-Iter", {}).get("1000")
    if it is not None:
        lines += ["", f"Goal AMP-Iter >= 0.95 at 1000 nodes: {it['mean']:.3f} over {it['seeds']} seeds "
                      f"({'met' if it['mean'] >= 0.95 else 'not met'})."]
    return lines


def render_gate(summary: dict) -> str:
    lines = [
        "# Learned emission gate (straight-through) vs always-emit, AMP-RNN",
        "",
        "Same tasks, seeds and protocol; mean test accuracy over the task's test splits",
        "(for the parity task, the mean over its test sizes). Mean ± std (seeds).",
        "",
        REGENERATE,
        "(the always-emit twins are the run2 / run3 folders of the same seeds).",
        "",
        "Deliveries: processed deliveries per run of the trained models on the first test split (the",
        "budget is 5n or 10n; always-emit spends all of it unless a run goes quiet).",
        "",
        "| Task | always emit: accuracy | learned gate: accuracy | always emit: deliveries/run | learned gate: deliveries/run |",
        "|---|---|---|---|---|",
    ]
    for task, row in summary.items():
        a, g = row["always_emit"], row["gate"]
        lines.append(f"| {task} | {_fmt(a)} | {_fmt(g)} | {a.get('deliveries_per_run', '—')} | "
                     f"{g.get('deliveries_per_run', '—')} |")
    return "\n".join(lines) + "\n"


def plot_figure5(summary: dict, out_dir: str) -> list[str]:
    """Figure 5a (accuracy by distance bucket) and 5b (seen distances only, by size) as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, row in summary.items():
        xs = [int(b) for b, cell in row.get("by_distance", {}).items() if cell["nodes"] >= MIN_BUCKET_NODES]
        ys = [row["by_distance"][str(b)]["mean"] for b in xs]
        ax.plot(xs, ys, marker="o", ms=3, label=f"{model} ({len(row['seed_list'])} seeds)")
    ax.set(xlabel="distance to the origin (buckets 1-2, 3-4, ...)", ylabel="accuracy", ylim=(0.0, 1.02),
           title=f"Figure 5a: accuracy by distance (all test sizes; buckets with >= {MIN_BUCKET_NODES} nodes)")
    ax.legend(fontsize=8)
    paths.append(os.path.join(out_dir, "figure5a.png"))
    save_figure(fig, paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, row in summary.items():
        sizes = [s for s in TABLE3_SIZES if str(s) in row.get("seen", {})]
        ax.plot(range(len(sizes)), [row["seen"][str(s)]["mean"] for s in sizes], marker="o", ms=3, label=model)
        ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set(xlabel="test graph size", ylabel="accuracy", ylim=(0.45, 1.02),
           title="Figure 5b: accuracy on distances seen in training")
    ax.legend(fontsize=8)
    paths.append(os.path.join(out_dir, "figure5b.png"))
    save_figure(fig, paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def render_figure6(single: dict, triple: dict) -> str:
    """Figure 6 as a table: accuracy per size for one origin (Table 3's runs) and for three at once."""
    lines = [
        "# Figure 6: one shortest-path parity problem against three at once (oversquashing)",
        "",
        "Per-node test accuracy, mean ± std over seeds (seeds in brackets); each cell: one origin / three",
        "origins on the same graph (every node predicts three parities; message size 9, three start messages",
        "e_1, e_2, e_3). Same protocol as Table 3 otherwise. The paper gives Figure 6 as a plot only.",
        "Drop: mean accuracy lost from one problem to three (the paper: the larger, the more a method",
        "is exposed to oversquashing).",
        "",
        REGENERATE,
        "",
        "| Model | " + " | ".join(str(s) for s in TABLE3_SIZES) + " | mean drop |",
        "|---|" + "---|" * (len(TABLE3_SIZES) + 1),
    ]
    for model in TABLE3_MODELS:
        one, three = single.get(model, {}), triple.get(model, {})
        if not three:
            continue
        cells, drops = [], []
        for size in TABLE3_SIZES:
            a, b = one.get(str(size)), three.get(str(size))
            cells.append(f"{_fmt(a)} / {_fmt(b)}")
            if a is not None and b is not None:
                drops.append(a["mean"] - b["mean"])
        drop = f"{sum(drops) / len(drops):.3f}" if drops else "—"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {drop} |")
    return "\n".join(lines) + "\n"


def plot_figure6(single: dict, triple: dict, out_dir: str) -> str:
    """Figure 6a (one origin) and 6b (three origins): accuracy by test size, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, summary, title in ((axes[0], single, "(a) one problem"), (axes[1], triple, "(b) three problems")):
        for model in TABLE3_MODELS:
            row = summary.get(model, {})
            sizes = [s for s in TABLE3_SIZES if str(s) in row]
            if sizes:
                ax.plot(range(len(sizes)), [row[str(s)]["mean"] for s in sizes], marker="o", ms=3,
                        label=f"{model} ({row[str(sizes[0])]['seeds']} seeds)")
                ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
        ax.set(xlabel="test graph size", title=f"Figure 6{title}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("accuracy")
    path = os.path.join(out_dir, "figure6.png")
    save_figure(fig, path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _dump(path: str, obj) -> None:
    """A table (text) or its figures (JSON, key order kept) through :mod:`ampsim.fileio`."""
    if isinstance(obj, str):
        write_text(path, obj)
    else:
        write_json(path, obj, sort_keys=False)


def write_all(root: str = ROOT, out_dir: str = "results") -> list[str]:
    """Write table2.{json,md}, table3.{json,md}, table3_details.json, figure6.{json,md,png}, gate.{json,md}
    and the Figure 5 plots to ``out_dir`` from the runs of ``root`` (run folders, or packs)."""
    root = runpack.folder(root)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    t2 = table2_summary(root)
    _dump(os.path.join(out_dir, "table2.json"), {k: {f: v[f] for f in ("mean", "std", "seeds")} for k, v in t2.items()})
    _dump(os.path.join(out_dir, "table2.md"), render_table2(t2))
    written += ["table2.json", "table2.md"]
    t3 = table3_summary(root)
    _dump(os.path.join(out_dir, "table3.json"),
          {m: {str(s): row[str(s)] for s in TABLE3_SIZES if str(s) in row} for m, row in t3.items()})
    _dump(os.path.join(out_dir, "table3.md"), render_table3(t3))
    _dump(os.path.join(out_dir, "table3_details.json"), t3)
    written += ["table3.json", "table3.md", "table3_details.json"]
    if t3:
        written += [os.path.basename(p) for p in plot_figure5(t3, out_dir)]
    t6 = table3_summary(root, task="parity-multi")
    if t6:
        _dump(os.path.join(out_dir, "figure6.json"),
              {"single": {m: {str(s): row[str(s)] for s in TABLE3_SIZES if str(s) in row} for m, row in t3.items()},
               "triple": {m: {str(s): row[str(s)] for s in TABLE3_SIZES if str(s) in row} for m, row in t6.items()}})
        _dump(os.path.join(out_dir, "figure6.md"), render_figure6(t3, t6))
        written += ["figure6.json", "figure6.md", os.path.basename(plot_figure6(t3, t6, out_dir))]
    gate = gate_summary(root)
    if gate:
        _dump(os.path.join(out_dir, "gate.json"), gate)
        _dump(os.path.join(out_dir, "gate.md"), render_gate(gate))
        written += ["gate.json", "gate.md"]
    return [os.path.join(out_dir, w) for w in written]


def render_comparison(comparison: dict, root: str, note: str = "") -> str:
    """Markdown of :func:`compare_table2`; ``note`` (how the rerun ran: command, machine, wall time) goes first."""
    lines = ["# Table 2 rerun on the one loop vs the published runs", ""]
    if note:
        lines += [note, ""]
    lines += [f"Rerun: run folders under `{root}` (seeds that share their graphs and have small levels train as",
              "one stack); published: the packed runs in `results/`. Accuracy: mean ± population std (seeds).",
              "Minutes: wall-clock training time of the runs, a stacked pass counted once. The published runs",
              "ran earlier, with the executor of their day and under other loads, so minutes compare only roughly.",
              "", "| Set | rerun | published | rerun minutes (stacked seeds) | published minutes |",
              "|---|---|---|---|---|"]
    done_new = done_old = 0.0
    for paper, row in comparison.items():
        new, old = row.get("rerun"), row.get("published")
        new_min = f"{new['train_minutes']:.1f} ({new['stacked']})" if new else "not run"
        old_min = f"{old['train_minutes']:.1f}" if old else "-"
        lines.append(f"| {paper} | {_fmt(new)} | {_fmt(old)} | {new_min} | {old_min} |")
        if new and old and new["seeds"] == old["seeds"]:
            done_new += new["train_minutes"]
            done_old += old["train_minutes"]
    lines += ["", f"Sets the rerun completed: {done_new:.1f} min of training (rerun) against {done_old:.1f} min "
              "(published)."]
    return "\n".join(lines) + "\n"


