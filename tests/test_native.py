"""The compiled library (ampsim.native): built once, chosen by AMPSIM_FUSED, and equal to the eager code it replaces.

The attention cell's wave aggregate (``csrc/attend.cpp``) against the tensor formula
(:meth:`AttentionCell._gather_eager`): values and gradients to 1e-5 (float32) / 1e-12 (float64), the
same attention-dropout masks; the dropout draws of :mod:`ampsim.cells.noise`: the same bits, so the
same tensors exactly.
"""
from __future__ import annotations

import pytest
import torch

from ampsim import native
from ampsim.cells import noise
from ampsim.cells.aggregate import AttentionCell, _Attend

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def lib():
    if not native.available():
        pytest.skip(f"the compiled library cannot be built here: {native.failure()}")
    return native.library()


def test_the_library_reports_its_abi_and_every_entry_point(lib):
    assert lib.ampsim_levels_abi() == native.ABI
    for name in native._TYPED + ["ampsim_plan_uniform", "ampsim_plan_free"]:
        assert hasattr(lib, name), name
    assert native.failure() is None and native.build_seconds() is not None


def test_usable_follows_the_environment_device_and_dtype(lib, monkeypatch):
    x = torch.zeros(2, 3)
    monkeypatch.delenv(native.ENV, raising=False)
    assert native.usable(x) is lib
    assert native.usable(x.double(), torch.zeros(2, dtype=torch.int64)) is lib
    assert native.usable(x.half()) is None
    assert native.usable(torch.zeros(2, device="meta")) is None
    monkeypatch.setenv(native.ENV, "0")
    assert native.usable(x) is None
    monkeypatch.setenv(native.ENV, "perhaps")
    with pytest.raises(ValueError, match="AMPSIM_FUSED must be 0, 1 or auto"):
        native.usable(x)


def test_without_a_compiler_the_eager_code_runs_after_one_notice(monkeypatch, capsys):
    monkeypatch.delenv(native.ENV, raising=False)
    monkeypatch.setattr(native, "_state", {"lib": None, "error": "RuntimeError: no C++ compiler", "seconds": 0.0})
    keys = torch.arange(4)
    x = torch.ones(4, 5, requires_grad=True)
    ref = x * torch.where((noise.uniform(keys, 1, 5) >= 0.5), 2.0, 0.0)
    for _ in range(2):
        assert torch.equal(noise.dropout(x, 0.5, keys, 1), ref)
    assert capsys.readouterr().err == ("ampsim: the compiled loops are not available (RuntimeError: no C++ "
                                       "compiler); the eager loops run\n")
    monkeypatch.setenv(native.ENV, "1")
    with pytest.raises(RuntimeError, match=r"not available: RuntimeError: no C\+\+ compiler"):
        noise.dropout(x, 0.5, keys, 1)


# ----------------------------------------------------------------------------- noise
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.6, 0.7])
def test_compiled_dropout_draws_the_same_masks(lib, monkeypatch, dtype, p):
    g = torch.Generator().manual_seed(int(p * 10))
    keys = torch.randint(0, 1 << 24, (40,), generator=g)
    keys[[3, 17]] = -1                                   # no noise: rows kept as they are
    x = torch.randn(40, 33, generator=g, dtype=dtype)
    x[x.abs() < 0.8] = 0.0                               # sparse rows: only non-zero entries draw
    out = {}
    for env in ("0", "1"):
        monkeypatch.setenv(native.ENV, env)
        out[env] = (noise.dropout(x.clone().requires_grad_(True), p, keys, 7).detach(),
                    noise.dropout(x, p, keys, 7), noise.dropout(x.to_sparse(), p, keys, 7).to_dense(),
                    noise.dropout(x, p, keys.double(), 7))
    for a, b in zip(out["0"], out["1"]):
        assert a.dtype == dtype and torch.equal(a, b)
    dense = out["1"][0]
    assert torch.equal(dense[3], x[3]) and torch.equal(dense[17], x[17])
    kept = (dense != 0) & (x != 0)
    kept[[3, 17]] = False
    assert torch.allclose(dense[kept], x[kept] / (1 - p))
    # one row at a time (the engine) == all rows at once (the batched executor)
    rows = torch.cat([noise.dropout(x[i: i + 1].clone().requires_grad_(True), p, keys[i: i + 1], 7).detach()
                      for i in range(40)])
    assert torch.equal(rows, dense)


# ----------------------------------------------------------------------------- attention
def _case(dtype, H, Fh, B=23, E=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, H * Fh, generator=g, dtype=dtype, requires_grad=True)
    s = torch.randn(B, H, generator=g, dtype=dtype, requires_grad=True)
    q = torch.randn(B, H, generator=g, dtype=dtype, requires_grad=True)
    src = torch.randint(0, B, (E,), generator=g)
    dst = torch.randint(0, B - 2, (E,), generator=g)    # the last two rows receive nothing
    src, dst = torch.cat([src, src[:5]]), torch.cat([dst, dst[:5]])   # duplicate copies count twice
    keys = torch.randint(0, 1 << 24, (B,), generator=g)
    keys[4] = -1
    return z, s, q, src, dst, keys


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("H,Fh", [(8, 8), (1, 7), (3, 16), (2, 5)])
@pytest.mark.parametrize("drop", [False, True])
def test_compiled_attention_equals_the_tensor_formula(lib, dtype, tol, H, Fh, drop):
    cell = AttentionCell(4, Fh, Fh, heads=H, out_heads=H, waves=1, attn_dropout=0.4).to(dtype)
    z, s, q, src, dst, keys = _case(dtype, H, Fh, seed=H * 100 + Fh)
    key = keys if drop else None
    ref = cell._gather_eager(0, z, s, q, src, dst, key)
    mu, lam, A = _Attend.apply(lib, z, s, q, src, dst, key, 64, 0.4, cell.negative_slope)
    got = torch.cat([mu, lam, A], dim=1)
    assert not mu.requires_grad and lam.requires_grad and A.requires_grad
    assert torch.allclose(got, ref, atol=tol, rtol=tol), (got - ref).abs().max()
    assert torch.equal(got[-2:], torch.zeros_like(got[-2:]))       # no copies: all zero, as the eager scatter
    # a loss through A / λ (how every reader uses the softmax): gradients of z, s and q
    w = torch.randn(z.shape[0], H, Fh, generator=torch.Generator().manual_seed(1), dtype=dtype)

    def ratio(acc):
        return ((acc[:, 2 * H:].reshape(-1, H, Fh) / acc[:, H: 2 * H].clamp_min(1e-30).unsqueeze(2)) * w).sum()

    g_ref = torch.autograd.grad(ratio(ref), (z, s, q))
    g_got = torch.autograd.grad(ratio(got), (z, s, q))
    for a, b in zip(g_got, g_ref):
        assert torch.allclose(a, b, atol=tol * 10, rtol=tol), (a - b).abs().max()


def test_compiled_attention_refuses_a_copy_outside_the_rows(lib):
    z, s, q, src, dst, _ = _case(torch.float32, 2, 3)
    dst = dst.clone()
    dst[7] = z.shape[0]
    with pytest.raises(ValueError, match="outside 0..22"):
        _Attend.apply(lib, z, s, q, src, dst, None, 64, 0.0, 0.2)


@pytest.mark.parametrize("env", ["0", None])
def test_the_cell_runs_both_paths_alike(monkeypatch, env):
    """AttentionCell._gather through the environment's path == the tensor formula (training mode, dropout on)."""
    if env is None and not native.available():
        pytest.skip(native.failure())
    if env is None:
        monkeypatch.delenv(native.ENV, raising=False)
    else:
        monkeypatch.setenv(native.ENV, env)
    torch.manual_seed(0)
    cell = AttentionCell(5, 4, 3, heads=3, waves=2, dropout=0.3, attn_dropout=0.4).double().train()
    z, s_, q_, src, dst, keys = _case(torch.float64, 3, 4)
    z0 = torch.randn(z.shape[0], 12, dtype=torch.float64)
    own = (torch.arange(z.shape[0]) % 3 > 0).double()
    acc, cnt = cell._gather(0, z, z0, own, src, dst, keys, None)
    mine = (own > 0.5).nonzero().flatten()
    score = (z.reshape(z.shape[0], 3, 4) * cell.att[0]).sum(-1)
    ref = cell._gather_eager(0, z, score, cell.query[0](z0), torch.cat([src, mine]), torch.cat([dst, mine]), keys)
    assert torch.allclose(acc, ref, atol=1e-12)
    assert torch.equal(cnt, own.new_zeros(z.shape[0]).index_add(0, torch.cat([dst, mine]),
                                                                 own.new_ones(len(dst) + len(mine))))
