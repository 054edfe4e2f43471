"""Node classification on Planetoid (ampsim.train.node_classification): GCN, AMP model, resume, summary."""
from __future__ import annotations

import argparse
import functools
import json

import pytest
import torch

from ampsim.data.graphdata import GraphData
from ampsim.engine.errors import CheckpointError
from ampsim.cli import main as cli_main
from ampsim.cli.nodes import configs, configure_run
from ampsim.train import node_classification as nc
from ampsim.train.node_classification import (AMPNodeClassifier, GCN, NodeConfig, NodeTask, gcn_adjacency,
                                              load_node_task, render_markdown, result_path, select_epoch,
                                              summarize, train_seed)


@functools.lru_cache(maxsize=None)
def cora() -> NodeTask:
    return load_node_task("Cora")


def small_task() -> NodeTask:
    """A 6-node path with 3 features and 2 classes; nodes 0,5 train, 1,4 val, 2,3 test."""
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5], [1, 0, 2, 1, 3, 2, 4, 3, 5, 4]])
    x = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    mask = lambda idx: torch.isin(torch.arange(6), torch.tensor(idx))  # noqa: E731
    g = GraphData(ei, x, y, 6)
    return NodeTask("Cora", g, 2, mask([0, 5]), mask([1, 4]), mask([2, 3]), x.to_sparse_coo().coalesce())


def test_gcn_adjacency_is_symmetric_normalised_with_self_loops():
    # path 0-1-2: degrees with self-loops 2, 3, 2
    adj = gcn_adjacency(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 3).to_dense()
    d = torch.tensor([2.0, 3.0, 2.0]).rsqrt()
    a = torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]])
    assert torch.allclose(adj, d[:, None] * a * d[None, :])


def test_select_epoch_best_val_then_lower_loss_then_earlier():
    h = {"val_acc": [0.5, 0.7, 0.7, 0.6, 0.7], "val_loss": [1.0, 0.9, 0.8, 0.1, 0.8]}
    assert select_epoch(h) == 2


def test_gcn_trains_above_chance_on_cora_in_a_few_epochs():
    r = train_seed(NodeConfig("Cora", "GCN", epochs=15), root=None, task=cora())
    assert r["finished"] and r["epochs_done"] == 15 and len(r["history"]["val_acc"]) == 15
    assert r["history"]["loss"][-1] < r["history"]["loss"][0]
    assert r["test_acc"] > 0.5  # chance is about 0.14-0.32 (7 classes)


def test_gcn_model_is_two_sparse_layers():
    task = cora()
    model = GCN(1433, 16, 7)
    model.reset(torch.Generator().manual_seed(0))
    logp = model(task.features, gcn_adjacency(task.graph.edge_index, 2708))
    assert logp.shape == (2708, 7) and torch.allclose(logp.exp().sum(1), torch.ones(2708))
    dense = model(task.graph.x, gcn_adjacency(task.graph.edge_index, 2708))
    assert torch.allclose(logp, dense, atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "act"])
def test_amp_node_model_forward_backward_small_graph(kind):
    from ampsim.batched import BatchedExecutor
    from ampsim.cells.execute import EngineExecutor

    task = small_task()
    model = AMPNodeClassifier(kind, 3, 4, 2, msg_size=3)
    model.reset(torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    logp = model(task.graph, task.features, BatchedExecutor(), 30, "uniform", 5, gen)
    assert logp.shape == (6, 2)
    nn_loss = torch.nn.functional.nll_loss(logp[task.train_mask], task.graph.y[task.train_mask])
    nn_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.cell.encoder.weight.grad.abs().sum() > 0
    # the batched run equals the per-message engine (no dropout)
    with torch.no_grad():
        a = model(task.graph, task.features, BatchedExecutor(), 30, "uniform", 5)
        b = model(task.graph, task.features, EngineExecutor(), 30, "uniform", 5)
    assert torch.allclose(a, b, atol=1e-5)


def test_amp_every_node_starts_once():
    model = AMPNodeClassifier("gru", 3, 4, 2, msg_size=3)
    (run,) = model.runs(6, seed=9)
    assert run.starts == tuple(range(6)) and run.seed == 9 and torch.equal(run.messages, torch.ones(6, 3))


def test_amp_training_is_resumable_bit_for_bit(tmp_path):
    task = small_task()
    cfg = NodeConfig("Cora", "AMP-GRU", "uniform", seed=3, epochs=6, hidden=4, msg_size=3, budget_factor=4,
                     checkpoint_every=2)
    whole = train_seed(cfg, root=None, task=task)
    part = train_seed(cfg, root=str(tmp_path), task=task, stop_after=3)
    assert not part["finished"] and part["epochs_done"] == 3
    assert result_path(str(tmp_path), cfg).with_suffix(".ckpt.pt").exists()  # at epoch 2
    done = train_seed(cfg, root=str(tmp_path), task=task)
    assert done["finished"] and done["history"]["loss"] == whole["history"]["loss"]
    assert done["history"]["test_acc"] == whole["history"]["test_acc"]
    assert not result_path(str(tmp_path), cfg).with_suffix(".ckpt.pt").exists()
    on_disk = json.loads(result_path(str(tmp_path), cfg).read_text())
    assert on_disk["test_acc"] == whole["test_acc"] and on_disk["key"] == "AMP-GRU@uniform"
    again = train_seed(cfg, root=str(tmp_path), task=task)  # finished: not retrained
    assert again == on_disk


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    task = small_task()
    cfg = NodeConfig("Cora", "AMP-GRU", seed=0, epochs=4, hidden=4, msg_size=3, checkpoint_every=1)
    train_seed(cfg, root=str(tmp_path), task=task, stop_after=1)
    other = NodeConfig("Cora", "AMP-GRU", seed=0, epochs=4, hidden=4, msg_size=3, lr=0.1, checkpoint_every=1)
    with pytest.raises(CheckpointError, match="another configuration"):
        train_seed(other, root=str(tmp_path), task=task)


def _fake_result(root, dataset, model, delay, seed, test, val, seconds=30.0):
    cfg = NodeConfig(dataset, model, delay, seed, epochs=5, hidden=16 if model == "GCN" else 32)
    path = result_path(str(root), cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": nc.FORMAT, "dataset": dataset, "model": model, "key": cfg.key,
                                "delay": delay, "seed": seed, "config": cfg.__dict__, "finished": True,
                                "test_acc": test, "val_acc": val, "seconds": seconds}))


def test_summary_json_and_markdown(tmp_path):
    _fake_result(tmp_path, "Cora", "GCN", "constant", 0, 0.80, 0.79)
    _fake_result(tmp_path, "Cora", "GCN", "constant", 1, 0.82, 0.78)
    _fake_result(tmp_path, "Cora", "AMP-GRU", "uniform", 0, 0.70, 0.71, seconds=90.0)
    _fake_result(tmp_path, "CiteSeer", "GCN", "constant", 0, 0.70, 0.70)
    s = summarize(str(tmp_path))
    assert list(s) == ["Cora", "CiteSeer"] and list(s["Cora"]) == ["GCN", "AMP-GRU@uniform"]
    gcn = s["Cora"]["GCN"]
    assert (gcn["mean"], gcn["std"], gcn["seeds"], gcn["delay"], gcn["minutes"]) == (81.0, 1.41, 2, None, 1.0)
    amp = s["Cora"]["AMP-GRU@uniform"]
    assert (amp["mean"], amp["std"], amp["seeds"], amp["delay"], amp["minutes"]) == (70.0, 0.0, 1, "uniform", 1.5)
    md = render_markdown(s)
    assert "| GCN (published) | — | 81.5 | 70.3 | — | — | — |" in md
    assert "| GAT (published) | — | 83.0 | 72.5 | — | — | — |" in md
    assert "| GCN (ours) | — | 81.0 ± 1.4 | 70.0 ± 0.0 | 2/1 | 0.50 / 0.50 | — / — |" in md
    assert "| AMP-GRU | uniform | 70.0 ± 0.0 (-11.0) | — | 1 | 1.50 (3.0x) | — |" in md


def test_cli_rejects_gcn_with_uniform_and_summarizes(tmp_path, capsys):
    with pytest.raises(ValueError, match="no delays"):
        NodeConfig("Cora", "GCN", "uniform")
    _fake_result(tmp_path, "Cora", "GCN", "constant", 0, 0.80, 0.79)
    rc = cli_main(["nodes", "render", "--out", str(tmp_path), "--json", str(tmp_path / "s.json"),
                  "--md", str(tmp_path / "s.md")])
    assert rc == 0 and json.loads((tmp_path / "s.json").read_text())["Cora"]["GCN"]["mean"] == 80.0
    assert "Cora      GCN" in capsys.readouterr().out


def test_cli_missing_data_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AMPSIM_DATA", str(tmp_path))
    rc = cli_main(["nodes", "run", "--datasets", "Cora", "--seeds", "0", "--epochs", "1", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ampsim: error: data file not found:") and "cora/labels.txt" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # every data file is read before the output folder is made


def test_finished_result_of_another_configuration_is_refused(tmp_path):
    task = small_task()
    cfg = NodeConfig("Cora", "AMP-GRU", seed=0, epochs=2, hidden=4, msg_size=3, budget_factor=3)
    train_seed(cfg, root=str(tmp_path), task=task)
    before = result_path(str(tmp_path), cfg).read_text()
    with pytest.raises(ValueError, match=r"another configuration \(differs in \['epochs'\]\)"):
        train_seed(NodeConfig("Cora", "AMP-GRU", seed=0, epochs=3, hidden=4, msg_size=3, budget_factor=3),
                   root=str(tmp_path), task=task)
    assert result_path(str(tmp_path), cfg).read_text() == before


def test_cli_defaults_are_the_published_protocol():
    args = argparse.Namespace(datasets=["Cora"], models=["GCN", "AMP-GRU"], delays=["uniform"], seeds=[3],
                              epochs=None, hidden=16, msg_size=16, budget_factor=nc.AMP_BUDGET, readout="skip",
                              embed=False, lr=0.01, weight_decay=5e-4, dropout=0.5, amp_features="binary")
    gcn, amp = configs(args)
    assert (gcn.key, gcn.epochs, gcn.normalize) == ("GCN", 200, True)
    assert (amp.key, amp.epochs, amp.budget_factor, amp.normalize, amp.hidden) == ("AMP-GRU@uniform", 50, 12.0,
                                                                                   False, 16)
    parser = argparse.ArgumentParser()
    configure_run(parser)
    parsed = parser.parse_args(["--models", "GCN", "AMP-GRU", "--delays", "uniform", "--seeds", "3",
                                "--datasets", "Cora"])
    assert configs(parsed) == [gcn, amp]


def test_amp_only_settings_do_not_change_a_gcn_run():
    a = NodeConfig("Cora", "GCN", budget_factor=5.0, msg_size=8)
    b = NodeConfig("Cora", "GCN", budget_factor=12.0, msg_size=16, checkpoint_every=3)
    assert nc._same_protocol(a.__dict__, b.__dict__)
    assert not nc._same_protocol(NodeConfig("Cora", "AMP-GRU", budget_factor=5.0).__dict__,
                                 NodeConfig("Cora", "AMP-GRU", budget_factor=12.0).__dict__)


def test_gat_trains_through_the_loop_and_decays_its_weights_only():
    task = small_task()
    cfg = NodeConfig("Cora", "GAT", epochs=3, hidden=2, heads=2, lr=0.005, dropout=0.6)
    r = train_seed(cfg, root=None, task=task)
    assert r["finished"] and r["key"] == "GAT" and len(r["history"]["loss"]) == 3 and "deliveries" not in r
    proto = nc.Protocol(task, cfg)
    assert [p.shape for p in proto.decayed()] == [(3, 4), (2, 2), (2, 2), (4, 2), (1, 2), (1, 2)]
    with pytest.raises(ValueError, match="the GAT has no delays"):
        NodeConfig("Cora", "GAT", "uniform")


def test_heads_matter_to_the_gat_only():
    assert nc._same_protocol(NodeConfig("Cora", "GCN", heads=2).__dict__, NodeConfig("Cora", "GCN").__dict__)
    assert nc._same_protocol(NodeConfig("Cora", "AMP-GRU", heads=2).__dict__, NodeConfig("Cora", "AMP-GRU").__dict__)
    assert not nc._same_protocol(NodeConfig("Cora", "GAT", heads=2).__dict__, NodeConfig("Cora", "GAT").__dict__)
    # a published GCN result, written before the GAT existed, has no "heads": still the same protocol
    old = {k: v for k, v in NodeConfig("Cora", "GCN").__dict__.items() if k != "heads"}
    assert nc._same_protocol(old, NodeConfig("Cora", "GCN").__dict__)


def test_cli_defaults_are_per_model():
    parser = argparse.ArgumentParser()
    configure_run(parser)
    gcn, gat, amp = configs(parser.parse_args(["--models", "GCN", "GAT", "AMP-GRU", "--seeds", "0",
                                                  "--datasets", "Cora"]))
    assert (gcn.epochs, gcn.hidden, gcn.lr, gcn.dropout) == (200, 16, 0.01, 0.5)
    assert (gat.epochs, gat.hidden, gat.heads, gat.lr, gat.dropout, gat.normalize) == (500, 8, 8, 0.005, 0.6, True)
    assert (amp.epochs, amp.hidden, amp.lr, amp.dropout) == (50, 16, 0.01, 0.5)
    (gat,) = configs(parser.parse_args(["--models", "GAT", "--seeds", "0", "--datasets", "Cora", "--hidden", "4"]))
    assert gat.hidden == 4


# --------------------------------------------------------------------------- the aggregating cells
def test_amp_mean_classifier_is_the_gcn_of_its_weights_on_cora():
    """Evaluation (no dropout), constant and uniform delays: AMP-Mean's log-probabilities are the GCN's."""
    from ampsim.batched import BatchedExecutor

    task = cora()
    model = nc.build_model(task, NodeConfig("Cora", "AMP-Mean", epochs=1)).eval()
    assert isinstance(model, nc.AMPWaveClassifier) and model.cell.dims == [1433, 16, 7]
    gcn = GCN(1433, 16, 7).eval()
    with torch.no_grad():
        gcn.w0.copy_(model.cell.weights[0].weight.t())
        gcn.w1.copy_(model.cell.weights[1].weight.t())
        ref = gcn(task.features, gcn_adjacency(task.graph.edge_index, 2708))
        ex = BatchedExecutor()
        for delay in ("constant", "uniform"):
            logp = model(task.graph, task.graph.x, ex, 12 * 2708, delay, 4)
            assert ex.last.reasons == ("quiescent",) and ex.last.deliveries == (2708 + 2 * 10556,)
            assert torch.allclose(logp, ref, atol=1e-5)


def test_wave_models_init_and_weight_decay_follow_gcn_and_gat():
    task = small_task()
    mean = nc.Protocol(task, NodeConfig("Cora", "AMP-Mean", hidden=4))
    assert [p.shape for p in mean.decayed()] == [(4, 3)]  # the first wave only, as the GCN
    bound = (6.0 / (3 + 4)) ** 0.5
    w = mean.model.cell.weights[0].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound and not any(b.abs().sum() for b in mean.model.cell.biases)
    att = nc.Protocol(task, NodeConfig("Cora", "AMP-Att", hidden=2, heads=3))
    # W_0 (6, 3), W_1 (2, 6); attention vectors (3, 2), (1, 2); queries (3, 6), (1, 6): no biases
    assert [tuple(p.shape) for p in att.decayed()] == [(6, 3), (2, 6), (3, 2), (1, 2), (3, 6), (1, 6)]
    again = nc.build_model(task, NodeConfig("Cora", "AMP-Att", hidden=2, heads=3))
    assert all(torch.equal(a, b) for a, b in zip(att.model.parameters(), again.parameters()))


@pytest.mark.parametrize("model", ["AMP-Mean", "AMP-Att"])
def test_wave_models_train_through_the_loop_and_resume_bit_for_bit(tmp_path, model):
    task = small_task()
    cfg = NodeConfig("Cora", model, "uniform", seed=2, epochs=4, hidden=4, heads=2, checkpoint_every=2)
    whole = train_seed(cfg, root=None, task=task)
    assert whole["finished"] and whole["key"] == f"{model}@uniform" and len(whole["history"]["loss"]) == 4
    assert whole["deliveries"] == [6 + 2 * 10] and whole["reasons"] == ["quiescent"]
    assert whole["history"]["loss"][0] != whole["history"]["loss"][1]
    part = train_seed(cfg, root=str(tmp_path), task=task, stop_after=3)
    assert not part["finished"]
    done = train_seed(cfg, root=str(tmp_path), task=task)
    assert done["history"]["loss"] == whole["history"]["loss"] and done["test_acc"] == whole["test_acc"]


def test_wave_model_dropout_comes_from_the_generator():
    task = small_task()
    model = nc.build_model(task, NodeConfig("Cora", "AMP-Mean", hidden=4, dropout=0.5))
    from ampsim.batched import BatchedExecutor

    ex = BatchedExecutor()
    run = lambda g: model(task.graph, task.graph.x, ex, 30, "constant", 0, g)  # noqa: E731
    a, b = run(torch.Generator().manual_seed(5)), run(torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, run(torch.Generator().manual_seed(6)))
    model.eval()
    assert torch.equal(run(None), run(None))


def test_wave_settings_matter_to_the_wave_models_only():
    assert nc._same_protocol(NodeConfig("Cora", "AMP-GRU", waves=3, norm="mean").__dict__,
                             NodeConfig("Cora", "AMP-GRU").__dict__)
    assert nc._same_protocol(NodeConfig("Cora", "AMP-Mean", msg_size=3, readout="last", heads=2).__dict__,
                             NodeConfig("Cora", "AMP-Mean").__dict__)
    assert not nc._same_protocol(NodeConfig("Cora", "AMP-Mean", waves=3).__dict__, NodeConfig("Cora", "AMP-Mean").__dict__)
    assert not nc._same_protocol(NodeConfig("Cora", "AMP-Att", heads=2).__dict__, NodeConfig("Cora", "AMP-Att").__dict__)
    assert nc._same_protocol(NodeConfig("Cora", "AMP-Att", norm="mean").__dict__, NodeConfig("Cora", "AMP-Att").__dict__)
    # an AMP-GRU result written before the wave settings existed has no "waves"/"norm": the same protocol
    old = {k: v for k, v in NodeConfig("Cora", "AMP-GRU").__dict__.items() if k not in ("waves", "norm")}
    assert nc._same_protocol(old, NodeConfig("Cora", "AMP-GRU").__dict__)
    with pytest.raises(ValueError, match="norm must be one of"):
        NodeConfig("Cora", "AMP-Mean", norm="max")


def test_cli_wave_models_take_the_gcn_and_gat_recipes():
    parser = argparse.ArgumentParser()
    configure_run(parser)
    mean, mean_u, att, att_u, gru = configs(parser.parse_args(
        ["--models", "AMP-Mean", "AMP-Att", "AMP-GRU", "--delays", "constant", "uniform", "--seeds", "0",
         "--datasets", "Cora"]))[:5]
    assert (mean.key, mean.epochs, mean.hidden, mean.lr, mean.dropout, mean.normalize, mean.waves, mean.norm) == (
        "AMP-Mean", 200, 16, 0.01, 0.5, True, 2, "sym")
    assert mean_u.key == "AMP-Mean@uniform" and att_u.key == "AMP-Att@uniform"
    assert (att.epochs, att.hidden, att.heads, att.lr, att.dropout, att.normalize) == (200, 8, 8, 0.005, 0.6, True)
    assert (gru.key, gru.normalize) == ("AMP-GRU", False)  # the recurrent cells keep the binary features
    (mean,) = configs(parser.parse_args(["--models", "AMP-Mean", "--seeds", "0", "--datasets", "Cora", "--waves",
                                         "3", "--norm", "mean", "--amp-features", "binary"]))
    assert (mean.waves, mean.norm, mean.normalize) == (3, "mean", False)


def test_summary_rows_of_the_wave_models(tmp_path):
    _fake_result(tmp_path, "Cora", "GCN", "constant", 0, 0.80, 0.79)
    _fake_result(tmp_path, "Cora", "AMP-Mean", "uniform", 0, 0.82, 0.80, seconds=30.0)
    _fake_result(tmp_path, "Cora", "AMP-Att", "constant", 0, 0.81, 0.80, seconds=60.0)
    s = summarize(str(tmp_path))
    assert list(s["Cora"]) == ["GCN", "AMP-Mean@uniform", "AMP-Att"]
    mean = s["Cora"]["AMP-Mean@uniform"]
    assert (mean["waves"], mean["norm"], mean["seconds_per_epoch"], mean["delay"]) == (2, "sym", 6.0, "uniform")
    assert "heads" not in mean and "msg_size" not in mean and s["Cora"]["AMP-Att"]["heads"] == 8
    md = render_markdown(s)
    assert "| AMP-Mean | uniform | 82.0 ± 0.0 (+2.0) | 1 | 0.50 (1.0x) | — |" in md
    assert ("* AMP-Mean@uniform: 5 epochs, hidden 32, norm sym, 2 waves, lr 0.01, dropout 0.5, budget 12.0n "
            "deliveries (deliveries per run: —), 6.0 s per epoch") in md
    assert "* AMP-Att: 5 epochs, hidden 32 x 8 heads, 2 waves, lr 0.01, dropout 0.5" in md


def test_mean_readout_reads_every_state_when_the_auto_plan_would_checkpoint(monkeypatch):
    import ampsim.batched.levels as lv
    from ampsim.batched import BatchedExecutor

    task = small_task()
    model = AMPNodeClassifier("gru", 3, 4, 2, msg_size=3, dropout=0.0, readout="mean")
    model.reset(torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = model(task.graph, task.features, BatchedExecutor(segment_rows=0), 6000, "uniform", 5)
        for name in ("SEGMENT_BYTES", "FUSED_SEGMENT_BYTES", "FUSED_ACT_BYTES"):   # 6000 deliveries: 2 segments
            monkeypatch.setattr(lv, name, 1024)
        auto = BatchedExecutor()
        torch.testing.assert_close(model(task.graph, task.features, auto, 6000, "uniform", 5), whole)
    assert not auto.last.compact
