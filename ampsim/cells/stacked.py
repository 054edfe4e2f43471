"""K models that share a schedule, run as one: stacked parameters, one packed row per (node, run).

For always-emit cells (RNN, GRU, LSTM without a gate) under constant delays the schedule of
a run depends only on the graph, the start nodes and the budget (``ampsim.batched.planner``),
so K models -- seeds of a Table 2 set, folds of a Table 4 grid point -- replay the same plan
with different parameters. A :class:`StackedCell` holds K cells' parameters with a leading
model dimension and packs the K states of a node into **one row** of width ``K * S``::

    [ state of model 0 (S) | state of model 1 (S) | ... ]      messages likewise: K * M

so the batched executor runs it unchanged: a row of the stack is a row of every model, the
gathers and scatters over rows are shared, and each step is a batched matmul over K
(``torch.baddbmm``). Model k's numbers are those of its own :class:`AMPCell` (same formulas,
``tests/train/test_stacked.py`` to 1e-5). Parameter names and shapes are the single cell's with
a leading K, so ``{key: value[k]}`` of the stack's ``state_dict`` is model k's.

* :class:`StackedLinear` -- ``y_k = W_k x_k + b_k`` on ``(K, B, in)``.
* :class:`StackedCell` -- :meth:`AMPCell.init_state` / :meth:`~AMPCell.step` / :meth:`~AMPCell.output`
  on packed rows.
* :class:`AMPModelStack` -- :class:`ampsim.cells.models.AMPModel` for K models (Tables 2 and 3).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..data.graphdata import GraphData
from ..engine.delays import DelayModel
from .cells import AMPCell
from .execute import RunSpec
from .models import AMPModel, budget_groups, origin_runs, pool_nodes, readout_entries, start_runs

__all__ = ["STACKABLE", "StackedLinear", "StackedCell", "AMPModelStack", "stackable"]

#: Cell kinds whose schedule does not depend on values (the levels driver): they can share one.
STACKABLE = ("rnn", "gru", "lstm")


def stackable(cell: AMPCell) -> bool:
    """Whether K copies of ``cell`` can share one schedule: an always-emit kind without the learned gate."""
    return cell.kind in STACKABLE and not cell.gate


class StackedLinear(nn.Module):
    """K linear maps: ``forward(x (K, B, in)) -> (K, B, out)``, ``y_k = x_k W_k^T + b_k``."""

    def __init__(self, models: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(models, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(models, out_features))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class _StackedRecurrent(nn.Module):
    """``nn.GRUCell`` / ``nn.LSTMCell`` parameters for K models (same names, a leading K)."""

    def __init__(self, models: int, gates: int, input_size: int, hidden: int) -> None:
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(models, gates * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(models, gates * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(models, gates * hidden))
        self.bias_hh = nn.Parameter(torch.empty(models, gates * hidden))

    def gates(self, m: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        gi = torch.baddbmm(self.bias_ih.unsqueeze(1), m, self.weight_ih.transpose(1, 2))
        gh = torch.baddbmm(self.bias_hh.unsqueeze(1), h, self.weight_hh.transpose(1, 2))
        return gi, gh


class StackedCell(nn.Module):
    """K :class:`AMPCell` of one always-emit kind, on packed rows ``(B, K * S)`` (see the module docstring).

    ``StackedCell(cells)`` copies the cells' parameters (they must share kind and sizes).
    """

    def __init__(self, cells: Sequence[AMPCell]) -> None:
        super().__init__()
        if not cells:
            raise ValueError("a stack needs at least one cell")
        first = cells[0]
        for c in cells:
            if not stackable(c):
                raise ValueError(f"cells of kind {c.kind!r} (gate={c.gate}) have value-dependent schedules and "
                                 f"cannot share one; stackable kinds: {STACKABLE} without a gate")
            if (c.kind, c.in_features, c.hidden, c.msg_size) != (first.kind, first.in_features, first.hidden,
                                                                 first.msg_size):
                raise ValueError("the cells of a stack must have the same kind and sizes")
        K, H, M, F = len(cells), first.hidden, first.msg_size, first.in_features
        self.models, self.kind, self.gate, self.hidden, self.in_features = K, first.kind, False, H, F
        self.single_state, self.single_msg = first.state_size, M
        self.state_size, self.msg_size = K * first.state_size, K * M
        self.output_size = H  # per model: output() is (..., K, H)
        self.emission = "always"
        self.node_inputs: frozenset = frozenset()
        self.encoder = StackedLinear(K, F, H)
        if first.kind == "gru":
            self.update = _StackedRecurrent(K, 3, M, H)
        elif first.kind == "lstm":
            self.update = _StackedRecurrent(K, 4, M, H)
        else:
            self.update = StackedLinear(K, H + M, H)
        self.message = StackedLinear(K, H + M, M)
        self.to(device=first.encoder.weight.device, dtype=first.encoder.weight.dtype)
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.stack([dict(c.named_parameters())[name].detach() for c in cells]))

    def init_state(self, x: Tensor, inputs=None) -> Tensor:
        """``(N, F)`` features -> ``(N, K * S)`` packed start states (h = W_e x per model); no per-node inputs."""
        xk = x.unsqueeze(0).expand(self.models, -1, -1)
        h = self.encoder(xk).transpose(0, 1)  # (N, K, H)
        if self.kind == "lstm":
            h = torch.cat([h, torch.zeros_like(h)], dim=-1)
        return h.reshape(x.shape[0], self.state_size)

    def start_message(self, k: int = 1) -> Tensor:
        """(k, K * M) ``ones``: every model's initial message, as :meth:`AMPCell.start_message`."""
        w = self.encoder.weight
        return torch.ones(k, self.msg_size, dtype=w.dtype, device=w.device)

    def halted(self, state: Tensor) -> Tensor:
        """Always-emit kinds never halt."""
        return torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)

    def output(self, state: Tensor) -> Tensor:
        """``(..., K * S)`` -> ``(..., K, H)``: every model's output state."""
        return state.reshape(*state.shape[:-1], self.models, self.single_state)[..., : self.hidden]

    def step(self, state: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One delivery on B packed rows: ``(new_state, out_message, emit)`` as :meth:`AMPCell.step`."""
        B, K, H = state.shape[0], self.models, self.hidden
        s = state.reshape(B, K, self.single_state).transpose(0, 1)  # (K, B, S)
        mk = m.reshape(B, K, self.single_msg).transpose(0, 1)       # (K, B, M)
        h = s[..., :H]
        if self.kind == "gru":
            gi, gh = self.update.gates(mk, h)
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h2 = (1.0 - z) * n + z * h
            new = h2
        elif self.kind == "lstm":
            gi, gh = self.update.gates(mk, h)
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            c2 = torch.sigmoid(f) * s[..., H:] + torch.sigmoid(i) * torch.tanh(g)
            h2 = torch.sigmoid(o) * torch.tanh(c2)
            new = torch.cat([h2, c2], dim=-1)
        else:
            h2 = torch.relu(self.update(torch.cat([h, mk], dim=-1)))
            new = h2
        out = self.message(torch.cat([h2, mk], dim=-1))
        emit = torch.ones(B, dtype=state.dtype, device=state.device)
        return new.transpose(0, 1).reshape(B, self.state_size), out.transpose(0, 1).reshape(B, self.msg_size), emit

    def step_kernel(self):
        """The batched executor's step kernel for this stack (``ampsim.batched.kernels.kernel_for``):
        hand-written batched matmuls for RNN (:class:`StackedRNNKernel`), autograd otherwise."""
        return StackedRNNKernel(self) if self.kind == "rnn" else StackedKernel(self)

    def extra_repr(self) -> str:
        return f"models={self.models}, kind={self.kind!r}, hidden={self.hidden}, msg_size={self.single_msg}"


class StackedKernel:
    """The level driver's step kernel (``ampsim.batched.kernels.StepKernel`` interface) for a stack, by autograd.

    ``forward`` runs :meth:`StackedCell.step` without a graph; ``backward`` recomputes the
    step of one level with a graph and takes the input and parameter gradients with one
    ``torch.autograd.grad`` (the executor recomputes segments from checkpoints anyway); the
    parameter gradients wait in the kernel until ``param_grads`` (once per segment) adds them
    to the executor's ``grads``. No activations are kept (``act_size = 0``).
    """

    act_size = 0

    def __init__(self, cell: StackedCell) -> None:
        self.cell = cell
        self._params = list(cell.parameters())
        self._pending: list[Optional[Tensor]] = [None] * len(self._params)

    @property
    def params(self) -> list[Tensor]:
        return self._params

    def forward(self, h: Tensor, m: Tensor, new: Tensor, out: Tensor, act: Optional[Tensor]) -> None:
        with torch.no_grad():
            n, o, _ = self.cell.step(h, m)
        new.copy_(n)
        out.copy_(o)

    def backward(self, h: Tensor, m: Tensor, new: Tensor, act: Optional[Tensor], g_new: Tensor,
                 g_out: Tensor) -> tuple[Tensor, Tensor]:
        want = [p for p in self._params if p.requires_grad]
        with torch.enable_grad():
            h = h.detach().requires_grad_(True)
            m = m.detach().requires_grad_(True)
            n, o, _ = self.cell.step(h, m)
            grads = torch.autograd.grad((n, o), [h, m] + want, (g_new, g_out), allow_unused=True)
        it = iter(grads[2:])
        for i, p in enumerate(self._params):
            if not p.requires_grad:
                continue
            g = next(it)
            if g is not None:
                self._pending[i] = g if self._pending[i] is None else self._pending[i] + g
        g_h = grads[0] if grads[0] is not None else torch.zeros_like(h)
        g_m = grads[1] if grads[1] is not None else torch.zeros_like(m)
        return g_h, g_m

    def param_grads(self, h: Tensor, m: Tensor, new: Tensor, act: Optional[Tensor], g_out: Tensor,
                    grads: dict) -> None:
        for p, g in zip(self._params, self._pending):
            if g is None:
                continue
            if id(p) in grads:
                grads[id(p)].add_(g)
            else:
                grads[id(p)] = g
        self._pending = [None] * len(self._params)


def _acc(grads: dict, p: Tensor, g: Tensor) -> None:
    if id(p) in grads:
        grads[id(p)].add_(g)
    else:
        grads[id(p)] = g


class StackedRNNKernel:
    """Hand-written step of K stacked RNN cells (``h' = ReLU(W [h ‖ m] + b)``, ``m' = W_m [h' ‖ m] + b_m``).

    The same interface as ``ampsim.batched.kernels.RNNKernel``, with ``baddbmm`` over the model
    dimension: ``act`` (B, K*H) holds dL/d(pre-activation) after ``backward``; ``param_grads``
    adds the parameter gradients of a whole segment with one batched product per weight.
    """

    def __init__(self, cell: StackedCell) -> None:
        K, H, M = cell.models, cell.hidden, cell.single_msg
        self.K, self.H, self.M = K, H, M
        self.act_size = K * H
        self.w, self.b = cell.update.weight, cell.update.bias
        self.mw, self.mb = cell.message.weight, cell.message.bias
        W, Wm = self.w.detach(), self.mw.detach()
        c = lambda t: t.contiguous()  # noqa: E731 - batched matmuls on strided slices take a slow path
        self.W_h, self.W_m = c(W[:, :, :H]), c(W[:, :, H:])            # (K, H, H), (K, H, M)
        self.Wm_h, self.Wm_m = c(Wm[:, :, :H]), c(Wm[:, :, H:])        # (K, M, H), (K, M, M)
        self.W_h_t, self.W_m_t = c(self.W_h.transpose(1, 2)), c(self.W_m.transpose(1, 2))
        self.Wm_h_t, self.Wm_m_t = c(self.Wm_h.transpose(1, 2)), c(self.Wm_m.transpose(1, 2))
        self.bias, self.mbias = self.b.detach().unsqueeze(1), self.mb.detach().unsqueeze(1)

    @property
    def params(self) -> list[Tensor]:
        return [self.w, self.b, self.mw, self.mb]

    def _k(self, x: Tensor, width: int) -> Tensor:
        return x.view(x.shape[0], self.K, width).transpose(0, 1)  # (K, B, width), a view

    def _kc(self, x: Tensor, width: int) -> Tensor:
        """``(K, B, width)`` contiguous: batched matmuls on the strided view take a slow path."""
        return self._k(x, width).contiguous()

    def forward(self, h: Tensor, m: Tensor, new: Tensor, out: Tensor, act: Optional[Tensor]) -> None:
        H, M = self.H, self.M
        hk, mk = self._kc(h, H), self._kc(m, M)
        pre = torch.baddbmm(self.bias, hk, self.W_h_t).baddbmm_(mk, self.W_m_t).relu_()
        self._k(new, H).copy_(pre)
        o = torch.baddbmm(self.mbias, pre, self.Wm_h_t).baddbmm_(mk, self.Wm_m_t)
        self._k(out, M).copy_(o)

    def backward(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_new: Tensor,
                 g_out: Tensor) -> tuple[Tensor, Tensor]:
        H, M, B = self.H, self.M, h.shape[0]
        go = self._kc(g_out, M)
        g = torch.baddbmm(self._k(g_new, H), go, self.Wm_h)
        a = g.mul_(self._k(new, H) > 0)
        self._k(act, H).copy_(a)
        g_h = torch.bmm(a, self.W_h).transpose(0, 1).reshape(B, self.K * H)
        g_m = torch.bmm(go, self.Wm_m).baddbmm_(a, self.W_m).transpose(0, 1).reshape(B, self.K * M)
        return g_h, g_m

    def param_grads(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_out: Tensor, grads: dict) -> None:
        H, M = self.H, self.M
        a, hk, mk, nk, go = self._kc(act, H), self._kc(h, H), self._kc(m, M), self._kc(new, H), self._kc(g_out, M)
        at, gt = a.transpose(1, 2).contiguous(), go.transpose(1, 2).contiguous()
        _acc(grads, self.w, torch.cat([torch.bmm(at, hk), torch.bmm(at, mk)], dim=2))
        _acc(grads, self.b, a.sum(1))
        _acc(grads, self.mw, torch.cat([torch.bmm(gt, nk), torch.bmm(gt, mk)], dim=2))
        _acc(grads, self.mb, go.sum(1))


class AMPModelStack(nn.Module):
    """K :class:`AMPModel` of one architecture as one: ``forward_many`` returns ``(K, ...)`` log-probabilities.

    ``AMPModelStack(models)`` copies the models' parameters; ``state_dict`` keys are an AMPModel's.
    """

    def __init__(self, models: Sequence[AMPModel]) -> None:
        super().__init__()
        first = models[0]
        for m in models:
            if (m.readout, m.aggr, m.heads, m.num_classes) != (first.readout, first.aggr, first.heads,
                                                              first.num_classes):
                raise ValueError("the models of a stack must have the same readout, pooling, heads and classes")
        self.models = len(models)
        self.cell = StackedCell([m.cell for m in models])
        H, C = first.cell.hidden, first.num_classes
        self.decoders = nn.ModuleList(StackedLinear(self.models, H, C) for _ in range(first.heads))
        self.decoders.to(device=first.decoders[0].weight.device, dtype=first.decoders[0].weight.dtype)
        with torch.no_grad():
            for h, dec in enumerate(self.decoders):
                dec.weight.copy_(torch.stack([m.decoders[h].weight.detach() for m in models]))
                dec.bias.copy_(torch.stack([m.decoders[h].bias.detach() for m in models]))
        self.readout, self.aggr, self.heads, self.num_classes = first.readout, first.aggr, first.heads, C

    def runs(self, graph: GraphData, seed: int = 0) -> list[RunSpec]:
        """:meth:`AMPModel.runs` with every start message repeated for the K models."""
        dtype = self.cell.encoder.weight.dtype
        M = self.cell.single_msg
        if self.readout == "all":
            if graph.starts is None:
                raise ValueError("readout 'all' needs graph.starts (the origin nodes)")
            starts = graph.starts.reshape(-1).tolist()
            if len(starts) != self.heads:
                raise ValueError(f"the graph has {len(starts)} origins but the model {self.heads} heads")
            return [RunSpec(r.starts, r.messages.repeat(1, self.models), r.seed)
                    for r in origin_runs(starts, M, seed, dtype)]
        return start_runs(graph.num_nodes, torch.ones(1, self.cell.msg_size, dtype=dtype), seed)

    def entries(self, n: int) -> Tensor:
        """:func:`~ampsim.cells.models.readout_entries` of the models' readout."""
        return readout_entries(self.readout, n)

    def decode(self, read: Tensor) -> Tensor:
        """Packed final states of :meth:`entries` ``(n, K * S)`` -> ``(K, ...)`` log-probabilities
        (:meth:`AMPModel.decode`)."""
        z = self.cell.output(read).transpose(0, 1)  # (K, n, H)
        if self.readout == "all":
            return torch.stack([nn.functional.log_softmax(dec(z), dim=-1) for dec in self.decoders], dim=1)
        if self.readout == "start":
            return nn.functional.log_softmax(self.decoders[0](z), dim=-1)
        return nn.functional.log_softmax(self.decoders[0](pool_nodes(z, self.aggr, 1)), dim=-1)

    def readout_states(self, states: Tensor) -> Tensor:
        """Every packed final state ``(runs, n, K * S)`` -> ``(K, ...)`` log-probabilities (:meth:`decode`)."""
        read = states.reshape(-1, states.shape[-1]).index_select(0, self.entries(states.shape[1]).to(states.device))
        return self.decode(read)

    def forward_many(self, graphs: Sequence[GraphData], executor, budgets: Sequence[int],
                     delay: Union[str, DelayModel] = "constant", seeds: Optional[Sequence[int]] = None,
                     fifo: bool = False) -> list[Tensor]:
        """:meth:`AMPModel.forward_many` for K models (the executor needs ``execute_many``)."""
        seeds = list(seeds) if seeds is not None else [0] * len(graphs)
        if len(budgets) != len(graphs) or len(seeds) != len(graphs):
            raise ValueError("graphs, budgets and seeds must have the same length")
        dtype = self.cell.encoder.weight.dtype
        out: list[Optional[Tensor]] = [None] * len(graphs)
        for budget, idx in budget_groups(budgets).items():
            data = [graphs[i] if graphs[i].x.dtype == dtype else
                    GraphData(graphs[i].edge_index, graphs[i].x.to(dtype), graphs[i].y, graphs[i].num_nodes,
                              graphs[i].level, graphs[i].starts, graphs[i].meta) for i in idx]
            read = executor.execute_many(self.cell, data, [self.runs(graphs[i], seeds[i]) for i in idx], budget,
                                         delay, fifo, keep=[self.entries(graphs[i].num_nodes) for i in idx])
            for i, st in zip(idx, read):
                out[i] = self.decode(st)
        return out  # type: ignore[return-value]

    def targets(self, graph: GraphData) -> Tensor:
        """The labels of one model (:meth:`AMPModel.targets`)."""
        y = graph.y
        if self.readout == "all":
            return y.reshape(graph.num_nodes, -1).t()
        return y.reshape(-1)
