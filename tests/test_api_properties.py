"""Property tests (hypothesis) over the public API's constructors: generated bad values, sizes and dtypes.

Each generated call must end in success or in one documented exception, within a time bound,
leaving no file behind:

* bad arguments: :class:`~ampsim.engine.errors.ArgumentError` (a ``ValueError`` and a ``TypeError``) or
  its subclasses ``FeatureError`` and ``RuleError``, whose message names the argument (or the user's class
  and method);
* graphs AMP cannot run on: :class:`GraphError` (a ``ValueError``), naming the edge, the node or the argument;
* delay models: :class:`DelayError` (a ``ValueError``) naming the delay;
* paths: :class:`OutputPathError` / ``OSError`` or :class:`TraceFormatError` naming the path.

A success is checked too: NumPy numbers are normalised (the clock is a Python float, a NumPy seed gives
the stream of the equal ``int``), and PyG input means what the equal networkx input means.

Profiles: ``ci`` (default; a fixed small budget, no deadline) and ``long`` (``HYPOTHESIS_PROFILE=long``).
Every example runs under ``signal.alarm`` (:data:`SECONDS`) and, on Linux, an address-space limit
(``RLIMIT_AS``: what the process maps now plus :data:`MEMORY`), so a refusal that allocates what it was
given fails at once with a ``MemoryError`` instead of filling the machine.
"""
from __future__ import annotations

import json
import math
import os
import resource
import signal
import tempfile
from contextlib import contextmanager

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampsim import (AmpsimError, Constant, DelayError, GraphError, ListTracer, Message, Simulation, TraceFormatError,
                    Uniform, as_graph, load_trace, parse_graph_spec, save_trace)
from ampsim.engine.delays import Exponential, Pareto
from ampsim.engine.errors import ArgumentError, FeatureError, OutputPathError, RuleError
from ampsim.protocols import Flooding

for _name, _n in (("ci", 25), ("long", 1000)):
    settings.register_profile(_name, max_examples=_n, deadline=None, derandomize=_name == "ci",
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                     HealthCheck.data_too_large])
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SECONDS = 10
"""Time bound of one example (``signal.alarm``): every refusal is a check, never a built graph or a run."""


MEMORY = 1 << 30
"""Address space one example may add (1 GiB): a check costs kilobytes; the largest legitimate example (two
executors on a 4-node graph) maps tens of megabytes."""


class TimeBound(Exception):
    pass


def _mapped() -> "int | None":
    """The address space this process maps now (``VmSize``), or None where ``/proc`` does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@contextmanager
def memory_bound(extra: int = MEMORY):
    """Lower the soft ``RLIMIT_AS`` to what is mapped now plus ``extra`` for the block, then restore it."""
    mapped = _mapped()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = None if mapped is None else mapped + extra
    if limit is not None and hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if limit is None or (soft != resource.RLIM_INFINITY and soft <= limit):
        yield  # no /proc, or already bounded tighter
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextmanager
def bounded(seconds: int = SECONDS, memory: int = MEMORY):
    def ring(signum, frame):
        raise TimeBound(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        with memory_bound(memory):
            yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def names(exc: BaseException, *words: str) -> bool:
    text = str(exc).lower()
    return any(w.lower() in text for w in words)


def refused(exc: BaseException, kinds: tuple, *words: str) -> None:
    """``exc`` is one of the documented ``kinds`` and its message names one of ``words``; else the test fails."""
    if isinstance(exc, TimeBound):
        raise exc
    assert isinstance(exc, kinds), f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, (ValueError, TypeError, OSError)), f"{type(exc).__name__}: {exc}"
    assert names(exc, *words), f"{type(exc).__name__} does not name {words}: {exc}"


# ----------------------------------------------------------------- values a user might pass
np_ints = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64])
np_floats = st.sampled_from([np.float16, np.float32, np.float64])
small_ints = st.integers(-3, 12)
scalars = st.one_of(
    st.none(), st.booleans(), small_ints, st.integers(-(2 ** 70), 2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.text(max_size=4),
    st.builds(lambda t, v: t(v), np_ints, st.integers(0, 100)),
    st.builds(lambda t, v: t(v), np_floats, st.floats(-5, 5) | st.sampled_from([math.nan, math.inf])),
    st.just(np.bool_(True)), st.builds(lambda v: torch.tensor(v), small_ints | st.floats(-3, 3)),
    st.builds(lambda v: np.array(v), small_ints), st.just(object()),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
                      | st.dictionaries(small_ints, inner, max_size=4), max_leaves=8)


@st.composite
def arrays(draw, max_dim: int = 3, max_side: int = 6):
    """A NumPy array or torch tensor of a random dtype and shape, with NaN/inf sometimes."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), max_size=max_dim)))
    dtype = draw(st.sampled_from(["int64", "int32", "uint8", "float16", "float32", "float64", "bool", "complex64"]))
    size = int(np.prod(shape)) if shape else 1
    raw = draw(st.lists(st.floats(-4, 4) | st.sampled_from([math.nan, math.inf, -math.inf]), min_size=size,
                        max_size=size))
    with np.errstate(invalid="ignore", over="ignore"):
        arr = np.array(raw, dtype=np.float64).reshape(shape)
        arr = np.nan_to_num(arr, nan=0, posinf=1, neginf=-1).astype(dtype) if dtype[0] in "ub" or dtype.startswith(
            "int") else arr.astype(dtype)
    if draw(st.booleans()) and dtype != "uint16":
        return torch.from_numpy(np.ascontiguousarray(arr))
    return arr


def C4():
    return nx.cycle_graph(4)


def records(tracer: ListTracer) -> list:
    return list(tracer.records)


# ----------------------------------------------------------------- Simulation(...)
ARG_WORDS = {
    "delay": ("delay",), "fifo": ("fifo",), "seed": ("seed",), "start": ("start",), "features": ("features",),
    "num_nodes": ("num_nodes",), "loss": ("loss",), "allow_isolated": ("allow_isolated",), "budget": ("budget",),
    "start_message": ("start_message",), "tracer": ("tracer",),
}


@PROFILE
@given(arg=st.sampled_from(sorted(ARG_WORDS)), value=values | arrays())
def test_simulation_argument(arg, value):
    """Any value for any one argument: a run whose clock is a Python float, or one error naming the argument."""
    with bounded():
        try:
            sim = Simulation(C4(), Flooding(), **{"delay": "uniform", arg: value})
            result = sim.run(max_deliveries=50)
        except AmpsimError as exc:
            refused(exc, (ArgumentError, DelayError, GraphError), *ARG_WORDS[arg])
            return
        except (ValueError, TypeError) as exc:  # noqa: B014 -- anything else is an engine-internal error
            pytest.fail(f"{arg}={value!r:.60}: {type(exc).__name__}: {exc}")
    assert type(sim.now) is float and type(result.time) is float
    assert all(type(s) is int for s in (sim.seed, result.deliveries))


@PROFILE
@given(seed=st.integers(-(2 ** 63), 2 ** 63 - 1), kind=np_ints, loss=st.sampled_from([0.0, 0.3]))
def test_numpy_seed_is_the_int_stream(seed, kind, loss):
    """A NumPy integer seed gives exactly the run of the equal ``int`` (delays and lost copies)."""
    info = np.iinfo(kind)
    seed = int(min(max(seed, info.min), info.max))
    with bounded():
        runs = []
        for s in (seed, kind(seed)):
            t = ListTracer()
            Simulation(C4(), Flooding(), delay="uniform", seed=s, loss=loss, tracer=t).run()
            runs.append(records(t))
    assert runs[0] == runs[1]


@PROFILE
@given(kind=np_floats, d=st.floats(0.01, 10), model=st.sampled_from(["number", "Constant", "Uniform", "Exponential",
                                                                     "Pareto"]))
def test_numpy_delay_keeps_the_clock_float64(kind, d, model):
    """Delay parameters of any NumPy float dtype: the run equals the one with the equal Python float, every
    time in the trace is a Python float."""
    v = kind(d)
    if not (np.isfinite(v) and v > 0):
        return
    make = {"number": lambda x: x, "Constant": Constant, "Uniform": lambda x: Uniform(0.0, x),
            "Exponential": Exponential, "Pareto": lambda x: Pareto(1.5, x)}[model]
    with bounded():
        runs = []
        for value in (float(v), v):
            t = ListTracer()
            sim = Simulation(C4(), Flooding(), delay=make(value), seed=1, tracer=t)
            sim.run(until=np.float32(5.5) if value is v else 5.5)
            assert type(sim.now) is float
            assert all(type(r.t_deliver) is float and type(r.delay) is float for r in t.messages)
            runs.append(records(t))
    assert runs[0] == runs[1]


@PROFILE
@given(model=st.sampled_from(["Constant", "Uniform", "Exponential", "Pareto"]), a=values, b=values)
def test_delay_model_parameters(model, a, b):
    """Any parameters: a model whose delays are finite floats > 0, or a DelayError naming the model."""
    with bounded():
        try:
            m = {"Constant": lambda: Constant(a), "Uniform": lambda: Uniform(a, b), "Exponential": lambda: Exponential(a),
                 "Pareto": lambda: Pareto(a, b)}[model]()
            sim = Simulation(C4(), Flooding(), delay=m)
            sim.run(max_deliveries=20)
        except AmpsimError as exc:
            refused(exc, (DelayError, ArgumentError, AssertionError), "delay", model.lower())
            return
        except (ValueError, TypeError) as exc:
            pytest.fail(f"{model}({a!r:.40}, {b!r:.40}): {type(exc).__name__}: {exc}")
    assert type(sim.now) is float


@PROFILE
@given(until=values, max_deliveries=values)
def test_run_arguments(until, max_deliveries):
    with bounded():
        sim = Simulation(C4(), Flooding(), delay="uniform")
        try:
            result = sim.run(until=until, max_deliveries=max_deliveries)
        except AmpsimError as exc:
            refused(exc, (ArgumentError,), "until", "max_deliveries")
            return
        except (ValueError, TypeError) as exc:
            pytest.fail(f"run({until!r:.40}, {max_deliveries!r:.40}): {type(exc).__name__}: {exc}")
    assert type(result.time) is float and type(sim.now) is float


# ----------------------------------------------------------------- start nodes and features
@PROFILE
@given(start=st.lists(st.integers(-2, 6), max_size=6), form=st.sampled_from(["list", "numpy", "tensor", "tuple"]))
def test_start_nodes(start, form):
    """Start nodes as a list, array or tensor: the run of the equal list of ints, or one error naming ``start``
    (a node twice, a node outside the graph)."""
    given_ = {"list": list, "tuple": tuple, "numpy": lambda s: np.array(s, dtype=np.int64),
              "tensor": lambda s: torch.tensor(s, dtype=torch.long)}[form](start)
    ok = len(set(start)) == len(start) and all(0 <= v < 4 for v in start)
    with bounded():
        try:
            t = ListTracer()
            Simulation(C4(), Flooding(), tracer=t, start=given_).run()
        except ArgumentError as exc:
            assert not ok, exc
            refused(exc, (ArgumentError,), "start")
            return
    assert ok, f"start={start} accepted"
    ref = ListTracer()
    Simulation(C4(), Flooding(), tracer=ref, start=list(start)).run()
    assert records(t) == records(ref)


@PROFILE
@given(features=arrays(max_dim=3) | values)
def test_features(features):
    """Features of any shape and dtype: accepted when there is one finite row per node (every row of one
    shape), else a FeatureError naming ``features``."""
    with bounded():
        try:
            sim = Simulation(C4(), Flooding(), features=features)
        except AmpsimError as exc:
            refused(exc, (FeatureError, ArgumentError), "features")
            return
        except (ValueError, TypeError) as exc:
            pytest.fail(f"features={features!r:.60}: {type(exc).__name__}: {exc}")
    if hasattr(features, "shape"):
        assert tuple(features.shape)[:1] == (4,)
        arr = features.numpy() if hasattr(features, "numpy") else features
        assert not (arr.dtype.kind in "fc" and not np.isfinite(arr).all())
    assert len(sim.views) == 4


# ----------------------------------------------------------------- graphs
@st.composite
def edge_indexes(draw):
    e = draw(st.integers(0, 6))
    rows = draw(st.sampled_from([2, 2, 2, 1, 3]))
    ids = st.integers(-1, 6) | st.sampled_from([2 ** 40, 1.0, True, "1", None]) if draw(st.booleans()) \
        else st.integers(0, 5)
    data = [draw(st.lists(ids, min_size=e, max_size=e)) for _ in range(rows)]
    if draw(st.booleans()) and draw(st.booleans()):
        data[-1] = data[-1][:-1]  # ragged
    form = draw(st.sampled_from(["list", "numpy", "tensor"]))
    if form == "list":
        return data
    try:
        arr = np.array(data)
    except ValueError:
        return data
    if form == "tensor" and arr.dtype.kind in "iub":
        return torch.from_numpy(arr)
    return arr


@PROFILE
@given(edge_index=edge_indexes(), num_nodes=st.none() | st.integers(-1, 8) | st.sampled_from([2 ** 45, 3.0, "4",
                                                                                             np.int64(6)]))
def test_edge_index(edge_index, num_nodes):
    """An edge_index (list, array, tensor) with any num_nodes: a Graph, or a GraphError/ArgumentError naming
    the edge_index, num_nodes, a node or an edge -- never built past the size limit."""
    with bounded():
        try:
            g = as_graph(edge_index, num_nodes=num_nodes, max_edges=10_000)
        except AmpsimError as exc:
            refused(exc, (GraphError, ArgumentError), "edge_index", "num_nodes", "node", "edge", "graph")
            return
        except (ValueError, TypeError) as exc:
            pytest.fail(f"as_graph({edge_index!r:.60}, {num_nodes!r}): {type(exc).__name__}: {exc}")
    assert type(g.num_nodes) is int and all(type(v) is int for nb in g.neighbors for v in nb)


@PROFILE
@given(pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=8),
       symmetric=st.booleans())
def test_pyg_means_what_networkx_means(pairs, symmetric):
    """A PyG Data is refused where the networkx graph of its edge_index is (DiGraph when directed, MultiGraph
    when a pair repeats, self-loops), and otherwise gives the same Graph as networkx."""
    import warnings

    with warnings.catch_warnings():  # torch's own deprecation warnings, raised by PyG's first import
        warnings.simplefilter("ignore")
        pytest.importorskip("torch_geometric")
        from torch_geometric.data import Data

    edges = list(pairs) + ([(v, u) for u, v in pairs] if symmetric else [])
    data = Data(edge_index=torch.tensor(edges, dtype=torch.long).t().contiguous(), num_nodes=6)
    multi, loop = len(set(edges)) != len(edges), any(u == v for u, v in edges)
    directed = any((v, u) not in set(edges) for u, v in edges)
    with bounded():
        try:
            got = as_graph(data)
        except GraphError as exc:
            assert multi or loop or directed, exc
            words = ("self-loop",) if loop else ("twice",) if multi else ("directed",)
            refused(exc, (GraphError,), *words)
            if directed and not (multi or loop):
                with pytest.raises(GraphError, match="directed"):
                    as_graph(nx.DiGraph(edges))
            return
    assert not (multi or loop or directed)
    g = nx.Graph()
    g.add_nodes_from(range(6))
    g.add_edges_from(edges)
    assert got.hash() == as_graph(g).hash()


SPEC_NAMES = ["path", "cycle", "star", "complete", "grid", "petersen", "random-regular", "gnp", "tree", "csl", "rook",
              "shrikhande", "figure4", "hypercube", ""]


@PROFILE
@given(name=st.sampled_from(SPEC_NAMES),
       parts=st.lists(st.integers(-3, 10 ** 12).map(str) | st.sampled_from(["x", "3x4", "0.5", "nan", "4a", ""]),
                      max_size=3))
def test_graph_specs(name, parts):
    """Any spec: a Graph within the size limit, or a GraphError naming the spec -- sized before it is built."""
    spec = ":".join([name] + parts)
    with bounded():
        try:
            g = parse_graph_spec(spec, max_edges=20_000)
        except GraphError as exc:
            refused(exc, (GraphError,), spec, "max_edges", "max-edges", "graph spec")
            return
    assert g.num_edges <= 20_000 and g.num_nodes <= 20_000


# ----------------------------------------------------------------- user rules and tracers
@PROFILE
@given(start_out=values, receive_out=values, hooks=st.sets(st.sampled_from(["halted", "finished", "summarize",
                                                                            "summarize_state", "name", "assumes"])))
def test_user_rule(start_out, receive_out, hooks):
    """A user's rule returning anything, with any subset of the optional hooks: a run, or a RuleError naming
    the class and the method."""

    class User:
        def start(self, node):
            return start_out

        def receive(self, node, state, message):
            return receive_out

    for hook in hooks:
        if hook in ("name", "assumes"):
            setattr(User, hook, "user" if hook == "name" else frozenset())
        else:
            setattr(User, hook, (lambda self, x: False) if hook in ("halted", "finished") else (lambda self, x: "s"))
    with bounded():
        try:
            sim = Simulation(C4(), User(), tracer=ListTracer())
            sim.run(max_deliveries=20)
        except RuleError as exc:
            refused(exc, (RuleError,), "User.start", "User.receive")
            return
        except (ValueError, TypeError) as exc:
            pytest.fail(f"start -> {start_out!r:.40}, receive -> {receive_out!r:.40}: {type(exc).__name__}: {exc}")
    assert isinstance(start_out, (tuple, list)) and len(start_out) == 2
    assert start_out[1] is None or isinstance(start_out[1], Message)


@PROFILE
@given(hooks=st.sets(st.sampled_from(["send", "deliver", "drop", "run_start", "run_end", "state"])),
       wants=st.sampled_from([None, True, False, 1, "yes"]))
def test_user_tracer(hooks, wants):
    """A user's tracer with any subset of hooks: a traced run when send, deliver and drop are there (state too
    when it wants states), else a RuleError naming the class."""
    seen = []

    class Mine:
        pass

    for hook in hooks:
        setattr(Mine, hook, lambda self, r, hook=hook: seen.append(hook))
    if wants is not None:
        Mine.wants_states = wants
    ok = {"send", "deliver", "drop"} <= hooks and any(wants is w for w in (None, True, False)) and (wants is not True or "state" in hooks)
    with bounded():
        try:
            Simulation(C4(), Flooding(), tracer=Mine()).run()
        except RuleError as exc:
            assert not ok, exc
            refused(exc, (RuleError,), "Mine", "tracer")
            return
    assert ok and "deliver" in seen


# ----------------------------------------------------------------- executors
@PROFILE
@given(starts=st.lists(st.integers(-1, 5) | st.sampled_from([1.0, np.int64(2)]), max_size=3),
       seed=st.integers(-5, 2 ** 64) | st.sampled_from([1.5, "1", np.int32(3)]),
       budget=st.integers(-1, 12) | st.sampled_from([2.0, np.int64(6), True]),
       executor=st.sampled_from(["batched", "engine"]))
def test_executor_runs(starts, seed, budget, executor):
    """Generated run specs: both executors give the same states, or the same ArgumentError naming the run's field
    or the budget."""
    from ampsim.batched import BatchedExecutor
    from ampsim.cells.cells import AMPCell
    from ampsim.cells.execute import EngineExecutor, RunSpec
    from ampsim.cells.models import init_parameters
    from ampsim.data.graphdata import GraphData

    cell = AMPCell("rnn", 2, 4, 3)
    init_parameters(cell, torch.Generator().manual_seed(0))
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    graph = GraphData(ei, torch.ones(4, 2), torch.zeros(4, dtype=torch.long), 4, "node")
    runs = [RunSpec(tuple(starts), torch.ones(max(len(starts), 1), 3), seed)]
    outs = []
    with bounded(30):
        for ex in (BatchedExecutor(), EngineExecutor()):
            try:
                outs.append(ex.execute(cell, graph, runs, budget))
            except AmpsimError as exc:
                refused(exc, (ArgumentError,), "runs[0]", "budget")
                outs.append(str(exc))
            except (ValueError, TypeError, RuntimeError) as exc:
                pytest.fail(f"{type(ex).__name__}: {type(exc).__name__}: {exc}")
    if isinstance(outs[0], str) or isinstance(outs[1], str):
        assert outs[0] == outs[1]
    else:
        assert torch.allclose(outs[0], outs[1], atol=1e-5)


@PROFILE
@given(field=st.sampled_from(["seed", "epochs", "lr", "gate", "hidden", "msg_size", "budget_factor", "train_graphs",
                              "test_sizes", "sources", "checkpoint_every", "model", "delay", "task"]),
       value=values | arrays(max_dim=1))
def test_train_config(field, value):
    """Any value for any field: a config that serialises to JSON and reads back equal, or one error naming it."""
    from ampsim.train import TrainConfig

    kw = {"task": "limits1", field: value}
    with bounded():
        try:
            c = TrainConfig(**kw)
        except (ValueError, TypeError) as exc:
            refused(exc, (ValueError, TypeError), field, "model", "kind")
            return
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


# ----------------------------------------------------------------- trace files
@PROFILE
@given(where=st.sampled_from(["folder", "fifo", "missing-folder", "long", "link", "dangling", "file", "unknown-suffix",
                              "nul", "parquet"]), data=st.binary(max_size=40))
def test_trace_paths(where, data):
    """save_trace and load_trace at odd paths: success, or one error naming the path; nothing left behind but
    the file asked for."""
    t = ListTracer()
    Simulation(C4(), Flooding(), tracer=t).run()
    trace = t.trace()
    with tempfile.TemporaryDirectory() as d:
        name = {"long": "t" * 250 + ".jsonl", "unknown-suffix": "t.csvx", "nul": "t\0.jsonl",
                "parquet": "t.parquet"}.get(where, "t.jsonl")
        path = os.path.join(d, name)
        if where == "folder":
            os.mkdir(path)
        elif where == "fifo":
            os.mkfifo(path)
        elif where == "missing-folder":
            path = os.path.join(d, "no", name)
        elif where == "link":
            open(os.path.join(d, "target.jsonl"), "wb").close()
            os.symlink("target.jsonl", path)
        elif where == "dangling":
            os.symlink("gone.jsonl", path)
        elif where == "file":
            with open(path, "wb") as f:
                f.write(data)
        before = set(os.listdir(d))
        with bounded():
            for op in ("load", "save", "load"):
                try:
                    if op == "save":
                        save_trace(trace, path)
                    else:
                        got = load_trace(path)
                        assert got.records == trace.records
                except (AmpsimError, OSError) as exc:
                    shown = name if where != "nul" else "t"
                    refused(exc, (ArgumentError, OutputPathError, TraceFormatError, OSError), shown, "path")
        after = set(os.listdir(d))
        made = after - before
        assert made <= {name, "gone.jsonl"}, f"left behind: {made - {name, 'gone.jsonl'}}"


# ----------------------------------------------------------------- the bounds themselves
def test_the_memory_bound_holds():
    """An allocation past :data:`MEMORY` fails at once inside :func:`bounded` (the bound every example runs
    under), and the limit is lifted after it."""
    if _mapped() is None:
        pytest.skip("no /proc/self/status: the address-space bound is not set here")
    with pytest.raises(MemoryError):
        with bounded():
            np.empty(2 * MEMORY, dtype=np.uint8)  # mapped, not touched: refused by the limit alone
    assert np.empty(2 * MEMORY, dtype=np.uint8).size == 2 * MEMORY  # lifted again
