"""Sweeps beyond one machine: run a verification sweep on any ``concurrent.futures.Executor``, or Dask.

Rule: a sweep is ``fn`` over a list of independent items (cases, seeds); every
result depends only on its item, so the list of results, in item order, is the
same on one worker, a local process pool or a Dask cluster. :func:`run_map` is
the one place that spreads the items:

* ``executor`` given (any ``concurrent.futures.Executor``: a ``ProcessPoolExecutor``,
  ``dask.distributed.Client.get_executor()``, ...): items go to it in chunks, results
  come back in order;
* else ``workers > 1``: the local process pool of :func:`ampsim.fileio.process_pool`;
* else: a plain loop in this process.

On the command line, ``--dask ADDRESS`` (``ampsim verify synchronizer|ids ...``) runs
the sweep on the Dask scheduler at ``ADDRESS`` (``tcp://host:8786``); ``--dask local``
starts a ``LocalCluster`` on this machine (``--workers`` processes, one thread each;
all cores when ``--workers`` is 1)
for the length of the sweep. Dask (``dask[distributed]``) is the optional extra
``ampsim[dask]``; nothing imports it unless ``--dask`` or :func:`dask_executor` is used.
The functions sent to workers must be importable (module-level), and the workers
must have ampsim installed.
"""
from __future__ import annotations

import argparse
import contextlib
from functools import partial
from typing import Any, Callable, Iterator, Optional, Sequence

__all__ = ["run_map", "starred", "dask_executor", "add_executor_arguments", "executor_from_args"]


MAX_WORKERS = 64
"""At most this many processes per sweep: every process holds an interpreter with torch (~0.3 GB), so a
mistyped ``--workers 100000`` must be refused before anything is forked."""


def _check_workers(workers: int) -> None:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > MAX_WORKERS:
        raise ValueError(f"--workers {workers}: at most {MAX_WORKERS} processes per sweep")


def _apply_chunk(fn: Callable[[Any], Any], chunk: Sequence[Any]) -> list:
    return [fn(item) for item in chunk]


def _apply_star(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    return fn(*args)


def starred(fn: Callable[..., Any]) -> Callable[[Sequence[Any]], Any]:
    """``fn`` taking one tuple of arguments (picklable when ``fn`` is module-level): for :func:`run_map`."""
    return partial(_apply_star, fn)


def run_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int = 1,
    executor: Any = None,
    chunksize: Optional[int] = None,
    pool_options: Optional[dict] = None,
) -> list:
    """``[fn(x) for x in items]``, spread over ``executor`` or ``workers`` processes; always in item order.

    ``chunksize`` (default: about 8 chunks per worker, at most 64 items) groups items per task.
    ``pool_options`` go to :func:`ampsim.fileio.process_pool` (``mp_context``, ``initializer``).
    """
    items = list(items)
    _check_workers(workers)
    if executor is None and (workers == 1 or len(items) <= 1):
        return [fn(x) for x in items]
    slots = workers if executor is None else max(workers, _executor_slots(executor))
    size = chunksize or max(1, min(64, len(items) // (8 * slots) or 1))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    task = partial(_apply_chunk, fn)
    if executor is not None:
        return [r for part in executor.map(task, chunks) for r in part]
    from .fileio import process_pool

    with process_pool(workers, **(pool_options or {})) as pool:
        return [r for part in pool.map(task, chunks) for r in part]


def _executor_slots(executor: Any) -> int:
    """How many tasks ``executor`` runs at once, when it says (process pools, Dask); else 1."""
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            return max(1, sum(client.nthreads().values()))
    return 1


@contextlib.contextmanager
def dask_executor(address: str, workers: int = 2) -> Iterator[Any]:
    """A ``concurrent.futures.Executor`` on Dask: ``"local"`` starts a ``LocalCluster`` of ``workers``
    processes (one thread each, no dashboard) for the block; any other address is a running scheduler.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ModuleNotFoundError:
        raise ModuleNotFoundError("--dask needs Dask: pip install 'ampsim[dask]'") from None
    _check_workers(workers)
    if address == "local":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client.get_executor()
    else:
        with Client(address) as client:
            yield client.get_executor()


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dask ADDRESS`` to a sweep's command line (``--workers`` stays the sweep's own)."""
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="run the sweep on a Dask scheduler (tcp://host:8786), or 'local' for a LocalCluster "
                             "of --workers processes (needs ampsim[dask]); results are identical")


@contextlib.contextmanager
def executor_from_args(args: argparse.Namespace) -> Iterator[Optional[Any]]:
    """The executor ``--dask`` asks for (``None`` without it), open for the block."""
    address = getattr(args, "dask", None)
    if not address:
        yield None
        return
    import os

    workers = getattr(args, "workers", 1) or 1
    with dask_executor(address, workers=workers if workers > 1 else (os.cpu_count() or 2)) as executor:
        yield executor
