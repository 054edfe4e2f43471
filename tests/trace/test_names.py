"""A trace file's name decides its format in one place (``ampsim.trace.records.trace_format``)."""
import os

import networkx as nx
import pytest

from ampsim import Flooding, ListTracer, Simulation, load_trace, save_trace
from ampsim.engine.errors import TraceFormatError
from ampsim.trace.causality import as_trace
from ampsim.trace.export import export_trace
from ampsim.trace.records import trace_format


def _trace():
    tracer = ListTracer()
    Simulation(nx.cycle_graph(4), Flooding(), seed=0, tracer=tracer).run()
    return as_trace(tracer)


def test_names_map_to_formats():
    assert [trace_format(n) for n in ("a.jsonl", "a", "a.txt", "a.PARQUET", "a.pq")] == \
        ["jsonl", "jsonl", "jsonl", "parquet", "parquet"]


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl.gz", "t.png", "t.HTML"])
def test_a_trace_is_never_written_nor_read_under_another_formats_name(tmp_path, name):
    with pytest.raises(ValueError, match=f"{name}: a name ending in .* names another format"):
        save_trace(_trace(), tmp_path / name)
    save_trace(_trace(), tmp_path / "ok.jsonl")
    os.replace(tmp_path / "ok.jsonl", tmp_path / name)
    with pytest.raises(TraceFormatError, match="names another format"):
        load_trace(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name, fmt", [("a.jsonl", "parquet"), ("a.parquet", "jsonl"), ("a.pq", "shiviz"),
                                       ("a.csv", "parquet")])
def test_export_refuses_a_name_of_another_format(tmp_path, name, fmt):
    with pytest.raises(ValueError, match=name):
        export_trace(_trace(), tmp_path / name, fmt)
    assert list(tmp_path.iterdir()) == []


def test_export_writes_each_format_under_its_name(tmp_path):
    trace = _trace()
    assert export_trace(trace, tmp_path / "a.log", "shiviz").startswith("ShiViz log")
    export_trace(trace, tmp_path / "a.parquet", "parquet")
    export_trace(trace, tmp_path / "a.jsonl", "jsonl")
    assert load_trace(tmp_path / "a.parquet").records == load_trace(tmp_path / "a.jsonl").records == trace.records


def test_the_package_exports_the_replay_function_not_its_module():
    import ampsim.trace
    from ampsim.trace import replay
    from ampsim.trace.replay import replay as from_module

    assert callable(replay) and replay is from_module is ampsim.trace.replay
