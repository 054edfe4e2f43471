"""Every ``python -m ampsim...`` entry point, run as a user runs it (a real process): one bad argument is one line
on stderr naming it (exit 2), ``--help`` exits 0. The entry points are found in the source (each module with an
``if __name__ == "__main__":`` block, plus ``python -m ampsim``), so a new one without a case here fails."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import ROOT, run_bounded  # noqa: E402

#: module -> (a bad command line, the words its one line must hold)
CASES = {
    "ampsim": (["verify", "ids", "--graph", "star:3", "--seeds", "0"], "ampsim verify ids: error: argument --seeds"),
    "ampsim.protocols.verify_ids": (["stars", "--seeds", "0"], "ampsim ids stars: error: argument --seeds"),
    "ampsim.runpack": (["pack", "--select"], "ampsim runs pack: error: argument --select"),
    "ampsim.theory.delays_training": (["gradients", "--draws", "0"], "ampsim delays gradients: error: argument --draws"),
    "ampsim.theory.reaction_demo": (["--graphs", "0"], "ampsim reaction: error: argument --graphs"),
    "ampsim.train.figure4": (["--seeds", "0"], "ampsim figure4: error: argument --seeds"),
    "ampsim.train.graph_classification": (["--epochs", "0"], "ampsim table4 run: error: argument --epochs"),
    "ampsim.train.node_classification": (["--hidden", "0"], "ampsim nodes run: error: argument --hidden"),
    "ampsim.train.tables": (["run2", "--seeds", "5-2"], "ampsim table2 run: error: argument --seeds"),
}
TIMEOUT = 120.0
"""Per process: torch's import alone takes seconds on a loaded machine."""


def alias_modules() -> set[str]:
    """The modules of ``ampsim`` that run as programs: ``if __name__ == "__main__":`` in their source."""
    package = ROOT / "ampsim"
    found = {"ampsim"}  # ampsim/__main__.py: `python -m ampsim`
    for path in package.rglob("*.py"):
        if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_alias_has_a_case():
    assert alias_modules() == set(CASES)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Each module with its bad command line and with ``--help``, a few processes at a time."""
    folder = tmp_path_factory.mktemp("aliases")
    jobs = [(m, tuple(argv)) for m, (argv, _) in CASES.items()] + [(m, ("--help",)) for m in CASES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(lambda job: run_bounded(list(job[1]), Path(folder), timeout=TIMEOUT, module=job[0]), jobs)
        return dict(zip(jobs, done))


@pytest.mark.parametrize("module", sorted(CASES))
def test_a_bad_argument_is_one_line_and_exit_2(module, outcomes):
    argv, words = CASES[module]
    out = outcomes[(module, tuple(argv))]
    assert out.rc == 2 and out.kind() == "one line", (out.rc, out.stderr)
    assert out.lines[0].startswith(words) and out.stdout == "", out.stderr


@pytest.mark.parametrize("module", sorted(CASES))
def test_help_exits_0(module, outcomes):
    out = outcomes[(module, ("--help",))]
    assert out.rc == 0 and out.stdout.startswith("usage: ampsim") and out.stderr == "", (out.rc, out.stderr)
