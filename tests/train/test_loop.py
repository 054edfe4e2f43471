"""Training loop: overfit to 1.0, bit-for-bit resume, per-epoch delay seeds, evaluation, the CLI."""
from __future__ import annotations

import json
import os

import pytest
import torch

from ampsim.cells.execute import EngineExecutor
from ampsim.cli import main as cli_main
from ampsim.engine.rng import derive_seed, stream
from ampsim.train.synthetic import run_folder
from ampsim.train.loop import (
    CHECKPOINT,
    RESULT,
    TrainConfig,
    build_model,
    distance_bucket,
    evaluate,
    fit,
    get_executor,
    load_task,
)


class ZeroExecutor:
    """Final states all zero (the decoder alone learns); records every run's delay seed."""

    def __init__(self) -> None:
        self.seeds: list[list[int]] = []

    def execute(self, cell, graph, runs, budget, delay="constant", fifo=False):
        self.seeds.append([r.seed for r in runs])
        return torch.zeros(len(runs), graph.num_nodes, cell.state_size)


def test_overfit_limits1_to_accuracy_one():
    result = fit(TrainConfig(task="limits1", model="amp-rnn", epochs=12, hidden=16), EngineExecutor())
    assert result["finished"] and result["epochs_done"] == 12
    assert result["train_acc"][-1] == 1.0
    assert result["test"]["test"] == {"acc": 1.0, "correct": 16, "total": 16}
    assert result["loss"][-1] < result["loss"][0]


def test_resume_ends_bit_for_bit_like_an_uninterrupted_run(tmp_path):
    config = TrainConfig(task="limits1", model="amp-gru", delay="uniform", epochs=4, hidden=4,
                         checkpoint_every=2, seed=1)
    full = fit(config, EngineExecutor(), out_dir=str(tmp_path / "full"))
    cut = fit(config, EngineExecutor(), out_dir=str(tmp_path / "cut"), stop_after=3)
    assert not cut["finished"] and cut["epochs_done"] == 3
    assert not (tmp_path / "cut" / RESULT).exists()
    assert torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=True)["epoch"] == 2  # epoch 3 is lost
    with pytest.raises(ValueError, match="resume"):
        fit(config, EngineExecutor(), out_dir=str(tmp_path / "cut"))
    rest = fit(config, EngineExecutor(), out_dir=str(tmp_path / "cut"), resume=True)
    assert rest["params_sha256"] == full["params_sha256"]
    assert rest["loss"] == full["loss"] and rest["test"] == full["test"]
    other = TrainConfig(task="limits1", model="amp-gru", delay="uniform", epochs=4, hidden=4, seed=2)
    with pytest.raises(ValueError, match=r"result.json holds a run of another configuration \(seed 1 there, 2 here\)"):
        fit(other, EngineExecutor(), out_dir=str(tmp_path / "cut"), resume=True)


def test_resume_of_a_finished_run_trains_nothing_and_writes_nothing(tmp_path):
    config = TrainConfig(task="limits1", model="amp-rnn", epochs=2, hidden=4, seed=3)
    out = tmp_path / "run"
    first = fit(config, EngineExecutor(), out_dir=str(out))
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    ex = ZeroExecutor()
    again = fit(config, ex, out_dir=str(out), resume=True)
    assert ex.seeds == []  # not even evaluated
    assert again == json.loads((out / RESULT).read_text()) and again["params_sha256"] == first["params_sha256"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    longer = fit(TrainConfig(task="limits1", model="amp-rnn", epochs=3, hidden=4, seed=3), EngineExecutor(),
                 out_dir=str(out), resume=True)  # more epochs: the run goes on from its checkpoint
    assert longer["epochs_done"] == 3 and longer["loss"][:2] == first["loss"]


def test_uniform_delays_draw_new_seeds_every_epoch_from_the_stream():
    ex = ZeroExecutor()
    fit(TrainConfig(task="limits1", delay="uniform", epochs=2, hidden=4, seed=9), ex)
    rng = stream(9, "train-delays")
    for epoch in range(2):
        epoch_seed = rng.getrandbits(63)
        graph_seed = derive_seed(epoch_seed, "graph0")
        assert ex.seeds[epoch] == [derive_seed(graph_seed, f"run{i}") for i in range(16)]
    assert ex.seeds[0] != ex.seeds[1]
    test_graph_seed = derive_seed(derive_seed(9, "test-delays"), "test/0")
    assert ex.seeds[2] == [derive_seed(test_graph_seed, f"run{i}") for i in range(16)]


def test_parity_task_settings_and_distance_breakdown():
    task = load_task("parity", 0, train_graphs=3, test_sizes=(12,))
    assert (task.name, task.readout, task.budget_factor, task.msg_size, task.heads, task.hidden) == (
        "Parity", "all", 10, 3, 1, 30)
    assert list(task.tests) == ["12"] and len(task.tests["12"]) == 10
    assert task.seen_distances == tuple(sorted({d for g in task.train for d in g.meta["distances"].tolist()}))
    model = build_model(task, TrainConfig(task="parity"))
    with torch.no_grad():
        model.decoders[0].weight.zero_()
        model.decoders[0].bias.copy_(torch.tensor([0.0, 1.0]))  # always predicts "even"
    out = evaluate(model, task, task.tests["12"], ZeroExecutor(), split="12")
    dists = torch.cat([g.meta["distances"] for g in task.tests["12"]]).tolist()
    assert out["total"] == 120 and out["correct"] == sum(d % 2 == 0 for d in dists)
    for key, cell in out["by_distance"].items():
        members = [d for d in dists if distance_bucket(d) == int(key)]
        assert cell == {"acc": sum(d % 2 == 0 for d in members) / len(members), "total": len(members)}
    assert out["by_distance"]["0"] == {"acc": 1.0, "total": 10}
    seen = [d for d in dists if d in task.seen_distances]
    assert out["seen"]["total"] == len(seen)
    multi = load_task("parity-multi", 0, train_graphs=2, test_sizes=(10,), sources=3)
    assert (multi.name, multi.heads, multi.msg_size) == ("Parity-3", 3, 9)


def test_distance_buckets_merge_odd_even_pairs():
    assert [distance_bucket(d) for d in range(7)] == [0, 1, 1, 3, 3, 5, 5]


def test_table2_graph_task_uses_pool_readout_and_task_settings():
    task = load_task("max", 0)
    assert (task.name, task.readout, task.aggr, task.hidden, task.budget_factor) == ("MAX", "pool", "max", 32, 5)
    with pytest.raises(ValueError, match="parity"):
        load_task("lcc", 0, train_graphs=5)


def test_config_and_executor_errors():
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(task="limits1", model="amp-xl")
    with pytest.raises(ValueError, match="delay"):
        TrainConfig(task="limits1", delay="exponential")
    with pytest.raises(ValueError, match="unknown executor"):
        get_executor("gpu")
    assert get_executor("engine")[0] == "engine"


def test_cli_train_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--task", "limits1", "--model", "amp-iter", "--epochs", "2", "--hidden", "4",
            "--out", str(out), "--executor", "engine", "--quiet"]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "Limits1 AMP-Iter seed 0 (constant delays, engine executor): 2 epochs" in printed
    result = json.loads((out / RESULT).read_text())
    assert result["config"]["model"] == "amp-iter" and result["epochs_done"] == 2 and len(result["loss"]) == 2
    assert result["test"]["test"]["total"] == 16
    assert cli_main(argv) == 2  # a checkpoint exists: refused without --resume
    assert "add --resume" in capsys.readouterr().err  # the CLI names its flag, not the API keyword
    assert cli_main(argv + ["--resume"]) == 0
    assert cli_main(["train", "--task", "limits9", "--out", str(tmp_path / "x"), "--executor", "engine"]) == 2


def test_run_folder_layout():
    assert run_folder("results/runs", "4-cycles", "amp-rnn", 3) == os.path.join("results/runs", "4-cycles", "amp-rnn", "seed3")
    assert run_folder("r", "parity", "amp-iter", 0, gate=True, delay="uniform").endswith(
        os.path.join("parity", "amp-iter+gate@uniform", "seed0"))


def _fake_result(root, task, model, seed, tests, gate=False):
    from ampsim.train.tables import protocol_config

    folder = run_folder(str(root), task, model, seed, gate)
    os.makedirs(folder)
    config = protocol_config(task, model, seed, gate)
    with open(os.path.join(folder, RESULT), "w") as f:
        json.dump({"config": config.to_dict(), "finished": True, "test": tests}, f)


def test_tables_summarise_finished_protocol_runs(tmp_path):
    from ampsim.train import table_reports, tables

    for seed, acc in ((0, 1.0), (1, 0.5)):
        _fake_result(tmp_path, "limits1", "amp-rnn", seed, {"test": {"acc": acc}})
    _fake_result(tmp_path, "limits1", "amp-rnn", 2, {"test": {"acc": 1.0}}, gate=True)
    folder = run_folder(str(tmp_path), "lcc", "amp-rnn", 0)  # not the protocol (epochs): not counted
    os.makedirs(folder)
    with open(os.path.join(folder, RESULT), "w") as f:
        json.dump({"config": TrainConfig(task="lcc", epochs=5).to_dict(), "finished": True,
                   "test": {"test": {"acc": 1.0}}}, f)
    by_dist = {"0": {"acc": 1.0, "total": 10}, "1": {"acc": 0.5, "total": 60}}
    _fake_result(tmp_path, "parity", "amp-iter", 0,
                 {"10": {"acc": 0.9, "by_distance": by_dist, "seen": {"acc": 0.8}},
                  "25": {"acc": 0.7, "by_distance": by_dist, "seen": {"acc": 0.6}}})
    t2 = tables.table2_summary(str(tmp_path))
    assert t2 == {"Limits1": {"mean": 0.75, "std": 0.25, "seeds": 2, "seed_list": [0, 1],
                              "executors": {"unknown": 2}}}
    md = table_reports.render_table2(t2)
    assert "| Limits1 | 1.00 ± 0.00 | 0.75 ± 0.25 (2) | no |" in md and "| LCC | 0.96 ± 0.03 | not run | — |" in md
    t3 = tables.table3_summary(str(tmp_path))
    assert t3["AMP-Iter"]["10"] == {"mean": 0.9, "std": 0.0, "seeds": 1}
    assert t3["AMP-Iter"]["by_distance"]["1"]["mean"] == 0.5 and t3["AMP-Iter"]["seen"]["25"]["mean"] == 0.6
    assert "| AMP-Iter | 1.00 ± 0.00 / 0.90 ± 0.00 (1) | 1.00 ± 0.00 / 0.70 ± 0.00 (1) | 1.00 ± 0.00 / not run" in (
        table_reports.render_table3(t3))
    assert tables.gate_summary(str(tmp_path), deliveries=False) == {}  # no seed has both variants
    written = table_reports.write_all(str(tmp_path), str(tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "table2.json").read_text()) == {
        "Limits1": {"mean": 0.75, "std": 0.25, "seeds": 2}}
    assert json.loads((tmp_path / "out" / "table3.json").read_text())["AMP-Iter"]["25"]["mean"] == 0.7
    assert str(tmp_path / "out" / "figure5a.png") in written


def test_table3_ordering_ranks_to_two_decimals_and_checks_the_goal():
    from ampsim.train import table_reports, tables

    means = {"AMP-RNN": 0.60, "AMP-GRU": 0.70, "AMP-LSTM": 0.701, "AMP-ACT": 0.96, "AMP-Iter": 0.9}
    summary = {m: {str(s): {"mean": v, "std": 0.0, "seeds": 3} for s in tables.TABLE3_SIZES}
               for m, v in means.items()}
    md = table_reports.render_table3(summary)
    assert "| 1000 | Iter > ACT > GRU > LSTM = RNN | ACT > Iter > GRU = LSTM > RNN | yes / yes |" in md
    assert "Goal AMP-Iter >= 0.95 at 1000 nodes: 0.900 over 3 seeds (not met)." in md
    summary["AMP-ACT"]["1000"]["mean"] = 0.70  # a halting variant ties the best recurrent one
    assert "| 1000 | Iter > ACT > GRU > LSTM = RNN | Iter > ACT = GRU = LSTM > RNN | yes / tie |" in (
        table_reports.render_table3(summary))


def test_figure6_compares_one_problem_with_three(tmp_path):
    from ampsim.train import table_reports, tables

    by_dist = {"0": {"acc": 1.0, "total": 10}}
    for seed, (one, three) in enumerate(((0.9, 0.7), (0.8, 0.6))):
        _fake_result(tmp_path, "parity", "amp-act", seed,
                     {"10": {"acc": one, "by_distance": by_dist, "seen": {"acc": one}}})
        _fake_result(tmp_path, "parity-multi", "amp-act", seed,
                     {"10": {"acc": three, "by_distance": by_dist, "seen": {"acc": three}}})
    written = table_reports.write_all(str(tmp_path), str(tmp_path / "out"))
    assert str(tmp_path / "out" / "figure6.png") in written
    md = (tmp_path / "out" / "figure6.md").read_text()
    assert "| AMP-ACT | 0.85 ± 0.05 (2) / 0.65 ± 0.05 (2) | not run / not run |" in md
    assert md.rstrip().endswith("| 0.200 |") and "AMP-Iter" not in md.split("|---|")[-1]
    six = json.loads((tmp_path / "out" / "figure6.json").read_text())
    assert six["triple"]["AMP-ACT"]["10"]["seeds"] == 2 and six["single"]["AMP-ACT"]["10"]["mean"] == 0.85


def test_compare_table2_counts_a_stacked_pass_once(tmp_path):
    from ampsim.train import table_reports, tables
    from ampsim.train.tables import protocol_config

    for root, seconds, together in ((tmp_path / "new", 60.0, 2), (tmp_path / "old", 90.0, 1)):
        for seed in (0, 1):
            folder = run_folder(str(root), "limits1", "amp-rnn", seed)
            os.makedirs(folder)
            with open(os.path.join(folder, RESULT), "w") as f:
                json.dump({"config": protocol_config("limits1", "amp-rnn", seed).to_dict(), "finished": True,
                           "test": {"test": {"acc": 1.0}}, "seconds_train_this_call": seconds,
                           "stacked_with": together}, f)
    c = tables.compare_table2(str(tmp_path / "new"), str(tmp_path / "old"))
    assert c["Limits1"]["rerun"] == {"mean": 1.0, "std": 0.0, "seeds": 2, "train_minutes": 1.0, "stacked": 2}
    assert c["Limits1"]["published"]["train_minutes"] == 3.0 and c["LCC"] == {}
    md = table_reports.render_comparison(c, "new", "Timed on an idle machine: 9 min.")
    assert md.splitlines()[2] == "Timed on an idle machine: 9 min."
    assert "| Limits1 | 1.00 ± 0.00 (2) | 1.00 ± 0.00 (2) | 1.0 (2) | 3.0 |" in md
    assert "| LCC | not run | not run | not run | - |" in md


def test_workers_share_the_runs_and_each_seed_gets_its_own_numbers(tmp_path, capsys):
    """``table2 run --workers 2``: the same run folders and numbers as one process (stacks stay stacks)."""
    from ampsim.train import table_reports, tables

    args = ["--seeds", "0-1", "--tasks", "limits1,lcc", "--epochs", "2", "--quiet"]
    assert cli_main(["table2", "run", "--root", str(tmp_path / "one"), *args]) == 0
    capsys.readouterr()
    assert cli_main(["table2", "run", "--root", str(tmp_path / "two"), "--workers", "2", *args]) == 0
    out = capsys.readouterr().out
    assert "4 runs in 3 units over 2 processes, largest first" in out  # limits1's two seeds are one stack
    for task in ("limits1", "lcc"):
        for seed in (0, 1):
            one, two = (json.loads((tmp_path / r / task / "amp-rnn" / f"seed{seed}" / RESULT).read_text())
                        for r in ("one", "two"))
            assert one["loss"] == two["loss"] and one["test"] == two["test"]
            assert one.get("stacked_with", 1) == two.get("stacked_with", 1) == (2 if task == "limits1" else 1)
    assert cli_main(["table2", "run", "--root", str(tmp_path / "two"), "--workers", "2", *args]) == 0
    assert "nothing to do" in capsys.readouterr().out
    with pytest.raises(Exception, match="workers"):
        tables.run_protocol(["limits1"], ["amp-rnn"], [0], str(tmp_path / "three"), workers=0)


def _deferral_run(tmp_path, name: str, evaluate_forward, delay_rngs=None, **options):
    """A linear classifier on 12 points, every point evaluated; ``(history, evaluate calls, on_epoch calls)``."""
    from ampsim.train.loop import Data, Options, fit_models

    X = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    calls, seen = [], []

    def forward(model, items, seeds):
        return torch.log_softmax(model(X[list(items)]), -1)

    def evaluate(model, epoch):
        calls.append(epoch)
        assert not model.training and not torch.is_grad_enabled()
        return [{"acc": float((model(X).argmax(-1) == y).double().mean())}]

    torch.manual_seed(1)
    model = torch.nn.Linear(3, 2)
    (out,) = fit_models(model, forward, Data([t.reshape(1) for t in y]),
                        Options(epochs=7, lr=0.3, eval_every=1, checkpoint_every=3, **options), evaluate=evaluate,
                        evaluate_forward=evaluate_forward, checkpoints=[str(tmp_path / name / "ckpt.pt")],
                        delay_rngs=delay_rngs,
                        on_epoch=lambda e, o: seen.append((e, len(o[0].history["acc"]))))
    return out.history, calls, seen


def test_evaluation_from_the_next_training_forward_equals_a_pass_of_its_own(tmp_path):
    def from_forward(logp, items):
        assert not logp.requires_grad and logp.shape == (1, 12, 2)
        y = (torch.randn(12, 3, generator=torch.Generator().manual_seed(0))[:, 0] > 0).long()
        return [{"acc": float((logp[0].argmax(-1) == y[list(items)]).double().mean())}]

    own, own_calls, own_seen = _deferral_run(tmp_path, "own", None)
    assert own_calls == [1, 2, 3, 4, 5, 6, 7]
    got, calls, seen = _deferral_run(tmp_path, "deferred", from_forward)
    assert got == own and len(set(own["acc"])) > 1  # the same history, and the accuracy moved
    assert calls == [3, 6, 7]  # checkpoint epochs and the last one evaluate at once
    assert seen == own_seen == [(e, e) for e in range(1, 8)]  # on_epoch(e) sees epoch e's metrics
    # stopped after 2 epochs: epoch 1 waits for epoch 2's forward, epoch 2 (the last of this call) does not wait
    cut, cut_calls, _ = _deferral_run(tmp_path, "cut", from_forward, stop_after=2)
    assert cut_calls == [2] and cut["acc"] == own["acc"][:2]
    # no answer from the forward: the evaluation's own pass, late but the same
    late, late_calls, _ = _deferral_run(tmp_path, "late", lambda logp, items: None)
    assert late == own and late_calls == own_calls
    # per-epoch delay draws: the next forward runs other delays, so every evaluation is a pass of its own
    import random

    drawn, drawn_calls, _ = _deferral_run(tmp_path, "drawn", from_forward, delay_rngs=[random.Random(5)])
    assert drawn == own and drawn_calls == own_calls
