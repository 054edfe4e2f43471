"""Hand-written NodeRules, by name: ``get_rule("flooding")``.

Other modules add theirs with :func:`register` (the synchronizer and ID protocols).
"""
from __future__ import annotations

from typing import Callable

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
    try:
        factory = RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}") from None
    return factory(**params)
