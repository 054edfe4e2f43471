"""One way to write files: a file appears under its name complete, or not at all.

Rule: every file ampsim writes (traces, result JSON, checkpoints, tables, pictures)
is written to a temporary sibling ``.<name>.partial-<pid>-<n>`` and renamed over
its name with :func:`os.replace` (atomic on POSIX) only once it is complete. On
every other path -- an exception, ``KeyboardInterrupt``, SIGTERM (see
:func:`ampsim.fileio.on_signal_exit`), or the garbage collection of a stream that
was never committed -- the temporary file is removed. Nothing half-written is left
under the final name, and no ``*.partial-*`` file survives the process.

What the path already names is respected (:func:`target_path`, checked before anything is written):

* a symbolic link is written *through*: the file it points to is replaced (the temporary
  file sits next to that file, so the rename stays atomic) and the link stays a link;
  a link loop is refused;
* a path that names something other than a regular file -- a folder, a FIFO, a device,
  a socket -- is refused (:class:`~ampsim.engine.errors.OutputPathError`), never replaced
  by a regular file; so is a missing or read-only folder, or a read-only file;
* an existing file keeps its permission bits;
* the temporary name is always legal where the final name is: when ``.<name>.partial-<pid>-<n>``
  would exceed the folder's name limit (255 bytes on most file systems), ``<name>`` is shortened
  (same folder, same suffix pattern), so a final name of 255 bytes still works.

* :func:`atomic_write` -- a context manager for whole files (JSON, Markdown, ...).
* :func:`write_json`, :func:`write_text`, :func:`save_torch` -- the common cases.
* :class:`AtomicFile` -- a stream kept open across calls (a trace being written):
  ``write`` ... then ``commit()`` or ``abort()``; never committed means aborted.
* :func:`save_figure` -- a matplotlib figure to exactly ``path`` (format from its suffix).
* :func:`output_stem` -- a command's ``--out STEM`` (files ``STEM.md``, ``STEM.json``), checked before any work.
* reading checkpoints back is :func:`ampsim.checkpoint.load_checkpoint` (one reader).
* :func:`on_signal_exit` -- the one way to end on a signal: inside it SIGTERM (and
  SIGHUP) raise :class:`SignalExit` (a ``SystemExit`` with code 128 + signal number),
  so every ``with`` and ``finally`` unwinds and every temporary file is removed.
* :func:`process_pool` -- a ``ProcessPoolExecutor`` whose workers leave Ctrl-C and
  SIGTERM to the parent (no traceback per worker), are stopped when the block fails, and end
  when the parent dies (:func:`die_with_parent`).
"""
from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import signal
import stat
import threading
import weakref
from typing import IO, Any, Iterator, Optional

from .engine.errors import OutputPathError

__all__ = ["AtomicFile", "FinishOnExit", "atomic_write", "write_json", "write_text", "save_torch", "save_figure",
           "cleanup_partials", "target_path", "output_stem", "OutputPathError",
           "SignalExit", "on_signal_exit", "process_pool", "die_with_parent"]

_counter = itertools.count()
_lock = threading.Lock()
_live: "set[str]" = set()  # temporary paths of this process not yet committed or aborted

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _temp_path(path: str) -> str:
    """``.<name>.partial-<pid>-<n>`` next to ``path``; ``<name>`` shortened (whole UTF-8 characters) to fit
    the folder's name limit."""
    folder, name = os.path.split(os.path.abspath(path))
    suffix = f".partial-{os.getpid()}-{next(_counter)}"
    room = _name_max(folder) - 1 - len(suffix.encode())
    raw = os.fsencode(name)
    if len(raw) > room:
        name = raw[:room].decode("utf-8", "ignore")  # whole characters only
    return os.path.join(folder, f".{name}{suffix}")


def target_path(path: "str | os.PathLike[str]") -> str:
    """The regular file that writing ``path`` replaces (a link followed), checked; :class:`OutputPathError` if none.

    Refused: an empty name, a name ending in a separator, a link loop, a path naming a folder,
    FIFO, device or socket, a missing folder, a folder that is a file, and (for a user other
    than root) a read-only file or folder.
    """
    path = os.fspath(path)
    if not path:
        raise OutputPathError("an empty file name; give a file name")
    if "\0" in path:
        raise OutputPathError(f"{path!r}: a file name cannot hold a NUL byte")
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise OutputPathError(f"{path}: is a folder name; give a file name")
    target = path
    if os.path.islink(path):
        target = os.path.realpath(path)
        if os.path.islink(target):
            raise OutputPathError(f"{path}: is a symbolic link that never reaches a file (a loop); give a file name")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a file where a folder should be: said below
    except OSError as exc:  # ELOOP, EACCES, ENAMETOOLONG ...
        raise OutputPathError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = next((text for test, text in _KINDS if test(st.st_mode)), "not a regular file")
        shown = f"{path} (a link to {target})" if target != path else path
        if stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{shown}: is a folder; give a file name")
        raise OutputPathError(f"{shown}: is {what}, not a regular file; ampsim writes whole files (a temporary "
                              "file renamed into place) and never replaces one: give a file name")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        shown = os.path.dirname(target) or folder
        if os.path.exists(folder):
            raise OutputPathError(f"{path}: {shown} is a file, not a folder")
        raise OutputPathError(f"{path}: folder {shown} not found")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: the folder {folder} is not writable")
    if st is not None and not os.access(target, os.W_OK):
        raise OutputPathError(f"{path}: the file is read-only; it is not replaced")
    return target


def output_stem(stem: str, suffixes: "tuple[str, ...]", flag: str = "--out") -> str:
    """The stem of a command's files ``stem + suffix`` (one per suffix: ``results/figure4`` -> ``results/figure4.md``),
    checked before any work; returned without a suffix of ``suffixes`` it was given with (``results/figure4.md``
    names the same file, never ``results/figure4.md.md``). :class:`OutputPathError` naming ``flag`` when the stem
    names a folder, a FIFO, a device or a socket (``--out /dev/null`` would write ``/dev/null.md`` beside it), is
    empty or ends in a separator, or when :func:`target_path` refuses one of the files. A missing folder is not
    refused here when one can be made in its place (the caller makes it, after its plan line)."""
    path = os.fspath(stem)
    for suffix in suffixes:
        if suffix.startswith(".") and path.endswith(suffix) and len(path) > len(suffix):
            path = path[: -len(suffix)]
            break
    shape = " and ".join("STEM" + s for s in suffixes)
    if not path or path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise OutputPathError(f"{flag} {stem!r}: not a file stem; {flag} STEM writes {shape}, e.g. {flag} "
                              f"{os.path.join(path, 'name') if path else 'results/name'}")
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = next((text for test, text in _KINDS if test(st.st_mode)), "not a regular file")
        files = " and ".join(path + s for s in suffixes)
        example = os.path.join(path, "name") if stat.S_ISDIR(st.st_mode) else "results/name"
        raise OutputPathError(f"{flag} {stem}: is {what}; {flag} STEM writes {shape} ({files}), not into it: "
                              f"give a file stem, e.g. {flag} {example}")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder):
        for suffix in suffixes:
            target_path(path + suffix)
    else:
        parent = folder
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise OutputPathError(f"{flag} {stem}: {parent} is not a folder")
    return path


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
    ``commit()`` flushes, fsyncs and renames it over ``path`` (over the file a link at ``path`` points to:
    see :func:`target_path`, which checks the path first); ``abort()`` removes it.
    A stream that is garbage-collected, or left open at interpreter exit, is aborted.
    Usable as a context manager: a clean exit commits, an exception aborts.
    """

    def __init__(self, path: "str | os.PathLike[str]", mode: str = "w", encoding: Optional[str] = "utf-8") -> None:
        if mode not in ("w", "wb"):
            raise ValueError(f"AtomicFile mode must be 'w' or 'wb', not {mode!r}")
        self.path = os.fspath(path)
        self.target = target_path(self.path)  # what os.replace replaces: the link's file, checked
        self._tmp = _temp_path(self.target)
        try:
            self._f: Optional[IO[Any]] = open(self._tmp, "x" + mode[1:], encoding=None if "b" in mode else encoding)
        except OSError as exc:
            raise OutputPathError(f"{self.path}: cannot write there ({exc.strerror or exc})") from None
        with contextlib.suppress(OSError):  # an existing file keeps its permission bits
            os.chmod(self._tmp, stat.S_IMODE(os.stat(self.target).st_mode))
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
            os.replace(self._tmp, self.target)
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
    target_path(path)  # a folder, FIFO, missing folder ...: refused before the suffix is looked at
    fmt = os.path.splitext(path)[1][1:].lower()
    formats = fig.canvas.get_supported_filetypes()
    if fmt not in formats:
        what = f"suffix .{fmt}" if fmt else "no suffix"
        raise ValueError(f"{path}: cannot draw a picture with {what}; end the file name with one of "
                         + ", ".join(f".{k}" for k in sorted(formats)))
    with atomic_write(path, "wb") as f:
        fig.savefig(f.stream, format=fmt, **kwargs)
    return path


def _in_gc_callback(frame: Any) -> bool:
    """Whether ``frame`` (where a signal handler runs) is inside a garbage collector's callback (``gc.callbacks``,
    e.g. Dask's GC diagnosis): an exception raised there is printed as "Exception ignored" and lost."""
    import gc

    codes = {getattr(getattr(cb, "__func__", cb), "__code__", None) for cb in list(gc.callbacks)} - {None}
    while codes and frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _raise_signal_exit(signum: int, frame: Any) -> None:
    """The handler of :func:`on_signal_exit`: raise :class:`SignalExit` where the program was interrupted; inside a
    garbage collector's callback, where it would be lost, send the signal again a moment later instead."""
    if _in_gc_callback(frame):
        again = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
        return
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


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> None:
    """In a worker process: receive ``signum`` when the parent ``parent`` dies (Linux ``PR_SET_PDEATHSIG``),
    so that no worker outlives a command that was killed (SIGKILL leaves the parent no time to stop it).
    A worker whose parent is already gone exits at once. Elsewhere (no ``prctl``) this does nothing."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(128 + int(signum))


def _worker_init(initializer: Any, initargs: tuple, parent: Optional[int] = None) -> None:
    """Worker start: Ctrl-C (sent to the whole process group) and SIGHUP are the parent's to handle;
    SIGTERM ends a worker at once (a forked worker would otherwise inherit the parent's handler), and
    so does the death of the parent (:func:`die_with_parent`)."""
    if parent is not None:
        die_with_parent(parent)
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
                               initargs=(initializer, initargs, os.getpid()))
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
