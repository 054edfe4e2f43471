"""The README's commands work as written on a fresh clone and leave the clone clean.

The repository's committed HEAD is cloned into a temporary folder; each command of the
README's ``bash`` blocks is run there with ``PYTHONPATH`` pointing at the clone (no
install): exactly as written where it is quick, with fewer epochs / seeds / folds where
the README shows a full run. Each must exit 0, and ``git status --porcelain`` must be
empty afterwards (a user's runs go to the ignored ``runs/``; published results are only
rewritten by their own explicit commands, and then identically).

:data:`PLAN` names every README command; a command added to the README without a plan
fails :func:`test_every_readme_command_is_planned`, so README and test stay in step.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

QUICK = "quick"  # run exactly as written (well under a minute)
SMALL = "small"  # run with the given smaller arguments (the README shows the full run)
SKIP = "skip"    # not run; the reason says why

#: the published tables, recomputed from their packed runs (identical files: the clone stays clean)
PUBLISHED_TABLES = ("ampsim table2 render --root results/table2_runs.jsonl.gz,results/table3_runs.jsonl.gz,"
    "results/figure6_runs.jsonl.gz,results/gate_runs.jsonl.gz --out results")
PUBLISHED_TABLE4 = ("ampsim table4 render --out results/table4_runs.jsonl.gz "
    "--json results/table4.json --md results/table4.md")
PUBLISHED_NODES = ("ampsim nodes render --out results/node_classification_runs.jsonl.gz --json "
    "results/node_classification.json --md results/node_classification.md --robustness results/delay_robustness")
#: README command -> (how, command actually run or reason)
PLAN: dict[str, tuple[str, str]] = {
    "python3 -m venv .venv": (SKIP, "set-up: the test runs with PYTHONPATH, no install"),
    ". .venv/bin/activate": (SKIP, "set-up: the test runs with PYTHONPATH, no install"),
    "python -m sphinx -W --keep-going -b html docs docs/_build/html":
        (SKIP, "tests/test_docs_site.py builds the site with exactly these options into a temporary folder"),
    'python3 -m pip install "torch==2.13.0"': (SKIP, "set-up: the test runs with PYTHONPATH, no install"),
    'python3 -m pip install -e ".[test]"': (SKIP, "set-up: the test runs with PYTHONPATH, no install"),
    "python3 -m pytest -q": (SKIP, "the test suite itself"),
    "ampsim demo": (QUICK, ""),
    "ampsim run --graph cycle:8 --rule flooding --delay uniform --seed 3 --trace out.jsonl": (QUICK, ""),
    "ampsim replay out.jsonl --verify": (QUICK, ""),
    "ampsim plot out.jsonl -o timeline.png": (QUICK, ""),
    "ampsim verify ids --graph star:6 --seeds 1000": (QUICK, ""),
    "ampsim verify separation --pair rook:4,shrikhande --learned off": (QUICK, ""),
    PUBLISHED_TABLES: (QUICK, ""),
    PUBLISHED_TABLE4: (QUICK, ""),
    "ampsim verify synchronizer --seeds 50 --workers 2": (SMALL, "ampsim verify synchronizer --seeds 1 --workers 2"),
    "ampsim verify synchronizer --seeds 50 --workers 2 --plot --out results/synchronizer":
        (SKIP, "about 3 minutes; rewrites the published summary with a new wall-clock figure"),
    "ampsim train --task limits1 --model amp-rnn --delay constant --seed 0":
        (SMALL, "ampsim train --task limits1 --model amp-rnn --delay constant --seed 0 --epochs 2"),
    "ampsim train --task parity --model amp-iter --delay uniform --seed 3 --resume":
        (SMALL, "ampsim train --task parity --model amp-iter --delay uniform --seed 3 --resume --epochs 2 "
                "--train-graphs 8 --test-sizes 10"),
    "ampsim train --task 4cycles --nproc 2": (SMALL, "ampsim train --task 4cycles --nproc 2 --epochs 2"),
    "ampsim table2 run --seeds 0-9 --workers 2":
        (SMALL, "ampsim table2 run --seeds 0-1 --tasks limits1,lcc --epochs 2 --workers 2"),
    "ampsim table3 run --seeds 0-9 --workers 2":
        (SMALL, "ampsim table3 run --seeds 0 --models amp-rnn --epochs 1 --workers 2"),
    "ampsim table2 render": (QUICK, ""),
    "ampsim table3 render": (QUICK, ""),
    "ampsim nodes run --datasets Cora --models GCN AMP-Mean AMP-Att --seeds 0-9":
        (SMALL, "ampsim nodes run --datasets Cora --models GCN AMP-Mean AMP-Att --seeds 0 --epochs 2"),
    PUBLISHED_NODES: (QUICK, ""),
    "ampsim table4 run --datasets MUTAG --folds 0-9 --workers 2":
        (SMALL, "ampsim table4 run --datasets MUTAG --folds 0 --epochs 2 "
                "--points h16_m15_noskip h16_m15_skip --workers 2"),
}

#: commands that train, sweep or draw every published figure (slow: > 10 s CPU each); the rest is the quick test
#: (``table2 render`` / ``table3 render`` read the runs that ``table2 run`` / ``table3 run`` make: they run after them)
SLOW = ({c for c in PLAN if " train" in c or "ampsim table" in c or "verify synchronizer" in c or "nodes run" in c}
        - {PUBLISHED_TABLE4})


def readme_commands(text: str) -> list[str]:
    """Every command of the README's ``bash`` blocks, in order (comments dropped, ``&&`` split)."""
    out: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.extend(part.strip() for part in line.split("&&"))
    return out


def argv_of(command: str) -> list[str]:
    """``ampsim ...`` and ``python[3] ...`` run with this interpreter (no install needed)."""
    words = shlex.split(command)
    if words[0] == "ampsim":
        return [sys.executable, "-m", "ampsim", *words[1:]]
    if words[0] in ("python", "python3"):
        return [sys.executable, *words[1:]]
    raise AssertionError(f"README command neither ampsim nor python: {command}")


def test_every_readme_command_is_planned():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert "ampsim demo" in commands and "python3 -m pytest -q" in commands  # the README's top, intact
    assert set(commands) == set(PLAN), (
        f"README commands without a plan: {sorted(set(commands) - set(PLAN))}; "
        f"planned but gone from the README: {sorted(set(PLAN) - set(commands))}")


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    target = tmp_path_factory.mktemp("readme") / "ampsim"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)], check=True,
                   capture_output=True)
    return target


def _run_plan(clone: Path, commands: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(clone), "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    for command in commands:
        how, what = PLAN[command]
        if how == SKIP:
            continue
        run = command if how == QUICK else what
        proc = subprocess.run(argv_of(run), cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{run!r} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr, f"{run!r}:\n{proc.stderr[-2000:]}"
        status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True,
                                check=True).stdout
        assert status == "", f"{run!r} left the clone changed:\n{status}"


def test_readme_quick_commands_on_a_fresh_clone(clone):
    commands = [c for c in readme_commands(README.read_text(encoding="utf-8")) if c not in SLOW]
    _run_plan(clone, commands)
    assert (clone / "demo_out" / "demo_timeline.png").stat().st_size > 0
    assert (clone / "timeline.png").stat().st_size > 0


@pytest.mark.slow
def test_readme_slow_commands_on_a_fresh_clone(clone):
    commands = [c for c in readme_commands(README.read_text(encoding="utf-8")) if c in SLOW]
    assert commands
    _run_plan(clone, commands)
    assert (clone / "runs" / "limits1" / "amp-rnn" / "seed0" / "result.json").exists()
    assert (clone / "runs" / "parity" / "amp-iter@uniform" / "seed3" / "result.json").exists()
    assert PUBLISHED_TABLES in commands  # re-rendered from the packed runs, identical (the clone stays clean)
