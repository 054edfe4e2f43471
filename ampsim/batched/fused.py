"""The fused level loop: a level program's forward and backward in one compiled call (Section 3 cells).

The eager level driver runs some 16 forward and 26 backward tensor operations per level;
on one large run (a long critical path of small levels, docs/batched.md "One large run")
that fixed cost per level, not arithmetic, sets the speed. ``csrc/levels.cpp`` runs the
whole loop instead: rows in program order forward (every row reads only rows of lower
levels, which come earlier), in reverse order backward (every row's output gradient is
complete when it is reached); the input gradients are scatter-added row by row, and the
pre-activation gradients are left in ``act`` in :mod:`ampsim.batched.kernels`' layout, so
the parameter gradients stay the kernels' large matrix products.

The planner's uniform-delay loop (``csrc/plan.cpp``, :mod:`ampsim.batched.planner`) and the
attention cell's aggregate are compiled into the same library, built once per machine by
:mod:`ampsim.native` (which says how, and where it is cached).

Which path runs: ``BatchedExecutor(fused=None)`` (the default) uses the compiled loop when it
can be built and the cell, device (CPU) and dtype (float32, float64) allow it, else the eager
kernels, with a one-line notice on stderr (once per process) when the compiler is missing;
``fused=True`` requires it, ``fused=False`` never uses it. The environment variable
``AMPSIM_FUSED`` (``0`` / ``1``) overrides the default the same way.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import torch
from torch import Tensor

from ..native import DTYPES, ENV, SOURCES, available, build_seconds, failure, from_cache, library, obtain, resolve
from .kernels import GRUKernel, LSTMKernel, RNNKernel, StepKernel

__all__ = ["FusedLoop", "fused_for", "library", "available", "failure", "build_seconds", "from_cache",
           "resolve", "ENV", "SOURCES"]

_KINDS = {GRUKernel: "gru", RNNKernel: "rnn", LSTMKernel: "lstm"}


class _Args(ctypes.Structure):
    _fields_ = [("P", ctypes.c_int64), ("c", ctypes.c_int64), ("cm", ctypes.c_int64), ("H", ctypes.c_int64),
                ("M", ctypes.c_int64), ("S", ctypes.c_int64), ("idx64", ctypes.c_int64),
                ("states", ctypes.c_void_p), ("msgs", ctypes.c_void_p), ("ssrc", ctypes.c_void_p),
                ("msrc", ctypes.c_void_p), ("act", ctypes.c_void_p), ("g_states", ctypes.c_void_p),
                ("g_msgs", ctypes.c_void_p), ("w", ctypes.c_void_p * 8)]


class PlanArgs(ctypes.Structure):
    """``csrc/plan.cpp``'s arguments and results (:func:`ampsim.batched.planner._plan_uniform_native`)."""

    _i64p = ctypes.POINTER(ctypes.c_int64)
    _fields_ = [("n", ctypes.c_int64), ("k", ctypes.c_int64), ("budget", ctypes.c_int64), ("indptr", _i64p),
                ("indices", _i64p), ("starts", _i64p), ("mt", ctypes.POINTER(ctypes.c_uint32)),
                ("mt_pos", ctypes.c_int64), ("unit", ctypes.c_int64), ("low", ctypes.c_double),
                ("high", ctypes.c_double), ("slot_base", ctypes.c_int64), ("cap", ctypes.c_int64)]
    _fields_ += [(k, ctypes.c_void_p) for k in ("node", "msg_id", "cause", "prev", "slot", "src", "level", "time",
                                                "last", "state")]
    _fields_ += [("done", ctypes.c_int64), ("sent", ctypes.c_int64), ("err_msg", ctypes.c_int64),
                 ("err_t", ctypes.c_double), ("err_d", ctypes.c_double)]


class FusedLoop:
    """One cell's compiled level loop: :meth:`forward` and :meth:`backward` of a block of rows.

    Buffers as the eager driver's segments: ``states`` ``(c + P, S)`` and ``msgs`` ``(cm + P, M)``
    hold the carried-in rows, then one row per delivery; ``ssrc`` / ``msrc`` (P,) int32 or int64
    give each delivery's input rows (all below ``c`` + its own position, resp. ``cm`` + it).
    """

    def __init__(self, kernel: StepKernel, lib: ctypes.CDLL) -> None:
        self.kernel = kernel
        self.kind = _KINDS[type(kernel)]
        self._fwd = getattr(lib, f"ampsim_{self.kind}_forward")
        self._bwd = getattr(lib, f"ampsim_{self.kind}_backward")

    def _weights(self, dtype: torch.dtype) -> list[Tensor]:
        """The weights in the order and layout ``levels.cpp`` reads them (see there), contiguous."""
        k = self.kernel
        d = lambda t: t.detach().to(dtype).contiguous()  # noqa: E731
        Wm = d(k.msg_w)
        common = [d(Wm.t()), d(k.msg_b)]
        if self.kind == "gru":
            H = k.H
            Wh, Wi, bi, bh = d(k.w_hh), d(k.w_ih), d(k.b_ih), d(k.b_hh)
            b = torch.cat([bi[: 2 * H] + bh[: 2 * H], bi[2 * H:], bh[2 * H:]])
            return [d(Wh.t()), d(Wi.t()), b] + common + [Wh, Wi, Wm]
        if self.kind == "rnn":
            W = d(k.w)
            return [d(W.t()), d(k.b), W.new_zeros(1)] + common + [W, W.new_zeros(1), Wm]
        Wh, Wi = d(k.w_hh), d(k.w_ih)
        return [d(Wh.t()), d(Wi.t()), d(k.b_ih) + d(k.b_hh)] + common + [Wh, Wi, Wm]

    def _call(self, f, states: Tensor, msgs: Tensor, ssrc: Tensor, msrc: Tensor, act: Optional[Tensor],
              g_states: Optional[Tensor], g_msgs: Optional[Tensor]) -> None:
        P = int(ssrc.shape[0])
        if not P:
            return
        dtype = states.dtype
        tensors = [states, msgs] + [t for t in (act, g_states, g_msgs) if t is not None]
        if any(t.dtype != dtype or not t.is_contiguous() or t.device.type != "cpu" for t in tensors):
            raise ValueError("the compiled level loop needs contiguous CPU buffers of one dtype")
        if ssrc.dtype != msrc.dtype or ssrc.dtype not in (torch.int32, torch.int64):
            raise ValueError("ssrc and msrc must both be int32 or both int64")
        ssrc, msrc = ssrc.contiguous(), msrc.contiguous()
        k = self.kernel
        c, cm = states.shape[0] - P, msgs.shape[0] - P
        w = self._weights(dtype)
        a = _Args(P, c, cm, k.H, k.M, states.shape[1], int(ssrc.dtype == torch.int64), states.data_ptr(),
                  msgs.data_ptr(), ssrc.data_ptr(), msrc.data_ptr(), 0 if act is None else act.data_ptr(),
                  0 if g_states is None else g_states.data_ptr(), 0 if g_msgs is None else g_msgs.data_ptr(),
                  (ctypes.c_void_p * 8)(*[t.data_ptr() for t in w]))
        if f(ctypes.byref(a), DTYPES[dtype]) != 0:
            raise RuntimeError(f"the compiled level loop refused dtype {dtype}")

    def forward(self, states: Tensor, msgs: Tensor, ssrc: Tensor, msrc: Tensor, act: Optional[Tensor]) -> None:
        """Fill the last P rows of ``states`` and ``msgs`` (P = len(ssrc)), and ``act`` (P, A) unless ``None``."""
        self._call(self._fwd, states, msgs, ssrc, msrc, act, None, None)

    def backward(self, states: Tensor, msgs: Tensor, ssrc: Tensor, msrc: Tensor, act: Tensor, g_states: Tensor,
                 g_msgs: Tensor) -> None:
        """Scatter-add the input gradients of the last P rows into ``g_states`` / ``g_msgs`` (rows in reverse);
        ``act`` becomes the pre-activation gradients (:mod:`ampsim.batched.kernels`' layout)."""
        self._call(self._bwd, states, msgs, ssrc, msrc, act, g_states, g_msgs)


def fused_for(kernel: StepKernel, device: torch.device, dtype: torch.dtype, option: Optional[bool]) -> Optional[FusedLoop]:
    """The compiled loop for this kernel, or ``None`` (eager). ``option`` as :func:`resolve` returns it:
    ``True`` raises where the compiled loop cannot run this cell; ``None`` falls back (with the
    one-line notice when the library cannot be built)."""
    if option is False:
        return None
    usable = type(kernel) in _KINDS and torch.device(device).type == "cpu" and dtype in DTYPES
    if not usable:
        if option:
            raise ValueError(f"the compiled level loop runs RNN, GRU and LSTM cells in float32 or float64 on the "
                             f"CPU; got {type(kernel).__name__} in {dtype} on {device}")
        return None
    lib = obtain(option, "the compiled level loop")
    return None if lib is None else FusedLoop(kernel, lib)
