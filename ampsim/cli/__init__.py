"""The ``ampsim`` command line: every user command is a subcommand, with one error path (argparse).

Rules of the command line:

* One tree: ``ampsim <command> [<action>] --flags`` (:data:`COMMANDS`, one line each in
  ``ampsim --help``). A command lives in one module of this package, which parses and
  prints; the work is done by the library (``protocols``, ``train``, ``theory``, ``trace``).
  The older ``python -m ampsim.train.tables`` style entry points are aliases that call
  :func:`alias`, i.e. this parser and this error path.
* Bad input exits with status 2 and one line on stderr naming the user's input
  (a file, a flag); hints name CLI flags, never Python keyword arguments. A check that
  fails (a replay mismatch, a verification case) exits 1.
* Work is stated before it is done: a sweep prints its plan (cases or runs and a time estimate,
  :func:`ampsim.sweeps.announce_cases`) once its inputs are checked, or refuses above ``--max-cases``;
  sizes that allocate (widths, pixels, trace records) are bounded by flags with the limit in their help;
  an allocation that still fails is one line (exit 2). Output folders are checked before the plan line.
* One way to end on a signal (:func:`main`): Ctrl-C prints one line and exits 130,
  SIGTERM (SIGHUP) exits 128 + the signal number (143); on every path the files being
  written are removed, nothing half-written is left (:mod:`ampsim.fileio`), and the
  processes a command started end with it.
* Start-up is light: only the chosen command's module is imported (and torch with it
  when it trains); ``ampsim --help`` and ``ampsim run`` never import torch. Each command
  module exposes ``configure(name, parser, words)`` (``words``: the rest of the command line's
  words, to configure only the action chosen), which adds the flags and sets ``func``.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import NoReturn, Optional, Sequence

from .simulate import CLI_BUDGET, CLI_BUDGET_PER_EDGE, MAX_TRACE_MB, default_budget

__all__ = ["main", "alias", "build_parser", "COMMANDS", "CLI_BUDGET", "CLI_BUDGET_PER_EDGE", "default_budget",
           "MAX_TRACE_MB"]

COMMANDS: tuple[tuple[str, str, str], ...] = (
    # (command, module of ampsim.cli, the one line of ``ampsim --help``)
    ("run", "simulate", "simulate a rule on a graph, optionally writing a trace"),
    ("demo", "simulate", "the main demo: simulate, trace, replay, plot"),
    ("replay", "simulate", "rerun a trace with its recorded delays"),
    ("plot", "simulate", "draw a trace's space-time diagram (-o x.html: interactive)"),
    ("export", "simulate", "convert a trace for other tools (ShiViz) or to another trace format"),
    ("verify", "verify", "check the paper's theory by execution: synchronizer | ids | separation"),
    ("ids", "verify", "the unique-ID measurements of results/ids: stars | graphs"),
    ("train", "train", "train one learned AMP model on one task"),
    ("table2", "tables", "Table 2, AMP-RNN on the 8 tasks: run | render | pack | cost | compare"),
    ("table3", "tables", "Table 3, shortest-path parity, 5 cells: run | render | pack"),
    ("figure6", "tables", "Figure 6, three parity problems at once: run | render | pack"),
    ("gate", "tables", "learned emission gate vs always emit: run | render | pack"),
    ("table4", "table4", "Table 4, graph classification on TU data sets: run | render"),
    ("nodes", "nodes", "node classification on Cora / CiteSeer, AMP and GCN: run | render | pubmed"),
    ("figure4", "theory", "Figure 4 by execution: which starts random cells separate"),
    ("delays", "theory", "random vs constant delays in training: run | gradients | summarize"),
    ("reaction", "theory", "Figure 3's relays and AMP-Iter's halting drops, with pictures"),
    ("runs", "runs", "a folder of run files as one .jsonl.gz pack, and back: pack | unpack"),
)

_ERRNO_TEXT = {
    errno.ENOENT: "not found",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EACCES: "permission denied",
    errno.EEXIST: "already exists",
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}

# API advice -> the CLI flag that does the same (messages name CLI flags, not keyword arguments)
CLI_HINTS = (
    ("pass allow_isolated=True to simulate anyway", "add --allow-isolated to simulate anyway"),
    ("pass resume=True (--resume) to continue it", "add --resume to continue it"),
    ("pass resume=True (--resume)", "add --resume"),
    ("resume=True", "--resume"),
    ("allow_isolated=True", "--allow-isolated"),
    ("raise it with max_edges= (CLI: --max-edges)", "raise it with --max-edges"),
    ("or use another output folder", "or give another --out"),
    ("with max_messages= (CLI: --max-messages)", "with --max-messages"),
    ("with max_mb=0 (CLI: --max-html-mb 0)", "with --max-html-mb 0"),
)


# API advice with a value in it -> the CLI flag (regular expression, replacement)
CLI_HINT_PATTERNS = (
    (r"max_records= \(now (\d+)\)", r"--max-records (now \1; 0: no limit)"),
)


# ------------------------------------------------------------------ parser
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``ampsim run: error: <what> (see ampsim run --help)`` (exit 2)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """As argparse's, but a flag no command knows is reported by the command that was given
        (``ampsim table2 run: error: unrecognized arguments: --sets x (see ampsim table2 run --help)``)."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            words = [w for w in (getattr(parsed, "command", None), getattr(parsed, "action", None)) if w]
            prog = " ".join([self.prog, *words])
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see {prog} --help)\n")
        return parsed


class _Help(argparse.RawDescriptionHelpFormatter):
    """``ampsim --help``: one line per command, no wrapping of the command list."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=14, width=110)


def _words(argv: Sequence[str]) -> list[str]:
    """The words of ``argv`` that are not flags: the command first, then its action (if any)."""
    return [a for a in argv if not a.startswith("-")]


def _missing(module: str) -> int:
    print(f"ampsim: error: {module} is not available in this build", file=sys.stderr)
    return 2


def _attach(name: str, parser: argparse.ArgumentParser, module: str, words: Sequence[str]) -> None:
    """Configure ``parser`` for command ``name`` from ``module`` (imported now: it is the command being run)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        parser.set_defaults(func=lambda a: _missing(module))
        return
    mod.configure(name, parser, words)


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The ``ampsim`` parser; only the command that ``argv`` chooses is configured (its module imported)."""
    words = _words(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="ampsim", formatter_class=_Help,
                     description="Asynchronous Message Passing (AMP, arXiv 2205.12245) on SimPy: simulate, "
                                 "trace, verify, train.",
                     epilog="ampsim COMMAND --help shows a command's flags. Exit status: 0 done, 1 a check failed, "
                            "2 bad input, 130 Ctrl-C, 143 SIGTERM.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, text in COMMANDS:
        p = sub.add_parser(name, help=text, description=text)
        if words and name == words[0]:
            _attach(name, p, f"{__name__}.{module}", words[1:])
    return parser


# ------------------------------------------------------------------ errors and signals
def _one_line(text: str) -> str:
    import re

    text = " ".join(str(text).split())
    for api, flag in CLI_HINTS:
        text = text.replace(api, flag)
    for api, flag in CLI_HINT_PATTERNS:
        text = re.sub(api, flag, text)
    return text


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.errno is not None:
        what = _ERRNO_TEXT.get(exc.errno, (exc.strerror or "").lower())
        if exc.errno == errno.EEXIST and os.path.lexists(exc.filename) and not os.path.isdir(exc.filename):
            from ..validate import not_a_file

            kind = not_a_file(exc.filename)  # a FIFO, a device, a socket; None for a regular file
            what = f"is {kind}, not a folder" if kind else "is a file, not a folder"
        return f"{exc.filename}: {what}"
    return str(exc)


def _is_allocation_failure(exc: BaseException) -> bool:
    text = str(exc)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _allocation(exc: BaseException) -> str:
    """``tried to allocate 6.4 GB`` from torch's message, else ``an allocation failed``."""
    import re

    from ..validate import fmt_bytes

    found = re.search(r"allocate (\d+) bytes", str(exc))
    return f"tried to allocate {fmt_bytes(int(found.group(1)))}" if found else "an allocation failed"


def _error(text: str) -> None:
    print(f"ampsim: {_one_line(text)}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv``, run the command, and turn every failure and signal into one line and an exit status.

    0 done; 1 a check failed (replay mismatch, a verification case); 2 bad input (a flag, a file,
    a data set); 130 Ctrl-C; 128 + N signal N (143: SIGTERM). No traceback for any of these.
    """
    from ..fileio import SignalExit, on_signal_exit

    with on_signal_exit():
        try:
            from ..engine.errors import AmpsimError, ReplayMismatch

            args = build_parser(argv).parse_args(argv)
            try:
                return int(args.func(args) or 0)
            except ReplayMismatch as exc:
                _error(f"replay mismatch: {exc}")
                return 1
            except BrokenPipeError:  # `ampsim run ... | head`: the reader went away
                with open(os.devnull, "w") as devnull:
                    os.dup2(devnull.fileno(), sys.stdout.fileno())
                return 141
            except UnicodeDecodeError as exc:
                source = getattr(args, "trace", None) or getattr(args, "graph", None) or "input"
                _error(f"error: {source}: not a text file (undecodable byte at position {exc.start})")
                return 2
            except OSError as exc:
                _error(f"error: {_os_error(exc)}")
                return 2
            except (AmpsimError, ValueError) as exc:
                _error(f"error: {exc}")
                return 2
            except MemoryError:
                _error("error: out of memory (a size given is too large for this machine); lower it")
                return 2
            except RuntimeError as exc:  # torch reports a failed allocation as a RuntimeError
                if not _is_allocation_failure(exc):
                    raise
                _error(f"error: out of memory ({_allocation(exc)}; a size given is too large for this machine); "
                       "lower it")
                return 2
        except KeyboardInterrupt:
            _error("interrupted (Ctrl-C); no partial files left")
            return 130
        except SignalExit as exc:
            _error(f"terminated by {exc.name}; no partial files left")
            return int(exc.code)


def alias(command: Sequence[str], argv: Optional[Sequence[str]] = None,
          actions: Optional[dict] = None) -> int:
    """A ``python -m ampsim.…`` entry point: ``ampsim <command> <argv>`` through :func:`main`.

    ``actions`` renames the entry point's first word to the ``ampsim`` words that do the same
    (``{"run2": ["table2", "run"]}``); without a match the words of ``command`` go first."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if actions and first is not None and argv[first] in actions:
        return main(list(actions[argv[first]]) + argv[:first] + argv[first + 1:])
    return main(list(command) + argv)
