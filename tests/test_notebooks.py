"""Every notebook in notebooks/ executes top to bottom (nbclient, kernel python3, 300 s per cell)."""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits it: no display needed
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        failing = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and
                   any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        where = f"cell {failing[0]}" if failing else "a cell"
        pytest.fail(f"{path.name}: {where} failed:\n{exc}", pytrace=False)
