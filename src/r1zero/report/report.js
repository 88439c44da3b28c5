// r1zero report: a small SVG line plotter and the sample browser. No dependencies, no network.
(function () {
  "use strict";
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

  // ------------------------------------------------------------------ samples
  var KEYS = ["q", "rx", "run", "smin", "smax", "reward", "flag", "lmin", "lmax", "id"];
  var F = {}, SAMPLES = [], PROMPTS = [], matched = [], shown = 0, PAGE = 25, RX = null;
  var REFL = DATA.reflection;
  function readHash() {
    var h = location.hash.slice(1);
    if (h.indexOf("=") < 0) return false; // a plain section anchor, not a filter
    var p = new URLSearchParams(h);
    KEYS.forEach(function (k) { F[k] = p.get(k) || ""; var el = $("f-" + k); if (el) el.value = F[k]; });
    return true;
  }
  function writeHash() {
    var p = new URLSearchParams();
    KEYS.forEach(function (k) { if (F[k]) p.set(k, F[k]); });
    history.replaceState(null, "", "#" + p.toString());
  }
  function matches(x) {
    if (F.id) return x.key === F.id;
    if (F.run !== "" && x.r !== +F.run) return false;
    if (F.smin !== "" && x.s < +F.smin) return false;
    if (F.smax !== "" && x.s > +F.smax) return false;
    if (F.lmin !== "" && (x.L || 0) < +F.lmin) return false;
    if (F.lmax !== "" && (x.L || 0) > +F.lmax) return false;
    if (F.reward !== "" && Math.abs((x.R || 0) - +F.reward) > 1e-6) return false;
    if (F.flag === "correct") { if (x.why !== null) return false; }
    else if (F.flag === "wrong") { if (x.why === null) return false; }
    else if (F.flag.indexOf("fail:") === 0) { if (x.why !== F.flag.slice(5)) return false; }
    else if (F.flag && x.f.indexOf(F.flag) < 0) return false;
    if (F.q) {
      if (x.low === undefined) x.low = (PROMPTS[x.p] + "\n" + x.c).toLowerCase();
      if (x.low.indexOf(F.q.toLowerCase()) < 0) return false;
    }
    if (RX && !RX.test(x.c)) return false;
    return true;
  }
  function highlighter() {
    var q = F.q ? "|(" + F.q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + ")" : "";
    return new RegExp("(" + REFL + ")" + q, "gi");
  }
  function hl(text, re) {
    var out = "", last = 0, mm;
    re.lastIndex = 0;
    while ((mm = re.exec(text)) !== null) {
      if (mm[0] === "") { re.lastIndex++; continue; }
      out += esc(text.slice(last, mm.index)) + '<mark class="' + (mm[1] ? "refl" : "q") + '">' + esc(mm[0]) + "</mark>";
      last = mm.index + mm[0].length;
    }
    return out + esc(text.slice(last));
  }
  function body(c, re) {
    var cut = c.indexOf("</think>");
    var think = cut < 0 ? c : c.slice(0, cut), rest = cut < 0 ? "" : c.slice(cut + 8);
    var html = '<span class="think">' + hl(think, re) + "</span>";
    if (cut >= 0) {
      // indexOf, not /<answer>[\s\S]*?<\/answer>/: that regex is quadratic on unclosed tags.
      var a0 = rest.indexOf("<answer>"), a1 = a0 < 0 ? -1 : rest.indexOf("</answer>", a0 + 8);
      html += '<span class="tag">&lt;/think&gt;</span>';
      if (a1 >= 0) html += hl(rest.slice(0, a0), re) + '<span class="answer">' + esc(rest.slice(a0, a1 + 9)) + "</span>" + hl(rest.slice(a1 + 9), re);
      else html += hl(rest, re);
    }
    return html;
  }
  function card(x, re) {
    var run = DATA.runs[x.r] || { name: "", color: "#888" };
    var rw = Object.keys(x.rw).map(function (k) { return k + " " + x.rw[k]; }).join(", ");
    var chips = [];
    if (DATA.runs.length > 1) chips.push('<span class="chip" style="border-color:' + run.color + '">' + esc(run.name) + "</span>");
    chips.push('<span class="chip">step ' + esc(x.s) + " · group " + esc(x.g === null ? "–" : x.g) + " · #" + esc(x.i) + "</span>");
    chips.push('<span class="chip ' + (x.why === null ? "ok" : "bad") + '">reward ' + fmt(x.R) + " (" + esc(rw) + ")</span>");
    if (x.adv !== null && x.adv !== undefined) chips.push('<span class="chip">adv ' + fmt(x.adv) + "</span>");
    chips.push('<span class="chip">' + esc(x.L === null || x.L === undefined ? "?" : x.L) + " tokens" + (x.tr ? ", truncated" : "") + "</span>");
    if (x.why !== null) chips.push('<span class="chip bad">equation 0: ' + esc(String(x.why).replace(/_/g, " ")) + "</span>");
    x.f.forEach(function (f) { if (f !== "truncated") chips.push('<span class="chip flag ' + f + '">' + f.replace(/_/g, " ") + "</span>"); });
    var det = "think: " + (x.lang || "–") + (x.cr !== null ? " · zlib ratio " + x.cr : "") + " · n-gram repeat " + x.ng;
    if (x.ph.length) det += " · phrases: " + x.ph.join(", ");
    return '<article class="sample" id="' + esc(x.key) + '"><div class="chips">' + chips.join("") +
      '<a class="perma" href="#id=' + esc(x.key) + '" title="link to this sample">#</a></div>' +
      '<div class="task">numbers ' + esc(JSON.stringify(x.nums)) + " → target " + esc(x.target) + '</div><div class="det">' + esc(det) + "</div>" +
      "<details><summary>Prompt</summary><pre>" + esc(PROMPTS[x.p]) + '</pre></details><div class="text">' + body(x.c, re) + "</div></article>";
  }
  function render(more) {
    var re = highlighter(), res = $("results"), html = [];
    if (!more) { shown = 0; res.innerHTML = ""; }
    var end = Math.min(matched.length, shown + PAGE);
    for (var i = shown; i < end; i++) html.push(card(matched[i], re));
    res.insertAdjacentHTML("beforeend", html.join(""));
    shown = end;
    res.dataset.count = String(matched.length);
    $("count").textContent = matched.length.toLocaleString() + " of " + SAMPLES.length.toLocaleString() + " kept samples match" + (shown < matched.length ? " (showing " + shown + ")" : "") + trueRate();
    $("more").hidden = shown >= matched.length;
    $("more").textContent = "Show more (" + (matched.length - shown) + " left)";
  }
  function trueRate() {
    // Kept samples favour flagged ones; the rate of a flag is over every completion of the steps.
    if (!F.flag || F.id) return "";
    var hit = 0, n = 0;
    (DATA.counts || []).forEach(function (c, r) {
      if (F.run !== "" && r !== +F.run) return;
      c.steps.forEach(function (s, i) {
        if ((F.smin !== "" && s < +F.smin) || (F.smax !== "" && s > +F.smax)) return;
        n += c.n[i];
        hit += F.flag === "wrong" ? c.n[i] - c.correct[i] : (c[F.flag] || [])[i] || 0;
      });
    });
    if (!n) return "";
    return ". Of every completion in these steps, " + hit.toLocaleString() + " of " + n.toLocaleString() + " (" + fmt(hit / n, true) + ") are " + F.flag.replace("fail:", "equation 0: ").replace(/_/g, " ");
  }
  function apply() {
    RX = null;
    if (F.rx) { try { RX = new RegExp(F.rx, "i"); } catch (e) { RX = /(?!)/; } }
    matched = SAMPLES.filter(matches);
    render(false);
  }
  function fromControls() {
    KEYS.forEach(function (k) { var el = $("f-" + k); if (el) F[k] = el.value.trim(); });
    F.id = "";
    writeHash();
    apply();
  }
  async function inflate(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  async function start() {
    KEYS.forEach(function (k) { F[k] = ""; });
    var b64 = $("samples-data").textContent.trim();
    if (b64 && typeof DecompressionStream === "undefined") {
      $("count").textContent = "This browser cannot unpack the samples (no DecompressionStream); try a current Chrome, Firefox or Safari.";
      document.body.dataset.ready = "1";
      return;
    }
    var data = b64 ? await inflate(b64) : { samples: [], prompts: [] };
    performance.mark("r1zero-inflated");
    PROMPTS = data.prompts;
    SAMPLES = data.samples;
    SAMPLES.forEach(function (x) { x.key = "r" + x.r + "-s" + x.s + "-i" + x.i; });
    SAMPLES.sort(function (a, b) { return a.r - b.r || a.s - b.s || a.i - b.i; });
    var levels = {};
    SAMPLES.forEach(function (x) { levels[x.R] = true; });
    Object.keys(levels).map(Number).sort(function (a, b) { return a - b; }).forEach(function (v) {
      var o = document.createElement("option"); o.value = String(v); o.textContent = fmt(v); $("f-reward").appendChild(o);
    });
    var filtered = readHash();
    apply();
    var y = restoreScroll();
    if (y === null && filtered && location.hash.length > 1) $("samples").scrollIntoView();
    var timer = null;
    $("f-q").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(fromControls, 200); });
    $("f-rx").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(fromControls, 300); });
    ["run", "smin", "smax", "reward", "flag", "lmin", "lmax"].forEach(function (k) { $("f-" + k).addEventListener("change", fromControls); });
    $("f-clear").addEventListener("click", function () { KEYS.forEach(function (k) { var el = $("f-" + k); if (el) el.value = ""; }); fromControls(); });
    $("more").addEventListener("click", function () { render(true); });
    if ($("phrase-go")) {
      var go = function () { var v = $("phrase-in").value.trim(); if (v) plotPhrase(v); };
      $("phrase-go").addEventListener("click", go);
      $("phrase-in").addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
    }
    window.addEventListener("hashchange", function () { if (readHash()) { apply(); $("samples").scrollIntoView(); } });
    if (DATA.refresh) liveReload(DATA.refresh);
    performance.mark("r1zero-ready");
    document.body.dataset.ready = "1";
  }
  // ------------------------------------------------------------------ a phrase typed in the page
  function plotPhrase(phrase) {
    // The share of the kept samples of each step (and run) that contain the phrase: the page
    // holds no other completions. Drawn as a new chart at the top of the Behaviour grid.
    var q = phrase.toLowerCase(), per = {};
    SAMPLES.forEach(function (x) {
      var k = x.r + ":" + x.s, cell = per[k] || (per[k] = [x.r, x.s, 0, 0]);
      if (x.low === undefined) x.low = (PROMPTS[x.p] + "\n" + x.c).toLowerCase();
      cell[3]++; if (x.low.indexOf(q) >= 0) cell[2]++;
    });
    var n = DATA.charts.length, c = { id: "page-" + n, title: "“" + phrase + "” in the kept samples", section: "", pct: true,
      log: false, series: [], markers: [], vlines: [] };
    DATA.runs.forEach(function (run, r) {
      var pts = Object.keys(per).map(function (k) { return per[k]; }).filter(function (v) { return v[0] === r; })
        .sort(function (a, b) { return a[1] - b[1]; }).map(function (v) { return [v[1], v[2] / v[3]]; });
      if (pts.length) c.series.push({ label: DATA.runs.length > 1 ? run.name : phrase, color: run.color, dash: "", dots: false,
        points: pts, shape: "o", run: r, link: "q=" + encodeURIComponent(phrase), hidden: false });
    });
    var el = document.createElement("div");
    el.className = "chart"; el.id = "chart-" + c.id;
    var grid = $("phrase-form").parentNode.querySelector(".grid");
    grid.insertBefore(el, grid.firstChild);
    DATA.charts.push(c);
    drawChart(c);
  }
  // ------------------------------------------------------------------ live mode
  // A full reload keeps the URL's fragment (the filters) and, through sessionStorage, the scroll
  // position; a meta refresh did neither (a fragment URL made it a same-page jump: no reload).
  var SCROLL_KEY = "r1zero-scroll:" + location.pathname;
  function restoreScroll() {
    try {
      var y = sessionStorage.getItem(SCROLL_KEY);
      if (y === null) return null;
      sessionStorage.removeItem(SCROLL_KEY);
      window.scrollTo(0, +y);
      return +y;
    } catch (e) { return null; }
  }
  function liveReload(seconds) {
    setTimeout(function () {
      try { sessionStorage.setItem(SCROLL_KEY, String(window.scrollY)); } catch (e) { /* storage off */ }
      location.reload();
    }, seconds * 1000);
  }
  start().catch(function (err) {
    $("count").textContent = "Could not load the samples: " + err;
    throw err;
  });
})();
