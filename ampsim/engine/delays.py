"""Delay models: how long one message takes on one edge (Sections 4.2 and 4.3).

A model is drawn once per (message, receiving edge) at send time. ``bind(rng)``
returns the sampler the hot path calls as ``sample(msg_id, src, dst) -> float``.
The engine rejects any delay that is not finite and > 0; nothing is clamped.

Delays are Python floats (float64) whatever a user's function returns: a NumPy scalar of any
dtype, or a 0-d array or tensor, is converted at the model's boundary (:func:`as_delay`:
``Custom``'s sampler, ``FromTrace``'s table once, :func:`sampler` for any other model), so the
simulation clock stays float64 (``t + np.float32(d)`` would otherwise be float32 under NumPy 2).

Registry (``get_delay("uniform")``):

===============  ==========================================  ===========
name             delay                                       random
===============  ==========================================  ===========
``constant``     ``value`` (default 1.0)                     no
``uniform``      U(0, 1], drawn as ``1 - random()``          yes
``exponential``  Exp with mean ``mean`` (default 0.5)        yes
``pareto``       Pareto(``alpha``, ``scale``): heavy-tailed  yes
                 (default alpha 1.5, mean 0.5)
``from-trace``   the delay recorded for that ``msg_id``      as recorded
===============  ==========================================  ===========

``exponential`` and ``pareto`` are test-time distributions for models trained under
``constant`` or ``uniform`` delays (delay robustness, ``docs/node_classification.md``):
the exponential has the same mean as U(0, 1] and a longer tail; the Pareto law with
``alpha = 1.5`` has a finite mean and an infinite variance.
"""
from __future__ import annotations

import math
import numbers
from random import Random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Protocol, Union, runtime_checkable

from .errors import DelayError

__all__ = [
    "DelayModel",
    "Sampler",
    "Constant",
    "Uniform",
    "Exponential",
    "Pareto",
    "FromTrace",
    "Custom",
    "get_delay",
    "sampler",
    "as_delay",
    "DELAYS",
]

Sampler = Callable[[int, int, int], float]
"""``sample(msg_id, src, dst) -> delay``, called once per (message, receiving edge)."""


@runtime_checkable
class DelayModel(Protocol):
    """A named delay distribution. ``random`` says whether it breaks symmetry (Lemma 4.2)."""

    name: str
    random: bool

    def bind(self, rng: Random) -> Sampler: ...

    def describe(self) -> dict: ...


@dataclass(frozen=True)
class Constant:
    """Every message takes ``value`` time units (Section 4.3); FIFO by construction."""

    value: float = 1.0
    name: str = field(default="constant", init=False)
    random: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        v = self.value
        if not (_is_number(v) and math.isfinite(v) and v > 0):
            raise DelayError(f"constant delay must be finite and > 0, got {v!r}")

    def bind(self, rng: Random) -> Sampler:
        value = float(self.value)
        return lambda msg_id, src, dst: value

    def describe(self) -> dict:
        return {"name": self.name, "value": float(self.value)}


@dataclass(frozen=True)
class Uniform:
    """Delay ~ U(low, high], drawn as ``high - (high - low) * random()`` (Section 4.2: [0, 1])."""

    low: float = 0.0
    high: float = 1.0
    name: str = field(default="uniform", init=False)
    random: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        lo, hi = self.low, self.high
        if not (_is_number(lo) and _is_number(hi) and 0.0 <= lo < hi and math.isfinite(hi)):
            raise DelayError(f"uniform delay needs numbers 0 <= low < high < inf, got low={lo!r}, high={hi!r}")

    def bind(self, rng: Random) -> Sampler:
        draw = rng.random
        low, high = float(self.low), float(self.high)
        if low == 0.0 and high == 1.0:
            return lambda msg_id, src, dst: 1.0 - draw()
        width = high - low
        return lambda msg_id, src, dst: high - width * draw()

    def describe(self) -> dict:
        return {"name": self.name, "low": float(self.low), "high": float(self.high)}


@dataclass(frozen=True)
class Exponential:
    """Delay ~ Exp(1 / ``mean``), drawn as ``-mean * log(u)``, ``u = random()`` redrawn while it is 0.

    ``u`` lies in (0, 1), so every delay is finite and > 0 (at most ``mean * 36.8``).
    """

    mean: float = 0.5
    name: str = field(default="exponential", init=False)
    random: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        m = self.mean
        if not (_is_number(m) and math.isfinite(m) and m > 0):
            raise DelayError(f"exponential delay needs a finite mean > 0, got {m!r}")

    def bind(self, rng: Random) -> Sampler:
        draw, mean, log = rng.random, float(self.mean), math.log

        def sample(msg_id: int, src: int, dst: int) -> float:
            u = draw()
            while u == 0.0:
                u = draw()
            return -mean * log(u)

        return sample

    def describe(self) -> dict:
        return {"name": self.name, "mean": float(self.mean)}


@dataclass(frozen=True)
class Pareto:
    """A heavy-tailed delay: ``P(d > t) = (scale / t)^alpha`` for ``t >= scale``, drawn as ``scale * (1 - random())^(-1/alpha)``.

    Mean ``alpha * scale / (alpha - 1)`` for ``alpha > 1`` (the default ``alpha = 1.5``,
    ``scale = 1/6``: mean 0.5, infinite variance). Every delay is finite and >= ``scale``.
    """

    alpha: float = 1.5
    scale: float = 1.0 / 6.0
    name: str = field(default="pareto", init=False)
    random: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        a, s = self.alpha, self.scale
        if not (_is_number(a) and _is_number(s) and math.isfinite(a) and math.isfinite(s) and a > 0 and s > 0):
            raise DelayError(f"pareto delay needs finite alpha > 0 and scale > 0, got alpha={a!r}, scale={s!r}")
        # the largest draw is scale * 2**(53 / alpha) (1 - random() >= 2**-53): it must be a finite float
        if math.log2(float(s)) + 53.0 / float(a) >= 1023.0:
            raise DelayError(f"pareto delay with alpha={a!r}, scale={s!r} can draw delays beyond the largest float "
                             f"(scale * 2**(53/alpha)); use a larger alpha or a smaller scale")

    def bind(self, rng: Random) -> Sampler:
        draw, scale, power = rng.random, float(self.scale), -1.0 / float(self.alpha)
        return lambda msg_id, src, dst: scale * (1.0 - draw()) ** power

    def describe(self) -> dict:
        return {"name": self.name, "alpha": float(self.alpha), "scale": float(self.scale)}


@dataclass(frozen=True)
class FromTrace:
    """Replay: message ``msg_id`` takes exactly the delay recorded for it (independent of any RNG).

    ``default``: the delay of copies the table does not list (``None``: an error), so
    a hand-written table can script a few delays of a counterexample.
    """

    delays: Mapping[int, float]
    random: bool = True
    default: Optional[float] = None
    name: str = field(default="from-trace", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.delays, Mapping):
            raise DelayError(f"from-trace delays must be a mapping msg_id -> delay, got {type(self.delays).__name__}")
        if not all(type(k) is int and type(v) is float for k, v in self.delays.items()):  # once: int ids, float64 delays
            table = {}
            for k, v in self.delays.items():
                if isinstance(k, bool) or not isinstance(k, numbers.Integral):
                    raise DelayError(f"from-trace delays are keyed by message id (an integer), got {k!r}")
                table[int(k)] = as_delay(v, self.name, int(k))
            object.__setattr__(self, "delays", table)
        if self.default is not None and not (_is_number(self.default) and math.isfinite(self.default) and self.default > 0):
            raise DelayError(f"from-trace default delay must be finite and > 0 or None, got {self.default!r}")

    def bind(self, rng: Random) -> Sampler:
        delays = self.delays
        if self.default is not None:
            default = float(self.default)
            return lambda msg_id, src, dst: delays.get(msg_id, default)

        def sample(msg_id: int, src: int, dst: int) -> float:
            try:
                return delays[msg_id]
            except KeyError:
                raise DelayError(
                    f"the trace records no delay for message {msg_id} ({src} -> {dst}): "
                    "the replayed run sent a message the recorded run did not"
                ) from None

        return sample

    def describe(self) -> dict:
        return {"name": self.name, "random": self.random}


@dataclass(frozen=True)
class Custom:
    """Any user function ``fn(rng, msg_id, src, dst) -> delay``; say whether it is ``random``."""

    fn: Callable[[Random, int, int, int], float]
    random: bool = True
    name: str = "custom"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise DelayError(f"a custom delay model needs a function fn(rng, msg_id, src, dst) -> delay, got {self.fn!r}")

    def bind(self, rng: Random) -> Sampler:
        fn, name = self.fn, self.name

        def sample(msg_id: int, src: int, dst: int) -> float:
            d = fn(rng, msg_id, src, dst)
            return d if type(d) is float else as_delay(d, name, msg_id, src, dst)

        return sample

    def describe(self) -> dict:
        return {"name": self.name, "random": self.random}


def as_delay(d: object, name: str, msg_id: int, src: int = -1, dst: int = -1) -> float:
    """``d`` as a Python float: a real number of any type (NumPy scalars too) or a 0-d real array or
    tensor; anything else (a bool, a string, a vector) is a :class:`DelayError` naming the model and the message.
    The range (finite, > 0) is the engine's check."""
    if _is_number(d):
        return float(d)
    shape = getattr(d, "shape", None)
    kind = str(getattr(d, "dtype", "")).split(".")[-1]
    if shape is not None and tuple(shape) == () and kind.startswith(("float", "int", "uint", "half", "bfloat", "double")):
        return float(d.item())
    edge = f" ({src} -> {dst})" if src >= 0 else ""
    raise DelayError(f"delay model {name!r} gave {d!r:.60} for message {msg_id}{edge}; delays are numbers, finite and > 0")


def sampler(model: "DelayModel", rng: Random) -> Sampler:
    """``model.bind(rng)``, made to return Python floats: the built-in models do already; another model's
    sampler is wrapped in :func:`as_delay` (one call per copy, only for models ampsim does not know)."""
    bind = getattr(model, "bind", None)
    if not callable(bind):
        raise DelayError(f"delay model {type(model).__name__} has no method bind(rng) -> sample(msg_id, src, dst)")
    sample = bind(rng)
    if not callable(sample):
        raise DelayError(f"{type(model).__name__}.bind must return a function sample(msg_id, src, dst) -> delay, "
                         f"got {type(sample).__name__}")
    if type(model) in (Constant, Uniform, Exponential, Pareto, FromTrace, Custom):
        return sample
    name = getattr(model, "name", type(model).__name__)

    def checked(msg_id: int, src: int, dst: int) -> float:
        d = sample(msg_id, src, dst)
        return d if type(d) is float else as_delay(d, name, msg_id, src, dst)

    return checked


def _is_number(x: object) -> bool:
    """A real number that is not a bool (NumPy scalars too)."""
    import numbers

    return isinstance(x, numbers.Real) and not isinstance(x, bool) and type(x).__name__ not in ("bool_",)


DELAYS: dict[str, Callable[[], DelayModel]] = {"constant": Constant, "uniform": Uniform,
                                               "exponential": Exponential, "pareto": Pareto}


def get_delay(delay: Union[str, float, DelayModel]) -> DelayModel:
    """A delay model from a registry name, a positive number (constant), or a model object."""
    if isinstance(delay, str):
        try:
            return DELAYS[delay]()
        except KeyError:
            raise DelayError(
                f"unknown delay model {delay!r}; choose one of {sorted(DELAYS)} or pass a DelayModel"
            ) from None
    if _is_number(delay):
        return Constant(float(delay))
    if isinstance(delay, type):  # Uniform, not Uniform(): the class passes the protocol check by its attributes
        raise DelayError(f"delay must be a name, a number or a DelayModel instance, got the class {delay.__name__} "
                         f"(use {delay.__name__}())")
    if isinstance(delay, DelayModel):
        return delay
    if hasattr(delay, "bind"):  # a model of the user's that lacks part of the protocol: name what
        missing = [m for m in ("name", "random", "bind", "describe") if not hasattr(delay, m)]
        raise DelayError(f"delay model {type(delay).__name__} lacks {missing}: a DelayModel has name, random, "
                         "bind(rng) and describe()")
    raise DelayError(f"delay must be a name, a number or a DelayModel, got {delay!r}")
