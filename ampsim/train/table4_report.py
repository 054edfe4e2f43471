"""Table 4 from its per-fold result files: the summary (best grid point per data set) and its Markdown.

Protocol of the report (reference notes section 4): average the 10 per-fold test curves of a
grid point, take the best epoch of that average, mean ± std (unbiased) over folds at that
epoch, x100; the reported cell is the complete grid point with the highest mean, beside the
paper's AMP-RNN row (Table 4). The fold files are read from their folder or their pack
(:mod:`ampsim.runpack`). ``ampsim table4 render`` writes it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import runpack
from ..data.tu import DATASETS
from ..fileio import write_text
from .graph_classification import DEFAULT_RUNS, EPOCHS, FOLDS, PAPER_AMP_RNN, GridPoint, grid, read_fold
from .loop import write_result

__all__ = ["summarize", "write_tables", "render_table4"]


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return float("nan")
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def summarize(root: str = DEFAULT_RUNS, datasets: Sequence[str] = DATASETS, epochs: int = EPOCHS) -> dict:
    """Per data set: every grid point's fold count and, for complete points, the best-epoch mean ± std (%).

    A grid point is complete with all 10 folds at ``epochs`` epochs (subset runs never count).
    The reported entry is the complete point with the highest mean. ``root``: the fold files'
    folder, or their pack (:mod:`ampsim.runpack`).
    """
    out: dict[str, Any] = {}
    root = runpack.folder(root)
    for name in datasets:
        base = Path(root) / name
        points = {}
        if base.is_dir():
            for d in sorted(p for p in base.iterdir() if p.is_dir()):
                try:
                    point = GridPoint.from_tag(d.name)
                except ValueError:
                    continue
                recs = []
                for f in sorted(d.glob("fold*.json")):
                    r = read_fold(f)
                    if r.get("epochs") == epochs and not r.get("subset", False):
                        recs.append(r)
                entry: dict[str, Any] = {"folds": len(recs), "minutes": sum(r["seconds"] for r in recs) / 60}
                if len(recs) == FOLDS:
                    curves = torch.tensor([r["test_acc"] for r in recs], dtype=torch.float64)
                    avg = curves.mean(0)
                    best = int(avg.argmax())
                    at = [100.0 * float(v) for v in curves[:, best]]
                    last = [100.0 * float(v) for v in curves[:, -1]]
                    entry.update(mean=sum(at) / len(at), std=_std(at), best_epoch=best + 1,
                                 final_mean=sum(last) / len(last), final_std=_std(last))
                points[point.tag] = entry
        complete = {t: e for t, e in points.items() if "mean" in e}
        row: dict[str, Any] = {"paper": dict(zip(("mean", "std"), PAPER_AMP_RNN[name])), "grid": points,
                               "grid_size": len(grid(name)), "complete_points": len(complete),
                               "grid_minutes": round(sum(e["minutes"] for e in points.values()), 1)}
        if complete:
            tag = max(complete, key=lambda t: complete[t]["mean"])
            e = complete[tag]
            row.update(mean=round(e["mean"], 2), std=round(e["std"], 2), folds=FOLDS, minutes=round(e["minutes"], 1),
                       grid_point=tag, best_epoch=e["best_epoch"],
                       within_paper_std=abs(e["mean"] - PAPER_AMP_RNN[name][0]) <= PAPER_AMP_RNN[name][1])
        out[name] = row
    return out


def write_tables(summary: dict, json_path: str = "results/table4.json", md_path: str = "results/table4.md",
                 root: str = DEFAULT_RUNS, note: str = "") -> None:
    """``results/table4.json`` and ``results/table4.md`` (ours beside the paper's AMP-RNN row), summarising the
    fold files under ``root``; ``note`` (how the runs ran: command, machine, wall time) opens the Markdown."""
    write_result(json_path, summary)
    Path(md_path).parent.mkdir(parents=True, exist_ok=True)
    write_text(md_path, render_table4(summary, json_path, md_path, root, note))


def render_table4(summary: dict, json_path: str = "results/table4.json", md_path: str = "results/table4.md",
                  root: str = DEFAULT_RUNS, note: str = "") -> str:
    """The Markdown of :func:`write_tables`: the paper's row and ours, then every grid point; the
    regenerating command names ``root``, ``json_path`` and ``md_path``."""
    names = list(summary)
    head = "| Model | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    paper = "| AMP-RNN (paper) | " + " | ".join(f"{PAPER_AMP_RNN[n][0]} ± {PAPER_AMP_RNN[n][1]}" for n in names) + " |\n"
    def cell(n: str) -> str:
        s = summary[n]
        if "mean" not in s:
            return "not run"
        part = "" if s["complete_points"] == s["grid_size"] else f" ({s['complete_points']}/{s['grid_size']} grid points)"
        return f"{s['mean']:.1f} ± {s['std']:.1f}{part}"

    ours = "| AMP-RNN (ampsim, batched) | " + " | ".join(cell(n) for n in names) + " |\n"
    files = f"--out {root} --json {json_path} --md {md_path}"
    if runpack.is_pack(root):
        runs = (f"the runs: `ampsim table4 run --workers 2 --out runs/table4_runs`, then "
                f"`ampsim runs pack runs/table4_runs {root}`")
    else:
        runs = f"runs: `ampsim table4 run --datasets NAME --folds 0-9 {files}`"
    lines = ["# Table 4: graph classification accuracy (%)\n\n", *([note + "\n\n"] if note else []),
             "Protocol: reference notes section 4 (10 GIN folds, 350 epochs of one full-batch Adam step, lr 0.01, "
             "StepLR(50, 0.5), best epoch of the fold-averaged test curve, mean ± std over folds, best grid point). "
             f"Regenerate: `ampsim table4 render {files}` ({runs}).\n\n",
             head + paper + ours,
             "\n## Grid points\n\n",
             "| data set | grid point | folds | best epoch | mean ± std | final epoch | minutes (10 folds) |\n"
             "|---|---|---|---|---|---|---|\n"]
    for n in names:
        s = summary[n]
        for tag, e in s["grid"].items():
            acc = f"{e['mean']:.1f} ± {e['std']:.1f}" if "mean" in e else "-"
            fin = f"{e['final_mean']:.1f} ± {e['final_std']:.1f}" if "mean" in e else "-"
            lines.append(f"| {n} | {tag} | {e['folds']}/10 | {e.get('best_epoch', '-')} | {acc} | {fin} | "
                         f"{e['minutes']:.1f} |\n")
        if not s["grid"]:
            lines.append(f"| {n} | (none run) | 0/10 | - | - | - | - |\n")
    total = sum(summary[n].get("grid_minutes", 0.0) for n in names)
    lines.append("\nGrid minutes (all grid points x 10 folds, the sum of the per-fold wall-clock minutes; stacked folds "
                 "count their share of the pass): " + ", ".join(f"{n} {summary[n].get('grid_minutes', 0.0):.1f}"
                                                                 for n in names)
                 + f"; total {total:.1f} minutes.\n")
    lines.append("\nMinutes are wall-clock on a shared 2-core CPU machine, one torch thread per run. A grid point "
                 "counts only with all 10 folds; the reported cell is the best complete point (of "
                 + ", ".join(f"{n}: {summary[n]['complete_points']}/{summary[n]['grid_size']}" for n in names)
                 + " points done).\n")
    return "".join(lines)


