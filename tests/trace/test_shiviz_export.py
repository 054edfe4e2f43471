"""ShiViz: the upload file, ``ampsim export --format shiviz``, and which messages ShiViz draws."""
from __future__ import annotations

import pytest

import ampsim
import ampsim.trace
from ampsim import ListTracer, Simulation, get_rule, parse_graph_spec, save_trace
from ampsim.cli import main
from ampsim.trace.causality import (
    SHIVIZ_PARSER,
    STARTUP,
    parse_shiviz,
    shiviz_edges,
    shiviz_file,
    shiviz_hidden,
    to_shiviz,
    vector_clocks,
)


def _run(spec: str, rule: str, **kwargs) -> ListTracer:
    tracer = ListTracer()
    run_kwargs = {"max_deliveries": kwargs.pop("max_deliveries")} if "max_deliveries" in kwargs else {}
    Simulation(parse_graph_spec(spec), get_rule(rule), tracer=tracer, **kwargs).run(**run_kwargs)
    return tracer


def _upload(text: str) -> tuple[str, str, str]:
    """What ShiViz's "select a file" does: line 1 the parser, line 2 the delimiter, the rest the log."""
    first, second = text.split("\n", 2)[:2]
    return first, second.strip(), text[text.index("\n", text.index("\n") + 1) + 1:]


def test_upload_file_layout_path3():
    tracer = _run("path:3", "flooding")
    text = shiviz_file(tracer)
    parser, delimiter, log = _upload(text)
    assert parser == SHIVIZ_PARSER == r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"
    assert delimiter == ""
    assert log == to_shiviz(tracer)
    assert text.splitlines()[2:4] == ["deliver m0 start from outside t=0 sends 1", 'n0 {"n0":1}']
    assert parse_shiviz(text) == parse_shiviz(log) and len(parse_shiviz(text)) == 5


def test_export_cli_writes_the_upload_file(tmp_path, capsys):
    tracer = _run("grid:3x4", "echo", delay="uniform", seed=5, max_deliveries=60)
    save_trace(tracer.trace(), tmp_path / "echo.jsonl")
    out = tmp_path / "echo.shiviz"
    assert main(["export", str(tmp_path / "echo.jsonl"), "--format", "shiviz", "-o", str(out)]) == 0
    assert "60 events" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert text == shiviz_file(tracer)
    hosts = [h for h, _, _ in parse_shiviz(text)]
    assert len(hosts) == 60 and set(hosts) == {f"n{v}" for v in range(12)}
    assert not list(tmp_path.glob(".*partial*"))


def test_export_cli_dash_is_standard_output_for_shiviz_only(tmp_path, capsys, monkeypatch):
    tracer = _run("path:3", "flooding")
    save_trace(tracer.trace(), tmp_path / "p.jsonl")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "p.jsonl", "--format", "shiviz", "-o", "-"]) == 0
    assert capsys.readouterr().out == shiviz_file(tracer)
    assert main(["export", "p.jsonl", "--format", "jsonl", "-o", "-"]) == 2
    assert "cannot go to standard output" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]  # no file named "-"


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.jsonl"), "--format", "shiviz", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ampsim: error: trace file not found") and err.count("\n") == 1


def test_importable_from_ampsim_and_ampsim_trace():
    assert ampsim.shiviz_file is shiviz_file and ampsim.trace.shiviz_file is shiviz_file
    assert ampsim.trace.to_shiviz is to_shiviz and ampsim.write_shiviz is ampsim.trace.write_shiviz
    assert ampsim.export_trace is ampsim.trace.export_trace


def test_echo_grid_shiviz_draws_49_of_59():
    tracer = _run("grid:3x4", "echo", delay="uniform", seed=5, max_deliveries=60)
    events = vector_clocks(tracer)
    neighbour = [e for e in events if e.msg_id != STARTUP and e.src >= 0]
    hidden = shiviz_hidden(tracer)
    assert len(neighbour) == 59 and len(neighbour) - len(hidden) == 49
    # hidden == the receiver already knew of the sender event (its previous clock covers it)
    prev: dict[int, tuple] = {}
    by_msg = {e.msg_id: e for e in events}
    known_before = []
    for e in events:
        if e.msg_id != STARTUP and e.src >= 0:
            sender = by_msg[e.cause_id]
            if prev.get(e.node, (0,) * 12)[e.src] >= sender.local:
                known_before.append(e.msg_id)
        prev[e.node] = e.clock
    assert hidden == known_before


def test_flooding_with_constant_delays_every_message_is_drawn():
    tracer = _run("petersen", "flooding")
    assert shiviz_hidden(tracer) == []
    parents = shiviz_edges(tracer)
    events = vector_clocks(tracer)
    # every delivery from a neighbour has exactly its sender event as its one parent
    for e in events:
        if e.msg_id != STARTUP and e.src >= 0:
            sender = next(s for s in events if s.msg_id == e.cause_id)
            assert parents[e.index] == [(sender.node, sender.local)]


def test_write_shiviz_plain_log(tmp_path):
    tracer = _run("path:3", "flooding")
    path = ampsim.trace.write_shiviz(tracer, tmp_path / "plain.log", upload=False)
    assert (tmp_path / "plain.log").read_text(encoding="utf-8") == to_shiviz(tracer) and path.endswith("plain.log")


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        ampsim.export_trace(_run("path:3", "flooding"), tmp_path / "x", "dot")
