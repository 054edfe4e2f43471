"""Data-parallel training: torch.distributed DDP, gloo on CPU and nccl on GPU, via torchrun or ``launch``.

The full-batch gradient of the authors' protocol is a mean over all training graphs:
``g = (1/N) sum_i grad l_i``. With P processes, each takes a shard ``S_p`` (:func:`shard`),
computes ``L_p = (P/N) sum_{i in S_p} l_i`` (:func:`shard_loss`) and DDP averages the
gradients: ``(1/P) sum_p grad L_p = (1/N) sum_i grad l_i`` -- the single-process gradient,
up to float summation order (``tests/train/test_ddp.py`` checks 2 processes against 1).
The authors' multiprocess script did the same by hand (reference notes 1.5).

Two ways to start P processes:

* ``torchrun --nproc-per-node P -m ampsim table4 run ...``: each process
  calls :func:`init_from_env` (the environment variables torchrun sets);
* :func:`launch` ``(P, target, *args)`` from Python (what ``ampsim train --nproc P`` and
  ``ampsim table4 run --nproc P`` call): spawns P processes on a
  free localhost port, runs ``target(*args)`` in each inside a process group, and returns
  the per-rank results.

Inside a worker, :func:`wrap` puts a model into ``DistributedDataParallel`` (a no-op when
no process group is up), and :func:`is_main` says which rank writes files.
"""
from __future__ import annotations

import io
import os
import pickle
import socket
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..fileio import die_with_parent

__all__ = [
    "free_port",
    "default_backend",
    "init_from_env",
    "launch",
    "rank",
    "world_size",
    "is_main",
    "shard",
    "shard_loss",
    "mean_across",
    "wrap",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, else ``"gloo"``."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and without a process group): the process that writes results."""
    return rank() == 0


def init_from_env(backend: Optional[str] = None) -> bool:
    """Join the process group described by torchrun's variables; False when not started by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = backend or default_backend()
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


def shard(items: Sequence, r: Optional[int] = None, world: Optional[int] = None) -> list:
    """This rank's share of ``items``: every ``world``-th item from position ``r`` (balanced to one item)."""
    r = rank() if r is None else r
    world = world_size() if world is None else world
    if not 0 <= r < world:
        raise ValueError(f"rank {r} out of range for world size {world}")
    return list(items[r::world])


def shard_loss(local_sum: Tensor, total: int) -> Tensor:
    """``world / total * local_sum``: after DDP's gradient average, the full-batch mean's gradient."""
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    return local_sum * (world_size() / total)


def mean_across(value: Tensor) -> Tensor:
    """The mean of ``value`` over all processes (``value`` itself without a process group)."""
    if world_size() == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` inside a process group (device ids on CUDA), else ``model`` itself."""
    if world_size() == 1:
        return model
    p = next(model.parameters())
    if p.is_cuda:
        return nn.parallel.DistributedDataParallel(model, device_ids=[p.device.index])
    return nn.parallel.DistributedDataParallel(model)


def _worker(r: int, world: int, port: int, backend: str, target: Callable[..., Any], args: tuple, queue,
            parent: Optional[int] = None) -> None:
    if parent is not None:  # end with the launching process, even if it died while this one started
        die_with_parent(parent)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(r), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(r))
    if backend == "nccl":
        torch.cuda.set_device(r % torch.cuda.device_count())
    dist.init_process_group(backend, rank=r, world_size=world)
    try:
        try:
            out = target(*args)
        except Exception as exc:  # hand the error itself to the parent, then fail so the others are stopped
            try:
                queue.put((r, False, pickle.dumps(exc)))
            except Exception:  # an unpicklable error: the parent reports torch's traceback text instead
                pass
            raise
        buf = io.BytesIO()
        torch.save(out, buf)  # plain bytes: nothing shared with a process that is about to exit
        queue.put((r, True, buf.getvalue()))
    finally:
        dist.destroy_process_group()


def launch(nproc: int, target: Callable[..., Any], *args: Any, backend: Optional[str] = None) -> list:
    """Run ``target(*args)`` in ``nproc`` spawned processes sharing a process group; return results by rank.

    ``target`` must be importable (a module-level function) and its result picklable.
    When a worker raises, the others are stopped and its exception is raised here; when this process
    is interrupted (Ctrl-C, SIGTERM) the workers are stopped before it goes on, and a worker ends when
    this process dies (:func:`ampsim.fileio.die_with_parent`), also while it was still starting.
    ``nproc == 1`` runs it in this process without a process group.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        return [target(*args)]
    backend = backend or default_backend()
    if backend == "nccl" and torch.cuda.device_count() < 1:
        raise ValueError("backend 'nccl' needs CUDA devices; use 'gloo' on CPU")
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    queue = mp.get_context("spawn").SimpleQueue()
    procs = mp.start_processes(_worker, args=(nproc, free_port(), backend, target, args, queue, os.getpid()),
                               nprocs=nproc,
                               join=False, start_method="spawn")
    results: list = [None] * nproc
    errors: list = []

    def drain() -> None:
        while not queue.empty():
            r, ok, data = queue.get()
            if ok:
                results[r] = torch.load(io.BytesIO(data), weights_only=False)
            else:
                errors.append(pickle.loads(data))

    try:
        while not procs.join(timeout=0.05):  # raises if a worker failed (and stops the others)
            drain()
    except ProcessException as failure:
        drain()
        if errors:  # the worker's own exception (a ValueError stays a ValueError)
            raise errors[0] from failure
        raise
    except BaseException:  # Ctrl-C, SIGTERM (SignalExit), an error here: the workers end with this process
        _stop(procs.processes)
        raise
    drain()
    return results


def _stop(processes: Sequence) -> None:
    """Terminate ``processes`` (SIGTERM), then kill those still alive after 5 s; wait for each."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()
