"""Packed runs: a folder of per-seed / per-fold run files as one gzipped JSON Lines file, and back.

A published table is recomputed from its runs. Rather than hundreds of small files, ``results/``
keeps one pack per table (``results/table4_runs.jsonl.gz``, ...): one line per file of the run
folder, sorted by path,

* ``{"path": "MUTAG/h16_m15_skip/fold0.json", "json": {...}}`` for a JSON file (the parsed object:
  config, metrics and curves as in the run file), or
* ``{"path": "lcc/amp-rnn/seed0/checkpoint.pt", "base64": "..."}`` for any other file (its bytes).

The file is gzip-compressed with a zero timestamp, so the same runs always give the same bytes
(``zcat results/table4_runs.jsonl.gz | head -1`` shows a line). Readers never parse a pack
themselves: :func:`folder` turns a run root -- a folder, or one or more packs separated by commas
-- into a folder with the files restored (once per process, in a temporary folder removed at
exit), and every renderer reads that folder exactly as it reads a fresh run's folder; a path
through a pack (``results/table3_runs.jsonl.gz/parity/amp-iter/seed0``) names one run in it. JSON
files come back as compact JSON with the same content; other files byte for byte.

    ampsim runs pack runs/table4_runs results/table4_runs.jsonl.gz
    ampsim runs unpack results/table4_runs.jsonl.gz runs/table4_unpacked
"""
from __future__ import annotations

import atexit
import base64
import fnmatch
import gzip
import zlib
import json
import os
import shutil
import sys
import tempfile
from typing import Iterable, Iterator, Optional, Sequence

from .fileio import atomic_write

__all__ = ["SUFFIX", "CHECKOUT", "is_pack", "pack", "read_pack", "unpack", "folder", "published"]

#: How a pack's name ends.
SUFFIX = ".jsonl.gz"

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The folder that holds the ``ampsim`` package: in a checkout, the repository root, whose ``results/`` holds the
published packs."""

_unpacked: dict[tuple[str, ...], str] = {}  # packs (absolute paths) -> their folder in this process


def is_pack(spec: str) -> bool:
    """Whether ``spec`` names packs (one, or several separated by commas) rather than a folder."""
    return all(part.endswith(SUFFIX) for part in str(spec).split(","))


def _files(root: str, select: Optional[Sequence[str]]) -> Iterator[str]:
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(base, name), root).replace(os.sep, "/")
            if name.startswith(".") or ".partial" in name:
                continue
            if select is None or any(fnmatch.fnmatchcase(rel, pattern) for pattern in select):
                yield rel


def pack(root: str, out: str, select: Optional[Sequence[str]] = None) -> int:
    """Write the files under ``root`` (those whose relative path matches a glob of ``select``, all
    when None) to the pack ``out``; returns the number of files. Raises ``ValueError`` when
    ``root`` is not a folder, ``out`` does not end in ``.jsonl.gz`` or nothing matches."""
    if not os.path.isdir(root):
        raise ValueError(f"{root}: not a folder of runs")
    if not out.endswith(SUFFIX):
        raise ValueError(f"{out}: a pack's name ends in {SUFFIX}")
    lines = []
    for rel in sorted(_files(root, select)):
        path = os.path.join(root, rel)
        if rel.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                entry = {"path": rel, "json": json.load(f)}
        else:
            with open(path, "rb") as f:
                entry = {"path": rel, "base64": base64.b64encode(f.read()).decode("ascii")}
        lines.append(json.dumps(entry, separators=(",", ":"), allow_nan=False))
    if not lines:
        raise ValueError(f"{root}: no run files{' matching ' + ', '.join(select) if select else ''}")
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9, mtime=0)
    parent = os.path.dirname(out)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with atomic_write(out, "wb", encoding=None) as f:
        f.write(data)
    return len(lines)


def read_pack(path: str) -> Iterator[dict]:
    """The entries of the pack ``path``, in order (``{"path", "json"}`` or ``{"path", "base64"}``)."""
    from .validate import not_a_file

    if not_a_file(path):
        raise ValueError(f"{path}: is {not_a_file(path)}, not a pack")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such pack")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file, not a pack (a .jsonl.gz of ampsim runs pack)")
    number = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                entry = json.loads(line)
                rel = entry.get("path", "") if isinstance(entry, dict) else ""
                if not rel or rel.startswith("/") or ".." in rel.split("/") or ("json" in entry) == ("base64" in entry):
                    raise ValueError(f"{path}:{number}: not a pack entry")
                yield entry
    except (gzip.BadGzipFile, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"{path}:{number + 1}" if number else path
        raise ValueError(f"{where}: not a pack (a .jsonl.gz of ampsim runs pack): {exc}") from None


def unpack(packs: Iterable[str], to: str) -> int:
    """Restore the files of ``packs`` under the folder ``to``; returns the number of files.
    Two packs holding the same path raise ``ValueError``."""
    seen: set[str] = set()
    entries = []
    for p in packs:  # every pack read and checked before the first file is written
        for entry in read_pack(p):
            rel = entry["path"]
            if rel in seen:
                raise ValueError(f"{p}: {rel} is in another pack too")
            seen.add(rel)
            entries.append(entry)
    for entry in entries:
        path = os.path.join(to, *entry["path"].split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if "json" in entry:
            with atomic_write(path) as f:
                f.write(json.dumps(entry["json"], allow_nan=False) + "\n")
        else:
            with atomic_write(path, "wb", encoding=None) as f:
                f.write(base64.b64decode(entry["base64"]))
    return len(seen)


def published(spec: str) -> str:
    """``spec`` -- a path of the published runs as the repository names it (``results/table3_runs.jsonl.gz``,
    several separated by commas, or a path through a pack) -- under :data:`CHECKOUT`, so a command that reads
    them by default works from any current folder. A path a user gives is read as given, relative to the
    current folder; a missing pack is refused by :func:`folder`, naming the file."""
    return ",".join(os.path.join(CHECKOUT, part) for part in os.fspath(spec).split(","))


def folder(spec: str) -> str:
    """A folder holding the runs of ``spec``: ``spec`` itself when it is a folder; for packs
    (``a.jsonl.gz`` or ``a.jsonl.gz,b.jsonl.gz``) a temporary folder with their files, unpacked
    once per process and removed when it ends; a folder or pack that does not exist is refused
    (FileNotFoundError naming it). A path inside one pack
    (``results/table3_runs.jsonl.gz/parity/amp-iter/seed0``) gives that path in its folder."""
    spec = os.fspath(spec)
    inner = ""
    if not is_pack(spec) and "," not in spec:
        head, sep, tail = spec.partition(SUFFIX + "/")
        if sep:
            spec, inner = head + SUFFIX, tail
    if not is_pack(spec):
        if not os.path.isdir(spec):  # a reader given a path that holds no runs: say so, never an empty table
            raise FileNotFoundError(f"{spec}: no such folder of runs" if not os.path.exists(spec)
                                    else f"{spec}: not a folder of runs (nor a {SUFFIX} pack)")
        return spec
    key = tuple(os.path.abspath(p) for p in spec.split(","))
    if key not in _unpacked:
        tmp = tempfile.mkdtemp(prefix="ampsim-runs-")
        atexit.register(shutil.rmtree, tmp, True)
        try:
            unpack(key, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _unpacked[key] = tmp
    return os.path.join(_unpacked[key], *inner.split("/")) if inner else _unpacked[key]


if __name__ == "__main__":  # `python -m ampsim.runpack pack|unpack`: alias of `ampsim runs pack|unpack` (the CLI)
    from ampsim.cli import alias

    sys.exit(alias(["runs"]))
