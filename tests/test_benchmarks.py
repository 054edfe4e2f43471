"""The benchmark scripts run and end with their ratio line (their figures are not asserted: the machine is shared)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_table4_step_compares_the_protocol_with_every_row_on_the_same_loss():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "table4_step.py"), "--points",
                          "MUTAG:h16_m15_noskip", "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert re.fullmatch(r"speedup: \d+\.\dx", lines[-1])
    assert "MUTAG h16_m15_noskip fold 0 (170 graphs)" in lines[0]
    # every row 48,337; the causal past of the read states 19,595; of those, distinct: 124 (row 0,
    # MUTAG's 7 distinct start states and 116 deliveries)
    assert "protocol" in lines[0] and "(124 state rows)" in lines[0]
    assert "keep" in lines[0] and "(19,595 state rows)" in lines[0] and "(48,337 state rows)" in lines[0]


def test_sweep_trains_the_folds_both_ways_with_the_same_losses():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep.py"), "--folds", "2", "--epochs", "1",
                          "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr + out.stdout  # 1: the stacked losses differ from the one-by-one ones
    lines = out.stdout.strip().splitlines()
    assert re.fullmatch(r"speedup: \d+\.\dx", lines[-1])
    assert "MUTAG h16_m25_noskip, K = 2 folds x 1 epochs" in lines[-3]


def test_nodes_cost_times_the_models_side_by_side():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "nodes_cost.py"), "--datasets", "Cora",
                          "--models", "GCN", "AMP-Mean", "AMP-Att", "--delays", "constant", "--epochs", "1",
                          "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[1].split()[:2] == ["Cora", "GCN"] and lines[1].split()[-1] == "1.00"
    assert [ln.split()[1] for ln in lines[1:4]] == ["GCN", "AMP-Mean", "AMP-Att"]
    assert lines[3].split()[4] == "200"  # the recipe's epochs, as `ampsim nodes run` builds it
    assert re.fullmatch(r"per seed, worst data set: AMP-Mean constant \d+\.\dx; AMP-Att constant \d+\.\dx of our GCN",
                        lines[-1])
