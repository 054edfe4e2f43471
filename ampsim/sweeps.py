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

On the command line, ``--dask ADDRESS`` (``ampsim verify synchronizer|ids|separation``) runs
the sweep on the Dask scheduler at ``ADDRESS`` (``tcp://host:8786``); ``--dask local``
starts a ``LocalCluster`` on this machine (``--workers`` processes where the command has
that flag and it is above 1, else one per core, at most :data:`MAX_WORKERS`; one thread each)
for the length of the sweep. The command prints the scheduler's address and how many
workers (and threads) it has when the sweep starts -- for an external scheduler, the
workers it has then, not ``--workers``.

A local cluster opens no dashboard unless asked: its scheduler and workers listen on
127.0.0.1 only, and the HTTP listener every Dask scheduler starts gets a free loopback
port and no routes (nothing is served). ``--dask-dashboard ADDRESS`` (``127.0.0.1:8787``)
serves the dashboard there (it needs ``bokeh``) and prints its link; an external scheduler's
dashboard is that scheduler's own, so the flag is refused with one.

Every sweep command states its plan before its first case (:func:`announce_cases`: the number of
cases and a time estimate), or refuses one of more than ``--max-cases`` (default :data:`MAX_CASES`)
with that estimate and the flag; its output folder is checked first (:func:`check_folder`).

Dask (``dask[distributed]``) is the optional extra ``ampsim[dask]``; nothing imports it
unless ``--dask`` or :func:`dask_executor` is used. The functions sent to workers must be
importable (module-level), and the workers must have ampsim installed.
"""
from __future__ import annotations

import argparse
import contextlib
from functools import partial
from typing import Any, Callable, Iterator, Optional, Sequence

from . import validate as V

__all__ = ["run_map", "starred", "dask_executor", "dask_workers", "describe_executor", "add_executor_arguments",
           "executor_from_args", "MAX_CASES", "announce_cases", "add_max_cases", "case_limit", "check_folder"]


MAX_WORKERS = 64
"""At most this many processes per sweep: every process holds an interpreter with torch (~0.3 GB), so a
mistyped ``--workers 100000`` must be refused before anything is forked."""


MAX_CASES = 100_000
"""The most cases a verification sweep takes without ``--max-cases``: eight times the largest published sweep
(12,000 cases). Its cost is time more than memory (a case is ~200 bytes, its result a few KB; one case runs for
milliseconds to seconds of one core), so a mistyped ``--seeds 100000000`` is refused before any case is built."""


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h" if seconds < 360_000 else f"{seconds / 3600:,.0f} h"


def announce_cases(count: int, what: str, workers: int, seconds_per_case: tuple[float, float],
                   limit: Optional[int] = MAX_CASES, log: Any = None, unit: str = "cases") -> None:
    """Say what a sweep will do before it starts -- ``count`` cases (``what``: how they are made), over
    ``workers`` processes, taking about ``seconds_per_case`` (low, high) of one core each -- or refuse a
    sweep of more than ``limit`` cases (None: no limit) with that estimate and the flag that lifts it
    (:class:`~ampsim.engine.errors.SizeLimitError`). A count of 0 is said as zero work. Every sweep command
    calls it once its inputs are checked and before its first case, so the one line it prints is the plan
    and an error is never preceded by it."""
    import sys

    from .engine.errors import SizeLimitError

    _check_workers(workers)
    busy = max(1, min(workers, count))  # a worker runs whole cases: more workers than cases do not help
    lo, hi = (count * t / busy for t in seconds_per_case)
    estimate = f"about {_duration(lo)} to {_duration(hi)} over {workers} worker{'s' if workers != 1 else ''}"
    if limit is not None and count > limit:
        raise SizeLimitError(f"{what} makes {count:,} {unit} ({estimate}); the limit is {limit:,} {unit}: lift it "
                             f"with --max-cases {count} (0: no limit)")
    if count == 0:
        print(f"0 {unit} ({what}): nothing to do", file=log or sys.stderr, flush=True)
        return
    print(f"{count:,} {unit} ({what}), {estimate}", file=log or sys.stderr, flush=True)


def check_folder(path: str) -> None:
    """Refuse an output folder that names something else (``FileExistsError`` / ``NotADirectoryError``, naming
    it), without creating anything: sweeps check ``--out`` before :func:`announce_cases` and make it after."""
    import errno
    import os

    if not path:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)


_count = V.whole_flag(0, parse_what="a whole number >= 0 (0: no limit)", range_what="a whole number >= 0 (0: no limit)")
"""``--max-cases``: a whole number >= 0 (argparse's one-line usage error otherwise)."""


def add_max_cases(parser: argparse.ArgumentParser, what: str = "cases") -> None:
    """Add ``--max-cases N`` (default :data:`MAX_CASES`; 0: no limit), the one flag that lifts the limit of
    :func:`announce_cases`, to a sweep's command line; ``what`` names a case in the help (``runs``)."""
    parser.add_argument("--max-cases", type=_count, default=MAX_CASES,
                        help=f"refuse, before starting, a sweep of more {what} than this; it states the number and "
                             f"a time estimate first (default {MAX_CASES:,}; 0: no limit)")


def case_limit(args: argparse.Namespace) -> Optional[int]:
    """The ``--max-cases`` of ``args`` as :func:`announce_cases` takes it (None: no limit)."""
    limit = getattr(args, "max_cases", MAX_CASES)
    return limit or None


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
def dask_executor(address: str, workers: int = 2, dashboard: Optional[str] = None) -> Iterator[Any]:
    """A ``concurrent.futures.Executor`` on Dask: ``"local"`` starts a ``LocalCluster`` of ``workers``
    processes (one thread each) for the block; any other address is a running scheduler.

    A local cluster listens on 127.0.0.1 only and serves no dashboard unless ``dashboard``
    (an address, ``127.0.0.1:8787``) is given: Dask's scheduler always opens an HTTP listener,
    which then gets a free loopback port and no routes. ``dashboard`` with an external
    scheduler raises ``ValueError`` (its dashboard is its own).
    """
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ModuleNotFoundError:
        raise ModuleNotFoundError("--dask needs Dask: pip install 'ampsim[dask]'") from None
    _check_workers(workers)
    if address != "local":
        if dashboard:
            raise ValueError(f"--dask-dashboard: only with --dask local; the scheduler at {address} serves its own "
                             "dashboard (if it was started with one)")
        with Client(address) as client:
            yield client.get_executor()
        return
    if dashboard:
        try:
            import bokeh  # noqa: F401
        except ModuleNotFoundError:
            raise ModuleNotFoundError("--dask-dashboard needs bokeh: pip install bokeh") from None
    routes = {} if dashboard else {"distributed.scheduler.http.routes": []}
    with dask.config.set(routes), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=dashboard or "127.0.0.1:0",
                         scheduler_kwargs=dict(dashboard=bool(dashboard))) as cluster, \
            Client(cluster) as client:
        executor = client.get_executor()
        if dashboard:
            executor.dashboard_link = cluster.dashboard_link
        yield executor


def dask_workers(executor: Any) -> Optional[tuple[int, int]]:
    """``(workers, threads)`` the Dask scheduler behind ``executor`` has now; None when it is not Dask."""
    client = getattr(executor, "_client", None)
    if client is None:
        return None
    nthreads = client.nthreads()
    return len(nthreads), sum(nthreads.values())


def describe_executor(executor: Any, workers: int = 1) -> str:
    """``"2 workers"`` for a local sweep; for Dask its address and the workers and threads it has now."""
    found = dask_workers(executor) if executor is not None else None
    if found is None:
        n = getattr(executor, "_max_workers", None) if executor is not None else workers
        n = n if isinstance(n, int) and n > 0 else workers
        return f"{n} worker{'s' if n != 1 else ''}"
    n, threads = found
    client = executor._client
    text = (f"Dask scheduler {client.scheduler.address}: {n} worker{'s' if n != 1 else ''}, "
            f"{threads} thread{'s' if threads != 1 else ''}")
    link = getattr(executor, "dashboard_link", None)  # set by dask_executor when a dashboard was asked for
    if link:
        text += f"; dashboard {link}"
    return text


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dask ADDRESS`` and ``--dask-dashboard ADDRESS`` to a sweep's command line.

    Call it after the command's own ``--workers`` (if it has one): the help names
    ``--workers`` only where the command has it.
    """
    has_workers = "--workers" in parser._option_string_actions
    local = ("a LocalCluster of --workers processes (one per core when --workers is 1)" if has_workers
             else f"a LocalCluster of one process per core (at most {MAX_WORKERS})")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help=f"run the sweep on a Dask scheduler (tcp://host:8786), or 'local' for {local} "
                             "(needs ampsim[dask]); prints the scheduler's workers; results are identical")
    parser.add_argument("--dask-dashboard", default=None, metavar="ADDRESS",
                        help="with --dask local: serve Dask's dashboard at ADDRESS (127.0.0.1:8787; needs bokeh); "
                             "without it no dashboard is served")


@contextlib.contextmanager
def executor_from_args(args: argparse.Namespace) -> Iterator[Optional[Any]]:
    """The executor ``--dask`` asks for (``None`` without it), open for the block; prints what it has."""
    address = getattr(args, "dask", None)
    dashboard = getattr(args, "dask_dashboard", None)
    if not address:
        if dashboard:
            raise ValueError("--dask-dashboard: only with --dask local")
        yield None
        return
    import os

    workers = getattr(args, "workers", 1) or 1
    with dask_executor(address, workers=workers if workers > 1 else min(MAX_WORKERS, os.cpu_count() or 2),
                       dashboard=dashboard) as executor:
        print(describe_executor(executor), flush=True)
        yield executor
