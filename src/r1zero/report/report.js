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
    if (pct) return (100 * v).toFixed(Math.abs(v) < 0.1 ? 1 : 0) + "%";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1);
    if (a >= 1000) return String(Math.round(v));
    return String(+v.toPrecision(3));
  }
  function ticks(lo, hi, n) {
    var span = hi - lo, mag = Math.pow(10, Math.floor(Math.log10(span / n))), step = 10 * mag;
    [1, 2, 2.5, 5, 10].some(function (m) { if (span / (m * mag) <= n) { step = m * mag; return true; } return false; });
    var out = [];
    for (var t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  // ------------------------------------------------------------------ charts
  function extent(c) {
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    c.series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p[1] === null) return;
        if (p[0] < x0) x0 = p[0]; if (p[0] > x1) x1 = p[0];
        if (p[1] < y0) y0 = p[1]; if (p[1] > y1) y1 = p[1];
      });
    });
    c.vlines.forEach(function (v) { if (v.x < x0) x0 = v.x; if (v.x > x1) x1 = v.x; });
    return [x0, x1, y0, y1];
  }
  function draw(el, c) {
    var W = Math.max(240, el.clientWidth - 16), H = Math.round(Math.min(300, Math.max(180, W * 0.5)));
    var m = { l: 50, r: 10, t: 10, b: 24 }, e = extent(c), x0 = e[0], x1 = e[1], y0 = e[2], y1 = e[3];
    var head = "<h3>" + esc(c.title) + "</h3>";
    if (!isFinite(y0)) { el.innerHTML = head + '<p class="empty">no data yet</p>'; return; }
    if (c.pct || y0 > 0 && y0 < 0.3 * y1) y0 = Math.min(0, y0);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { var d = Math.abs(y0) * 0.1 || 0.5; y0 -= d; y1 += d; }
    var yt = ticks(y0, y1, 5), xt = ticks(x0, x1, Math.max(2, Math.round(W / 90)));
    y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]);
    var X = function (v) { return m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r); };
    var Y = function (v) { return H - m.b - (v - y0) / (y1 - y0) * (H - m.t - m.b); };
    var s = ['<svg width="' + W + '" height="' + H + '" role="img" aria-label="' + esc(c.title) + '">'];
    yt.forEach(function (t) {
      s.push('<line class="gl" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + Y(t) + '" y2="' + Y(t) + '"/>');
      s.push('<text class="ax" x="' + (m.l - 4) + '" y="' + (Y(t) + 4) + '" text-anchor="end">' + fmt(t, c.pct) + "</text>");
    });
    xt.forEach(function (t) {
      if (t < x0 || t > x1) return;
      s.push('<text class="ax" x="' + X(t) + '" y="' + (H - 6) + '" text-anchor="middle">' + fmt(t) + "</text>");
    });
    c.series.forEach(function (ser) {
      var d = "", pen = false;
      ser.points.forEach(function (p) {
        if (p[1] === null) { pen = false; return; }
        d += (pen ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1);
        pen = true;
      });
      var dash = ser.dash ? ' stroke-dasharray="' + ser.dash + '"' : "";
      if (!ser.dots && ser.points.length > 1) s.push('<path d="' + d + '" stroke="' + ser.color + '"' + dash + ' class="ln"/>');
      if (ser.dots || ser.points.length === 1) {
        ser.points.forEach(function (p) {
          if (p[1] !== null) s.push(dot(ser.shape, X(p[0]), Y(p[1]), ser.color));
        });
      }
    });
    c.vlines.forEach(function (v, i) {
      var right = X(v.x) > W - 90, tx = X(v.x) + (right ? -4 : 4), ty = H - m.b - 6 - 13 * i;
      s.push('<line x1="' + X(v.x) + '" x2="' + X(v.x) + '" y1="' + m.t + '" y2="' + (H - m.b) + '" stroke="' + v.color + '" class="vl"/>');
      s.push('<text class="ax" x="' + tx + '" y="' + ty + '"' + (right ? ' text-anchor="end"' : "") + ">" + esc(v.label) + "</text>");
    });
    c.markers.forEach(function (k) {
      s.push('<a href="' + esc(k.href) + '"><circle class="mk" cx="' + X(k.x) + '" cy="' + Y(k.y) + '" r="4" stroke="' + k.color + '"><title>' + esc(k.title) + "</title></circle></a>");
    });
    s.push('<line class="hover" y1="' + m.t + '" y2="' + (H - m.b) + '" visibility="hidden"/></svg>');
    var legend = c.series.map(function (ser) {
      if (ser.dots) return '<span><svg width="12" height="10">' + dot(ser.shape, 6, 5, ser.color) + "</svg> " + esc(ser.label) + "</span>";
      var st = "border-top-color:" + ser.color + (ser.dash ? ";border-top-style:dashed" : "");
      return '<span><i style="' + st + '"></i>' + esc(ser.label) + "</span>";
    }).join("");
    el.innerHTML = head + s.join("") + '<div class="legend">' + legend + '</div><div class="tip" hidden></div>';
    hover(el, c, X, x0, x1, m, W);
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
  function hover(el, c, X, x0, x1, m, W) {
    var svg = el.querySelector("svg"), line = el.querySelector(".hover"), tip = el.querySelector(".tip");
    svg.addEventListener("pointermove", function (ev) {
      var r = svg.getBoundingClientRect(), px = ev.clientX - r.left;
      var x = x0 + (px - m.l) / (W - m.l - m.r) * (x1 - x0), best = null;
      c.series.forEach(function (ser) {
        if (!ser.points.length) return;
        var p = nearest(ser.points, x);
        if (best === null || Math.abs(p[0] - x) < Math.abs(best - x)) best = p[0];
      });
      if (best === null) return;
      var rows = ["<b>step " + best + "</b>"];
      c.series.forEach(function (ser) {
        var p = ser.points.length ? nearest(ser.points, best) : null;
        if (p && p[0] === best) rows.push('<span style="color:' + ser.color + '">●</span> ' + esc(ser.label) + ": " + fmt(p[1], c.pct));
      });
      line.setAttribute("x1", X(best)); line.setAttribute("x2", X(best)); line.setAttribute("visibility", "visible");
      tip.innerHTML = rows.join("<br>"); tip.hidden = false;
      var left = X(best) + 14; if (left > W / 2) left = Math.max(0, X(best) - tip.offsetWidth - 6);
      tip.style.left = left + "px"; tip.style.top = "34px";
    });
    svg.addEventListener("pointerleave", function () { line.setAttribute("visibility", "hidden"); tip.hidden = true; });
  }
  var lastWidth = 0;
  function drawAll() {
    lastWidth = document.documentElement.clientWidth;
    DATA.charts.forEach(function (c) { var el = $("chart-" + c.id); if (el) draw(el, c); });
  }
  drawAll();
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (document.documentElement.clientWidth !== lastWidth) drawAll(); }, 150);
  });

  // ------------------------------------------------------------------ samples
  var KEYS = ["q", "run", "smin", "smax", "reward", "flag", "lmin", "lmax", "id"];
  var F = {}, SAMPLES = [], PROMPTS = [], matched = [], shown = 0, PAGE = 25;
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
    else if (F.flag.indexOf("fail:") === 0) { if (x.why !== F.flag.slice(5)) return false; }
    else if (F.flag && x.f.indexOf(F.flag) < 0) return false;
    if (F.q) {
      if (x.low === undefined) x.low = (PROMPTS[x.p] + "\n" + x.c).toLowerCase();
      if (x.low.indexOf(F.q.toLowerCase()) < 0) return false;
    }
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
      var a = /<answer>[\s\S]*?<\/answer>/.exec(rest);
      html += '<span class="tag">&lt;/think&gt;</span>';
      if (a) html += hl(rest.slice(0, a.index), re) + '<span class="answer">' + esc(a[0]) + "</span>" + hl(rest.slice(a.index + a[0].length), re);
      else html += hl(rest, re);
    }
    return html;
  }
  function card(x, re) {
    var run = DATA.runs[x.r] || { name: "", color: "#888" };
    var rw = Object.keys(x.rw).map(function (k) { return k + " " + x.rw[k]; }).join(", ");
    var chips = [];
    if (DATA.runs.length > 1) chips.push('<span class="chip" style="border-color:' + run.color + '">' + esc(run.name) + "</span>");
    chips.push('<span class="chip">step ' + x.s + " · group " + x.g + " · #" + x.i + "</span>");
    chips.push('<span class="chip ' + (x.why === null ? "ok" : "bad") + '">reward ' + fmt(x.R) + " (" + esc(rw) + ")</span>");
    if (x.adv !== null && x.adv !== undefined) chips.push('<span class="chip">adv ' + fmt(x.adv) + "</span>");
    chips.push('<span class="chip">' + (x.L === null || x.L === undefined ? "?" : x.L) + " tokens" + (x.tr ? ", truncated" : "") + "</span>");
    if (x.why !== null) chips.push('<span class="chip bad">equation 0: ' + esc(String(x.why).replace(/_/g, " ")) + "</span>");
    x.f.forEach(function (f) { if (f !== "truncated") chips.push('<span class="chip flag ' + f + '">' + f.replace(/_/g, " ") + "</span>"); });
    var det = "think: " + (x.lang || "–") + (x.cr !== null ? " · zlib ratio " + x.cr : "") + " · n-gram repeat " + x.ng;
    if (x.ph.length) det += " · phrases: " + x.ph.join(", ");
    return '<article class="sample" id="' + x.key + '"><div class="chips">' + chips.join("") +
      '<a class="perma" href="#id=' + x.key + '" title="link to this sample">#</a></div>' +
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
    $("count").textContent = matched.length.toLocaleString() + " of " + SAMPLES.length.toLocaleString() + " kept samples match" + (shown < matched.length ? " (showing " + shown + ")" : "");
    $("more").hidden = shown >= matched.length;
    $("more").textContent = "Show more (" + (matched.length - shown) + " left)";
  }
  function apply() {
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
    if (filtered && location.hash.length > 1) $("samples").scrollIntoView();
    var timer = null;
    $("f-q").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(fromControls, 200); });
    ["run", "smin", "smax", "reward", "flag", "lmin", "lmax"].forEach(function (k) { $("f-" + k).addEventListener("change", fromControls); });
    $("f-clear").addEventListener("click", function () { KEYS.forEach(function (k) { var el = $("f-" + k); if (el) el.value = ""; }); fromControls(); });
    $("more").addEventListener("click", function () { render(true); });
    window.addEventListener("hashchange", function () { if (readHash()) { apply(); $("samples").scrollIntoView(); } });
    document.body.dataset.ready = "1";
  }
  start().catch(function (err) {
    $("count").textContent = "Could not load the samples: " + err;
    throw err;
  });
})();
