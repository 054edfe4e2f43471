"""Generated bad input for every kind of ``ampsim`` subcommand ends in success or one clear line, bounded.

Each example is one command line: a template whose other flags keep the work small (``--max-cases``,
``--epochs 0``, tiny graphs), with one flag's value drawn from numbers (zero, negative, huge), texts
(empty, reversed ranges, NaN, very long) or paths (a folder, a FIFO, ``/dev/null``, a link, a missing
folder, a file of another format). It runs in a subprocess of its own session and temporary folder
(:mod:`runner`: a wall-clock timeout that kills the whole process group, ``RLIMIT_AS`` of 3 GB) and must

* exit 0, or exit 1 / 2 with one line on stderr (a plan line, ``N cases (...)``, may come before it);
* never print a traceback, never run past the timeout without having stated its plan;
* leave no new file in its folder when it fails.

Budget: the ``ci`` profile (default) draws 30 command lines in all; ``HYPOTHESIS_PROFILE=long`` draws 400.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import ROOT, make_inputs, run_bounded  # noqa: E402

settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

PLAN = re.compile(r"^(0|[1-9][\d,]*) (cases|runs) \(")
"""The line :func:`ampsim.sweeps.announce_cases` prints before a sweep's first case."""

# ------------------------------------------------------------------ values
NUMBERS = st.one_of(st.sampled_from(["0", "-1", "1", "2", "99999999999", "1e400", "nan", "inf", "-inf",
                                     "0.5", "", " ", "x", "1_000"]),
                    st.integers(-10, 10**12).map(str))
TEXTS = st.one_of(st.sampled_from(["", ",", "5-2", "0-0", "0,0", "-", "--", "x", "x" * 300, "0-999999999",
                                   "cycle:0", "cycle:4,", "é", "1-", "-1", "3-3,2"]),
                  st.text(alphabet="0123456789-,:x ", max_size=12))
PATHS = st.sampled_from(["dir", "fifo", "/dev/null", "missing/x.jsonl", "empty.txt", "bad.jsonl", "json.parquet",
                         "link_to_dir", "dangling", "x" * 300 + ".jsonl", "t.jsonl", "result.json", "dir/"])
KINDS = {"n": NUMBERS, "t": TEXTS, "p": PATHS}

# (template words, the flag given the drawn value or None for a positional in {}, kind, timeout s)
TEMPLATES = [
    (["run", "--graph", "cycle:5", "--seed", "{}"], "n", 20),
    (["run", "--graph", "cycle:5", "--start", "{}"], "t", 20),
    (["run", "--graph", "cycle:5", "--loss", "{}"], "n", 20),
    (["run", "--graph", "cycle:5", "--until", "{}"], "n", 20),
    (["run", "--graph", "cycle:5", "--max-deliveries", "{}"], "n", 20),
    (["run", "--graph", "cycle:5", "--max-edges", "{}"], "n", 20),
    (["run", "--graph", "cycle:5", "--trace", "{}"], "p", 20),
    (["run", "--graph", "{}"], "p", 20),
    (["run", "--graph", "{}"], "t", 20),
    (["replay", "{}"], "p", 20),
    (["replay", "t.jsonl", "--max-records", "{}"], "n", 20),
    (["plot", "{}"], "p", 30),
    (["plot", "t.jsonl", "-o", "{}"], "p", 30),
    (["plot", "t.jsonl", "--dpi", "{}"], "n", 30),
    (["export", "t.jsonl", "--format", "jsonl", "-o", "{}"], "p", 20),
    (["export", "{}", "--format", "shiviz", "-o", "out.log"], "p", 20),
    (["verify", "synchronizer", "--graph", "cycle:4", "--layers", "1", "--max-cases", "12", "--seeds", "{}"], "n", 60),
    (["verify", "synchronizer", "--graph", "cycle:4", "--seeds", "1", "--max-cases", "12", "--layers", "{}"], "n", 60),
    (["verify", "synchronizer", "--graph", "cycle:4", "--seeds", "1", "--layers", "1", "--dim", "{}"], "n", 60),
    (["verify", "synchronizer", "--graph", "cycle:4", "--seeds", "1", "--layers", "1", "--workers", "{}"], "n", 60),
    (["verify", "synchronizer", "--graph", "{}", "--seeds", "1", "--layers", "1"], "t", 60),
    (["verify", "synchronizer", "--graph", "cycle:4", "--seeds", "1", "--layers", "1", "--out", "{}"], "p", 60),
    (["verify", "ids", "--graph", "star:3", "--max-cases", "20", "--seeds", "{}"], "n", 30),
    (["verify", "ids", "--graph", "star:3", "--seeds", "2", "--budget", "{}"], "n", 30),
    (["verify", "ids", "--graph", "star:3", "--seeds", "2", "--start", "{}"], "t", 30),
    (["verify", "ids", "--graph", "star:3", "--seeds", "2", "--workers", "{}"], "n", 30),
    (["verify", "separation", "--learned", "off", "--pair", "cycle:4,cycle:5", "--max-cases", "60", "--seeds", "{}"],
     "n", 60),
    (["verify", "separation", "--learned", "off", "--seeds", "1", "--relabellings", "1", "--pair", "{}"], "t", 60),
    (["ids", "stars", "--ks", "2", "--max-cases", "10", "--seeds", "{}"], "n", 30),
    (["ids", "stars", "--seeds", "2", "--max-cases", "10", "--ks", "{}"], "t", 30),
    (["ids", "stars", "--ks", "2", "--seeds", "2", "--out", "{}"], "p", 30),
    (["figure4", "--max-cases", "40", "--seeds", "{}"], "n", 60),
    (["train", "--task", "limits1", "--epochs", "0", "--hidden", "{}"], "n", 90),
    (["train", "--task", "limits1", "--epochs", "0", "--seeds", "{}"], "t", 90),
    (["train", "--task", "limits1", "--epochs", "0", "--out", "{}"], "p", 90),
    (["train", "--task", "{}", "--epochs", "0"], "t", 90),
    (["table2", "run", "--tasks", "limits1", "--epochs", "0", "--root", "r", "--seeds", "{}"], "t", 90),
    (["table4", "run", "--datasets", "MUTAG", "--max-graphs", "10", "--epochs", "0", "--points", "h16_m15_skip",
      "--out", "g", "--folds", "{}"], "t", 90),
    (["runs", "pack", "{}", "x.jsonl.gz"], "p", 30),
    (["runs", "unpack", "{}", "o"], "p", 30),
]


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trace")
    out = run_bounded(["run", "--graph", "cycle:5", "--trace", "t.jsonl"], folder, timeout=60)
    assert out.rc == 0, out.stderr
    return folder / "t.jsonl"


def _command(template: list, value: str) -> list:
    return [value if word == "{}" else word for word in template]


@st.composite
def command_lines(draw):
    template, kind, timeout = draw(st.sampled_from(TEMPLATES))
    return _command(template, draw(KINDS[kind])), timeout


@settings(settings.get_profile(PROFILE))
@given(case=command_lines())
def test_bad_input_ends_in_one_line_within_bounds(case, trace):
    argv, timeout = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_inputs(folder, trace)
        out = run_bounded(argv, folder, timeout=timeout)
        lines = [line for line in out.lines if not PLAN.match(line)]
        planned = len(lines) < len(out.lines)
        where = f"ampsim {' '.join(argv)!r}: rc {out.rc}, stderr {out.stderr[-600:]!r}"
        assert "Traceback" not in out.stderr, where
        if out.rc is None:
            assert planned, f"ran past {timeout} s without stating its plan: {where}"
            return
        assert out.rc in (0, 1, 2), where
        if out.rc != 0:
            assert len(lines) == 1, where
            assert not out.left, f"left {out.left}: {where}"


def _sigint_as_at_a_terminal() -> None:
    """In the child: SIGINT handled by default and not blocked, whatever the runner's state (a runner started
    in the background ignores SIGINT, and a mask set by a library in the runner is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _signal_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return " ".join(line.strip() for line in f if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State")))
    except OSError:
        return "?"


def test_ctrl_c_during_a_sweep_is_one_line_130_and_leaves_nothing(tmp_path):
    """SIGINT to the group while ``verify ids`` runs (after its plan line): 130, one line, no file left."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "ampsim", "verify", "ids", "--graph", "star:6", "--seeds",
                             "20000"], cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            # a test runner started in the background (`cmd &`) ignores SIGINT, and so would its
                            # children; Ctrl-C at a terminal reaches a process that does not
                            preexec_fn=_sigint_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and not PLAN.match(line):
            line = proc.stderr.readline()
        assert PLAN.match(line), line
        time.sleep(0.5)
        state = _signal_state(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit 30 s after SIGINT; the child's signal state then: {state}") from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line.strip()] == ["ampsim: interrupted (Ctrl-C); no partial files left"]
    assert list(tmp_path.iterdir()) == []
