"""The command line: the documented commands work; bad input exits non-zero with one line."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ampsim.cli import main


def test_run_replay_verify(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["run", "--graph", "cycle:8", "--rule", "flooding", "--delay", "uniform", "--seed", "3", "--trace", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ended: quiescent" in text and "17 deliveries" in text
    assert json.loads(out.read_text().splitlines()[0])["seed"] == 3
    assert main(["replay", str(out), "--verify"]) == 0
    assert "identical" in capsys.readouterr().out


def test_replay_mismatch_exits_1(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    main(["run", "--graph", "path:4", "--trace", str(out)])
    out.write_text(out.read_text().replace('"payload":"2"', '"payload":"9"'))
    capsys.readouterr()
    assert main(["replay", str(out), "--verify"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ampsim: replay mismatch:") and err.count("\n") == 1


def test_budget_and_loss_flags(capsys):
    assert main(["run", "--graph", "path:6", "--loss", "0.99", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "ended: stalled" in text and "stuck nodes:" in text


@pytest.mark.parametrize("argv, needle", [
    (["run", "--graph", "cycle:2"], "at least 3 nodes"),
    (["run", "--graph", "nosuch:3"], "unknown graph spec"),
    (["run", "--graph", "cycle:5", "--rule", "nope"], "unknown rule"),
    (["run", "--graph", "cycle:5", "--start", "9"], "start node 9"),
    (["run", "--graph", "cycle:5", "--loss", "1.5"], "loss must be"),
    (["replay", "missing.jsonl"], "trace file not found"),
])
def test_bad_input_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ampsim: error:") and needle in err and err.count("\n") == 1


def test_corrupt_trace(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n")
    assert main(["replay", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    out = tmp_path / "t.jsonl"
    proc = subprocess.run([sys.executable, "-m", "ampsim", "run", "--graph", "petersen", "--trace", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
