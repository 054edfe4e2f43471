"""The interactive space-time diagram (plotly): figure contents, the HTML file, and a real headless browser."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

go = pytest.importorskip("plotly.graph_objects")

from ampsim import ListTracer, Simulation, get_rule, parse_graph_spec, save_trace  # noqa: E402
from ampsim.cli import main  # noqa: E402
from ampsim.viz import interactive  # noqa: E402
from ampsim.viz.interactive import MAX_HTML_MB, MAX_MESSAGES, _sample, plot_interactive, write_html  # noqa: E402


def _run(spec: str, rule: str = "flooding", **kwargs) -> ListTracer:
    tracer = ListTracer()
    Simulation(parse_graph_spec(spec), get_rule(rule), tracer=tracer, **kwargs).run()
    return tracer


def _by_meta(fig, meta: str):
    found = [t for t in fig.data if t.meta == meta]
    return found[0] if found else None


def test_path3_hover_texts_arrowheads_and_steps():
    tracer = _run("path:3")
    fig = plot_interactive(tracer)
    heads = _by_meta(fig, "arrowheads")
    # one arrowhead (size > 0) per delivered neighbour message, in delivery order: m1..m4
    assert [s for s in heads.marker.size if s] == [11] * 4
    texts = [t for t in heads.hovertext if t]
    assert texts[0] == ("<b>m1</b> flood 1<br>node 0 → node 1<br>cause: m0<br>sent t=0, delivered t=1"
                        "<br>state of node 1 after: 1")
    assert [t.split("</b>")[0] for t in texts] == ["<b>m1", "<b>m2", "<b>m3", "<b>m4"]
    assert "cause: m3" in texts[3] and "state of node 1 after: 1" in texts[3]
    initial = _by_meta(fig, "initial")
    assert list(initial.x) == [0.0] and "outside → node 0" in initial.hovertext[0]
    # the slider steps through all five deliveries (m0 .. m4); each frame moves the 'current' trace
    assert [s.label for s in fig.layout.sliders[0].steps] == ["m0", "m1", "m2", "m3", "m4"]
    assert len(fig.frames) == 5 and list(fig.frames[2].data[0].x) == [1.0, 2.0]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert fig.layout.annotations[0].text == "end: quiescent (t=3)"


def test_drops_in_flight_and_lane_selection():
    tracer = _run("random-regular:3:10:1", delay="uniform", seed=2, loss=0.3)
    fig = plot_interactive(tracer)
    drops = [r for r in tracer.messages if r.event == "drop"]
    assert drops and len(_by_meta(fig, "drops").x) == len(drops)
    assert all("dropped: lost" in t for t in _by_meta(fig, "drops").hovertext)
    echo = ListTracer()
    Simulation(parse_graph_spec("cycle:5"), get_rule("echo"), delay="uniform", seed=1, tracer=echo).run(max_deliveries=30)
    fig = plot_interactive(echo, nodes=[0, 1, 2], max_steps=10)
    flying = _by_meta(fig, "in_flight")
    assert flying is not None and "arrives" in flying.hovertext[0]
    assert len(fig.layout.sliders[0].steps) <= 11 and fig.layout.sliders[0].steps[-1].label.startswith("m")
    assert "end: message_budget" in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="not in the trace"):
        plot_interactive(echo, nodes=[7])


def test_html_file_is_self_contained_and_cli_writes_it(tmp_path, capsys):
    tracer = _run("petersen", delay="uniform", seed=3)
    save_trace(tracer.trace(), tmp_path / "t.jsonl")
    assert main(["plot", str(tmp_path / "t.jsonl"), "-o", str(tmp_path / "timeline.html")]) == 0
    assert "interactive" in capsys.readouterr().out
    html = (tmp_path / "timeline.html").read_text(encoding="utf-8")
    assert "<script src=" not in html.replace('<script src="data:', "")  # plotly.js is embedded, nothing fetched
    assert "Plotly.newPlot" in html and len(html) > 1_000_000
    assert write_html(tracer, tmp_path / "b.html") == str(tmp_path / "b.html")
    assert not list(tmp_path.glob(".*partial*"))


def test_sample_keeps_each_group_and_the_budget_exactly():
    groups = [[0], list(range(100)), list(range(7)), []]
    kept = _sample(groups, 10)
    assert [len(g) for g in kept] == [1, 8, 1, 0] and kept[1] == [0, 12, 25, 37, 50, 62, 75, 87]
    assert _sample(groups, 0) == groups and _sample(groups, 108) == groups  # 0: all; under the budget: all
    assert [len(g) for g in _sample([[1], [2], list(range(10))], 2)] == [0, 0, 2]  # fewer than the groups: by share


def test_above_max_messages_a_sample_is_drawn_and_said():
    tracer = _run("complete:12", delay="uniform", seed=1)  # 133 drawable messages: 1 initial, 132 delivered
    fig = plot_interactive(tracer, max_messages=40)
    assert fig.layout.meta == {"messages": 133, "drawn": 40}
    heads = _by_meta(fig, "arrowheads")
    assert len([s for s in heads.marker.size if s]) == 39 and len(_by_meta(fig, "initial").x) == 1
    assert fig.layout.title.subtitle.text == ("showing 40 of 133 messages, an evenly spaced sample in time order: "
                                              "the trace has more than 40 (max_messages=0 / --max-messages 0 draws all)")
    whole = plot_interactive(tracer, max_messages=0)
    assert whole.layout.meta == {"messages": 133, "drawn": 133} and whole.layout.title.subtitle.text is None
    assert len(whole.frames) == len(fig.frames) == 133  # the slider still steps through every delivery
    with pytest.raises(ValueError, match="max_messages must be >= 0"):
        plot_interactive(tracer, max_messages=-1)
    # lane labels: at most 60 (every k-th lane), so 300 lanes do not print 300 labels
    assert list(plot_interactive(tracer, nodes=range(12)).layout.yaxis.tickvals) == list(range(12))


def test_long_payloads_and_states_are_cut_in_hover_texts(monkeypatch):
    assert interactive._short("x" * 301) == "x" * 300 + "... (301 characters)"
    assert interactive._short("<a&b>") == "&lt;a&amp;b&gt;"
    monkeypatch.setattr(interactive, "MAX_HOVER_CHARS", 0)
    text = [t for t in _by_meta(plot_interactive(_run("path:3")), "arrowheads").hovertext if t][0]
    assert text == ("<b>m1</b> flood ... (1 characters)<br>node 0 → node 1<br>cause: m0<br>sent t=0, delivered t=1"
                    "<br>state of node 1 after: ... (1 characters)")


def test_page_over_the_size_cap_is_refused_before_writing(tmp_path, capsys):
    tracer = _run("petersen", delay="uniform", seed=3)
    save_trace(tracer.trace(), tmp_path / "t.jsonl")
    out = tmp_path / "big.html"
    with pytest.raises(ValueError, match=r"would be 4\.\d MB, over the 1 MB cap.*max_mb=0 \(CLI: --max-html-mb 0\)"):
        write_html(tracer, out, max_mb=1)
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    assert main(["plot", str(tmp_path / "t.jsonl"), "-o", str(out), "--max-html-mb", "1"]) == 2
    err = capsys.readouterr().err
    assert "over the 1 MB cap" in err and "--max-html-mb 0" in err and "max_mb" not in err and not out.exists()
    assert main(["plot", str(tmp_path / "t.jsonl"), "-o", str(out), "--max-html-mb", "0"]) == 0 and out.exists()
    assert main(["plot", str(tmp_path / "t.jsonl"), "-o", str(tmp_path / "s.html"), "--max-messages", "5"]) == 0
    assert "(showing 5 of 31 messages, an evenly spaced sample; --max-messages 0 draws all)" in capsys.readouterr().out


def test_plot_help_names_each_output_kind(capsys):
    from ampsim.cli import simulate

    assert (simulate.MAX_MESSAGES, simulate.MAX_HTML_MB) == (MAX_MESSAGES, MAX_HTML_MB)
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in (".html or .htm: the interactive diagram", ".png, .jpg, .jpeg, .webp, .tif, .tiff: a static raster",
                  ".svg, .svgz, .pdf, .eps, .ps, .pgf: a static vector picture", "--max-messages", "--max-html-mb"):
        assert words in text
    import matplotlib.pyplot as plt

    fig = plt.figure()
    try:  # every suffix the help names is one matplotlib writes
        formats = set(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)
    assert {"png", "jpg", "jpeg", "webp", "tif", "tiff", "svg", "svgz", "pdf", "eps", "ps", "pgf"} <= formats


# ------------------------------------------------------------------------- a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and DRIVER):
        pytest.skip("headless Chromium and chromedriver are not installed (Debian: chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ampsim-chromium-")
    options = Options()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,900", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_html_renders_in_headless_chromium_with_arrows_and_hover(tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    tracer = _run("petersen", delay="uniform", seed=3, loss=0.1)
    delivered = [r for r in tracer.messages if r.event == "deliver" and r.src >= 0]
    path = write_html(tracer, tmp_path / "timeline.html")
    browser.get("file://" + os.path.abspath(path))
    deadline = time.time() + 60
    while not browser.execute_script("return !!document.querySelector('.js-plotly-plot .scatterlayer .trace')"):
        assert time.time() < deadline, "the plot did not render within 60 s"
        time.sleep(0.2)
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == [], errors
    heads = browser.execute_script("""
        const gd = document.querySelector('.js-plotly-plot');
        const i = gd.data.findIndex(t => t.meta === 'arrowheads');
        const layer = document.querySelectorAll('.scatterlayer .trace')[i];
        return [...layer.querySelectorAll('path.point')].filter(p => (p.getAttribute('d') || 'M0,0Z') !== 'M0,0Z');
    """)
    assert len(heads) == len(delivered)  # one drawn arrowhead per delivered message
    target = delivered[len(delivered) // 2]
    ActionChains(browser).move_to_element(heads[len(delivered) // 2]).perform()
    text = ""
    for _ in range(25):
        text = browser.execute_script("return document.querySelector('.hoverlayer').textContent")
        if text:
            break
        time.sleep(0.2)
    assert f"m{target.msg_id} {target.kind} {target.payload}" in text
    assert f"node {target.src} → node {target.dst}" in text
    # the slider's frames run in the browser: step 3 rings the fourth delivery
    fourth = [r for r in tracer.messages if r.event == "deliver"][3]
    x = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const gd = document.querySelector('.js-plotly-plot');
        Plotly.animate(gd, ['3'], {frame: {duration: 0, redraw: false}, transition: {duration: 0}, mode: 'immediate'})
            .then(() => done(gd.data.find(t => t.meta === 'current').x));
    """)
    assert list(x) == [fourth.t_send, fourth.t_deliver]
    assert [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] == []


def _rendered(browser, path) -> None:
    browser.get("file://" + os.path.abspath(path))
    deadline = time.time() + 120  # a guard against a hang, not a timing check
    while not browser.execute_script("return !!document.querySelector('.js-plotly-plot .scatterlayer .trace')"):
        assert time.time() < deadline, "the plot did not render within 120 s"
        time.sleep(0.2)


BOXES = """
    const box = s => { const e = document.querySelector(s); if (!e) return null;
                       const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    return Object.fromEntries(['.g-gtitle', '.updatemenu-container', '.slider-container', '.nsewdrag', '.g-xtitle',
                               '.xaxislayer-above', '.yaxislayer-above', '.legend'].map(s => [s, box(s)]));
"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.slow
@pytest.mark.parametrize("spec, sampled", [("petersen", False), ("complete:40", True)])
def test_controls_title_and_lanes_do_not_overlap_in_chromium(tmp_path, browser, spec, sampled):
    tracer = _run(spec, delay="uniform", seed=3)
    fig = plot_interactive(tracer, max_messages=300)
    assert (fig.layout.title.subtitle.text is not None) == sampled
    _rendered(browser, write_html(fig, tmp_path / "t.html"))
    boxes = browser.execute_script(BOXES)
    assert all(boxes[k] is not None for k in boxes), boxes
    controls = (".updatemenu-container", ".slider-container")
    others = (".g-gtitle", ".nsewdrag", ".g-xtitle", ".xaxislayer-above", ".yaxislayer-above", ".legend")
    for c in controls:
        for o in others:
            assert not _overlap(boxes[c], boxes[o]), (c, o, boxes)
    assert not _overlap(*(boxes[c] for c in controls)), boxes
    assert not _overlap(boxes[".g-gtitle"], boxes[".nsewdrag"]), boxes  # the title (and subtitle) above lane 0
    assert boxes[".updatemenu-container"][1] > boxes[".nsewdrag"][3]  # the controls below the lanes


@pytest.mark.slow
def test_large_trace_draws_a_capped_number_of_elements_in_chromium(tmp_path, browser):
    """complete:60 (3,541 messages) drawn with the default cap: the page holds max_messages arrows, not 3,541."""
    tracer = _run("complete:60", delay="uniform", seed=1)
    path = tmp_path / "t.html"
    save_trace(tracer.trace(), tmp_path / "t.jsonl")
    assert main(["plot", str(tmp_path / "t.jsonl"), "-o", str(path), "--max-messages", "1000"]) == 0
    _rendered(browser, path)
    counts = browser.execute_script("""
        const gd = document.querySelector('.js-plotly-plot');
        const layers = document.querySelectorAll('.scatterlayer .trace');
        const i = gd.data.findIndex(t => t.meta === 'arrowheads');
        return {heads: [...layers[i].querySelectorAll('path.point')].filter(p => (p.getAttribute('d') || 'M0,0Z') !== 'M0,0Z').length,
                points: document.querySelectorAll('.js-plotly-plot path.point').length,
                subtitle: (document.querySelector('.gtitle-subtitle') || {}).textContent};
    """)
    assert counts["heads"] == 999  # 1,000 drawn: the initial message and 999 delivered copies
    assert counts["points"] <= 2 * 1000 + 10  # each drawn arrow: an arrowhead and a size-0 send point
    assert counts["subtitle"].startswith("showing 1,000 of 3,541 messages")
    assert [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] == []
