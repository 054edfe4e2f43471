"""The notebooks in notebooks/: each executes top to bottom, and each is committed with its outputs.

* Every notebook runs in a fresh ``python3`` kernel exactly as ``python notebooks/build.py`` runs it
  (nbclient, 300 s per cell, from ``notebooks/``; nothing is written: the checkout stays as it is), and
  every code cell gives the same kinds of output as the committed copy shows (text, picture, HTML), so
  a notebook edited without a rebuild fails here with the command that fixes it.
* The committed copies (what a reader on the web and the documentation site see) have their outputs:
  every code cell ran, in order, without an error; a cell that prints shows it; a notebook that plots
  shows at least one PNG; no build timings; all of them together under :data:`MAX_TOTAL_BYTES`.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(HERE.glob("*.ipynb"))
#: the committed notebooks together (pictures at build.DPI): small enough to read on the web
MAX_TOTAL_BYTES = 2_000_000
REBUILD = "python notebooks/build.py"


def _build():
    spec = importlib.util.spec_from_file_location("notebooks_build", HERE / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kinds(cell) -> set[str]:
    """What a code cell shows: ``stream:stdout``/``stream:stderr``, ``error``, and each mime type."""
    kinds = set()
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            kinds.add(f"stream:{out['name']}")
        elif out["output_type"] == "error":
            kinds.add("error")
        else:
            kinds.update(out.get("data", {}))
    return kinds


def test_the_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_step_through.ipynb", "02_synchronizer.ipynb", "03_id_assignment.ipynb", "04_training.ipynb",
        "05_learned_dynamics.ipynb", "06_node_classification.ipynb"]
    assert [p.name for p in _build().notebooks()] == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_as_committed(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    try:
        executed = _build().execute(path)
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    committed = nbformat.read(path, as_version=4)
    assert [c.source for c in executed.cells] == [c.source for c in committed.cells]
    for i, (new, old) in enumerate(zip(executed.cells, committed.cells)):
        if new.cell_type == "code":
            assert _kinds(new) == _kinds(old), (
                f"{path.name} cell {i}: it shows {sorted(_kinds(new))} when run, the committed copy "
                f"{sorted(_kinds(old))}: run `{REBUILD} {path.name}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_has_its_outputs(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{path.name}: run `{REBUILD}`"
    pictures = 0
    for i, cell in enumerate(code):
        kinds = _kinds(cell)
        assert "error" not in kinds, f"{path.name}: code cell {i} is committed with an error"
        assert "execution" not in cell.metadata, f"{path.name}: build timings committed; run `{REBUILD}`"
        if re.search(r"^\s*print\(", cell.source, flags=re.M):
            assert "stream:stdout" in kinds, f"{path.name}: code cell {i} prints, the committed copy shows nothing"
        pictures += sum(1 for o in cell.outputs if "image/png" in o.get("data", {}))
    if re.search(r"\bplot_\w+\(|\bplt\.", "".join(c.source for c in code)):
        assert pictures >= 1, f"{path.name} plots, but no picture is committed: run `{REBUILD}`"


def test_committed_notebooks_are_small():
    total = sum(p.stat().st_size for p in NOTEBOOKS)
    assert 0 < total < MAX_TOTAL_BYTES, f"notebooks take {total} bytes"
