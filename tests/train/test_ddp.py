"""Data parallelism: 2 DDP processes (gloo, CPU) give the gradients of 1 process."""
from __future__ import annotations

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
