// npukit report: draws the tables and SVG charts from the JSON data embedded in the page.
"use strict";
window.onerror = function (msg, src, line) {
  var p = document.getElementById("js-errors") || document.body.appendChild(document.createElement("pre"));
  p.id = "js-errors";
  p.textContent += "error: " + msg + " (line " + line + ")\n";
};
(function () {
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var app = document.getElementById("app");
  var tip = el("div", { id: "tip" }, document.body);
  var TL = D.timeline, clock = D.clock_mhz, total = Math.max(1, D.total_cycles);
  var view = { t0: 0, t1: total };     // the cycle window the timeline and the memory charts show
  var redraws = [];

  function el(tag, attrs, parent, text) {
    var svg = ["svg", "g", "rect", "line", "path", "text", "circle", "title", "polyline"].indexOf(tag) >= 0;
    var e = svg ? document.createElementNS(NS, tag) : document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function section(title, parent) {
    var s = el("section", {}, parent || app);
    el("h2", {}, s, title);
    return s;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    return v.toFixed(digits === undefined ? 2 : digits);
  }
  function us(cycles) { var t = cycles / clock; return t < 1 ? (t * 1e3).toFixed(0) + " ns" : t < 1000 ? t.toPrecision(4) + " us" : (t / 1e3).toPrecision(4) + " ms"; }
  function bytes(n) { return n >= 1048576 ? +(n / 1048576).toPrecision(4) + " MiB" : n >= 1024 ? +(n / 1024).toPrecision(4) + " KiB" : Math.round(n) + " B"; }
  function hue(layer) { return "hsl(" + ((layer * 137.508) % 360).toFixed(0) + ",62%,52%)"; }
  function hover(svg, text) {      // a tooltip for the chart's elements that carry data-i
    svg.addEventListener("mousemove", function (ev) {
      var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (i === null || i === undefined) { tip.style.display = "none"; return; }
      tip.textContent = text(+i);
      tip.style.display = "block";
      tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
      tip.style.top = (ev.clientY + 14) + "px";
    });
    svg.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  }
  function ticks(lo, hi, n) {       // round tick values between lo and hi
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n || 1)));
    [1, 2, 5, 10].some(function (m) { if ((hi - lo) / (step * m) <= n) { step *= m; return true; } return false; });
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
    return out;
  }

  // summary
  var s = section("Summary");
  var cards = el("div", { class: "cards" }, s);
  D.summary.forEach(function (r) { var c = el("div", { class: "card" }, cards); el("b", {}, c, r[0]); el("span", {}, c, r[1]); });

  // engine timeline
  var W = 1320, LANE = 26, M = { l: 70, r: 10, t: 6, b: 22 };
  s = section("Engine timeline");
  var tools = el("div", { class: "tools" }, s);
  [["zoom in", 0.5], ["zoom out", 2], ["reset", 0]].forEach(function (b) {
    el("button", {}, tools, b[0]).onclick = function () { b[1] ? zoom(b[1], 0.5) : setView(0, total); };
  });
  el("span", { class: "note" }, tools, " wheel: zoom, drag: pan, double-click: reset; hover an event for its instruction. " +
    TL.instructions.toLocaleString("en-US") + " instructions" + (TL.aggregated ? " (merged per lane, layer and time bucket to keep the file small)" : ""));
  var tsvg = el("svg", { viewBox: "0 0 " + W + " " + (M.t + LANE * TL.lanes.length + M.b), id: "timeline" }, s);
  var E = TL.events;
  hover(tsvg, function (i) {
    var n = E.count[i], layer = D.layers[E.layer[i]];
    return (n > 1 ? n + " instructions from #" + E.first[i] : "#" + E.first[i]) + "  " + TL.kinds[E.kind[i]] +
      "\nlayer " + (layer ? layer.name + " (" + layer.op + ")" : E.layer[i]) + "\n" + TL.lanes[E.lane[i]] +
      ": cycles " + fmt(E.start[i]) + " - " + fmt(E.end[i]) + " (" + us(E.end[i] - E.start[i]) + ")" +
      (E.macs[i] ? "\nMACs " + fmt(E.macs[i]) : "") + (E.bytes[i] ? "\nbytes moved " + fmt(E.bytes[i]) : "");
  });
  function xaxis(svg, x0, width, y) {
    var g = el("g", { class: "axis" }, svg);
    el("line", { x1: x0, x2: x0 + width, y1: y, y2: y }, g);
    ticks(view.t0 / clock, view.t1 / clock, 10).forEach(function (t) {
      var x = x0 + (t * clock - view.t0) / (view.t1 - view.t0) * width;
      el("line", { x1: x, x2: x, y1: y, y2: y + 4 }, g);
      el("text", { x: x, y: y + 15, "text-anchor": "middle" }, g, +t.toPrecision(6) + " us");
    });
  }
  function drawTimeline() {
    while (tsvg.firstChild) tsvg.removeChild(tsvg.firstChild);
    var width = W - M.l - M.r, k = width / (view.t1 - view.t0);
    TL.lanes.forEach(function (name, j) {
      el("rect", { x: M.l, y: M.t + j * LANE, width: width, height: LANE - 2, fill: j % 2 ? "#f7f8fa" : "#fff" }, tsvg);
      el("text", { x: 4, y: M.t + j * LANE + 16 }, tsvg, name);
    });
    var g = el("g", { class: "events" }, tsvg);
    for (var i = 0; i < E.start.length; i++) {
      if (E.end[i] < view.t0 || E.start[i] > view.t1) continue;
      var x = M.l + Math.max(0, E.start[i] - view.t0) * k, x1 = M.l + Math.min(view.t1 - view.t0, E.end[i] - view.t0) * k;
      el("rect", { x: x.toFixed(1), y: M.t + E.lane[i] * LANE + 2, width: Math.max(0.6, x1 - x).toFixed(1),
        height: LANE - 6, fill: hue(E.layer[i]), "data-i": i }, g);
    }
    xaxis(tsvg, M.l, width, M.t + LANE * TL.lanes.length);
  }
  function setView(t0, t1) {
    var span = Math.max(10, Math.min(total, t1 - t0));
    t0 = Math.max(0, Math.min(total - span, t0));
    view.t0 = t0; view.t1 = t0 + span;
    redraws.forEach(function (f) { f(); });
  }
  function zoom(factor, at) {
    var span = view.t1 - view.t0, c = view.t0 + at * span;
    setView(c - at * span * factor, c + (1 - at) * span * factor);
  }
  function fraction(svg, ev) {
    var r = svg.getBoundingClientRect(), sc = W / r.width;
    return Math.max(0, Math.min(1, ((ev.clientX - r.left) * sc - M.l) / (W - M.l - M.r)));
  }
  tsvg.addEventListener("wheel", function (ev) { ev.preventDefault(); zoom(ev.deltaY > 0 ? 1.25 : 0.8, fraction(tsvg, ev)); }, { passive: false });
  tsvg.addEventListener("dblclick", function () { setView(0, total); });
  var drag = null;
  tsvg.addEventListener("mousedown", function (ev) { drag = { x: fraction(tsvg, ev), t0: view.t0, t1: view.t1 }; });
  window.addEventListener("mouseup", function () { drag = null; });
  tsvg.addEventListener("mousemove", function (ev) {
    if (!drag || !ev.buttons) return;
    var shift = (drag.x - fraction(tsvg, ev)) * (drag.t1 - drag.t0);
    setView(drag.t0 + shift, drag.t1 + shift);
  });
  redraws.push(drawTimeline);

  // step charts over time: SRAM in use and off-chip bytes in flight
  var row = el("div", { class: "row" }, app);
  function stepChart(title, note, series, capacity) {
    var sec = section(title, row), H = 220, m = { l: 70, r: 10, t: 8, b: 22 }, w = 640;
    el("p", { class: "note" }, sec, note);
    var svg = el("svg", { viewBox: "0 0 " + w + " " + (H + 40), class: "step" }, sec);
    var names = Object.keys(series), colors = ["#2f6fd6", "#e08a1e", "#3aa361", "#a64ad6"];
    var top = 1;
    names.forEach(function (n) { series[n].v.forEach(function (v) { top = Math.max(top, v); }); });
    top *= 1.05;
    function draw() {
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      var pw = w - m.l - m.r, y = function (v) { return m.t + H - v / top * H; };
      var X = function (t) { return m.l + (Math.min(Math.max(t, view.t0), view.t1) - view.t0) / (view.t1 - view.t0) * pw; };
      var g = el("g", { class: "grid" }, svg);
      var unit = top >= 1048576 ? 1048576 : top >= 1024 ? 1024 : 1;
      ticks(0, top / unit, 5).forEach(function (v) {
        v *= unit;
        el("line", { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }, g);
        el("text", { x: m.l - 4, y: y(v) + 4, "text-anchor": "end" }, svg, bytes(v));
      });
      names.forEach(function (n, j) {
        var s = series[n], d = "M" + m.l + "," + y(0), last = 0;
        for (var i = 0; i < s.t.length; i++) { d += "H" + X(s.t[i]).toFixed(1) + "V" + y(s.v[i]).toFixed(1); last = s.v[i]; }
        d += "H" + (m.l + pw);
        el("path", { d: d, fill: "none", stroke: colors[j % 4], "stroke-width": 1.5, class: "series" }, svg);
        var label = n + (capacity ? " (of " + bytes(capacity[n]) + ")" : "");
        el("text", { x: m.l + 8 + j * 150, y: H + 38, fill: colors[j % 4], style: "fill:" + colors[j % 4] }, svg, "\u25A0 " + label);
      });
      var ax = el("g", { class: "axis" }, svg);
      el("line", { x1: m.l, x2: m.l, y1: m.t, y2: m.t + H }, ax);
      xaxis(svg, m.l, pw, m.t + H);
    }
    redraws.push(draw);
  }
  var sram = {};
  Object.keys(TL.sram.series).forEach(function (n) { sram[n] = { t: TL.sram.t, v: TL.sram.series[n] }; });
  stepChart("SRAM in use", "Per SRAM: the bytes the layers in flight touch (their transfers and operands). Follows the timeline's zoom.", sram, TL.sram.capacity);
  if (Object.keys(TL.offchip).length)
    stepChart("Off-chip bytes in flight", "Per region: bytes of the transfers under way, each spread over its span.", TL.offchip, null);

  // roofline
  row = el("div", { class: "row" }, app);
  var R = D.roofline;
  s = section("Roofline", row);
  el("p", { class: "note" }, s, "Each NPU layer with MACs: MACs per off-chip byte against MACs per cycle over the layer's " +
    "span (its first instruction's start to its last one's end). Ceilings: the MXU's " + R.peak +
    " MACs/cycle and each region's bandwidth. Hollow points move no off-chip bytes (drawn at the right edge).");
  var span = function (l) { return l.span[1] - l.span[0]; };
  var pts = D.layers.filter(function (l) { return l.macs > 0 && l.target === "npu" && l.span && span(l) > 0; });
  var rsvg = el("svg", { viewBox: "0 0 640 330", id: "roofline" }, s);
  (function () {
    var m = { l: 60, r: 28, t: 10, b: 40 }, pw = 640 - m.l - m.r, ph = 330 - m.t - m.b;
    var xs = pts.filter(function (l) { return l.offchip_bytes > 0; }).map(function (l) { return l.macs / l.offchip_bytes; });
    var bw = Object.keys(R.bandwidth).map(function (k) { return R.bandwidth[k]; });
    var knee = R.peak / Math.max.apply(null, bw.concat([1e-9]));
    var x0 = Math.pow(10, Math.floor(Math.log10(Math.min.apply(null, xs.concat([knee / 10]))))),
      x1 = Math.pow(10, Math.ceil(Math.log10(Math.max.apply(null, xs.concat([knee * 10])) * 1.5)));
    var ys = pts.map(function (l) { return l.macs / span(l); });
    var y1 = Math.pow(10, Math.ceil(Math.log10(R.peak * 1.5))), y0 = Math.pow(10, Math.floor(Math.log10(Math.min.apply(null, ys.concat([R.peak / 100])))));
    var X = function (v) { return m.l + (Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) * pw; };
    var Y = function (v) { return m.t + ph - (Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) * ph; };
    var g = el("g", { class: "grid" }, rsvg);
    for (var e = Math.log10(x0); e <= Math.log10(x1); e++) {
      el("line", { x1: X(Math.pow(10, e)), x2: X(Math.pow(10, e)), y1: m.t, y2: m.t + ph }, g);
      el("text", { x: X(Math.pow(10, e)), y: m.t + ph + 14, "text-anchor": "middle" }, rsvg, fmt(Math.pow(10, e), e < 0 ? -e : 0));
    }
    for (e = Math.log10(y0); e <= Math.log10(y1); e++) {
      el("line", { x1: m.l, x2: m.l + pw, y1: Y(Math.pow(10, e)), y2: Y(Math.pow(10, e)) }, g);
      el("text", { x: m.l - 4, y: Y(Math.pow(10, e)) + 4, "text-anchor": "end" }, rsvg, fmt(Math.pow(10, e), e < 0 ? -e : 0));
    }
    el("text", { x: m.l + pw / 2, y: 326, "text-anchor": "middle" }, rsvg, "MACs per off-chip byte");
    el("text", { x: 12, y: m.t + ph / 2, transform: "rotate(-90 12 " + (m.t + ph / 2) + ")", "text-anchor": "middle" }, rsvg, "MACs per cycle");
    Object.keys(R.bandwidth).forEach(function (name) {
      var b = R.bandwidth[name], k = R.peak / b, lo = Math.max(x0, y0 / b);
      el("path", { d: "M" + X(lo) + "," + Y(lo * b) + "L" + X(k) + "," + Y(R.peak), stroke: "#c0392b", "stroke-width": 2, fill: "none", class: "ceiling" }, rsvg);
      el("text", { x: X(lo) + 6, y: Y(lo * b) - 6, style: "fill:#c0392b" }, rsvg, name + " " + b.toPrecision(3) + " B/cycle");
    });
    var kmin = R.peak / Math.max.apply(null, bw.concat([1e-9]));
    el("path", { d: "M" + X(Math.max(x0, kmin)) + "," + Y(R.peak) + "H" + X(x1), stroke: "#c0392b", "stroke-width": 2, class: "ceiling" }, rsvg);
    el("text", { x: X(x1) - 4, y: Y(R.peak) - 6, "text-anchor": "end", style: "fill:#c0392b" }, rsvg, "compute " + R.peak + " MACs/cycle");
    var colors = { compute: "#2f6fd6", memory: "#e08a1e", vpu: "#3aa361", overhead: "#8a8f98" };
    pts.forEach(function (l, i) {
      var x = l.offchip_bytes > 0 ? X(l.macs / l.offchip_bytes) : X(x1) - 6, c = colors[l.bound] || "#555";
      el("circle", { cx: x.toFixed(1), cy: Y(ys[i]).toFixed(1), r: 4, fill: l.offchip_bytes > 0 ? c : "#fff", stroke: c, "data-i": i, class: "point" }, rsvg);
    });
    Object.keys(colors).forEach(function (b, j) {
      el("text", { x: m.l + 8 + j * 80, y: m.t + 12, style: "fill:" + colors[b] }, rsvg, "\u25CF " + b);
    });
  })();
  hover(rsvg, function (i) {
    var l = pts[i];
    return l.name + " (" + l.op + ")\n" + fmt(l.macs) + " MACs over " + fmt(span(l)) + " cycles = " +
      (l.macs / span(l)).toFixed(1) + " MACs/cycle\noff-chip " + bytes(l.offchip_bytes) + ", bound " + l.bound +
      ", achieved/bound " + fmt(l.achieved_over_bound);
  });

  // quantisation noise
  s = section("Quantisation noise", row);
  var A = D.accuracy, withNoise = D.layers.filter(function (l) { return l.sqnr_db !== null; });
  if (!D.noise.length) {
    el("p", { class: "note" }, s, "No noise report: compile from the model file (with calibration data) to include it.");
  } else {
    el("p", { class: "note" }, s, "int8 against float per layer, on " + (A.random ? "random (not representative) data" :
      "the calibration data") + " (" + A.calibration + ", " + A.samples + " samples). " +
      (A.worst_db !== undefined ? "Worst " + A.worst_db.toFixed(1) + " dB (" + A.worst_layer + "), median " + A.median_db.toFixed(1) + " dB. " : "") +
      (D.noise.length - withNoise.length > 0 ? "Layers computed exactly are not shown." : ""));
    var nsvg = el("svg", { viewBox: "0 0 640 300", id: "noise" }, s), m = { l: 44, r: 8, t: 8, b: 24 };
    var pw = 640 - m.l - m.r, ph = 300 - m.t - m.b, n = Math.max(1, withNoise.length);
    var dbs = withNoise.map(function (l) { return l.sqnr_db; }), hi = Math.max.apply(null, dbs.concat([1])), lo = Math.min.apply(null, dbs.concat([0]));
    var Y = function (v) { return m.t + ph - (v - lo) / (hi - lo) * ph; };
    var g = el("g", { class: "grid" }, nsvg);
    ticks(lo, hi, 6).forEach(function (v) {
      el("line", { x1: m.l, x2: m.l + pw, y1: Y(v), y2: Y(v) }, g);
      el("text", { x: m.l - 4, y: Y(v) + 4, "text-anchor": "end" }, nsvg, v + " dB");
    });
    withNoise.forEach(function (l, i) {
      var v = l.sqnr_db, y = Y(Math.max(v, 0)), h = Math.abs(Y(v) - Y(0));
      el("rect", { x: (m.l + i * pw / n).toFixed(1), y: y.toFixed(1), width: Math.max(0.8, pw / n - 1).toFixed(1), height: Math.max(0.5, h).toFixed(1),
        fill: v < 20 ? "#c0392b" : v < 30 ? "#e08a1e" : "#2f6fd6", "data-i": i, class: "bar" }, nsvg);
    });
    el("text", { x: m.l + pw / 2, y: 296, "text-anchor": "middle" }, nsvg, "layers in network order");
    hover(nsvg, function (i) { var l = withNoise[i]; return l.name + " (" + l.op + ")\nSQNR " + l.sqnr_db.toFixed(2) + " dB"; });
  }

  // per-layer table
  s = section("Layers");
  var filter = el("input", { type: "search", placeholder: "filter by name, op, bound, target", size: 40 }, s);
  el("span", { class: "note" }, s, " click a header to sort, a row to show the layer on the timeline. A layer's cycles are " +
    "how far it moves the network's end: work overlapped with the layers before it is counted once, by the layer that " +
    "finishes last (so a layer's util % can exceed 100).");
  var COLS = [["index", "#"], ["name", "layer", 1], ["op", "op", 1], ["target", "on", 1], ["macs", "MACs"], ["cycles", "cycles"],
    ["network_pct", "% net"], ["util_pct", "util %"], ["bound", "bound", 1], ["achieved_over_bound", "achieved/bound"],
    ["roofline_cycles", "bound cycles"], ["mxu_cycles", "MXU"], ["vpu_cycles", "VPU"], ["dma_cycles", "DMA"],
    ["offchip_bytes", "off-chip B"], ["energy_uj", "energy uJ"], ["sqnr_db", "SQNR dB"], ["tiling", "tiling / host reason", 2]];
  var wrap = el("div", { class: "tablewrap" }, s), table = el("table", { id: "layers" }, wrap);
  var head = el("tr", {}, el("thead", {}, table)), body = el("tbody", {}, table), sortKey = "index", asc = true;
  COLS.forEach(function (c) {
    var th = el("th", { class: c[2] ? "text" : "", "data-key": c[0] }, head, c[1]);
    th.onclick = function () { asc = sortKey === c[0] ? !asc : true; sortKey = c[0]; fill(); };
  });
  function cell(l, c) {
    if (c[0] === "tiling") return l.target === "host" ? "host: " + l.reason : l.tiling || "";
    if (c[0] === "target") return l.target === "host" ? "host" : "NPU";
    return fmt(l[c[0]], c[0] === "energy_uj" ? 4 : 2);
  }
  function fill() {
    var q = filter.value.toLowerCase(), rows = D.layers.slice();
    rows.sort(function (a, b) {
      var x = a[sortKey], y = b[sortKey];
      if (x === y) return a.index - b.index;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * (asc ? 1 : -1);
    });
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (l) {
      if (q && [l.name, l.op, l.bound, l.target, l.nodes].join(" ").toLowerCase().indexOf(q) < 0) return;
      var tr = el("tr", { "data-layer": l.name, class: l.target === "host" ? "host" : "" }, body);
      COLS.forEach(function (c) {
        var td = el("td", { class: c[2] === 2 ? "wrap" : c[2] ? "text" : "" }, tr, cell(l, c));
        if (c[2] === 2) td.title = td.textContent;
      });
      tr.onclick = function () {
        if (!l.span) return;
        var pad = (l.span[1] - l.span[0]) * 0.1 + 5;
        setView(l.span[0] - pad, l.span[1] + pad);
        document.getElementById("timeline").scrollIntoView({ behavior: "smooth" });
      };
    });
    Array.prototype.forEach.call(head.children, function (th) {
      th.className = (th.className.indexOf("text") >= 0 ? "text " : "") + (th.getAttribute("data-key") === sortKey ? (asc ? "sorted-asc" : "sorted-desc") : "");
    });
  }
  filter.addEventListener("input", fill);
  fill();

  // arch parameters
  s = section("Architecture: " + D.arch);
  cards = el("div", { class: "cards" }, s);
  D.arch_derived.forEach(function (r) { var c = el("div", { class: "card" }, cards); el("b", {}, c, r[0]); el("span", {}, c, r[1]); });
  el("pre", {}, s, D.arch_toml);

  setView(0, total);
  document.body.setAttribute("data-rendered", "ok");
})();
