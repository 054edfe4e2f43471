"""Sphinx configuration: the ampsim documentation site.

Build (warnings are errors; the output folder is ignored by git)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Sources: the pages in ``docs/*.md`` (MyST Markdown), the notebooks in ``notebooks/`` with their
committed outputs (``docs/notebooks`` is a link to that folder; nothing is executed here) and an API
reference generated at build start from the package itself (:func:`write_api_pages`): one page per
public module, every name of its ``__all__`` (or, without one, every public function, class and
documented constant it defines) documented once, at the module that defines it, and re-exports
listed as links to that place. A module moved or renamed is found again on the next build; a name
whose docstring is broken fails the build.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import ampsim  # noqa: E402  (after the path is set)
from sphinx.pycode import ModuleAnalyzer  # noqa: E402
from sphinx.util import logging  # noqa: E402

LOGGER = logging.getLogger(__name__)

project = "ampsim"
author = "ampsim contributors"
copyright = "ampsim contributors, MIT licence"
release = version = ampsim.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
# the notebooks are committed with their outputs (python notebooks/build.py regenerates them)
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "api/_generated/README.md", "**/.ipynb_checkpoints"]
html_theme = "furo"
html_title = f"ampsim {release}"
html_static_path = ["_static"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
# the extras (torch_geometric, pyarrow, plotly, dask) are optional: their absence must not break a page
autodoc_mock_imports: list[str] = []

API = DOCS / "api"
SKIP_MODULES = {"ampsim.__main__"}


@functools.lru_cache(maxsize=None)
def public_modules() -> tuple[str, ...]:
    """Every public module of ampsim, sorted: each ``.py`` file under the package (namespace folders
    without ``__init__.py`` included), none with a part of its dotted name starting with ``_``."""
    pkg = Path(ampsim.__file__).resolve().parent
    names = []
    for path in pkg.rglob("*.py"):
        parts = ("ampsim",) + path.relative_to(pkg).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name in SKIP_MODULES or any(p.startswith("_") for p in parts):
            continue
        names.append(name)
    return tuple(sorted(names))


def home(obj: object) -> "str | None":
    """The dotted name of the place a function or class is defined (None for data, and for a function
    made inside another one, which has no importable place of its own)."""
    mod = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None)
    if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)) or not mod or not qual:
        return None
    if "<locals>" in qual:
        return None
    return f"{mod}.{qual}"


def defines(modname: str, name: str) -> bool:
    """Whether the module's own source assigns ``name`` at its top level."""
    mod = importlib.import_module(modname)
    source = Path(mod.__file__).read_text(encoding="utf-8")
    return re.search(rf"^{re.escape(name)}\s*(:[^=\n]*)?=", source, flags=re.M) is not None


def split_names(modname: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The names ``modname`` documents itself, and its re-exports as ``(name, home)`` pairs.

    A function or class lives where its ``__module__`` says; a constant where its value is assigned
    (the first public module, in name order, whose source assigns it, whose ``__all__`` names it and which
    holds the same object; else the module at hand)."""
    mod = importlib.import_module(modname)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items() if not n.startswith("_") and
                 (inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == modname]
    own, moved = [], []
    for name in names:
        if not hasattr(mod, name):
            LOGGER.warning("%s.__all__ names %r, which the module does not define", modname, name)
            continue
        obj = getattr(mod, name)
        where = home(obj)
        if inspect.ismodule(obj):  # a lazily loaded submodule that shadows the name it was to provide
            moved.append((name, obj.__name__))
            continue
        if where is None and not defines(modname, name):
            where = next((f"{other}.{name}" for other in public_modules() if other != modname and
                          getattr(importlib.import_module(other), name, None) is obj and defines(other, name)
                          and name in getattr(importlib.import_module(other), "__all__", ())),
                         None)
        if where is not None and where.rsplit(".", 1)[0] != modname and where.split(".")[0] == "ampsim":
            moved.append((name, where))
        else:
            own.append(name)
    return own, moved


def module_page(modname: str) -> str:
    """One API page: the module's docstring and own names (autodoc), then links to its re-exports."""
    mod = importlib.import_module(modname)
    own, moved = split_names(modname)
    defs = [n for n in own if home(getattr(mod, n)) is not None]
    lines = [f"# `{modname}`", "", "```{eval-rst}", f".. automodule:: {modname}"]
    lines += [f"   :members: {', '.join(defs)}", "   :undoc-members:"] if defs else ["   :no-members:"]
    notes = ModuleAnalyzer.for_module(modname).find_attr_docs()
    for name in own:
        if name in defs:
            continue
        value = getattr(mod, name)
        if callable(value):  # a function made by a factory: its own docstring says what it does
            lines += ["", f".. autofunction:: {modname}.{name}"]
            continue
        # a constant: its ``#:`` comment or the docstring after it (never the docstring of its type)
        lines += ["", f".. py:data:: {name}"]  # inside the automodule: the module is the current one
        text = repr(value)
        if len(text) <= 80:
            lines.append(f"   :value: {text}")
        lines.append("")
        lines += [f"   {line}" for line in notes.get(("", name), [])]
    lines += ["```", ""]
    if moved:
        lines += ["Also importable from here, documented where they are defined:", ""]
        lines += [f"- {{py:obj}}`{name} <{where}>`" for name, where in moved]
        lines.append("")
    return "\n".join(lines)


def write_api_pages(app=None) -> None:
    """Write ``docs/api/_generated/*.md`` (ignored by git) from the package; unchanged files stay untouched."""
    out = API / "_generated"
    out.mkdir(parents=True, exist_ok=True)
    mods = public_modules()
    wanted = {f"{m}.md": module_page(m) for m in mods}
    wanted["index.md"] = "\n".join(["# Modules", "", "```{toctree}", ":maxdepth: 1", "",
                                    *[m for m in mods], "```", ""])
    for old in out.glob("*.md"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", write_api_pages)
    return {"parallel_read_safe": True}
