"""One large AMP run: speed and peak memory of the batched executor against n, per graph family.

The workload: one run started at node 0 with the all-ones message, budget 10n deliveries,
AMP-GRU (hidden 32, message 16, 8 random input features), constant or uniform delays,
forward + backward of the sum of the final states; one torch thread. Families: ``tree``, a
uniform random labelled tree on n nodes (Pruefer sequence) plus n // 5 random extra edges;
``regular``, a random 3-regular graph on n nodes (networkx, seed 0: node labels in random
order); and the PubMed citation graph (data/planetoid, 19,717 nodes, 44,324 edges), once
per delay model (``--no-pubmed`` leaves it out).

Every point runs in a fresh subprocess, so its memory figure is its own: the peak-RSS mark is
reset (``/proc/self/clear_refs``), then the run is planned once ("plan s": the schedule and its
level program, ``BatchedExecutor.level_sizes``, which leaves the program in the executor's cache),
then one ``unroll`` (which takes that program and runs the forward pass: "fwd s") and the backward
pass are measured: ``peak bytes per delivery = (VmHWM - VmRSS before) / deliveries``: the plan,
the executor's work space and the gradients all count. By
default the child sets glibc's mmap threshold to 1 MB (``mallopt``), so that freed work
space goes back to the system and the resident size follows the live memory;
``--default-malloc`` keeps glibc's adaptive threshold (more stays resident).
Times are CPU seconds of that process (``time.process_time``; with one thread equal to
wall-clock time on an idle machine, and robust when other jobs share the cores; wall
seconds are in the JSON). ``rows/s = deliveries / (plan + fwd + backward)``, the
throughput the goal is stated in. In the same process, after the run: a plain ``nn.GRUCell(16, 32)`` forward +
backward on the same number of rows (chunks of 65,536 rows), its rows/s.

``--paths``: which level loop runs (``auto``: the compiled one when available, see
ampsim/batched/fused.py; ``fused``; ``eager``); ``--paths fused eager`` gives both rows of
each point, each in its own subprocess. Before the points the compiled loop is built once in
a fresh temporary cache folder, and that build's time is printed (the points then load the
library from the machine's cache).

    python benchmarks/scale.py                       # n = 1e3, 1e4, 1e5; tree, regular, PubMed; constant, uniform
    python benchmarks/scale.py --large               # and n = 1e6 (1e7 deliveries)
    python benchmarks/scale.py --sizes 100000 --delays constant --families tree --paths fused eager
    python benchmarks/scale.py --sizes 100000 --delays constant --code /tmp/old --out /tmp/before

Writes OUT.json and OUT.png (rows/s and bytes per delivery against n); OUT is ``runs/scale`` (ignored
by git) unless ``--out`` names another: the published figures are ``--out results/scale``.
The last line, over the points at the largest n and PubMed (of the first path of ``--paths``):
``single run, worst family: P% of the GRUCell rate, B bytes per delivery`` (P the smallest share,
B the largest bytes per delivery).
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = os.environ.get("SCALE_CODE", str(ROOT))   # --code: measure another checkout (e.g. before a change)
sys.path.insert(0, CODE)

HIDDEN, MSG, FEATURES = 32, 16, 8


# --------------------------------------------------------------------------- the graphs
def tree_plus_edges(n: int, seed: int = 0):
    """A uniform random labelled tree on n nodes (Pruefer decoding) plus n // 5 distinct extra edges."""
    import numpy as np

    from ampsim.graphs import Graph

    rng = np.random.default_rng(seed)
    edges = set()
    if n == 2:
        edges.add((0, 1))
    elif n > 2:
        seq = rng.integers(0, n, n - 2).tolist()
        deg = [1] * n
        for x in seq:
            deg[x] += 1
        leaves = [i for i in range(n) if deg[i] == 1]
        heapq.heapify(leaves)
        for x in seq:
            leaf = heapq.heappop(leaves)
            edges.add((min(leaf, x), max(leaf, x)))
            deg[x] -= 1
            if deg[x] == 1:
                heapq.heappush(leaves, x)
        u, v = heapq.heappop(leaves), heapq.heappop(leaves)
        edges.add((min(u, v), max(u, v)))
    extra = 0
    while extra < n // 5 and n > 3:
        a, b = rng.integers(0, n, 2).tolist()
        e = (min(a, b), max(a, b))
        if a != b and e not in edges:
            edges.add(e)
            extra += 1
    nbrs = [[] for _ in range(n)]
    for a, b in edges:
        nbrs[a].append(b)
        nbrs[b].append(a)
    return Graph(n, tuple(tuple(sorted(x)) for x in nbrs), tuple(range(n)), f"tree{n}+{n // 5}")


def regular_graph(n: int, degree: int = 3, seed: int = 0):
    """A random ``degree``-regular graph on n nodes (networkx; its node labels are in random order)."""
    import networkx as nx

    from ampsim.graphs import Graph

    G = nx.random_regular_graph(degree, n, seed=seed)
    return Graph(n, tuple(tuple(sorted(G.adj[v])) for v in range(n)), tuple(range(n)), f"regular{degree}_{n}")


def pubmed_graph():
    from ampsim.data.planetoid import load_planetoid
    from ampsim.graphs import as_graph

    p = load_planetoid("PubMed")
    return as_graph(p.graph.edge_index, num_nodes=p.num_nodes, name="PubMed")


# --------------------------------------------------------------------------- one point (child process)
def _vm(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def point(graph_name: str, n: int, delay: str, gru_rows_cap: int, mmap_threshold: bool, path: str = "auto") -> dict:
    """Plan, forward and backward of one run; then a plain GRUCell on as many rows."""
    import torch

    from ampsim.batched import BatchedExecutor
    from ampsim.cells.cells import AMPCell

    torch.set_num_threads(1)
    g = {"PubMed": lambda: pubmed_graph(), "tree": lambda: tree_plus_edges(n),
         "regular": lambda: regular_graph(n)}[graph_name]()
    n = g.num_nodes
    torch.manual_seed(0)
    cell = AMPCell("gru", FEATURES, HIDDEN, MSG)
    x = torch.randn(n, FEATURES)
    msgs = torch.ones(1, MSG, requires_grad=True)
    budget = 10 * n
    import gc

    if mmap_threshold:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)   # M_MMAP_THRESHOLD: blocks >= 1 MB are mapped and unmapped on free
        libc.mallopt(-1, 1 << 20)   # M_TRIM_THRESHOLD
    # (--code may name a checkout from before the compiled loop: "auto" then passes no option)
    bx = BatchedExecutor() if path == "auto" else BatchedExecutor(fused=path == "fused")
    try:
        from ampsim.batched import fused

        fused.library()   # loaded (or built) before the clock starts: its time is the parent's line
    except ImportError:
        pass
    from ampsim.cells.execute import RunSpec

    gc.collect()
    peak_ok = _reset_peak()
    rss0 = _vm("VmRSS")
    # planning: the schedule and its level program, which stays in the executor's program cache; unroll
    # takes it from there, so the run plans once and its planning counts in rows/s and in the peak
    w0, c0 = time.perf_counter(), time.process_time()
    levels = len(bx.level_sizes([g], [[RunSpec((0,), msgs.detach(), 0)]], budget, delay))
    plan_s, wall_plan_s = time.process_time() - c0, time.perf_counter() - w0
    w1, c1 = time.perf_counter(), time.process_time()
    u = bx.unroll(cell, [g], [[(0,)]], [[0]], msgs, budget, delay, message_rows=[[1]], features=[x])
    loss = u.final().sum()
    w2, c2 = time.perf_counter(), time.process_time()
    loss.backward()
    w3, c3 = time.perf_counter(), time.process_time()
    peak = _vm("VmHWM") - rss0
    ran = getattr(bx, "last_path", "eager")
    D = sum(u.deliveries)
    segments = getattr(u, "compact", False)
    del u, loss
    bx.plans.clear()
    bx._programs.clear()
    # a plain GRUCell on the same number of rows, same process
    gru = torch.nn.GRUCell(MSG, HIDDEN)
    rows = min(D, gru_rows_cap)
    chunk = 65536
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(min(rows, chunk), MSG, generator=gen)
    hs = torch.randn(min(rows, chunk), HIDDEN, generator=gen)
    done = 0
    g0 = time.process_time()
    while done < rows:
        k = min(chunk, rows - done)
        gru(xs[:k], hs[:k]).sum().backward()
        done += k
    gru_s = time.process_time() - g0
    cpu = plan_s + c3 - c1
    return {
        "graph": g.name, "family": graph_name, "path": ran, "n": n, "edges": g.num_edges, "delay": delay, "budget": budget, "deliveries": D,
        "levels": levels, "rows_per_level": D / max(levels, 1), "checkpointed": bool(segments),
        "plan_s": plan_s, "forward_s": c2 - c1, "backward_s": c3 - c2,
        "wall_plan_s": wall_plan_s, "wall_forward_s": w2 - w1, "wall_backward_s": w3 - w2,
        "rows_per_s": D / cpu, "rows_per_s_excl_plan": D / max(c3 - c1, 1e-9), "mmap_threshold": mmap_threshold,
        "gru_rows_per_s": rows / gru_s, "peak_bytes": peak, "peak_bytes_per_delivery": peak / max(D, 1),
        "peak_reset": peak_ok,
    }


# --------------------------------------------------------------------------- driver
def run_point(graph: str, n: int, delay: str, gru_cap: int, mmap_threshold: bool, path: str = "auto") -> dict:
    cmd = [sys.executable, __file__, "--child", graph, str(n), delay, str(gru_cap), str(int(mmap_threshold)), path]
    env = dict(os.environ, PYTHONPATH=CODE + os.pathsep + os.environ.get("PYTHONPATH", ""), SCALE_CODE=CODE,
               OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"point {graph} n={n} {delay} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def draw(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ampsim.fileio import AtomicFile

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    marks = {"tree": "o", "regular": "^"}
    for (fam, pth), mark in ((k, marks[k[0]]) for k in sorted({(p["family"], p["path"]) for p in points
                                                                if p["family"] in marks})):
        for delay, style in (("constant", "-"), ("uniform", "--")):
            pts = sorted((p for p in points if p["delay"] == delay and p["family"] == fam and p["path"] == pth),
                         key=lambda p: p["n"])
            if not pts:
                continue
            ns = [p["n"] for p in pts]
            a.plot(ns, [p["rows_per_s"] for p in pts], mark + style, label=f"{fam}, {delay}, {pth}")
            b.plot(ns, [p["peak_bytes_per_delivery"] for p in pts], mark + style, label=f"{fam}, {delay}, {pth}")
    by_n: dict = {}
    for p in points:
        if p["family"] != "PubMed":
            by_n.setdefault(p["n"], []).append(p["gru_rows_per_s"])
    ns = sorted(by_n)
    a.plot(ns, [sum(by_n[k]) / len(by_n[k]) for k in ns], "k:", label="plain GRUCell, same rows (mean)")
    for p in points:
        if p["family"] == "PubMed":
            a.plot([p["n"]], [p["rows_per_s"]], "r*", ms=10, label=f"PubMed, {p['delay']}, {p['path']}")
            b.plot([p["n"]], [p["peak_bytes_per_delivery"]], "r*", ms=10)
    b.axhline(300, color="grey", lw=0.8)
    b.text(1e3, 320, "goal: 300 B/delivery", fontsize=7, color="grey")
    for ax, title in ((a, "rows per second (one run, budget 10n)"), (b, "peak bytes per delivery")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    a.legend(fontsize=5, loc="lower right")
    b.legend(fontsize=5)
    fig.tight_layout()
    with AtomicFile(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def compile_time() -> tuple[float, str]:
    """Seconds to build the compiled level loop from scratch (a fresh temporary cache folder, own process),
    and how it ended ("built" or the reason it could not be built); then the machine's cache is filled."""
    import tempfile

    code = ("from ampsim.batched import fused; import json, time; t = time.perf_counter(); ok = fused.available(); "
            "print(json.dumps([time.perf_counter() - t, 'built' if ok else fused.failure()]))")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TORCH_EXTENSIONS_DIR=tmp, PYTHONPATH=CODE + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return float("nan"), out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
    seconds, how = json.loads(out.stdout.strip().splitlines()[-1])
    env = dict(os.environ, PYTHONPATH=CODE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", "from ampsim.batched import fused; fused.available()"], env=env,
                   capture_output=True)
    return seconds, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    ap.add_argument("--large", action="store_true", help="add n = 1e6 (1e7 deliveries)")
    ap.add_argument("--delays", nargs="*", default=["constant", "uniform"])
    ap.add_argument("--families", nargs="*", default=["tree", "regular"], choices=["tree", "regular"])
    ap.add_argument("--no-pubmed", action="store_true", help="leave out PubMed's graph (data/planetoid)")
    ap.add_argument("--paths", nargs="*", default=["auto"], choices=["auto", "fused", "eager"],
                    help="the level loop of each point (several: one row per path)")
    ap.add_argument("--gru-rows", type=int, default=2_000_000, help="cap on the GRUCell comparison's rows")
    ap.add_argument("--out", default=os.path.join("runs", "scale"),
                    help="OUT.json and OUT.png (default runs/scale, ignored by git; the published figures: --out results/scale)")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's adaptive mmap threshold (freed work space may stay resident)")
    ap.add_argument("--code", help="run the points with the ampsim package of this checkout (before/after)")
    ap.add_argument("--replot", action="store_true", help="only redraw the picture from the JSON at --out")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        g, n, delay, cap, mm, path = args.child
        print(json.dumps(point(g, int(n), delay, int(cap), bool(int(mm)), path)))
        return
    global CODE
    if args.code:
        CODE = str(Path(args.code).resolve())
    from ampsim.fileio import write_json

    if args.replot:
        out = Path(args.out)
        draw(json.loads(out.with_suffix(".json").read_text())["points"], out.with_suffix(".png"))
        return
    build = None
    if any(p != "eager" for p in args.paths):
        build = compile_time()
        print(f"compiled level loop: {build[1]}, {build[0]:.1f} s from scratch (fresh cache folder; "
              "the points load it from the machine's cache)", flush=True)
    sizes = list(args.sizes) + ([1_000_000] if args.large else [])
    todo = [(f, n, d) for f in args.families for n in sizes for d in args.delays]
    if not args.no_pubmed:
        todo += [("PubMed", 0, d) for d in args.delays]
    head = (f"{'graph':>16} {'delay':>8} {'path':>6} {'deliveries':>10} {'levels':>7} {'plan s':>7} {'fwd s':>8} "
            f"{'bwd s':>7} {'rows/s':>8} {'GRUCell/s':>9} {'%GRU':>5} {'B/deliv':>7}")
    print(head)
    points = []
    for graph, n, delay in todo:
        for path in args.paths:
            p = run_point(graph, n, delay, args.gru_rows, not args.default_malloc, path)
            points.append(p)
            print(f"{p['graph']:>16} {delay:>8} {p['path']:>6} {p['deliveries']:>10} {p['levels']:>7} "
                  f"{p['plan_s']:>7.2f} {p['forward_s']:>8.2f} {p['backward_s']:>7.2f} {p['rows_per_s']:>8.0f} "
                  f"{p['gru_rows_per_s']:>9.0f} {100 * p['rows_per_s'] / p['gru_rows_per_s']:>5.1f} "
                  f"{p['peak_bytes_per_delivery']:>7.0f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), {"workload": __doc__.split("\n\n")[1].replace("\n", " "),
                                          "command": " ".join(["python", "benchmarks/scale.py"] + sys.argv[1:]),
                                          "compile_s": None if build is None else build[0],
                                          "points": points})
    draw(points, out.with_suffix(".png"))
    first = args.paths[0]
    big = max(sizes) if sizes else None
    ref = [p for p in points if (p["family"] == "PubMed" or p["n"] == big) and
           (first == "auto" or p["path"] == first)]
    if ref:
        worst = min(100 * p["rows_per_s"] / p["gru_rows_per_s"] for p in ref)
        print(f"single run, worst family: {worst:.0f}% of the GRUCell rate, "
              f"{max(p['peak_bytes_per_delivery'] for p in ref):.0f} bytes per delivery")


if __name__ == "__main__":
    main()
