"""The compiled library: the loops that eager tensor operations run slowly, built once per machine.

``ampsim/csrc`` holds plain C++ (no torch headers), called through :mod:`ctypes`:

* ``levels.cpp`` -- the fused level loop of the RNN, GRU and LSTM cells (:mod:`ampsim.batched.fused`);
* ``plan.cpp`` -- the planner's uniform-delay event loop (:mod:`ampsim.batched.planner`);
* ``attend.cpp`` -- the attention cell's wave aggregate and the cells' dropout draws
  (:mod:`ampsim.cells.aggregate`, :mod:`ampsim.cells.noise`).

They are built into one library with :func:`torch.utils.cpp_extension.load` (the compiler that
builds torch extensions, with its file lock for concurrent first builds) in torch's extension
cache (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), under a name that
carries a SHA-256 of the sources, the flags and the torch version: once per machine and source
version. On x86-64 with AVX2 and FMA the flags are ``-O3 -fno-trapping-math -fopenmp-simd -mavx2
-mfma`` (the name says ``avx2``; a cache shared with a CPU without them builds its own ``base``
library), else without the last two. ``-fno-trapping-math`` lets the compiler vectorise the clamps
of the exponential (the loops set no floating-point traps); ``-fopenmp-simd`` honours the loops'
``omp simd`` reductions (vectorised sums; no OpenMP runtime).

Whether it is used: every caller takes an option ``True`` (required), ``False`` (never) or
``None`` (when available); :func:`resolve` applies the environment variable ``AMPSIM_FUSED``
(``0`` / ``1``) to ``None``. Without a compiler the eager paths run, after a one-line notice on
stderr (:func:`notice`, once per process).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

__all__ = ["library", "available", "failure", "build_seconds", "from_cache", "resolve", "notice", "usable", "obtain",
           "ENV", "SOURCES", "HEADERS", "ABI", "DTYPES"]

#: ``0``: never use the compiled library; ``1``: require it; unset or empty: use it when available.
ENV = "AMPSIM_FUSED"

SOURCES = tuple(Path(__file__).resolve().parent / "csrc" / f for f in ("levels.cpp", "plan.cpp", "attend.cpp"))
#: Headers the sources include (part of the library's name: a change rebuilds it).
HEADERS = (Path(__file__).resolve().parent / "csrc" / "fastmath.h",)

#: The version of the entry points' arguments (``ampsim_levels_abi()``); a library reporting another is rebuilt.
ABI = 3

#: The float types the compiled loops take, as their ``dtype`` argument.
DTYPES = {torch.float32: 32, torch.float64: 64}

#: Entry points taking ``(struct *, int dtype)``; the plan loop takes its struct only.
_TYPED = [f"ampsim_{k}_{d}" for k in ("gru", "rnn", "lstm", "attend") for d in ("forward", "backward")]
_TYPED += ["ampsim_dropout_factors"]

_lock = threading.Lock()
_state: dict = {}


def _isa() -> tuple[str, list[str]]:
    """(tag, compiler flags): ``avx2`` with ``-mavx2 -mfma`` where torch detects AVX2 or better on x86-64."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "DEFAULT"
    if x86 and cap in ("AVX2", "AVX512"):
        return "avx2", ["-O3", "-fno-trapping-math", "-fopenmp-simd", "-mavx2", "-mfma"]
    return "base", ["-O3", "-fno-trapping-math", "-fopenmp-simd"]


def library() -> Optional[ctypes.CDLL]:
    """The compiled library (built on first use, then from the cache), or ``None`` when it cannot be built.

    The reason of a failure is kept in :func:`failure`; the build time (about 0 when it came
    from the cache) in :func:`build_seconds`.
    """
    with _lock:
        if "lib" in _state:
            return _state["lib"]
        t0 = time.perf_counter()
        lib, err = None, None
        try:
            lib = _build()
        except Exception as e:  # no compiler, no ninja, a failed build: the eager paths run
            err = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        _state.update(lib=lib, error=err, seconds=time.perf_counter() - t0)
        return lib


def _build() -> ctypes.CDLL:
    tag, flags = _isa()
    src = b"".join(f.read_bytes() for f in SOURCES + HEADERS)
    digest = hashlib.sha256(src + repr(flags).encode() + torch.__version__.encode()).hexdigest()[:16]
    name = f"ampsim_native_{tag}_{digest}"
    from torch.utils import cpp_extension

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())
    path = root / name / f"{name}.so"
    _state["cached"] = path.exists()
    if not path.exists():
        (root / name).mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():   # the compiler ABI check warns on compilers it does not know
            warnings.simplefilter("ignore")
            cpp_extension.load(name, [str(f) for f in SOURCES], extra_cflags=flags, build_directory=str(root / name),
                               is_python_module=False, verbose=False)
    lib = ctypes.CDLL(str(path))
    if lib.ampsim_levels_abi() != ABI:
        raise RuntimeError(f"{path} is not this version of the compiled library")
    for f in _TYPED:
        getattr(lib, f).argtypes = [ctypes.c_void_p, ctypes.c_int]
        getattr(lib, f).restype = ctypes.c_int
    lib.ampsim_plan_uniform.argtypes = [ctypes.c_void_p]
    lib.ampsim_plan_uniform.restype = ctypes.c_int
    lib.ampsim_plan_free.argtypes = [ctypes.c_void_p]
    lib.ampsim_plan_free.restype = None
    return lib


def available() -> bool:
    """Whether the compiled library can be used on this machine (building it if needed)."""
    return library() is not None


def failure() -> Optional[str]:
    """Why the compiled library could not be built (``None`` when it was, or was not tried)."""
    return _state.get("error")


def build_seconds() -> Optional[float]:
    """Seconds the first :func:`library` call took (a build, or loading from the cache); ``None`` before it."""
    return _state.get("seconds")


def from_cache() -> Optional[bool]:
    """Whether the library came from the cache (``None`` before the first :func:`library` call)."""
    return _state.get("cached")


def resolve(option: Optional[bool]) -> Optional[bool]:
    """An option after ``AMPSIM_FUSED``: ``True`` (required), ``False`` (never) or ``None`` (when
    available). An option given explicitly wins over the environment."""
    if option is not None:
        return bool(option)
    env = os.environ.get(ENV, "").strip().lower()
    if env in ("", "auto"):
        return None
    if env in ("1", "on", "true", "yes"):
        return True
    if env in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{ENV} must be 0, 1 or auto, got {os.environ[ENV]!r}")


def notice() -> None:
    """The one-line notice (once per process) that the compiled library is missing and eager code runs."""
    if not _state.get("noticed"):
        _state["noticed"] = True
        print(f"ampsim: the compiled loops are not available ({failure()}); the eager loops run", file=sys.stderr)


def usable(*tensors: torch.Tensor) -> Optional[ctypes.CDLL]:
    """The library for a call on these tensors under ``AMPSIM_FUSED``, or ``None`` (run the eager code).

    ``None`` when the environment says ``0``, a tensor is not on the CPU or not float32 / float64
    (integer index tensors aside), or the library cannot be built (after the notice). With
    ``AMPSIM_FUSED=1`` a library that cannot be built raises."""
    option = resolve(None)
    if option is False:
        return None
    for t in tensors:
        if t.device.type != "cpu" or (t.is_floating_point() and t.dtype not in DTYPES):
            return None
    return obtain(option)


def obtain(option: Optional[bool], what: str = "the compiled library") -> Optional[ctypes.CDLL]:
    """The library under a resolved ``option`` (:func:`resolve`): ``None`` for ``False``; else the library,
    or where it cannot be built an error (``True``) or ``None`` after the one-line notice (``None``)."""
    if option is False:
        return None
    lib = library()
    if lib is None:
        if option:
            raise RuntimeError(f"{what} is not available: {failure()}")
        notice()
    return lib
