// Tally's dashboard: a client of the public JSON API (see the `dashboard` module's docs).
// Every figure is rendered from an API response; money stays in integer minor units until it
// is formatted, per currency, and is never added across currencies.
"use strict";

// In the API's order (Model::ALL).
const MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based",
  "time_decay", "markov", "shapley"];
const PAGES = ["overview", "channels", "trend", "paths", "reconciliation", "health"];
const POLL_MS = 2000;

const S = { csrf: "", scopes: [], tz: "UTC", currency: "USD", from: "", to: "", preset: "30d", model: "",
  compare: false, trendCurrency: "", timers: [], view: null, visit: 0, sort: { key: "claimed", desc: true } };

const $ = (sel, root = document) => root.querySelector(sel);

// --- elements ------------------------------------------------------------------------------
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

// --- money and dates -----------------------------------------------------------------------
const fmtCache = new Map();
function formatter(cur) {
  if (!fmtCache.has(cur)) fmtCache.set(cur, new Intl.NumberFormat("en", { style: "currency", currency: cur }));
  return fmtCache.get(cur);
}
/** Minor units → text, with the currency's own decimals (JPY 0, USD 2, KWD 3). */
function money(cents, cur) {
  const f = formatter(cur);
  const digits = f.resolvedOptions().maximumFractionDigits;
  return f.format(Number(cents) / 10 ** digits);
}
function moneyEl(cents, cur, key) {
  return el("span", { class: "money", "data-k": key, "data-cents": String(cents), "data-currency": cur, text: money(cents, cur) });
}
/** A channel code that may break after its underscores on narrow screens (same text content). */
const code = c => el("span", {}, c.split("_").flatMap((part, i, all) => i < all.length - 1 ? [part + "_", el("wbr")] : [part]));
const num = (n, key) => el("span", { "data-k": key, "data-value": String(n), text: Number(n).toLocaleString("en", { maximumFractionDigits: 2 }) });

/** Calendar arithmetic on YYYY-MM-DD strings (UTC noon avoids DST edges). */
function addDays(day, n) {
  const d = new Date(day + "T12:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
const daysBetween = (a, b) => Math.round((Date.parse(b + "T12:00:00Z") - Date.parse(a + "T12:00:00Z")) / 86400000);
/** The tenant-local day (YYYY-MM-DD) of an instant. */
function localDay(at) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: S.tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
}
const todayInTz = () => localDay(new Date());
function localTime(iso) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: S.tz, dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}
/** Time of day with seconds, for the live stream (its events are all of the last minutes). */
function localClock(iso) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: S.tz, timeStyle: "medium" }).format(new Date(iso));
}
function applyPreset(p) {
  const today = todayInTz();
  S.preset = p;
  S.to = addDays(today, 1);
  S.from = p === "today" ? today : p === "7d" ? addDays(today, -6) : p === "30d" ? addDays(today, -29) : today.slice(0, 8) + "01";
}
const rangeQuery = (from = S.from, to = S.to) => `from=${from}&to=${to}`;

// --- API -----------------------------------------------------------------------------------
class ApiError extends Error {}
async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = S.csrf;
  const r = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, opts, { headers }));
  if (r.status === 304) return null;
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (r.status === 401) { showSignIn(); throw new ApiError("signed out"); }
  if (!r.ok) throw new ApiError((body && body.detail) || `${r.status} on ${path}`);
  return opts.withEtag ? { body, etag: r.headers.get("ETag") } : body;
}
/** The newest succeeded reconciliation run whose window contains the selected range, or null. */
async function runOfRange() {
  const runs = await api(`/v1/reconciliation/runs?status=succeeded&${rangeQuery()}&limit=1`);
  return runs.items[0] || null;
}
const runWindow = run => `${localTime(run.window_start)} – ${localTime(run.window_end)}`;
function report(e) {
  if (e instanceof ApiError && e.message === "signed out") return;
  $("#status").textContent = "Could not load: " + e.message;
  $("#status").classList.add("error");
}

// --- tables --------------------------------------------------------------------------------
/** A sortable table: columns [{key, label, num, cell(row)}]; state lives in `sort`. */
function table(id, cols, rows, sort, rerender) {
  const sorted = sort ? [...rows].sort((a, b) => {
    const x = a[sort.key], y = b[sort.key];
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return sort.desc ? -c : c;
  }) : rows;
  const head = el("tr", {}, cols.map(c => {
    const dir = sort && sort.key === c.key ? (sort.desc ? "descending" : "ascending") : "none";
    const label = sort ? el("button", { type: "button", on: { click: () => {
      sort.desc = sort.key === c.key ? !sort.desc : true; sort.key = c.key; rerender();
    } } }, c.label + (dir === "descending" ? " ▼" : dir === "ascending" ? " ▲" : "")) : c.label;
    return el("th", { class: c.num ? "n" : null, scope: "col", "aria-sort": sort ? dir : null }, label);
  }));
  const body = sorted.length ? sorted.map(r => el("tr", {}, cols.map(c => el("td", { class: c.num ? "n" : null }, c.cell ? c.cell(r) : String(r[c.key])))))
    : [el("tr", {}, el("td", { colspan: String(cols.length), class: "empty", text: "None." }))];
  return { node: el("div", { class: "scroll" }, el("table", { id }, el("thead", {}, head), el("tbody", {}, body))), rows: sorted };
}
function csvOf(cols, rows) {
  const q = v => /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v);
  return [cols.map(c => q(c.label)).join(","), ...rows.map(r => cols.map(c => q(c.csv ? c.csv(r) : r[c.key])).join(","))].join("\n") + "\n";
}
function card(title, ...value) { return el("div", { class: "card" }, el("h3", { text: title }), el("div", { class: "num" }, ...value)); }

// --- pages ---------------------------------------------------------------------------------
// Each visit renders into a detached box that replaces the page's content only when the visit
// is still the latest one: a slow page (a month of reconciliation items) that finishes after
// the user moved on must neither overwrite the newer page nor keep polling.
const view = () => S.view;
/** Polls `fn` while `box` (the visit's content, taken before the page's first await) is shown. */
function every(ms, fn, box) {
  const id = setInterval(() => box.isConnected ? fn().catch(report) : clearInterval(id), ms);
  S.timers.push(id);
}

async function overview() {
  const v = view();
  const todayBox = el("div", { class: "cards", id: "today-cards" });
  const rangeBox = el("div", { class: "cards", id: "range-cards" });
  const runNote = el("p", { id: "overview-run", class: "status" });
  v.replaceChildren(el("h1", { text: "Overview" }), el("h2", { text: "Today" }), todayBox,
    el("h2", { text: `${S.from} – ${addDays(S.to, -1)}` }), rangeBox, runNote);
  let etag = null;
  const today = async () => {
    const r = await api("/api/attribution/revenue/realtime", { headers: etag ? { "If-None-Match": etag } : {}, withEtag: true });
    if (!r) return;
    etag = r.etag;
    const figs = r.body.currencies.length ? r.body.currencies : [{ currency: r.body.currency, claimed_cents: 0, verified_cents: 0, conversions: 0 }];
    todayBox.replaceChildren(...figs.flatMap(f => [
      card(`Claimed ${f.currency}`, moneyEl(f.claimed_cents, f.currency, `today-claimed-${f.currency}`)),
      card(`Verified ${f.currency}`, moneyEl(f.verified_cents, f.currency, `today-verified-${f.currency}`)),
      card(`Conversions ${f.currency}`, num(f.conversions, `today-conversions-${f.currency}`)),
    ]));
  };
  const range = async () => {
    const [rt, ch, run] = await Promise.all([
      api(`/api/attribution/revenue/realtime?${rangeQuery()}`),
      api(`/v1/attribution/channels?${rangeQuery()}&model=${S.model}`),
      runOfRange(),
    ]);
    const cards = rt.currencies.flatMap(f => {
      const un = ch.unattributed.find(u => u.currency === f.currency);
      const t = run && run.totals.find(x => x.currency === f.currency);
      return [
        card(`Claimed ${f.currency}`, moneyEl(f.claimed_cents, f.currency, `range-claimed-${f.currency}`)),
        card(`Verified ${f.currency}`, moneyEl(f.verified_cents, f.currency, `range-verified-${f.currency}`)),
        card(`Unattributed ${f.currency}`, moneyEl(un ? un.verified_cents : 0, f.currency, `range-unattributed-${f.currency}`)),
        t ? card(`Ghost revenue ${f.currency}`, moneyEl(t.ghost_cents, f.currency, `ghost-${f.currency}`)) : null,
        t ? card(`Discrepancy ${f.currency}`, el("span", { "data-k": `discrepancy-${f.currency}`, text: `${(t.discrepancy_bps / 100).toFixed(2)} %` })) : null,
      ];
    });
    const shown = cards.filter(Boolean);
    rangeBox.replaceChildren(...(shown.length ? shown : [el("p", { text: "No revenue in this range." })]));
    runNote.textContent = run ? `Ghost revenue and discrepancy: the reconciliation run of ${runWindow(run)}, the newest containing this range.`
      : "No reconciliation run contains this range yet, so no ghost revenue or discrepancy (see Reconciliation).";
  };
  await Promise.all([today(), range()]);
  every(POLL_MS, today, v);
  every(POLL_MS * 5, range, v);
}

async function channels() {
  const v = view();
  const report = await api(`/v1/attribution/channels?${rangeQuery()}`);
  const model = S.model;
  const rows = report.channels.map(c => {
    const m = c.models.find(x => x.model === model) || { conversions: 0, claimed_cents: 0, verified_cents: 0 };
    return { channel: c.channel_code, currency: c.currency, conversions: m.conversions, claimed: m.claimed_cents, verified: m.verified_cents };
  // As `?model=` answers: a channel with nothing under this model is not listed.
  }).filter(r => r.conversions || r.claimed || r.verified);
  const cols = [
    { key: "channel", label: "Channel", cell: r => code(r.channel) }, { key: "currency", label: "Currency" },
    { key: "conversions", label: "Conversions", num: true, cell: r => num(r.conversions, `conv-${r.channel}-${r.currency}`) },
    { key: "claimed", label: "Claimed", num: true, cell: r => moneyEl(r.claimed, r.currency, `claimed-${r.channel}-${r.currency}`), csv: r => money(r.claimed, r.currency) },
    { key: "verified", label: "Verified", num: true, cell: r => moneyEl(r.verified, r.currency, `verified-${r.channel}-${r.currency}`), csv: r => money(r.verified, r.currency) },
  ];
  const render = () => {
    const t = table("channels-table", cols, rows, S.sort, render);
    const csv = csvOf(cols, t.rows);
    const link = el("a", { id: "csv", class: "button", download: `tally-channels-${model}-${S.from}-${S.to}.csv`,
      href: "data:text/csv;charset=utf-8," + encodeURIComponent(csv), text: "Download CSV" });
    const compare = table("models-table",
      [{ key: "channel", label: "Channel", cell: r => code(r.channel) }, { key: "currency", label: "Currency" },
        ...MODELS.map(m => ({ key: m, label: m.replace(/_/g, " "), num: true, cell: r => moneyEl(r[m], r.currency, `cmp-${m}-${r.channel}`) }))],
      report.channels.map(c => Object.assign({ channel: c.channel_code, currency: c.currency },
        Object.fromEntries(c.models.map(m => [m.model, m.claimed_cents])))), null, render);
    v.replaceChildren(el("h1", { text: "Channels" }),
      el("div", { class: "row" }, el("span", { text: `Model: ${model.replace(/_/g, " ")}` }), link),
      t.node, el("h2", { text: "Every model side by side (claimed)" }), compare.node);
  };
  render();
}

function lineChart(series, labels) {
  const W = 900, H = 300, P = 40;
  const max = Math.max(1, ...series.flatMap(s => s.values));
  const n = Math.max(...series.map(s => s.values.length));
  const x = i => P + (n <= 1 ? 0 : (i * (W - 2 * P)) / (n - 1));
  const y = v => H - P - (v * (H - 2 * P)) / max;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Claimed and verified revenue over time");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    svg.append(e);
  };
  add("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#d0d7de" });
  for (const s of series) {
    add("polyline", { class: s.cls, fill: "none", "stroke-width": 2, points: s.values.map((v, i) => `${x(i)},${y(v)}`).join(" ") });
  }
  const step = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((l, i) => { if (i % step === 0) add("text", { x: x(i), y: H - P + 16, "text-anchor": "middle" }, l); });
  add("text", { x: 4, y: P - 8 }, series[0].fmt(max));
  return svg;
}

async function trend() {
  const v = view();
  const days = daysBetween(S.from, S.to);
  const interval = days <= 2 ? "hour" : "day";
  // One currency per chart (amounts are never added across currencies): the tenant's unless
  // the range has none of it, switchable to any currency the range has.
  const present = (await api(`/api/attribution/revenue/realtime?${rangeQuery()}`)).currencies.map(f => f.currency);
  const options = present.length ? present : [S.currency];
  const c = options.includes(S.trendCurrency) ? S.trendCurrency : options.includes(S.currency) ? S.currency : options[0];
  const q = (from, to) => api(`/v1/revenue/timeseries?${rangeQuery(from, to)}&interval=${interval}&model=${S.model}&currency=${c}`);
  const [cur, prev] = await Promise.all([q(S.from, S.to), S.compare ? q(addDays(S.from, -days), S.from) : null]);
  const currency = el("select", { id: "trend-currency", on: { change: e => { S.trendCurrency = e.target.value; route(); } } },
    options.map(o => el("option", { value: o, text: o, selected: o === c })));
  const fmt = v => money(Math.round(v), c);
  const series = [
    { cls: "claimed", values: cur.buckets.map(b => b.claimed_cents), fmt },
    { cls: "verified", values: cur.buckets.map(b => b.verified_cents), fmt },
  ];
  if (prev) series.push({ cls: "prev", values: prev.buckets.map(b => b.claimed_cents), fmt });
  const labels = cur.buckets.map(b => interval === "hour" ? localTime(b.start).slice(-5) : localTime(b.start).slice(0, 6));
  const sum = (s, k) => s.buckets.reduce((a, b) => a + b[k], 0);
  v.replaceChildren(el("h1", { text: `Trend (${interval === "hour" ? "hourly" : "daily"}, ${c}, ${S.model.replace(/_/g, " ")})` }),
    el("div", { class: "row" }, el("label", { for: "trend-currency", text: "Currency " }), currency),
    el("div", { class: "legend" }, el("span", {}, el("i", { class: "sw c" }), "claimed"), el("span", {}, el("i", { class: "sw v" }), "verified"),
      prev ? el("span", {}, el("i", { class: "sw p" }), "claimed, previous period") : null),
    lineChart(series, labels),
    el("div", { class: "cards" }, card("Claimed", moneyEl(sum(cur, "claimed_cents"), c, "trend-claimed")),
      card("Verified", moneyEl(sum(cur, "verified_cents"), c, "trend-verified")),
      prev ? card("Claimed, previous period", moneyEl(sum(prev, "claimed_cents"), c, "trend-prev-claimed")) : null));
}

async function paths() {
  const v = view();
  const [top, list] = await Promise.all([api(`/v1/attribution/paths?${rangeQuery()}&limit=20`), api("/v1/events?kind=conversion&limit=25")]);
  const detail = el("div", { id: "conversion-detail" });
  const pathRows = top.paths.map(p => Object.assign({ label: p.path.join(" → ") }, p));
  const pathCols = [
    { key: "label", label: "Path" }, { key: "currency", label: "Currency" },
    { key: "conversions", label: "Conversions", num: true, cell: r => num(r.conversions, `path-conv-${r.label}-${r.currency}`) },
    { key: "revenue_cents", label: "Revenue", num: true, cell: r => moneyEl(r.revenue_cents, r.currency, `path-rev-${r.label}-${r.currency}`) },
  ];
  const cols = [
    { key: "event_id", label: "Conversion", cell: r => el("button", { type: "button", "data-conversion": r.event_id, on: { click: () => drill(r.event_id, detail).catch(report) } }, r.event_id) },
    { key: "occurred_at", label: "When", cell: r => localTime(r.occurred_at) },
    { key: "order_id", label: "Order", cell: r => r.order_id || "" },
    { key: "revenue_cents", label: "Revenue", num: true, cell: r => r.currency ? moneyEl(r.revenue_cents, r.currency, `conv-rev-${r.event_id}`) : "" },
  ];
  v.replaceChildren(el("h1", { text: "Top conversion paths" }),
    pathRows.length ? table("paths-table", pathCols, pathRows, null, () => {}).node : el("p", { text: "No conversions in this range." }),
    el("h2", { text: "Conversions" }), el("p", { class: "status", text: "The newest conversions; choose one to see its journey and its split under every model." }),
    table("conversions-table", cols, list.items, null, () => {}).node, detail);
}
async function drill(eventId, box) {
  const d = await api(`/v1/attribution/conversions/${encodeURIComponent(eventId)}`);
  const cur = d.conversion.currency;
  const journey = d.journey.length ? el("ol", {}, d.journey.map(t => el("li", {}, `${localTime(t.occurred_at)} · `, el("strong", { text: t.channel_code }))))
    : el("p", { text: "No touches: credited to direct." });
  const channelsSeen = [...new Set(d.splits.flatMap(s => s.channels.map(c => c.channel_code)))];
  const split = table("split-table", [{ key: "model", label: "Model" }, ...channelsSeen.map(ch => ({ key: ch, label: ch, num: true,
    cell: r => moneyEl(r[ch] || 0, cur, `split-${r.model}-${ch}`) }))],
  d.splits.map(s => Object.assign({ model: s.model }, Object.fromEntries(s.channels.map(c => [c.channel_code, c.allocated_cents])))), null, () => {});
  box.replaceChildren(el("h2", { text: `${d.conversion.event_id}: ${money(d.conversion.revenue_cents, cur)}` }), el("h3", { text: "Journey" }), journey,
    el("h3", { text: "Split under every model" }), split.node);
  box.scrollIntoView();
}

async function reconciliation() {
  const v = view();
  const [status, run] = await Promise.all([api(`/api/reconciliation/status?${rangeQuery()}`), runOfRange()]);
  const platforms = table("platforms-table", [
    { key: "platform_name", label: "Platform" },
    { key: "connection_status", label: "Status", cell: r => el("span", { class: `tag ${r.connection_status}`, text: r.connection_status }) },
    { key: "last_sync", label: "Last delivery", cell: r => r.last_sync ? localTime(r.last_sync) : "never" },
    { key: "events_processed", label: "Events", num: true },
    { key: "revenue_verified_cents", label: "Verified", num: true, cell: r => moneyEl(r.revenue_verified_cents, r.currency, `platform-${r.platform_name}`) },
    { key: "verification_failures", label: "Failures", num: true },
  ], status.platforms, null, () => {});
  const parts = [el("h1", { text: "Reconciliation" }), el("p", {}, "Overall: ", el("span", { class: "tag", "data-k": "overall", text: status.overall_status })), platforms.node];
  if (!run) {
    // Read-only on purpose: requesting a run needs an admin key, and the page offers no write
    // beyond replay (which carries the CSRF token).
    v.replaceChildren(...parts, el("p", { id: "no-run", class: "notice", role: "note",
      text: `No reconciliation run covers ${S.from} – ${addDays(S.to, -1)} yet. Runs follow new payments and recomputes and run nightly per day; ` +
        "choose a day or a range a run covers, or ask an admin to request one for this range (POST /v1/reconciliation/runs)." }));
    return;
  }
  const items = (await runItems(run.id)).filter(i => {
    const day = localDay(new Date(i.tracked_at || i.first_posting_at));
    return day >= S.from && day < S.to;
  });
  const counts = {};
  for (const i of items) counts[i.status] = (counts[i.status] || 0) + 1;
  const order = el("div", { id: "order-detail" });
  const amount = (c, cur, k) => c === null || c === undefined || !cur ? "" : moneyEl(c, cur, k);
  const itemCols = [
    { key: "order_id", label: "Order", cell: r => el("button", { type: "button", "data-order": r.order_id, on: { click: () => orderDrill(r.order_id, order).catch(report) } }, r.order_id) },
    { key: "status", label: "Status", cell: r => el("span", { class: `tag ${r.status}`, text: r.status }) },
    { key: "tracked_cents", label: "Tracked", num: true, cell: r => amount(r.tracked_cents, r.tracked_currency, `item-tracked-${r.order_id}`) },
    { key: "verified_cents", label: "Verified", num: true, cell: r => amount(r.verified_cents, r.verified_currency || r.tracked_currency, `item-verified-${r.order_id}`) },
    { key: "difference_cents", label: "Difference", num: true, cell: r => amount(r.difference_cents, r.tracked_currency || r.verified_currency, `item-diff-${r.order_id}`) },
  ];
  // Refunds and orders still within their payment grace period differ by design.
  const expected = new Set(["refunded", "partially_refunded", "awaiting_payment"]);
  const worst = [...items].filter(i => i.difference_cents && !expected.has(i.status)).sort((a, b) => Math.abs(b.difference_cents) - Math.abs(a.difference_cents)).slice(0, 5);
  const filter = el("select", { id: "item-status", "aria-label": "Items by status" }, el("option", { value: "", text: "every status" }),
    Object.keys(counts).sort().map(s => el("option", { value: s, text: `${s} (${counts[s]})` })));
  const list = el("div");
  const renderItems = () => list.replaceChildren(table("items-table", itemCols, items.filter(i => !filter.value || i.status === filter.value), null, () => {}).node);
  filter.addEventListener("change", renderItems);
  renderItems();
  v.replaceChildren(...parts,
    el("p", { id: "run-of-range", "data-run": run.id, text: `From the run of ${runWindow(run)} (finished ${localTime(run.finished_at)}), ` +
      `its ${items.length} orders tracked or first paid in this range.` }),
    el("h2", { text: "Worst discrepancies" }),
    table("worst-table", itemCols, worst, null, () => {}).node,
    el("h2", { text: "Items" }), el("div", { class: "row" }, el("label", { for: "item-status", text: "Status " }), filter), list, order);
}
/** Every item of a run, page by page: the range's orders must all be there to rank and count. */
async function runItems(id) {
  const items = [];
  let cursor = "";
  do {
    const page = await api(`/v1/reconciliation/runs/${id}?limit=500${cursor && "&cursor=" + encodeURIComponent(cursor)}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
async function orderDrill(orderId, box) {
  const o = await api(`/v1/orders/${encodeURIComponent(orderId)}`);
  const conv = o.conversions.map(c => el("li", {}, `${c.event_id} · ${localTime(c.occurred_at)} · `, c.currency ? money(c.revenue_cents, c.currency) : ""));
  const post = o.postings.map(p => el("li", {}, `${p.kind || p.entry_type || "posting"} · ${p.source || ""} · ${localTime(p.occurred_at)} · `, money(p.amount_cents, p.currency)));
  box.replaceChildren(el("h2", { text: `Order ${o.order_id}` }), el("p", {}, "Status now: ", el("span", { class: `tag ${o.status}`, text: o.status })),
    el("h3", { text: "Tracked side" }), conv.length ? el("ul", {}, conv) : el("p", { text: "Not tracked." }),
    el("h3", { text: "Postings side" }), post.length ? el("ul", {}, post) : el("p", { text: "No postings." }));
  box.scrollIntoView();
}

async function health() {
  const v = view();
  const live = el("div", { id: "live" });
  const [dead, jobs, status] = await Promise.all([
    api("/v1/dead-events?status=open&limit=20"), api("/v1/jobs/failed"), api("/api/reconciliation/status")]);
  const canFix = S.scopes.includes("ingest");
  const deadTable = table("dead-table", [
    { key: "created_at", label: "When", cell: r => localTime(r.created_at) },
    { key: "error_code", label: "Error" }, { key: "event_id", label: "Event", cell: r => r.event_id || "" },
    // Writes carry the CSRF token (see `api`); a read-only key's session gets no buttons.
    ...(canFix ? [{ key: "id", label: "Action", cell: r => el("span", { class: "row" },
      ["replay", "discard"].map(action => el("button", { type: "button", "data-action": action, "data-dead": r.id, on: { click: () =>
        api(`/v1/dead-events/${r.id}/${action}`, { method: "POST" }).then(() => route()).catch(report) } },
      action === "replay" ? "Replay" : "Discard"))) }] : []),
  ], dead.items, null, () => {});
  const jobTable = table("jobs-table", [
    { key: "failed_at", label: "When", cell: r => localTime(r.failed_at) }, { key: "kind", label: "Kind" },
    { key: "attempts", label: "Attempts", num: true }, { key: "error", label: "Error" }], jobs.slice(0, 20), null, () => {});
  // One platform per configured endpoint, with its last delivery and failures.
  const epTable = table("endpoints-table", [
    { key: "platform_name", label: "Vendor" }, { key: "connection_status", label: "Status" },
    { key: "last_sync", label: "Last delivery", cell: r => r.last_sync ? localTime(r.last_sync) : "never" },
    { key: "verification_failures", label: "Verification failures", num: true },
    { key: "dead_lettered", label: "Dead-lettered", num: true },
    { key: "error_message", label: "Last error", cell: r => r.error_message || "" },
  ], status.platforms, null, () => {});
  v.replaceChildren(el("h1", { text: "Data health" }), el("h2", { text: "Live events" }), live,
    el("h2", { text: "Dead letters (open)" }),
    canFix ? null : el("p", { class: "status", text: "Replaying or discarding needs a key with the ingest scope." }), deadTable.node, el("h2", { text: "Failed jobs" }), jobTable.node,
    el("h2", { text: "Webhook endpoints" }), epTable.node);
  // Accepted events and refused ones (dead letters) merged newest first. Exact re-sends
  // (duplicates) leave no row anywhere, so the stream cannot show them.
  const refresh = async () => {
    const [ev, refused] = await Promise.all([api("/v1/events?limit=15"), api("/v1/dead-events?limit=15")]);
    const rows = [
      ...ev.items.map(e => ({ at: e.received_at, event_id: e.event_id, type: e.type, detail: e.channel_code, result: "accepted" })),
      ...refused.items.map(d => ({ at: d.created_at, event_id: d.event_id || "", type: (d.payload && d.payload.type) || d.source, detail: d.error_code, result: "rejected" })),
    ].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 15);
    live.replaceChildren(table("live-table", [
      { key: "at", label: "Received", cell: r => el("time", { datetime: r.at, title: localTime(r.at), text: localClock(r.at) }) },
      { key: "event_id", label: "Event id" }, { key: "type", label: "Type" }, { key: "detail", label: "Channel or error" },
      { key: "result", label: "Result", cell: r => el("span", { class: `tag ${r.result}`, text: r.result }) },
    ], rows, null, () => {}).node);
  };
  await refresh();
  every(POLL_MS, refresh, v);
}

const RENDER = { overview, channels, trend, paths, reconciliation, health };

// --- shell ---------------------------------------------------------------------------------
function showSignIn() {
  $("#app").hidden = true; $("#nav").hidden = true; $("#sign-out").hidden = true;
  $("#sign-in").hidden = false;
  $("#sign-in-error").hidden = new URLSearchParams(location.search).get("sign_in") !== "failed";
}
function syncControls() {
  $("#from").value = S.from; $("#to").value = S.to; $("#model").value = S.model; $("#compare").checked = S.compare;
  for (const b of document.querySelectorAll("[data-preset]")) b.setAttribute("aria-pressed", String(b.dataset.preset === S.preset));
}
async function route() {
  S.timers.forEach(clearInterval); S.timers = [];
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === "#" + page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  syncControls();
  $("#status").textContent = ""; $("#status").classList.remove("error");
  document.body.dataset.ready = "";
  const visit = ++S.visit;
  const box = S.view = el("div");
  try {
    await RENDER[page]();
    if (visit !== S.visit) return;
    $("#view").replaceChildren(box);
    document.body.dataset.ready = page;
    if (!performance.getEntriesByName("tally-ready").length) performance.mark("tally-ready");
  } catch (e) { if (visit === S.visit) report(e); }
}
async function start() {
  const r = await fetch("/dashboard/session", { credentials: "same-origin", cache: "no-store" });
  if (r.status !== 200) { showSignIn(); return; }
  const me = await r.json();
  S.csrf = me.csrf_token; S.scopes = me.scopes; S.tz = me.time_zone; S.currency = me.currency; S.model = me.default_model;
  applyPreset("30d");
  $("#model").replaceChildren(...MODELS.map(m => el("option", { value: m, text: m.replace(/_/g, " ") })));
  $("#sign-in").hidden = true; $("#app").hidden = false; $("#nav").hidden = false; $("#sign-out").hidden = false;
  for (const b of document.querySelectorAll("[data-preset]")) b.addEventListener("click", () => { applyPreset(b.dataset.preset); route(); });
  for (const id of ["from", "to"]) $("#" + id).addEventListener("change", e => {
    if (!e.target.value) return;
    S[id] = e.target.value; S.preset = ""; route();
  });
  $("#compare").addEventListener("change", e => { S.compare = e.target.checked; route(); });
  $("#model").addEventListener("change", e => { S.model = e.target.value; route(); });
  $("#controls").addEventListener("submit", e => e.preventDefault());
  $("#sign-out").addEventListener("click", async () => {
    await api("/dashboard/sign-out", { method: "POST" }).catch(report);
    location.replace("/");
  });
  window.addEventListener("hashchange", route);
  await route();
}
document.addEventListener("DOMContentLoaded", start);
