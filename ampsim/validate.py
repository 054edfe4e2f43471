"""One validation layer for public entry points: small typed checkers, one error class.

Rule: every argument a user passes to a public entry point (``Simulation``, ``run``,
graph input, delay models, features, loaders, the batched executor, the data
loaders) is checked here, by type and by range, before anything is built or
written. A bad value raises :class:`~ampsim.engine.errors.ArgumentError` (an
``AmpsimError`` that is also a ``ValueError`` and a ``TypeError``) whose message
names the argument and repeats the user's value::

    >>> positive_int("max_deliveries", 2.0)
    Traceback (most recent call last):
    ArgumentError: max_deliveries must be an integer >= 1, got 2.0 (float)

Types are strict: an int is an ``int`` (NumPy integers too), never a ``float`` or a
``bool``; a number is an ``int`` or ``float`` (NumPy scalars too), never a ``bool``
or a string; NaN is out of every range. Each checker returns the value converted
to its plain Python type, so callers use what it returns.

This module imports neither torch nor NumPy; tensors and arrays are recognised by
their methods and checked with their own library only when one is passed.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Collection, Iterable, Optional, Sequence

from .engine.errors import ArgumentError, FeatureError, SizeLimitError

__all__ = [
    "ArgumentError",
    "FeatureError",
    "show",
    "integer",
    "positive_int",
    "nonneg_int",
    "optional_positive_int",
    "number",
    "positive_float",
    "nonneg_float",
    "probability",
    "boolean",
    "choice",
    "node_id",
    "node_ids",
    "callable_or_none",
    "plain",
    "nonfinite_at",
    "finite_values",
    "features_rows",
    "MAX_BYTES",
    "fmt_bytes",
    "within_memory",
    "not_a_file",
    "flag_type",
    "whole_flag",
]

MAX_BYTES = 2_000_000_000
"""The memory a size read from an argument or a file header may imply before ampsim refuses it (2 GB):
every such size is estimated *before* anything is allocated, and a larger one needs its explicit option."""


def fmt_bytes(b: float) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if b < 1000 or unit == "PB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1000
    return f"{b:.1f} PB"


def not_a_file(path: str) -> Optional[str]:
    """What ``path`` names when it exists but is not a regular file (links followed): ``"a FIFO (named pipe)"``,
    ``"a folder"``, a device or a socket; ``None`` for a regular file or nothing. Every reader of a user's
    file (traces, checkpoints, edge lists) refuses these by name: reading a FIFO blocks until someone writes."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, what in ((stat.S_ISREG, None), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def within_memory(what: str, nbytes: float, limit: Optional[float], option: str) -> None:
    """Refuse (:class:`SizeLimitError`) ``what`` when its estimate ``nbytes`` exceeds ``limit`` (``None``: no limit),
    naming the estimate, the limit and the ``option`` that lifts it; called before anything is allocated."""
    if limit is not None and nbytes > limit:
        raise SizeLimitError(f"{what} would need about {fmt_bytes(nbytes)} of memory; the limit is {fmt_bytes(limit)}: "
                             f"raise it with {option} if you have the memory")


def show(value: Any, limit: int = 80) -> str:
    """The user's value as the error message shows it: its repr (shortened) and, when not obvious, its type."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if isinstance(value, (bool, str, type(None))):
        return text
    kind = type(value).__name__
    return text if kind in ("int",) else f"{text} ({kind})"


def _fail(name: str, what: str, value: Any) -> ArgumentError:
    return ArgumentError(f"{name} must be {what}, got {show(value)}")


def _is_np_bool(value: Any) -> bool:
    t = type(value)
    return t.__module__ == "numpy" and t.__name__ in ("bool_", "bool")


def _is_int(value: Any) -> bool:
    if isinstance(value, bool) or _is_np_bool(value):
        return False
    if isinstance(value, numbers.Integral):
        return True
    # a 0-d integer tensor is not an int: ints are ints
    return False


def _range_text(lo: Optional[float], hi: Optional[float], lo_open: bool = False, hi_open: bool = False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}" if isinstance(lo, float) else f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}" if isinstance(hi, float) else f"{'<' if hi_open else '<='} {hi}")
    return " and ".join(parts)


def integer(name: str, value: Any, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]``; floats (even ``2.0``), bools and strings are refused."""
    rng = _range_text(lo, hi)
    what = "an integer" + (f" {rng}" if rng else "")
    if not _is_int(value):
        raise _fail(name, what, value)
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _fail(name, what, value)
    return v


def positive_int(name: str, value: Any, hi: Optional[int] = None) -> int:
    """An ``int >= 1``."""
    return integer(name, value, 1, hi)


def nonneg_int(name: str, value: Any, hi: Optional[int] = None) -> int:
    """An ``int >= 0``."""
    return integer(name, value, 0, hi)


def optional_positive_int(name: str, value: Any) -> Optional[int]:
    """``None`` or an ``int >= 1``."""
    return None if value is None else positive_int(name, value)


def flag_type(convert: Callable[[str], Any], check: Optional[Callable[[Any], Any]], parse_what: str,
              range_what: Optional[str] = None) -> Callable[[str], Any]:
    """A command-line flag's type (argparse's ``type=``): ``convert(text)``, then ``check(value)`` (a checker of
    this module; its return value is the result). Anything else is argparse's one-line usage error
    ``expected <what>, got '<text>'``: ``parse_what`` when the text does not convert, ``range_what`` (default
    ``parse_what``) when ``check`` refuses the value. The one way every layer turns a flag's text into a checked
    value (``ampsim.cli.args``, and the sweeps' own flags below the CLI)."""
    import argparse

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"expected {parse_what}, got {text!r}") from None
        if check is None:
            return value
        try:
            return check(value)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"expected {range_what or parse_what}, got {text!r}") from None
    return parse


def whole_flag(lo: Optional[int] = None, hi: Optional[int] = None, parse_what: str = "a whole number",
               range_what: Optional[str] = None) -> Callable[[str], int]:
    """A flag of type int in ``[lo, hi]`` (:func:`flag_type` over :func:`integer`). Its wording, unless given:
    ``expected a whole number, got 'x'``, ``expected a whole number >= 1 and <= 4,096, got '0'``."""
    if range_what is None:
        rng = " and ".join(([f">= {lo}"] if lo is not None else []) + ([f"<= {hi:,}"] if hi is not None else []))
        range_what = f"a whole number {rng}" if rng else parse_what
    return flag_type(int, lambda v: integer("value", v, lo, hi), parse_what, range_what)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or _is_np_bool(value):
        return False
    return isinstance(value, numbers.Real)


def number(
    name: str,
    value: Any,
    lo: Optional[float] = None,
    hi: Optional[float] = None,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a ``float`` in the given range; NaN, bools and strings are refused, ``inf`` only if allowed."""
    rng = _range_text(lo, hi, lo_open, hi_open)
    what = ("a number" if allow_inf else "a finite number") + (f" {rng}" if rng else "")
    if not _is_number(value):
        raise _fail(name, what, value)
    v = float(value)
    if math.isnan(v):
        raise _fail(name, what + " (not NaN)", value)
    if math.isinf(v) and not allow_inf:
        raise _fail(name, what, value)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise _fail(name, what, value)
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise _fail(name, what, value)
    return v


def positive_float(name: str, value: Any, allow_inf: bool = False) -> float:
    """A number ``> 0`` (finite unless ``allow_inf``)."""
    return number(name, value, 0.0, lo_open=True, allow_inf=allow_inf)


def nonneg_float(name: str, value: Any, allow_inf: bool = False) -> float:
    """A number ``>= 0`` (finite unless ``allow_inf``)."""
    return number(name, value, 0.0, allow_inf=allow_inf)


def probability(name: str, value: Any, allow_one: bool = True) -> float:
    """A probability in ``[0, 1]`` (or ``[0, 1)`` when ``allow_one`` is false)."""
    return number(name, value, 0.0, 1.0, hi_open=not allow_one)


def boolean(name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy bools too); ``0``, ``1`` and strings are refused."""
    if isinstance(value, bool) or _is_np_bool(value):
        return bool(value)
    raise _fail(name, "True or False", value)


def choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """One of ``choices``, returned as the choice itself (a NumPy string gives the plain ``str``): ``value`` must
    be of the choice's type (bools never stand for ints) and equal to it; arrays, tensors and unhashable values
    are refused (of no choice's type), never compared element-wise. The message lists the choices once each, in order."""
    for c in choices:
        if type(value) is type(c) or (isinstance(value, type(c)) and not isinstance(value, bool)):
            if value == c:
                return c
    listed = ", ".join(repr(c) for c in dict.fromkeys(choices))
    raise ArgumentError(f"{name} must be one of {listed}; got {show(value)}")


def node_id(name: str, value: Any, num_nodes: int) -> int:
    """A node index ``0 <= v < num_nodes`` (an ``int``)."""
    if not _is_int(value) or not 0 <= int(value) < num_nodes:
        raise ArgumentError(f"{name} must be a node index in 0..{num_nodes - 1}, got {show(value)}")
    return int(value)


def node_ids(name: str, values: Any, num_nodes: int, allow_empty: bool = False, distinct: bool = True) -> list[int]:
    """A list of node indices (any iterable of ints that is not a string), distinct unless told otherwise."""
    values = plain(values)
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise _fail(name, "a list of node indices", values)
    if isinstance(values, (list, tuple)) and values and all(type(v) is int for v in values) \
            and 0 <= min(values) and max(values) < num_nodes:
        out = list(values)  # the common case, checked at C speed: plain ints in range
    else:
        out = [node_id(f"{name}[{i}]", v, num_nodes) for i, v in enumerate(values)]
    if not out and not allow_empty:
        raise _fail(name, "a non-empty list of node indices", values)
    if distinct and len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise ArgumentError(f"{name} lists node(s) {dup} more than once")
    return out


def callable_or_none(name: str, value: Any, args: Optional[Sequence[str]] = None) -> Optional[Callable]:
    """``None`` or a callable; with ``args`` (the names of what it is called with) one that accepts that many
    positional arguments, so a wrong signature is named here and not from inside a run."""
    if value is not None and not callable(value):
        raise _fail(name, "a function or None", value)
    if value is not None and args is not None:
        import inspect

        try:
            sig = inspect.signature(value)
        except (TypeError, ValueError):  # a builtin without a signature: called as it is
            return value
        try:
            sig.bind(*args)
        except TypeError as exc:
            raise ArgumentError(f"{name} must be a function {name}({', '.join(args)}), got "
                                f"{getattr(value, '__qualname__', type(value).__name__)}{sig}: {exc}") from None
    return value


def plain(value: Any) -> Any:
    """An array or tensor as the Python value of its ``tolist()`` (a 0-d one: its number); anything else as is.
    Index arguments (start nodes, run starts) pass through it, so ``np.array([0, 2])`` means ``[0, 2]``."""
    if hasattr(value, "tolist") and hasattr(value, "shape") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


# ----------------------------------------------------------------- values anywhere
def nonfinite_at(value: Any) -> bool:
    """True iff ``value`` holds a NaN or an infinity anywhere (numbers, tensors, arrays, lists, dicts)."""
    if isinstance(value, (bool, int, str, bytes)) or value is None:
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, complex):
        return not (math.isfinite(value.real) and math.isfinite(value.imag))
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # torch tensor
        import torch

        if value.is_floating_point() or value.is_complex():
            # a NaN or an infinity anywhere makes the sum non-finite, so a finite sum settles it in one
            # pass (10-20x faster than isfinite(...).all(): this check is on every unroll); a sum that
            # overflows from finite values falls through to the element-wise test
            if value.numel() == 0 or bool(torch.isfinite(value.sum())):
                return False
            return not bool(torch.isfinite(value).all())
        return False
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # NumPy array or scalar
        import numpy as np

        arr = np.asarray(value)
        if arr.dtype.kind in "fc":
            return not bool(np.isfinite(arr).all())
        if arr.dtype.kind == "O":
            return any(nonfinite_at(x) for x in arr.reshape(-1).tolist())
        return False
    if isinstance(value, numbers.Number):
        try:
            return not math.isfinite(complex(value).real) or not math.isfinite(complex(value).imag)
        except (TypeError, ValueError, OverflowError):
            return False
    if isinstance(value, dict):
        return any(nonfinite_at(x) for x in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(nonfinite_at(x) for x in value)
    return False


def finite_values(name: str, value: Any) -> Any:
    """``value`` unchanged if it holds no NaN or infinity anywhere; otherwise an error naming ``name``."""
    if nonfinite_at(value):
        raise ArgumentError(f"{name} contain NaN or infinite values")
    return value


def features_rows(features: Any, num_nodes: int, labels: Optional[Sequence[Any]] = None, name: str = "features") -> list:
    """Per-node feature rows, one per node ``0..n-1``, every value finite (docs/design.md rule 11).

    ``features`` is ``None`` (no features), a tensor or array with one row per node,
    a sequence of rows, or a dict ``{node: row}`` keyed by node index or by the node's
    original label (``labels``). Features on only some nodes are an error (a dict
    missing nodes, a list with ``None`` rows among others), never silently dropped;
    so is a NaN or infinity anywhere.
    """
    n = num_nodes
    if features is None:
        return [None] * n
    if isinstance(features, (str, bytes)):
        raise _feature_fail(name, "one row per node (a tensor, an array, a list or a dict)", features)
    if isinstance(features, dict):
        index = {lab: i for i, lab in enumerate(labels)} if labels is not None else {}
        rows: list = [None] * n
        seen = [False] * n
        for key, row in features.items():
            if key in index and not isinstance(key, bool):
                v = index[key]
            elif _is_int(key) and 0 <= int(key) < n and labels is None:
                v = int(key)
            else:
                raise FeatureError(f"{name} are given for {show(key)}, which is not a node of the graph")
            rows[v], seen[v] = row, True
        missing = [labels[v] if labels is not None else v for v, s in enumerate(seen) if not s]
        if missing:
            raise FeatureError(
                f"{name} are given on only some nodes: missing on {len(missing)} node(s) {missing[:10]}; "
                "give every node features or none"
            )
    elif hasattr(features, "shape") and hasattr(features, "__getitem__"):
        shape = tuple(features.shape)
        if len(shape) == 0:
            raise _feature_fail(name, "one row per node, not a scalar", features)
        if shape[0] != n:
            raise FeatureError(f"{name} have {shape[0]} rows for {n} nodes")
        if nonfinite_at(features):
            bad = _bad_rows([features[v] for v in range(n)])
            raise FeatureError(f"{name} contain NaN or infinite values at node(s) {bad}")
        return [features[v] for v in range(n)]
    else:
        try:
            rows = list(features)
        except TypeError:
            raise _feature_fail(name, "one row per node (a tensor, an array, a list or a dict)", features) from None
        if len(rows) != n:
            raise FeatureError(f"{name} have {len(rows)} rows for {n} nodes")
    absent = [v for v, r in enumerate(rows) if r is None]
    if absent and len(absent) != n:
        named = [labels[v] if labels is not None else v for v in absent]
        raise FeatureError(
            f"{name} are given on only some nodes: missing (None) on node(s) {named[:10]}; give every node features or none"
        )
    bad = _bad_rows(rows)
    if bad:
        named = [labels[v] if labels is not None else v for v in bad]
        raise FeatureError(f"{name} contain NaN or infinite values at node(s) {named}")
    _same_shape(rows, labels, name)
    return rows


_RAGGED, _OTHER = "ragged", "other"


def _shape(x: Any) -> Any:
    """The shape of a numeric row (``()`` for a number); ``_RAGGED`` for nested lists of unequal lengths;
    ``_OTHER`` for what is not numeric (a string, a dict: a protocol's own features, not checked)."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        subs = [_shape(e) for e in x]
        if _RAGGED in subs or len(set(subs)) > 1:
            return _RAGGED
        return _OTHER if subs and subs[0] == _OTHER else (len(x),) + (subs[0] if subs else ())
    if isinstance(x, numbers.Number):
        return ()
    return _OTHER


def _same_shape(rows: Sequence[Any], labels: Optional[Sequence[Any]], name: str) -> None:
    """Every numeric row has one shape: a ragged list of features is refused, never padded or truncated."""
    first: dict = {}
    for v, row in enumerate(rows):
        s = _shape(row)
        who = labels[v] if labels is not None else v
        if s == _RAGGED:
            raise FeatureError(f"{name} of node {who!r} are a ragged nested list (inner lists of unequal lengths)")
        if s == _OTHER or row is None:
            continue
        first.setdefault(s, who)
        if len(first) > 1:
            (s0, w0), (s1, w1) = list(first.items())[:2]
            raise FeatureError(f"{name} are ragged: node {w0!r} has shape {s0}, node {w1!r} has shape {s1}; "
                               "give every node a row of the same shape")


def _bad_rows(rows: Sequence[Any], limit: int = 10) -> list[int]:
    out = []
    for v, row in enumerate(rows):
        if nonfinite_at(row):
            out.append(v)
            if len(out) == limit:
                break
    return out


def _feature_fail(name: str, what: str, value: Any) -> FeatureError:
    return FeatureError(f"{name} must be {what}, got {show(value)}")
