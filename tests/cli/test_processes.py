"""Every multi-process command ends with its parent: no process of its group survives, however it ends.

Each command is started in its own session (its process group id is its pid), left to start
its workers, then ended: SIGTERM to the parent alone (``kill PID``: the parent must stop its
workers), SIGINT to the whole group (Ctrl-C at a terminal) or SIGKILL to the parent alone
(no chance to clean up: the workers must notice that their parent died). Then the group must
become empty, and the parent's stderr is one line (SIGTERM, SIGINT).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAN = re.compile(r"^[\d,]+ (cases|runs) \(")
"""The line ampsim.sweeps.announce_cases prints before a sweep's first case."""


def _group(pgid: int) -> list[int]:
    """The live processes whose process group is ``pgid`` (Linux /proc; zombies excluded)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def _wait_empty(pgid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = _group(pgid)
        if not left:
            return []
        time.sleep(0.2)
    return _group(pgid)


COMMANDS = {
    "train --nproc": ["train", "--task", "lcc", "--nproc", "2", "--epochs", "100000", "--out", "{tmp}/t",
                      "--quiet"],
    "table2 run --workers": ["table2", "run", "--tasks", "limits1,lcc", "--seeds", "0-1", "--epochs", "100000",
                             "--root", "{tmp}/r", "--workers", "2", "--quiet", "--no-stack"],
    "table4 run --workers": ["table4", "run", "--datasets", "MUTAG", "--folds", "0", "--points", "h16_m15_skip",
                             "h16_m15_noskip", "--epochs", "100000", "--max-graphs", "30", "--out", "{tmp}/g",
                             "--workers", "2"],
    "table4 run --nproc": ["table4", "run", "--datasets", "MUTAG", "--folds", "0", "--points", "h16_m15_skip",
                           "--epochs", "100000", "--max-graphs", "30", "--out", "{tmp}/g", "--nproc", "2"],
    "verify ids --workers": ["verify", "ids", "--graph", "star:8", "--seeds", "1000000", "--max-cases", "0", "--workers", "2"],
    "verify ids --dask local": ["verify", "ids", "--graph", "star:8", "--seeds", "1000000", "--max-cases", "0", "--workers", "2",
                                "--dask", "local"],
}

CASES = [
    ("train --nproc", signal.SIGTERM), ("table2 run --workers", signal.SIGTERM), ("table2 run --workers", signal.SIGINT),
    ("table2 run --workers", signal.SIGKILL), ("table4 run --workers", signal.SIGTERM),
    ("table4 run --nproc", signal.SIGTERM), ("table4 run --nproc", signal.SIGKILL),
    ("verify ids --workers", signal.SIGKILL), ("verify ids --dask local", signal.SIGTERM),
]


def _sigint_as_at_a_terminal() -> None:
    """In the child: SIGINT handled by default and not blocked (a runner started in the background ignores it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.parametrize("name, signum", CASES, ids=[f"{n}-{signal.Signals(s).name}" for n, s in CASES])
def test_no_process_outlives_the_command(name, signum, tmp_path):
    if "--dask" in name:
        pytest.importorskip("dask.distributed")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in COMMANDS[name]]
    proc = subprocess.Popen([sys.executable, "-m", "ampsim", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"},
                            preexec_fn=_sigint_as_at_a_terminal)
    pgid = proc.pid
    try:
        # the workers are up: at least two more processes in the group, for a few seconds
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(_group(pgid)) < 3:
            time.sleep(0.2)
        time.sleep(3.0)
        assert proc.poll() is None and len(_group(pgid)) >= 3, proc.communicate(timeout=5)
        if signum == signal.SIGINT:
            os.killpg(pgid, signum)
        else:
            os.kill(proc.pid, signum)
        # a Dask LocalCluster stops its scheduler and workers before the command exits: slower on a loaded machine
        out, err = proc.communicate(timeout=180 if "--dask" in name else 60)
        left = _wait_empty(pgid, 30)
    finally:
        if _group(pgid):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()  # closed on every path: a pipe left open is a ResourceWarning in a later test
        proc.stderr.close()
    assert left == [], f"{name}: processes {left} outlived the command (ended by {signal.Signals(signum).name})"
    assert proc.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)
    if signum != signal.SIGKILL:
        lines = [line for line in err.splitlines() if not PLAN.match(line)]  # the plan line, stated before work
        assert len(lines) == 1 and lines[0].startswith("ampsim: ") and "Traceback" not in err, err
