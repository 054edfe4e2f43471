"""Run one ``ampsim`` command line as a user would, bounded: a subprocess in its own session and temporary
folder, with a wall-clock timeout (its whole process group is killed then) and an address-space limit.

:func:`run_bounded` returns an :class:`Outcome`; :meth:`Outcome.kind` sorts it into the classes of
``docs/reliability.md`` (ok, one line, traceback, several lines, hang, left behind).
"""
from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(os.environ.get("AMPSIM_PROBE_ROOT") or Path(__file__).resolve().parents[2])
"""The ampsim checkout the commands run from (``AMPSIM_PROBE_ROOT``: another one, e.g. an older commit)."""
MEMORY_LIMIT = 3 * 1024**3
"""Address space of a probed command (RLIMIT_AS): torch alone maps about 1.5 GB."""


def _limit_memory(limit: int) -> None:
    """In the child: bound its address space, and die with the process that started it (PR_SET_PDEATHSIG)."""
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclasses.dataclass
class Outcome:
    argv: list
    rc: Optional[int]  # None: killed on timeout
    stdout: str
    stderr: str
    seconds: float
    left: list  # files in the temporary folder after a failure that were not there before

    @property
    def lines(self) -> list:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def kind(self) -> str:
        """``ok`` | ``one line`` | ``traceback`` | ``several lines`` | ``hang`` | ``left behind``."""
        if self.rc is None:
            return "hang"
        if "Traceback (most recent call last)" in self.stderr:
            return "traceback"
        if self.rc == 0:
            return "ok"
        if self.left:
            return "left behind"
        if self.rc in (1, 2) and len(self.lines) == 1:
            return "one line"
        return "several lines"


def _snapshot(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_bounded(argv: Sequence[str], cwd: Path, timeout: float = 20.0, memory: int = MEMORY_LIMIT,
                stdin: Optional[str] = None, module: str = "ampsim") -> Outcome:
    """``python -m <module> *argv`` (default ``ampsim``) in ``cwd`` (its own session), killed with its whole group
    after ``timeout``."""
    before = _snapshot(cwd)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=cwd, env=env, text=True,
                            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: _limit_memory(memory))
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        rc: Optional[int] = proc.returncode
    except subprocess.TimeoutExpired:
        rc = None
        out, err = "", ""
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and any worker it started
        except ProcessLookupError:
            pass
        if proc.poll() is None or rc is None:
            try:
                out2, err2 = proc.communicate(timeout=10)
                out, err = out or out2, err or err2
            except subprocess.TimeoutExpired:
                pass
    left = sorted(_snapshot(cwd) - before) if rc not in (0, None) else []
    return Outcome(list(argv), rc, out, err, time.monotonic() - t0, left)


def make_inputs(folder: Path, trace: Path) -> None:
    """The named bad inputs the probe's cases and the property suite's paths refer to, made in ``folder``:
    a folder, a FIFO, an empty file, files of the wrong format, a truncated result, links (to a folder and
    dangling), a valid trace copied from ``trace``, a corrupt star measurement, a run folder of another
    configuration and a corrupt checkpoint."""
    (folder / "dir").mkdir()
    (folder / "dir" / "a.json").write_text("{}")
    os.mkfifo(folder / "fifo")
    (folder / "empty.txt").write_text("")
    (folder / "bad.jsonl").write_text("this is not a trace\n")
    (folder / "json.parquet").write_text('{"not": "parquet"}\n')
    (folder / "result.json").write_text('{"task": "limits1"')
    os.symlink("dir", folder / "link_to_dir")
    os.symlink("nowhere/x", folder / "dangling")
    shutil.copy(trace, folder / "t.jsonl")
    (folder / "badstar").mkdir()
    (folder / "badstar" / "star_k2.json").write_text("{not json")
    (folder / "oldrun").mkdir()
    (folder / "oldrun" / "result.json").write_text('{"config": {"task": "lcc", "epochs": 5}, "epochs_done": 5}\n')
    (folder / "corruptrun").mkdir()
    (folder / "corruptrun" / "checkpoint.pt").write_bytes(b"PK\x03\x04 corrupt")

