"""Data parallelism: 2 DDP processes (gloo, CPU) give the gradients of 1 process."""
from __future__ import annotations

import json

import pytest
import torch

from ampsim.train import ddp
from ampsim.train.graph_classification import first_step_gradients


def test_two_processes_give_the_gradients_of_one():
    args = ("MUTAG", "h16_m15_skip", 9)
    single = first_step_gradients(*args)
    both = ddp.launch(2, first_step_gradients, *args, backend="gloo")
    assert len(both) == 2
    for r in range(2):
        assert len(both[r]) == len(single)
        for a, b in zip(single, both[r]):
            torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-10)
    assert any(float(g.abs().max()) > 0 for g in single)


def test_shard_and_loss_scale_without_a_process_group():
    assert ddp.world_size() == 1 and ddp.rank() == 0 and ddp.is_main()
    assert ddp.shard(list(range(7))) == list(range(7))
    assert ddp.shard(list(range(7)), 1, 3) == [1, 4]
    with pytest.raises(ValueError, match="rank"):
        ddp.shard([1, 2], 3, 2)
    assert float(ddp.shard_loss(torch.tensor(6.0), 4)) == 1.5
    model = torch.nn.Linear(2, 2)
    assert ddp.wrap(model) is model
    assert ddp.launch(1, sum, [1, 2, 3]) == [6]
    with pytest.raises(ValueError, match="nproc"):
        ddp.launch(0, sum, [1])


def test_free_port_is_a_port():
    port = ddp.free_port()
    assert 0 < port < 65536


def _checkpoint(path):
    return torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=True)


def test_ampsim_train_nproc_2_matches_one_process(tmp_path, capsys):
    """``ampsim train --nproc 2``: DDP over shards of the training graphs, the single-process trajectory."""
    from ampsim.cli import main

    common = ["train", "--task", "parity", "--model", "amp-act", "--delay", "uniform", "--epochs", "3",
              "--train-graphs", "5", "--test-sizes", "10", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "one")]) == 0
    assert main(common + ["--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    assert "executor, 2 processes)" in capsys.readouterr().out
    one, two = _checkpoint(tmp_path / "one"), _checkpoint(tmp_path / "two")
    assert one["epoch"] == two["epoch"] == 3
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.tensor(two["history"]["loss"]), torch.tensor(one["history"]["loss"]),
                               atol=1e-5, rtol=1e-5)
    assert two["history"]["train_acc"] == one["history"]["train_acc"]
    result = json.loads((tmp_path / "two" / "result.json").read_text())
    assert result["processes"] == 2 and result["finished"] and "test" in result


def test_too_few_training_graphs_are_refused_before_any_process_starts(tmp_path, capsys, monkeypatch):
    from ampsim.cli import main

    # Limits1 trains on one graph: two processes cannot share it; one clear line, exit 2, no folder, no worker.
    monkeypatch.setattr(ddp, "launch", lambda *a, **k: pytest.fail("workers were started"))
    assert main(["train", "--task", "limits1", "--epochs", "2", "--nproc", "2", "--quiet",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--nproc 2: task 'limits1' trains on 1 graph; 1 training items cannot be shared by 2 processes" in err
    assert err.count("\n") == 1 and not (tmp_path / "x").exists()


def test_a_worker_error_reaches_the_caller_as_itself():
    with pytest.raises(ValueError, match="boom"):
        ddp.launch(2, _fail_on_rank_1, backend="gloo")


def _fail_on_rank_1():
    if ddp.rank() == 1:
        raise ValueError("boom")
    torch.distributed.barrier()  # rank 0 waits here until it is stopped
