// promptq's dashboard: one page, no build step. It signs in with the API's
// own credentials, follows GET /v1/dashboard/events (Server-Sent Events read
// through fetch, so the token travels in a header, never in a URL) and reads
// the rest from the API. Everything shown is text (textContent): nothing a
// job or a user wrote can become markup.
"use strict";

const state = { token: null, me: null, snap: null, feed: null, jobStream: null, chart: null, filters: {} };

// ---- small helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}
const $ = (sel) => document.querySelector(sel);
const fmtTime = (t) => (t ? new Date(t).toLocaleTimeString() : "–");
const money = (m) => (m && typeof m === "object" ? "$" + m.usd : m === undefined || m === null ? "–" : String(m));
const status = (s) => h("span", { class: "status " + s }, s);
const short = (id) => (id ? id.slice(0, 8) : "");
const age = (since, now) => {
  const s = Math.max(0, Math.round((new Date(now) - new Date(since)) / 1000));
  return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
};
const pretty = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.token }, opts.body ? { "Content-Type": "application/json" } : {});
  const r = await fetch(path, { method: opts.method || "GET", headers, body: opts.body ? JSON.stringify(opts.body) : undefined });
  if (r.status === 401) { signOut("Your session ended: sign in again."); throw new Error("unauthorized"); }
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) {
    const e = body && body.error;
    throw new Error((e && (e.message || e)) || r.status + " " + r.statusText);
  }
  return body;
}

// Server-Sent Events over fetch: onEvent(name, data) per event; resolves when the stream ends.
async function sse(path, onEvent, signal) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token, Accept: "text/event-stream" }, signal });
  if (!r.ok) throw new Error("stream " + path + ": " + r.status);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) { try { onEvent(name, JSON.parse(data)); } catch (e) { console.warn("bad event", e); } }
    }
  }
}

// ---- signing in ----

async function signIn(token) {
  state.token = token;
  sessionStorage.setItem("pq_token", token);
  $("#login").hidden = true;
  $("#nav").hidden = false;
  $("#logout").hidden = false;
  startFeed();
  route();
}

function signOut(message) {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem("pq_token");
  if (state.feed) state.feed.abort();
  if (state.jobStream) state.jobStream.abort();
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
  $("#view").replaceChildren();
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await fetch("/v1/auth/token", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: f.get("user"), password: f.get("password") }) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { $("#login-error").textContent = (body.error && body.error.message) || "sign-in failed"; return; }
  signIn(body.access_token);
});
$("#key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = new FormData(ev.target).get("key").trim();
  if (key) signIn(key);
});
$("#logout").addEventListener("click", () => signOut());

// ---- the live feed ----

function feedUrl() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  return "/v1/dashboard/events" + (q.toString() ? "?" + q : "");
}

function startFeed() {
  if (state.feed) state.feed.abort();
  const ctl = new AbortController();
  state.feed = ctl;
  let delay = 500;
  const run = async () => {
    try {
      await sse(feedUrl(), (name, data) => {
        if (name !== "snapshot") return;
        $("#live").classList.add("on");
        delay = 500; // connected: the next reconnect starts quick again
        if (state.snap) { // the slow parts come every few seconds: keep the last ones meanwhile
          if (!("throughput" in data)) data.throughput = state.snap.throughput;
          if (!("jobs_total" in data)) data.jobs_total = state.snap.jobs_total;
        }
        state.snap = data;
        if (!state.me) {
          state.me = data.me;
          $("#who").textContent = data.me.name + (data.me.admin ? " (admin)" : " (read-only)");
          document.querySelectorAll("[data-admin]").forEach((el) => (el.hidden = !data.me.admin));
        }
        onSnapshot();
      }, ctl.signal);
    } catch (e) {
      if (ctl.signal.aborted) return;
      $("#live").classList.remove("on");
      if (String(e.message).includes(": 401")) return signOut("Sign in again.");
      if (String(e.message).includes(": 400") || String(e.message).includes(": 403")) {
        $("#live").title = e.message; // a bad filter: say so, do not retry it
        return;
      }
    }
    if (!ctl.signal.aborted) setTimeout(run, delay);
    delay = Math.min(delay * 2, 10000);
  };
  run();
}

function onSnapshot() {
  const view = location.hash.split("/")[1] || "";
  if (view === "" ) renderOverview();
  if (view === "jobs") renderJobRows();
}

// ---- views ----

function route() {
  if (!state.token) return;
  if (state.jobStream) { state.jobStream.abort(); state.jobStream = null; }
  const [, view, arg] = location.hash.split("/");
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === "#/" + (view || "")));
  const v = $("#view");
  v.replaceChildren();
  state.chart = null;
  if (!view) return overviewShell();
  if (view === "jobs") return jobsShell();
  if (view === "job") return jobPage(decodeURIComponent(arg || ""));
  if (view === "councils") return councilsPage(arg && decodeURIComponent(arg));
  if (view === "batches") return batchesPage();
  if (view === "spend") return spendPage();
  if (view === "keys") return keysPage();
  v.append(h("p", {}, "No such page."));
}
window.addEventListener("hashchange", route);

function overviewShell() {
  $("#view").append(
    h("h1", {}, "Overview"),
    h("div", { class: "cards", id: "totals" }),
    h("h2", {}, "Queues"),
    h("table", { id: "queues" }),
    h("h2", {}, "Throughput, last hour (jobs and tokens per second, 10 s buckets)"),
    h("div", { class: "chart", id: "chart" }),
    h("h2", {}, "Workers"),
    h("table", { id: "workers" }),
  );
  renderOverview();
}

function renderOverview() {
  const s = state.snap;
  if (!s || !$("#totals")) return;
  const t = s.totals; // admins only: the coordinator's since it started
  const cards = [["queued", s.queues.reduce((a, q) => a + q.queued, 0)], ["running", s.queues.reduce((a, q) => a + q.leased, 0)]];
  if (t) cards.push(["submitted", t.submitted], ["completed", t.completed], ["failed", t.failed], ["dead", t.dead], ["cancelled", t.cancelled]);
  cards.push(["workers", s.workers.length]);
  $("#totals").replaceChildren(...cards.map(([k, v]) => h("div", { class: "card" }, h("b", {}, v), h("span", {}, k))));
  $("#queues").replaceChildren(h("tr", {}, ...["model", "queued", "running", "next up", "waiting", "served"].map((c) => h("th", {}, c))),
    ...s.queues.map((q) => h("tr", {}, h("td", {}, q.model), h("td", { class: "num" }, q.queued), h("td", { class: "num" }, q.leased),
      h("td", {}, q.next ? h("a", { href: "#/job/" + q.next.id }, short(q.next.id)) : "–"),
      h("td", { class: "num" }, q.next ? age(q.next.queued_at, s.time) : "–"),
      h("td", {}, q.served ? "yes" : "no worker serves it"))));
  if (!s.queues.length) $("#queues").append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing queued or running.")));
  $("#workers").replaceChildren(h("tr", {}, h("th", {}, "worker"), h("th", {}, "models"), h("th", {}, "busy / slots"), h("th", {}, "last heartbeat"), h("th", {}, "jobs held")),
    ...s.workers.map((w) => h("tr", {}, h("td", {}, w.name || short(w.id)), h("td", {}, Array.isArray(w.models) ? w.models.join(", ") : ""),
      h("td", { class: "num" }, w.busy + " / " + (w.slots ?? "?")), h("td", {}, fmtTime(w.last_heartbeat)),
      h("td", {}, w.jobs.map((j) => h("a", { href: "#/job/" + j.id }, short(j.id) + " "))))));
  if (!s.workers.length) $("#workers").append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No worker online.")));
  renderChart();
}

function renderChart() {
  const tp = state.snap && state.snap.throughput;
  const el = $("#chart");
  if (!tp || !el || typeof uPlot === "undefined") return;
  const n = tp.series.length ? tp.series[0].jobs.length : 360;
  const xs = Array.from({ length: n }, (_, i) => (tp.first_bucket_ms + i * tp.bucket_ms) / 1000);
  const per = tp.bucket_ms / 1000;
  const sum = (key) => xs.map((_, i) => tp.series.reduce((a, s) => a + s[key][i], 0) / per);
  const data = [xs, sum("jobs"), sum("tokens"), ...tp.series.map((s) => s.jobs.map((v) => v / per))];
  const key = tp.series.map((s) => s.model).join("|");
  if (state.chart && state.chart.key === key) { state.chart.plot.setData(data); return; }
  el.replaceChildren();
  const colors = ["#3b5bdb", "#f08c00", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#5c940d", "#e8590c"];
  const plot = new uPlot({ width: Math.max(el.clientWidth - 10, 300), height: 220,
    series: [{}, { label: "jobs/s (all)", stroke: "#1d2433", width: 2 }, { label: "tokens/s (all)", stroke: "#adb5bd", scale: "tok" },
      ...tp.series.map((s, i) => ({ label: s.model + " jobs/s", stroke: colors[i % colors.length] }))],
    axes: [{}, { label: "jobs/s" }, { side: 1, scale: "tok", label: "tokens/s", grid: { show: false } }] }, data, el);
  state.chart = { key, plot };
}

function jobsShell() {
  const f = state.filters;
  const form = h("form", { class: "filters" },
    h("label", {}, "state", h("select", { name: "state" }, ["", "queued", "leased", "completed", "failed", "dead", "cancelled", "expired"]
      .map((s) => h("option", { value: s, selected: f.state === s }, s || "any")))),
    h("label", {}, "model", h("input", { name: "model", value: f.model || "" })),
    state.me && state.me.admin ? h("label", {}, "user", h("input", { name: "user", value: f.user || "" })) : null,
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    state.filters = { state: d.get("state"), model: d.get("model"), user: d.get("user") || "" };
    state.snap = null;
    startFeed();
  });
  $("#view").append(h("h1", {}, "Jobs"), form, h("p", { class: "muted", id: "jobs-count" }), h("table", { id: "jobs" }));
  renderJobRows();
}

function renderJobRows() {
  const s = state.snap;
  if (!s || !$("#jobs")) return;
  $("#jobs-count").textContent = (s.jobs_total ?? "?") + " job(s); the latest " + s.jobs.length + " shown, live.";
  $("#jobs").replaceChildren(h("tr", {}, ...["job", "status", "model", "kind", "created", "attempts", "tokens", "cost"].map((c) => h("th", {}, c))),
    ...s.jobs.map((j) => h("tr", { "data-job": j.id }, h("td", {}, h("a", { href: "#/job/" + j.id }, short(j.id))), h("td", {}, status(j.status)),
      h("td", {}, j.model), h("td", {}, j.kind), h("td", {}, fmtTime(j.created_at)), h("td", { class: "num" }, j.attempts + "/" + j.max_attempts),
      h("td", { class: "num" }, j.usage ? j.usage.total_tokens : "–"), h("td", { class: "num" }, money(j.cost)))));
}

// ---- one job: input, live output, events, receipt, cost, actions ----

async function jobPage(id) {
  const v = $("#view");
  let job;
  try { job = await api("/v1/jobs/" + encodeURIComponent(id)); } catch (e) { v.append(h("p", { class: "error" }, e.message)); return; }
  const out = h("pre", { id: "job-output" }, job.output === null ? "" : pretty(job.output));
  const events = h("table", { id: "job-events" }, h("tr", {}, h("th", {}, "#"), h("th", {}, "event"), h("th", {}, "data")));
  const statusEl = h("span", { id: "job-status" }, status(job.status));
  const actions = h("div", { id: "job-actions" });
  const receipt = h("div", { id: "job-receipt" }, h("span", { class: "muted" }, job.status === "completed" ? "checking…" : "A receipt comes with a completed job."));
  v.append(h("h1", {}, "Job ", h("code", {}, job.id), " ", statusEl),
    h("div", { class: "cards" }, ...[["model", job.model], ["kind", job.kind], ["attempts", job.attempts + "/" + job.max_attempts],
      ["priority", job.priority], ["cost", money(job.cost)], ["held", money(job.held)], ["tokens", job.usage ? job.usage.total_tokens : "–"]]
      .map(([k, val]) => h("div", { class: "card" }, h("b", {}, val), h("span", {}, k)))),
    h("p", { class: "error", id: "job-error" }, job.error ? job.error.code + ": " + (job.error.message || "") : ""),
    actions,
    h("div", { class: "grid2" }, h("div", {}, h("h2", {}, "Input"), h("pre", {}, pretty(job.input))),
      h("div", {}, h("h2", {}, "Output"), out)),
    h("h2", {}, "Receipt"), receipt,
    h("h2", {}, "Events"), events);
  renderActions(actions, job);
  if (job.status === "completed") checkReceipt(job.id, receipt);
  // the live stream: tokens as they arrive, then the end
  const ctl = new AbortController();
  state.jobStream = ctl;
  let streamed = false;
  sse("/v1/jobs/" + encodeURIComponent(id) + "/events", (name, data) => {
    events.append(h("tr", {}, h("td", {}, events.rows.length), h("td", {}, name), h("td", {}, h("code", {}, JSON.stringify(data).slice(0, 200)))));
    if (name === "chunk" && typeof data.content === "string") {
      if (!streamed) { out.textContent = ""; streamed = true; }
      out.textContent += data.content;
    } else if (name === "progress" && data.status) {
      statusEl.replaceChildren(status(data.status === "running" ? "leased" : data.status));
    } else if (name === "complete" || name === "error") {
      const j = name === "complete" ? data : data.job;
      statusEl.replaceChildren(status(j.status));
      if (j.output !== null && j.output !== undefined) out.textContent = pretty(j.output);
      renderActions(actions, j);
      if (j.status === "completed") checkReceipt(j.id, receipt);
    }
  }, ctl.signal).catch((e) => { if (!ctl.signal.aborted) events.append(h("tr", {}, h("td", { colspan: 3, class: "error" }, e.message))); });
}

function renderActions(el, job) {
  if (el.dataset.status === job.status) return; // the same buttons: a click on them must not land on a replaced one
  el.dataset.status = job.status;
  el.replaceChildren();
  if (!state.me || !state.me.admin) { el.append(h("p", { class: "muted" }, "Read-only: actions are for admins.")); return; }
  const terminal = ["completed", "failed", "dead", "cancelled", "expired"].includes(job.status);
  const act = (label, fn, cls) => h("button", { class: cls, on: { click: async (ev) => {
    ev.target.disabled = true;
    try { await fn(); } catch (e) { el.append(h("span", { class: "error" }, " " + e.message)); ev.target.disabled = false; }
  } } }, label);
  if (!terminal) el.append(act("Cancel", async () => {
    const j = await api("/v1/jobs/" + job.id + "/cancel", { method: "POST" });
    el.append(h("span", { class: "ok", id: "action-result" }, " cancel requested: " + j.status));
  }, "danger"));
  if (terminal && job.status !== "completed" && !job.parent_id) el.append(act("Retry", async () => {
    const j = await api("/v1/jobs/" + job.id + "/retry", { method: "POST" });
    location.hash = "#/job/" + j.id;
  }));
}

// The receipt's Ed25519 signature, checked here in the browser (WebCrypto)
// over its canonical form (JSON, keys sorted, no spaces), with the key the
// coordinator publishes.
function canonical(v) {
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (v && typeof v === "object") return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  return JSON.stringify(v);
}
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function checkReceipt(id, el) {
  try {
    const [r, key] = await Promise.all([api("/v1/jobs/" + id + "/receipt"), api("/v1/receipts/key")]);
    const pk = await crypto.subtle.importKey("raw", b64(r.signature.public_key), { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, pk, b64(r.signature.value), new TextEncoder().encode(canonical(r.receipt)));
    const ours = r.signature.public_key === key.public_key;
    el.replaceChildren(h("p", { class: ok && ours ? "ok" : "error", id: "receipt-verdict" },
      ok ? (ours ? "Signature valid: signed by this coordinator's key " + key.key_id + "." : "Signature valid, but not by this coordinator's key.")
        : "Signature INVALID."), h("pre", {}, JSON.stringify(r.receipt, null, 2)));
  } catch (e) {
    el.replaceChildren(h("p", { class: "error" }, "Receipt: " + e.message));
  }
}

// ---- councils, batches, spend, keys ----

async function councilsPage(id) {
  const v = $("#view");
  v.append(h("h1", {}, "Councils"));
  try {
    if (id) {
      const [r, t] = await Promise.all([api("/api/v1/requests/" + encodeURIComponent(id)), api("/api/v1/requests/" + encodeURIComponent(id) + "/transcript").catch(() => null)]);
      v.append(h("div", { class: "cards" }, ...[["status", r.status], ["agreement", r.agreementLevel ?? "–"], ["confidence", r.confidence ?? "–"], ["cost", r.cost ?? "–"]]
        .map(([k, val]) => h("div", { class: "card" }, h("b", {}, val), h("span", {}, k)))),
        h("h2", {}, "Decision"), h("pre", {}, r.consensusDecision ? pretty(r.consensusDecision) : "–"),
        ...rounds(t));
      return;
    }
    const list = await api("/api/v1/requests?limit=50");
    v.append(h("table", {}, h("tr", {}, h("th", {}, "council"), h("th", {}, "status"), h("th", {}, "created"), h("th", {}, "latency")),
      ...list.data.map((c) => h("tr", {}, h("td", {}, h("a", { href: "#/councils/" + c.requestId }, short(c.requestId))), h("td", {}, c.status),
        h("td", {}, fmtTime(c.createdAt)), h("td", { class: "num" }, c.latency ?? "–")))));
    if (!list.data.length) v.append(h("p", { class: "muted" }, "No councils yet."));
  } catch (e) { v.append(h("p", { class: "error" }, e.message)); }
}

// A council's transcript, round by round: each member's answer and the round's agreement.
function rounds(t) {
  if (!t || !Array.isArray(t.rounds)) return [h("p", { class: "muted" }, "No transcript yet.")];
  const out = [];
  for (const r of t.rounds) {
    out.push(h("h2", { class: "round" }, "Round " + r.round + ": agreement " + (typeof r.agreement === "number" ? r.agreement.toFixed(2) : "–") +
      (r.similarity ? " (" + r.similarity + ")" : "")));
    out.push(h("table", {}, h("tr", {}, ...["member", "model", "status", "latency", "answer"].map((c) => h("th", {}, c))),
      ...(r.answers || []).map((a) => h("tr", {}, h("td", {}, a.member), h("td", {}, a.model), h("td", {}, status(a.status || "")),
        h("td", { class: "num" }, a.latencyMs !== undefined ? a.latencyMs + " ms" : "–"),
        h("td", {}, a.text ?? (a.error ? JSON.stringify(a.error) : "–"))))));
  }
  if (t.synthesis) out.push(h("p", { class: "muted" }, "Synthesised by " + (t.synthesis.model || "–") +
    (t.synthesis.tried && t.synthesis.tried.length ? " after " + t.synthesis.tried.join(", ") : "") + "."));
  return out;
}

async function batchesPage() {
  const v = $("#view");
  v.append(h("h1", {}, "Batches"));
  try {
    const list = await api("/v1/batches?limit=50");
    v.append(h("table", {}, h("tr", {}, ...["batch", "status", "progress", "created"].map((c) => h("th", {}, c))),
      ...list.data.map((b) => {
        const c = b.request_counts || { total: 0, completed: 0, failed: 0 };
        const pct = c.total ? Math.round(((c.completed + c.failed) * 100) / c.total) : 0;
        return h("tr", {}, h("td", {}, b.id), h("td", {}, b.status),
          h("td", {}, h("progress", { max: 100, value: pct }), " " + (c.completed + c.failed) + "/" + c.total + (c.failed ? " (" + c.failed + " failed)" : "")),
          h("td", {}, b.created_at ? new Date(b.created_at * 1000).toLocaleString() : "–"));
      })));
    if (!list.data.length) v.append(h("p", { class: "muted" }, "No batches yet."));
  } catch (e) { v.append(h("p", { class: "error" }, e.message)); }
}

function table(rows) {
  if (!rows || !rows.length) return h("p", { class: "muted" }, "Nothing yet.");
  const cols = Object.keys(rows[0]);
  return h("table", {}, h("tr", {}, ...cols.map((c) => h("th", {}, c))),
    ...rows.map((r) => h("tr", {}, ...cols.map((c) => h("td", {}, typeof r[c] === "object" && r[c] !== null ? money(r[c]) : r[c])))));
}

async function spendPage() {
  const v = $("#view");
  v.append(h("h1", {}, "Spend"));
  try {
    const credits = await api("/v1/credits");
    v.append(h("div", { class: "cards" }, ...Object.entries(credits).filter(([, val]) => val && typeof val === "object" && "usd" in val)
      .map(([k, val]) => h("div", { class: "card" }, h("b", {}, money(val)), h("span", {}, k)))));
    if (state.me && state.me.admin) {
      const [byUser, byModel] = await Promise.all([api("/v1/reports?by=user"), api("/v1/reports?by=model")]);
      const span = " (" + new Date(byUser.from).toLocaleDateString() + " to " + new Date(byUser.to).toLocaleDateString() + ")";
      v.append(h("h2", {}, "By user" + span), table(byUser.rows), h("h2", {}, "By model" + span), table(byModel.rows));
    }
  } catch (e) { v.append(h("p", { class: "error" }, e.message)); }
}

async function keysPage() {
  const v = $("#view");
  v.append(h("h1", {}, "API keys"));
  try {
    const keys = await api("/v1/keys");
    v.append(h("table", {}, h("tr", {}, ...["key", "name", "scope", "user", "created", ""].map((c) => h("th", {}, c))),
      ...keys.data.map((k) => h("tr", {}, h("td", {}, h("code", {}, k.prefix || short(k.id))), h("td", {}, k.name || ""), h("td", {}, k.scope),
        h("td", {}, short(k.user_id)), h("td", {}, fmtTime(k.created_at)),
        h("td", {}, k.revoked_at ? "revoked" : state.me && state.me.admin ? h("button", { class: "danger", on: { click: async (ev) => {
          ev.target.disabled = true;
          try { await api("/v1/keys/" + k.id, { method: "DELETE" }); ev.target.replaceWith("revoked"); } catch (e) { ev.target.replaceWith(h("span", { class: "error" }, e.message)); }
        } } }, "Revoke") : "")))));
  } catch (e) { v.append(h("p", { class: "error" }, e.message)); }
}

// ---- start ----
const saved = sessionStorage.getItem("pq_token");
if (saved) signIn(saved); else signOut();
