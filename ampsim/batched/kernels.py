"""Hand-written forward and backward of one AMP cell step on a batch of rows (Section 3 cells).

The level driver calls a cell on thousands of tiny batches (one per level of the
critical path, often < 20 rows). Autograd costs far more per call than the arithmetic
(a graph per level, one ``torch.autograd.grad`` per level), so the always-emit cells
(RNN, GRU, LSTM without gate) get a fixed sequence of in-place tensor ops here:

* ``forward(h, m, new, out, act)`` writes the new packed state into ``new`` (B, S), the
  outgoing message ``m' = W_m [h' ‖ m] + b_m`` into ``out`` (B, M), and what the
  backward needs into ``act`` (B, A) (``None``: no gradient wanted);
* ``backward(h, m, new, act, g_new, g_out)`` turns the gradients of the outputs into
  gradients of the inputs ``(g_h, g_m)`` and overwrites ``act`` with the gradients of
  the pre-activations (the "dgates");
* ``param_grads(h, m, new, act, g_out)`` adds the parameter gradients of many rows at
  once (one large matrix product per weight, after a whole segment of levels).

Rows are along dim -2 and every op is a plain 2-D tensor op on the device of the cell,
so a leading model dimension (K stacked cells) can be added by swapping ``addmm`` for
``baddbmm`` (see docs/batched.md, "Extension point"). Formulas (PyTorch's cells):

* RNN: ``h' = ReLU(W [h ‖ m] + b)``;
* GRU: ``r, z = σ(W_i{r,z} m + W_h{r,z} h + b)``, ``n = tanh(W_in m + b_in + r ⊙ (W_hn h + b_hn))``,
  ``h' = n + z ⊙ (h - n)``;
* LSTM: ``i, f, g, o = σ, σ, tanh, σ(W_i m + W_h h + b)``, ``c' = f ⊙ c + i ⊙ g``,
  ``h' = o ⊙ tanh(c')``; the packed state is ``[h ‖ c]``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..cells.cells import AMPCell

__all__ = ["StepKernel", "kernel_for", "KERNEL_KINDS"]

KERNEL_KINDS = ("rnn", "gru", "lstm")


class StepKernel:
    """Base: the message map shared by all kinds; ``act_size`` columns of saved activations per row."""

    act_size = 0

    def __init__(self, cell: AMPCell) -> None:
        H, M = cell.hidden, cell.msg_size
        self.H, self.M, self.S = H, M, cell.state_size
        W = cell.message.weight.detach()
        self.msg_w = cell.message.weight
        self.msg_b = cell.message.bias
        self.Wm_h_t, self.Wm_m_t = W[:, :H].t(), W[:, H:].t()     # (H, M), (M, M)
        self.Wm_h, self.Wm_m = W[:, :H], W[:, H:]                  # (M, H), (M, M)
        self.bm = cell.message.bias.detach()

    @property
    def params(self) -> list[Tensor]:
        raise NotImplementedError

    def message(self, h2: Tensor, m: Tensor, out: Tensor) -> None:
        torch.addmm(self.bm, h2, self.Wm_h_t, out=out)
        out.addmm_(m, self.Wm_m_t)

    def message_grads(self, h2: Tensor, m: Tensor, g_out: Tensor, grads: dict) -> None:
        gw = torch.cat([g_out.t().mm(h2), g_out.t().mm(m)], dim=1)
        _acc(grads, self.msg_w, gw)
        _acc(grads, self.msg_b, g_out.sum(0))


def _acc(grads: dict, p: Tensor, g: Tensor) -> None:
    key = id(p)
    if key in grads:
        grads[key].add_(g)
    else:
        grads[key] = g.clone()


class GRUKernel(StepKernel):
    """act = [r | z | n | W_hn h + b_hn] (4H); after backward: [da_r | da_z | da_n | r ⊙ da_n]."""

    def __init__(self, cell: AMPCell) -> None:
        super().__init__(cell)
        u = cell.update
        H = self.H
        self.act_size = 4 * H
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = u.weight_ih, u.weight_hh, u.bias_ih, u.bias_hh
        Wi, Wh = u.weight_ih.detach(), u.weight_hh.detach()
        bi, bh = u.bias_ih.detach(), u.bias_hh.detach()
        self.Wh_rz_t, self.Wi_rz_t = Wh[: 2 * H].t(), Wi[: 2 * H].t()
        self.Wh_n_t, self.Wi_n_t = Wh[2 * H:].t(), Wi[2 * H:].t()
        self.b_rz = bi[: 2 * H] + bh[: 2 * H]
        self.bh_n, self.bi_n = bh[2 * H:], bi[2 * H:]
        self.Wh_rz, self.Wh_n, self.Wi = Wh[: 2 * H], Wh[2 * H:], Wi

    @property
    def params(self) -> list[Tensor]:
        return [self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.msg_w, self.msg_b]

    def forward(self, h: Tensor, m: Tensor, new: Tensor, out: Tensor, act: Optional[Tensor]) -> None:
        H = self.H
        if act is None:
            act = h.new_empty((h.shape[0], 4 * H))
        rz, n, ghn = act[:, : 2 * H], act[:, 2 * H: 3 * H], act[:, 3 * H:]
        torch.addmm(self.b_rz, h, self.Wh_rz_t, out=rz)
        rz.addmm_(m, self.Wi_rz_t).sigmoid_()
        torch.addmm(self.bh_n, h, self.Wh_n_t, out=ghn)
        torch.addmm(self.bi_n, m, self.Wi_n_t, out=n)
        n.addcmul_(rz[:, :H], ghn).tanh_()
        torch.lerp(n, h, rz[:, H:], out=new)
        self.message(new, m, out)

    def backward(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_new: Tensor,
                 g_out: Tensor) -> tuple[Tensor, Tensor]:
        H = self.H
        r, z, n, ghn = act.split(H, 1)
        g = torch.addmm(g_new, g_out, self.Wm_h)          # dL/dh' (state and message)
        g_m = torch.mm(g_out, self.Wm_m)
        g_h = g * z                                         # direct path h' = n + z (h - n)
        gz = g - g_h                                        # g (1 - z)
        hn = h - n
        z.mul_(gz).mul_(hn)                                 # da_z = g (h - n) z (1 - z)
        n.mul_(n).neg_().add_(1.0).mul_(gz)                 # da_n = g (1 - z)(1 - n^2)
        ghn.mul_(n)                                         # da_n (W_hn h + b_hn)
        rn = r * n                                          # r da_n: gradient of W_hn h + b_hn
        r.addcmul_(r, r, value=-1.0).mul_(ghn)              # da_r = da_n (W_hn h + b_hn) r (1 - r)
        ghn.copy_(rn)
        g_h.addmm_(act[:, : 2 * H], self.Wh_rz).addmm_(ghn, self.Wh_n)
        g_m.addmm_(act[:, : 3 * H], self.Wi)
        return g_h, g_m

    def param_grads(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_out: Tensor, grads: dict) -> None:
        H = self.H
        dgi, d_rz, d_hn = act[:, : 3 * H], act[:, : 2 * H], act[:, 3 * H:]   # views: no copy of act
        _acc(grads, self.w_ih, dgi.t().mm(m))
        s_i = dgi.sum(0)
        _acc(grads, self.b_ih, s_i)
        _acc(grads, self.w_hh, torch.cat([d_rz.t().mm(h), d_hn.t().mm(h)]))
        _acc(grads, self.b_hh, torch.cat([s_i[: 2 * H], d_hn.sum(0)]))
        self.message_grads(new, m, g_out, grads)


class RNNKernel(StepKernel):
    """act = dL/d(pre-activation) (H), written by backward; the forward keeps nothing (ReLU mask = h' > 0)."""

    def __init__(self, cell: AMPCell) -> None:
        super().__init__(cell)
        H = self.H
        self.act_size = H
        self.w, self.b = cell.update.weight, cell.update.bias
        W = cell.update.weight.detach()
        self.W_h_t, self.W_m_t = W[:, :H].t(), W[:, H:].t()
        self.W_h, self.W_m = W[:, :H], W[:, H:]
        self.bias = cell.update.bias.detach()

    @property
    def params(self) -> list[Tensor]:
        return [self.w, self.b, self.msg_w, self.msg_b]

    def forward(self, h: Tensor, m: Tensor, new: Tensor, out: Tensor, act: Optional[Tensor]) -> None:
        torch.addmm(self.bias, h, self.W_h_t, out=new)
        new.addmm_(m, self.W_m_t).relu_()
        self.message(new, m, out)

    def backward(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_new: Tensor,
                 g_out: Tensor) -> tuple[Tensor, Tensor]:
        g = torch.addmm(g_new, g_out, self.Wm_h)
        torch.mul(g, new > 0, out=act)
        g_h = torch.mm(act, self.W_h)
        g_m = torch.mm(g_out, self.Wm_m).addmm_(act, self.W_m)
        return g_h, g_m

    def param_grads(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_out: Tensor, grads: dict) -> None:
        _acc(grads, self.w, torch.cat([act.t().mm(h), act.t().mm(m)], dim=1))
        _acc(grads, self.b, act.sum(0))
        self.message_grads(new, m, g_out, grads)


class LSTMKernel(StepKernel):
    """State [h ‖ c]; act = [i | f | g | o] (4H); after backward: the gate pre-activation gradients."""

    def __init__(self, cell: AMPCell) -> None:
        super().__init__(cell)
        u = cell.update
        H = self.H
        self.act_size = 4 * H
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = u.weight_ih, u.weight_hh, u.bias_ih, u.bias_hh
        self.Wi_t, self.Wh_t = u.weight_ih.detach().t(), u.weight_hh.detach().t()
        self.Wi, self.Wh = u.weight_ih.detach(), u.weight_hh.detach()
        self.b = u.bias_ih.detach() + u.bias_hh.detach()

    @property
    def params(self) -> list[Tensor]:
        return [self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.msg_w, self.msg_b]

    def forward(self, h: Tensor, m: Tensor, new: Tensor, out: Tensor, act: Optional[Tensor]) -> None:
        H = self.H
        if act is None:
            act = h.new_empty((h.shape[0], 4 * H))
        torch.addmm(self.b, h[:, :H], self.Wh_t, out=act)
        act.addmm_(m, self.Wi_t)
        act[:, : 2 * H].sigmoid_()
        act[:, 2 * H: 3 * H].tanh_()
        act[:, 3 * H:].sigmoid_()
        i, f, g, o = act[:, :H], act[:, H: 2 * H], act[:, 2 * H: 3 * H], act[:, 3 * H:]
        c2 = new[:, H:]
        torch.mul(f, h[:, H:], out=c2).addcmul_(i, g)
        torch.tanh(c2, out=new[:, :H]).mul_(o)
        self.message(new[:, :H], m, out)

    def backward(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_new: Tensor,
                 g_out: Tensor) -> tuple[Tensor, Tensor]:
        H = self.H
        i, f, g, o = act[:, :H], act[:, H: 2 * H], act[:, 2 * H: 3 * H], act[:, 3 * H:]
        gh2 = torch.addmm(g_new[:, :H], g_out, self.Wm_h)
        tc = torch.tanh(new[:, H:])
        gc = torch.addcmul(g_new[:, H:], gh2 * o, torch.addcmul(torch.ones_like(tc), tc, tc, value=-1.0))
        g_state = torch.empty_like(h)
        torch.mul(gc, f, out=g_state[:, H:])
        o.mul_(torch.sub(1.0, o)).mul_(gh2).mul_(tc)                      # da_o
        f.mul_(torch.sub(1.0, f)).mul_(gc).mul_(h[:, H:])                 # da_f
        gi = gc * g
        g.mul_(g).neg_().add_(1.0).mul_(gc).mul_(i)                       # da_g = gc i (1 - g^2)
        i.mul_(torch.sub(1.0, i)).mul_(gi)                                 # da_i
        torch.mm(act, self.Wh, out=g_state[:, :H])
        g_m = torch.mm(g_out, self.Wm_m).addmm_(act, self.Wi)
        return g_state, g_m

    def param_grads(self, h: Tensor, m: Tensor, new: Tensor, act: Tensor, g_out: Tensor, grads: dict) -> None:
        H = self.H
        _acc(grads, self.w_ih, act.t().mm(m))
        _acc(grads, self.w_hh, act.t().mm(h[:, :H]))
        s = act.sum(0)
        _acc(grads, self.b_ih, s)
        _acc(grads, self.b_hh, s)
        self.message_grads(new[:, :H], m, g_out, grads)


def kernel_for(cell: AMPCell) -> Optional[StepKernel]:
    """The hand-written kernel of an always-emit cell, or ``None`` (halting cells, the gate).

    A cell may bring its own (``cell.step_kernel()``: K stacked models, ``ampsim.cells.stacked``).
    """
    own = getattr(cell, "step_kernel", None)
    if own is not None:
        return own()
    if not isinstance(cell, AMPCell) or cell.gate or cell.kind not in KERNEL_KINDS:
        return None
    return {"rnn": RNNKernel, "gru": GRUKernel, "lstm": LSTMKernel}[cell.kind](cell)
