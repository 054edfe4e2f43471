"""Execute every notebook in ``notebooks/`` and commit its outputs in place: ``python notebooks/build.py``.

Each notebook runs top to bottom in a fresh ``python3`` kernel (nbclient), from ``notebooks/`` as the
working directory, in name order; a cell that raises stops the build with that notebook unchanged.
Pictures are PNG at :data:`DPI` dots per inch (the inline backend; ``MPLBACKEND`` is not passed on),
so the notebooks stay small enough to read on the web and in the documentation site
(``docs/notebooks`` links here; the site shows the committed outputs and executes nothing).

What would make a rebuild differ without a change of content is left out: no per-cell execution
timings, no kernel start time, no widget state, and the random element ids of an HTML output are
numbered in order of appearance; the execution counts run 1, 2, ... in cell order. (What a cell
prints stays as printed: a measured wall time differs from build to build, on one line.)
The file is written through ampsim's one atomic writer (:func:`ampsim.fileio.write_text`), so an
interrupted build never leaves half a notebook. ``--check`` executes without writing (what the
test suite does).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: the resolution of every committed picture (matplotlib's inline default is 100)
DPI = 60
#: the longest one cell may run (the training notebook's fit is the longest, well under a minute)
CELL_TIMEOUT_S = 300
#: metadata keys removed from every cell (nbclient's timings, collapse and scroll state of an editor)
VOLATILE_CELL_KEYS = ("execution", "collapsed", "scrolled", "ExecuteTime")
#: metadata keys removed from the notebook (editor widget state)
VOLATILE_NB_KEYS = ("widgets",)
#: a random element id (``uuid4().hex``: matplotlib's HTML animation names its elements so)
RANDOM_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def notebooks() -> list[Path]:
    """The notebooks this script builds, in the order it builds them (by name)."""
    return sorted(HERE.glob("*.ipynb"))


def kernel_env() -> dict[str, str]:
    """The kernel's environment: this one, with ampsim importable from the checkout and no ``MPLBACKEND``
    (the inline backend then captures each figure as a PNG)."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONHASHSEED"] = "0"
    return env


def execute(path: Path, inline: bool = True) -> Any:
    """Run ``path`` in a fresh kernel and return the executed notebook (nothing is written).

    ``inline=False`` keeps the caller's ``MPLBACKEND`` (no pictures are captured: faster, for a
    check that only asks whether every cell runs)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    args = [f"--InlineBackend.rc={{'figure.dpi': {DPI}}}"]
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False, extra_arguments=args,
        resources={"metadata": {"path": str(path.parent)}},
    )
    env = kernel_env() if inline else {**os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    client.execute(env=env)
    return nb


def clean(nb: Any) -> Any:
    """Drop what changes from one build to the next without a change of content (in place)."""
    ids: dict[str, str] = {}

    def stable(match: "re.Match[str]") -> str:
        return ids.setdefault(match.group(0), f"{len(ids) + 1:032x}")

    for key in VOLATILE_NB_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
                html = out.get("data", {}).get("text/html")
                if html is not None:
                    text = html if isinstance(html, str) else "".join(html)
                    out["data"]["text/html"] = RANDOM_ID.sub(stable, text)
    return nb


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook file names (default: all, in name order)")
    parser.add_argument("--check", action="store_true", help="execute only; write nothing")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import nbformat

    from ampsim.fileio import write_text

    paths = [HERE / n for n in args.names] if args.names else notebooks()
    total = 0.0
    for path in paths:
        t0 = time.perf_counter()
        nb = clean(execute(path))
        took = time.perf_counter() - t0
        total += took
        if not args.check:
            write_text(path, nbformat.writes(nb) + "\n")
        print(f"{path.name}: {took:.1f} s, {path.stat().st_size / 1024:.0f} KiB", flush=True)
    print(f"{len(paths)} notebooks in {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
