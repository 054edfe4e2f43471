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
from ampsim.viz.interactive import plot_interactive, write_html  # noqa: E402


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
