"""K models at once: each model's losses, gradients and parameters equal training it alone (to 1e-5)."""
from __future__ import annotations

import json

import pytest
import torch

from ampsim.batched import BatchedExecutor
from ampsim.cells.cells import AMPCell
from ampsim.cells.stacked import AMPModelStack, StackedCell
from ampsim.train.graph_classification import GridPoint, load_dataset, run_grid, train_folds
from ampsim.train.loop import (CheckpointError, Data, Options, fit_models, load_checkpoint, stack_states,
                               unstack_state)
from ampsim.train.synthetic import (CHECKPOINT, RESULT, TrainConfig, _forward, build_model, fit, fit_seeds,
                                    STACK_MAX_LEVEL_ROWS, level_rows, load_task, stack_groups)

pytestmark = pytest.mark.usefixtures("one_thread")


def _alone_and_stacked(kind: str, epochs: int = 3):
    task = load_task("4cycles", 0)
    task = type(task)(**{**task.__dict__, "train": task.train[:3]})
    configs = [TrainConfig(task="4cycles", model=kind, seed=s, hidden=4) for s in (0, 1, 2)]
    ex = BatchedExecutor()
    mask = torch.ones(3, len(task.train), dtype=torch.bool)
    for k in range(3):
        mask[k, k] = False  # every model has its own training set (folds)
    alone = []
    for k, c in enumerate(configs):
        m = build_model(task, c).double()
        out = fit_models(m, _forward(task, c, ex), Data([m.targets(g) for g in task.train], mask[k]),
                         Options(epochs=epochs))
        alone.append((m, out[0]))
    models = [build_model(task, c).double() for c in configs]
    stack = AMPModelStack(models)
    outs = fit_models(stack, _forward(task, configs[0], ex), Data([models[0].targets(g) for g in task.train], mask),
                      Options(epochs=epochs))
    return alone, stack, outs


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_each_stacked_model_equals_training_it_alone(kind):
    alone, stack, outs = _alone_and_stacked(kind)
    state = stack.state_dict()
    grads = dict(stack.named_parameters())
    for k, (model, out) in enumerate(alone):
        assert out.history["loss"] == pytest.approx(outs[k].history["loss"], abs=1e-5, rel=0)
        assert out.history["train_acc"] == outs[k].history["train_acc"]
        assert len(out.history["loss"]) == 3 and out.history["loss"][0] != outs[(k + 1) % 3].history["loss"][0]
        for name, p in model.named_parameters():
            torch.testing.assert_close(state[name][k], p.detach(), atol=1e-5, rtol=0)
            torch.testing.assert_close(grads[name].grad[k], p.grad, atol=1e-5, rtol=0)  # the last step's gradient


def test_stack_refuses_value_dependent_schedules_and_mixed_sizes():
    with pytest.raises(ValueError, match="value-dependent"):
        StackedCell([AMPCell("act", 2, 4, 3), AMPCell("act", 2, 4, 3)])
    with pytest.raises(ValueError, match="value-dependent"):
        StackedCell([AMPCell("rnn", 2, 4, 3, gate=True)])
    with pytest.raises(ValueError, match="same kind and sizes"):
        StackedCell([AMPCell("rnn", 2, 4, 3), AMPCell("rnn", 2, 5, 3)])


def test_stack_states_round_trip():
    cells = [AMPCell("gru", 2, 4, 3) for _ in range(3)]
    stack = StackedCell(cells)
    for k, c in enumerate(cells):
        assert unstack_state(stack.state_dict(), k).keys() == c.state_dict().keys()
        for key, value in c.state_dict().items():
            assert torch.equal(unstack_state(stack.state_dict(), k)[key], value)
    assert all(torch.equal(a, b) for a, b in zip(stack_states([c.state_dict() for c in cells]).values(),
                                                  stack.state_dict().values()))


def test_table4_folds_at_once_equal_one_after_another():
    ds = load_dataset("MUTAG")[:40]
    point = GridPoint(8, 5, True)
    together = train_folds(ds, [0, 1, 2], point, epochs=3, stack=True)
    alone = train_folds(ds, [0, 1, 2], point, epochs=3, stack=False)
    for a, b in zip(together, alone):
        assert a["test_acc"] == b["test_acc"] and (a["n_train"], a["n_test"]) == (b["n_train"], b["n_test"])
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5, rel=0)
        assert (a["stacked_with"], b["stacked_with"]) == (3, 1)


def test_a_stopped_stack_resumes_as_a_stack_or_one_by_one(tmp_path):
    ds = load_dataset("MUTAG")[:30]
    point = GridPoint(8, 5, False)
    full = train_folds(ds, [0, 1], point, epochs=4)
    paths = [str(tmp_path / f"fold{k}.pt") for k in (0, 1)]
    cut = train_folds(ds, [0, 1], point, epochs=4, checkpoints=paths, checkpoint_every=1, stop_after=2)
    assert [c["epochs_done"] for c in cut] == [2, 2] and not cut[0]["finished"]
    assert [load_checkpoint(p)["epoch"] for p in paths] == [2, 2]
    assert load_checkpoint(paths[1])["model"]["decoder.weight"].dim() == 2  # one model per file
    stacked = train_folds(ds, [0, 1], point, epochs=4, checkpoints=paths, checkpoint_every=1)
    for a, b in zip(stacked, full):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6) and a["test_acc"] == b["test_acc"]
    one = train_folds(ds, [1], point, epochs=5, checkpoints=[paths[1]])  # fold 1 alone, from the stack's file
    assert one[0]["train_loss"][:4] == pytest.approx(full[1]["train_loss"], abs=1e-6)
    other = GridPoint(8, 6, False)
    with pytest.raises(CheckpointError, match=r"differs in \['messages'\]"):
        train_folds(ds, [1], other, epochs=5, checkpoints=[paths[1]])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(str(tmp_path / "bad.pt"))


def test_run_grid_resumes_folds_grouped_by_checkpoint_epoch(tmp_path):
    ds = load_dataset("MUTAG")[:30]
    point = GridPoint(8, 5, False)
    root = str(tmp_path / "runs")
    from ampsim.train.graph_classification import checkpoint_path, fold_path

    path0 = str(checkpoint_path(root, "MUTAG", point, 0))
    train_folds(ds, [0], point, epochs=3, checkpoints=[path0], checkpoint_every=1, stop_after=1)
    written = run_grid(["MUTAG"], [0, 1, 2], points=[point], root=root, epochs=3, max_graphs=30, stack=True,
                       log=lambda s: None)
    assert sorted(p.name for p in written) == ["fold0.json", "fold1.json", "fold2.json"]
    recs = [json.loads(fold_path(root, "MUTAG", point, k).read_text()) for k in range(3)]
    assert [r["stacked_with"] for r in recs] == [1, 2, 2]  # fold 0 resumed alone, 1 and 2 together
    assert not any((tmp_path / "runs" / "MUTAG" / point.tag).glob("*.pt"))  # checkpoints removed when done


def test_fit_seeds_stacks_seeds_that_share_graphs_and_writes_one_folder_each(tmp_path):
    configs = [TrainConfig(task="limits1", seed=s, epochs=3, hidden=4) for s in (0, 1, 2)]
    dirs = [str(tmp_path / f"seed{s}") for s in (0, 1, 2)]
    lines = []
    together = fit_seeds(configs, BatchedExecutor(), dirs, log=lines.append, executor_name="batched")
    assert lines == ["Limits1 amp-rnn seed(s) 0, 1, 2: one pass for all"]
    for c, d, r in zip(configs, dirs, together):
        alone = fit(c, BatchedExecutor())
        assert r["stacked_with"] == 3 and r["test"] == alone["test"]
        assert r["loss"] == pytest.approx(alone["loss"], abs=1e-5)
        saved = json.loads((tmp_path / d / RESULT).read_text())
        assert saved["config"]["seed"] == c.seed and saved["finished"]
        assert load_checkpoint(str(tmp_path / d / CHECKPOINT))["model"]["cell.encoder.weight"].shape[0] == 4  # hidden 4, one model


def test_stack_groups_say_why_a_seed_trains_alone():
    ex = BatchedExecutor()
    tri = [TrainConfig(task="triangles", seed=s) for s in (0, 1)]
    groups = stack_groups(tri, [load_task("triangles", s) for s in (0, 1)], ex)
    assert [g for g, _ in groups] == [[0], [1]] and "training graphs differ" in groups[0][1]
    act = [TrainConfig(task="limits1", model="amp-act", seed=s) for s in (0, 1)]
    groups = stack_groups(act, [load_task("limits1", s) for s in (0, 1)], ex)
    assert [g for g, _ in groups] == [[0], [1]] and "value-dependent" in groups[0][1]
    uni = [TrainConfig(task="limits1", delay="uniform", seed=s) for s in (0, 1)]
    assert "uniform delays" in stack_groups(uni, [load_task("limits1", s) for s in (0, 1)], ex)[0][1]
    same = [TrainConfig(task="limits2", seed=s) for s in (0, 1, 2)]
    assert stack_groups(same, [load_task("limits2", s) for s in (0, 1, 2)], ex) == [([0, 1, 2], "stacked")]
    # Skip-Cycles: one batch of 84,050 deliveries in 30 levels, of which the pooled readout reads the
    # causal past of 20,707; computed one by one, stacked it costs the CPU more than alone ...
    big = [TrainConfig(task="skipcycles", seed=s) for s in (0, 1)]
    big_tasks = [load_task("skipcycles", s) for s in (0, 1)]
    every = BatchedExecutor(dedup=False)
    assert level_rows(big_tasks[0], big[0], every) == pytest.approx(20707 / 30)
    groups = stack_groups(big, big_tasks, every)
    assert [g for g, _ in groups] == [[0], [1]] and "690 rows per model" in groups[0][1]
    # ... but its nodes' features are equal, and only 575 of those rows differ: the seeds stack
    assert level_rows(big_tasks[0], big[0], ex) == pytest.approx(575 / 30)
    assert stack_groups(big, big_tasks, ex) == [([0, 1], "stacked")]
    assert level_rows(load_task("limits2", 0), same[0], ex) < STACK_MAX_LEVEL_ROWS


def test_ampsim_train_seeds_in_one_process(tmp_path, capsys):
    from ampsim.cli import main

    argv = ["train", "--task", "limits1", "--seeds", "0-2", "--epochs", "2", "--hidden", "4", "--quiet",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("3 seeds in one pass") == 3
    for s in range(3):
        result = json.loads((tmp_path / f"seed{s}" / RESULT).read_text())
        assert result["config"]["seed"] == s and result["stacked_with"] == 3 and result["epochs_done"] == 2
    assert main(argv + ["--resume", "--epochs", "3"]) == 0  # all three continue from their checkpoints
    assert json.loads((tmp_path / "seed1" / RESULT).read_text())["epochs_done"] == 3
    with pytest.raises(SystemExit):
        main(["train", "--task", "limits1", "--seeds", "2-x", "--quiet"])
