"""Hand-written NodeRules, by name: ``get_rule("flooding")``.

Other modules add theirs with :func:`register` (the synchronizer and ID protocols).
"""
from __future__ import annotations

import inspect
from typing import Callable

from ..engine.errors import ArgumentError
from ..engine.rule import NodeRule
from .echo import Echo
from .flooding import Flooding, HaltingFlooding

__all__ = ["Echo", "Flooding", "HaltingFlooding", "get_rule", "register", "RULES"]

RULES: dict[str, Callable[..., NodeRule]] = {"flooding": Flooding, "flooding-halt": HaltingFlooding, "echo": Echo}


def register(name: str, factory: Callable[..., NodeRule]) -> None:
    """Make ``factory`` available as ``get_rule(name, **params)`` and to the CLI."""
    RULES[name] = factory


def _load_builtin() -> None:
    """Import the protocol modules that register themselves (kept optional while they are written)."""
    import importlib

    for mod in ("synchronizer", "ids"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod}":
                raise


def get_rule(name: str, **params) -> NodeRule:
    """The registered rule ``name`` built with ``params``; unknown names list the known ones."""
    _load_builtin()
    factory = RULES.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ValueError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}")
    try:  # a parameter the rule does not take is named here, not by a TypeError from inside its constructor
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        given = ", ".join(f"{k}={v!r:.40}" for k, v in params.items()) or "no parameters"
        raise ArgumentError(f"rule {name!r} cannot be built with {given}: {exc}") from None
    except ValueError:  # no signature to read: the call says
        pass
    return factory(**params)
