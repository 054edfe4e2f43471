"""The hand-written bad inputs of every ``ampsim`` subcommand, run bounded and sorted by outcome.

    python tests/cli/probe.py [--timeout 15] [--only WORD] > probe.tsv
    AMPSIM_PROBE_ROOT=/path/to/older/checkout python tests/cli/probe.py   # the same cases on other code

Each case runs in a fresh temporary folder holding the fixtures of :func:`fixtures` (a folder, a FIFO,
an empty file, text that is not a trace, a valid trace, a corrupt result file); ``/dev/null`` is used as is.
One line per case: outcome, exit status, seconds, the command, the first stderr line.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import make_inputs, run_bounded  # noqa: E402

TRACE = None  # a valid trace made once per probe session (fixtures copies it)

CASES: list[list[str]] = [
    # run
    ["run", "--graph", "cycle:0"], ["run", "--graph", "cycle:-3"], ["run", "--graph", ""],
    ["run", "--graph", "dir"], ["run", "--graph", "fifo"], ["run", "--graph", "/dev/null"],
    ["run", "--graph", "empty.txt"], ["run", "--graph", "t.jsonl"], ["run", "--graph", "cycle:99999999999"],
    ["run", "--graph", "cycle:5", "--seed", "-1"], ["run", "--graph", "cycle:5", "--loss", "2"],
    ["run", "--graph", "cycle:5", "--loss", "nan"], ["run", "--graph", "cycle:5", "--until", "0"],
    ["run", "--graph", "cycle:5", "--max-deliveries", "0"], ["run", "--graph", "cycle:5", "--max-edges", "0"],
    ["run", "--graph", "cycle:5", "--max-edges", "-1"], ["run", "--graph", "cycle:5", "--trace", "dir"],
    ["run", "--graph", "cycle:5", "--trace", "fifo"], ["run", "--graph", "cycle:5", "--trace", "/dev/null"],
    ["run", "--graph", "cycle:5", "--start", "99"], ["run", "--graph", "cycle:5", "--rule", "nosuch"],
    ["run", "--graph", "cycle:5", "--max-trace-mb", "-1"], ["run", "--graph", "cycle:5", "--trace", "x" * 300],
    # demo
    ["demo", "--out", "/dev/null"], ["demo", "--out", "fifo"], ["demo", "--graph", "cycle:0"],
    ["demo", "--seed", "-1"], ["demo", "--out", "empty.txt"],
    # replay / plot / export
    ["replay", "dir"], ["replay", "fifo"], ["replay", "/dev/null"], ["replay", "empty.txt"], ["replay", "bad.jsonl"],
    ["replay", "json.parquet"], ["replay", "missing.jsonl"], ["replay", "result.json"],
    ["replay", "t.jsonl", "--max-records", "0"],
    ["plot", "fifo"], ["plot", "bad.jsonl"], ["plot", "t.jsonl", "-o", "dir"], ["plot", "t.jsonl", "-o", "fifo"],
    ["plot", "t.jsonl", "-o", "x.unknown"], ["plot", "t.jsonl", "--dpi", "0"], ["plot", "t.jsonl", "--dpi", "100000"],
    ["plot", "t.jsonl", "-o", "x.html", "--max-messages", "-1"], ["plot", "t.jsonl", "-o", "/dev/null"],
    ["plot", "t.jsonl", "-o", "x.png", "--max-records", "1"],
    ["export", "fifo", "--format", "jsonl", "-o", "x.jsonl"], ["export", "bad.jsonl", "--format", "shiviz", "-o", "x.log"],
    ["export", "t.jsonl", "--format", "parquet", "-o", "x.jsonl"], ["export", "t.jsonl", "--format", "jsonl", "-o", "x.parquet"],
    ["export", "t.jsonl", "--format", "jsonl", "-o", "fifo"], ["export", "t.jsonl", "--format", "jsonl", "-o", "-"],
    ["export", "t.jsonl", "--format", "jsonl", "-o", "dir"],
    # verify
    ["verify", "synchronizer", "--seeds", "0"], ["verify", "synchronizer", "--seeds", "-1"],
    ["verify", "synchronizer", "--seeds", "100000000"], ["verify", "synchronizer", "--layers", "0", "--seeds", "1"],
    ["verify", "synchronizer", "--layers", "-1", "--seeds", "1"], ["verify", "synchronizer", "--dim", "0"],
    ["verify", "synchronizer", "--dim", "100000000", "--graph", "cycle:4", "--seeds", "1", "--layers", "1"],
    ["verify", "synchronizer", "--workers", "0"], ["verify", "synchronizer", "--workers", "100000"],
    ["verify", "synchronizer", "--loss", "2"], ["verify", "synchronizer", "--graph", "cycle:0"],
    ["verify", "synchronizer", "--max-cases", "-1"], ["verify", "synchronizer", "--seeds", "x"],
    ["verify", "synchronizer", "--graph", "cycle:4", "--seeds", "1", "--layers", "1", "--out", "/dev/null"],
    ["verify", "ids", "--graph", "star:4", "--seeds", "0"], ["verify", "ids", "--graph", "star:4", "--seeds", "-1"],
    ["verify", "ids", "--graph", "star:4", "--seeds", "100000000"], ["verify", "ids", "--graph", "star:4", "--budget", "0"],
    ["verify", "ids", "--graph", "star:4", "--budget", "-1"], ["verify", "ids", "--graph", "star:4", "--workers", "0"],
    ["verify", "ids", "--graph", "star:4", "--workers", "100000"], ["verify", "ids", "--graph", "star:4", "--start", "99"],
    ["verify", "ids", "--graph", "star:4", "--start", "-1"], ["verify", "ids", "--graph", "dir"],
    ["verify", "ids", "--graph", "star:4", "--start", "x"],
    ["verify", "separation", "--seeds", "0"], ["verify", "separation", "--seeds", "100000000", "--learned", "off"],
    ["verify", "separation", "--relabellings", "0"], ["verify", "separation", "--pair", "a"],
    ["verify", "separation", "--pair", "cycle:4,cycle:0"], ["verify", "separation", "--relabellings", "100000000",
                                                             "--learned", "off"],
    # ids
    ["ids", "stars", "--ks", "0-3"], ["ids", "stars", "--ks", "5-2"], ["ids", "stars", "--ks", "1-40"],
    ["ids", "stars", "--seeds", "0"], ["ids", "stars", "--seeds", "100000000", "--ks", "2"],
    ["ids", "stars", "--ks", "2", "--seeds", "2", "--out", "/dev/null"], ["ids", "stars", "--ks", "2", "--seeds", "2", "--out", "fifo"],
    ["ids", "stars", "--ks", "2", "--seeds", "3", "--out", "badstar"],
    ["ids", "graphs", "--count", "0"], ["ids", "graphs", "--count", "100000000"], ["ids", "graphs", "--seeds", "0"],
    # train
    ["train", "--task", "nosuch"], ["train", "--task", "limits1", "--epochs", "-1"],
    ["train", "--task", "limits1", "--lr", "0"], ["train", "--task", "limits1", "--lr", "nan"],
    ["train", "--task", "limits1", "--hidden", "0"], ["train", "--task", "limits1", "--hidden", "100000000", "--epochs", "1"],
    ["train", "--task", "limits1", "--msg-size", "100000000", "--epochs", "1"],
    ["train", "--task", "parity", "--train-graphs", "100000000", "--epochs", "1"],
    ["train", "--task", "parity", "--test-sizes", "1"], ["train", "--task", "parity", "--test-sizes", "100000000", "--epochs", "1"],
    ["train", "--task", "limits1", "--budget-factor", "0"], ["train", "--task", "limits1", "--seeds", "5-2"],
    ["train", "--task", "limits1", "--seeds", ""], ["train", "--task", "limits1", "--out", "/dev/null"],
    ["train", "--task", "limits1", "--out", "fifo"], ["train", "--task", "parity-multi", "--sources", "0"],
    ["train", "--task", "parity-multi", "--sources", "1000000", "--epochs", "1"],
    ["train", "--task", "limits1", "--checkpoint-every", "0"], ["train", "--task", "limits1", "--model", "nosuch"],
    ["train", "--task", "limits1", "--epochs", "100000000"],
    ["train", "--task", "limits1", "--epochs", "1", "--out", "oldrun"],
    ["train", "--task", "limits1", "--epochs", "1", "--out", "oldrun", "--resume"],
    ["train", "--task", "limits1", "--epochs", "1", "--out", "corruptrun", "--resume"],
    # tables
    ["table2", "run", "--seeds", "5-2"], ["table2", "run", "--seeds", ""], ["table2", "run", "--tasks", "nosuch", "--seeds", "0"],
    ["table2", "run", "--models", "x"], ["table2", "run", "--root", "/dev/null", "--seeds", "0", "--tasks", "limits1"],
    ["table2", "run", "--seeds", "0-999", "--epochs", "1000"], ["table2", "run", "--workers", "0"],
    ["table2", "run", "--workers", "65"], ["table2", "run", "--epochs", "0", "--seeds", "0", "--tasks", "limits1", "--root", "r"],
    ["table2", "run", "--epochs", "100000000", "--seeds", "0", "--tasks", "limits1", "--root", "r"],
    ["table2", "render", "--root", "missing"], ["table2", "render", "--root", "/dev/null"],
    ["table2", "render", "--root", "dir", "--out", "/dev/null"],
    ["table2", "pack", "--root", "missing", "--out", "p"], ["table2", "cost", "--epochs", "0"],
    ["table2", "cost", "--tasks", "nosuch"], ["table2", "compare", "--root", "missing", "--md", "x.md"],
    ["table3", "run", "--models", "x"], ["table3", "run", "--seeds", "0-999"], ["figure6", "run", "--seeds", "5-2"],
    ["gate", "run", "--tasks", "nosuch", "--seeds", "0"],
    ["table4", "run", "--datasets", "NOPE"], ["table4", "run", "--folds", "10"], ["table4", "run", "--folds", "5-2"],
    ["table4", "run", "--points", "bad"], ["table4", "run", "--points", "h100000_m15_skip"],
    ["table4", "run", "--out", "/dev/null", "--datasets", "MUTAG", "--folds", "0", "--max-graphs", "10", "--epochs", "1"],
    ["table4", "run", "--max-graphs", "0"], ["table4", "run", "--device", "gpu"],
    ["table4", "run", "--datasets", "MUTAG", "--epochs", "0", "--folds", "0", "--points", "h16_m15_skip", "--out", "g"],
    ["table4", "run", "--datasets", "MUTAG", "--epochs", "100000000", "--folds", "0", "--points", "h16_m15_skip", "--out", "g"],
    ["table4", "render", "--out", "missing"], ["table4", "render", "--out", "dir"],
    ["nodes", "run", "--seeds", "5-2"], ["nodes", "run", "--epochs", "0"], ["nodes", "run", "--hidden", "0"],
    ["nodes", "run", "--hidden", "5000"], ["nodes", "run", "--out", "/dev/null", "--epochs", "1", "--seeds", "0"],
    ["nodes", "run", "--datasets", "Nope"], ["nodes", "run", "--seeds", "0-999"], ["nodes", "render", "--out", "missing"],
    ["nodes", "run", "--epochs", "100000000", "--seeds", "0"],
    ["nodes", "pubmed", "--seeds", "5-2"], ["nodes", "pubmed", "--models", "Nope"], ["nodes", "pubmed", "--epochs", "0"],
    ["nodes", "pubmed", "--timing-epochs", "-1"], ["nodes", "pubmed", "--timing-features", "100000000"],
    ["nodes", "pubmed", "--out", "/dev/null"], ["nodes", "pubmed", "--out", "dir"], ["nodes", "pubmed", "--runs", "fifo"],
    ["nodes", "pubmed", "--runs", "empty.txt"],
    # theory
    ["figure4", "--seeds", "0"], ["figure4", "--seeds", "100000000"], ["figure4", "--seeds", "1", "--out", "dir"],
    ["figure4", "--seeds", "1", "--out", "fifo/x"],  # --out /dev/null (a stem that is a device): tests/cli/test_cli_files.py
    ["delays", "run", "--full-seeds", "0", "--short-seeds", "0", "--root", "d"], ["delays", "run", "--extra-seeds", "5"],
    ["delays", "run", "--full-seeds", "100000", "--root", "d"],
    ["delays", "gradients", "--draws", "0"], ["delays", "gradients", "--draws", "100000000", "--root", "d"],
    ["delays", "gradients", "--tasks", "nosuch"], ["delays", "summarize", "--root", "missing", "--out", "s"],
    ["delays", "summarize", "--root", "dir", "--out", "/dev/null"],
    ["reaction", "--graphs", "0"], ["reaction", "--graphs", "100000000"], ["reaction", "--parity-run", "missing"],
    ["reaction", "--out", "/dev/null", "--graphs", "1"], ["reaction", "--delay", "uniform", "--seeds", "5-2"],
    ["reaction", "--delay", "uniform", "--sizes", "7"], ["reaction", "--delay", "uniform", "--seeds", "0-999"],
    # runs
    ["runs", "pack", "missing", "x.jsonl.gz"], ["runs", "pack", "dir", "x.txt"], ["runs", "pack", "dir", "/dev/null"],
    ["runs", "pack", "dir", "fifo"], ["runs", "unpack", "missing.jsonl.gz", "o"], ["runs", "unpack", "bad.jsonl", "o"],
    ["runs", "unpack", "t.jsonl", "o"], ["runs", "unpack", "fifo", "o"], ["runs", "unpack", "empty.txt", "o"],
]


def make_trace(folder: Path) -> Path:
    """A valid trace (flooding on cycle:5) made by ``ampsim run`` once."""
    path = folder / "t.jsonl"
    out = run_bounded(["run", "--graph", "cycle:5", "--trace", str(path)], folder, timeout=60)
    assert out.rc == 0, out.stderr
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--only", default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as base:
        trace = make_trace(Path(base))
        for i, case in enumerate(CASES):
            if args.only and args.only not in " ".join(case):
                continue
            folder = Path(base) / f"c{i}"
            folder.mkdir()
            make_inputs(folder, trace)
            out = run_bounded(case, folder, timeout=args.timeout)
            first = (out.lines[:1] or [""])[0][:200]
            if out.kind() == "traceback":
                first = out.lines[-1][:200]
            if out.kind() == "hang":
                first = "(killed) " + " | ".join(out.lines[:2])[:200]
            print(f"{out.kind()}\t{out.rc}\t{out.seconds:.1f}\t{' '.join(case)}\t{first}"
                  f"{chr(9) + 'LEFT ' + ','.join(out.left) if out.left else ''}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
