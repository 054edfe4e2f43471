"""The compiled level loop equals the eager kernels on real level programs; how the executor picks a path."""
from __future__ import annotations

import pytest
import torch

from ampsim import native
from ampsim.batched import BatchedExecutor, fused
from ampsim.batched.kernels import kernel_for
from ampsim.batched.levels import PARAM_CHUNK, _back_segment, _run_segment
from ampsim.cells.cells import AMPCell
from ampsim.engine.delays import get_delay
from ampsim.graphs import Graph

pytestmark = pytest.mark.usefixtures("one_thread")

needs_lib = pytest.mark.skipif(not fused.available(), reason=f"no compiled level loop: {fused.failure()}")


def ladder(n: int) -> Graph:
    """A ladder with one rung missing in three: levels of a few rows, long critical path."""
    nb = [set() for _ in range(2 * n)]
    for i in range(n):
        for a, b in ((i, i + 1), (n + i, n + i + 1)):
            if i + 1 < n:
                nb[a].add(b)
                nb[b].add(a)
        if i % 3:
            nb[i].add(n + i)
            nb[n + i].add(i)
    return Graph(2 * n, tuple(tuple(sorted(x)) for x in nb), tuple(range(2 * n)), "ladder")


def buffers(s_in, m_in, P: int, A: int):
    """A segment's local buffers (carried-in rows first, P rows to fill) and its activations."""
    return (torch.cat([s_in, s_in.new_empty((P, s_in.shape[1]))]),
            torch.cat([m_in, m_in.new_empty((P, m_in.shape[1]))]), s_in.new_empty((P, A)))


def program(delay: str):
    g = ladder(40)
    bx = BatchedExecutor(segment_rows=0)
    return bx._program([g], [g], [[(0,), (41,)]], [[3, 4]], None, 600, get_delay(delay), False, "msg_id")


@needs_lib
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("index", [torch.int32, torch.int64])
def test_compiled_loop_equals_the_eager_kernels_on_a_level_program(kind, dtype, tol, index):
    torch.manual_seed(1)
    cell = AMPCell(kind, 3, 8, 5).to(dtype)
    prog = program("uniform")
    kernel = kernel_for(cell)
    loop = fused.fused_for(kernel, torch.device("cpu"), dtype, True)
    gen = torch.Generator().manual_seed(2)
    s_in = torch.randn(1 + prog.n_init, cell.state_size, generator=gen, dtype=dtype)
    m_in = torch.randn(prog.n_starts, 5, generator=gen, dtype=dtype)
    ssrc, msrc = prog.state_src.to(index), prog.msg_src.to(index)
    levels = tuple(b - a for a, b in prog.bounds)
    assert len(levels) > 50 and len(ssrc) == 1200
    want, got = buffers(s_in, m_in, len(ssrc), kernel.act_size), buffers(s_in, m_in, len(ssrc), kernel.act_size)
    _run_segment(kernel, levels, ssrc, msrc, *want)
    _run_segment(kernel, levels, ssrc, msrc, *got, loop=loop)
    for a, b in zip(want[:2], got[:2]):
        torch.testing.assert_close(b, a, atol=tol, rtol=0.0)
    if kind != "rnn":   # the RNN forward keeps nothing in act
        torch.testing.assert_close(got[2], want[2], atol=tol, rtol=0.0)
    g_s = torch.randn(want[0].shape, generator=gen, dtype=dtype)
    g_m = torch.randn(want[1].shape, generator=gen, dtype=dtype)
    grads = [{}, {}]
    outs = []
    for (states, msgs, act), lp, gr in ((want, None, grads[0]), (got, loop, grads[1])):
        gs, gm = g_s.clone(), g_m.clone()
        _back_segment(kernel, levels, ssrc, msrc, states, msgs, act, gs, gm, gr, lp)
        outs.append((gs, gm, act))
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, atol=10 * tol, rtol=0.0)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(kernel.params)
    for key in grads[0]:
        torch.testing.assert_close(grads[1][key], grads[0][key], atol=10 * tol * len(ssrc) / PARAM_CHUNK + 10 * tol,
                                   rtol=10 * tol)


@needs_lib
@pytest.mark.parametrize("option,env,path", [(None, None, "fused"), (None, "0", "eager"), (None, "1", "fused"),
                                             (False, "1", "eager"), (True, "0", "fused"), (None, "auto", "fused")])
def test_the_option_and_the_environment_choose_the_path(monkeypatch, option, env, path):
    if env is None:
        monkeypatch.delenv(fused.ENV, raising=False)
    else:
        monkeypatch.setenv(fused.ENV, env)
    cell = AMPCell("gru", 3, 8, 5)
    g = ladder(5)
    bx = BatchedExecutor(fused=option)
    u = bx.unroll(cell, [g], [[(0,)]], [[1]], torch.ones(1, 5), 20, features=[torch.ones(10, 3)])
    assert bx.last_path == path
    ref = BatchedExecutor(fused=False).unroll(cell, [g], [[(0,)]], [[1]], torch.ones(1, 5), 20,
                                              features=[torch.ones(10, 3)])
    torch.testing.assert_close(u.final(), ref.final(), atol=1e-6, rtol=0.0)


def test_lockstep_cells_say_so(monkeypatch):
    monkeypatch.setenv(fused.ENV, "1")
    bx = BatchedExecutor()
    bx.unroll(AMPCell("act", 3, 8, 5), [ladder(3)], [[(0,)]], [[1]], torch.ones(1, 5), 8,
              features=[torch.ones(6, 3)])
    assert bx.last_path == "lockstep"


def test_a_bad_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv(fused.ENV, "maybe")
    with pytest.raises(ValueError, match="AMPSIM_FUSED must be 0, 1 or auto, got 'maybe'"):
        BatchedExecutor().unroll(AMPCell("gru", 3, 8, 5), [ladder(3)], [[(0,)]], [[1]], torch.ones(1, 5), 8,
                                 features=[torch.ones(6, 3)])
    with pytest.raises(ValueError, match="fused"):
        BatchedExecutor(fused="yes")


def test_without_a_compiler_the_eager_loop_runs_after_one_notice(monkeypatch, capsys):
    monkeypatch.delenv(fused.ENV, raising=False)
    monkeypatch.setattr(native, "_state", {"lib": None, "error": "RuntimeError: no C++ compiler", "seconds": 0.0})
    cell = AMPCell("gru", 3, 8, 5)
    bx = BatchedExecutor()
    for _ in range(2):
        bx.unroll(cell, [ladder(3)], [[(0,)]], [[1]], torch.ones(1, 5), 8, features=[torch.ones(6, 3)])
        assert bx.last_path == "eager"
    err = capsys.readouterr().err
    assert err == ("ampsim: the compiled loops are not available (RuntimeError: no C++ compiler); "
                   "the eager loops run\n")
    with pytest.raises(RuntimeError, match=r"not available: RuntimeError: no C\+\+ compiler"):
        BatchedExecutor(fused=True).unroll(cell, [ladder(3)], [[(0,)]], [[1]], torch.ones(1, 5), 8,
                                           features=[torch.ones(6, 3)])


def test_cells_the_loop_does_not_run_are_refused_when_it_is_required():
    kernel = kernel_for(AMPCell("gru", 3, 8, 5))
    with pytest.raises(ValueError, match="float32 or float64 on the CPU; got GRUKernel in torch.float16"):
        fused.fused_for(kernel, torch.device("cpu"), torch.float16, True)
    assert fused.fused_for(kernel, torch.device("cpu"), torch.float16, None) is None
    assert fused.fused_for(kernel, torch.device("cpu"), torch.float32, False) is None
