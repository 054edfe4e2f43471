"""Trace files: versioned header, atomic writes, validation, replay that detects tampering."""
from __future__ import annotations

import json
import os

import networkx as nx
import pytest

from ampsim import (
    Flooding,
    JSONLTracer,
    ListTracer,
    ReplayMismatch,
    Simulation,
    TraceFormatError,
    load_trace,
    replay,
    save_trace,
)


def write(path, graph=None, **kw):
    with JSONLTracer(path) as t:
        sim = Simulation(graph if graph is not None else nx.petersen_graph(), Flooding(), tracer=t, **kw)
        sim.run()
    return path


def test_header_fields(tmp_path):
    p = write(tmp_path / "t.jsonl", delay="uniform", seed=4, fifo=True)
    header = json.loads(p.read_text().splitlines()[0])
    assert header["format"] == "ampsim.trace" and header["version"] == 1
    assert header["seed"] == 4 and header["fifo"] is True
    assert header["delay"] == {"name": "uniform", "low": 0.0, "high": 1.0}
    assert header["rule"] == {"name": "flooding", "params": {}}
    assert len(header["graph_hash"]) == 16 and header["graph"]["n"] == 10


def test_load_round_trip(tmp_path):
    p = write(tmp_path / "t.jsonl", delay="uniform", seed=1)
    tr = load_trace(p)
    lt = ListTracer()
    Simulation(nx.petersen_graph(), Flooding(), delay="uniform", seed=1, tracer=lt).run()
    assert tr.records == tuple(lt.records) and tr.ends == tuple(lt.ends)
    q = tmp_path / "copy.jsonl"
    save_trace(tr, q)
    assert q.read_bytes() == p.read_bytes()


def test_failed_run_leaves_nothing(tmp_path):
    class Boom(Flooding):
        def receive(self, node, state, message):
            raise RuntimeError("boom")

    p = tmp_path / "t.jsonl"
    with pytest.raises(RuntimeError, match="boom"):
        with JSONLTracer(p) as t:
            Simulation(nx.cycle_graph(4), Boom(), tracer=t).run()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mutate, match", [
    (lambda lines: [], "empty file"),
    (lambda lines: ['{"type": "header", "format": "other"}'] + lines[1:], "not an ampsim trace"),
    (lambda lines: [lines[0].replace('"version":1', '"version":99')] + lines[1:], "version 99"),
    (lambda lines: lines[:3] + ["{not json"] + lines[4:], ":4: not valid JSON"),
    (lambda lines: lines[:-1], "truncated"),
    (lambda lines: lines[:2] + ['{"type": "teleport"}'] + lines[2:], "unknown record type"),
    (lambda lines: lines[:2] + ['{"type": "send", "msg_id": 1}'] + lines[2:], "lacks fields"),
    (lambda lines: ["[1, 2]"] + lines[1:], "JSON object"),
])
def test_corrupt_or_foreign_files_give_one_clear_error(tmp_path, mutate, match):
    p = write(tmp_path / "t.jsonl")
    lines = p.read_text().splitlines()
    p.write_text("\n".join(mutate(lines)) + ("\n" if mutate(lines) else ""))
    with pytest.raises(TraceFormatError, match=match):
        load_trace(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="trace file not found"):
        load_trace(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("delay, fifo, loss", [("constant", False, 0.0), ("uniform", False, 0.0), ("uniform", True, 0.2)])
def test_replay_reproduces_every_record(tmp_path, delay, fifo, loss):
    p = write(tmp_path / "t.jsonl", graph=nx.random_regular_graph(3, 16, seed=2), delay=delay, fifo=fifo, seed=9, loss=loss)
    new = replay(p)
    assert new.records == load_trace(p).records


def test_replay_is_independent_of_seed_in_header(tmp_path):
    p = write(tmp_path / "t.jsonl", delay="uniform", seed=3)
    lines = p.read_text().splitlines()
    header = json.loads(lines[0])
    header["seed"] = 12345
    p.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    replay(p)  # delays come from the records, not the stream


def test_replay_detects_tampered_delay(tmp_path):
    p = write(tmp_path / "t.jsonl", delay="uniform", seed=3)
    lines = p.read_text().splitlines()
    idx = next(i for i, l in enumerate(lines) if '"type":"send"' in l and '"src":0' in l)
    rec = json.loads(lines[idx])
    rec["delay"] = rec["delay"] + 0.5
    lines[idx] = json.dumps(rec)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayMismatch) as info:
        replay(p)
    assert info.value.index <= idx


def test_replay_detects_tampered_payload(tmp_path):
    p = write(tmp_path / "t.jsonl")
    text = p.read_text().replace('"payload":"2"', '"payload":"7"', 1)
    p.write_text(text)
    with pytest.raises(ReplayMismatch, match="diverged at record|does not match its send record"):
        replay(p)


def test_replay_detects_altered_graph(tmp_path):
    p = write(tmp_path / "t.jsonl")
    lines = p.read_text().splitlines()
    header = json.loads(lines[0])
    header["graph"]["edges"] = header["graph"]["edges"][:-1]
    p.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    with pytest.raises(TraceFormatError, match="graph_hash"):
        replay(p)


def test_replay_budget_and_time_limited_runs(tmp_path, echo):
    p = tmp_path / "t.jsonl"
    with JSONLTracer(p) as t:
        sim = Simulation(nx.cycle_graph(5), echo, delay="uniform", seed=1, tracer=t)
        sim.run(max_deliveries=40)
        sim.run(until=sim.now + 2.0)
    new = replay(load_trace(p), rule=echo)
    assert [e.reason for e in new.ends] == ["message_budget", "time_limit"]


def test_features_travel_in_the_header(tmp_path):
    class Echoes:
        name, assumes = "features-echo", frozenset()

        def start(self, node):
            return node.features, None

        def receive(self, node, state, message):
            return state, None

    p = tmp_path / "t.jsonl"
    feats = [[0.1, 2.0], [3.5, -1.0], [1e-9, 7.0]]
    with JSONLTracer(p) as t:
        Simulation(nx.path_graph(3), Echoes(), features=feats, tracer=t).run()
    assert json.loads(p.read_text().splitlines()[0])["features"] == feats
    assert replay(p, rule=Echoes()).states[0].state == "[0.1, 2.0]"


def test_replay_rebuilds_start_messages(tmp_path):
    from ampsim import Message

    p = tmp_path / "t.jsonl"
    with JSONLTracer(p) as t:
        Simulation(nx.path_graph(4), Flooding(), start={0: Message("go"), 3: Message("go")}, tracer=t).run()
    replay(p)
    q = tmp_path / "u.jsonl"
    with JSONLTracer(q) as t:
        Simulation(nx.path_graph(4), Flooding(), start={1: Message("go", 5)}, tracer=t).run()
    with pytest.raises(TraceFormatError, match="pass start="):
        replay(q)
    replay(q, start={1: Message("go", 5)})


# ---------------------------------------------------------------- header against records (JSONL and Parquet)
def _with_header(trace, **changes):
    from ampsim.trace.io import Trace

    return Trace({**trace.header, **changes}, trace.records, trace.ends)


def _rehash(graph: dict) -> str:
    from ampsim.graphs import Graph

    return Graph.from_dict(graph).hash()


def _tampered_headers(tmp_path):
    from ampsim.protocols import HaltingFlooding

    base = load_trace(write(tmp_path / "c.jsonl", nx.cycle_graph(5), delay=0.5))
    uni = load_trace(write(tmp_path / "u.jsonl", nx.cycle_graph(5), delay="uniform", seed=2))
    lost_path = tmp_path / "l.jsonl"
    with JSONLTracer(lost_path) as t:
        Simulation(nx.cycle_graph(5), HaltingFlooding(), delay="uniform", seed=1, tracer=t, loss=0.3).run()
    lost = load_trace(lost_path)
    assert any(r.event == "drop" for r in lost.messages)
    bigger = {**base.header["graph"], "n": 6}
    return {
        "constant value": (_with_header(base, delay={"name": "constant", "value": 0.25}), "cannot give"),
        "constant claims random": (_with_header(base, delay={"name": "constant", "value": 0.5, "random": True}), "not random"),
        "uniform range": (_with_header(uni, delay={"name": "uniform", "low": 0.0, "high": 0.1}), "cannot give"),
        "uniform params": (_with_header(uni, delay={"name": "uniform", "low": 2.0, "high": 1.0}), "low < high"),
        "version true": (_with_header(base, version=True), "version True is not supported"),
        "version 1.0": (_with_header(base, version=1.0), "version 1.0 is not supported"),
        "format": (_with_header(base, format="other"), "not an ampsim trace"),
        "loss zero": (_with_header(lost, loss=0.0), "header says loss 0"),
        "start": (_with_header(base, start=[1]), "start nodes"),
        "more nodes": (_with_header(base, graph=bigger, graph_hash=_rehash(bigger)), "another graph"),
    }


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_header_that_disagrees_with_its_records_is_a_mismatch(tmp_path, suffix):
    from ampsim.engine.errors import TraceMismatch

    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    for name, (trace, match) in _tampered_headers(tmp_path).items():
        with pytest.raises(TraceMismatch, match=match):
            replay(trace)
        path = tmp_path / f"{name.replace(' ', '_')}{suffix}"
        from ampsim.trace.columnar import save_parquet
        from ampsim.trace.tracers import JSONLTracer as Writer

        if suffix == ".parquet":
            save_parquet(trace, path)
        else:
            with Writer(path) as out:  # written as is: save_trace would refuse nothing, the reader must
                out.run_start(trace.header)
                for r in trace.records:
                    out.send(r)
                for e in trace.ends:
                    out.run_end(e)
        # an unsupported format or version is refused as such when the file is read; the rest are mismatches
        # (what `ampsim replay --verify` reports with exit 1), never "identical"
        expected = TraceFormatError if name.startswith(("version", "format")) else TraceMismatch
        with pytest.raises(expected, match=match.replace(" is not", ".*is not")):
            load_trace(path)
        with pytest.raises(expected):
            replay(path)


def test_replay_with_another_rule_is_a_header_mismatch(tmp_path):
    from ampsim.protocols import HaltingFlooding

    p = write(tmp_path / "t.jsonl", nx.path_graph(2))
    with pytest.raises(ReplayMismatch, match="diverged in the header") as err:
        replay(p, rule=HaltingFlooding())
    assert err.value.index == -1 and "'rule'" in str(err.value)
    replay(p)  # the recorded rule: identical


# ---------------------------------------------------------------- sizes from the file, before allocation
def test_sizes_from_the_file_are_checked_before_reading(tmp_path):
    import tracemalloc

    from ampsim.engine.errors import SizeLimitError

    p = write(tmp_path / "t.jsonl", nx.cycle_graph(5))
    lines = p.read_text().splitlines()
    header = json.loads(lines[0])
    header["graph"] = {"n": 10**12, "edges": []}
    huge = tmp_path / "huge.jsonl"
    huge.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(SizeLimitError, match=r"1,000,000,000,000 nodes.*raise it with load_trace\(max_edges=\)"):
            load_trace(huge)
        assert tracemalloc.get_traced_memory()[1] < 20_000_000
    finally:
        tracemalloc.stop()
    with pytest.raises(SizeLimitError, match=r"up to \d+ records .*raise it with max_records= \(now 3\)"):
        load_trace(p, max_records=3)
    assert len(load_trace(p, max_records=None).records) == len(load_trace(p).records)


def test_parquet_length_is_checked_from_its_footer(tmp_path):
    pytest.importorskip("pyarrow")
    from ampsim.engine.errors import SizeLimitError

    p = tmp_path / "t.parquet"
    save_trace(load_trace(write(tmp_path / "t.jsonl", nx.cycle_graph(5))), p)
    with pytest.raises(SizeLimitError, match=r"holds \d+ records and would need .*max_records= \(now 2\)"):
        load_trace(p, max_records=2)
