"""The graph at a time and the animation over deliveries (ampsim.viz.graphstate)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from ampsim import ListTracer, Simulation, get_rule, parse_graph_spec  # noqa: E402
from ampsim.viz import animate, delivery_states, graph_state, plot_graph_state  # noqa: E402
from ampsim.viz.graphstate import FRESH_COLOR, STATE_COLOR  # noqa: E402

LINE = {0: (0.0, 0.0), 1: (1.0, 0.0), 2: (2.0, 0.0)}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def path3() -> ListTracer:
    """Flooding on 0-1-2 from 0, delay 1: m1 0->1 [0,1]; m2 1->0, m3 1->2 [1,2]; m4 2->1 [2,3]."""
    tracer = ListTracer()
    Simulation(parse_graph_spec("path:3"), get_rule("flooding"), tracer=tracer).run()
    return tracer


def _gid(ax, gid):
    (found,) = [a for a in ax.get_children() if a.get_gid() == gid]
    return found


def _labels(ax):
    return [t.get_text() for t in ax.texts]


def test_state_between_deliveries(path3):
    s = graph_state(path3, 1.5)
    assert s.states == ("0", "1", "")
    assert [(r.msg_id, f) for r, f in s.in_flight] == [(2, 0.5), (3, 0.5)]
    assert s.active == 1


def test_delivered_at_t_is_gone_and_sent_at_t_sits_on_its_sender(path3):
    s = graph_state(path3, 2.0)
    assert s.states == ("0", "1", "2")
    assert [(r.msg_id, r.src, r.dst, f) for r, f in s.in_flight] == [(4, 2, 1, 0.0)]
    before = graph_state(path3, 0.0)
    assert before.states == ("0", "", "") and [(r.msg_id, f) for r, f in before.in_flight] == [(1, 0.0)]


def test_time_past_the_end_is_the_end(path3):
    s = graph_state(path3, 99.0)
    assert s.t == 3.0 and s.in_flight == () and s.states == ("0", "1", "2")
    with pytest.raises(ValueError, match="finite"):
        graph_state(path3, float("nan"))


def test_plot_places_dots_on_edges_and_labels_states(path3):
    ax = plot_graph_state(path3, 1.5, layout=LINE, state_fmt=lambda s: f"h={s}")
    np.testing.assert_allclose(_gid(ax, "in_flight").get_offsets(), [[0.5, 0.0], [1.5, 0.0]])
    assert _labels(ax) == ["0\nh=0", "1\nh=1", "2"]
    faces = _gid(ax, "nodes").get_facecolor()
    np.testing.assert_allclose(faces, [to_rgba(STATE_COLOR), to_rgba(STATE_COLOR), to_rgba(FRESH_COLOR)])
    assert ax.get_title() == "t = 1.5: 2 in flight"
    assert len(_gid(ax, "edges").get_segments()) == 2


def test_plot_is_deterministic_with_the_default_layout(path3):
    a = _gid(plot_graph_state(path3, 2.5), "in_flight").get_offsets()
    b = _gid(plot_graph_state(path3, 2.5), "in_flight").get_offsets()
    assert len(a) == 1
    np.testing.assert_array_equal(a, b)


def test_graph_needed_for_headerless_records_and_layout_checked(path3):
    with pytest.raises(ValueError, match="pass graph="):
        plot_graph_state(path3.records, 1.0)
    ax = plot_graph_state(path3.records, 1.0, graph=parse_graph_spec("path:3"), layout=LINE)
    np.testing.assert_allclose(_gid(ax, "in_flight").get_offsets(), [[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="no position for node"):
        plot_graph_state(path3, 1.0, layout={0: (0, 0), 1: (1, 0)})


def test_animation_has_one_frame_per_delivery(path3):
    fig, ax = plt.subplots()
    anim = animate(path3, ax=ax, layout=LINE, interval=50)
    assert isinstance(anim, FuncAnimation)
    assert len(list(anim.new_frame_seq())) == 5
    # frame 0 (drawn on creation): after delivering m0 to node 0, m1 is on its way
    np.testing.assert_allclose(_gid(ax, "in_flight").get_offsets(), [[0.0, 0.0]])
    assert ax.get_title() == "delivery 1/5, t = 0: 1 in flight"
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 5
    assert ax.get_title() == "delivery 5/5, t = 3: 0 in flight"
    assert _labels(ax) == ["0\n0", "1\n1", "2\n2"]
    short = animate(path3, layout=LINE, max_frames=2)
    assert len(list(short.new_frame_seq())) == 2
    short.to_jshtml()


def test_delivery_states_after_simultaneous_deliveries(path3):
    frames = delivery_states(path3)
    assert [f.t for f in frames] == [0.0, 1.0, 2.0, 2.0, 3.0]
    assert [f.active for f in frames] == [0, 1, 0, 2, 1]
    # after m2 (1->0) at t=2, m3 (1->2) is due at t=2 too: still in flight, at fraction 1
    assert [(r.msg_id, f) for r, f in frames[2].in_flight] == [(3, 1.0)]
    # after m3, node 2 has sent m4 at t=2 (fraction 0) and holds state 2
    assert [(r.msg_id, f) for r, f in frames[3].in_flight] == [(4, 0.0)]
    assert frames[3].states == ("0", "1", "2") and frames[2].states == ("0", "1", "")
    assert frames[-1].in_flight == () and frames[-1].index == len(path3.records)
    with pytest.raises(ValueError, match="no deliveries"):
        animate([r for r in path3.records if getattr(r, "event", "") != "deliver"], graph=parse_graph_spec("path:3"))
    with pytest.raises(ValueError, match="max_frames"):
        animate(path3, max_frames=0)
