"""Argument types and shared flags of every ``ampsim`` command: one parser per kind of value.

Rule: a flag's text is converted and checked here, at parse time, by the checkers of
:mod:`ampsim.validate` (the one validation layer); a bad value is argparse's usage error
(one line, exit 2) that names the flag and repeats the text. A value that selects
nothing (an empty list, a reversed range ``5-2``) is refused, never replaced by a default.
"""
from __future__ import annotations

import argparse
from typing import Callable, Optional

from .. import validate as V
from ..sweeps import MAX_WORKERS

__all__ = ["checked", "whole", "positive", "width", "MAX_WIDTH", "nonneg", "positive_real", "learning_rate", "processes", "MAX_PROCESSES", "megabytes", "int_ranges", "index_list",
           "file_name", "file_or_stdout", "names", "add_threads", "add_workers", "announce_runs", "output_folder", "input_folder"]


checked = V.flag_type
"""An argparse ``type``: ``convert(text)`` then a :mod:`ampsim.validate` check (:func:`ampsim.validate.flag_type`)."""


def whole(lo: Optional[int] = None, hi: Optional[int] = None) -> Callable[[str], int]:
    """An integer in ``[lo, hi]`` (:func:`ampsim.validate.whole_flag`)."""
    return V.whole_flag(lo, hi)


positive = whole(1)
nonneg = whole(0)
MAX_WIDTH = 4096
"""Model widths (``--hidden``, ``--msg-size``, ``--heads``) are at most this (the protocols use 3-64): a weight
matrix of 4096 x 4096 float32 is 67 MB; a mistyped 100000000 is refused at parse time, never allocated."""
width = checked(int, lambda v: V.integer("value", v, 1, MAX_WIDTH), "a whole number",
                f"a whole number in 1..{MAX_WIDTH}")
learning_rate = checked(float, lambda v: V.positive_float("value", v), "a number > 0", "a finite number > 0")
MAX_PROCESSES = MAX_WORKERS
"""``--workers`` / ``--nproc`` start at most this many processes."""
processes = whole(1, MAX_PROCESSES)
positive_real = checked(float, lambda v: V.positive_float("value", v, allow_inf=True), "a number > 0")
megabytes = checked(float, lambda v: V.nonneg_float("value", v), "a size in MB", "a size in MB >= 0 (0: no limit)")


def int_ranges(text: str) -> list[int]:
    """``0-9``, ``0,3,5`` or both (``0-2,7``) as the list of ints, in order; ``ValueError`` for anything
    else, a reversed range (``5-2``) included: it selects nothing. The one parser of ``--seeds``/``--folds``."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part.lstrip("-"):
            a, b = part.split("-")
            lo, hi = int(a), int(b)
            if hi < lo:
                raise ValueError(f"reversed range {part!r}")
            out += range(lo, hi + 1)
        elif part:
            out.append(int(part))
    return out


def index_list(what: str, hi: Optional[int] = None, limit: Optional[int] = None):
    """``--seeds 0-9`` / ``--folds 0,3``: distinct ints ``>= 0`` (``<= hi``), at least one, at most ``limit``."""
    example = "0-9 or 0,3,5"

    def parse(text: str) -> list[int]:
        try:
            out = int_ranges(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} like {example}, got {text!r}") from None
        if not out:
            raise argparse.ArgumentTypeError(f"expected at least one of the {what}, got {text!r}")
        if limit is not None and len(out) > limit:
            raise argparse.ArgumentTypeError(f"{text!r} names {len(out):,} {what}; at most {limit:,}")
        bad = [v for v in out if v < 0 or (hi is not None and v > hi)]
        if bad:
            rng = f"0..{hi}" if hi is not None else ">= 0"
            raise argparse.ArgumentTypeError(f"expected {what} in {rng}, got {text!r}")
        if len(set(out)) != len(out):
            raise argparse.ArgumentTypeError(f"expected distinct {what}, got {text!r}")
        return out
    return parse


def file_name(text: str) -> str:
    """A file to write: not empty, not ``-``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty one")
    if text == "-":
        raise argparse.ArgumentTypeError("expected a file name; - (standard output) only works for ampsim export "
                                         "--format shiviz")
    return text


def file_or_stdout(text: str) -> str:
    return text if text == "-" else file_name(text)


def names(what: str, choices: Optional[tuple] = None):
    """A comma-separated list of names (``--tasks limits1,lcc``): at least one, each known when ``choices``."""
    def parse(text: str) -> list[str]:
        out = [t.strip() for t in text.split(",")]
        if not text.strip() or not all(out):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        if choices is not None:
            for name in out:
                if name not in choices:
                    raise argparse.ArgumentTypeError(f"unknown {what[:-1] if what.endswith('s') else what} "
                                                     f"{name!r}; choose from {', '.join(choices)}")
        return out
    return parse


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive, default=1, help="torch threads per process (default 1)")


def add_workers(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--workers", type=processes, default=1,
                        help=f"processes that share the {what}, largest first (default 1; e.g. the cores)")


SECONDS_PER_EPOCH = (0.005, 2.0)
"""One core's seconds per epoch of one synthetic-task run (Tables 2 and 3, Figure 6, the gate, ``ampsim train``),
low and high: the batched executor on Limits1 to the engine on the larger tasks (results/cost_batched.json,
results/cost_engine.json); the estimate of their plan lines."""


def announce_runs(count: int, what: str, workers: int, epochs: int, seconds_per_epoch: tuple[float, float],
                  setup: tuple[float, float] = (1.0, 10.0)) -> None:
    """State a training command's plan before its first run: ``count`` runs (``what``) of ``epochs`` epochs, with a
    time estimate of one core's ``seconds_per_epoch`` (low, high) plus ``setup`` (loading, evaluating) per run:
    the line of :func:`ampsim.sweeps.announce_cases`, the one plan format of every sweep command. One run that
    takes at most a minute is not announced."""
    from ..sweeps import announce_cases

    per_run = tuple(epochs * t + s for t, s in zip(seconds_per_epoch, setup))
    if count == 1 and per_run[1] <= 60:  # one short run: nothing worth a plan line
        return
    announce_cases(count, f"{what}, {epochs:,} epochs each", workers, per_run, limit=None, unit="runs")


def output_folder(path: str, create: bool = True) -> str:
    """The folder a command writes into, checked before any work: a path that is a file, a FIFO or a device
    is refused (``FileExistsError``, one line naming it), never found out after the training. ``create``: make
    it now; else only check (a sweep that may still be refused leaves nothing behind)."""
    from ..sweeps import check_folder

    check_folder(path)
    if create:
        import os

        os.makedirs(path, exist_ok=True)
    return path


def input_folder(flag: str, path: str) -> str:
    """A folder a command reads: ``FileNotFoundError`` / ``NotADirectoryError`` naming ``flag`` and ``path``."""
    import errno
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), f"{flag} {path}")
    if not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), f"{flag} {path}")
    return path
