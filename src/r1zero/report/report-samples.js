// r1zero report, part 2 of 2: the sample browser, phrases typed in the page, live mode.
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
