"""The CLI's messages: one line naming the user's input, hints that are CLI flags; a light start-up."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from ampsim.cli import CLI_BUDGET, default_budget, main

ROOT = Path(__file__).resolve().parents[1]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ampsim: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err[len("ampsim: error: "):-1]


def test_missing_edge_list_says_not_found(tmp_path, capsys):
    missing = tmp_path / "edges.txt"
    assert main(["run", "--graph", str(missing)]) == 2
    msg = _one_error(capsys)
    assert msg.startswith(f"--graph {missing}: ") and "not found" in msg and "cycle:8" in msg


def test_graph_folder_and_binary_edge_list_name_the_file(tmp_path, capsys):
    assert main(["run", "--graph", str(tmp_path)]) == 2
    assert _one_error(capsys) == f"--graph {tmp_path}: is a folder, not an edge-list file"
    binary = tmp_path / "g.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert main(["run", "--graph", str(binary)]) == 2
    assert _one_error(capsys) == f"--graph {binary}: not a text edge-list file (undecodable byte at position 0 of line 1)"


def test_undecodable_trace_names_the_file(tmp_path, capsys):
    bad = tmp_path / "t.jsonl"
    bad.write_bytes(b"\xff\xfe")
    for argv in (["replay", str(bad)], ["plot", str(bad), "-o", str(tmp_path / "p.png")]):
        assert main(argv) == 2
        assert str(bad) in _one_error(capsys)
    assert sorted(os.listdir(tmp_path)) == ["t.jsonl"]


def test_isolated_node_hint_is_a_cli_flag(tmp_path, capsys):
    edges = tmp_path / "g.txt"
    edges.write_text("0 1\n1 2\n2 0\n3\n")
    assert main(["run", "--graph", str(edges)]) == 2
    msg = _one_error(capsys)
    assert "--allow-isolated" in msg and "allow_isolated=True" not in msg
    assert main(["run", "--graph", str(edges), "--allow-isolated"]) == 0
    out = capsys.readouterr().out
    assert "ended: stalled at t=2 after 7 deliveries" in out and "stuck nodes: [3]" in out


def test_start_must_be_an_index_or_all(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--graph", "cycle:5", "--start", "x"])
    assert info.value.code == 2
    assert "argument --start: expected a node index or 'all', got 'x'" in capsys.readouterr().err
    assert main(["run", "--graph", "cycle:5", "--start", "all"]) == 0


def test_default_budget_is_stated_in_the_end_reason(capsys, monkeypatch):
    monkeypatch.setattr("ampsim.cli.simulate.CLI_BUDGET", 500)
    assert main(["run", "--graph", "petersen", "--rule", "echo"]) == 0
    out = capsys.readouterr().out
    assert ("ended: message_budget (the default budget of 500 deliveries, max(500, 20*|E|); --max-deliveries N "
            "to change) at t=") in out and "after 500 deliveries" in out
    assert main(["run", "--graph", "petersen", "--rule", "echo", "--max-deliveries", "40"]) == 0
    out = capsys.readouterr().out
    assert "ended: message_budget at t=" in out and "after 40 deliveries" in out
    monkeypatch.undo()
    assert CLI_BUDGET == 100_000 and default_budget(15) == 100_000 and default_budget(10_000) == 200_000


def test_demo_on_a_graph_with_fewer_deliveries_than_its_steps(tmp_path, capsys):
    assert main(["demo", "--graph", "path:2", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "(the run went quiet after 3 deliveries)" in out and "ended: quiescent" in out
    assert sorted(os.listdir(tmp_path / "d")) == ["demo.jsonl", "demo_timeline.png"]


def test_plot_output_is_the_file_written(tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    assert main(["run", "--graph", "cycle:5", "--trace", str(trace)]) == 0
    for name in ("p.svg", "p.pdf", "p.png"):
        assert main(["plot", str(trace), "-o", str(tmp_path / name)]) == 0
        assert capsys.readouterr().out.endswith(f"space-time diagram written to {tmp_path / name}\n")
        assert (tmp_path / name).stat().st_size > 0
    assert main(["plot", str(trace), "-o", str(tmp_path / "p")]) == 2
    assert "cannot draw a picture with no suffix" in _one_error(capsys)
    assert sorted(os.listdir(tmp_path)) == ["p.pdf", "p.png", "p.svg", "t.jsonl"]


def test_unknown_task_lists_each_name_once(capsys):
    assert main(["train", "--task", "nope"]) == 2
    msg = _one_error(capsys)
    names = msg.split("valid names: ")[1].split(", ")
    assert names == ["limits1", "limits2", "triangles", "lcc", "max", "mean", "4cycles", "skipcycles", "parity",
                     "parity-multi"]


def _write(path: Path, how: str) -> None:
    import torch

    if how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("hello\n")
    elif how == "pickle":
        path.write_bytes(pickle.dumps({"a": open}))
    elif how == "foreign":
        torch.save({"weights": torch.ones(2)}, path)
    elif how == "truncated":
        torch.save({"format": "ampsim.train.checkpoint", "weights": torch.ones(1000)}, path)
        path.write_bytes(path.read_bytes()[:300])


@pytest.mark.parametrize("how, why", [
    ("empty", "not a readable training checkpoint (the file is empty)"),
    ("text", "not a readable training checkpoint (not a torch file"),
    ("pickle", "not a readable training checkpoint (it holds objects other than tensors"),
    ("foreign", "not an ampsim training checkpoint (another program's file)"),
    ("truncated", "not a readable training checkpoint (truncated or corrupt)"),
])
def test_resume_with_a_bad_checkpoint_is_one_line_naming_it(tmp_path, capsys, how, why):
    ckpt = tmp_path / "checkpoint.pt"
    _write(ckpt, how)
    assert main(["train", "--task", "limits1", "--epochs", "1", "--out", str(tmp_path), "--resume", "--quiet"]) == 2
    msg = _one_error(capsys)
    assert msg.startswith(f"{ckpt}: {why}") and "weights_only" not in msg
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]


def test_existing_checkpoint_hint_is_the_cli_flag(tmp_path, capsys):
    import torch

    torch.save({"x": 1}, tmp_path / "checkpoint.pt")
    assert main(["train", "--task", "limits1", "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 2
    msg = _one_error(capsys)
    assert "add --resume" in msg and "resume=True" not in msg and "--out" in msg


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_help_and_simulate_path_do_not_import_torch(tmp_path):
    code = (
        "import contextlib, io, sys\n"
        "from ampsim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    rc = main(['run', '--graph', 'cycle:8', '--delay', 'uniform', '--trace', {str(tmp_path / 't.jsonl')!r}])\n"
        f"    rc += main(['replay', {str(tmp_path / 't.jsonl')!r}, '--verify'])\n"
        "print(rc, 'torch' in sys.modules, 'matplotlib' in sys.modules)\n")
    proc = _fresh(code)
    assert proc.stdout == "0 False False\n", proc.stderr


def test_verify_help_does_not_import_torch_and_train_does():
    proc = _fresh(
        "import contextlib, io, sys\n"
        "from ampsim.cli import build_parser\n"
        "build_parser(['verify', 'ids', '--graph', 'star:3'])\n"
        "print('torch' in sys.modules, 'ampsim.protocols.verify_ids' in sys.modules,\n"
        "      'ampsim.protocols.verify_synchronizer' in sys.modules)\n"
        "build_parser(['train', '--task', 'limits1'])\n"
        "print('torch' in sys.modules)\n")
    assert proc.stdout == "False True False\nTrue\n", proc.stderr


def test_sub_command_help_still_lists_their_flags(capsys):
    for argv, flag in ((["train", "--help"], "--resume"), (["verify", "synchronizer", "--help"], "--seeds"),
                       (["run", "--help"], "--max-trace-mb")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0 and flag in capsys.readouterr().out


def test_nothing_to_do_is_one_line(tmp_path, capsys):
    run = ["table2", "run", "--root", str(tmp_path), "--seeds", "0", "--tasks", "limits1", "--epochs", "1", "--quiet"]
    assert main(run) == 0
    capsys.readouterr()
    assert main(run) == 0
    assert capsys.readouterr().out == f"table2 run: all 1 runs already finished under {tmp_path}; nothing to do\n"
    assert json.loads((tmp_path / "limits1" / "amp-rnn" / "seed0" / "result.json").read_text())["epochs_done"] == 1


def test_progress_bar_only_on_a_terminal(capsys, monkeypatch):
    """On a terminal (stderr isatty) tqdm shows the deliveries; the result lines are the same."""
    assert main(["run", "--graph", "petersen", "--rule", "echo", "--max-deliveries", "5000"]) == 0
    plain = capsys.readouterr()
    assert plain.err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["run", "--graph", "petersen", "--rule", "echo", "--max-deliveries", "5000"]) == 0
    tty = capsys.readouterr()
    assert tty.out == plain.out and "deliveries" in tty.err
    assert main(["run", "--graph", "petersen", "--rule", "echo", "--max-deliveries", "5000", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", [["run", "--graph", "cycle:5", "--trace", "-"], ["plot", "t.jsonl", "-o", "-"],
                                  ["demo", "--out", "-"]])
def test_dash_is_not_a_file_name(argv, tmp_path, capsys, monkeypatch):
    """- would become a file named "-": refused, except ``export --format shiviz -o -`` (standard output)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:  # argparse's usage error: exit 2
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "expected a file name; - (standard output) only works for ampsim export --format shiviz" in err
    assert err.count("\n") == 1 and os.listdir(tmp_path) == []
