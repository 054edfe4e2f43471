"""Shared fixtures: tiny graphs, a list tracer, and rules used across the engine tests."""
from __future__ import annotations

import os

import networkx as nx
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from ampsim import ListTracer
from ampsim.protocols import Echo


class Silent:
    """Never emits: the start message is the only delivery."""

    name = "silent"
    assumes = frozenset()

    def start(self, node):
        return "idle", None

    def receive(self, node, state, message):
        return "got", None


@pytest.fixture
def one_thread():
    """One torch thread for the test: tiny batches avoid OpenMP stalls on a shared 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tracer():
    return ListTracer()


@pytest.fixture
def cycle6():
    return nx.cycle_graph(6)


@pytest.fixture
def path3():
    return nx.path_graph(3)


@pytest.fixture
def echo():
    return Echo()


@pytest.fixture
def silent():
    return Silent()
