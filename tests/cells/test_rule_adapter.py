"""CellRule on the engine: gradients through a simulated run, the emission gate, byte-identical replay."""
from __future__ import annotations

import json

import pytest
import torch
from torch.func import functional_call

from ampsim.cells.cells import CELL_KINDS, AMPCell
from ampsim.cells.execute import EngineExecutor, RunSpec
from ampsim.cells.models import init_parameters
from ampsim.cells.rule import CellRule
from ampsim.data.graphdata import GraphData
from ampsim.engine.errors import ReplayMismatch
from ampsim.engine.messages import Message
from ampsim.engine.simulation import Simulation
from ampsim.trace.replay import replay
from ampsim.trace.io import load_trace, save_trace
from ampsim.trace.tracers import JSONLTracer
from ampsim.train.loop import TrainConfig, fit

# a triangle 0-1-2 with a tail 2-3
EDGES = torch.tensor([[0, 1, 0, 2, 1, 2, 2, 3], [1, 0, 2, 0, 2, 1, 3, 2]])


def tiny_graph(x: torch.Tensor) -> GraphData:
    return GraphData(EDGES, x, torch.zeros(4, dtype=torch.long), 4, "node")


class Run(torch.nn.Module):
    """x, start message -> every node's output after a short simulated run (budget 8, constant delays)."""

    def __init__(self, cell: AMPCell) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        states = EngineExecutor().execute(self.cell, tiny_graph(x), [RunSpec((0,), message)], budget=8)
        return self.cell.output(states[0])


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_gradcheck_through_a_simulated_run(kind):
    cell = AMPCell(kind, 2, 4, 3).double()
    init_parameters(cell, torch.Generator().manual_seed(5))
    run = Run(cell)
    names = ["cell.message.weight"] + (["cell.halting.weight"] if cell.halting is not None else [])
    names.append("cell.update.weight_ih" if kind in ("gru", "lstm") else "cell.update.weight")
    params = {n: p.detach().clone().requires_grad_(True) for n, p in run.named_parameters() if n in names}
    x = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64).reshape(4, 2).requires_grad_(True)
    msg = torch.tensor([[1.0, 0.5, -0.5]], dtype=torch.float64, requires_grad=True)

    def f(x, msg, *ws):
        return functional_call(run, dict(zip(params, ws)), (x, msg))

    out = f(x, msg, *params.values())
    assert int((out != 0).sum()) >= 11  # most of the graph is reached and alive
    assert torch.autograd.gradcheck(f, (x, msg, *params.values()), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradient_reaches_every_parameter_of_a_recurrent_cell():
    cell = AMPCell("lstm", 2, 4, 3)
    init_parameters(cell, torch.Generator().manual_seed(0))
    out = Run(cell)(torch.ones(4, 2), torch.ones(1, 3))
    out.square().sum().backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# CellRule.receive calls float() on the straight-through gate value, which requires grad; torch warns.
# Reported to the lead (fix: compare ``emit[0] > 0.5`` without float()); ignored here until then.
GATE_WARNING = "ignore:Converting a tensor with requires_grad=True to a scalar:UserWarning"


def _gate_cell(bias: float) -> AMPCell:
    cell = AMPCell("rnn", 1, 4, 3, gate=True)
    init_parameters(cell, torch.Generator().manual_seed(2))
    with torch.no_grad():
        cell.emit_gate.weight.zero_()
        cell.emit_gate.bias.fill_(bias)
    return cell


@pytest.mark.filterwarnings(GATE_WARNING)
def test_closed_gate_emits_nothing_and_open_gate_floods():
    x = torch.ones(4, 1)
    closed = Simulation(EDGES, CellRule(_gate_cell(-10.0)), start={0: Message("start", torch.ones(3))},
                        features=x, num_nodes=4).run(max_deliveries=8)
    assert (closed.reason, closed.deliveries, closed.sent) == ("quiescent", 1, 1)
    opened = Simulation(EDGES, CellRule(_gate_cell(10.0)), start={0: Message("start", torch.ones(3))},
                        features=x, num_nodes=4).run(max_deliveries=8)
    assert (opened.reason, opened.deliveries) == ("message_budget", 8)


@pytest.mark.filterwarnings(GATE_WARNING)
def test_straight_through_gate_passes_gradient_to_the_gate():
    cell = _gate_cell(10.0)
    with torch.no_grad():
        cell.emit_gate.bias.fill_(0.5)  # open (g > 1/2) but not saturated
    Run(cell)(torch.ones(4, 1), torch.ones(1, 3)).sum().backward()
    assert cell.emit_gate.bias.grad is not None and cell.emit_gate.bias.grad.abs() > 0


def test_trained_model_run_replays_byte_identically(tmp_path):
    config = TrainConfig(task="limits1", model="amp-gru", delay="uniform", epochs=2, hidden=4, seed=3)
    fit(config, EngineExecutor(), out_dir=str(tmp_path / "run"))
    from ampsim.train.loop import load_model

    model, task, _ = load_model(str(tmp_path / "run"))
    cell = model.cell
    g = task.train[0]
    start = Message("start", torch.ones(3))
    with JSONLTracer(tmp_path / "run.jsonl") as tracer:
        result = Simulation(g.edge_index, CellRule(cell), delay="uniform", seed=5, tracer=tracer, start=[2],
                            start_message=start, features=g.x, num_nodes=16).run(max_deliveries=80)
    assert result.deliveries == 80
    recorded = load_trace(tmp_path / "run.jsonl")
    again = replay(recorded, rule=CellRule(cell), start_message=start, features=g.x)
    save_trace(again, tmp_path / "replayed.jsonl")
    old = (tmp_path / "run.jsonl").read_bytes().splitlines()
    new = (tmp_path / "replayed.jsonl").read_bytes().splitlines()
    assert len(old) > 200 and new[1:] == old[1:]  # every record and the end record, byte for byte
    header_old, header_new = json.loads(old[0]), json.loads(new[0])
    assert header_new.pop("delay") == {"name": "from-trace", "random": True}
    assert header_old.pop("delay") == {"name": "uniform", "low": 0.0, "high": 1.0}
    assert header_new == header_old
    # a different model does not replay the recorded run
    other = AMPCell("gru", 4, 4, 3)
    init_parameters(other, torch.Generator().manual_seed(99))
    with pytest.raises(ReplayMismatch):
        replay(recorded, rule=CellRule(other), start_message=start, features=g.x)
