// The overview: every monitor (a page of them at a time) with its current state, availability
// and p50/p95/p99 over the chosen range and a p95 chart, updated as windows close.

import { gql } from "./gql.js";
import { h, micros, percent } from "./dom.js";
import { lineChart } from "./chart.js";

const PAGE = 25;
export const RANGES = [["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"],
  ["30d", "Last 30 days"]];

/** The range the person chose (kept for the tab), as `now-<duration>`. */
export function chosenRange() {
  const range = sessionStorage.getItem("vigil-range") || "24h";
  return RANGES.some(([r]) => r === range) ? range : "24h";
}

export function rangePicker(onChange) {
  const select = h("select", { id: "range" },
    RANGES.map(([value, label]) =>
      h("option", { value, selected: value === chosenRange() }, label)));
  select.addEventListener("change", () => {
    sessionStorage.setItem("vigil-range", select.value);
    onChange();
  });
  return h("label", { class: "range" }, "Range ", select);
}

/** The alerts firing now, by rule and region, from `activeAlerts` items. */
export function firingMap(items) {
  return new Map(items.filter((a) => a.state === "firing")
    .map((a) => [`${a.ruleId}/${a.region || ""}`, a]));
}

/** Applies an `alertChanged` transition to a map from `firingMap`. */
export function applyTransition(firing, a) {
  const key = `${a.ruleId}/${a.region || ""}`;
  if (a.to === "firing") firing.set(key, a);
  else firing.delete(key);
}

/**
 * A monitor's state from what is known now: paused, an alert firing, or the availability of
 * its latest window per region.
 */
export function stateOf({ enabled, firing: byKey, regions }) {
  if (!enabled) return ["paused", "Paused"];
  const firing = [...byKey.values()];
  // GraphQL enums arrive upper-case (CRITICAL), subscriptions' alerts likewise.
  if (firing.some((a) => String(a.severity).toLowerCase() === "critical")) return ["down", "Down"];
  const latest = Object.values(regions);
  if (firing.length > 0) return ["degraded", "Degraded"];
  if (latest.length === 0) return ["unknown", "No data"];
  if (latest.every((a) => a === 0)) return ["down", "Down"];
  if (latest.some((a) => a < 1)) return ["degraded", "Degraded"];
  return ["up", "Up"];
}

export function badge([cls, label]) {
  return h("span", { class: `state ${cls}`, "data-state": cls }, label);
}

const point = (p) => [Date.parse(p.start), p.p95Us];

async function load(after) {
  const range = chosenRange();
  const page = await gql(`query($after: String) {
      monitors(first: ${PAGE}, after: $after) {
        items { id name tags enabled interval } nextCursor } }`, { after });
  const monitors = page.monitors.items;
  if (monitors.length === 0) return { monitors, next: null, rows: [] };
  const fields = monitors.map((_, i) => `
      h${i}: history(monitorId: $m${i}, from: $from, resolution: "auto") {
        points { start p95Us } }
      s${i}: summary(monitorId: $m${i}, from: $from) {
        overall { count uptimePercent p50Us p95Us p99Us } }
      r${i}: history(monitorId: $m${i}, from: "now-5m", resolution: "1m") {
        points { start availability } }
      a${i}: activeAlerts(monitorId: $m${i}, first: 100) {
        items { ruleId region severity state } }`).join("");
  const vars = monitors.map((_, i) => `$m${i}: String!`).join(", ");
  const variables = { from: `now-${range}` };
  monitors.forEach((m, i) => { variables[`m${i}`] = m.id; });
  const data = await gql(`query(${vars}, $from: String!) {${fields}}`, variables);
  const rows = monitors.map((m, i) => ({
    monitor: m,
    points: data[`h${i}`].points.filter((p) => p.p95Us !== null).map(point),
    overall: data[`s${i}`].overall,
    latest: data[`r${i}`].points.at(-1),
    firing: firingMap(data[`a${i}`].items),
  }));
  return { monitors, next: page.monitors.nextCursor, rows };
}

export async function overview(live) {
  let cursor = null;
  const history = [];
  const section = h("section", { "aria-labelledby": "overview-title" });
  const body = h("tbody");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const unsubscribe = [];
  const rows = new Map();

  const render = async () => {
    const { rows: data, next } = await load(cursor);
    rows.clear();
    body.replaceChildren();
    if (data.length === 0) {
      body.append(h("tr", {}, h("td", { colspan: 7 }, "No monitors yet.")));
    }
    for (const row of data) {
      const regions = {};
      if (row.latest) regions["*"] = row.latest.availability;
      const state = { enabled: row.monitor.enabled, firing: row.firing, regions };
      const cells = {
        state: h("td", {}, badge(stateOf(state))),
        chart: h("td", { class: "spark" }),
      };
      const tr = h("tr", { "data-monitor": row.monitor.id },
        h("th", { scope: "row" },
          h("a", { href: `#/monitors/${encodeURIComponent(row.monitor.id)}` }, row.monitor.name),
          h("div", { class: "sub" }, row.monitor.id)),
        cells.state,
        h("td", { class: "num" }, row.overall.uptimePercent === null ? "–"
          : percent(row.overall.uptimePercent / 100)),
        h("td", { class: "num" }, micros(row.overall.p50Us)),
        h("td", { class: "num" }, micros(row.overall.p95Us)),
        h("td", { class: "num" }, micros(row.overall.p99Us)),
        cells.chart);
      const entry = { row, state, cells, points: row.points };
      const draw = () => {
        cells.chart.replaceChildren(lineChart({
          title: `${row.monitor.name} p95`,
          series: [{ name: "p95", cls: "p95", points: entry.points }],
          format: micros,
          yMin: 0,
        }));
        cells.state.replaceChildren(badge(stateOf(entry.state)));
      };
      entry.draw = draw;
      draw();
      rows.set(row.monitor.id, entry);
      body.append(tr);
    }
    pager.replaceChildren(
      history.length > 0 ? h("button", { type: "button", onclick: () => {
        cursor = history.pop();
        render();
      } }, "Previous") : "",
      next ? h("button", { type: "button", onclick: () => {
        history.push(cursor);
        cursor = next;
        render();
      } }, "Next") : "");
  };

  await render();
  // A closed window updates its monitor's state and appends to its chart at once.
  unsubscribe.push(live.subscribe(`subscription {
      windowClosed { monitorId region start count availability p95Us } }`, {}, (data) => {
    const w = data.windowClosed;
    const entry = rows.get(w.monitorId);
    if (!entry) return;
    delete entry.state.regions["*"];
    entry.state.regions[w.region] = w.availability;
    if (w.count !== 0 && Number.isFinite(w.p95Us)) {
      entry.points = [...entry.points, [Date.parse(w.start), w.p95Us]]
        .sort((a, b) => a[0] - b[0]);
    }
    entry.draw();
  }));
  unsubscribe.push(live.subscribe(`subscription {
      monitorChanged { id monitor { id enabled } } }`, {}, (data) => {
    const change = data.monitorChanged;
    const entry = rows.get(change.id);
    if (entry && change.monitor) {
      entry.state.enabled = change.monitor.enabled;
      entry.draw();
    }
  }));
  unsubscribe.push(live.subscribe(`subscription {
      alertChanged { monitorId ruleId region severity to } }`, {}, (data) => {
    const a = data.alertChanged;
    const entry = rows.get(a.monitorId);
    if (!entry) return;
    applyTransition(entry.state.firing, a);
    entry.draw();
  }));

  section.append(
    h("div", { class: "heading" },
      h("h1", { id: "overview-title" }, "Monitors"),
      rangePicker(() => render())),
    h("table", { class: "monitors" },
      h("caption", { class: "visually-hidden" }, "Monitors with their state and latency"),
      h("thead", {}, h("tr", {},
        ["Monitor", "State", "Availability", "p50", "p95", "p99", "p95 over time"]
          .map((t) => h("th", { scope: "col" }, t)))),
      body),
    pager);
  return {
    element: section,
    title: "Monitors",
    teardown: () => unsubscribe.forEach((f) => f()),
  };
}
