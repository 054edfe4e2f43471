"""One way to write files: a file appears under its name complete, or not at all.

Rule: every file ampsim writes (traces, result JSON, checkpoints, tables, pictures)
is written to a temporary sibling ``.<name>.partial-<pid>-<n>`` and renamed over
its name with :func:`os.replace` (atomic on POSIX) only once it is complete. On
every other path -- an exception, ``KeyboardInterrupt``, SIGTERM (see
:func:`ampsim.fileio.on_signal_exit`), or the garbage collection of a stream that
was never committed -- the temporary file is removed. Nothing half-written is left
under the final name, and no ``*.partial-*`` file survives the process.

* :func:`atomic_write` -- a context manager for whole files (JSON, Markdown, ...).
* :func:`write_json`, :func:`write_text`, :func:`save_torch` -- the common cases.
* :class:`AtomicFile` -- a stream kept open across calls (a trace being written):
  ``write`` ... then ``commit()`` or ``abort()``; never committed means aborted.
* :func:`save_figure` -- a matplotlib figure to exactly ``path`` (format from its suffix).
* reading checkpoints back is :func:`ampsim.checkpoint.load_checkpoint` (one reader).
* :func:`on_signal_exit` -- the one way to end on a signal: inside it SIGTERM (and
  SIGHUP) raise :class:`SignalExit` (a ``SystemExit`` with code 128 + signal number),
  so every ``with`` and ``finally`` unwinds and every temporary file is removed.
* :func:`process_pool` -- a ``ProcessPoolExecutor`` whose workers leave Ctrl-C and
  SIGTERM to the parent (no traceback per worker) and are stopped when the block fails.
"""
from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import signal
import threading
import weakref
from typing import IO, Any, Iterator, Optional

__all__ = ["AtomicFile", "FinishOnExit", "atomic_write", "write_json", "write_text", "save_torch", "save_figure",
           "cleanup_partials",
           "SignalExit", "on_signal_exit", "process_pool"]

_counter = itertools.count()
_lock = threading.Lock()
_live: "set[str]" = set()  # temporary paths of this process not yet committed or aborted


def _temp_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.partial-{os.getpid()}-{next(_counter)}")


def _discard(tmp: str) -> None:
    with _lock:
        _live.discard(tmp)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def cleanup_partials() -> None:
    """Remove every temporary file this process still holds (called at exit and on signals)."""
    with _lock:
        pending = list(_live)
    for tmp in pending:
        _discard(tmp)


atexit.register(cleanup_partials)


class FinishOnExit:
    """``with writer: ...`` finishes it (``close()``) when the block completes and discards it
    (``abort()``) when it raises: the context-manager half of every atomic writer (traces)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AtomicFile:
    """A file written in pieces that appears under ``path`` only on :meth:`commit`.

    ``AtomicFile(path, mode="w")`` opens the temporary sibling; ``write`` appends;
    ``commit()`` flushes, fsyncs and renames it over ``path``; ``abort()`` removes it.
    A stream that is garbage-collected, or left open at interpreter exit, is aborted.
    Usable as a context manager: a clean exit commits, an exception aborts.
    """

    def __init__(self, path: "str | os.PathLike[str]", mode: str = "w", encoding: Optional[str] = "utf-8") -> None:
        if mode not in ("w", "wb"):
            raise ValueError(f"AtomicFile mode must be 'w' or 'wb', not {mode!r}")
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not self.path:
            raise FileNotFoundError("an empty file name; give a file name")
        if os.path.isdir(self.path) or self.path.endswith(os.sep):
            raise IsADirectoryError(f"{self.path}: is a folder; give a file name")
        if not os.path.isdir(folder):
            shown = os.path.dirname(self.path) or folder
            if os.path.exists(folder):
                raise NotADirectoryError(f"{self.path}: {shown} is a file, not a folder")
            raise FileNotFoundError(f"{self.path}: folder {shown} not found")
        self._tmp = _temp_path(self.path)
        self._f: Optional[IO[Any]] = open(self._tmp, mode, encoding=None if "b" in mode else encoding)
        with _lock:
            _live.add(self._tmp)
        # abort on garbage collection: the finalizer holds the file object and temp path, not self
        self._finalizer = weakref.finalize(self, AtomicFile._finalize, self._f, self._tmp)

    @staticmethod
    def _finalize(f: IO[Any], tmp: str) -> None:
        with contextlib.suppress(Exception):
            f.close()
        _discard(tmp)

    @property
    def closed(self) -> bool:
        return self._f is None

    @property
    def stream(self) -> IO[Any]:
        """The open temporary file itself (for writers that want a real file object, e.g. matplotlib)."""
        if self._f is None:
            raise ValueError(f"{self.path}: the file was already committed or aborted")
        return self._f

    def write(self, data: Any) -> int:
        if self._f is None:
            raise ValueError(f"{self.path}: write after commit or abort")
        return self._f.write(data)

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def commit(self) -> None:
        """Flush, fsync and rename the temporary file over ``path`` (idempotent)."""
        if self._f is None:
            return
        f, self._f = self._f, None
        try:
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            with contextlib.suppress(Exception):
                f.close()
            _discard(self._tmp)
            self._finalizer.detach()
            raise
        with _lock:
            _live.discard(self._tmp)
        self._finalizer.detach()

    def abort(self) -> None:
        """Remove the temporary file; ``path`` is left as it was (idempotent)."""
        if self._f is None:
            return
        f, self._f = self._f, None
        with contextlib.suppress(Exception):
            f.close()
        _discard(self._tmp)
        self._finalizer.detach()

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


@contextlib.contextmanager
def atomic_write(path: "str | os.PathLike[str]", mode: str = "w", encoding: Optional[str] = "utf-8") -> Iterator[AtomicFile]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` is replaced only if the block completes."""
    f = AtomicFile(path, mode, encoding)
    try:
        yield f
    except BaseException:
        f.abort()
        raise
    f.commit()


def write_text(path: "str | os.PathLike[str]", text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_write(path) as f:
        f.write(text)


def write_json(path: "str | os.PathLike[str]", obj: Any, indent: Optional[int] = 1, sort_keys: bool = True) -> None:
    """Write ``obj`` as strict JSON (no NaN/Infinity; sorted keys unless ``sort_keys=False``, which keeps
    the insertion order a table's readers rely on; trailing newline) to ``path`` atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False)
    write_text(path, text + "\n")


def save_torch(obj: Any, path: "str | os.PathLike[str]") -> None:
    """``torch.save(obj, path)`` atomically (torch is imported here, not at module import)."""
    import torch

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def save_figure(fig: Any, path: "str | os.PathLike[str]", **kwargs: Any) -> str:
    """``fig.savefig`` to exactly ``path``, atomically; the format is the suffix's (``.png``, ``.pdf``, ``.svg``, ...).

    A path without a suffix, or with one matplotlib cannot write, raises ``ValueError``
    naming the path and the formats it can write; the path written is returned.
    """
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(os.sep):
        raise IsADirectoryError(f"{path}: is a folder; give a picture file name (e.g. timeline.png)")
    fmt = os.path.splitext(path)[1][1:].lower()
    formats = fig.canvas.get_supported_filetypes()
    if fmt not in formats:
        what = f"suffix .{fmt}" if fmt else "no suffix"
        raise ValueError(f"{path}: cannot draw a picture with {what}; end the file name with one of "
                         + ", ".join(f".{k}" for k in sorted(formats)))
    with atomic_write(path, "wb") as f:
        fig.savefig(f.stream, format=fmt, **kwargs)
    return path


def _raise_signal_exit(signum: int, frame: Any) -> None:
    raise SignalExit(signum)


class SignalExit(SystemExit):
    """Raised by :func:`on_signal_exit`'s handler: ``code`` is 128 + the signal number (SIGTERM: 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextlib.contextmanager
def on_signal_exit(signals: tuple = ("SIGTERM", "SIGHUP")) -> Iterator[None]:
    """Within the block, the named signals raise :class:`SignalExit`; the old handlers come back after.

    Outside the main thread (where Python cannot install handlers) this does nothing.
    On the way out every temporary file still open in this process is removed.
    """
    installed: dict = {}
    if threading.current_thread() is threading.main_thread():
        for name in signals:
            signum = getattr(signal, name, None)
            if signum is not None:
                installed[signum] = signal.signal(signum, _raise_signal_exit)
    try:
        yield
    finally:
        for signum, old in installed.items():
            signal.signal(signum, old)
        cleanup_partials()


def _worker_init(initializer: Any, initargs: tuple) -> None:
    """Worker start: Ctrl-C (sent to the whole process group) and SIGHUP are the parent's to handle;
    SIGTERM ends a worker at once (a forked worker would otherwise inherit the parent's handler)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def process_pool(workers: int, mp_context: Any = None, initializer: Any = None, initargs: tuple = ()) -> Iterator[Any]:
    """``with process_pool(n) as pool: pool.map(...)``: a ``ProcessPoolExecutor`` that ends cleanly.

    Workers ignore SIGINT (the parent gets ``KeyboardInterrupt`` and ends the pool), so a
    Ctrl-C prints one line, not one traceback per worker. When the block raises (Ctrl-C,
    SIGTERM via :func:`on_signal_exit`, an error) pending work is cancelled and the
    workers are terminated at once instead of finishing the sweep.
    """
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp_context, initializer=_worker_init,
                               initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.terminate()
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.join(timeout=5)
        raise
    pool.shutdown(wait=True)
