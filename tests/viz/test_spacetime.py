"""The space-time diagram (ampsim.viz.spacetime): one artist family per element, counted and placed exactly."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from ampsim import ListTracer, Message, Simulation, get_rule, parse_graph_spec, save_trace  # noqa: E402
from ampsim.cli import main as cli_main  # noqa: E402
from ampsim.protocols import Echo, HaltingFlooding  # noqa: E402
from ampsim.viz import category_colors, plot_spacetime  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _run(spec, rule=None, run=None, **kwargs) -> ListTracer:
    tracer = ListTracer()
    sim = Simulation(parse_graph_spec(spec), rule or get_rule("flooding"), tracer=tracer, **kwargs)
    sim.run(**(run or {}))
    return tracer


def _gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) <= 1, gid
    return found[0] if found else None


class PingPong:
    """Alternates kinds: odd-numbered receptions emit 'ping', even ones 'pong'; stops after 3."""

    name = "pingpong"
    assumes = frozenset()

    def start(self, node):
        return 0, None

    def receive(self, node, state, message):
        state += 1
        if state > 3:
            return state, None
        return state, Message("ping" if state % 2 else "pong", state)


def test_one_arrow_per_delivered_message_and_one_lane_per_node():
    tracer = _run("petersen", delay="uniform", seed=3)
    delivered = [r for r in tracer.messages if r.event == "deliver" and r.src >= 0]
    ax = plot_spacetime(tracer)
    q = _gid(ax, "messages")
    assert q.N == len(delivered) == 30
    np.testing.assert_allclose(q.X, [r.t_send for r in delivered])
    np.testing.assert_allclose(q.Y, [r.src for r in delivered])
    np.testing.assert_allclose(q.U, [r.t_deliver - r.t_send for r in delivered])
    np.testing.assert_allclose(q.V, [r.dst - r.src for r in delivered])
    assert len(_gid(ax, "lanes").get_segments()) == 10
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in range(10)]
    assert ax.get_ylim() == (9.5, -0.5)  # node 0 on top
    assert ax.get_xlabel() == "simulation time" and ax.get_ylabel() == "node"
    np.testing.assert_allclose(_gid(ax, "initial").get_offsets(), [[0.0, 0.0]])
    assert _gid(ax, "drops") is None and _gid(ax, "in_flight") is None
    assert "flooding on petersen (n=10), uniform delays, seed 3: quiescent" in ax.get_title()


def test_colours_by_kind_with_legend():
    tracer = _run("cycle:5", rule=PingPong(), delay="uniform", seed=1)
    delivered = [r for r in tracer.messages if r.event == "deliver" and r.src >= 0]
    assert {r.kind for r in delivered} == {"ping", "pong"}
    ax = plot_spacetime(tracer)
    colors = category_colors(["ping", "pong"])
    np.testing.assert_allclose(_gid(ax, "messages").get_facecolor(), [to_rgba(colors[r.kind]) for r in delivered])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["ping", "pong"] and "initial message" in labels and "end: quiescent" in labels


def test_color_by_callable():
    tracer = _run("path:4", delay="uniform", seed=2)
    delivered = [r for r in tracer.messages if r.event == "deliver" and r.src >= 0]
    ax = plot_spacetime(tracer, color_by=lambda r: "right" if r.dst > r.src else "left", title="custom")
    colors = category_colors(["left", "right"])
    expected = [to_rgba(colors["right" if r.dst > r.src else "left"]) for r in delivered]
    np.testing.assert_allclose(_gid(ax, "messages").get_facecolor(), expected)
    assert ax.get_title() == "custom"
    with pytest.raises(ValueError, match="color_by"):
        plot_spacetime(tracer, color_by="colour")


def test_lost_copies_end_half_way_at_a_cross():
    tracer = _run("cycle:8", delay="uniform", seed=3, loss=0.2)
    drops = [r for r in tracer.messages if r.event == "drop"]
    assert len(drops) == 3 and all(r.reason == "lost" for r in drops)
    ax = plot_spacetime(tracer)
    expected = [[(r.t_send + r.t_deliver) / 2, (r.src + r.dst) / 2] for r in drops]
    np.testing.assert_allclose(_gid(ax, "drops").get_offsets(), expected)
    assert len(_gid(ax, "drop_lines").get_segments()) == 3
    assert "dropped" in [t.get_text() for t in ax.get_legend().get_texts()]
    hidden = plot_spacetime(tracer, show_drops=False)
    assert _gid(hidden, "drops") is None and _gid(hidden, "drop_lines") is None


def test_copies_dropped_by_a_halted_node_reach_its_lane():
    tracer = _run("cycle:4", rule=HaltingFlooding())
    drops = [r for r in tracer.messages if r.event == "drop"]
    assert drops and all(r.reason == "halted" for r in drops)
    ax = plot_spacetime(tracer)
    np.testing.assert_allclose(_gid(ax, "drops").get_offsets(), [[r.t_deliver, r.dst] for r in drops])


def test_budget_cut_draws_copies_in_flight_dashed():
    tracer = _run("grid:3x4", delay="uniform", seed=1, run={"max_deliveries": 12})
    end = tracer.ends[-1]
    assert end.reason == "message_budget" and len(end.in_flight) == 13
    sends = {r.msg_id: r for r in tracer.messages if r.event == "send"}
    ax = plot_spacetime(tracer)
    segments = _gid(ax, "in_flight").get_segments()
    expected = [[[sends[m].t_send, sends[m].src], [sends[m].t_deliver, sends[m].dst]] for m in end.in_flight]
    np.testing.assert_allclose(np.array(segments), expected)
    np.testing.assert_allclose(_gid(ax, "ends").get_segments()[0][:, 0], [end.time, end.time])
    assert "end: message_budget" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert _gid(plot_spacetime(tracer, show_in_flight=False), "in_flight") is None


def test_node_subset_picks_lanes_and_their_messages():
    tracer = _run("path:5")
    ax = plot_spacetime(tracer.records, nodes=[2, 1, 0])  # a plain list: no header, no title
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2", "1", "0"]
    q = _gid(ax, "messages")
    # path 0-1-2-3-4 flooding from 0: among {0,1,2}: 0->1, 1->0, 1->2, 2->1
    assert q.N == 4
    lane = {2: 0, 1: 1, 0: 2}
    inside = [r for r in tracer.messages if r.event == "deliver" and r.src in lane and r.dst in lane]
    np.testing.assert_allclose(q.Y, [lane[r.src] for r in inside])
    assert ax.get_title() == ""
    with pytest.raises(ValueError, match="not in the trace"):
        plot_spacetime(tracer, nodes=[0, 7])
    with pytest.raises(ValueError, match="repeat"):
        plot_spacetime(tracer, nodes=[0, 0])


def test_draws_into_a_given_axes_and_scales_to_many_messages():
    tracer = _run("random-regular:3:50:1", rule=Echo(), delay="uniform", seed=2, start="all",
                  run={"max_deliveries": 2000})
    fig, ax = plt.subplots()
    assert plot_spacetime(tracer, ax=ax) is ax
    assert _gid(ax, "messages").N == 2000 - 50  # the 50 initial messages are markers, not arrows
    assert len(ax.get_yticklabels()) == 50


def test_cli_plot_writes_a_png(tmp_path):
    tracer = _run("cycle:6", delay="uniform", seed=3, loss=0.2, run={"max_deliveries": 5})
    save_trace(tracer.trace(), tmp_path / "t.jsonl")
    out = tmp_path / "timeline.png"
    assert cli_main(["plot", str(tmp_path / "t.jsonl"), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
