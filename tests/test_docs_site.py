"""The documentation site builds with warnings as errors, and its API reference has every public name.

The build is the documented one (``python -m sphinx -W --keep-going -b html docs docs/_build/html``,
docs/site.md), into a temporary folder: a broken link between pages, a reference to a missing name,
a docstring that is not valid reStructuredText, or a notebook output the site cannot show fails it.
Then the site's inventory (``objects.inv``) must hold every name of ``ampsim.__all__`` and of each
public module's ``__all__``, at the module that defines it.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _conf():
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inventory(path: Path) -> set[str]:
    """The object names of a Sphinx ``objects.inv`` (version 2: four header lines, then zlib text)."""
    raw = path.read_bytes()
    header, _, body = raw.partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2"), header[:60]
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode("utf-8").splitlines() if line}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    pytest.importorskip("furo")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"),
         str(DOCS), str(out / "html")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"the site does not build cleanly:\n{proc.stderr[-6000:]}"
    return out / "html"


@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(site: Path):
    for page in ("index", "design", "overview", "site", "api/_generated/ampsim", "api/_generated/index"):
        assert (site / f"{page}.html").stat().st_size > 0, page
    notebooks = sorted(p.name for p in (site / "notebooks").glob("*.html"))
    assert notebooks == [p.with_suffix(".html").name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    first = (site / "notebooks" / "01_step_through.html").read_text(encoding="utf-8")
    assert "data:image/png" in first or "_images/" in first  # the committed pictures are shown


@pytest.mark.slow
def test_api_reference_has_every_public_name(site: Path):
    names = _inventory(site / "objects.inv")
    conf = _conf()
    missing = []
    for modname in conf.public_modules():
        assert modname in names, f"no API page for {modname}"
        own, moved = conf.split_names(modname)
        missing += [f"{modname}.{n}" for n in own if f"{modname}.{n}" not in names]
        missing += [f"{modname}.{n} -> {where}" for n, where in moved if where not in names]
    assert not missing, f"public names without an entry in the API reference: {missing}"
    import ampsim
    assert {"ampsim.Simulation", "ampsim.engine.simulation.Simulation"} & names
    assert len(ampsim.__all__) > 40
