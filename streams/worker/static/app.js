// posguard dashboard: polls the worker's API every few seconds; no framework, no build step.
"use strict";

// Alert types come from the worker's rule registry (/api/types), in its order; colours follow it.
let TYPES = [];
const COLOURS = ["#b3121f", "#7a1fa2", "#d9640f", "#5d4037", "#00838f", "#b58d00", "#3949ab",
  "#6d8b00", "#e91e63", "#3a7bbf", "#455a64", "#8d6e63"];
const colour = (type) => {
  const i = TYPES.indexOf(type);
  return i < COLOURS.length ? COLOURS[i] : `hsl(${(i * 47) % 360} 55% 38%)`;
};
const PAGE = 50;
const POLL_MS = 3000;
const $ = (sel) => document.querySelector(sel);
const state = { offset: 0, selected: null, tab: "alerts", sort: "at_risk", merchants: [] };

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) { showLogin(); throw new Error("unauthorised"); }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function showLogin(refused = false) {
  $("#login").hidden = false;
  $("#app").hidden = true;
  $("#login-error").hidden = !refused;
  $("#conn").textContent = "token needed";
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  document.cookie = `posguard_token=${encodeURIComponent($("#token").value)}; path=/; SameSite=Strict`;
  const r = await fetch("/api/stats", { credentials: "same-origin" });
  if (r.status === 401) { showLogin(true); return; }
  $("#login").hidden = true;
  $("#app").hidden = false;
  refresh();
});

// -- filters and tabs ------------------------------------------------------------------------
const typeSelect = $("#filters select[name=type]");
async function loadTypes() {
  if (TYPES.length) return;
  const kinds = (await api("/api/types")).types;
  TYPES = kinds.map((k) => k.type);
  for (const k of kinds) {
    typeSelect.insertAdjacentHTML("beforeend",
      `<option value="${esc(k.type)}" title="${esc(k.title)}">${esc(k.type)}</option>`);
  }
}
$("#filters").addEventListener("input", () => { state.offset = 0; loadAlerts(); });
$("#filters").addEventListener("reset", () => setTimeout(() => { state.offset = 0; loadAlerts(); }));
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadAlerts(); });
$("#next").addEventListener("click", () => { state.offset += PAGE; loadAlerts(); });
for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => showTab(b.dataset.tab));
}
function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${tab}`;
  refresh();
}
function setFilter(name, value) {
  $(`#filters [name=${name}]`).value = value;
  state.offset = 0;
  showTab("alerts");
}

function filters() {
  const params = new URLSearchParams();
  for (const el of $("#filters").elements) {
    if (!el.name || !el.value || (el.type === "checkbox" && !el.checked)) continue;
    params.set(el.name, el.value.trim());
  }
  return params;
}
function query() {
  const params = filters();
  params.set("limit", PAGE);
  params.set("offset", state.offset);
  return params.toString();
}

// -- alerts ----------------------------------------------------------------------------------
async function loadAlerts() {
  const page = await api(`/api/alerts?${query()}`);
  const rows = page.alerts.map((a) => `
    <tr class="sev-${esc(a.severity)} ${a.status === "RESOLVED" ? "resolved" : ""} ${a.case.overdue ? "overdue-row" : ""}" data-id="${esc(a.alert_id)}">
      <td class="sev ${esc(a.severity)}">${esc(a.severity)}</td><td>${esc(a.type)}</td>
      <td>${esc(a.status)}</td>
      <td class="case">${caseCell(a.case)}</td>
      <td>${esc(a.merchant_id)}</td><td>${esc(a.terminal_id ?? "")}</td>
      <td class="money" title="${esc(a.at_stake?.why ?? "")}">${esc(a.at_stake?.amount ?? "")}</td>
      <td>${esc(a.event_time)}</td><td>${esc(a.summary)}</td></tr>`);
  $("#alerts tbody").innerHTML = rows.join("") || '<tr><td colspan="9">No alerts match.</td></tr>';
  $("#export").href = `/api/alerts.csv?${filters()}`;
  const last = Math.min(page.offset + page.alerts.length, page.total);
  $("#page-info").textContent = `${page.total ? page.offset + 1 : 0}–${last} of ${page.total}`;
  $("#prev").disabled = page.offset === 0;
  $("#next").disabled = last >= page.total;
}
$("#alerts tbody").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-id]");
  if (row) { state.selected = row.dataset.id; loadDetail(); }
});

function caseCell(c) {
  const who = c.owner ? ` · ${esc(c.owner)}` : "";
  const what = c.state === "CLOSED" ? ` · ${esc(DISPOSITIONS[c.disposition] ?? c.disposition)}` : "";
  return `${esc(c.state)}${who}${what}${c.overdue ? '<span class="overdue">overdue</span>' : ""}`;
}
const DISPOSITIONS = { CONFIRMED: "confirmed", FALSE_POSITIVE: "false positive", DUPLICATE: "duplicate", RECOVERED: "money recovered" };
const me = () => ($("#me")?.value || localStorage.getItem("posguard_me") || "").trim();

async function caseAction(alertId, body) {
  const response = await fetch(`/api/alerts/${encodeURIComponent(alertId)}/case`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ by: me(), ...body }),
  });
  const answer = await response.json();
  $("#case-error").hidden = response.ok;
  if (!response.ok) { $("#case-error").textContent = answer.error; return; }
  await loadDetail();
  await loadAlerts();
}

function casePanel(a) {
  const c = a.case;
  const closed = c.state === "CLOSED";
  const sla = c.sla_due ? `SLA due ${esc(c.sla_due)}${c.overdue ? '<span class="overdue">overdue</span>' : ""}` : "";
  const recovered = c.recovered ? ` (${esc(c.recovered)})` : "";
  const ack = a.acknowledgement;
  return `
    <h3>Case</h3>
    <p id="case-state">State <b>${esc(c.state)}</b>${c.owner ? ` · owner <b>${esc(c.owner)}</b>` : ""}${c.snoozed_until ? ` · snoozed until ${esc(c.snoozed_until)}` : ""}${closed ? ` · ${esc(DISPOSITIONS[c.disposition] ?? c.disposition)}${c.duplicate_of ? ` of ${esc(c.duplicate_of)}` : ""}${recovered}` : ""}<br>${sla}</p>
    ${ack ? `<p id="ack-state">Acknowledged by <b>${esc(ack.by)}</b> at ${esc(ack.at)}${ack.note ? `: ${esc(ack.note)}` : ""}</p>` : ""}
    ${c.comment ? `<p>Comment: ${esc(c.comment)}</p>` : ""}
    <p id="case-error" class="error" hidden></p>
    <input id="me" placeholder="your name (who acts)" value="${esc(me())}">
    ${closed ? `<form id="reopen" class="case-form"><textarea name="comment" placeholder="why reopen"></textarea><button type="submit">Reopen</button></form>` : `
    <form id="ack" class="case-form"><textarea name="note" placeholder="note (what you are doing about it)"></textarea>
      <div class="row"><input name="owner" placeholder="owner (default: you)"><button type="submit">Acknowledge</button></div></form>
    <form id="snooze" class="case-form"><div class="row"><select name="hours"><option value="1">1 hour</option><option value="4">4 hours</option><option value="24" selected>1 day</option><option value="72">3 days</option></select><button type="submit">Snooze</button></div></form>
    <form id="close-case" class="case-form">
      <div class="row"><select name="disposition"><option value="CONFIRMED">confirmed</option><option value="FALSE_POSITIVE">false positive</option><option value="DUPLICATE">duplicate of another alert</option><option value="RECOVERED">money recovered</option></select>
      <input name="duplicate_of" placeholder="duplicate of (alert id)"><input name="recovered" placeholder="amount recovered" size="9"><input name="currency" placeholder="EUR" size="4" value="${esc(a.at_stake?.currency ?? "")}"></div>
      <textarea name="comment" placeholder="comment (what was found)"></textarea><button type="submit">Close case</button></form>`}
    <form id="comment" class="case-form"><textarea name="comment" placeholder="comment"></textarea><button type="submit">Add comment</button></form>
    <h3>Case history</h3>
    <ul id="case-history">${c.history.map((h) => `<li>${esc(h.at)} · <b>${esc(h.by)}</b> · ${esc(h.action)}${h.owner ? ` → ${esc(h.owner)}` : ""}${h.until ? ` until ${esc(h.until)}` : ""}${h.disposition ? ` as ${esc(DISPOSITIONS[h.disposition] ?? h.disposition)}` : ""}${h.comment ? `: ${esc(h.comment)}` : ""}</li>`).join("") || "<li>nobody acted yet</li>"}</ul>`;
}

function wireCaseForms(a) {
  $("#me").addEventListener("change", (e) => localStorage.setItem("posguard_me", e.target.value.trim()));
  const on = (id, make) => {
    const form = $(id);
    if (form) form.addEventListener("submit", (e) => { e.preventDefault(); caseAction(a.alert_id, make(new FormData(form))); });
  };
  on("#ack", (f) => ({ action: "acknowledge", comment: f.get("note"), owner: f.get("owner") }));
  on("#snooze", (f) => ({ action: "snooze", until: new Date(Date.now() + Number(f.get("hours")) * 3600e3).toISOString() }));
  on("#close-case", (f) => ({ action: "close", disposition: f.get("disposition"), duplicate_of: f.get("duplicate_of"),
    recovered: f.get("recovered"), currency: f.get("currency"), comment: f.get("comment") }));
  on("#reopen", (f) => ({ action: "reopen", comment: f.get("comment") }));
  on("#comment", (f) => ({ action: "comment", comment: f.get("comment") }));
}

function table(headers, rows) {
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

// The live poll re-renders the detail only when the alert changed and nobody is typing in it.
$("#detail").addEventListener("input", (e) => { if (e.target.id !== "me") state.typing = true; });
async function loadDetail(forced = true) {
  if (!state.selected || (!forced && state.typing)) return;
  let a;
  try { a = await api(`/api/alerts/${encodeURIComponent(state.selected)}`); } catch { return; }
  const seen = JSON.stringify(a);
  if (!forced && seen === state.shown) return;
  state.shown = seen;
  state.typing = false;
  const ev = a.evidence || { transactions: [], settlements: [], not_in_state: [] };
  const details = a.details || {};
  let model = "";
  if (details.top_features) {
    model = `<h3>Why the model flagged it</h3>
      <p>${details.model_kind === "gradient-boosted trees" ? "Fraud probability" : "Anomaly score"} <b>${esc(details.score)}</b> (threshold ${esc(details.threshold)}, model ${esc(details.model_version)})</p>
      <ol>${details.top_features.map((f) => `<li>${esc(f.explanation)}</li>`).join("")}</ol>`;
  }
  const facts = Object.entries(details).filter(([k, v]) => k !== "top_features" && typeof v !== "object");
  const ack = a.acknowledgement;
  $("#detail").innerHTML = `
    <div class="sev ${esc(a.severity)}">${esc(a.severity)} · ${esc(a.type)} · ${esc(a.status)}</div>
    <p class="summary" id="detail-summary">${esc(a.summary)}</p>
    ${a.at_stake ? `<p id="detail-stake">At stake: <b>${esc(a.at_stake.amount)}</b> (${esc(a.at_stake.why)})</p>` : ""}
    <p>Alert <code>${esc(a.alert_id)}</code>, merchant <a href="#" id="to-merchant">${esc(a.merchant_id)}</a>${a.terminal_id ? `, terminal ${esc(a.terminal_id)}` : ""}</p>
    ${model}
    <h3>Transactions</h3>
    ${ev.transactions.length ? table(["txn", "type", "status", "amount", "entry", "terminal", "time (terminal's offset)"],
      ev.transactions.map((t) => [t.txn_id, t.type, t.status + (t.cancelled_by ? ` (cancelled by ${t.cancelled_by})` : ""), t.amount, t.entry_mode ?? t.channel, t.terminal_id, t.event_time])) : "<p>none</p>"}
    <h3>Settlement lines</h3>
    ${ev.settlements.length ? table(["line", "txn", "status", "gross", "fee", "expected fee", "net", "settled at"],
      ev.settlements.map((s) => [s.settlement_id, s.txn_id, s.status, s.gross, s.fee, s.expected_fee ?? "–", s.net, s.settled_at])) : "<p>none</p>"}
    ${ev.not_in_state.length ? `<p>Past retention: ${esc(ev.not_in_state.join(", "))}</p>` : ""}
    ${facts.length ? `<h3>Details</h3>${table(["", ""], facts)}` : ""}
    <h3>History</h3>
    <ul id="history">${a.history.map((h) => `<li>${esc(h.status)} · ${esc(h.event_time ?? h.at)} · ${esc(h.summary)}</li>`).join("")}</ul>
    ${casePanel(a)}`;
  $("#detail").hidden = false;
  document.querySelector(".split").classList.add("with-detail");
  $("#to-merchant").addEventListener("click", (e) => { e.preventDefault(); setFilter("merchant", a.merchant_id); });
  wireCaseForms(a);
}

$("#bulk").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const action = { action: f.get("action"), by: me(), comment: f.get("comment") };
  if (action.action === "close") Object.assign(action, { disposition: f.get("disposition"), duplicate_of: f.get("duplicate_of") });
  const total = (await api(`/api/alerts?${query()}`)).total;
  if (!me()) { $("#bulk-result").textContent = "open an alert and give your name first"; return; }
  if (!window.confirm(`${action.action} ${total} alerts?`)) return;
  const response = await fetch("/api/cases/bulk", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ filter: Object.fromEntries(filters()), action }),
  });
  const answer = await response.json();
  const refused = Object.keys(answer.refused || {}).length;
  $("#bulk-result").textContent = response.ok ? `${answer.changed} changed${refused ? `, ${refused} refused` : ""}` : answer.error;
  loadAlerts();
});

// -- live configuration ----------------------------------------------------------------------
async function loadConfig() {
  const c = await api("/api/config");
  const running = Object.entries(c.in_force).map(([p, v]) => `partition ${esc(p)}: ${v ? `version ${v}` : "the worker's file"}`);
  $("#config-in-force").textContent = running.length ? `In force: ${running.join(", ")}.` : "No partition owned yet.";
  if (c.late.length) $("#config-in-force").textContent += ` Arrived late: ${c.late.map((l) => `version ${l.version} on partition ${l.partition}`).join(", ")}.`;
  $("#config-versions tbody").innerHTML = c.versions.map((v) => `
    <tr data-version="${v.version}" class="${state.configVersion === v.version ? "selected" : ""}"><td>${v.version}</td><td>${esc(v.effective_at)}</td><td>${esc(v.by)}</td><td>${esc(v.at)}</td>
    <td>${esc(v.comment)}</td><td>${esc(v.partitions_in_force.join(", ") || "–")}</td></tr>`).join("")
    || `<tr><td colspan="6">No version pushed to ${esc(c.topic)} yet: the worker runs its configuration file.</td></tr>`;
  const shown = c.versions.find((v) => v.version === state.configVersion) || c.versions[0];
  $("#config-document").textContent = shown ? `version ${shown.version}:\n${JSON.stringify(shown.config, null, 2)}` : "";
}
$("#config-versions tbody").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-version]");
  if (row) { state.configVersion = Number(row.dataset.version); loadConfig(); }
});

// -- cases and precision ---------------------------------------------------------------------
async function loadCases() {
  const summary = await api("/api/cases");
  const overdue = Object.values(summary.overdue).reduce((x, y) => x + y, 0);
  $("#case-states").innerHTML = Object.entries(summary.states).map(([s, n]) =>
    `<div class="card"><div class="label">${esc(s)}</div><div class="value">${n}</div></div>`).join("") +
    `<div class="card crit"><div class="label">Overdue (past SLA)</div><div class="value" id="c-overdue">${overdue}</div></div>`;
  const rows = Object.entries(summary.precision).map(([type, v]) => `<tr><td>${esc(type)}</td><td>${v.CONFIRMED || 0}</td>
    <td>${v.FALSE_POSITIVE || 0}</td><td>${v.DUPLICATE || 0}</td><td>${v.RECOVERED || 0}</td>
    <td><b>${v.precision === null ? "–" : `${(v.precision * 100).toFixed(1)} %`}</b></td></tr>`);
  $("#precision tbody").innerHTML = rows.join("") || '<tr><td colspan="6">No case closed with a verdict yet.</td></tr>';
}

// -- merchants -------------------------------------------------------------------------------
function riskTotal(m) { return Object.values(m.at_risk_minor).reduce((x, y) => x + y, 0); }
const SORTS = {
  merchant_id: (a, b) => a.merchant_id.localeCompare(b.merchant_id),
  open_alerts: (a, b) => b.open_alerts - a.open_alerts,
  unsettled_count: (a, b) => b.unsettled_count - a.unsettled_count,
  unsettled: (a, b) => Object.values(b.unsettled_minor).reduce((x, y) => x + y, 0) - Object.values(a.unsettled_minor).reduce((x, y) => x + y, 0),
  unpaid: (a, b) => Object.values(b.unpaid_minor).reduce((x, y) => x + y, 0) - Object.values(a.unpaid_minor).reduce((x, y) => x + y, 0),
  at_risk: (a, b) => riskTotal(b) - riskTotal(a) || b.open_alerts - a.open_alerts,
  faults: (a, b) => b.terminals_in_fault.length - a.terminals_in_fault.length,
};
for (const th of document.querySelectorAll("#merchants th[data-sort]")) {
  th.addEventListener("click", () => { state.sort = th.dataset.sort; renderMerchants(); });
}
function renderMerchants() {
  const rows = [...state.merchants].sort(SORTS[state.sort]);
  for (const th of document.querySelectorAll("#merchants th")) th.classList.toggle("sorted", th.dataset.sort === state.sort);
  $("#merchants tbody").innerHTML = rows.map((m) => `
    <tr data-merchant="${esc(m.merchant_id)}"><td>${esc(m.merchant_id)}</td><td>${m.open_alerts}</td>
    <td>${m.unsettled_count}</td><td>${esc(Object.values(m.unsettled).join(", "))}</td>
    <td class="unpaid">${esc(Object.values(m.unpaid).join(", ") || "–")}${m.statement_late ? ' <span class="badge bad">statement late</span>' : ""}</td>
    <td>${esc(Object.values(m.at_risk).join(", ") || "–")}</td><td>${esc(m.terminals_in_fault.join(", "))}</td></tr>`).join("");
}
$("#merchants tbody").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-merchant]");
  if (row) setFilter("merchant", row.dataset.merchant);
});

// -- charts (inline SVG) ---------------------------------------------------------------------
function bars(el, series, colours, legend) {
  const keys = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  if (!keys.length) { el.innerHTML = "<p>No data yet.</p>"; return; }
  const totals = keys.map((k) => series.reduce((sum, s) => sum + (s.points.find((p) => p[0] === k)?.[1] || 0), 0));
  const max = Math.max(1, ...totals);
  const w = 1000 / keys.length;
  let svg = "";
  keys.forEach((k, i) => {
    let y = 170;
    series.forEach((s, j) => {
      const v = s.points.find((p) => p[0] === k)?.[1] || 0;
      const h = (v / max) * 160;
      y -= h;
      if (v) svg += `<rect x="${i * w}" y="${y}" width="${Math.max(1, w - 1)}" height="${h}" fill="${colours[j]}"><title>${esc(s.name)}: ${v} at ${new Date(k * 1000).toISOString()}</title></rect>`;
    });
  });
  svg += `<text x="2" y="12" font-size="11">${max}</text>`;
  el.innerHTML = `<svg viewBox="0 0 1000 180" preserveAspectRatio="none">${svg}</svg>` +
    (legend ? `<div class="legend">${series.map((s, j) => `<span><i data-colour="${j}"></i>${esc(s.name)}</span>`).join("")}</div>` : "");
  // Colours set through the DOM: the CSP refuses inline style attributes.
  el.querySelectorAll("i[data-colour]").forEach((i) => { i.style.background = colours[Number(i.dataset.colour)]; });
}
function line(el, points, unit) {
  if (points.length < 2) { el.innerHTML = "<p>No data yet.</p>"; return; }
  const xs = points.map((p) => p[0]); const ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y1 = Math.max(1, ...ys);
  const path = points.map((p, i) => `${i ? "L" : "M"}${((p[0] - x0) / Math.max(1, x1 - x0)) * 1000},${170 - (p[1] / y1) * 160}`).join("");
  el.innerHTML = `<svg viewBox="0 0 1000 180" preserveAspectRatio="none"><path d="${path}" fill="none" stroke="#3a7bbf" stroke-width="2"/>
    <line x1="0" x2="1000" y1="${170 - (30 / y1) * 160}" y2="${170 - (30 / y1) * 160}" stroke="#b3121f" stroke-dasharray="6"/>
    <text x="2" y="12" font-size="11">${y1.toFixed(1)} ${unit} (dashed: 30 h gap threshold)</text></svg>`;
}

// -- polling ---------------------------------------------------------------------------------
function money(perCurrency) {
  const parts = Object.values(perCurrency);
  return parts.length ? parts.map((p) => `<span class="amt">${esc(p)}</span>`).join(" ") : "none";
}
function worstMerchant(merchants) {
  const open = merchants.filter((m) => m.open_alerts > 0);
  if (!open.length) return "none";
  const m = open.sort((a, b) => b.open_alerts - a.open_alerts || riskTotal(b) - riskTotal(a))[0];
  const risk = Object.values(m.at_risk);
  return `<a href="#" data-merchant="${esc(m.merchant_id)}">${esc(m.merchant_id)}</a>
    <span class="sub">${m.open_alerts} open${risk.length ? ` · ${esc(risk.join(", "))}` : ""}</span>`;
}
async function refresh() {
  try {
    await loadTypes();
    const stats = await api("/api/stats");
    const fleet = await api("/api/merchants");
    state.merchants = fleet.merchants;
    $("#conn").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("#conn").className = "badge good";
    const open = Object.values(stats.open).reduce((x, y) => x + y, 0);
    $("#c-open").textContent = open;
    $("#c-risk").innerHTML = money(fleet.at_risk);
    $("#c-unpaid").innerHTML = money(fleet.unpaid) + (fleet.statements_late.length
      ? ` <span class="sub">${fleet.statements_late.length} merchant statement(s) late</span>` : "");
    $("#c-worst").innerHTML = worstMerchant(fleet.merchants);
    const lag = stats.settlement_lag.length ? stats.settlement_lag[stats.settlement_lag.length - 1][1] : null;
    $("#c-lag").textContent = lag === null ? "–" : `${(lag / 3600).toFixed(1)} h`;
    const gap = (stats.open.SETTLEMENT_FEED_GAP || 0) > 0;
    $("#feed").textContent = gap ? "settlement feed: GAP" : "settlement feed: ok";
    $("#feed").className = gap ? "badge bad" : "badge good";
    const m = stats.model;
    $("#model").textContent = m.enabled ? `model ${m.version}` : `model off${m.error ? " (error)" : ""}`;
    $("#model").title = m.error || (m.enabled ? `${m.kind}, threshold ${m.threshold}` : "no POSGUARD_MODEL configured");
    $("#model").className = m.enabled ? "badge good" : "badge";
    $("#type-counts").innerHTML = TYPES.filter((t) => stats.total[t]).map((t) =>
      `<span class="chip" data-type="${t}">${t}<b>${stats.open[t] || 0}</b> open / ${stats.total[t]}</span>`).join("");
    const crit = await api("/api/alerts?status=OPEN&severity=CRITICAL&limit=1");
    const high = await api("/api/alerts?status=OPEN&severity=HIGH&limit=1");
    $("#c-crit").textContent = `${crit.total} / ${high.total}`;
    if (state.tab === "alerts") { await loadAlerts(); await loadDetail(false); }
    if (state.tab === "merchants") renderMerchants();
    if (state.tab === "cases") await loadCases();
    if (state.tab === "config") await loadConfig();
    if (state.tab === "charts") {
      const series = TYPES.filter((t) => stats.opened_per_hour[t]).map((t) => ({ name: t, points: stats.opened_per_hour[t] }));
      bars($("#chart-alerts"), series, series.map((s) => colour(s.name)), true);
      line($("#chart-lag"), stats.settlement_lag.map(([t, v]) => [t, v / 3600]), "h");
      bars($("#chart-dead"), [{ name: "dead letters", points: stats.dead_letters_per_minute }], ["#b3121f"], false);
    }
    $("#app").hidden = false;
    $("#login").hidden = true;
  } catch (err) {
    if (String(err).includes("unauthorised")) return;
    $("#conn").textContent = "worker unreachable";
    $("#conn").className = "badge bad";
  }
}
$("#c-worst").addEventListener("click", (e) => {
  const link = e.target.closest("a[data-merchant]");
  if (link) { e.preventDefault(); setFilter("merchant", link.dataset.merchant); showTab("alerts"); }
});
$("#type-counts").addEventListener("click", (e) => {
  const chip = e.target.closest(".chip");
  if (chip) setFilter("type", chip.dataset.type);
});
refresh();
setInterval(() => { if ($("#login").hidden) refresh(); }, POLL_MS);
