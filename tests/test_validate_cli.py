"""Bad inputs through the command line: exit 2 and one line naming the user's input."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ampsim.cli import main


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ampsim: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for prefix in ("ampsim: error: ", "ampsim: replay mismatch: "):
        if err.startswith(prefix):
            return err[len(prefix):].strip()
    raise AssertionError(err)


RUN_BAD = [
    (["--graph", "cycle:5", "--loss", "1"], r"loss must be a finite number >= 0 and < 1, got 1.0"),
    (["--graph", "cycle:5", "--loss", "nan"], r"loss must be a finite number >= 0 and < 1 (not NaN), got nan"),
    (["--graph", "cycle:5", "--start", "9"], r"start node 9 is not in the graph"),
    (["--graph", "cycle:5", "--max-edges", "0"], r"max_edges must be an integer >= 1, got 0"),
    (["--graph", "cycle:2"], r"a cycle needs at least 3 nodes"),
    (["--graph", "gnp:10:2:1"], r"P must be in [0, 1]"),
    (["--graph", "complete:100000"], r"would have 100,000 nodes and 4,999,950,000 edges"),
    (["--graph", "complete:100", "--max-edges", "100"], r"the limit is 100 edges: raise it with --max-edges"),
]


@pytest.mark.parametrize("argv, text", RUN_BAD, ids=[" ".join(a) for a, _ in RUN_BAD])
def test_run_bad_flags(capsys, argv, text):
    assert main(["run", "--quiet", *argv]) == 2
    assert text in one_error(capsys)


def test_big_spec_refused_in_milliseconds(capsys):
    t0 = time.perf_counter()
    assert main(["run", "--graph", "complete:100000"]) == 2
    assert time.perf_counter() - t0 < 5  # generous: building it would take minutes and die of MemoryError
    msg = one_error(capsys)
    assert "the limit is 1,500,000 edges" in msg and "--max-edges" in msg and "max_edges=" not in msg


def test_edge_list_with_extra_columns_names_file_and_line(tmp_path, capsys):
    p = tmp_path / "g.txt"
    p.write_text("0 1\n1 2 0.5\n")
    assert main(["run", "--graph", str(p)]) == 2
    assert one_error(capsys) == f"--graph {p}:2: expected 'u v' (two integer node ids), got 3 columns: '1 2 0.5'"


def test_until_inf_is_quiescent_at_its_real_time(capsys):
    assert main(["run", "--graph", "cycle:5", "--until", "inf", "--quiet"]) == 0
    assert "ended: quiescent at t=3 after 11 deliveries" in capsys.readouterr().out


def _trace(tmp_path, capsys) -> str:
    p = tmp_path / "t.jsonl"
    assert main(["run", "--graph", "petersen", "--delay", "uniform", "--seed", "2", "--trace", str(p), "--quiet"]) == 0
    capsys.readouterr()
    return p


def _tamper(path, how: str) -> None:
    lines = path.read_text().splitlines()
    if how == "graph":
        h = json.loads(lines[0])
        h["graph"]["edges"][0] = [0, 9]
        lines[0] = json.dumps(h)
    elif how == "graph+hash":  # another graph with a consistent header: the records no longer fit it
        from ampsim.graphs import parse_graph_spec

        h = json.loads(lines[0])
        g = parse_graph_spec("cycle:10")
        h["graph"], h["graph_hash"] = g.to_dict(), g.hash()
        lines[0] = json.dumps(h)
    elif how == "delay":
        i = next(i for i, l in enumerate(lines) if '"type":"send"' in l and '"src":0' in l)
        r = json.loads(lines[i])
        r["delay"] += 0.25
        lines[i] = json.dumps(r)
    elif how == "missing":
        i = [i for i, l in enumerate(lines) if '"type":"deliver"' in l][3]
        del lines[i]
    elif how == "duplicate":
        i = [i for i, l in enumerate(lines) if '"type":"deliver"' in l][3]
        lines.insert(i, lines[i])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("how, text", [
    ("graph", "does not match its graph_hash"),
    ("graph+hash", "which is not an edge of the header's graph"),
    ("delay", "the delay or a time was altered"),
    ("missing", "a record is missing"),
    ("duplicate", "delivered or dropped twice"),
])
@pytest.mark.parametrize("command", ["plot", "replay"])
def test_plot_and_replay_refuse_the_same_tampered_traces(tmp_path, capsys, how, text, command):
    p = _trace(tmp_path, capsys)
    _tamper(p, how)
    out = tmp_path / "x.png"
    argv = ["plot", str(p), "-o", str(out)] if command == "plot" else ["replay", str(p), "--verify"]
    assert main(argv) in (1, 2)
    msg = one_error(capsys)
    assert str(p) in msg and text in msg
    assert not out.exists()


def test_plot_reports_the_file_it_wrote(tmp_path, capsys):
    p = _trace(tmp_path, capsys)
    out_file = tmp_path / "pic.svg"
    assert main(["plot", str(p), "-o", str(out_file)]) == 0
    assert capsys.readouterr().out.strip() == f"space-time diagram written to {out_file}" and out_file.exists()


def test_subprocess_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ampsim", "run", "--graph", "cycle:5", "--loss", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "loss must be" in r.stderr


def test_an_unknown_flag_is_reported_by_the_command_that_was_given():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ampsim", "table2", "run", "--sets", "x"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr == ("ampsim table2 run: error: unrecognized arguments: --sets x "
                        "(see ampsim table2 run --help)\n")
