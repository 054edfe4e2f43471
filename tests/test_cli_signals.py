"""Files and signals: nothing half-written on any path; Ctrl-C and SIGTERM end with one line.

Paths covered for the JSONL trace (an :class:`~ampsim.fileio.AtomicFile`): a clean close,
an exception inside ``with``, ``KeyboardInterrupt`` inside the run, SIGINT / SIGTERM /
SIGHUP to a running ``ampsim run --trace`` (a subprocess), garbage collection of a tracer
never closed, a trace over ``--max-trace-mb``, and ``--trace`` naming a folder.
"""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ampsim import Simulation, get_rule, parse_graph_spec
from ampsim.cli import main
from ampsim.fileio import AtomicFile, SignalExit, on_signal_exit, write_json
from ampsim.trace.tracers import JSONLTracer, TraceLimitError

ROOT = Path(__file__).resolve().parents[1]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_tracer_close_writes_the_file_only_then(tmp_path):
    path = tmp_path / "t.jsonl"
    tracer = JSONLTracer(path)
    Simulation(parse_graph_spec("cycle:4"), get_rule("flooding"), tracer=tracer).run()
    assert not path.exists() and len(_names(tmp_path)) == 1 and _names(tmp_path)[0].startswith(".t.jsonl.partial-")
    tracer.close()
    assert _names(tmp_path) == ["t.jsonl"]
    tracer.close()  # idempotent
    tracer.abort()  # after close: leaves the file
    assert _names(tmp_path) == ["t.jsonl"]


def test_exception_inside_with_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with JSONLTracer(tmp_path / "t.jsonl") as tracer:
            Simulation(parse_graph_spec("cycle:4"), get_rule("flooding"), tracer=tracer).run()
            raise RuntimeError("boom")
    assert _names(tmp_path) == []


def test_exception_keeps_an_older_file_untouched(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with JSONLTracer(path) as tracer:
            tracer.run_start({"x": 1})
            raise KeyboardInterrupt
    assert path.read_text() == "old\n" and _names(tmp_path) == ["t.jsonl"]


def test_garbage_collected_tracer_leaves_nothing(tmp_path):
    tracer = JSONLTracer(tmp_path / "t.jsonl")
    Simulation(parse_graph_spec("cycle:4"), get_rule("flooding"), tracer=tracer).run()
    assert len(_names(tmp_path)) == 1
    del tracer
    gc.collect()
    assert _names(tmp_path) == []


def test_unclosed_tracer_at_interpreter_exit_leaves_nothing(tmp_path):
    code = ("from ampsim import JSONLTracer, Simulation, parse_graph_spec, get_rule\n"
            f"t = JSONLTracer({str(tmp_path / 't.jsonl')!r})\n"
            "Simulation(parse_graph_spec('cycle:4'), get_rule('flooding'), tracer=t).run()\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert _names(tmp_path) == []


def test_keyboard_interrupt_inside_the_run_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Simulation, "run", interrupted)
    assert main(["run", "--graph", "cycle:8", "--trace", str(tmp_path / "t.jsonl")]) == 130
    captured = capsys.readouterr()
    assert captured.err == "ampsim: interrupted (Ctrl-C); no partial files left\n"
    assert _names(tmp_path) == []


def test_trace_size_limit_stops_the_run_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "echo.jsonl"
    assert main(["run", "--graph", "petersen", "--rule", "echo", "--trace", str(path), "--max-trace-mb", "0.05"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ampsim: error: {path}: the trace would exceed 0.05 MB; stopped, nothing written after ")
    assert "--max-trace-mb" in err and err.count("\n") == 1
    assert _names(tmp_path) == []


def test_tracer_max_bytes_api(tmp_path):
    tracer = JSONLTracer(tmp_path / "t.jsonl", max_bytes=2000)
    with pytest.raises(TraceLimitError, match="would exceed 0.002 MB"):
        Simulation(parse_graph_spec("petersen"), get_rule("echo"), tracer=tracer).run(max_deliveries=1000)
    assert tracer.closed and _names(tmp_path) == []


def test_trace_to_a_folder_is_one_error_and_leaves_nothing(tmp_path, capsys):
    folder = tmp_path / "traces"
    folder.mkdir()
    assert main(["run", "--graph", "cycle:5", "--trace", str(folder)]) == 2
    assert capsys.readouterr().err == f"ampsim: error: {folder}: is a folder; give a file name\n"
    assert _names(tmp_path) == ["traces"] and _names(folder) == []


def test_trace_into_a_missing_folder_is_one_error(tmp_path, capsys):
    assert main(["run", "--graph", "cycle:5", "--trace", str(tmp_path / "no" / "t.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err
    assert _names(tmp_path) == []


def _start_run(trace: Path) -> subprocess.Popen:
    """A long ``ampsim run --trace`` (echo never goes quiet) with SIGINT at its default, as on a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "ampsim", "run", "--graph", "petersen", "--rule", "echo", "--trace", str(trace),
         "--max-trace-mb", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=trace.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_partial(folder: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not any(n.startswith(".") and ".partial-" in n for n in _names(folder)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started writing its trace"
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the run


@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGINT, 130, "ampsim: interrupted (Ctrl-C); no partial files left\n"),
    (signal.SIGTERM, 143, "ampsim: terminated by SIGTERM; no partial files left\n"),
    (signal.SIGHUP, 129, "ampsim: terminated by SIGHUP; no partial files left\n"),
])
def test_signal_during_run_one_line_exit_code_no_partial_file(tmp_path, signum, code, line):
    proc = _start_run(tmp_path / "t.jsonl")
    try:
        _wait_for_partial(tmp_path, proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err  # the one line says what happened when the code is wrong
    assert err == line and out == ""
    assert _names(tmp_path) == []


def test_sigterm_inside_on_signal_exit_unwinds_and_cleans(tmp_path):
    """The library way: ``on_signal_exit`` turns SIGTERM into SignalExit(143); temporary files go."""
    code = (
        "import os, signal\n"
        "from ampsim.fileio import AtomicFile, on_signal_exit\n"
        "with on_signal_exit():\n"
        f"    f = AtomicFile({str(tmp_path / 'x.txt')!r})\n"
        "    f.write('half')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 143 and proc.stdout == "" and proc.stderr == ""
    assert _names(tmp_path) == []


def test_sigterm_during_a_gc_callback_is_not_lost():
    """A signal whose handler runs inside a garbage collector's callback (Dask registers one) would raise where
    Python prints and drops the exception; it is sent again once the callback is done, so the block still ends."""
    code = (
        "import gc, os, signal, time\n"
        "from ampsim.fileio import on_signal_exit\n"
        "def callback(phase, info):\n"
        "    if phase == 'start' and not getattr(callback, 'fired', False):\n"
        "        callback.fired = True\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        sum(range(1000))  # the handler runs here, inside the callback\n"
        "gc.callbacks.append(callback)\n"
        "with on_signal_exit():\n"
        "    gc.collect()\n"
        "    time.sleep(20)\n"
        "    print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (proc.returncode, proc.stdout, proc.stderr) == (143, "", "")


def test_on_signal_exit_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SignalExit) as info:
        with on_signal_exit():
            assert signal.getsignal(signal.SIGTERM) is not before
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    assert info.value.code == 143 and info.value.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_atomic_file_paths(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    assert (tmp_path / "a.json").read_text() == '{\n "a": [\n  1.5\n ],\n "b": 1\n}\n'
    with pytest.raises(ValueError):
        write_json(tmp_path / "nan.json", {"x": float("nan")})
    f = AtomicFile(tmp_path / "c.txt")
    f.write("x")
    f.abort()
    with pytest.raises(ValueError, match="write after commit or abort"):
        f.write("y")
    assert _names(tmp_path) == ["a.json"]


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_a_sweep_with_workers_is_one_line(tmp_path, signum, code):
    """Ctrl-C reaches the whole process group: the workers stay silent, the parent prints one line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ampsim", "verify", "ids", "--graph", "star:8", "--seeds", "1000000", "--max-cases", "0",
         "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # wait until both workers run (children of the sweep; a million seeds take far longer than this test)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and len(_children(proc.pid)) < 2:
            time.sleep(0.2)
        time.sleep(1.0)  # the workers are in their first chunk
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code
    plan, last = err.splitlines()  # the sweep's plan line (sweeps.announce_cases), then the signal's one line
    assert plan == "1,000,000 cases (1 graphs x 1000000 seeds), about 42 min to 69.4 h over 2 workers", err
    assert last.startswith("ampsim: ") and "Traceback" not in err, err
    assert _names(tmp_path) == []
