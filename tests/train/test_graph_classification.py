"""Table 4 pipeline: model readout, a 2-fold x 2-epoch smoke run on a MUTAG subset, result files, resume."""
from __future__ import annotations

import json
import math

import pytest
import torch

from ampsim.batched import BatchedExecutor
from ampsim.cells.execute import EngineExecutor, RunSpec
from ampsim.data.graphdata import GraphData
from ampsim.train.graph_classification import (
    PAPER_AMP_RNN,
    GridPoint,
    build_model,
    fold_path,
    grid,
    load_dataset,
    run_grid,
    train_folds,
)
from ampsim.train.table4_report import summarize, write_tables


pytestmark = pytest.mark.usefixtures("one_thread")


def test_grid_is_the_papers():
    assert len(grid("MUTAG")) == 8 and {p.hidden for p in grid("PTC")} == {16, 32}
    assert len(grid("IMDB-MULTI")) == 4 and {p.hidden for p in grid("IMDB-BINARY")} == {64}
    assert {p.messages for p in grid("PROTEINS")} == {15, 25}
    p = GridPoint(32, 25, True)
    assert p.tag == "h32_m25_skip" and GridPoint.from_tag(p.tag) == p
    with pytest.raises(ValueError):
        GridPoint.from_tag("x32_m25_skip")


def test_amp_filters():
    # PROTEINS: the authors drop graphs with >= 450 nodes and with (7 nodes, 6 edges)
    ds = load_dataset("PROTEINS")
    sizes = [(ds[i].num_nodes, ds[i].num_edges) for i in range(len(ds))]
    assert max(n for n, _ in sizes) < 450 and (7, 6) not in sizes
    assert len(ds) < len(load_dataset("PROTEINS", amp_filter=False))
    assert len(load_dataset("MUTAG")) == 188


def test_readout_is_node_i_in_its_own_run_summed():
    ds = load_dataset("MUTAG")[:3]
    graphs = [ds[i] for i in range(3)]
    model = build_model(ds, GridPoint(16, 15, False)).double()
    got = model(graphs, BatchedExecutor())
    want = []
    for g in graphs:
        runs = [RunSpec((i,), torch.ones(1, 8, dtype=torch.float64), 0) for i in range(g.num_nodes)]
        g64 = GraphData(g.edge_index, g.x.double(), g.y, g.num_nodes, "graph")
        states = EngineExecutor().execute(model.cell, g64, runs, 15)  # (runs, n, H)
        own = torch.diagonal(states, dim1=0, dim2=1).t().sum(0, keepdim=True)
        want.append(torch.log_softmax(model.decoder(own), dim=-1))
    torch.testing.assert_close(got, torch.cat(want), atol=1e-10, rtol=0.0)


def test_skip_readout_concatenates_the_last_four_states():
    ds = load_dataset("MUTAG")[:2]
    model = build_model(ds, GridPoint(16, 15, True))
    assert model.decoder.in_features == 64
    out = model([ds[0], ds[1]], BatchedExecutor())
    assert out.shape == (2, 2)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2))


def test_skip_readout_keeps_every_state_when_the_auto_plan_would_checkpoint(monkeypatch):
    # PROTEINS h32 skip is over SEGMENT_BYTES: the auto plan cut it and the skip readout failed
    import ampsim.batched.levels as bx

    ds = load_dataset("MUTAG")[:60]  # over 4096 computed deliveries (no dedup): the smallest segment the auto plan cuts
    model = build_model(ds, GridPoint(16, 15, True))
    graphs = [ds[i] for i in range(60)]
    whole = model(graphs, BatchedExecutor(segment_rows=0))
    monkeypatch.setattr(bx, "SEGMENT_BYTES", 1024)
    monkeypatch.setattr(bx, "FUSED_SEGMENT_BYTES", 1024)
    monkeypatch.setattr(bx, "FUSED_ACT_BYTES", 1024)
    auto = BatchedExecutor(dedup=False)  # every distinct row too: over the smallest segment
    torch.testing.assert_close(model(graphs, auto), whole)
    assert not auto.last.compact
    noskip = build_model(ds, GridPoint(16, 15, False))
    noskip(graphs, auto)
    assert auto.last.compact  # without skip the same plan still checkpoints
    with pytest.raises(ValueError, match="history=True keeps every state row"):
        model(graphs, BatchedExecutor(segment_rows=64))


def test_smoke_run_files_and_resume(tmp_path):
    points = [GridPoint(16, 15, False), GridPoint(16, 15, True)]
    root = str(tmp_path / "runs")
    written = run_grid(["MUTAG"], [0, 1], points=points, root=root, epochs=2, max_graphs=40, log=lambda s: None)
    assert len(written) == 4
    rec = json.loads(fold_path(root, "MUTAG", points[1], 1).read_text())
    assert rec["dataset"] == "MUTAG" and rec["fold"] == 1 and rec["epochs"] == 2 and rec["subset"] is True
    assert (rec["hidden"], rec["messages"], rec["skip"]) == (16, 15, True)
    assert len(rec["test_acc"]) == 2 and len(rec["train_loss"]) == 2
    assert all(0.0 <= a <= 1.0 for a in rec["test_acc"]) and all(l > 0 for l in rec["train_loss"])
    assert rec["n_train"] + rec["n_test"] <= 40 and rec["seconds"] > 0
    # resume: nothing to do; a missing fold is redone alone
    assert run_grid(["MUTAG"], [0, 1], points=points, root=root, epochs=2, max_graphs=40, log=lambda s: None) == []
    before = json.loads(fold_path(root, "MUTAG", points[0], 0).read_text())
    fold_path(root, "MUTAG", points[0], 0).unlink()
    again = run_grid(["MUTAG"], [0, 1], points=points, root=root, epochs=2, max_graphs=40, log=lambda s: None)
    assert again == [fold_path(root, "MUTAG", points[0], 0)]
    after = json.loads(again[0].read_text())
    # the same numbers again (up to float summation order, were the folds stacked)
    assert after["train_loss"] == pytest.approx(before["train_loss"], rel=1e-5, abs=1e-6)
    assert after["test_acc"] == before["test_acc"]
    assert (before["stacked_with"], after["stacked_with"]) == (2, 1)  # folds stacked by default; the missing one alone
    # subset runs never count toward the table
    assert summarize(root, ["MUTAG"], epochs=2)["MUTAG"]["grid"]["h16_m15_noskip"]["folds"] == 0


def test_workers_share_the_grid_points_with_the_same_numbers(tmp_path, capsys):
    from ampsim.cli import main

    points = ["h16_m15_noskip", "h16_m15_skip", "h32_m15_noskip"]
    runs = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        assert main(["table4", "run", "--datasets", "MUTAG", "--folds", "0-1", "--points", *points, "--epochs", "2",
                     "--max-graphs", "30", "--out", str(root), "--workers", str(workers)]) == 0
        runs[workers] = {(t, f): json.loads(fold_path(str(root), "MUTAG", GridPoint.from_tag(t), f).read_text())
                         for t in points for f in (0, 1)}
    assert "3 grid points over 2 processes, largest first" in capsys.readouterr().out
    for key, one in runs[1].items():
        assert runs[2][key]["train_loss"] == one["train_loss"] and runs[2][key]["test_acc"] == one["test_acc"]
    assert main(["table4", "run", "--datasets", "MUTAG", "--nproc", "2", "--workers", "2", "--max-graphs", "10"]) == 2
    assert "--nproc (data-parallel) and --workers (grid points in parallel) do not combine" in capsys.readouterr().err


def test_summarize_takes_the_best_fold_averaged_epoch(tmp_path):
    root = tmp_path / "runs"
    point = GridPoint(32, 25, False)
    for k in range(10):
        # epoch 2 is best on average (0.85); fold k scores 0.8 + 0.01 k there
        acc = [0.5, 0.6, 0.8 + 0.01 * k, 0.7]
        path = fold_path(str(root), "MUTAG", point, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"epochs": 4, "test_acc": acc, "seconds": 6.0, "subset": False}))
    s = summarize(str(root), ["MUTAG", "PTC"], epochs=4)
    m = s["MUTAG"]
    assert m["grid_point"] == "h32_m25_noskip" and m["best_epoch"] == 3 and m["folds"] == 10
    assert m["mean"] == pytest.approx(84.5) and m["std"] == pytest.approx(math.sqrt(sum((i - 4.5) ** 2 for i in range(10)) / 9), abs=0.01)
    assert m["minutes"] == 1.0
    assert m["within_paper_std"] == (abs(84.5 - 90.4) <= 4.1)
    assert "mean" not in s["PTC"] and s["PTC"]["complete_points"] == 0
    write_tables(s, str(tmp_path / "t4.json"), str(tmp_path / "t4.md"), str(root), "Timed: 3 min of wall time.")
    md = (tmp_path / "t4.md").read_text()
    assert md.splitlines()[2] == "Timed: 3 min of wall time."
    assert f"`ampsim table4 render --out {root} --json {tmp_path / 't4.json'} --md {tmp_path / 't4.md'}`" in md
    assert "| AMP-RNN (paper) | 90.4 ± 4.1 | 63.7 ± 9.1 |" in md
    assert "| AMP-RNN (ampsim, batched) | 84.5 ± 3.0 (1/8 grid points) | not run |" in md
    assert json.loads((tmp_path / "t4.json").read_text())["MUTAG"]["paper"] == {"mean": 90.4, "std": 4.1}
    assert PAPER_AMP_RNN["IMDB-MULTI"] == (52.1, 3.6)


def test_a_stack_evaluates_from_the_next_training_forward_to_the_bit(monkeypatch):
    import ampsim.train.graph_classification as gc

    ds = load_dataset("MUTAG")[:40]
    point = GridPoint(8, 5, True)
    from_forward = train_folds(ds, [0, 1, 2], point, epochs=5)
    asked, real = [], gc._evaluate_forward

    def own_pass(graphs, test):  # every evaluation runs a pass of its own (one forward later)
        asked.append(len(graphs))
        return lambda logp, items: None

    monkeypatch.setattr(gc, "_evaluate_forward", own_pass)
    own = train_folds(ds, [0, 1, 2], point, epochs=5)
    assert asked == [40]
    for a, b in zip(from_forward, own):
        assert a["test_acc"] == b["test_acc"] and a["train_loss"] == b["train_loss"] and len(a["test_acc"]) == 5
    # one fold alone: its test graphs are not in its training batch, so nothing is asked of the forward
    asked.clear()
    train_folds(ds, [0], point, epochs=2)
    assert asked == []
    # model k's accuracy on its own test graphs, read from the forward's columns (items in any order)
    graphs = [ds[i] for i in range(6)]
    test = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    items = [5, 3, 0, 1, 4, 2]
    logp = torch.log_softmax(torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(3)), -1)
    hit = [[float(logp[k, items.index(i)].argmax() == graphs[i].y.reshape(())) for i in range(6)] for k in (0, 1)]
    expected = [sum(hit[0][:2]) / 2, sum(hit[1][3:]) / 3]
    assert [m["test_acc"] for m in real(graphs, test)(logp, items)] == pytest.approx(expected, abs=1e-15)
    assert len(set(hit[0] + hit[1])) == 2  # this draw has right and wrong predictions
    assert real(graphs, test)(logp[:, 1:], items[1:]) is None  # graph 5 (model 1 tests on it) is not among them
