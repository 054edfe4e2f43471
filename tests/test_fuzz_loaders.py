"""Property tests (hypothesis) for the loaders: random bytes and random mutations of valid files.

The only outcomes allowed are success or the loader's own error class with a message that
names the file: :class:`TraceFormatError` for traces, :class:`EdgeListError` (a
``GraphError``) for edge lists, :class:`CheckpointError` for checkpoints.
"""
from __future__ import annotations

import json
import os
import tempfile

import networkx as nx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ampsim import JSONLTracer, Simulation, TraceFormatError, load_trace, parse_graph_spec
from ampsim.checkpoint import load_checkpoint
from ampsim.engine.errors import CheckpointError, GraphError
from ampsim.protocols import HaltingFlooding

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_trace_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.jsonl")
        with JSONLTracer(path) as tracer:
            sim = Simulation(nx.cycle_graph(5), HaltingFlooding(), delay="uniform", seed=1, tracer=tracer, loss=0.2,
                             start=[0, 2])
            sim.step()
            sim.run()
        with open(path, "rb") as f:
            return f.read()


TRACE = _valid_trace_bytes()
EDGES = b"# a small graph\n0 1\n1 2\n2,3\n3 0\n4\n4 1\n"


def _checkpoint_bytes() -> bytes:
    import torch

    from ampsim.fileio import save_torch

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.pt")
        save_torch({"format": "ampsim.train.checkpoint", "epoch": 3, "model": {"w": torch.arange(6.0)},
                    "history": {"loss": [0.5, 0.25]}}, path)
        with open(path, "rb") as f:
            return f.read()


@st.composite
def mutated(draw, data: bytes):
    """A valid file after one to three random edits: truncation, byte flips, line deletion/duplication/swap, field edits."""
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["truncate", "flip", "delete", "duplicate", "swap", "field", "insert"]))
        lines = data.split(b"\n")
        if how == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif how == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
        elif how == "delete" and len(lines) > 1:
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"\n".join(lines)
        elif how == "duplicate" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = b"\n".join(lines)
        elif how == "swap" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 2))
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            data = b"\n".join(lines)
        elif how == "insert":
            i = draw(st.integers(0, len(lines)))
            lines.insert(i, draw(st.binary(max_size=20)))
            data = b"\n".join(lines)
        elif how == "field" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            try:
                obj = json.loads(lines[i])
            except ValueError:
                continue
            if isinstance(obj, dict) and obj:
                key = draw(st.sampled_from(sorted(obj)))
                obj[key] = draw(st.one_of(
                    st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=False),
                    st.text(max_size=5), st.lists(st.integers(-2, 12), max_size=4),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                ))
                if draw(st.booleans()) and key != "type":
                    del obj[key]
                lines[i] = json.dumps(obj).encode()
                data = b"\n".join(lines)
    return data


def _only_success_or(error, loader, data: bytes, name: str):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        try:
            return loader(path)
        except error as exc:
            assert path in str(exc), f"{type(exc).__name__} does not name the file: {exc}"
            return None


def test_the_valid_files_load():
    assert len(_only_success_or(TraceFormatError, load_trace, TRACE, "t.jsonl").records) > 10
    assert _only_success_or(GraphError, parse_graph_spec, EDGES, "g.txt").num_nodes == 5
    assert _only_success_or(CheckpointError, load_checkpoint, _checkpoint_bytes(), "c.pt")["epoch"] == 3


@FAST
@given(st.binary(max_size=400))
def test_trace_loader_random_bytes(data):
    _only_success_or(TraceFormatError, load_trace, data, "t.jsonl")


@FAST
@given(mutated(TRACE))
def test_trace_loader_mutations(data):
    trace = _only_success_or(TraceFormatError, load_trace, data, "t.jsonl")
    if trace is not None:  # a mutation the validation accepts is a consistent trace: it replays
        from ampsim import replay

        try:
            replay(trace, rule=HaltingFlooding())
        except Exception as exc:  # only ampsim's own errors, never a crash
            from ampsim import AmpsimError

            assert isinstance(exc, AmpsimError), repr(exc)


@FAST
@given(st.binary(max_size=200))
@example(b",")  # found by this test: a line of only commas
@example(b"0 1\n,,\n")
def test_edge_list_loader_random_bytes(data):
    _only_success_or(GraphError, parse_graph_spec, data, "g.txt")


@FAST
@given(mutated(EDGES))
def test_edge_list_loader_mutations(data):
    _only_success_or(GraphError, parse_graph_spec, data, "g.txt")


@pytest.fixture(scope="module")
def ckpt_bytes():
    return _checkpoint_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_checkpoint_loader_mutations_and_random_bytes(ckpt_bytes, data):
    blob = data.draw(st.one_of(st.binary(max_size=300), mutated(ckpt_bytes)))
    _only_success_or(CheckpointError, load_checkpoint, blob, "c.pt")
