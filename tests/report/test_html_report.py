"""The HTML report, opened in a real (headless) browser: it loads without script errors, has a
row per profile layer, and draws its charts. Screenshots are kept in pytest's tmp_path."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
from report_util import DIGITS, npukit_cli

import npukit
from npukit.report.html import report_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                   reason="chromium is not installed (scripts/install_data.sh installs it)")
MAX_BYTES = 2 << 20


def browse(page, *args):
    """Chromium headless on a local file: (stdout, stderr)."""
    r = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
                        "--enable-logging=stderr", "--v=0",
                        *args, page.as_uri()], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr


def svg(dom: str, svg_id: str) -> str:
    m = re.search(rf'<svg[^>]*id="{svg_id}".*?</svg>', dom, re.S)
    assert m, f"no #{svg_id} chart in the page"
    return m.group(0)


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def check_page(page, prog, tmp_path, name):
    """Load the report; check rows, charts and errors; save a screenshot. Returns the DOM."""
    text = page.read_text()
    assert len(text.encode()) < MAX_BYTES
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text)     # nothing fetched: works offline
    dom, log = browse(page, "--dump-dom")
    assert 'data-rendered="ok"' in dom, "the page's script did not finish"
    assert '<pre id="js-errors"' not in dom, re.findall(r'<pre id="js-errors">(.*?)</pre>', dom, re.S)
    assert "CONSOLE" not in log, [line for line in log.splitlines() if "CONSOLE" in line]
    p = prog.profile()
    rows = re.findall(r'<tr data-layer="([^"]*)"', dom)
    assert sorted(html.unescape(r) for r in rows) == sorted(la.name for la in p.layers)
    # the timeline draws every instruction (the report merges none for a model this size)
    assert len(re.findall(r"<rect[^>]*data-i=", svg(dom, "timeline"))) == p.instructions
    # a roofline point per NPU layer with MACs and a span on the timeline, none above the MXU's peak
    t, first, last = prog.timeline(), {}, {}
    for ins, s, e in zip(prog.program.instructions, t.start, t.end):
        first[ins.layer], last[ins.layer] = min(first.get(ins.layer, s), s), max(last.get(ins.layer, e), e)
    npu_with_macs = [i for i, la in enumerate(p.layers) if la.target == "npu" and la.macs > 0
                     and last.get(i, 0) > first.get(i, 0)]
    assert len(re.findall(r'<circle[^>]*class="point"', svg(dom, "roofline"))) == len(npu_with_macs)
    assert all(p.layers[i].macs / (last[i] - first[i]) <= prog.arch.macs_per_cycle for i in npu_with_macs)
    assert len(re.findall(r'class="ceiling"', svg(dom, "roofline"))) == 1 + len(prog.arch.regions)
    assert len(re.findall(r'<path[^>]*class="series"', dom)) >= 3 + len(p.region_bytes)   # SRAMs + regions
    shot = tmp_path / f"{name}.png"
    browse(page, f"--screenshot={shot}", "--window-size=1400,3000")
    assert png_size(shot) == (1400, 3000)
    return dom


@needs_browser
def test_mobilenet_report_in_the_browser(mobilenet, tmp_path):
    npub, prog = mobilenet
    r = npukit_cli("report", npub, "-o", tmp_path / "mobilenet.html")
    assert r.returncode == 0, r.stderr
    dom = check_page(tmp_path / "mobilenet.html", prog, tmp_path, "mobilenet")
    # the noise stored in the binary: a bar per layer with a finite SQNR (a layer's is its first
    # node's the report names)
    stored = {s["layer"]: s["sqnr_db"] for s in prog.program.meta["sqnr"]}
    noisy = [la for la in prog.profile().layers
             if next((stored[n] for n in (la.name, *la.nodes) if n in stored), None) is not None]
    assert noisy and len(re.findall(r'<rect[^>]*class="bar"', svg(dom, "noise"))) == len(noisy)


@needs_browser
def test_digits_report_compiled_from_the_model(digits_calib, tmp_path):
    out = tmp_path / "digits.html"
    r = npukit_cli("report", DIGITS, "--input-shape", "x=1,1,8,8", "--calib", digits_calib, "-o", out)
    assert r.returncode == 0, r.stderr
    with np.load(digits_calib) as z:       # the same compilation, for the profile to check against
        prog = npukit.compile(DIGITS, input_shapes={"x": (1, 1, 8, 8)}, calibration=dict(z))
    dom = check_page(out, prog, tmp_path, "digits")
    assert "on the calibration data (minmax, 64 samples)" in dom


def test_big_timelines_are_merged_keeping_every_instruction(mobilenet):
    _, prog = mobilenet
    p, t = prog.profile(), prog.timeline()
    full = report_data(prog.program, prog.arch, p, t, [], "", max_events=10**9)["timeline"]
    cap = p.instructions // 4
    merged = report_data(prog.program, prog.arch, p, t, [], "", max_events=cap)["timeline"]
    assert not full["aggregated"] and len(full["events"]["start"]) == p.instructions
    ev = merged["events"]
    assert merged["aggregated"] and len(ev["start"]) < p.instructions
    assert sum(ev["count"]) == p.instructions and sum(ev["macs"]) == p.macs == sum(full["events"]["macs"])
    assert sum(ev["bytes"]) == sum(full["events"]["bytes"])
    # a merged event spans its members: the first and last cycles of each lane are kept
    for lane in range(len(full["lanes"])):
        mine = [i for i, x in enumerate(ev["lane"]) if x == lane]
        theirs = [i for i, x in enumerate(full["events"]["lane"]) if x == lane]
        assert (min((ev["start"][i] for i in mine), default=None), max((ev["end"][i] for i in mine), default=None)) == \
            (min((full["events"]["start"][i] for i in theirs), default=None),
             max((full["events"]["end"][i] for i in theirs), default=None))
    json.dumps(merged)      # the page's data is plain JSON


PROBE = """<script>
(function () {   // what a user does: sort by cycles (twice: descending), zoom the timeline in, hover
  var th = document.querySelector('#layers th[data-key="cycles"]');
  th.click(); th.click();
  var rows = Array.prototype.map.call(document.querySelectorAll("#layers tbody tr"),
                                      function (tr) { return tr.getAttribute("data-layer"); });
  var tl = document.getElementById("timeline"), r = tl.getBoundingClientRect(), drawn = [];
  for (var k = 0; k < 12; k++) {
    drawn.push(tl.querySelectorAll("rect[data-i]").length);
    tl.dispatchEvent(new WheelEvent("wheel", { deltaY: -100, clientX: r.left + r.width * 0.3,
                                               clientY: r.top + 10, bubbles: true, cancelable: true }));
  }
  drawn.push(tl.querySelectorAll("rect[data-i]").length);
  var bar = tl.querySelector("rect[data-i]"), box = bar.getBoundingClientRect();
  bar.dispatchEvent(new MouseEvent("mousemove", { clientX: box.left + 1, clientY: box.top + 1, bubbles: true }));
  var tip = document.getElementById("tip").textContent;
  var probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({ rows: rows, drawn: drawn, tip: tip });
  document.body.appendChild(probe);
})();
</script></body>"""


@needs_browser
def test_the_table_sorts_and_the_timeline_zooms(mobilenet, tmp_path):
    _, prog = mobilenet
    page = tmp_path / "probe.html"
    prog.report(page)
    page.write_text(page.read_text().replace("</body>", PROBE))
    dom, log = browse(page, "--dump-dom")
    assert "CONSOLE" not in log and '<pre id="js-errors"' not in dom
    probe = json.loads(html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)))
    layers = prog.profile().layers
    by_cycles = sorted(range(len(layers)), key=lambda i: (-layers[i].cycles, i))
    assert probe["rows"] == [layers[i].name for i in by_cycles]
    drawn = probe["drawn"]
    assert drawn[0] == prog.profile().instructions and drawn[-1] < drawn[0] / 4   # zoomed in ~15x
    assert all(b <= a for a, b in zip(drawn, drawn[1:]))
    # hovering a bar names its instruction, kind and layer
    index = int(re.match(r"#(\d+) ", probe["tip"]).group(1))
    ins = prog.program.instructions[index]
    assert type(ins).__name__ in probe["tip"] and f"layer {prog.program.layers[ins.layer].name} " in probe["tip"]


def test_long_memory_series_keep_their_peaks():
    from npukit.report.html import _downsample
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.integers(1, 50, 20000)).tolist()
    values = rng.integers(0, 1 << 20, 20000).astype(float).tolist()
    t, v = _downsample(times, values, 500)
    assert len(t) <= 502 and t[0] == times[0] and t[-1] == times[-1] and t == sorted(t)
    assert max(v) == max(values)
    # each kept step is the peak of the original steps from it to the next kept one
    for k in range(len(t) - 2):
        segment = [values[i] for i in range(len(times)) if t[k] <= times[i] < t[k + 1]]
        assert v[k] == max(segment)
