"""Node classification on the Planetoid citation graphs (Cora, CiteSeer): AMP against a GCN and a GAT.

Protocol (the standard semi-supervised setting of Kipf & Welling, ICLR 2017, on the public split:
20 labelled nodes per class, 500 validation and 1000 test nodes; ``data/README.md``), a definition
on the one training loop (:class:`Protocol` on :func:`ampsim.train.loop.fit_models`):

* **GCN**: ``log_softmax(Â · drop(ReLU(Â · drop(X) W0)) W1)`` with ``Â = D^-1/2 (A + I) D^-1/2``,
  row-normalised features, hidden 16, dropout 0.5, Glorot init; Adam lr 0.01, weight decay 5e-4
  on the first layer (as the reference code), 200 epochs (:class:`~ampsim.train.baselines.GCN`);
* **MLP**: the GCN with ``Â = I`` (no neighbours): ``log_softmax(drop(ReLU(drop(X) W0)) W1)``, the
  GCN's recipe; the features alone;
* **GAT** (Veličković et al., ICLR 2018): 8 heads × 8 hidden, ELU, one output head, dropout 0.6 on
  each layer's input and on the attention coefficients, row-normalised features; Adam lr 0.005,
  weight decay 5e-4 on every weight but the biases, 500 epochs (:class:`~ampsim.train.baselines.GAT`);
* **AMP** (Section 3 cells: AMP-GRU, AMP-ACT, AMP-Iter, AMP-RNN): *one* run per graph in which
  **every node starts** -- node v wakes with its encoding ``h_v^0 = W_e drop(x_v)`` and receives
  the start message ``ones(M)`` -- then delivers messages until the budget of
  ``budget_factor * n`` processed deliveries (or quiescence); every node is decoded by one linear
  layer from ``drop([h_v^0 ‖ out(s_v)])`` (readout ``skip``; also ``last``, ``mean``). Why this
  start policy, and the settings used (binary features, budget 12 n, 50 epochs: the CLI's defaults):
  ``docs/node_classification.md``. Adam lr 0.01, weight decay 5e-4, dropout 0.5;
* **AMP-Mean, AMP-Att** (the aggregating cells of :mod:`ampsim.cells.aggregate`, Section 4.1: AMP
  expresses a GNN): the same start policy, every node wakes with its row-normalised features and
  the cell's start message; the cell's last wave is the classifier (:class:`AMPWaveClassifier`).
  Recipe of the GNN each expresses: AMP-Mean the GCN's (hidden 16, dropout 0.5, weight decay on
  the first wave, lr 0.01, 200 epochs), AMP-Att the GAT's (8 heads x 8, dropout 0.6, lr 0.005) over
  200 epochs (its validation accuracy peaks within the first 100); 2 waves, budget 12 n (a run needs ``n + 2 waves |E|`` deliveries and ends quiescent);
* loss: NLL over the training nodes plus the weight decay as an L2 term; after every epoch the
  model is evaluated (dropout off, fixed evaluation delays) and **the epoch with the best
  validation accuracy** (ties: lower validation loss) gives the reported test accuracy: model
  selection sees the validation split only;
* 10 seeds; every random draw (initialisation, dropout masks, delays) comes from the seed;
* every AMP model's selected epoch is then evaluated under other delays and message loss
  (:mod:`ampsim.train.robustness`, the ``robustness`` entry of its result file).

Files: one result JSON per (data set, model, delay, seed) under ``runs/node_classification/``
(``--out`` to change), the loop's checkpoint beside it while it trains (always resumed: a
finished seed is skipped, an interrupted one continues from its checkpoint, bit for bit);
``ampsim nodes render`` writes ``results/node_classification.json`` and ``.md``.

    ampsim nodes run --models GCN GAT --seeds 0-9
    ampsim nodes run --models AMP-GRU AMP-ACT --delays constant uniform --seeds 0-9
    ampsim nodes run --models AMP-Mean AMP-Att --delays constant uniform --seeds 0-9
    ampsim nodes render --out results/node_classification_runs.jsonl.gz --json results/node_classification.json \
        --md results/node_classification.md --robustness results/delay_robustness
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from .. import runpack
from .. import validate as V
from ..batched import BatchedExecutor
from ..cells.aggregate import NORMS, AttentionCell, MeanCell
from ..cells.cells import AMPCell
from ..cells.execute import RunSpec
from ..cells.models import cell_kind, init_parameters
from ..data.graphdata import GraphData
from ..data.planetoid import load_planetoid, row_normalize
from ..engine.rng import derive_seed, stream
from ..checkpoint import load_checkpoint
from ..fileio import output_stem, save_torch, write_json, write_text
from .baselines import GAT, GCN, dropout, gcn_adjacency, glorot, identity_adjacency, self_loop_edges
from .loop import Data, Options, fit_models, nll_terms, write_result
from .robustness import evaluate_conditions, render_robustness, summarize_robustness

__all__ = [
    "DATASETS",
    "MODELS",
    "PUBLISHED",
    "NodeConfig",
    "NodeTask",
    "GCN",
    "GAT",
    "AMPNodeClassifier",
    "AMPWaveClassifier",
    "WAVE_MODELS",
    "load_node_task",
    "gcn_adjacency",
    "build_model",
    "Protocol",
    "train_seed",
    "finished_seed",
    "result_path",
    "summarize",
    "render_markdown",
    "write_summary",
    "train_step",
]

DATASETS = ("Cora", "CiteSeer")
#: Every data set a :class:`NodeConfig` may name: PubMed has no features or split in our files, so its
#: task is built by :mod:`ampsim.train.pubmed` (structural features, a seeded split) and passed to :func:`train_seed`.
ALL_DATASETS = DATASETS + ("PubMed",)
#: The classical baselines (no delays) and the AMP models; the MLP is the GCN without neighbours (``Â = I``).
BASELINES = ("GCN", "GAT", "MLP")
#: The aggregating cells (:mod:`ampsim.cells.aggregate`): one wave per GNN layer, emission once per wave.
WAVE_MODELS = ("AMP-Mean", "AMP-Att")
MODELS = BASELINES + ("AMP-GRU", "AMP-ACT", "AMP-Iter", "AMP-RNN") + WAVE_MODELS
DELAYS = ("constant", "uniform")
#: AMP readouts: the final output, it beside the start encoding ("skip"), or the mean over the node's states beside it.
READOUTS = ("last", "skip", "mean")
#: Published test accuracies (%) on the public split: GCN (Kipf & Welling 2017, Table 2), GAT (Veličković et al. 2018).
PUBLISHED = {"GCN": {"Cora": 81.5, "CiteSeer": 70.3}, "GAT": {"Cora": 83.0, "CiteSeer": 72.5}}
DEFAULT_RUNS = os.path.join("runs", "node_classification")
#: CLI defaults: the published protocols (GCN 200 epochs; GAT 500; AMP scaled down to 50, budget 12 n).
GCN_EPOCHS, AMP_EPOCHS, AMP_BUDGET = 200, 50, 12.0
#: Per-model defaults of the flags a user leaves out (the published settings of each model; the
#: aggregating cells take the recipe of the GNN they express: AMP-Mean the GCN's, AMP-Att the GAT's).
DEFAULTS = {"GCN": {"epochs": GCN_EPOCHS, "hidden": 16, "lr": 0.01, "dropout": 0.5},
            "MLP": {"epochs": GCN_EPOCHS, "hidden": 16, "lr": 0.01, "dropout": 0.5},
            "GAT": {"epochs": 500, "hidden": 8, "lr": 0.005, "dropout": 0.6},
            "AMP-Mean": {"epochs": GCN_EPOCHS, "hidden": 16, "lr": 0.01, "dropout": 0.5},
            "AMP-Att": {"epochs": GCN_EPOCHS, "hidden": 8, "lr": 0.005, "dropout": 0.6},
            "AMP": {"epochs": AMP_EPOCHS, "hidden": 16, "lr": 0.01, "dropout": 0.5}}
FORMAT = "ampsim.node_classification"


@dataclass(frozen=True)
class NodeConfig:
    """One training run: data set, model, delay model, seed and the hyper-parameters."""

    dataset: str
    model: str = "GCN"
    delay: str = "constant"
    seed: int = 0
    epochs: int = 200
    hidden: int = 16
    msg_size: int = 16
    budget_factor: float = 12.0
    lr: float = 0.01
    weight_decay: float = 5e-4
    dropout: float = 0.5
    readout: str = "skip"
    embed: bool = False
    normalize: bool = True
    checkpoint_every: int = 10
    heads: int = 8
    waves: int = 2
    norm: str = "sym"
    bias: bool = True

    def __post_init__(self) -> None:
        if self.dataset not in ALL_DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose from {', '.join(ALL_DATASETS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.delay not in DELAYS:
            raise ValueError(f"delay must be one of {DELAYS}, got {self.delay!r}")
        if self.model in BASELINES and self.delay != "constant":
            raise ValueError(f"the {self.model} has no delays: use delay='constant'")
        for name in ("epochs", "hidden", "msg_size", "checkpoint_every", "heads", "waves"):
            V.positive_int(name, getattr(self, name))
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        V.positive_float("budget_factor", self.budget_factor)
        V.positive_float("lr", self.lr)
        V.nonneg_float("weight_decay", self.weight_decay)
        V.number("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        V.boolean("bias", self.bias)
        if not self.bias and self.model not in WAVE_MODELS:
            raise ValueError(f"bias=False is a setting of {' and '.join(WAVE_MODELS)} only, not of {self.model}")

    @property
    def key(self) -> str:
        """The model's key in the summary: ``"AMP-GRU"`` (constant delays), ``"AMP-GRU@uniform"``,
        ``"AMP-Mean-nobias"`` (``bias=False``)."""
        name = self.model if self.bias else f"{self.model}-nobias"
        return name if self.delay == "constant" else f"{name}@{self.delay}"

    def budget(self, n: int) -> int:
        return max(1, int(round(self.budget_factor * n)))


@dataclass(frozen=True)
class NodeTask:
    """A data set as training sees it: the graph (row-normalised ``x``), its three boolean masks,
    and ``x`` as a sparse COO tensor (``features``: the bag of words is 1-2% non-zero)."""

    name: str
    graph: GraphData
    num_classes: int
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    features: Tensor


def load_node_task(name: str, root: Optional[str] = None, normalize: bool = True) -> NodeTask:
    """Cora or CiteSeer with the public split and row-normalised (``normalize``) or binary features."""
    ds = load_planetoid(name, root)
    if ds.train_mask is None:
        raise ValueError(f"{ds.name} has no features or split here; node classification needs Cora or CiteSeer "
                         "(ampsim.train.pubmed gives PubMed structural features and a split)")
    g = ds.graph
    graph = GraphData(g.edge_index, row_normalize(g.x) if normalize else g.x, g.y, g.num_nodes, "node", None, {"dataset": ds.name})
    return NodeTask(ds.name, graph, ds.num_classes, ds.train_mask, ds.val_mask, ds.test_mask,
                    graph.x.to_sparse_coo().coalesce())


# --------------------------------------------------------------------------- models
class AMPNodeClassifier(nn.Module):
    """An :class:`AMPCell` run once with every node started, and a linear decoder on every node.

    ``forward(graph, features, executor, budget, delay, seed, generator) -> (n, C)``
    log-probabilities. Node v's features enter as ``f_v = ReLU(drop(x_v) W_f)`` (a sparse
    embedding, Glorot init: the bag of words is 1433-3703 wide and 1-2% non-zero), the cell
    encodes ``h_v^0 = W_e f_v`` and v receives the start message ``ones(M)``; after the run
    every node is decoded: ``dec(drop([h_v^0 ‖ out(s_v)]))`` (``skip``) or ``dec(drop(out(s_v)))``.
    """

    def __init__(self, kind: str, in_features: int, hidden: int, num_classes: int, msg_size: int = 16,
                 dropout: float = 0.5, readout: str = "skip", embed: bool = False) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; choose one of {READOUTS}")
        self.embed = nn.Parameter(torch.empty(in_features, hidden)) if embed else None
        self.cell = AMPCell(cell_kind(kind), hidden if embed else in_features, hidden, msg_size)
        self.decoder = nn.Linear(hidden * (1 if readout == "last" else 2), num_classes)
        self.dropout, self.readout = dropout, readout

    def reset(self, generator: torch.Generator) -> None:
        """The cell and decoder with PyTorch's default laws, then ``W_f`` Glorot, all from ``generator``."""
        init_parameters(self, generator)
        if self.embed is not None:
            glorot(self.embed, generator)

    def _mean_states(self, data: GraphData, executor, run: RunSpec, budget: int, delay: str, loss: float) -> Tensor:
        """Every node's output averaged over its own states in the run (start state included).

        ``history=True``: the readout walks every state row (``Unrolled.back``), which a checkpointed
        run does not keep, so the run is never cut into segments, whatever its size."""
        out = executor.unroll(self.cell, [data], [[run.starts]], [[run.seed]], run.messages, budget, delay, loss=loss,
                              history=True)
        rows = out.final_rows
        total = self.cell.output(out.states.index_select(0, rows))
        count = torch.ones(rows.shape[0], 1, dtype=total.dtype)
        while True:
            rows = out.back.index_select(0, rows)
            live = (rows > 0).unsqueeze(1)
            if not bool(live.any()):
                return total / count
            total = total + self.cell.output(out.states.index_select(0, rows)) * live
            count = count + live

    def runs(self, n: int, seed: int) -> list[RunSpec]:
        """The start policy: one run, every node starts with ``ones(M)``."""
        ones = torch.ones(n, self.cell.msg_size, dtype=self.decoder.weight.dtype)
        return [RunSpec(tuple(range(n)), ones, seed)]

    def forward(self, graph: GraphData, features: Tensor, executor, budget: int, delay: str = "constant",
                seed: int = 0, generator: Optional[torch.Generator] = None, loss: float = 0.0) -> Tensor:
        x = dropout(features, self.dropout, generator)
        if self.embed is not None:
            f = torch.sparse.mm(x, self.embed) if x.is_sparse else x @ self.embed
        else:
            f = x.to_dense() if x.is_sparse else x
        data = GraphData(graph.edge_index, f, graph.y, graph.num_nodes, graph.level, None, graph.meta)
        runs = self.runs(graph.num_nodes, seed)
        if self.readout == "mean":
            z = self._mean_states(data, executor, runs[0], budget, delay, loss)
        else:
            z = self.cell.output(executor.execute(self.cell, data, runs, budget, delay, loss=loss)[0])
        if self.readout != "last":
            z = torch.cat([self.cell.init_state(f)[:, : self.cell.hidden], z], dim=1)  # h_v^0 = W_e f_v
        return torch.log_softmax(self.decoder(dropout(z, self.dropout, generator)), dim=-1)


class AMPWaveClassifier(nn.Module):
    """An aggregating cell (:class:`~ampsim.cells.aggregate.MeanCell` or
    :class:`~ampsim.cells.aggregate.AttentionCell`) run once with every node started; its output
    is the class scores.

    ``forward(graph, features, executor, budget, delay, seed, generator) -> (n, C)``
    log-probabilities, the signature of :class:`AMPNodeClassifier`. Every node v wakes with its
    features ``x_v`` (dense; row-normalised in the protocol, as the GCN's) and receives the cell's
    start message (zeros); the cell computes K waves (K GNN layers, Section 4.1: AMP expresses a
    GNN), the last one ``num_classes`` wide, and ``log_softmax(output(s_v))`` is the prediction.
    No decoder: the last wave is the classifier, as the GCN's second layer. ``bias=False`` keeps
    the cell's per-wave biases at zero, untrained (our GCN has none).

    * ``"AMP-Mean"``: ``MeanCell(F, hidden, C, waves, norm, dropout)`` -- with ``norm="sym"`` a
      quiescent run computes the two-layer GCN of the same weights;
    * ``"AMP-Att"``: ``AttentionCell(F, hidden, C, heads, out_heads=1, waves, dropout,
      attn_dropout=dropout)`` -- the GAT's architecture (dropout on each wave's input and on the
      attention coefficients, the same rate, as the GAT baseline).

    Dropout masks come from the run's noise seed (:mod:`ampsim.cells.noise`), one draw from
    ``generator`` per forward pass; ``generator=None`` (evaluation) runs without noise.
    """

    def __init__(self, kind: str, in_features: int, hidden: int, num_classes: int, dropout: float = 0.5,
                 waves: int = 2, norm: str = "sym", heads: int = 8, bias: bool = True) -> None:
        super().__init__()
        if kind == "AMP-Mean":
            self.cell = MeanCell(in_features, hidden, num_classes, waves=waves, norm=norm, dropout=dropout)
        elif kind == "AMP-Att":
            self.cell = AttentionCell(in_features, hidden, num_classes, heads=heads, out_heads=1, waves=waves,
                                      dropout=dropout, attn_dropout=dropout)
        else:
            raise ValueError(f"unknown aggregating model {kind!r}; choose one of {WAVE_MODELS}")
        self.kind = kind
        if not bias:  # the biases stay zero and untrained: the cell's waves compute the GCN's (GAT's) layers exactly
            for b in self.cell.biases:
                b.requires_grad_(False)

    def reset(self, generator: torch.Generator) -> None:
        """Glorot-uniform weights (per head for the attention vectors), zero biases, drawn from
        ``generator`` in registration order: the GCN's and the GAT's initialisation."""
        cell = self.cell
        for lin in cell.weights:
            glorot(lin.weight, generator)
        if isinstance(cell, AttentionCell):
            for a in cell.att:
                glorot(a.view(a.shape[0], 1, a.shape[1]), generator)
            for q in cell.query:
                glorot(q.weight, generator)
        with torch.no_grad():
            for b in cell.biases:
                b.zero_()

    def decayed(self) -> list[Tensor]:
        """The weights under weight decay: the first wave's (GCN's choice) or every weight but the biases (GAT's)."""
        cell = self.cell
        if isinstance(cell, MeanCell):
            return [cell.weights[0].weight]
        return [lin.weight for lin in cell.weights] + list(cell.att) + [q.weight for q in cell.query]

    def runs(self, n: int, seed: int, noise_seed: Optional[int] = None) -> list[RunSpec]:
        """The start policy: one run, every node starts with the cell's start message."""
        return [RunSpec(tuple(range(n)), self.cell.start_message(n), seed, noise_seed)]

    def forward(self, graph: GraphData, features: Tensor, executor, budget: int, delay: str = "constant",
                seed: int = 0, generator: Optional[torch.Generator] = None, loss: float = 0.0) -> Tensor:
        noise_seed = None if generator is None else int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        run = self.runs(graph.num_nodes, seed, noise_seed)[0]
        if isinstance(executor, BatchedExecutor):  # sparse features stay sparse (the GCN's): one product per pass
            states = executor.unroll(self.cell, [graph], [[run.starts]], [[run.seed]], run.messages, budget, delay,
                                     features=[features], noise_seeds=[noise_seed], loss=loss).final()
        else:
            x = features.to_dense() if features.is_sparse else features
            data = graph if x is graph.x else GraphData(graph.edge_index, x, graph.y, graph.num_nodes, graph.level,
                                                         None, graph.meta)
            states = executor.execute(self.cell, data, [run], budget, delay, loss=loss)[0]
        return torch.log_softmax(self.cell.output(states), dim=-1)


def build_model(task: NodeTask, config: NodeConfig) -> nn.Module:
    """The model of ``config``, every parameter drawn from ``derive_seed(seed, "init")``."""
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "init") % (2**63))
    in_features = int(task.graph.x.shape[1])
    if config.model in ("GCN", "MLP"):
        model = GCN(in_features, config.hidden, task.num_classes, config.dropout)
    elif config.model == "GAT":
        model = GAT(in_features, config.hidden, task.num_classes, config.heads, config.dropout)
    if config.model in BASELINES:
        model.reset(generator)
        return model
    if config.model in WAVE_MODELS:
        model = AMPWaveClassifier(config.model, in_features, config.hidden, task.num_classes, config.dropout,
                                  config.waves, config.norm, config.heads, config.bias)
    else:
        model = AMPNodeClassifier(config.model, in_features, config.hidden, task.num_classes, config.msg_size,
                                  config.dropout, config.readout, config.embed)
    model.reset(generator)
    return model


class Protocol:
    """Node classification as a definition on the one loop (:func:`ampsim.train.loop.fit_models`).

    * model: :class:`GCN`, :class:`GAT`, :class:`AMPNodeClassifier` or :class:`AMPWaveClassifier`
      (:func:`build_model`);
    * data: one item, the graph; its targets are the labels of the training nodes only;
    * forward / readout: ``forward(model, items, seeds)`` returns the log-probabilities of the
      training nodes; ``seeds[0]`` (the epoch's draw from the ``train-delays`` stream, which the
      loop checkpoints) seeds this epoch's delays and dropout masks, so a resumed run is bit for bit
      an uninterrupted one;
    * loss: per-prediction NLL plus the L2 term ``wd/2 ||W||^2`` spread over the P training
      predictions (weight decay as the reference codes add it to the loss: on the first layer
      for the GCN and AMP-Mean, on every weight but the biases for the GAT and AMP-Att, on every
      parameter for the other AMP models);
    * evaluation after every epoch (dropout off, the fixed ``eval-delays``): ``val_loss``,
      ``val_acc``, ``test_acc``, and the epoch's wall seconds.
    """

    def __init__(self, task: NodeTask, config: NodeConfig, executor=None, best_path: Optional[Path] = None) -> None:
        self.task, self.config = task, config
        self.best_path = best_path if config.model not in BASELINES else None
        self.best: Optional[dict] = None  # the selected epoch so far: val_acc, val_loss, the AMP model's parameters
        if self.best_path is not None and self.best_path.exists():
            self.best = load_checkpoint(str(self.best_path), ("val_acc", "val_loss", "state"))
        self.model = build_model(task, config)
        self.y = task.graph.y
        self.train_nodes = task.train_mask.nonzero().flatten()
        self.data = Data(targets=[self.y[self.train_nodes]])
        self.clock = time.perf_counter()
        if config.model == "GCN":
            self.adj = gcn_adjacency(task.graph.edge_index, task.graph.num_nodes)
        elif config.model == "GAT":
            self.adj = self_loop_edges(task.graph.edge_index, task.graph.num_nodes)
        elif config.model == "MLP":
            self.adj = identity_adjacency(task.graph.num_nodes)
        else:
            if executor is None:
                executor = BatchedExecutor()
            self.executor = executor
            self.budget = config.budget(task.graph.num_nodes)

    def decayed(self) -> list[Tensor]:
        """The weights under weight decay: the model's own choice (its ``decayed()``), else every parameter."""
        own = getattr(self.model, "decayed", None)
        return own() if own is not None else list(self.model.parameters())

    def logp(self, model: nn.Module, generator: Optional[torch.Generator], delay_seed: int, delay: Any = None,
             loss: float = 0.0) -> Tensor:
        """(n, C) log-probabilities of every node (AMP: under ``delay``, default the configured one, and ``loss``)."""
        if self.config.model in BASELINES:
            return model(self.task.features, self.adj, generator)
        delay = self.config.delay if delay is None else delay
        return model(self.task.graph, self.task.features, self.executor, self.budget, delay, delay_seed, generator, loss)

    def forward(self, model: nn.Module, items: Sequence[int], seeds: Sequence[int]) -> Tensor:
        seed = int(seeds[0])
        generator = None
        if model.training:
            generator = torch.Generator().manual_seed(derive_seed(seed, "dropout") % (2**63))
        return self.logp(model, generator, derive_seed(seed, "delays")).index_select(0, self.train_nodes)

    def loss(self, logp: Tensor, target: Tensor) -> Tensor:
        wd = self.config.weight_decay
        terms = nll_terms(logp, target)
        if wd:
            penalty = 0.5 * wd * sum((w * w).sum() for w in self.decayed())
            terms = terms + penalty  # each of the P training terms has weight 1/P in the loop
        return terms

    def evaluate(self, model: nn.Module, epoch: int) -> list[dict]:
        """Validation loss and accuracy, test accuracy (dropout off, fixed evaluation delays)."""
        logp = self.logp(model, None, derive_seed(self.config.seed, "eval-delays"))
        pred = logp.argmax(-1)
        out = {"val_loss": float(nn.functional.nll_loss(logp[self.task.val_mask], self.y[self.task.val_mask]))}
        for split, m in (("val", self.task.val_mask), ("test", self.task.test_mask)):
            out[f"{split}_acc"] = float((pred[m] == self.y[m]).float().mean())
        now = time.perf_counter()
        out["seconds"], self.clock = now - self.clock, now
        b = self.best
        if self.config.model not in BASELINES and (b is None or out["val_acc"] > b["val_acc"] or (
                out["val_acc"] == b["val_acc"] and out["val_loss"] < b["val_loss"])):  # select_epoch's rule
            self.best = {"val_acc": out["val_acc"], "val_loss": out["val_loss"],
                         "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            if self.best_path is not None:  # a resumed run starts from it
                self.best_path.parent.mkdir(parents=True, exist_ok=True)
                save_torch(self.best, self.best_path)
        return [out]

    def robustness(self) -> dict:
        """The selected epoch's model under every condition of :mod:`ampsim.train.robustness`."""
        self.model.load_state_dict(self.best["state"])
        self.model.eval()
        return evaluate_conditions(lambda delay, s, loss: self.logp(self.model, None, s, delay, loss),
                                   self.config.delay, self.config.seed, self.y, self.task.test_mask)


def select_epoch(history: dict[str, list]) -> int:
    """Index of the epoch with the best validation accuracy; ties go to the lower validation loss, then earlier."""
    best = 0
    for i, (acc, loss) in enumerate(zip(history["val_acc"], history["val_loss"])):
        b_acc, b_loss = history["val_acc"][best], history["val_loss"][best]
        if acc > b_acc or (acc == b_acc and loss < b_loss):
            best = i
    return best


# --------------------------------------------------------------------------- files
def result_path(root: str, config: NodeConfig) -> Path:
    """``<root>/<dataset>/<model key>/seed<k>.json``."""
    return Path(root) / config.dataset / config.key / f"seed{config.seed}.json"


def _checkpoint_path(path: Path) -> Path:
    return path.with_suffix(".ckpt.pt")


#: Settings that do not change what a GCN computes (AMP only), ones that only the aggregating cells
#: read (and the GAT's heads), ones the aggregating cells do not read, and ones that never change a result.
_AMP_ONLY = ("msg_size", "budget_factor", "readout", "embed")
_GAT_ONLY = ("heads",)
_WAVE_ONLY = ("waves", "norm")
_RECURRENT_ONLY = ("msg_size", "readout", "embed")
_BOOKKEEPING = ("checkpoint_every",)
#: Settings added later, left out of the protocol at their default (a file written before they existed matches).
_LATER = {"bias": True}


def _protocol(config: dict) -> dict:
    """The settings that define a run's result (what a finished file or a checkpoint must match).

    A setting a model does not read is left out, so the files written before a setting existed
    still match (absent and default alike)."""
    model = config.get("model")
    drop = _BOOKKEEPING + (_AMP_ONLY if model in BASELINES else ())
    drop += () if model in ("GAT", "AMP-Att") else _GAT_ONLY
    drop += _RECURRENT_ONLY if model in WAVE_MODELS else _WAVE_ONLY
    if model == "AMP-Att":
        drop += ("norm",)
    drop += tuple(k for k, default in _LATER.items() if config.get(k, default) == default)
    return {k: v for k, v in config.items() if k not in drop}


def _same_protocol(a: dict, b: dict) -> bool:
    return _protocol(a) == _protocol(b)


def finished_seed(config: NodeConfig, root: str) -> Optional[dict]:
    """The finished result of ``config`` under ``root`` (:func:`result_path`), else None (a stopped seed resumes
    from its checkpoint). A finished result of another configuration, or a file that is not a result, is
    refused (``ValueError`` naming it): it is never overwritten."""
    path = result_path(root, config)
    if not path.exists():
        return None
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid result file ({exc}); it is kept: move it away to train this seed "
                         "again") from None
    if not isinstance(done, dict):
        raise ValueError(f"{path}: not a result file (a JSON {type(done).__name__}, not an object); move it away "
                         "to train this seed again")
    if not done.get("finished"):
        return None
    saved = done.get("config") if isinstance(done.get("config"), dict) else {}
    if _same_protocol(saved, asdict(config)):
        return done
    mine, saved = _protocol(asdict(config)), _protocol(saved)
    diff = sorted(k for k in set(mine) | set(saved) if mine.get(k) != saved.get(k))
    raise ValueError(f"{path} holds a finished run of another configuration (differs in {diff}); "
                     "use another --out folder, or remove the file to retrain")


def train_seed(config: NodeConfig, root: Optional[str] = DEFAULT_RUNS, *, task: Optional[NodeTask] = None,
               executor=None, stop_after: Optional[int] = None,
               log: Optional[Callable[[str], None]] = None, robustness: bool = True) -> dict:
    """Train one (data set, model, delay, seed) through the one loop; return its result (written to :func:`result_path`).

    With ``root`` a finished result of the same configuration is returned as it is, and the
    loop's checkpoint (every ``checkpoint_every`` epochs) is resumed, ending with the same
    parameters and history as an uninterrupted run. ``stop_after`` ends this call after that
    many epochs (an interruption, for tests); the returned dict then has ``"finished": False``.
    ``robustness=False`` skips the selected AMP model's evaluation under other delays and losses.
    """
    path = result_path(root, config) if root else None
    done = finished_seed(config, root) if root else None
    if done is not None:
        return done
    task = task if task is not None else load_node_task(config.dataset, normalize=config.normalize)
    ckpt = _checkpoint_path(path) if path else None
    proto = Protocol(task, config, executor, path.with_suffix(".best.pt") if path else None)

    def progress(epoch: int, outcomes: list) -> None:
        h = outcomes[0].history
        if log is not None and (epoch % 20 == 0 or epoch == config.epochs):
            log(f"{config.dataset} {config.key} seed {config.seed} epoch {epoch}: loss {h['loss'][-1]:.4f} "
                f"val {h['val_acc'][-1]:.3f} test {h['test_acc'][-1]:.3f} ({sum(h['seconds']):.0f}s)")

    options = Options(epochs=config.epochs, lr=config.lr, eval_every=1, checkpoint_every=config.checkpoint_every,
                      resume=True, stop_after=stop_after)
    (outcome,) = fit_models(proto.model, proto.forward, proto.data, options, loss=proto.loss,
                            evaluate=proto.evaluate, checkpoints=[str(ckpt)] if ckpt else None,
                            configs=[_protocol(asdict(config))], delay_rngs=[stream(config.seed, "train-delays")],
                            on_epoch=progress)
    history = outcome.history
    best = select_epoch(history) if history.get("val_acc") else -1
    result: dict[str, Any] = {
        "format": FORMAT, "dataset": config.dataset, "model": config.model, "key": config.key,
        "delay": config.delay, "seed": config.seed, "config": asdict(config), "epochs_done": outcome.epochs_done,
        "finished": outcome.finished, "best_epoch": best + 1,
        "val_acc": history["val_acc"][best] if best >= 0 else None,
        "test_acc": history["test_acc"][best] if best >= 0 else None,
        "seconds": float(sum(history.get("seconds", []))), "history": history,
        "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
    }
    if config.model not in BASELINES:
        last = proto.executor.last
        result["budget"] = proto.budget
        result["deliveries"] = list(last.deliveries) if last is not None else None
        result["batches"] = last.batches if last is not None else None
        result["reasons"] = list(last.reasons) if last is not None else None
        if outcome.finished and proto.best is not None and robustness:
            result["robustness"] = proto.robustness()
    if outcome.finished and path is not None:
        write_result(str(path), result)
        ckpt.unlink(missing_ok=True)
        path.with_suffix(".best.pt").unlink(missing_ok=True)
    return result


# --------------------------------------------------------------------------- summary
def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def finished_results(root: str = DEFAULT_RUNS) -> list[dict]:
    """The finished result files under ``root`` (a folder, or a pack: :mod:`ampsim.runpack`), in path order."""
    out = []
    for path in sorted(Path(runpack.folder(root)).glob("*/*/seed*.json")):
        r = json.loads(path.read_text())
        if r.get("format") == FORMAT and r.get("finished"):
            out.append(r)
    return out


def summarize(root: str = DEFAULT_RUNS) -> dict:
    """``{dataset: {key: {"mean", "std", "seeds", "delay", "minutes", ...}}}`` from the finished result files.

    Accuracies in % (test accuracy at the epoch selected on validation, mean and unbiased std
    over seeds); ``minutes`` is the training time of all seeds together (one thread each).
    ``root``: the result files' folder, or their pack (:mod:`ampsim.runpack`).
    """
    out: dict[str, dict] = {}
    for r in finished_results(root):
        out.setdefault(r["dataset"], {}).setdefault(r["key"], []).append(r)
    summary: dict[str, dict] = {}
    for dataset in [d for d in ALL_DATASETS if d in out]:
        rows = {}
        order = {m: i for i, m in enumerate(MODELS)}
        for key in sorted(out[dataset], key=lambda k: (order.get(k.split("@")[0], 99), k)):
            runs = sorted(out[dataset][key], key=lambda r: r["seed"])
            tests = [100.0 * r["test_acc"] for r in runs]
            vals = [100.0 * r["val_acc"] for r in runs]
            c = runs[0]["config"]
            row = {"mean": round(sum(tests) / len(tests), 2), "std": round(_std(tests), 2), "seeds": len(runs),
                   "delay": None if c["model"] in BASELINES else c["delay"],
                   "minutes": round(sum(r["seconds"] for r in runs) / 60.0, 2),
                   "val_mean": round(sum(vals) / len(vals), 2), "epochs": c["epochs"], "hidden": c["hidden"],
                   "seed_list": [r["seed"] for r in runs]}
            if c["model"] in ("GAT", "AMP-Att", "AMP-Mean"):
                row.update(lr=c["lr"], dropout=c["dropout"])
            if c["model"] in ("GAT", "AMP-Att"):
                row.update(heads=c["heads"])
            if c["model"] in WAVE_MODELS:
                row.update(waves=c["waves"], budget_factor=c["budget_factor"],
                           **({"norm": c["norm"]} if c["model"] == "AMP-Mean" else {}),
                           **({} if c.get("bias", True) else {"bias": False}))
            elif c["model"] not in BASELINES:
                row.update(msg_size=c["msg_size"], budget_factor=c["budget_factor"], readout=c["readout"])
            if c["model"] not in BASELINES:
                row.update(deliveries=runs[0].get("deliveries"), batches=runs[0].get("batches"),
                           seconds_per_epoch=round(sum(r["seconds"] for r in runs)
                                                   / sum(r.get("epochs_done", c["epochs"]) for r in runs), 3))
            rows[key] = row
        summary[dataset] = rows
    return summary


def render_markdown(summary: dict) -> str:
    """The summary as a Markdown table beside the published GCN and GAT figures."""
    datasets = [d for d in DATASETS if d in summary]
    lines = ["# Node classification on the Planetoid public split (test accuracy, %)", "",
             "Mean ± std over seeds of the test accuracy at the epoch with the best validation accuracy; "
             "in brackets the difference to our GCN. Minutes per seed: wall-clock training time of one seed "
             "(one torch thread, on a shared machine), in brackets its multiple of our GCN's; deliveries: "
             "of one AMP run (one run per forward pass, every node started). Per data set, in the order "
             f"{' / '.join(datasets)}. Protocol and reproduction: `docs/node_classification.md`.", "",
             "| model | delay | " + " | ".join(datasets) + " | seeds | minutes per seed | deliveries per run |",
             "|---|---|" + "---|" * len(datasets) + "---|---|---|"]
    for name, figures in PUBLISHED.items():
        cells = [f"{figures[d]:.1f}" for d in datasets]
        lines.append(f"| {name} (published) | — | " + " | ".join(cells) + " | — | — | — |")
    keys: list[str] = []
    for d in datasets:
        keys += [k for k in summary[d] if k not in keys]
    for key in keys:
        cells, seeds, minutes, runs, delay = [], [], [], [], "—"
        for d in datasets:
            row = summary[d].get(key)
            if row is None:
                cells.append("—")
                continue
            gcn = summary[d].get("GCN")
            gap = f" ({row['mean'] - gcn['mean']:+.1f})" if gcn is not None and key != "GCN" else ""
            cells.append(f"{row['mean']:.1f} ± {row['std']:.1f}{gap}")
            seeds.append(str(row["seeds"]))
            per_seed = row["minutes"] / row["seeds"]
            times = f" ({per_seed / (gcn['minutes'] / gcn['seeds']):.1f}x)" if gcn is not None and key != "GCN" else ""
            minutes.append(f"{per_seed:.2f}{times}")
            runs.append("—" if not row.get("deliveries") else f"{row['deliveries'][0]:,}")
            delay = row["delay"] or "—"
        label = key.split("@")[0] + (" (ours)" if key in BASELINES else "")
        lines.append(f"| {label} | {delay} | " + " | ".join(cells) + f" | {'/'.join(seeds)} | {' / '.join(minutes)} "
                     f"| {' / '.join(runs)} |")
    lines += ["", "Settings per row (first data set that has it):", ""]
    for key in keys:
        row = next(summary[d][key] for d in datasets if key in summary[d])
        lines.append(f"* {key}: {row['epochs']} epochs, hidden {row['hidden']}{_settings(key, row)}")
    return "\n".join(lines) + "\n"


def _settings(key: str, row: dict) -> str:
    """The settings of a summary row beyond epochs and hidden size, as the Markdown list shows them."""
    model = key.split("@")[0]
    if model == "GCN":
        return ""
    if model == "GAT":
        return f" x {row['heads']} heads, lr {row['lr']}, dropout {row['dropout']}"
    if model in WAVE_MODELS:
        cell = (f", norm {row['norm']}" if model == "AMP-Mean" else f" x {row['heads']} heads")
        return (f"{cell}, {row['waves']} waves, lr {row['lr']}, dropout {row['dropout']}, budget "
                f"{row['budget_factor']}n deliveries ({_per_run(row)}), {row['seconds_per_epoch']} s per epoch")
    return f", message {row['msg_size']}, budget {row['budget_factor']}n deliveries, readout {row['readout']}"


def _per_run(row: dict) -> str:
    d = row.get("deliveries")
    return "deliveries per run: " + ("—" if not d else str(d[0]))


def write_summary(root: str, json_path: str = "runs/node_classification.json",
                  md_path: str = "runs/node_classification.md",
                  robustness: Optional[str] = "runs/delay_robustness") -> dict:
    """Write the accuracy table (``json_path``, ``md_path``) and, when some run has one, the delay-robustness
    table (``<robustness>.json`` and ``.md``, :mod:`ampsim.train.robustness`; ``None``: not written; a file stem,
    :func:`ampsim.fileio.output_stem`, checked first)."""
    if robustness is not None:
        robustness = output_stem(robustness, (".json", ".md"), flag="--robustness")
    summary = summarize(root)
    robust = summarize_robustness(finished_results(root)) if robustness else None
    paths = [json_path, md_path] + ([robustness + ".json"] if robust and robust["rows"] else [])
    for p in paths:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    write_json(json_path, summary)
    write_text(md_path, render_markdown(summary))
    if robust and robust["rows"]:
        write_json(robustness + ".json", robust)
        write_text(robustness + ".md", render_robustness(robust))
    return summary


def train_step(proto: Protocol, opt: torch.optim.Optimizer, seed: int) -> float:
    """Seconds of one training step of the protocol: forward, loss (with weight decay), backward, Adam step."""
    model = proto.model
    t = time.perf_counter()
    model.train()
    logp = proto.forward(model, [0], [seed])
    loss = proto.loss(logp, proto.y[proto.train_nodes]).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t


if __name__ == "__main__":  # `python -m ampsim.train.node_classification ...`: alias of `ampsim nodes run ...`
    from ampsim.cli import alias

    raise SystemExit(alias(["nodes", "run"]))
