"""Task models: an :class:`AMPCell`, the runs it is started with, a readout and a decoder (Sections 5.1-5.2).

Three readouts, as the authors' code did them (reference notes 1.4):

* ``"start"`` -- Table 2 node tasks. One run per node i, started at i with the
  initial message; node i's prediction is ``dec(out(s_i^{(i)}))``, the state of
  i at the end of *its own* run (other nodes' states of that run are discarded).
* ``"pool"`` -- Table 2 graph tasks. The same n runs; the start nodes' final
  outputs are pooled over the graph with the task's aggregator (sum, or max for
  MAX and mean for MEAN), then decoded: ``dec(pool_i out(s_i^{(i)}))``.
* ``"all"`` -- Table 3 and Figure 6. A single run per graph, started at the
  origin(s) (origin j gets the one-hot ``e_j``); every node v is decoded by every
  head h: ``dec_h(out(s_v))``.

The output is log-softmax and the loss NLL (mean over predictions; summed over
heads for the multi-source task). Start messages: ``ones(msg_size)`` for Table 2,
``e_j`` of size ``msg_size`` at origin j for Table 3 -- every graph gets its own
start message (the reference code's batch-index bug is not reproduced; see
docs/learned_amp.md).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..data.graphdata import GraphData
from ..engine.delays import DelayModel
from ..engine.rng import derive_seed
from .cells import AMPCell, CELL_KINDS
from .execute import Executor, RunSpec

__all__ = [
    "AMPModel",
    "budget_groups",
    "readout_entries",
    "pool_nodes",
    "READOUTS",
    "POOLS",
    "MODEL_NAMES",
    "cell_kind",
    "start_runs",
    "origin_runs",
    "nll",
    "init_parameters",
]

READOUTS = ("start", "pool", "all")
POOLS = ("sum", "max", "mean")
#: CLI / table names of the five variants (paper Section 3) -> cell kind.
MODEL_NAMES = {"amp-rnn": "rnn", "amp-gru": "gru", "amp-lstm": "lstm", "amp-act": "act", "amp-iter": "iter"}


def cell_kind(model: str) -> str:
    """``"amp-gru"`` (or ``"gru"``) -> ``"gru"``; clear error for anything else."""
    key = model.strip().lower()
    if key in MODEL_NAMES:
        return MODEL_NAMES[key]
    if key in CELL_KINDS:
        return key
    raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODEL_NAMES)}")


def run_seed(seed: int, index: int) -> int:
    """The delay seed of run ``index`` of a graph whose runs share ``seed`` (a SHA-256 derivation)."""
    return derive_seed(seed, f"run{index}")


def start_runs(n: int, message: Tensor, seed: int = 0) -> list[RunSpec]:
    """Table 2: one run per node i, node i receives ``message`` (a (1, M) row)."""
    return [RunSpec((i,), message, run_seed(seed, i)) for i in range(n)]


def origin_runs(starts: Sequence[int], msg_size: int, seed: int = 0, dtype=torch.float32) -> list[RunSpec]:
    """Table 3: one run; origin j receives the one-hot ``e_j`` of size ``msg_size``."""
    k = len(starts)
    if k > msg_size:
        raise ValueError(f"{k} origins need msg_size >= {k}, got {msg_size}")
    messages = torch.zeros(k, msg_size, dtype=dtype)
    messages[torch.arange(k), torch.arange(k)] = 1.0
    return [RunSpec(tuple(int(v) for v in starts), messages, run_seed(seed, 0))]


def nll(logp: Tensor, target: Tensor) -> Tensor:
    """Mean negative log-likelihood of ``target`` under log-probabilities ``logp`` (..., C)."""
    return nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), target.reshape(-1))


@torch.no_grad()
def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Re-draw every parameter from ``generator`` with PyTorch's default laws (no global RNG).

    ``nn.Linear``: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the law of
    ``kaiming_uniform_(a=sqrt(5))``); ``GRUCell``/``LSTMCell``: all ~ U(-1/sqrt(H), 1/sqrt(H)).
    Modules are visited in registration order, so the draw is reproducible.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            bound = 1.0 / sub.in_features ** 0.5
            tensors = [sub.weight] + ([sub.bias] if sub.bias is not None else [])
        elif isinstance(sub, (nn.GRUCell, nn.LSTMCell)):
            bound = 1.0 / sub.hidden_size ** 0.5
            tensors = list(sub.parameters())
        else:
            continue
        for p in tensors:
            u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
            p.copy_((2.0 * u - 1.0) * bound)


def pool_nodes(own: Tensor, aggr: str, dim: int) -> Tensor:
    """The graph readout of the node outputs along ``dim`` (kept): ``sum``, ``max`` or ``mean``."""
    if aggr == "sum":
        return own.sum(dim, keepdim=True)
    if aggr == "max":
        return own.max(dim, keepdim=True).values
    return own.mean(dim, keepdim=True)


def budget_groups(budgets: Sequence[int]) -> dict[int, list[int]]:
    """Graph indices by budget, in first-seen order: :meth:`AMPModel.forward_many` runs each group
    in one ``execute_many`` call."""
    groups: dict[int, list[int]] = {}
    for i, b in enumerate(budgets):
        groups.setdefault(int(b), []).append(i)
    return groups


def readout_entries(readout: str, n: int) -> Tensor:
    """The final states a readout reads, as entries ``run * n + node`` of a graph of n nodes (reference
    notes 1.4): node i in its own run i (``"start"``, ``"pool"``: ``i (n + 1)``), or every node of the
    single run (``"all"``). The batched executor computes only the deliveries these depend on (``keep``)."""
    return torch.arange(n) if readout == "all" else torch.arange(n) * (n + 1)


class AMPModel(nn.Module):
    """``AMPModel(kind, in_features, hidden, num_classes, readout=..., aggr=..., heads=..., gate=...)``.

    ``forward(graph, executor, budget, delay, seed) -> log-probabilities``:
    ``(n, C)`` for ``"start"``, ``(1, C)`` for ``"pool"``, ``(heads, n, C)`` for ``"all"``.
    """

    def __init__(
        self,
        kind: str,
        in_features: int,
        hidden: int,
        num_classes: int,
        *,
        msg_size: int = 3,
        readout: str = "start",
        aggr: str = "sum",
        heads: int = 1,
        gate: bool = False,
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; choose one of {READOUTS}")
        if aggr not in POOLS:
            raise ValueError(f"unknown pooling {aggr!r}; choose one of {POOLS}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if heads < 1 or (heads > 1 and readout != "all"):
            raise ValueError("several heads need readout='all' (the multi-source task)")
        self.cell = AMPCell(cell_kind(kind), in_features, hidden, msg_size, gate=gate)
        self.decoders = nn.ModuleList(nn.Linear(hidden, num_classes) for _ in range(heads))
        self.readout, self.aggr, self.heads, self.num_classes = readout, aggr, heads, num_classes

    @property
    def msg_size(self) -> int:
        return self.cell.msg_size

    def runs(self, graph: GraphData, seed: int = 0) -> list[RunSpec]:
        """The runs this model starts on ``graph`` (their delay seeds derive from ``seed``)."""
        dtype = self.cell.encoder.weight.dtype
        if self.readout == "all":
            if graph.starts is None:
                raise ValueError("readout 'all' needs graph.starts (the origin nodes)")
            starts = graph.starts.reshape(-1).tolist()
            if len(starts) != self.heads:
                raise ValueError(f"the graph has {len(starts)} origins but the model {self.heads} heads")
            return origin_runs(starts, self.msg_size, seed, dtype)
        return start_runs(graph.num_nodes, torch.ones(1, self.msg_size, dtype=dtype), seed)

    def entries(self, n: int) -> Tensor:
        """:func:`readout_entries` of this model's readout."""
        return readout_entries(self.readout, n)

    def decode(self, read: Tensor) -> Tensor:
        """The final packed states of :meth:`entries` ``(n, S)`` -> log-probabilities (see the class docstring)."""
        z = self.cell.output(read)
        if self.readout == "all":
            return torch.stack([nn.functional.log_softmax(dec(z), dim=-1) for dec in self.decoders])
        if self.readout == "start":
            return nn.functional.log_softmax(self.decoders[0](z), dim=-1)
        return nn.functional.log_softmax(self.decoders[0](pool_nodes(z, self.aggr, 0)), dim=-1)

    def readout_states(self, states: Tensor) -> Tensor:
        """Every final packed state ``(runs, n, S)`` -> log-probabilities (:meth:`decode` of :meth:`entries`)."""
        read = states.reshape(-1, states.shape[-1]).index_select(0, self.entries(states.shape[1]).to(states.device))
        return self.decode(read)

    def _data(self, graph: GraphData) -> GraphData:
        x = graph.x.to(self.cell.encoder.weight.dtype)
        if x is graph.x:
            return graph
        return GraphData(graph.edge_index, x, graph.y, graph.num_nodes, graph.level, graph.starts, graph.meta)

    def forward_many(
        self,
        graphs: Sequence[GraphData],
        executor: Executor,
        budgets: Sequence[int],
        delay: Union[str, DelayModel] = "constant",
        seeds: Optional[Sequence[int]] = None,
        fifo: bool = False,
    ) -> list[Tensor]:
        """:meth:`forward` for many graphs; executors with ``execute_many`` run graphs of equal budget together
        and compute only the deliveries that the states of :meth:`entries` depend on."""
        seeds = list(seeds) if seeds is not None else [0] * len(graphs)
        if len(budgets) != len(graphs) or len(seeds) != len(graphs):
            raise ValueError("graphs, budgets and seeds must have the same length")
        many = getattr(executor, "execute_many", None)
        if many is None:
            return [self(g, executor, b, delay, s, fifo) for g, b, s in zip(graphs, budgets, seeds)]
        out: list[Optional[Tensor]] = [None] * len(graphs)
        for budget, idx in budget_groups(budgets).items():
            read = many(self.cell, [self._data(graphs[i]) for i in idx], [self.runs(graphs[i], seeds[i]) for i in idx],
                        budget, delay, fifo, keep=[self.entries(graphs[i].num_nodes) for i in idx])
            for i, st in zip(idx, read):
                out[i] = self.decode(st)
        return out  # type: ignore[return-value]

    def forward(
        self,
        graph: GraphData,
        executor: Executor,
        budget: int,
        delay: Union[str, DelayModel] = "constant",
        seed: int = 0,
        fifo: bool = False,
    ) -> Tensor:
        states = executor.execute(self.cell, self._data(graph), self.runs(graph, seed), budget, delay, fifo)
        return self.readout_states(states)

    def targets(self, graph: GraphData) -> Tensor:
        """The labels in the layout of :meth:`forward`'s output (``(heads, n)`` for ``"all"``)."""
        y = graph.y
        if self.readout == "all":
            return y.reshape(graph.num_nodes, -1).t()
        return y.reshape(-1)

    def extra_repr(self) -> str:
        return f"readout={self.readout!r}, aggr={self.aggr!r}, heads={self.heads}"
