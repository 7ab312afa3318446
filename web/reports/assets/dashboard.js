// The Footfall dashboard: reads the report API of the worker that served this page.
// The site's API key is asked once and kept in localStorage (per site); a link may carry
// it in the fragment (#key=...), which never reaches a server and is removed at once.
(function () {
  "use strict";

  const site = document.body.dataset.site;
  const storeKey = "footfall.key." + site;
  const $ = (id) => document.getElementById(id);
  const api = "/api/v1/sites/" + encodeURIComponent(site);
  const DAY = 86400000;
  // filters: dimension -> value (page, source, country, device: the API combines them all).
  const state = { tz: null, today: null, from: null, to: null, interval: "day", filters: new Map(), chart: null };

  // --- the key ---------------------------------------------------------------------------
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("key")) {
    localStorage.setItem(storeKey, fragment.get("key"));
    fragment.delete("key");
    history.replaceState(null, "", location.pathname + location.search + (fragment.toString() ? "#" + fragment : ""));
  }
  const key = () => localStorage.getItem(storeKey);

  function askKey(message) {
    $("main").hidden = true;
    $("keyform").hidden = false;
    $("key-error").hidden = !message;
    $("key-error").textContent = message || "";
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(storeKey, $("key-input").value.trim());
    $("key-input").value = "";
    start();
  });
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(storeKey);
    askKey("");
  });

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || "HTTP " + status);
      this.status = status;
    }
  }

  async function get(path, params) {
    const query = new URLSearchParams(params || {});
    const response = await fetch(api + path + (query.toString() ? "?" + query : ""), {
      headers: { Authorization: "Bearer " + key() },
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // --- formatting --------------------------------------------------------------------------
  const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
  const number = (n) => (n == null ? "–" : n >= 100000 ? compact.format(n) : integer.format(n));
  const percent = (r) => (r == null ? "–" : (r * 100).toFixed(1) + " %");
  function duration(s) {
    if (s == null) return "–";
    const m = Math.floor(s / 60);
    const rest = Math.round(s - m * 60);
    return m ? m + "m " + String(rest).padStart(2, "0") + "s" : rest + "s";
  }
  function money(revenue) {
    const entries = Object.entries(revenue || {}).sort((a, b) => b[1] - a[1]);
    if (!entries.length) return "–";
    const [currency, amount] = entries[0];
    let text;
    try {
      text = new Intl.NumberFormat("en", { style: "currency", currency, maximumFractionDigits: 0 }).format(amount);
    } catch (e) {
      text = integer.format(amount) + " " + currency;
    }
    return entries.length > 1 ? text + " +" + (entries.length - 1) : text;
  }
  const FORMAT = {
    visitors: number, sessions: number, pageviews: number,
    bounce_rate: percent, avg_duration: duration, revenue: money,
  };

  // --- dates (in the site's zone: the API's `at` carries its offset) ------------------------
  const isoDate = (d) => d.toISOString().slice(0, 10);
  const addDays = (text, n) => isoDate(new Date(Date.parse(text + "T00:00:00Z") + n * DAY));

  function setRange(days) {
    state.to = state.today;
    state.from = addDays(state.today, 1 - days);
    state.interval = days <= 1 ? "hour" : days > 60 ? "week" : "day";
    $("from").value = state.from;
    $("to").value = state.to;
    $("interval").value = state.interval;
    for (const b of $("presets").querySelectorAll("button")) b.classList.toggle("on", Number(b.dataset.days) === days);
  }

  $("presets").addEventListener("click", (event) => {
    const days = Number(event.target.dataset && event.target.dataset.days);
    if (!days) return;
    setRange(days);
    refresh();
  });
  for (const id of ["from", "to", "interval"]) {
    $(id).addEventListener("change", () => {
      state.from = $("from").value;
      state.to = $("to").value;
      state.interval = $("interval").value;
      for (const b of $("presets").querySelectorAll("button")) b.classList.remove("on");
      refresh();
    });
  }
  // One `==` condition per dimension; a click on another value of it replaces it.
  const filterText = () => [...state.filters].map(([dim, value]) => dim + "==" + value).join(";");

  function showFilters() {
    const box = $("filters");
    box.textContent = "";
    for (const [dim, value] of state.filters) {
      const chip = document.createElement("span");
      chip.className = "filter";
      chip.dataset.dimension = dim;
      chip.textContent = dim + " = " + (value === "" ? "(none)" : value) + " ";
      const remove = document.createElement("button");
      remove.title = "Remove this filter";
      remove.textContent = "×";
      remove.addEventListener("click", () => {
        state.filters.delete(dim);
        refresh();
      });
      chip.append(remove);
      box.append(chip);
    }
    box.hidden = !state.filters.size;
  }

  // --- the report --------------------------------------------------------------------------
  const TILES = ["visitors", "sessions", "pageviews", "bounce_rate", "avg_duration", "revenue"];
  // A filter naming page answers from event rows, others from session rows: their metrics.
  const eventScoped = () => state.filters.has("page");

  function tileMetrics() {
    if (!state.filters.size) return TILES;
    return eventScoped() ? ["visitors", "pageviews"] : ["visitors", "sessions", "bounce_rate", "avg_duration"];
  }

  function showTiles(totals, metrics) {
    for (const tile of document.querySelectorAll(".tile")) {
      const name = tile.dataset.metric;
      const value = tile.querySelector(".value");
      const on = metrics.includes(name);
      tile.classList.toggle("off", !on);
      value.dataset.value = on ? JSON.stringify(totals[name]) : "";
      value.textContent = on ? FORMAT[name](totals[name]) : "–";
      value.title = name === "revenue" && on ? Object.entries(totals.revenue).map(([c, a]) => a.toFixed(2) + " " + c).join(", ") : "";
    }
  }

  function showChart(report) {
    const xs = report.results.map((r) => Date.parse(r.t) / 1000);
    const visitors = report.results.map((r) => r.visitors);
    const pageviews = report.results.map((r) => (r.pageviews == null ? null : r.pageviews));
    const width = $("chart").clientWidth || 1200;
    const tz = report.tz;
    const opts = {
      width, height: 300,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
      legend: { show: false },
      cursor: { points: { size: 7 } },
      scales: { x: { time: true } },
      axes: [
        { stroke: "#6b7385", grid: { stroke: "#eef0f5" }, ticks: { stroke: "#e4e7ef" } },
        { stroke: "#6b7385", grid: { stroke: "#eef0f5" }, ticks: { show: false }, size: 56, values: (u, v) => v.map((n) => compact.format(n)) },
      ],
      series: [
        {},
        { label: "Visitors", stroke: "#4f46e5", width: 2.5, fill: "rgba(79,70,229,.08)", points: { show: xs.length < 60 } },
        { label: "Pageviews", stroke: "#10b981", width: 2, points: { show: xs.length < 60 } },
      ],
    };
    if (state.chart) state.chart.destroy();
    $("chart").textContent = "";
    state.chart = new uPlot(opts, [xs, visitors, pageviews], $("chart"));
  }

  function showTable(table, rows, metrics) {
    const body = table.querySelector("tbody");
    body.textContent = "";
    if (!rows.length) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = 3;
      td.className = "empty";
      td.textContent = "No data in this range";
      return;
    }
    const top = Math.max(...rows.map((r) => r[metrics[0]] || 0), 1);
    const dim = table.dataset.dimension;
    for (const row of rows) {
      const tr = body.insertRow();
      tr.dataset.value = row.value;
      const name = tr.insertCell();
      const share = document.createElement("div");
      share.className = "share";
      share.style.width = Math.max(2, (100 * (row[metrics[0]] || 0)) / top) + "%";
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = row.value === "" ? "(none)" : row.value;
      name.append(share, label);
      for (const metric of [...metrics].sort((a, b) => (a === "visitors" ? -1 : b === "visitors" ? 1 : 0))) {
        const cell = tr.insertCell();
        cell.dataset.metric = metric;
        cell.dataset.value = JSON.stringify(row[metric]);
        cell.textContent = number(row[metric]);
      }
      tr.addEventListener("click", () => {
        state.filters.set(dim, row.value);
        refresh();
      });
    }
  }

  function showMeta(report) {
    const meta = report.meta;
    const parts = ["Times in " + report.tz];
    parts.push(meta.batch_until ? "batch results until " + meta.batch_until.replace("T", " ") + ", stream data after" : "stream data (no batch day completed yet)");
    if (meta.sampled) parts.push("includes sampled data");
    $("meta").textContent = parts.join(" · ");
    const notes = [...meta.warnings];
    const missing = meta.sources.filter((s) => s.source === "unavailable");
    if (missing.length) notes.push("Breakdowns are not stored for " + missing.map((s) => s.from.slice(0, 10) + " – " + s.to.slice(0, 10)).join(", ") + " (no batch results for those days yet).");
    $("notice").hidden = !notes.length;
    $("notice").textContent = notes.join(" ");
  }

  const BREAKDOWNS = ["page", "source", "country", "device"];
  // A table's metrics: pages and anything filtered by a page are event rows (no sessions).
  const tableMetrics = (dimension) =>
    dimension === "page" ? ["pageviews", "visitors"] : eventScoped() ? ["visitors", "pageviews"] : ["visitors", "sessions"];

  let generation = 0;
  async function refresh() {
    const mine = ++generation;
    const range = { from: state.from, to: addDays(state.to, 1), tz: state.tz };
    const filters = filterText();
    showFilters();
    const metrics = tileMetrics();
    const series = { ...range, interval: state.interval, metrics: metrics.join(",") };
    if (filters) series.filters = filters;
    const shown = BREAKDOWNS.map((dimension) => [dimension, tableMetrics(dimension)]);
    try {
      const [report, ...tables] = await Promise.all([
        get("/timeseries", series),
        ...shown.map(([dimension, m]) => {
          const params = { ...range, dimension, metrics: m.join(","), limit: "8" };
          if (filters) params.filters = filters;
          return get("/breakdown", params);
        }),
      ]);
      if (mine !== generation) return;
      showTiles(report.totals, metrics);
      showChart(report);
      showMeta(report);
      shown.forEach(([dimension, m], i) => {
        const table = document.querySelector(`table[data-dimension="${dimension}"]`);
        table.querySelector("thead th:last-child").textContent = m.includes("sessions") ? "Sessions" : "Pageviews";
        showTable(table, tables[i].results, m);
      });
      document.body.dataset.loaded = "yes";
    } catch (error) {
      if (error.status === 401 || error.status === 403) return askKey(error.message);
      $("notice").hidden = false;
      $("notice").textContent = error.message;
    }
  }

  // --- realtime ----------------------------------------------------------------------------
  function spark(points) {
    const canvas = $("live-spark");
    const g = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    g.clearRect(0, 0, w, h);
    const top = Math.max(1, ...points);
    const step = w / Math.max(1, points.length);
    g.fillStyle = "rgba(139,133,255,.85)";
    points.forEach((n, i) => {
      const bar = Math.max(1, (n / top) * (h - 2));
      g.fillRect(i * step + 0.5, h - bar, Math.max(1, step - 1.5), bar);
    });
  }

  async function live() {
    try {
      const now = await get("/realtime");
      const el = $("live-visitors");
      el.textContent = number(now.visitors);
      el.dataset.value = JSON.stringify(now.visitors);
      spark(now.pageviews.map((p) => p.pageviews));
      return now;
    } catch (error) {
      if (error.status === 401 || error.status === 403) askKey(error.message);
      return null;
    }
  }

  let timer = null;
  async function start() {
    if (!key()) return askKey("");
    const now = await live();
    if (!now) return;
    $("keyform").hidden = true;
    $("main").hidden = false;
    state.tz = now.tz;
    state.today = now.at.slice(0, 10);
    $("tz").textContent = now.tz;
    setRange(Number(fragment.get("days")) || 7);
    // A link may carry filters too: #filters=country==IN;device==mobile
    for (const part of (fragment.get("filters") || "").split(";")) {
      const at = part.indexOf("==");
      if (at > 0 && BREAKDOWNS.includes(part.slice(0, at))) state.filters.set(part.slice(0, at), part.slice(at + 2));
    }
    if (fragment.get("interval")) {
      state.interval = fragment.get("interval");
      $("interval").value = state.interval;
    }
    await refresh();
    if (timer === null) timer = setInterval(live, 10000);
  }

  window.addEventListener("resize", () => {
    if (state.chart) state.chart.setSize({ width: $("chart").clientWidth, height: 300 });
  });
  start();
})();
