"""The interactive space-time diagram (plotly): zoom, hover, and a slider that steps through deliveries.

The same picture as :func:`ampsim.viz.plot_spacetime` (one lane per node against
simulation time, Section 3), as a plotly ``Figure`` that shows itself inline in
Jupyter and writes one self-contained HTML file (plotly.js embedded, no network):

* each delivered copy is a line from ``(t_send, lane(src))`` to ``(t_deliver, lane(dst))``
  ending in one arrowhead, coloured by its kind; hovering it shows ``msg_id``, cause,
  kind, payload, send and delivery times and the receiver's state after it;
* initial messages (``src == -1``) are triangles entering the receiver's lane;
* drops end at a red ``x`` (half-way for ``lost``, at the receiver for ``halted``),
  copies in flight when the trace ends are dashed, and a dotted vertical line with
  a label marks the end and its reason;
* a slider (and Play / Pause buttons) steps through the deliveries in order: step
  ``k`` rings the ``k``-th delivery and moves a cursor to its time (at most
  ``max_steps`` steps, evenly spaced, for long traces). The controls sit below the
  plot, left of the slider, so they never cover the title or the top lane.

Size. A browser draws each message as SVG (a line, an arrowhead, a hover text), so the
page's weight and its rendering time grow with the messages drawn: about 0.8 kB and
1 ms per message in headless Chromium, after 1.5 s for plotly.js itself (docs/tools.md has
the measurements).
Above ``max_messages`` (:data:`MAX_MESSAGES`, 1,500) drawable messages the diagram
draws an evenly spaced sample of them -- each kind of mark (initial, delivered, dropped,
in flight) keeps its share, in time order -- and says so in the subtitle ("showing N of M
messages ..."); ``max_messages=0`` draws all. :func:`write_html` refuses, before writing,
a page over ``max_mb`` (:data:`MAX_HTML_MB`, 20 MB), naming its size and the flag that
lifts the cap. Hover texts cut payloads and states longer than :data:`MAX_HOVER_CHARS`.

Traces are named (``messages``, ``arrowheads``, ``initial``, ``drops``, ``drop_lines``,
``in_flight``, ``current``) so tests and users can find them; arrowheads carry one
point per delivered message, in delivery order.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from ..trace.causality import TraceLike
from ..trace.records import DELIVER, DROP, MessageRecord, StateRecord
from .common import lanes as view_lanes, marks, prepare, title as view_title

__all__ = ["plot_interactive", "write_html", "MAX_MESSAGES", "MAX_HTML_MB", "MAX_HOVER_CHARS"]

MAX_MESSAGES = 1500
"""Drawable messages above which the diagram draws an evenly spaced sample (renders in about 2 s)."""
MAX_HTML_MB = 20.0
"""The largest page :func:`write_html` writes unless told otherwise (``max_mb=0``: no cap)."""
MAX_HOVER_CHARS = 300
"""A payload or state longer than this is cut (with its length) in the hover text."""
MAX_LANE_LABELS = 60
CONTROLS_TOP = 60  # pixels from the plot's bottom edge to the controls: room for the x ticks and axis title

DROP_COLOR = "#d62728"
END_COLOR = "#555555"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def _plotly():
    try:
        import plotly.graph_objects as go
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the interactive diagram needs plotly: pip install 'ampsim[interactive]' (or use plot_spacetime)"
        ) from None
    return go


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _short(text: Any) -> str:
    """``text`` escaped for a hover, cut to :data:`MAX_HOVER_CHARS` characters (its length said)."""
    text = str(text)
    if len(text) > MAX_HOVER_CHARS:
        text = text[:MAX_HOVER_CHARS] + f"... ({len(text):,} characters)"
    return _esc(text)


def _spread(items: list, k: int) -> list:
    """``k`` of ``items``, evenly spaced and in order (the first always; all when ``k >= len(items)``)."""
    n = len(items)
    if k >= n:
        return list(items)
    return [items[(i * n) // k] for i in range(k)]


def _sample(groups: Sequence[list], budget: int) -> list[list]:
    """Each group cut to its share of ``budget``, evenly spaced; the total is ``budget`` (``budget <= 0``: all).

    Each non-empty group keeps at least one item (a single initial message or drop stays
    visible); the rest of the budget is shared in proportion, largest remainders first.
    """
    total = sum(len(g) for g in groups)
    if budget <= 0 or total <= budget:
        return [list(g) for g in groups]
    base = [1 if g and budget >= sum(1 for h in groups if h) else 0 for g in groups]
    rest, left = budget - sum(base), total - sum(base)
    exact = [(len(g) - b) * rest / left for g, b in zip(groups, base)]
    counts = [b + int(e) for b, e in zip(base, exact)]
    for i in sorted(range(len(groups)), key=lambda i: int(exact[i]) - exact[i])[:budget - sum(counts)]:
        counts[i] += 1
    return [_spread(g, c) for g, c in zip(groups, counts)]


def _hover(r: MessageRecord, state: Optional[str]) -> str:
    src = "outside" if r.src < 0 else f"node {r.src}"
    cause = "start-up" if r.cause_id < 0 else f"m{r.cause_id}"
    lines = [
        f"<b>m{r.msg_id}</b> {_esc(r.kind)} {_short(r.payload)}",
        f"{src} → node {r.dst}",
        f"cause: {cause}",
        f"sent t={r.t_send:.6g}, " + ("dropped" if r.event == DROP else "delivered" if r.event == DELIVER
                                      else "arrives") + f" t={r.t_deliver:.6g}",
    ]
    if r.event == DROP:
        lines.append(f"dropped: {_esc(r.reason)}")
    if state is not None:
        lines.append(f"state of node {r.dst} after: {_short(state)}")
    return "<br>".join(lines)


def plot_interactive(
    trace: TraceLike,
    nodes: Optional[Sequence[int]] = None,
    title: Optional[str] = None,
    max_steps: int = 400,
    height: Optional[int] = None,
    max_messages: int = MAX_MESSAGES,
) -> Any:
    """The interactive space-time diagram of ``trace`` (Trace, ListTracer, records or a trace file).

    ``nodes`` picks the lanes, top to bottom (default: all, 0 at the top); messages are
    drawn when both ends are among them. Above ``max_messages`` drawable messages an
    evenly spaced sample of that many is drawn and the subtitle says so (0: draw all).
    Returns a ``plotly.graph_objects.Figure``; ``fig.layout.meta`` holds
    ``{"messages": M, "drawn": N}``.
    """
    go = _plotly()
    trace = prepare(trace)  # refused exactly as for replay and the static diagram
    lanes = view_lanes(trace, nodes)
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
    if max_messages is None or max_messages < 0:
        raise ValueError(f"max_messages must be >= 0 (0: draw all), got {max_messages!r}")
    y = {v: i for i, v in enumerate(lanes)}

    messages = [r for r in trace.records if isinstance(r, MessageRecord)]
    after = {(r.msg_id, r.node): r.state for r in trace.records if isinstance(r, StateRecord)}
    initial, delivered, drops, flying = marks(trace, y)
    kinds = sorted({r.kind for r in delivered + drops + flying})  # before sampling: colours do not depend on it
    drawable = len(initial) + len(delivered) + len(drops) + len(flying)
    initial, delivered, drops, flying = _sample([initial, delivered, drops, flying], max_messages)
    drawn = len(initial) + len(delivered) + len(drops) + len(flying)
    color = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(kinds)}
    times = [0.0] + [r.t_deliver for r in messages] + [e.time for e in trace.ends]
    t_max = max(times) or 1.0

    fig = go.Figure()
    for kind in kinds:  # one line trace per kind (the legend); segments separated by gaps
        xs, ys, texts = [], [], []
        for r in delivered:
            if r.kind == kind:
                text = _hover(r, after.get((r.msg_id, r.dst)))
                xs += [r.t_send, r.t_deliver, None]
                ys += [y[r.src], y[r.dst], None]
                texts += [text, text, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=kind, legendgroup=kind, line=dict(color=color[kind], width=1.4),
                                 hovertext=texts, hoverinfo="text", meta="messages"))
    # one arrowhead per delivered message, in delivery order; angleref="previous" points it along its line
    xs, ys, sizes, colors, texts = [], [], [], [], []
    for r in delivered:
        text = _hover(r, after.get((r.msg_id, r.dst)))
        xs += [r.t_send, r.t_deliver, None]
        ys += [y[r.src], y[r.dst], None]
        sizes += [0, 11, 0]
        colors += [color[r.kind]] * 3
        texts += [None, text, None]
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", name="arrowheads", showlegend=False, hovertext=texts, hoverinfo="text",
        marker=dict(symbol="arrow", angleref="previous", size=sizes, color=colors, line=dict(width=0)),
        meta="arrowheads",
    ))
    if initial:
        fig.add_trace(go.Scatter(
            x=[r.t_deliver for r in initial], y=[y[r.dst] for r in initial], mode="markers", name="initial message",
            marker=dict(symbol="triangle-right", size=12, color="white", line=dict(color="black", width=1.5)),
            hovertext=[_hover(r, after.get((r.msg_id, r.dst))) for r in initial], hoverinfo="text", meta="initial",
        ))
    if drops:
        xs, ys, px, py, texts = [], [], [], [], []
        for r in drops:
            ys_, yd = y[r.src], y[r.dst]
            end = ((r.t_send + r.t_deliver) / 2, (ys_ + yd) / 2) if r.reason == "lost" else (r.t_deliver, yd)
            xs += [r.t_send, end[0], None]
            ys += [ys_, end[1], None]
            px.append(end[0])
            py.append(end[1])
            texts.append(_hover(r, None))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="dropped", legendgroup="dropped", showlegend=False,
                                 line=dict(color="#999999", width=1.2, dash="dot"), hoverinfo="skip", meta="drop_lines"))
        fig.add_trace(go.Scatter(x=px, y=py, mode="markers", name="dropped", legendgroup="dropped",
                                 marker=dict(symbol="x", size=10, color=DROP_COLOR), hovertext=texts, hoverinfo="text",
                                 meta="drops"))
    if flying:
        xs, ys, texts = [], [], []
        for r in flying:
            text = _hover(r, None)
            xs += [r.t_send, r.t_deliver, None]
            ys += [y[r.src], y[r.dst], None]
            texts += [text, text, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="in flight at end", hovertext=texts, hoverinfo="text",
                                 line=dict(color="#777777", width=1.0, dash="dash"), meta="in_flight"))

    steps = [r for r in messages if r.event == DELIVER and r.dst in y]
    stride = max(1, -(-len(steps) // max_steps))
    shown = steps[::stride]
    if shown and shown[-1] is not steps[-1]:
        shown.append(steps[-1])

    def current(r: MessageRecord) -> dict:
        x0, y0 = (r.t_send, y[r.src]) if r.src in y else (r.t_deliver, y[r.dst])
        return dict(x=[x0, r.t_deliver], y=[y0, y[r.dst]])

    first = current(shown[0]) if shown else dict(x=[], y=[])
    fig.add_trace(go.Scatter(**first, mode="lines+markers", name="current delivery", showlegend=False, hoverinfo="skip",
                             line=dict(color="black", width=3), marker=dict(size=[0, 16], symbol="circle-open",
                                                                            color="black", line=dict(width=2)),
                             meta="current"))
    cursor_index = len(fig.data) - 1
    if shown:
        fig.frames = [go.Frame(name=str(k), data=[go.Scatter(**current(r))], traces=[cursor_index])
                      for k, r in enumerate(shown)]
        slider_steps = [dict(method="animate", label=f"m{r.msg_id}",
                             args=[[str(k)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                                  transition=dict(duration=0))])
                        for k, r in enumerate(shown)]
        # below the x axis (pixel pads from the plot's bottom edge, so at any height): buttons left, slider right
        fig.update_layout(
            sliders=[dict(active=0, steps=slider_steps, x=0.16, len=0.84, xanchor="left", y=0.0, yanchor="top",
                          pad=dict(t=CONTROLS_TOP, b=0), currentvalue=dict(prefix="delivery: ", font=dict(size=12)))],
            updatemenus=[dict(type="buttons", direction="left", x=0.0, xanchor="left", y=0.0, yanchor="top",
                              pad=dict(t=CONTROLS_TOP + 30, r=10), showactive=False,
                              buttons=[dict(label="Play", method="animate",
                                            args=[None, dict(frame=dict(duration=300, redraw=False), fromcurrent=True,
                                                             transition=dict(duration=0), mode="immediate")]),
                                       dict(label="Pause", method="animate",
                                            args=[[None], dict(frame=dict(duration=0, redraw=False),
                                                               mode="immediate", transition=dict(duration=0))])])],
        )
    if trace.ends:
        end = trace.ends[-1]
        fig.add_vline(x=end.time, line=dict(color=END_COLOR, dash="dot", width=1.2))
        fig.add_annotation(x=end.time, y=-0.5, yref="y", text=f"end: {_esc(end.reason)} (t={end.time:.4g})",
                           showarrow=False, xanchor="right", yanchor="bottom", font=dict(color=END_COLOR, size=11),
                           name="end")
    every = max(1, -(-len(lanes) // MAX_LANE_LABELS))  # at most MAX_LANE_LABELS labelled lanes (and grid lines)
    ticks = list(range(0, len(lanes), every))
    fig.update_yaxes(range=[len(lanes) - 0.5, -0.5], tickmode="array", tickvals=ticks,
                     ticktext=[str(lanes[i]) for i in ticks], title="node", showgrid=True, gridcolor="#e5e5e5",
                     zeroline=False)
    fig.update_xaxes(range=[-0.02 * t_max, 1.02 * t_max], title="simulation time", zeroline=False)
    heading = _esc(title if title is not None else (view_title(trace.header, trace.ends) or "space-time diagram"))
    subtitle = None
    if drawn < drawable:
        subtitle = (f"showing {drawn:,} of {drawable:,} messages, an evenly spaced sample in time order: "
                    f"the trace has more than {max_messages:,} (max_messages=0 / --max-messages 0 draws all)")
    fig.update_layout(
        title=dict(text=heading, font=dict(size=13), subtitle=dict(text=subtitle, font=dict(size=11)) if subtitle else None,
                   y=1.0, yanchor="top", yref="container", pad=dict(t=12)),
        height=height or int(min(1400, max(400, 26 * len(lanes) + 260))), template="simple_white",
        hovermode="closest", legend=dict(title="kind"), margin=dict(l=60, r=20, t=70, b=CONTROLS_TOP + 110),
        meta=dict(messages=drawable, drawn=drawn),
    )
    return fig


def write_html(trace: Union[TraceLike, Any], path: Union[str, os.PathLike], max_mb: float = MAX_HTML_MB,
               **kwargs: Any) -> str:
    """Write the interactive diagram as one self-contained HTML file (plotly.js embedded); returns the path.

    ``trace`` may also be a figure from :func:`plot_interactive`; other keywords go to it.
    A page over ``max_mb`` megabytes (0: no cap) is refused with ``ValueError`` before
    anything is written, naming its size and the flag that lifts the cap.
    """
    from ..fileio import target_path, write_text

    if max_mb is None or max_mb < 0:
        raise ValueError(f"max_mb must be >= 0 (0: no cap), got {max_mb!r}")
    path = os.fspath(path)
    target_path(path)  # a bad output path is refused before the figure is built
    fig = trace if hasattr(trace, "to_html") else plot_interactive(trace, **kwargs)
    html = fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False,
                       config={"scrollZoom": True, "displaylogo": False})
    size = len(html.encode("utf-8"))
    if max_mb and size > max_mb * 1e6:
        raise ValueError(f"{path}: the interactive page would be {size / 1e6:.1f} MB, over the {max_mb:g} MB cap "
                         f"(a browser takes long to draw it); nothing written. Draw fewer messages with "
                         f"max_messages= (CLI: --max-messages) or lift the cap with max_mb=0 (CLI: --max-html-mb 0)")
    write_text(path, html)
    return path
