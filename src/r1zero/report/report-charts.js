// r1zero report, part 1 of 2: helpers and the SVG line plotter. No dependencies, no network.
// html.py wraps both parts in one strict function, so they share their variables.
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }
  function fmt(v, pct) {
    if (v === null || v === undefined) return "–";
    if (pct) return String(+(100 * v).toPrecision(Math.abs(v) < 0.1 ? 2 : 3)) + "%";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return (+v.toPrecision(3)).toExponential();
    if (a >= 1000) return Math.round(v).toLocaleString("en");
    return String(+v.toPrecision(3));
  }
  function ticks(lo, hi, n) {
    // Integer multiples of a nice step: a sum of float steps would label zero -1.4e-17.
    var span = hi - lo, mag = Math.pow(10, Math.floor(Math.log10(span / n))), step = 10 * mag;
    [1, 2, 2.5, 5, 10].some(function (m) { if (span / (m * mag) <= n) { step = m * mag; return true; } return false; });
    var out = [], k0 = Math.ceil(lo / step - 1e-9), k1 = Math.floor(hi / step + 1e-9);
    for (var k = k0; k <= k1; k++) out.push(k === 0 ? 0 : +(k * step).toPrecision(12));
    return out;
  }

  // ------------------------------------------------------------------ charts
  var STATE = { smooth: 0, hidden: {}, log: {} };
  function visible(c) {
    // A series is drawn unless its legend entry was switched off (or it starts hidden).
    return c.series.filter(function (s) {
      var h = STATE.hidden[c.id + "|" + s.label];
      return !(h === undefined ? s.hidden : h);
    });
  }
  function smooth(points, w) {
    // TensorBoard's debiased exponential moving average; gaps (null) pass through.
    if (!w) return points;
    var last = 0, k = 0;
    return points.map(function (p) {
      if (p[1] === null) return p;
      last = last * w + (1 - w) * p[1]; k++;
      return [p[0], last / (1 - Math.pow(w, k))];
    });
  }
  function extent(c, series, logY) {
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p[1] === null || (logY && p[1] <= 0)) return;
        if (p[0] < x0) x0 = p[0]; if (p[0] > x1) x1 = p[0];
        if (p[1] < y0) y0 = p[1]; if (p[1] > y1) y1 = p[1];
      });
    });
    c.vlines.forEach(function (v) { if (v.x < x0) x0 = v.x; if (v.x > x1) x1 = v.x; });
    return [x0, x1, y0, y1];
  }
  function yRange(c, y0, y1, logY) {
    if (logY) {
      var l0 = Math.log10(y0), l1 = Math.log10(y1);
      if (l1 - l0 < 1e-9) { l0 -= 0.5; l1 += 0.5; }
      var lin = l1 - l0 >= 1 ? ticks(Math.floor(l0), Math.ceil(l1), 6).filter(function (t) { return t === Math.round(t); }).map(function (t) { return Math.pow(10, t); })
        : ticks(Math.pow(10, l0), Math.pow(10, l1), 4).filter(function (t) { return t > 0; });
      var lt = lin.map(function (t) { return Math.log10(t); });
      return { y0: Math.min(l0, lt[0]), y1: Math.max(l1, lt[lt.length - 1]), ticks: lin, f: Math.log10 };
    }
    if (c.pct) { y0 = Math.min(0, y0); if (y1 - y0 < 1e-12) y1 = y0 + 0.1; }
    else if (y0 > 0 && y0 < 0.3 * y1) y0 = 0;
    if (y1 === y0) { var d = Math.abs(y0) * 0.1 || 0.5; y0 -= d; y1 += d; }
    var yt = ticks(y0, y1, 5);
    return { y0: Math.min(y0, yt[0]), y1: Math.max(y1, yt[yt.length - 1]), ticks: yt, f: function (v) { return v; } };
  }
  function draw(el, c, panel) {
    // panel: {runs: [i], title, width, range} when drawing one run of a small-multiples chart.
    var logY = !!STATE.log[c.id], all = visible(c);
    var series = panel ? all.filter(function (s) { return s.run === panel.run; }) : all;
    var W = panel ? panel.width : Math.max(240, el.clientWidth - 16);
    var H = Math.round(Math.min(300, Math.max(panel ? 150 : 180, W * 0.5)));
    var m = { l: 54, r: 10, t: 10, b: 24 }, e = panel ? panel.e : extent(c, all, logY);
    var x0 = e[0], x1 = e[1];
    var head = panel ? '<h4>' + esc(panel.title) + "</h4>" : "<h3>" + esc(c.title) + (c.log ? ' <button type="button" class="logbtn" aria-pressed="' + logY + '">log</button>' : "") + "</h3>";
    if (!isFinite(e[2])) { el.innerHTML = head + '<p class="empty">no data yet</p>' + (panel ? "" : legendHtml(c)); bindLegend(el, c); return; }
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    var yr = yRange(c, e[2], e[3], logY), y0 = yr.y0, y1 = yr.y1;
    var X = function (v) { return m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r); };
    var Y = function (v) { return H - m.b - (yr.f(v) - y0) / (y1 - y0) * (H - m.t - m.b); };
    var xt = ticks(x0, x1, Math.max(2, Math.round(W / 90)));
    var s = ['<svg width="' + W + '" height="' + H + '" role="img" aria-label="' + esc(c.title) + '">'];
    yr.ticks.forEach(function (t) {
      s.push('<line class="gl" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + Y(t) + '" y2="' + Y(t) + '"/>');
      s.push('<text class="ax" x="' + (m.l - 4) + '" y="' + (Y(t) + 4) + '" text-anchor="end">' + esc(fmt(t, c.pct)) + "</text>");
    });
    xt.forEach(function (t) {
      if (t < x0 || t > x1) return;
      s.push('<text class="ax" x="' + X(t) + '" y="' + (H - 6) + '" text-anchor="middle">' + esc(fmt(t)) + "</text>");
    });
    var ok = function (p) { return p[1] !== null && (!logY || p[1] > 0); };
    var path = function (points) {
      var d = "", pen = false;
      points.forEach(function (p) {
        if (!ok(p)) { pen = false; return; }
        d += (pen ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1); pen = true;
      });
      return d;
    };
    series.forEach(function (ser) {
      var dash = ser.dash ? ' stroke-dasharray="' + ser.dash + '"' : "";
      if (!ser.dots && ser.points.length > 1) {
        if (STATE.smooth) s.push('<path d="' + path(ser.points) + '" stroke="' + ser.color + '" class="ln raw"/>');
        s.push('<path d="' + path(smooth(ser.points, STATE.smooth)) + '" stroke="' + ser.color + '"' + dash + ' class="ln"/>');
      } else {
        ser.points.forEach(function (p) { if (ok(p)) s.push(dot(ser.shape, X(p[0]), Y(p[1]), ser.color)); });
      }
    });
    c.vlines.forEach(function (v, i) {
      if (panel && v.run !== panel.run) return;
      var right = X(v.x) > W - 90, tx = X(v.x) + (right ? -4 : 4), ty = H - m.b - 6 - 13 * i;
      s.push('<line x1="' + X(v.x) + '" x2="' + X(v.x) + '" y1="' + m.t + '" y2="' + (H - m.b) + '" stroke="' + v.color + '" class="vl"/>');
      s.push('<text class="ax" x="' + tx + '" y="' + ty + '"' + (right ? ' text-anchor="end"' : "") + ">" + esc(v.label) + "</text>");
    });
    c.markers.forEach(function (k) {
      if (panel && k.run !== panel.run) return;
      if (k.y === null || (logY && k.y <= 0)) return;
      s.push('<a href="' + esc(k.href) + '"><circle class="mk" cx="' + X(k.x) + '" cy="' + Y(k.y) + '" r="4" stroke="' + k.color + '"><title>' + esc(k.title) + "</title></circle></a>");
    });
    s.push('<line class="hover" y1="' + m.t + '" y2="' + (H - m.b) + '" visibility="hidden"/></svg>');
    el.innerHTML = head + s.join("") + (panel ? "" : legendHtml(c)) + '<div class="tip" hidden></div>';
    if (!panel) bindLegend(el, c);
    var btn = el.querySelector(".logbtn");
    if (btn) btn.addEventListener("click", function () { STATE.log[c.id] = !logY; drawChart(c); });
    hover(el, c, series, X, Y, x0, x1, m, W);
  }
  function legendHtml(c) {
    var on = visible(c);
    return '<div class="legend">' + c.series.map(function (ser, i) {
      var off = on.indexOf(ser) < 0 ? " off" : "";
      var mark = ser.dots ? '<svg width="12" height="10">' + dot(ser.shape, 6, 5, ser.color) + "</svg> "
        : '<i style="border-top-color:' + ser.color + (ser.dash ? ";border-top-style:dashed" : "") + '"></i>';
      return '<button type="button" class="lg' + off + '" data-i="' + i + '" title="show or hide">' + mark + esc(ser.label) + "</button>";
    }).join("") + "</div>";
  }
  function bindLegend(el, c) {
    el.querySelectorAll(".legend .lg").forEach(function (b) {
      b.addEventListener("click", function () {
        var ser = c.series[+b.dataset.i], key = c.id + "|" + ser.label;
        STATE.hidden[key] = visible(c).indexOf(ser) >= 0;
        drawChart(c);
      });
    });
  }
  function dot(shape, x, y, color) {
    if (shape === "s") return '<rect x="' + (x - 3.5) + '" y="' + (y - 3.5) + '" width="7" height="7" fill="' + color + '"/>';
    if (shape === "^") return '<path d="M' + x + " " + (y - 4.5) + "L" + (x + 4) + " " + (y + 3) + "L" + (x - 4) + " " + (y + 3) + 'Z" fill="' + color + '"/>';
    return '<circle cx="' + x + '" cy="' + y + '" r="3.5" fill="' + color + '"/>';
  }
  function nearest(points, x) {
    var lo = 0, hi = points.length - 1;
    while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (points[mid][0] < x) lo = mid; else hi = mid; }
    return Math.abs(points[lo][0] - x) <= Math.abs(points[hi][0] - x) ? points[lo] : points[hi];
  }
  function hover(el, c, series, X, Y, x0, x1, m, W) {
    var svg = el.querySelector("svg"), line = el.querySelector(".hover"), tip = el.querySelector(".tip");
    function pick(ev) {
      // The logged step nearest the pointer, and the visible series whose value there is nearest.
      var r = svg.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
      var x = x0 + (px - m.l) / (W - m.l - m.r) * (x1 - x0), best = null, ser = null, dy = Infinity;
      series.forEach(function (s) {
        if (!s.points.length) return;
        var p = nearest(s.points, x);
        if (best === null || Math.abs(p[0] - x) < Math.abs(best - x)) best = p[0];
      });
      series.forEach(function (s) {
        var p = s.points.length ? nearest(s.points, best) : null;
        if (p && p[0] === best && p[1] !== null && Math.abs(Y(p[1]) - py) < dy) { dy = Math.abs(Y(p[1]) - py); ser = s; }
      });
      return { step: best, series: ser };
    }
    svg.addEventListener("pointermove", function (ev) {
      var best = pick(ev).step;
      if (best === null) return;
      var rows = ["<b>step " + esc(best) + "</b>"];
      series.forEach(function (ser) {
        var p = ser.points.length ? nearest(ser.points, best) : null;
        if (p && p[0] === best) rows.push('<span style="color:' + esc(ser.color) + '">●</span> ' + esc(ser.label) + ": " + esc(fmt(p[1], c.pct)));
      });
      rows.push('<span class="hint">click: samples of this step</span>');
      line.setAttribute("x1", X(best)); line.setAttribute("x2", X(best)); line.setAttribute("visibility", "visible");
      tip.innerHTML = rows.join("<br>"); tip.hidden = false;
      var left = X(best) + 14; if (left > W / 2) left = Math.max(0, X(best) - tip.offsetWidth - 6);
      tip.style.left = left + "px"; tip.style.top = "34px";
    });
    svg.addEventListener("pointerleave", function () { line.setAttribute("visibility", "hidden"); tip.hidden = true; });
    svg.addEventListener("click", function (ev) {
      if (ev.target.closest("a")) return; // an aha marker has its own link
      var got = pick(ev);
      if (got.step === null || got.series === null) return;
      var h = "run=" + got.series.run + "&smin=" + got.step + "&smax=" + got.step + (got.series.link ? "&" + got.series.link : "");
      location.hash = h;
    });
  }
  function drawChart(c) {
    var el = $("chart-" + c.id);
    if (!el) return;
    var runs = [];
    c.series.forEach(function (s) { if (runs.indexOf(s.run) < 0) runs.push(s.run); });
    if (DATA.runs.length <= 2 || runs.length <= 1) { el.classList.remove("multi"); draw(el, c); return; }
    // More than two runs: one small panel per run on shared axes, one legend for all.
    el.classList.add("multi");
    var logY = !!STATE.log[c.id], e = extent(c, visible(c), logY);
    var cols = Math.min(runs.length, Math.max(1, Math.floor((el.clientWidth - 16) / 230)));
    var width = Math.floor((el.clientWidth - 16) / cols) - 8;
    var head = "<h3>" + esc(c.title) + (c.log ? ' <button type="button" class="logbtn" aria-pressed="' + logY + '">log</button>' : "") + "</h3>";
    el.innerHTML = head + '<div class="panels">' + runs.map(function (r) { return '<div class="panel" data-run="' + r + '"></div>'; }).join("") + "</div>" + legendHtml(c);
    el.querySelectorAll(".panel").forEach(function (p) {
      var r = +p.dataset.run;
      draw(p, c, { run: r, title: (DATA.runs[r] || {}).name || "", width: width, e: e });
    });
    bindLegend(el, c);
    var btn = el.querySelector("h3 .logbtn");
    if (btn) btn.addEventListener("click", function () { STATE.log[c.id] = !logY; drawChart(c); });
  }
  var lastWidth = 0;
  function drawAll() {
    lastWidth = document.documentElement.clientWidth;
    DATA.charts.forEach(drawChart);
  }
  drawAll();
  performance.mark("r1zero-charts");
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (document.documentElement.clientWidth !== lastWidth) drawAll(); }, 150);
  });
  var slider = $("smooth");
  if (slider) slider.addEventListener("input", function () { STATE.smooth = +slider.value; $("smooth-v").textContent = slider.value; drawAll(); });

