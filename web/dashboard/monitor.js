// One monitor: its state, summary over the chosen range, latency and timing-phase charts,
// availability and anomaly scores, status mix, recent failed checks with their condition
// results, and its alerts; editors can pause, resume and edit it.

import { ApiError, gql } from "./gql.js";
import { h, micros, notice, percent, when } from "./dom.js";
import { lineChart } from "./chart.js";
import { applyTransition, badge, chosenRange, firingMap, rangePicker, stateOf }
  from "./overview.js";

const POINT = `start count okCount availability status4xx status5xx errors { kind count }
  p50Us p95Us p99Us dnsMeanUs connectMeanUs tlsMeanUs ttfbMeanUs anomalyScore`;
const PROBE = `eventId eventTime region statusCode outcome error totalUs
  assertions { condition passed actual }
  steps { name outcome error assertions { condition passed actual } }`;
const ALERT = "ruleId region kind severity message value threshold";

async function load(id) {
  const from = `now-${chosenRange()}`;
  return gql(`query($id: String!, $from: String!) {
      monitor(id: $id) { id name tags url method interval timeout regions enabled assertions }
      summary(monitorId: $id, from: $from) { overall { count okCount uptimePercent p50Us p95Us p99Us } }
      history(monitorId: $id, from: $from, resolution: "auto") { resolution points { ${POINT} } }
      latest: history(monitorId: $id, from: "now-5m", resolution: "1m") { points { availability } }
      failed: probes(monitorId: $id, from: $from, outcome: "failed", first: 20) { items { ${PROBE} } }
      activeAlerts(monitorId: $id) { items { ${ALERT} state since } }
      alerts(monitorId: $id, from: $from, first: 20) { items { ${ALERT} from to at } } }`,
  { id, from });
}

const series = (points, pick) =>
  points.filter((p) => pick(p) !== null && pick(p) !== undefined)
    .map((p) => [Date.parse(p.start), pick(p)]);

function charts(points) {
  return [
    lineChart({
      title: "Latency percentiles",
      series: [["p50", "p50Us"], ["p95", "p95Us"], ["p99", "p99Us"]]
        .map(([name, key]) => ({ name, cls: name, points: series(points, (p) => p[key]) })),
      format: micros,
      yMin: 0,
    }),
    lineChart({
      title: "Timing phases (mean)",
      series: [["DNS", "dnsMeanUs", "dns"], ["Connect", "connectMeanUs", "connect"],
        ["TLS", "tlsMeanUs", "tls"], ["First byte", "ttfbMeanUs", "ttfb"]]
        .map(([name, key, cls]) => ({ name, cls, points: series(points, (p) => p[key]) })),
      format: micros,
      yMin: 0,
    }),
    lineChart({
      title: "Availability",
      series: [{ name: "availability", cls: "availability",
        points: series(points, (p) => (p.count > 0 ? p.availability : null)) }],
      format: percent,
    }),
    lineChart({
      title: "Anomaly score",
      series: [{ name: "anomaly score", cls: "anomaly",
        points: series(points, (p) => p.anomalyScore) }],
      format: (v) => v.toFixed(2),
      yMin: 0,
    }),
  ];
}

function statusMix(points) {
  const total = points.reduce((n, p) => n + p.count, 0);
  const outcomes = new Map([["ok", 0]]);
  let c4 = 0;
  let c5 = 0;
  for (const p of points) {
    outcomes.set("ok", outcomes.get("ok") + p.okCount);
    for (const e of p.errors) outcomes.set(e.kind, (outcomes.get(e.kind) || 0) + e.count);
    c4 += p.status4xx;
    c5 += p.status5xx;
  }
  const rows = (entries) => entries.map(([kind, n]) => h("tr", {},
    h("th", { scope: "row" }, kind), h("td", { class: "num" }, n),
    h("td", { class: "num" }, total > 0 ? percent(n / total) : "–")));
  const head = (title) => h("thead", {}, h("tr", {}, h("th", { scope: "col" }, title),
    h("th", { scope: "col" }, "Checks"), h("th", { scope: "col" }, "Share")));
  return h("div", { class: "mixes" },
    h("table", { class: "mix" }, h("caption", {}, "Outcomes"), head("Outcome"),
      h("tbody", {}, rows([...outcomes]))),
    h("table", { class: "mix" }, h("caption", {}, "HTTP status"), head("Status"),
      h("tbody", {}, rows([["4xx", c4], ["5xx", c5], ["other or none", total - c4 - c5]]))));
}

function conditions(list) {
  return h("ul", { class: "conditions" }, list.map((c) => h("li", { class: c.passed ? "pass" : "fail" },
    h("span", { class: "verdict" }, c.passed ? "passed" : "failed"), " ",
    h("code", {}, c.condition),
    c.actual !== null && c.actual !== undefined ? [" (was ", h("code", {}, c.actual), ")"] : "")));
}

function failedCheck(p) {
  const results = p.assertions.length > 0 ? p.assertions : p.steps.flatMap((s) => s.assertions);
  const step = p.steps.find((s) => s.outcome !== "ok");
  return h("li", { "data-event": p.eventId },
    h("div", {}, h("time", { datetime: p.eventTime }, when(p.eventTime)), " · ", p.region, " · ",
      h("strong", {}, p.outcome), p.statusCode ? ` · HTTP ${p.statusCode}` : "",
      ` · ${micros(p.totalUs)}`, step ? ` · step ${step.name}` : ""),
    p.error ? h("p", { class: "error-text" }, p.error) : "",
    results.length > 0 ? conditions(results) : "");
}

function alertItem(a, active) {
  return h("li", {},
    h("strong", {}, a.ruleId), a.region ? ` (${a.region})` : "", " · ", a.severity, " · ",
    active ? `${a.state} since ${when(a.since)}` : `${a.from} → ${a.to} at ${when(a.at)}`,
    h("div", { class: "sub" }, a.message));
}

function editForm(monitor, onSaved) {
  const field = (name, label, value, hint) => [
    h("label", { for: `edit-${name}` }, label),
    name === "assertions"
      ? h("textarea", { id: `edit-${name}`, name, rows: 4 }, value)
      : h("input", { id: `edit-${name}`, name, value }),
    hint ? h("p", { class: "hint" }, hint) : "",
  ];
  const form = h("form", { class: "edit", "aria-label": "Edit monitor" },
    field("name", "Name", monitor.name),
    field("interval", "Interval", monitor.interval, "A duration: 30s, 5m."),
    field("timeout", "Timeout", monitor.timeout),
    field("tags", "Tags", monitor.tags.join(", "), "Comma-separated."),
    field("assertions", "Conditions", monitor.assertions.join("\n"), "One per line: [STATUS] == 200."),
    h("div", { class: "errors", role: "alert" }),
    h("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const patch = {
      name: data.get("name"),
      interval: data.get("interval"),
      timeout: data.get("timeout"),
      tags: data.get("tags").split(",").map((t) => t.trim()).filter(Boolean),
      assertions: data.get("assertions").split("\n").map((t) => t.trim()).filter(Boolean),
    };
    try {
      await gql(`mutation($id: String!, $patch: JSON!) {
          patchMonitor(id: $id, patch: $patch) { id } }`, { id: monitor.id, patch });
      onSaved();
    } catch (e) {
      form.querySelector(".errors").replaceChildren(h("p", { class: "error" }, e.message));
    }
  });
  return form;
}

export async function monitorPage(id, live) {
  const data = await load(id);
  const m = data.monitor;
  if (!m) {
    return { element: h("section", {}, h("h1", {}, "No such monitor"),
      h("p", {}, h("a", { href: "#/" }, "Back to the monitors"))), title: "Not found", teardown() {} };
  }
  const points = data.history.points;
  const state = {
    enabled: m.enabled,
    firing: firingMap(data.activeAlerts.items),
    regions: data.latest.points.length > 0 ? { "*": data.latest.points.at(-1).availability } : {},
  };
  const stateCell = h("span", { id: "monitor-state" }, badge(stateOf(state)));
  const chartBox = h("div", { class: "charts" }, charts(points));
  const failedList = h("ol", { class: "failed" }, data.failed.items.map(failedCheck));
  const toggle = h("button", { type: "button", id: "toggle" }, m.enabled ? "Pause" : "Resume");
  const editBox = h("div");
  const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      const r = await gql(`mutation($id: String!, $on: Boolean!) {
          setMonitorEnabled(id: $id, enabled: $on) { enabled } }`, { id: m.id, on: !state.enabled });
      state.enabled = r.setMonitorEnabled.enabled;
      toggle.textContent = state.enabled ? "Pause" : "Resume";
      stateCell.replaceChildren(badge(stateOf(state)));
      notice(state.enabled ? "Monitor resumed." : "Monitor paused.", "info");
    } catch (e) {
      notice(e instanceof ApiError ? e.message : String(e));
    } finally {
      toggle.disabled = false;
    }
  });
  const edit = h("button", { type: "button", id: "edit" }, "Edit");
  edit.addEventListener("click", () => {
    editBox.replaceChildren(editForm(m, () => { notice("Monitor saved.", "info"); reload(); }));
    editBox.querySelector("input").focus();
  });
  const tiles = h("dl", { class: "tiles" },
    [["Availability", data.summary.overall.uptimePercent === null ? "–"
      : percent(data.summary.overall.uptimePercent / 100)],
    ["p50", micros(data.summary.overall.p50Us)], ["p95", micros(data.summary.overall.p95Us)],
    ["p99", micros(data.summary.overall.p99Us)], ["Checks", data.summary.overall.count]]
      .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));

  const element = h("section", { class: "monitor" },
    h("p", {}, h("a", { href: "#/" }, "← Monitors")),
    h("div", { class: "heading" }, h("h1", {}, m.name), stateCell, rangePicker(reload)),
    h("p", { class: "sub" }, `${m.method} ${m.url} · every ${m.interval} · `,
      m.regions.length > 0 ? m.regions.join(", ") : "all regions",
      m.tags.length > 0 ? ` · ${m.tags.join(", ")}` : ""),
    h("div", { class: "actions" }, toggle, edit), editBox,
    tiles, chartBox, statusMix(points),
    h("h2", {}, "Active alerts"),
    data.activeAlerts.items.length > 0
      ? h("ul", { class: "alerts" }, data.activeAlerts.items.map((a) => alertItem(a, true)))
      : h("p", {}, "None."),
    h("h2", {}, "Recent failed checks"),
    data.failed.items.length > 0 ? failedList : h("p", { id: "no-failures" }, "None in this range."),
    h("h2", {}, "Alert history"),
    data.alerts.items.length > 0
      ? h("ul", { class: "alerts" }, data.alerts.items.map((a) => alertItem(a, false)))
      : h("p", {}, "No transitions in this range."));

  const unsubscribe = [
    live.subscribe(`subscription($id: String) {
        windowClosed(monitorId: $id) { region start count okCount availability p50Us p95Us p99Us anomalyScore } }`,
    { id }, (d) => {
      const w = d.windowClosed;
      delete state.regions["*"];
      state.regions[w.region] = w.availability;
      stateCell.replaceChildren(badge(stateOf(state)));
      points.push({ ...w, status4xx: 0, status5xx: 0, errors: [], dnsMeanUs: null,
        connectMeanUs: null, tlsMeanUs: null, ttfbMeanUs: null });
      points.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
      chartBox.replaceChildren(...charts(points));
    }),
    live.subscribe(`subscription($id: String) {
        probeCompleted(monitorId: $id) { ${PROBE} } }`, { id }, (d) => {
      const p = d.probeCompleted;
      if (p.outcome === "ok") return;
      const none = element.querySelector("#no-failures");
      if (none) none.replaceWith(failedList);
      failedList.prepend(failedCheck(p));
    }),
    live.subscribe(`subscription($id: String) {
        alertChanged(monitorId: $id) { ruleId region severity to } }`, { id }, (d) => {
      const a = d.alertChanged;
      applyTransition(state.firing, a);
      stateCell.replaceChildren(badge(stateOf(state)));
    }),
  ];
  return { element, title: m.name, teardown: () => unsubscribe.forEach((f) => f()) };
}
