"""Parquet traces (ampsim.trace.columnar): the same Trace as JSONL, written atomically in row groups."""
from __future__ import annotations

import os

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from ampsim import ListTracer, Simulation, TraceFormatError, get_rule, load_trace, parse_graph_spec, replay, save_trace  # noqa: E402
from ampsim.cli import main  # noqa: E402
from ampsim.trace.columnar import ParquetTracer, open_tracer, to_arrow, to_dataframe  # noqa: E402
from ampsim.trace.tracers import JSONLTracer, TeeTracer  # noqa: E402

CASES = {
    "flood-uniform-loss-all": dict(spec="random-regular:3:16:2", rule="flooding", delay="uniform", seed=4, loss=0.2, start="all"),
    "flood-fifo": dict(spec="grid:3x4", rule="flooding", delay="uniform", seed=1, fifo=True),
    "halting": dict(spec="petersen", rule="flooding-halt", delay="uniform", seed=2),
    "echo-budget": dict(spec="cycle:6", rule="echo", delay="uniform", seed=0, max_deliveries=200),
}


def _run(tracer, spec, rule, max_deliveries=None, **kwargs):
    sim = Simulation(parse_graph_spec(spec), get_rule(rule), tracer=tracer, **kwargs)
    if max_deliveries:
        sim.run(until=0.7)
        sim.run(max_deliveries=max_deliveries)
    else:
        sim.run()
    return sim


@pytest.mark.parametrize("row_group_size", [1, 7, 65536])
@pytest.mark.parametrize("case", list(CASES))
def test_parquet_reads_back_the_same_trace_as_jsonl(tmp_path, case, row_group_size):
    listed = ListTracer()
    pq_path, js_path = tmp_path / "t.parquet", tmp_path / "t.jsonl"
    with ParquetTracer(pq_path, row_group_size=row_group_size) as p, JSONLTracer(js_path) as j:
        _run(TeeTracer([listed, p, j]), **CASES[case])
    from_pq, from_js = load_trace(pq_path), load_trace(js_path)
    assert from_pq == from_js == listed.trace()
    assert any(r.event == "drop" for r in from_pq.messages) == (case in ("flood-uniform-loss-all", "halting"))
    if row_group_size == 7:
        assert pq.ParquetFile(pq_path).metadata.num_row_groups > 3  # written as the run went



def _msg(event, mid, t=0.0, payload="1"):
    from ampsim.trace.records import MessageRecord

    return MessageRecord(event, mid, -1, 0, 1, t, t + 1.0, 1.0, "k", payload, "")


# record streams no engine writes (a hand-built or edited Trace given to save_parquet): a delivery before
# its send, a reused msg_id, two deliveries of one copy, a delivery that differs from its send
ODD = {
    "deliver-before-send": [_msg("deliver", 5), _msg("send", 5), _msg("deliver", 5)],
    "reused-id": [_msg("send", 5), _msg("send", 5, 0.5), _msg("deliver", 5, 0.5), _msg("deliver", 5, 0.5)],
    "reused-after-delivery": [_msg("send", 5), _msg("send", 5, 0.5), _msg("deliver", 5, 0.5), _msg("send", 5, 2.0),
                              _msg("deliver", 5, 2.0), _msg("deliver", 5, 2.0)],
    "delivered-twice": [_msg("send", 5), _msg("deliver", 5), _msg("deliver", 5)],
    "edited-delivery": [_msg("send", 5), _msg("deliver", 5, payload="2")],
    "ids-not-in-order": [_msg("send", 7), _msg("send", 5), _msg("deliver", 5), _msg("drop", 7)],
}


@pytest.mark.parametrize("row_group_size", [1, 2, 100])
@pytest.mark.parametrize("case", list(ODD))
def test_odd_record_streams_read_back_exactly(tmp_path, case, row_group_size):
    """Rows are compacted only where the reader can rebuild them from the send it holds."""
    from ampsim.trace.io import Trace

    listed = ListTracer()
    _run(listed, **CASES["echo-budget"])
    trace = Trace(listed.trace().header, tuple(ODD[case]), listed.trace().ends)
    path = tmp_path / "odd.parquet"
    with ParquetTracer(path, row_group_size=row_group_size) as out:
        out.run_start(trace.header)
        for r in trace.records:
            (out.deliver if r.event == "deliver" else out.send)(r)
        for e in trace.ends:
            out.run_end(e)
    from ampsim.trace.columnar import load_parquet

    assert load_parquet(path).records == trace.records  # the raw reader (load_trace would also validate them)


def test_hooks_refuse_what_is_not_a_record(tmp_path):
    """The hooks only append (the hot path); a foreign object fails its row group, and nothing is left."""
    listed = ListTracer()
    _run(listed, **CASES["echo-budget"])
    for hook, bad, what in (("send", ("send", 1), "not a message record"), ("state", _msg("send", 1), "not a state record")):
        folder = tmp_path / hook
        folder.mkdir()
        with pytest.raises(TypeError, match=what):
            with ParquetTracer(folder / "t.parquet") as out:
                out.run_start(listed.trace().header)
                getattr(out, hook)(bad)
        assert os.listdir(folder) == []


def test_states_ride_in_their_delivery_rows_and_older_files_still_read(tmp_path):
    """A state right after its delivery is that row's ``text``; files of the first layout (a row per
    state) read back the same (``data/layout1_petersen.*``: written by the first layout, kept as is)."""
    data = os.path.join(os.path.dirname(__file__), "data")
    old_pq, old_js = os.path.join(data, "layout1_petersen.parquet"), os.path.join(data, "layout1_petersen.jsonl")
    trace = load_trace(old_js)
    assert load_trace(old_pq) == trace
    assert pq.read_table(old_pq).column("type").to_pylist().count(3) == len(trace.states)  # a row per state
    new = tmp_path / "new.parquet"
    save_trace(trace, new)
    assert load_trace(new) == trace
    types = pq.read_table(new).column("type").to_pylist()
    startup = [s for s in trace.states if s.msg_id == -1]
    assert types.count(3) == len(startup) and len(types) == len(trace.records) - len(trace.states) + len(startup) + 1


def test_replay_plot_and_export_read_parquet(tmp_path, capsys):
    path = tmp_path / "run.parquet"
    assert main(["run", "--graph", "grid:3x4", "--delay", "uniform", "--seed", "3", "--trace", str(path)]) == 0
    assert pq.ParquetFile(path).metadata.metadata[b"ampsim.header"].startswith(b'{"type":"header"')
    assert main(["replay", str(path), "--verify"]) == 0
    assert "identical" in capsys.readouterr().out
    assert replay(path).records == load_trace(path).records
    assert main(["export", str(path), "--format", "jsonl", "-o", str(tmp_path / "run.jsonl")]) == 0
    assert load_trace(tmp_path / "run.jsonl") == load_trace(path)
    assert main(["export", str(tmp_path / "run.jsonl"), "--format", "parquet", "-o", str(tmp_path / "b.parquet")]) == 0
    assert load_trace(tmp_path / "b.parquet") == load_trace(path)
    assert main(["export", str(path), "--format", "shiviz", "-o", str(tmp_path / "run.shiviz")]) == 0
    assert main(["plot", str(path), "-o", str(tmp_path / "t.png")]) == 0 and (tmp_path / "t.png").stat().st_size > 0
    save_trace(load_trace(path), tmp_path / "c.parquet")
    assert load_trace(tmp_path / "c.parquet") == load_trace(path)


def test_open_tracer_picks_the_format_by_suffix(tmp_path):
    assert isinstance(open_tracer(tmp_path / "a.parquet"), ParquetTracer)
    t = open_tracer(tmp_path / "a.jsonl")
    assert isinstance(t, JSONLTracer)
    t.abort()


def test_nothing_half_written(tmp_path):
    path = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError):
        with ParquetTracer(path, row_group_size=5) as tracer:
            _run(tracer, "cycle:8", "flooding", delay="uniform")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_bytes_per_message_small(tmp_path):
    path = tmp_path / "t.parquet"
    with ParquetTracer(path) as tracer:
        sim = _run(tracer, "complete:60", "flooding", delay="uniform", seed=0)
    assert sim.deliveries == 60 * 59 + 1
    assert path.stat().st_size / sim.deliveries < 60  # JSONL: about 480 (with states)


def test_corrupt_and_foreign_files_fail_with_one_clear_error(tmp_path):
    good = tmp_path / "good.parquet"
    with ParquetTracer(good) as tracer:
        _run(tracer, "path:4", "flooding")
    data = good.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFormatError, match="corrupt or truncated"):
        load_trace(tmp_path / "cut.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "foreign.parquet")
    with pytest.raises(TraceFormatError, match="not an ampsim trace"):
        load_trace(tmp_path / "foreign.parquet")
    with pytest.raises(FileNotFoundError):
        load_trace(tmp_path / "missing.parquet")


def test_dataframe_and_arrow_views(tmp_path):
    pd = pytest.importorskip("pandas")
    listed = ListTracer()
    with ParquetTracer(tmp_path / "t.parquet") as p:
        _run(TeeTracer([listed, p]), "path:3", "flooding")
    df = to_dataframe(tmp_path / "t.parquet")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["event", "msg_id", "cause_id", "src", "dst", "t_send", "t_deliver", "delay",
                                "kind", "payload", "reason"]
    assert df[df.event == "deliver"].msg_id.tolist() == [0, 1, 2, 3, 4]
    assert df[df.event == "deliver"].t_deliver.tolist() == [0.0, 1.0, 2.0, 2.0, 3.0]
    states = to_arrow(listed, "states")
    assert states.column_names == ["t", "node", "msg_id", "state"] and states.num_rows == 3 + 5
    assert to_arrow([], "messages").num_rows == 0


def _doc_blocks(heading: str) -> list[str]:
    """The ```python blocks of docs/tools.md's section ``heading`` (up to the next heading of any level)."""
    import re

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "tools.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split(heading, 1)[1]
    section = re.split(r"\n#{1,6} ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_documented_readers_give_the_records(tmp_path, monkeypatch):
    """docs/tools.md: plain read_parquet gives storage rows; ampsim's one line and the pandas recipe give records."""
    pd = pytest.importorskip("pandas")
    listed = ListTracer()
    with ParquetTracer(tmp_path / "run.parquet") as p:
        _run(TeeTracer([listed, p]), **CASES["flood-uniform-loss-all"])
    monkeypatch.chdir(tmp_path)
    blocks = _doc_blocks("### Reading a Parquet trace as records")
    assert len(blocks) == 2
    ns: dict = {}
    for block in blocks:
        exec(compile(block, "docs/tools.md", "exec"), ns)
    messages = [r for r in listed.records if r.__class__.__name__ == "MessageRecord"]
    df = ns["df"]
    assert len(ns["rows"]) < len(listed.records) and ns["rows"]["src"].isna().any()  # storage rows, not records
    assert len(df) == len(messages) and list(df.columns) == ["event", *messages[0]._fields[1:]]
    assert [tuple(r) for r in df.itertuples(index=False)] == [tuple(m) for m in messages]
    assert len(ns["states"]) == sum(1 for r in listed.records if r.__class__.__name__ == "StateRecord")
    pd.testing.assert_frame_equal(ns["msgs"][list(df.columns)].reset_index(drop=True), df)
    assert (df.event == "drop").any() and (df.src == -1).any()  # the lossy multi-start case: drops, initial messages
