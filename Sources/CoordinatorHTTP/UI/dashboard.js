// FleetAdapt dashboard: one page, views chosen by the URL's fragment (#/fleet, #/devices/{id}, #/campaigns/{id},
// #/models/{id}, #/audit). Everything it shows comes from the coordinator's API with the signed-in key.
// Every value from the API reaches the page as a text node or an attribute set through the DOM (never innerHTML),
// so a device name or label holding markup is shown as the characters it is.
"use strict";

const KEY = "fleetadapt.api-key";
const POLL_MS = 1000;
let pollTimer = null;
let viewToken = 0;

// ---- elements ----------------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function link(hash, text) { return el("a", { href: hash }, text); }
function fmt(v, digits = 3) { return typeof v === "number" && isFinite(v) ? v.toFixed(digits) : "—"; }
function time(t) { return t ? new Date(t).toLocaleString() : "—"; }
function table(headers, rows, id) {
  return el("table", { id },
    el("thead", {}, el("tr", {}, headers.map(h => el("th", { class: h.num ? "num" : undefined }, h.text || h)))),
    el("tbody", {}, rows));
}
function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}
function labels(obj) {
  return Object.keys(obj || {}).sort().map(k => el("span", { class: "label" }, `${k}=${obj[k]}`));
}
function card(figure, caption) { return el("div", { class: "card" }, el("div", { class: "figure" }, figure), el("div", { class: "caption" }, caption)); }
function beforeAfter(before, after, higherIsBetter, digits = 3) {
  if (typeof before !== "number" && typeof after !== "number") return "—";
  const cls = typeof before === "number" && typeof after === "number"
    ? ((after > before) === higherIsBetter ? "gain-up" : "gain-down") : undefined;
  return el("span", { class: cls }, `${fmt(before, digits)} → ${fmt(after, digits)}`);
}

// ---- the API -----------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && (problem.detail || problem.title) ? `${problem.detail || problem.title}` : `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
  }
}

async function api(path) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch(path, {
    headers: { "Authorization": `Bearer ${key}`, "Accept": "application/json" },
    cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    if (response.status === 401) signOut("Your key was refused; sign in again.");
    throw new ApiError(response.status, body);
  }
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// ---- sign in -----------------------------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(KEY);
  stopPolling();
  document.getElementById("nav").hidden = true;
  document.getElementById("view").replaceChildren();
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("api-key");
  const key = input.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  try {
    await api("/v1/fleet/summary");
  } catch (e) {
    if (e.status !== 401) sessionStorage.removeItem(KEY);
    document.getElementById("sign-in-error").textContent = `Sign-in failed: ${e.message}`;
    return;
  }
  input.value = "";
  document.getElementById("sign-in").hidden = true;
  document.getElementById("nav").hidden = false;
  if (!location.hash || location.hash === "#") location.hash = "#/fleet"; else route();
}

// ---- routing -----------------------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/fleet";
  const [path, q] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(q || "") };
}

function stopPolling() { if (pollTimer !== null) { clearTimeout(pollTimer); pollTimer = null; } }

function showError(e) {
  const box = document.getElementById("error");
  if (!e) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = e.status === 403 ? `This needs a key with a higher role: ${e.message}` : `${e.message}`;
}

async function route() {
  stopPolling();
  showError(null);
  if (!sessionStorage.getItem(KEY)) { signOut(); return; }
  const token = ++viewToken;
  const { parts, params } = parseHash();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.id === `nav-${parts[0]}` || (parts[0] === "devices" && a.id === "nav-fleet"));
  const view = document.getElementById("view");
  try {
    let content;
    switch (parts[0]) {
      case "devices": content = await deviceView(parts[1]); break;
      case "campaigns": content = parts[1] ? await campaignView(parts[1], token) : await campaignsView(params); break;
      case "models": content = await modelsView(parts[1]); break;
      case "audit": content = await auditView(params); break;
      default: content = await fleetView(params);
    }
    if (token === viewToken) view.replaceChildren(content);
  } catch (e) {
    if (token === viewToken) { view.replaceChildren(); showError(e); }
  }
}

function go(hash) { if (location.hash === hash) route(); else location.hash = hash; }

// Cursor pages: the cursors of the pages before this one ride in the fragment as `prev`, so Back works.
function pager(base, params, next) {
  const prev = (params.get("prev") || "").split(",").filter(Boolean);
  const here = params.get("after") || "";
  const to = (after, prevList) => {
    const p = new URLSearchParams(params);
    if (after) p.set("after", after); else p.delete("after");
    if (prevList.length) p.set("prev", prevList.join(",")); else p.delete("prev");
    return `${base}?${p.toString()}`;
  };
  const back = el("button", { type: "button", id: "page-prev", disabled: !here });
  back.textContent = "← Previous page";
  back.addEventListener("click", () => { const list = prev.slice(); const a = list.pop(); go(to(a === "-" ? "" : a, list)); });
  const fwd = el("button", { type: "button", id: "page-next", disabled: !next });
  fwd.textContent = "Next page →";
  fwd.addEventListener("click", () => go(to(next, prev.concat([here || "-"]))));
  return el("div", { class: "pager" }, back, fwd);
}

// ---- fleet -------------------------------------------------------------------------------------------------

async function fleetView(params) {
  const limit = params.get("limit") || "50";
  const [summary, page] = await Promise.all([
    api("/v1/fleet/summary"),
    api(`/v1/devices${query({ limit, after: params.get("after"), labels: params.get("labels"), status: params.get("status") })}`),
  ]);
  const byStatus = summary.devices_by_status || {};
  const jobs = summary.jobs_by_state || {};
  const cards = el("div", { class: "cards" },
    card(String(byStatus.active || 0), "active devices"),
    card(String(byStatus.decommissioned || 0), "decommissioned"),
    card(String((summary.campaigns_by_status || {}).running || 0), "running campaigns"),
    card(String((jobs.queued || 0) + (jobs.leased || 0) + (jobs.running || 0)), "jobs queued or running"),
    card(fmt(summary.mean_accuracy_gain), "mean accuracy gain"),
    card(String(summary.adapted_devices || 0), "adapted devices"));

  const labelInput = el("input", { id: "filter-labels", placeholder: "site=berlin,tier=cam", value: params.get("labels") || "" });
  const status = el("select", { id: "filter-status" },
    ["", "active", "decommissioned"].map(s => el("option", { value: s, selected: (params.get("status") || "") === s }, s || "any")));
  const size = el("select", { id: "filter-limit" },
    ["10", "25", "50", "100", "500"].concat(["10", "25", "50", "100", "500"].includes(limit) ? [] : [limit])
      .map(s => el("option", { value: s, selected: s === limit }, s)));
  const apply = el("button", { type: "submit", id: "filter-apply" }, "Apply");
  const form = el("form", { class: "filters", id: "filters" },
    el("label", {}, "Labels", labelInput), el("label", {}, "Status", status), el("label", {}, "Per page", size), apply);
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    go(`#/fleet${query({ labels: labelInput.value.trim(), status: status.value, limit: size.value })}`);
  });

  const rows = page.items.map(d => el("tr", { "data-device-id": d.id },
    el("td", {}, link(`#/devices/${encodeURIComponent(d.id)}`, d.name)),
    el("td", {}, d.hardware ? d.hardware.class : "—"),
    el("td", { class: `status-${d.status}` }, d.status),
    el("td", {}, labels(d.labels)),
    el("td", {}, time(d.last_seen_at)),
    el("td", { class: "mono muted" }, d.id)));
  return el("div", {},
    el("h1", {}, "Fleet"), cards, form,
    table(["Name", "Hardware", "Status", "Labels", "Last seen", "ID"], rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No device matches."))], "devices"),
    pager("#/fleet", params, page.next));
}

// ---- one device --------------------------------------------------------------------------------------------

async function deviceView(id) {
  const base = `/v1/devices/${encodeURIComponent(id)}`;
  const device = await api(base);
  let config = null, configNote = null;
  try { config = await api(`${base}/config`); } catch (e) { if (e.status === 404) configNote = e.message; else throw e; }
  const metrics = await api(`${base}/metrics${query({ kind: "job.adapt", limit: 1000 })}`);

  const hw = device.hardware || {}, c = device.constraints || {};
  const ctx = device.context ? (device.context.context || device.context) : null;
  const out = el("div", {},
    el("h1", {}, device.name),
    facts([
      ["ID", el("span", { class: "mono" }, device.id)],
      ["Status", el("span", { class: `status-${device.status}` }, device.status)],
      ["Hardware", `${hw.class || "—"}, ${fmt(hw.gflops, 1)} GFLOP/s, ${hw.memory_mb ?? "—"} MB`],
      ["Budgets", `latency ${fmt(c.latency_budget_ms, 2)} ms, memory ${fmt(c.memory_budget_mb, 0)} MB` +
        (typeof c.energy_budget_mj === "number" ? `, energy ${fmt(c.energy_budget_mj, 1)} mJ` : "")],
      ["Labels", labels(device.labels).length ? labels(device.labels) : "—"],
      ["Last seen", time(device.last_seen_at)],
      ["Context", ctx ? Object.keys(ctx).filter(k => k !== "reported_at").sort().map(k => `${k} ${ctx[k]}`).join(", ") || "—" : "none reported"],
    ]));

  out.appendChild(el("h2", {}, "Config"));
  if (config) {
    const p = config.predicted || {};
    out.appendChild(facts([
      ["Version", `${config.version} (${config.trigger || "—"}, ${time(config.created_at)})`],
      ["Model", link(`#/models/${encodeURIComponent(config.model_id)}`, config.model_id)],
      ["Combination", el("span", { class: "mono", id: "combination" }, (config.variants || []).map(v => v.variant).join("/") || "—")],
      ["Split", config.partition
        ? `after block ${config.partition.split_after_block}: device ${fmt(config.partition.device_latency_ms)} ms, transfer ${fmt(config.partition.transfer_ms)} ms, edge ${fmt(config.partition.edge_latency_ms)} ms`
        : "none (the whole network on the device)"],
      ["Adapters", config.adapters
        ? `${config.adapters.source} adapters of domain ${config.adapters.domain_id}` + (config.adapters.version ? ` (version ${config.adapters.version})` : "")
        : "none"],
      ["Predicted", `accuracy ${fmt(p.accuracy)}, latency ${fmt(p.latency_ms)} ms, memory ${fmt(p.memory_mb, 1)} MB, energy ${fmt(p.energy_mj)} mJ`],
      ["Latencies from", config.latency_source || "—"],
      ["Planner", `${config.feasible === false ? "infeasible: " : ""}${config.reason || "—"}${config.binding_constraint ? ` (binding: ${config.binding_constraint})` : ""}`],
    ]));
  } else {
    out.appendChild(el("p", { class: "muted" }, configNote || "No config."));
  }

  out.appendChild(el("h2", {}, "Adaptation results"));
  const items = metrics.items.slice().reverse();
  const rows = items.map(m => {
    const v = m.values || {};
    return el("tr", {},
      el("td", {}, time(m.recorded_at)),
      el("td", { class: v.succeeded === 1 ? "state-succeeded" : "state-failed" }, v.succeeded === 1 ? "succeeded" : "failed"),
      el("td", { class: "num" }, beforeAfter(v.accuracy_before, v.accuracy_after, true)),
      el("td", { class: "num" }, beforeAfter(v.entropy_before, v.entropy_after, false)),
      el("td", { class: "num" }, fmt(v.latency_ms)),
      el("td", { class: "num" }, fmt(v.energy_mj, 0)),
      el("td", { class: "num" }, fmt(v.train_seconds, 1)),
      el("td", { class: "num" }, v.steps ?? "—"));
  });
  out.appendChild(table(["Recorded", "Outcome", { text: "Accuracy before → after", num: true }, { text: "Entropy before → after", num: true },
    { text: "Latency ms", num: true }, { text: "Energy mJ", num: true }, { text: "Train s", num: true }, { text: "Steps", num: true }],
    rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No adaptation job has reported yet."))], "results"));
  return out;
}

// ---- campaigns ---------------------------------------------------------------------------------------------

async function campaignsView(params) {
  const page = await api(`/v1/campaigns${query({ limit: params.get("limit") || 50, after: params.get("after"), status: params.get("status") })}`);
  const rows = page.items.map(c => el("tr", { "data-campaign-id": c.id },
    el("td", {}, link(`#/campaigns/${encodeURIComponent(c.id)}`, c.id)),
    el("td", { class: `status-${c.status}` }, c.status),
    el("td", { class: "num" }, `${Math.round((c.progress || 0) * 100)} %`),
    el("td", { class: "num" }, c.target_count),
    el("td", {}, `${c.released_wave + 1} of ${c.wave_count}`),
    el("td", {}, time(c.created_at))));
  return el("div", {}, el("h1", {}, "Campaigns"),
    table(["Campaign", "Status", { text: "Progress", num: true }, { text: "Devices", num: true }, "Waves released", "Created"],
      rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No campaign yet."))], "campaigns"),
    pager("#/campaigns", params, page.next));
}

function distribution(d) {
  if (!d || !d.n) return "—";
  return `mean ${fmt(d.mean)} (p10 ${fmt(d.p10)}, p50 ${fmt(d.p50)}, p90 ${fmt(d.p90)}; ${d.n} devices)`;
}

async function campaignView(id, token) {
  const base = `/v1/campaigns/${encodeURIComponent(id)}`;
  const [c, jobs] = await Promise.all([api(base), api(`${base}/jobs${query({ limit: 500 })}`)]);
  const done = Object.entries(c.counts || {}).filter(([s]) => ["succeeded", "failed", "timed_out", "canceled", "rejected"].includes(s))
    .reduce((n, [, k]) => n + k, 0);
  const waves = (c.waves || []).map(w => el("tr", { "data-wave": w.wave },
    el("td", {}, w.wave === 0 ? "0 (canary)" : String(w.wave)),
    el("td", {}, w.released ? "released" : "waiting"),
    el("td", { class: "num" }, w.size),
    el("td", {}, Object.keys(w.counts || {}).sort().map(s => el("span", { class: `label state-${s}` }, `${s} ${w.counts[s]}`)))));
  const jobRows = jobs.items.map(j => {
    const m = j.metrics || {};
    return el("tr", {},
      el("td", {}, link(`#/devices/${encodeURIComponent(j.device_id)}`, j.device_id)),
      el("td", { class: "num" }, j.wave),
      el("td", { class: `state-${j.state}` }, j.state),
      el("td", { class: "num" }, j.attempt),
      el("td", { class: "num" }, beforeAfter(m.accuracy_before, m.accuracy_after, true)),
      el("td", { class: "num" }, beforeAfter(m.entropy_before, m.entropy_after, false)),
      el("td", {}, j.error || (j.gate && j.gate.reasons ? j.gate.reasons.join("; ") : "")));
  });
  const out = el("div", { id: "campaign", "data-status": c.status },
    el("h1", {}, "Campaign ", el("span", { class: "mono" }, c.id)),
    facts([
      ["Status", el("span", { id: "campaign-status", class: `status-${c.status}` }, c.status + (c.status_reason ? ` — ${c.status_reason}` : ""))],
      ["Progress", el("span", {}, el("progress", { id: "campaign-progress-bar", max: 1, value: c.progress || 0 }), " ",
        el("span", { id: "campaign-progress" }, `${done} of ${c.target_count} jobs done (${Math.round((c.progress || 0) * 100)} %)`))],
      ["Waves", `${c.released_wave + 1} of ${c.wave_count} released`],
      ["Accuracy gain", distribution(c.accuracy_gain)],
      ["Entropy reduction", distribution(c.entropy_reduction)],
      ["Updated", el("span", { id: "campaign-updated" }, time(c.updated_at))],
    ]),
    el("h2", {}, "Waves"),
    table(["Wave", "Released", { text: "Devices", num: true }, "Jobs"], waves, "waves"),
    el("h2", {}, "Jobs"),
    table(["Device", { text: "Wave", num: true }, "State", { text: "Attempt", num: true },
      { text: "Accuracy before → after", num: true }, { text: "Entropy before → after", num: true }, "Error or gate"], jobRows, "jobs"),
    el("p", { class: "muted" }, c.finished_at ? `Finished ${time(c.finished_at)}.` : `Refreshing every ${POLL_MS / 1000} s while it runs.`));
  if (!c.finished_at) {
    pollTimer = setTimeout(async () => {
      if (token !== viewToken) return;
      try {
        const next = await campaignView(id, token);
        if (token === viewToken) document.getElementById("view").replaceChildren(next);
      } catch (e) { if (token === viewToken) showError(e); }
    }, POLL_MS);
  }
  return out;
}

// ---- models ------------------------------------------------------------------------------------------------

async function modelsView(id) {
  const page = await api(`/v1/models${query({ limit: 100 })}`);
  const rows = page.items.map(m => el("tr", { "data-model-id": m.id },
    el("td", {}, link(`#/models/${encodeURIComponent(m.id)}`, m.name)),
    el("td", { class: "num" }, m.version),
    el("td", {}, m.family),
    el("td", { class: "num" }, m.combination_count),
    el("td", { class: "num" }, fmt(m.size_bytes / 1e6, 2)),
    el("td", {}, (m.tags || []).map(t => el("span", { class: "label" }, t))),
    el("td", {}, m.deprecated_at ? "deprecated" : "in service")));
  const out = el("div", {}, el("h1", {}, "Models"),
    table(["Name", { text: "Version", num: true }, "Family", { text: "Combinations", num: true }, { text: "Package MB", num: true }, "Tags", "State"],
      rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No model published yet."))], "models"));
  const chosen = id || (page.items[0] && page.items[0].id);
  if (!chosen) return out;
  out.appendChild(el("h2", {}, "Accuracy against cost"));
  let data;
  try { data = await api(`/v1/models/${encodeURIComponent(chosen)}/scaling`); } catch (e) {
    out.appendChild(el("p", { class: "error" }, e.message));
    return out;
  }
  const holder = el("div", { id: "plot" });
  const choice = el("select", { id: "plot-x" }, el("option", { value: "latency_ms" }, "latency"), el("option", { value: "size_mb" }, "size"));
  const draw = () => holder.replaceChildren(FleetPlot.draw(data, choice.value));
  choice.addEventListener("change", draw);
  draw();
  out.appendChild(el("div", { class: "plot-controls" }, el("label", {}, "Horizontal axis ", choice),
    el("span", { class: "muted", id: "plot-caption" },
      `${data.frontier.length} combinations on the latency frontier, ${data.size_frontier.length} on the size frontier; full model ${fmt(data.full_latency_ms)} ms`)));
  out.appendChild(holder);
  return out;
}

// ---- audit -------------------------------------------------------------------------------------------------

async function auditView(params) {
  const page = await api(`/v1/audit${query({ limit: params.get("limit") || 50, after: params.get("after"), actor: params.get("actor"), route: params.get("route") })}`);
  const rows = page.items.map(a => el("tr", {},
    el("td", {}, time(a.at)),
    el("td", {}, a.actor_name || a.actor_id || a.actor_kind, el("span", { class: "muted" }, ` (${a.actor_kind})`)),
    el("td", { class: "mono" }, `${a.method} ${a.route}`),
    el("td", { class: "mono" }, a.resource_id || ""),
    el("td", { class: "num" }, a.status),
    el("td", { class: "mono muted" }, a.client_address || "")));
  return el("div", {}, el("h1", {}, "Audit log"),
    el("p", { class: "muted" }, "Every change and every refused credential, newest first."),
    table(["When", "Who", "Request", "Resource", { text: "Status", num: true }, "Client"],
      rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "Nothing recorded."))], "audit"),
    pager("#/audit", params, page.next));
}

// ---- start -------------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-in").addEventListener("submit", signIn);
  document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
  window.addEventListener("hashchange", route);
  if (sessionStorage.getItem(KEY)) {
    document.getElementById("nav").hidden = false;
    route();
  } else {
    signOut();
  }
});
