"""Two questions answered with :mod:`ampsim.trace.reaction` (docs/reaction.md, notebooks/05_learned_dynamics.ipynb).

**Figure 3 (Section 3): does a node forward information that is irrelevant to itself?**
:func:`figure3_task` builds paths s - r_1 - ... - r_k - v (k = 2..5). The end s is red in half of
the graphs (white otherwise); every other node is blue or white at random; v is marked. The target
of v: "is there a red node?" (only s can be red); the target of every other node: "is at least one
of my neighbours blue?" -- which does not depend on s's colour for the relays r_i (s's colour
only matters for r_1 through "blue", and s is never blue). One run starts at s (Table 3's
protocol: readout of every node, budget 10n). The relays must carry s's colour to v although
their own answer does not need it. :func:`counterfactual_relays` runs each test path twice, s red
and s white, same delays, and measures per relay how differently it reacted (state change) and
what it emitted, against how much its own answer moved.

**Parity (Table 3): what do halted AMP-Iter nodes ignore?** :func:`halting_drops` classifies every
message a node receives by where it comes from relative to the origin: from a node *closer* to
the origin (the first wave, which carries the distance), *as close*, or *farther* (echoes). A
halted node's drops are split the same way, and per node we record whether it halted before its
first message from a closer node arrived.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import torch

from .. import runpack
from ..fileio import save_figure
from ..data.graphdata import GraphData
from ..engine.rng import stream
from ..trace.reaction import Reaction, hop_distances, trace_reactions

__all__ = ["figure3_task", "figure3_graph", "train_figure3", "load_figure3_model", "counterfactual_relays", "halting_drops", "direction",
           "load_parity_model", "halting_order", "FIGURE3_RUN"]

RED, BLUE, WHITE, MARK = 0, 1, 2, 3
# the published runs read by default, as the repository names them; read from the checkout (runpack.published)
PARITY_RUN = "results/table3_runs.jsonl.gz/parity/amp-iter/seed0"  # the Table 3 AMP-Iter run of seed 0
FIGURE3_RUN = os.path.join("results", "reaction", "figure3-amp-rnn")


def _path_graph(colours: Sequence[int], target_end: int) -> GraphData:
    n = len(colours)
    edges = [(i, i + 1) for i in range(n - 1)]
    directed = sorted({(u, v) for a, b in edges for u, v in ((a, b), (b, a))})
    x = torch.zeros(n, 4)
    x[torch.arange(n), torch.tensor(list(colours))] = 1.0
    x[target_end, MARK] = 1.0
    red = int(any(c == RED for c in colours))
    y = []
    for v in range(n):
        if v == target_end:
            y.append(red)
        else:
            nb = [u for u in (v - 1, v + 1) if 0 <= u < n]
            y.append(int(any(colours[u] == BLUE for u in nb)))
    return GraphData(torch.tensor(directed, dtype=torch.long).t().contiguous(), x,
                     torch.tensor(y, dtype=torch.long), n, "node", starts=torch.tensor([0]),
                     meta={"colours": tuple(colours), "distances": torch.arange(n).reshape(n, 1)})


def figure3_graph(relays: Sequence[int], s_red: bool) -> GraphData:
    """The path s, relays (colours BLUE/WHITE), v (white, marked); s red or white; origin s = node 0."""
    return _path_graph([RED if s_red else WHITE, *relays, WHITE], len(relays) + 1)


def figure3_task(seed: int = 0, train: int = 64, test: int = 32):
    """The Figure 3 task as a :class:`~ampsim.train.synthetic.TaskSpec` (see the module docstring)."""
    from ..train.loop import TaskSpec

    rng = stream(seed, "figure3")

    def draw() -> GraphData:
        k = rng.randint(2, 5)
        return figure3_graph([rng.choice((BLUE, WHITE)) for _ in range(k)], rng.random() < 0.5)

    tr = [draw() for _ in range(train)]
    te = [draw() for _ in range(test)]
    return TaskSpec(name="Figure3", train=tr, tests={"test": te}, num_classes=2, hidden=16, aggr="sum",
                    readout="all", budget_factor=10, msg_size=3, heads=1, in_features=4)


def train_figure3(out_dir: str = FIGURE3_RUN, epochs: int = 300, seed: int = 0) -> dict:
    """Train AMP-RNN (constant delays) on :func:`figure3_task` with ``ampsim.train.fit``; checkpoint in ``out_dir``."""
    from ..train import TrainConfig, fit

    torch.set_num_threads(1)
    config = TrainConfig(task="figure3", model="amp-rnn", delay="constant", seed=seed, epochs=epochs)
    return fit(config, task=figure3_task(seed), out_dir=out_dir, resume=True)


def load_figure3_model(out_dir: Optional[str] = None):
    """The trained Figure 3 model of ``out_dir`` (default: the published :data:`FIGURE3_RUN` of the checkout) and
    its task."""
    from ..train import TrainConfig, build_model

    out_dir = runpack.published(FIGURE3_RUN) if out_dir is None else out_dir
    ckpt = torch.load(os.path.join(out_dir, "checkpoint.pt"), map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(ckpt["config"])
    task = figure3_task(config.seed)
    model = build_model(task, config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, task


def counterfactual_relays(model, graphs: Sequence[GraphData], delay: str = "constant", seed: int = 0) -> list[dict]:
    """Per test path and per node: run with s red and with s white (same delays) and compare.

    Per node: its role (``s``, ``relay``, ``v``), the summed state change of its deliveries in both
    runs, ``state_gap`` = ||h_red - h_white|| of its final hidden state, ``emitted_gap`` = summed
    ||m_red - m_white|| over its emissions in delivery order, and ``answer_gap`` = ``|p_red - p_white|`` of
    its own predicted probability of class 1 (for relays their target is the same in both runs).
    """
    rows = []
    for gi, g in enumerate(graphs):
        colours = g.meta["colours"]
        relays = list(colours[1:-1])
        runs = {}
        for red in (True, False):
            gg = figure3_graph(relays, red)
            rr = trace_reactions(model, gg, 0, delay=delay, seed=seed, budget_factor=10)
            emitted = _emissions(model, gg, delay, seed)
            with torch.no_grad():
                prob = model.readout_states(rr.final_states.unsqueeze(0))[0].exp()[:, 1]
            runs[red] = (rr, emitted, prob)
        n = g.num_nodes
        for v in range(n):
            role = "s" if v == 0 else ("v" if v == n - 1 else "relay")
            ch = {red: sum(r.change for r in runs[red][0].reactions if r.node == v) for red in runs}
            hr, hw = runs[True][0].final_states[v], runs[False][0].final_states[v]
            er, ew = runs[True][1].get(v, []), runs[False][1].get(v, [])
            gap = sum(float((a - b).norm()) for a, b in zip(er, ew)) + sum(float(x.norm()) for x in er[len(ew):] + ew[len(er):])
            rows.append({"graph": gi, "node": v, "role": role, "hop": v, "change_red": ch[True], "change_white": ch[False],
                         "state_gap": float((hr - hw).norm()), "emitted_gap": gap,
                         "answer_gap": float((runs[True][2][v] - runs[False][2][v]).abs())})
    return rows


def _emissions(model, graph: GraphData, delay: str, seed: int) -> dict:
    """Per node, the messages it emitted, in order (payload tensors), from a traced engine run."""
    from ..cells.execute import graph_of
    from ..cells.rule import CellRule
    from ..engine.messages import Message
    from ..engine.simulation import Simulation

    run = model.runs(graph, seed)[0]
    out: dict = {}

    class Rec(CellRule):
        def receive(self, node, state, message):
            new, msg = super().receive(node, state, message)
            if msg is not None:
                out.setdefault(node_of[id(node)], []).append(msg.payload.detach())
            return new, msg

    start = {v: Message("start", run.messages[j]) for j, v in enumerate(run.starts)}
    sim = Simulation(graph_of(graph), Rec(model.cell), delay=delay, seed=run.seed, start=start, features=graph.x,
                     allow_isolated=True)
    node_of = {id(view): v for v, view in enumerate(sim.views)}
    with torch.no_grad():
        sim.run(max_deliveries=10 * graph.num_nodes)
    return out


def direction(r: Reaction, dist: Sequence[Optional[int]]) -> str:
    """Where message ``r`` comes from relative to the origin: ``closer``, ``same`` or ``farther``."""
    a, b = dist[r.src], dist[r.node]
    return "closer" if a < b else ("same" if a == b else "farther")


def load_parity_model(run_dir: Optional[str] = None, test_sizes: Sequence[int] = (25,)):
    """A trained parity model of the run folder ``run_dir`` (or ``<pack>/parity/<model>/seed<k>`` inside
    a pack, :func:`ampsim.runpack.folder`; default: the published :data:`PARITY_RUN` of the checkout) with a
    small test set only (:func:`ampsim.train.load_model` would rebuild every test size up to 2500 nodes)."""
    from ..train import TrainConfig, build_model, load_task

    run_dir = runpack.published(PARITY_RUN) if run_dir is None else run_dir
    ckpt = torch.load(os.path.join(runpack.folder(run_dir), "checkpoint.pt"), map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(ckpt["config"])
    task = load_task(config.task, config.seed, train_graphs=config.train_graphs, test_sizes=tuple(test_sizes))
    model = build_model(task, config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, task, config


def halting_drops(model, graphs: Sequence[GraphData], delay: str = "constant", seed: int = 0) -> dict:
    """Over ``graphs`` (parity test graphs, one origin run each, budget 10n): every message by direction
    (closer / same / farther, see :func:`direction`) and whether it was processed or dropped by a
    halted node; per node whether it halted before any message from a closer node reached it, and
    whether its answer was right."""
    from collections import Counter

    counts: Counter = Counter()
    nodes = {"halted": 0, "never_halted": 0, "halted_before_first_closer": 0,
             "right_halted": 0, "right_never_halted": 0, "nodes": 0}
    for g in graphs:
        rr = trace_reactions(model, g, 0, delay=delay, seed=seed, budget_factor=10)
        dist = hop_distances(g, rr.starts)
        for r in rr.reactions:
            counts[(direction(r, dist), "dropped" if r.dropped else "processed")] += 1
        with torch.no_grad():
            pred = model.readout_states(rr.final_states.unsqueeze(0))[0].argmax(-1)
        right = (pred == model.targets(g)[0]).tolist()
        halted = model.cell.halted(rr.final_states).tolist()
        for v in range(g.num_nodes):
            mine = [r for r in rr.reactions if r.node == v]
            first_drop = next((i for i, r in enumerate(mine) if r.dropped), None)
            first_closer = next((i for i, r in enumerate(mine) if direction(r, dist) == "closer"), None)
            nodes["nodes"] += 1
            if halted[v]:
                nodes["halted"] += 1
                nodes["right_halted"] += int(right[v])
                if first_closer is None or (first_drop is not None and first_drop <= first_closer):
                    nodes["halted_before_first_closer"] += int(v not in rr.starts)
            else:
                nodes["never_halted"] += 1
                nodes["right_never_halted"] += int(right[v])
    by_dir = {}
    for d in ("closer", "same", "farther"):
        p, q = counts[(d, "processed")], counts[(d, "dropped")]
        by_dir[d] = {"processed": p, "dropped": q, "dropped_share": q / (p + q) if p + q else float("nan")}
    return {"by_direction": by_dir, "nodes": nodes}


def halting_order(model, task, sizes: Sequence[str] = ("25", "50"), seeds: Sequence[int] = range(5),
                  delay: str = "uniform", graphs: int = 16) -> list[dict]:
    """How many halted nodes halted before the first message from a closer node reached them.

    One row per (size, seed): the first ``graphs`` test graphs of ``task.tests[size]``, one run from
    the origin each (:func:`halting_drops` with ``delay`` and ``seed``), giving ``halted`` and
    ``before_first_closer`` (halted nodes, the origin excepted, whose first drop came no later than
    their first message from a closer node, or that never got one). Under constant delays the count
    is 0 by construction (docs/reaction.md); under uniform delays it is a measurement.
    """
    rows = []
    for size in sizes:
        if size not in task.tests:
            raise ValueError(f"test size {size!r} not loaded; loaded: {', '.join(task.tests)}")
        for seed in seeds:
            nodes = halting_drops(model, task.tests[size][: graphs], delay=delay, seed=seed)["nodes"]
            rows.append({"size": size, "seed": seed, "delay": delay, "graphs": min(graphs, len(task.tests[size])),
                         "halted": nodes["halted"], "before_first_closer": nodes["halted_before_first_closer"]})
    return rows


def _parity_spacetime(model, g, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..viz.reaction import plot_reactions

    rr = trace_reactions(model, g, 0, budget_factor=10)
    ax = plot_reactions(rr.reactions, g.num_nodes, lane_key=hop_distances(g, rr.starts), title=title)
    ax.figure.tight_layout()
    save_figure(ax.figure, path, dpi=110)
    plt.close(ax.figure)


def write_reaction_demo(graphs: int = 16, parity_run: Optional[str] = None, out: str = os.path.join("runs", "reaction"),
                        figures: Optional[str] = None) -> dict:
    """Write ``out/{figure3,parity_iter}.json`` and the pictures into ``figures`` (default ``out``); return both
    summaries (published: ``ampsim reaction --out results/reaction --figures docs/reaction``). ``parity_run``:
    a parity run folder (default: the published :data:`PARITY_RUN`, read from the checkout)."""
    import collections

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import write_json
    from ..viz.reaction import plot_reactions

    figures = figures or out
    torch.set_num_threads(1)
    from ..sweeps import check_folder

    check_folder(figures)  # refused before any work; both made once the models are loaded
    check_folder(out)
    # Figure 3
    model, task = load_figure3_model()
    pmodel, ptask, _ = load_parity_model(parity_run, test_sizes=(25, 50))  # both models before any file
    os.makedirs(figures, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    tests = task.tests["test"][: graphs]
    rows = counterfactual_relays(model, tests)
    by_role: dict = collections.defaultdict(list)
    for r in rows:
        by_role[r["role"]].append(r)
    mean = lambda rs, k: sum(x[k] for x in rs) / len(rs)
    summary = {role: {k: mean(rs, k) for k in ("change_red", "change_white", "state_gap", "emitted_gap", "answer_gap")}
               | {"nodes": len(rs)} for role, rs in by_role.items()}
    v_rows = [r for r in rows if r["role"] == "v"]
    by_len = collections.defaultdict(list)
    for r in v_rows:
        by_len[r["node"] - 1].append(r["answer_gap"])
    write_json(os.path.join(out, "figure3.json"), {
        "run": FIGURE3_RUN, "graphs": len(tests), "by_role": summary,
        "v_answer_gap_by_relays": {k: sum(v) / len(v) for k, v in sorted(by_len.items())}, "rows": rows})
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.2))
    for ax, red in zip(axes, (True, False)):
        gg = figure3_graph([BLUE, WHITE, BLUE, WHITE], red)
        rr = trace_reactions(model, gg, 0, budget_factor=10)
        plot_reactions(rr.reactions, gg.num_nodes, lane_key=list(range(gg.num_nodes)), ax=ax,
                       title=f"Figure 3 path, s {'red' if red else 'white'}: reaction per delivery")
    fig.tight_layout()
    save_figure(fig, os.path.join(figures, "figure3_spacetime.png"), dpi=110)
    plt.close(fig)
    # parity / AMP-Iter (its model loaded first of all)
    by_size = {}
    for size in ("25", "50"):
        by_size[size] = halting_drops(pmodel, ptask.tests[size][: graphs])
    write_json(os.path.join(out, "parity_iter.json"), {"run": parity_run or PARITY_RUN, "graphs": graphs, "by_size": by_size})
    _parity_spacetime(pmodel, ptask.tests["25"][0], os.path.join(figures, "parity_iter_spacetime.png"),
                      "Parity, AMP-Iter (seed 0), 25 nodes: reaction per delivery; x = dropped by a halted node")
    return {"figure3": summary, "parity_iter": by_size}


if __name__ == "__main__":  # `python -m ampsim.theory.reaction_demo`: alias of `ampsim reaction` (the CLI)
    from ampsim.cli import alias

    raise SystemExit(alias(["reaction"]))
